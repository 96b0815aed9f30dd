"""ShapesWorld model variants that were tried and not shipped, trained and measured side by side with the shipped models.

    OMP_NUM_THREADS=1 python bench/shapes_variants.py --work DIR [--variants shipped clip-swap clip-probes gen-joint gen-zero-snr]

Each variant is trained from seed 0 into DIR (skipped when its folder is there; about 30 minutes per CLIP and 45 per
generator on one core), then measured with the judge and the functions of notebook 13:
- clip-swap: CLIP whose hard negatives are the image's own caption with one named attribute's words replaced;
- clip-probes: the same plus linear attribute probes shared by the image and text embeddings (thrown away after training);
- gen-joint: the generator's text encoder trained from scratch with the UNet instead of the frozen CLIP text tower;
- gen-zero-snr: gen-joint with the schedule rescaled to zero terminal SNR, v-prediction and trailing time steps;
- gen-probes-tower: the shipped recipe (frozen CLIP text tower as text encoder) with clip-probes' tower and the zero-SNR schedule.
Generators reuse the shipped autoencoder. Printed: CLIP retrieval among one-attribute distractors (held-out and
training pairs) and the quality head's Spearman (head retrained on the variant), the generators' faithfulness to
detailed captions (training and held-out pairs), and "layout follows the noise": for 20 seeds, a large red square
asked at each of the 5 positions from the same seed; the share of seeds where all 5 images put it in the same region.
"""
import argparse, json, re, shutil, time
from pathlib import Path
import numpy as np, torch
import torch.nn.functional as F
from torch import Tensor
from diffusers import DDPMScheduler, DPMSolverMultistepScheduler
from vlm_grpo_nb import shapes as S, shapes_models as M
from vlm_grpo_nb.shapes_models import swap_attribute
from vlm_grpo_nb.shapes_models import (world_data, train_loop, build_clip, clip_images, clip_tokens, CLIP_CONFIG, save_clip, load_clip,
    train_quality, save_quality, build_unet, encode_latents, clip_tokenizer_hf, assemble_pipeline, save_generator,
    heldout_cases, generate, verdict_stats, clip_retrieval, quality_spearman, SCHEDULE)
from vlm_grpo_nb.config import set_seed, load_config
from vlm_grpo_nb.tiny import SHAPES_DIR

ZERO_SNR = {**SCHEDULE, 'rescale_betas_zero_snr': True, 'prediction_type': 'v_prediction', 'timestep_spacing': 'trailing'}

ATTRIBUTES = ('shape', 'colour', 'size', 'position')
_VALUES = {'colour': S.COLOURS, 'shape': S.SHAPES, 'size': S.SIZES, 'position': S.POSITIONS}

def _name_re(name): return re.compile(r'\b(' + '|'.join(re.escape(w) for w in sorted(S.WORDS[name], key=len, reverse=True)) + r')\b')

def hard_negative(
    caption:str,                # a caption of `scene`
    scene:S.Scene,              # one object
    rng:np.random.Generator,
)->str:                         # the caption with one named attribute's words replaced
    "`caption` with the words of one attribute of `scene`'s object that it names replaced by another value's; without one, a swapped detailed caption."
    o = scene.objects[0]
    found = {k: m for k in ATTRIBUTES if (m := _name_re(getattr(o, k)).search(caption))}
    if not found: return S.detailed_caption(swap_attribute(scene, rng), rng, bool(rng.random() < 0.5))
    new = swap_attribute(scene, rng, tuple(found)).objects[0]
    kind = next(k for k in found if getattr(new, k) != getattr(o, k))
    m, w = found[kind], S.WORDS[getattr(new, kind)][rng.integers(len(S.WORDS[getattr(new, kind)]))]
    tail = caption[m.end():]
    if kind == 'position' and new.position == 'centre' and tail.startswith(' corner'): tail = tail[len(' corner'):]
    return caption[:m.start()] + w + tail

def clip_batch_loss(
    model, x:Tensor, pos:Tensor, neg:Tensor, clip_loss,
    probes=None,              # one linear probe per attribute (`ATTRIBUTES`), shared by the two towers; None: no probe loss
    y_img:Tensor|None=None,   # (B, 4) attribute indices of the images' objects
    y_txt:Tensor|None=None,   # (B, 4) the same for the captions, -100 where a caption does not name the attribute
    probe_scale:float=10.0,   # the probes read `probe_scale` times the unit-norm embeddings
)->Tensor:
    "open_clip's contrastive loss on (images, captions), image-to-text cross entropy against captions + hard negatives, and attribute probes."
    img, txt, scale = model(x, torch.cat([pos, neg]))
    n = len(x)
    loss = clip_loss(img, txt[:n], scale) + F.cross_entropy(scale * img @ txt.T, torch.arange(n))
    for a, probe in enumerate(probes or []):
        loss = loss + F.cross_entropy(probe(probe_scale * img), y_img[:, a])
        if (y_txt[:, a] >= 0).any(): loss = loss + F.cross_entropy(probe(probe_scale * txt[:n]), y_txt[:, a], ignore_index=-100)
    return loss

def attribute_labels(scenes:list, captions:list[str])->tuple:
    "(images', captions') (N, 4) indices of the first object's `ATTRIBUTES`; -100 for what a caption does not name."
    ix = {a: {v: i for i, v in enumerate(_VALUES[a])} for a in ATTRIBUTES}
    y_img = torch.tensor([[ix[a][getattr(s.objects[0], a)] for a in ATTRIBUTES] for s in scenes])
    named = [(S.parse_prompt(c) or [{}])[0] for c in captions]
    y_txt = torch.tensor([[ix[a][n[a]] if a in n else -100 for a in ATTRIBUTES] for n in named])
    return y_img, y_txt

def train_clip(
    data:dict,            # `world_data(...)`
    steps:int=2500,
    batch_size:int=96,
    lr:float=1e-3,
    seed:int=0,
    probes:bool=True,     # also train the attribute probes
    progress:bool=True,
)->tuple:                 # (CLIP model in eval mode, losses)
    "Train an open_clip CLIP contrastively (with one-attribute hard negatives and, if `probes`, attribute probes) on `data`."
    set_seed(seed)
    from open_clip.loss import ClipLoss
    model, rng, g = build_clip(seed), np.random.default_rng(seed), torch.Generator().manual_seed(seed)
    X, pos = clip_images(data['images']), clip_tokens(data['captions'])
    neg = clip_tokens([hard_negative(c, s, rng) for c, s in zip(data['captions'], data['scenes'])])
    y_img, y_txt = attribute_labels(data['scenes'], data['captions'])
    probes = torch.nn.ModuleList(torch.nn.Linear(CLIP_CONFIG['embed_dim'], len(_VALUES[a])) for a in ATTRIBUTES) if probes else None
    clip_loss = ClipLoss()
    def loss(i):
        j = torch.randint(0, len(X), (batch_size,), generator=g)
        return clip_batch_loss(model, X[j], pos[j], neg[j], clip_loss, probes, y_img[j], y_txt[j])
    losses = train_loop([*model.parameters(), *(probes.parameters() if probes else [])], loss, steps, lr, 0.1, 'CLIP', progress)
    return model.eval().requires_grad_(False), losses

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

def diffusion_loss(
    unet, te, sched,
    z:Tensor,              # (B,16,16,16) scaled latents
    ids:Tensor,            # (B,77) caption token ids
    empty:Tensor,          # (77,) token ids of the empty caption
    g:torch.Generator,
    drop:float=0.1,        # share of captions replaced by the empty one
    snr_gamma:float=5.0,
)->Tensor:
    "Min-SNR-weighted v-prediction MSE of latents `z` conditioned on the text encoder's states of `ids` (a share `drop` emptied)."
    from diffusers.training_utils import compute_snr
    B = len(z)
    ids = torch.where((torch.rand(B, generator=g) < drop)[:, None], empty, ids)
    noise, t = torch.randn(z.shape, generator=g), torch.randint(0, sched.config.num_train_timesteps, (B,), generator=g)
    target = sched.get_velocity(z, noise, t) if sched.config.prediction_type == 'v_prediction' else noise
    err = F.mse_loss(unet(sched.add_noise(z, noise, t), t, te(ids).last_hidden_state).sample, target, reduction='none').mean((1, 2, 3))
    snr = compute_snr(sched, t)
    return (err * torch.clamp(snr, max=snr_gamma) / (snr + 1 if sched.config.prediction_type == 'v_prediction' else snr)).mean()

def train_generator(
    vae,
    schedule:dict,        # DDPMScheduler arguments                  # the trained autoencoder (frozen)
    data:dict,            # `world_data(...)`: web captions and their images
    steps:int=3000,       # optimizer steps
    batch_size:int=48,
    lr:float=1e-3,
    seed:int=0,
    progress:bool=True,
)->tuple:                 # (unet, text encoder, tokenizer, losses)
    "Train a UNet and a text encoder with the Min-SNR-weighted DDPM objective and caption dropout on `data`."
    set_seed(seed)
    unet, te, tok = build_unet(seed), build_text_encoder(seed + 1), clip_tokenizer_hf()
    sched, g = DDPMScheduler(**schedule), torch.Generator().manual_seed(seed)
    Z, ids, empty = encode_latents(vae, data['images'], fit_scale=True), caption_ids(tok, data['captions']), caption_ids(tok, [''])[0]
    def loss(i):
        j = torch.randint(0, len(Z), (batch_size,), generator=g)
        return diffusion_loss(unet, te, sched, Z[j], ids[j], empty, g)
    unet.train(); te.train()
    losses = train_loop([*unet.parameters(), *te.parameters()], loss, steps, lr, 1e-2, 'generator', progress)
    return unet.eval().requires_grad_(False), te.eval().requires_grad_(False), tok, losses

def _train_tower_variant(work, name, clip_name, schedule):
    if (work/name).exists(): return
    from diffusers import AutoencoderKL
    from vlm_grpo_nb.shapes_models import clip_text_encoder
    _train_clip_variant(work, clip_name, True)
    t0 = time.time(); vae = AutoencoderKL.from_pretrained(SHAPES_DIR/'generator'/'vae').float().eval().requires_grad_(False)
    te = clip_text_encoder(load_clip(work/clip_name))
    unet, tok, losses = M.train_generator(vae, te, world_data(30_000, 1), 3000, schedule=schedule)
    pipe = assemble_pipeline(vae, te, unet, tok); pipe.scheduler = DPMSolverMultistepScheduler(**schedule)
    save_generator(pipe, work/name); (work/f'{name}.json').write_text(json.dumps({'minutes': (time.time() - t0) / 60}))

def _train_clip_variant(work, name, probes):
    if (work/name).exists(): return
    t0 = time.time(); model, losses = train_clip(world_data(30_000, 2), 2500, probes=probes)
    save_clip(model, work/name); (work/f'{name}.json').write_text(json.dumps({'minutes': (time.time() - t0) / 60}))

def _train_gen_variant(work, name, schedule):
    if (work/name).exists(): return
    from diffusers import AutoencoderKL
    t0 = time.time(); vae = AutoencoderKL.from_pretrained(SHAPES_DIR/'generator'/'vae').float().eval().requires_grad_(False)
    unet, te, tok, losses = train_generator(vae, schedule, world_data(30_000, 1), 3000)
    pipe = assemble_pipeline(vae, te, unet, tok); pipe.scheduler = DPMSolverMultistepScheduler(**schedule)
    save_generator(pipe, work/name); (work/f'{name}.json').write_text(json.dumps({'minutes': (time.time() - t0) / 60}))

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
    ap.add_argument('--variants', nargs='+', default=['shipped', 'clip-swap', 'clip-probes', 'gen-joint', 'gen-zero-snr', 'gen-probes-tower'])
    ap.add_argument('--n', type=int, default=100); a = ap.parse_args()
    work = Path(a.work); work.mkdir(parents=True, exist_ok=True)
    clips = {'clip-swap': False, 'clip-probes': True}; gens = {'gen-joint': SCHEDULE, 'gen-zero-snr': ZERO_SNR, 'gen-probes-tower': ZERO_SNR}
    for v in a.variants:
        if v in clips: _train_clip_variant(work, v, clips[v])
        if v == 'gen-probes-tower': _train_tower_variant(work, v, 'clip-probes', gens[v])
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
