"""ShapesWorld model variants that were tried and not shipped, trained and measured side by side with the shipped models.

    OMP_NUM_THREADS=1 python bench/shapes_variants.py --work DIR [--variants shipped clip-swap gen-sd15 gen-joint gen-zero-snr]

The shipped recipe (notebook 13): CLIP with caption-swap hard negatives and attribute probes; the generator's text
encoder is that CLIP's frozen text tower; the schedule has zero terminal SNR with v-prediction. Each variant changes
one part, is trained from seed 0 into DIR (skipped when its folder is there; about 30 minutes per CLIP and 40 per
generator on one core), then measured with the judge and the functions of notebook 13:
- clip-swap: CLIP without the attribute probes (caption-swap hard negatives only);
- gen-sd15: the shipped generator recipe with Stable Diffusion 1.5's schedule (noise prediction, SNR 0.005 at t=999);
- gen-joint: a text encoder trained from scratch with the UNet instead of the frozen CLIP text tower, SD 1.5's schedule;
- gen-zero-snr: gen-joint with the shipped zero-terminal-SNR schedule.
Generators reuse the shipped autoencoder. Printed: CLIP retrieval among one-attribute distractors (held-out and
training pairs) and the quality head's Spearman (head retrained on the variant), the generators' faithfulness to
detailed captions (training and held-out pairs), and "layout follows the noise": for 20 seeds, a large red square
asked at each of the 5 positions from the same seed; the share of seeds where all 5 images put it in the same region.
"""
import argparse, json, time
from pathlib import Path
import numpy as np, torch
from torch import Tensor
from diffusers import DDPMScheduler
from vlm_grpo_nb import shapes as S, shapes_models as M
from vlm_grpo_nb.shapes_models import (world_data, train_loop, train_clip, save_clip, load_clip, clip_text_encoder, train_quality,
    save_quality, build_unet, encode_latents, clip_tokenizer_hf, assemble_pipeline, save_generator, sample_scheduler,
    heldout_cases, generate, verdict_stats, clip_retrieval, quality_spearman, SCHEDULE, SD15_SCHEDULE)
from vlm_grpo_nb.config import set_seed, load_config
from vlm_grpo_nb.tiny import SHAPES_DIR

TEXT_CONFIG = dict(vocab_size=49408, max_position_embeddings=77, hidden_size=64, intermediate_size=256, num_attention_heads=4,
                   num_hidden_layers=3, hidden_act='gelu', layer_norm_eps=1e-5, bos_token_id=49406, eos_token_id=49407, pad_token_id=49407)

def build_text_encoder(seed:int=0):
    "A fresh transformers `CLIPTextModel` of `TEXT_CONFIG` (CLIP's vocabulary and 77 positions), initialised from `seed`."
    from transformers import CLIPTextConfig, CLIPTextModel
    torch.manual_seed(seed)
    return CLIPTextModel(CLIPTextConfig(**TEXT_CONFIG))

def caption_ids(tok, captions:list[str])->Tensor:
    "(N, 77) token ids of the captions, padded and cut as `StableDiffusionPipeline` does."
    return tok(list(captions), padding='max_length', max_length=tok.model_max_length, truncation=True, return_tensors='pt').input_ids

def train_generator(
    vae,                  # the trained autoencoder (frozen)
    schedule:dict,        # DDPMScheduler arguments
    data:dict,            # `world_data(...)`: web captions and their images
    steps:int=3000,       # optimizer steps
    batch_size:int=48,
    lr:float=1e-3,
    seed:int=0,
    progress:bool=True,
)->tuple:                 # (unet, text encoder, tokenizer, losses)
    "Train a UNet and a text encoder (`te(ids)` inside the loss) with the package's `diffusion_loss` on `data`."
    set_seed(seed)
    unet, te, tok = build_unet(seed), build_text_encoder(seed + 1), clip_tokenizer_hf()
    sched, g = DDPMScheduler(**schedule), torch.Generator().manual_seed(seed)
    Z, ids, empty = encode_latents(vae, data['images'], fit_scale=True), caption_ids(tok, data['captions']), caption_ids(tok, [''])[0]
    def loss(i):
        j = torch.randint(0, len(Z), (batch_size,), generator=g)
        return M.diffusion_loss(unet, sched, Z[j], te(ids[j]).last_hidden_state, te(empty[None]).last_hidden_state, g)
    unet.train(); te.train()
    losses = train_loop([*unet.parameters(), *te.parameters()], loss, steps, lr, 1e-2, 'generator', progress)
    return unet.eval().requires_grad_(False), te.eval().requires_grad_(False), tok, losses

def _vae():
    from diffusers import AutoencoderKL
    return AutoencoderKL.from_pretrained(SHAPES_DIR/'generator'/'vae').float().eval().requires_grad_(False)

def _save(work, name, t0, pipe_or_model, losses, save):
    save(pipe_or_model, work/name)
    (work/f'{name}.json').write_text(json.dumps({'minutes': (time.time() - t0) / 60, 'losses_per_50_steps': [float(np.mean(losses[i:i+50])) for i in range(0, len(losses), 50)]}))

def _train_tower_variant(work, name, schedule):
    "The shipped generator recipe (the shipped CLIP's frozen text tower) with another schedule."
    if (work/name).exists(): return
    t0, vae, te = time.time(), _vae(), clip_text_encoder(load_clip(SHAPES_DIR/'clip'))
    unet, tok, losses = M.train_generator(vae, te, world_data(30_000, 1), 3000, schedule=schedule)
    pipe = assemble_pipeline(vae, te, unet, tok); pipe.scheduler = sample_scheduler(schedule)
    _save(work, name, t0, pipe, losses, save_generator)

def _train_clip_variant(work, name, probes):
    if (work/name).exists(): return
    t0 = time.time(); model, losses = train_clip(world_data(30_000, 2), 2500, probes=probes)
    _save(work, name, t0, model, losses, save_clip)

def _train_gen_variant(work, name, schedule):
    "A generator whose text encoder is trained from scratch with the UNet."
    if (work/name).exists(): return
    t0, vae = time.time(), _vae()
    unet, te, tok, losses = train_generator(vae, schedule, world_data(30_000, 1), 3000)
    pipe = assemble_pipeline(vae, te, unet, tok); pipe.scheduler = sample_scheduler(schedule)
    _save(work, name, t0, pipe, losses, save_generator)

def _reward(cfg, clip_dir, work, name):
    from vlm_grpo_nb.clip_reward import CLIPRewardCalculator
    if clip_dir is not None:
        q = work/f'{name}_quality.safetensors'
        if not q.exists(): save_quality(train_quality(load_clip(clip_dir), world_data(15_000, 3), 3000, progress=False)[0], q)
        cfg.model_settings.clip_model, cfg.model_settings.aesthetic_head = str(clip_dir), str(q)
    return CLIPRewardCalculator(config=cfg)

def _generator(cfg, gen_dir):
    from vlm_grpo_nb.sd_generator import SD3Generator
    if gen_dir is not None:
        if not (gen_dir/'tokenizer').exists(): clip_tokenizer_hf(gen_dir/'tokenizer')
        cfg.model_settings.sd_model = str(gen_dir)
    return SD3Generator(config=cfg)

def _layout_follows_noise(gen, n_seeds=20):
    caps = [f'a large red square in the {p}, white background, sharp, high quality' for p in S.POSITIONS]
    same, right = [], []
    for s in range(n_seeds):
        ims = generate(gen, caps, [s] * len(caps))
        found = [S.detect(im)[1] for im in ims]
        where = [max(d, key=lambda x: x.area).position if d else None for d in found]
        same.append(len(set(where)) == 1 and where[0] is not None); right += [w == p for w, p in zip(where, S.POSITIONS)]
    return float(np.mean(same)), float(np.mean(right))

def main():
    ap = argparse.ArgumentParser(); ap.add_argument('--work', required=True)
    ap.add_argument('--variants', nargs='+', default=['shipped', 'clip-swap', 'gen-sd15', 'gen-joint', 'gen-zero-snr'])
    ap.add_argument('--n', type=int, default=100); a = ap.parse_args()
    work = Path(a.work); work.mkdir(parents=True, exist_ok=True)
    clips, gens = {'clip-swap': False}, {'gen-sd15': SD15_SCHEDULE, 'gen-joint': SD15_SCHEDULE, 'gen-zero-snr': SCHEDULE}
    for v in a.variants:
        if v in clips: _train_clip_variant(work, v, clips[v])
        if v == 'gen-sd15': _train_tower_variant(work, v, gens[v])
        elif v in gens: _train_gen_variant(work, v, gens[v])
    crows, grows = [], []
    for v in a.variants:
        if v == 'shipped' or v in clips:
            rew = _reward(load_config(preset='shapes'), None if v == 'shipped' else work/v, work, v)
            r_h, r_t = clip_retrieval(rew, heldout_cases(200, seed=1000), seed=20_000), clip_retrieval(rew, heldout_cases(200, seed=1000, split='train'), seed=20_000)
            crows.append((v, r_h, r_t, quality_spearman(rew, n=400, seed=3000)))
        if v == 'shipped' or v in gens:
            gen = _generator(load_config(preset='shapes'), None if v == 'shipped' else work/v)
            st = {}
            for split in ('train', 'heldout'):
                cases = heldout_cases(a.n, seed=1000, split=split)
                ims = generate(gen, [c['detailed'] for c in cases], [10_000 + i for i in range(a.n)])
                st[split] = verdict_stats(S.judge_batch(list(ims), [c['detailed'] for c in cases]))
            grows.append((v, st, *_layout_follows_noise(gen)))
    print('| CLIP | held-out: all | shape | colour | size | position | training pairs: all | shape | position | quality Spearman |\n|---|---|---|---|---|---|---|---|---|---|')
    for v, h, t, sp in crows:
        print(f"| {v} | {h['all']:.1%} | {h['shape']:.1%} | {h['colour']:.1%} | {h['size']:.1%} | {h['position']:.1%} | {t['all']:.1%} | {t['shape']:.1%} | {t['position']:.1%} | {sp:.3f} |")
    print(f'\n| generator | split | shape | colour | size | position | passes bar | same place for 5 positions | position right |\n|---|---|---|---|---|---|---|---|---|')
    for v, st, same, right in grows:
        for split, f in st.items():
            print(f"| {v} | {split} | {f['shape']:.1%} | {f['colour']:.1%} | {f['size']:.1%} | {f['position']:.1%} | {f['passes_quality']:.1%} | "
                  f"{f'{same:.0%}' if split == 'train' else ''} | {f'{right:.0%}' if split == 'train' else ''} |")

if __name__ == '__main__': main()
