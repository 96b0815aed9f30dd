"""GRPO steps on a GPU at the real models' sizes: random weights built from the published configs, nothing downloaded.

    python bench/gpu_real_size.py [--rows ...] [--steps 3] [--work /tmp/vlm_grpo_real]
    python bench/gpu_real_size.py --small --device cpu --steps 1     # the same code at toy sizes, to check it on a CPU

Builds random-weight copies of the default config's models and their alternatives into local folders, with the same
architectures, widths and vocabularies as the real checkpoints: Qwen2.5 0.5B, 1.5B and 7B policies, Stable Diffusion
1.5 and Stable Diffusion 3 medium (its two CLIP text encoders, without T5, as the tiny preset), and open_clip ViT-L-14
as the reward. Each row then loads them through the same local-folder code a user's download goes through and times
`GRPOTrainer.train_step`, the code path of `vlm_grpo train`, after one warm-up step. Prints a markdown table: seconds
per step and per stage, peak GPU memory, and whether the loss stayed finite.

The random policies sample only the tiny tokenizer's 1,024 tokens (`generation_config.suppress_tokens`); their
logits still span the real vocabulary. Rewards of random models mean nothing: this measures shapes, dtypes, memory
and speed, not learning.
"""
import argparse, gc, json, math, sys, time, traceback
from pathlib import Path
import torch

QWEN = {  # published Qwen2.5 configs (hidden, intermediate, layers, heads, kv heads, vocab, tied embeddings)
    'qwen2.5-0.5b': (896, 4864, 24, 14, 2, 151936, True),
    'qwen2.5-1.5b': (1536, 8960, 28, 12, 2, 151936, True),
    'qwen2.5-7b':   (3584, 18944, 28, 28, 4, 152064, False),
}
SMALL_QWEN = (64, 128, 2, 4, 2, 151936, True)  # --small: toy widths, the real vocabulary

def build_policy(name:str, dest:Path, small:bool, device:str):
    "A Qwen2.5-size policy with random weights and the tiny policy's tokenizer and chat template."
    from transformers import AutoTokenizer, Qwen2Config, Qwen2ForCausalLM, GenerationConfig
    from vlm_grpo_nb.tiny import tiny_path
    tok = AutoTokenizer.from_pretrained(tiny_path('policy'))
    h, i, l, a, kv, vocab, tied = SMALL_QWEN if small else QWEN[name]
    cfg = Qwen2Config(vocab_size=vocab, hidden_size=h, intermediate_size=i, num_hidden_layers=l, num_attention_heads=a,
                      num_key_value_heads=kv, max_position_embeddings=32768, rope_theta=1e6, rms_norm_eps=1e-6,
                      tie_word_embeddings=tied, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id, bos_token_id=None)
    with torch.device(device): model = Qwen2ForCausalLM(cfg).to(torch.bfloat16)
    model.generation_config = GenerationConfig(eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
                                               suppress_tokens=list(range(len(tok), vocab)))
    model.save_pretrained(dest); tok.save_pretrained(dest)

def _clip_text(small:bool, big:bool=False, projection:bool=False):
    "CLIP ViT-L/14's text encoder (or, `big`, OpenCLIP ViT-bigG/14's), as SD 1.5 and SD 3 use them."
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection
    from vlm_grpo_nb.tiny import _TEXT_CFG
    size = dict(hidden_size=32, intermediate_size=37, num_attention_heads=4, num_hidden_layers=2) if small else \
        dict(hidden_size=1280, intermediate_size=5120, num_attention_heads=20, num_hidden_layers=32) if big else \
        dict(hidden_size=768, intermediate_size=3072, num_attention_heads=12, num_hidden_layers=12)
    cfg = CLIPTextConfig(**{**_TEXT_CFG, **size, 'hidden_act': 'gelu' if big else 'quick_gelu'}, projection_dim=size['hidden_size'])
    return (CLIPTextModelWithProjection if projection else CLIPTextModel)(cfg)

def _vae(small:bool, **kw):
    "The SD VAE (`kw`: latent channels, size, SD 3's scaling); `small`: the tiny preset's, 4 latent channels."
    from diffusers import AutoencoderKL
    from vlm_grpo_nb.tiny import _tiny_vae
    if small: return _tiny_vae(**{k: v for k, v in kw.items() if k not in ('latent_channels', 'sample_size')})
    return AutoencoderKL(block_out_channels=(128, 256, 512, 512), down_block_types=['DownEncoderBlock2D']*4,
                         up_block_types=['UpDecoderBlock2D']*4, layers_per_block=2, **kw)

def build_generator(name:str, dest:Path, small:bool, device:str):
    "A Stable Diffusion 1.5 or 3-medium pipeline at the real size (random weights, the real CLIP tokenizer)."
    from transformers import CLIPTokenizer
    from diffusers import (DDIMScheduler, FlowMatchEulerDiscreteScheduler, SD3Transformer2DModel, StableDiffusion3Pipeline,
                           StableDiffusionPipeline, UNet2DConditionModel)
    from vlm_grpo_nb.tiny import write_clip_tokenizer, _tiny_mmdit, _tiny_unet
    tok = CLIPTokenizer.from_pretrained(write_clip_tokenizer(dest.parent/f'{dest.name}-tokenizer'))
    with torch.device(device):
        if name == 'sd15':
            unet = _tiny_unet() if small else UNet2DConditionModel(sample_size=64, cross_attention_dim=768, attention_head_dim=8)
            pipe = StableDiffusionPipeline(
                vae=_vae(small, sample_size=512), text_encoder=_clip_text(small), tokenizer=tok, unet=unet,
                scheduler=DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule='scaled_linear', clip_sample=False,
                                        set_alpha_to_one=False, steps_offset=1),
                safety_checker=None, feature_extractor=None, requires_safety_checker=False)
        else:
            mmdit = _tiny_mmdit() if small else SD3Transformer2DModel(
                sample_size=128, patch_size=2, in_channels=16, out_channels=16, num_layers=24, attention_head_dim=64,
                num_attention_heads=24, joint_attention_dim=4096, caption_projection_dim=1536, pooled_projection_dim=2048,
                pos_embed_max_size=192)
            vae = _vae(small, shift_factor=0.0609, scaling_factor=1.5035, use_quant_conv=False, use_post_quant_conv=False,
                       **({} if small else dict(latent_channels=16, sample_size=1024)))
            pipe = StableDiffusion3Pipeline(transformer=mmdit, scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0), vae=vae,
                                            text_encoder=_clip_text(small, projection=True), tokenizer=tok,
                                            text_encoder_2=_clip_text(small, big=True, projection=True), tokenizer_2=tok,
                                            text_encoder_3=None, tokenizer_3=None)
    pipe.to(dtype=torch.bfloat16).save_pretrained(dest)

def build(work:Path, small:bool, device:str, names:set):
    "Build every model `names` asks for into `work` (kept: a second run reuses them)."
    for name in sorted(names):
        dest = model_dir(work, name, small)
        if (dest/'done').exists(): continue
        t0 = time.time()
        (build_policy if name in QWEN else build_generator)(name, dest, small, device)
        (dest/'done').write_text(''); print(f'built {name} in {time.time() - t0:.0f} s', flush=True)

def model_dir(work:Path, name:str, small:bool)->Path:
    "Where model `name` is built: toy (`--small`) and real-size builds never share a folder."
    return work/('small' if small else 'real')/name

def real(policy, generator, **kw):
    "A row of real-size models: policy, generator, a random ViT-L-14 reward; 4 prompts x 4 rewrites, 512 px, 20 sampling steps."
    return {'models': (policy, generator), 'preset': None, **{
        'model_settings.vlm_model': policy, 'model_settings.sd_model': generator, 'model_settings.clip_model': 'ViT-L-14',
        'model_settings.clip_pretrained': '', 'generation_settings.image_generation.height': 512,
        'generation_settings.image_generation.width': 512, 'generation_settings.image_generation.num_inference_steps': 20,
        'generation_settings.image_generation.batch_size': 16, 'training_settings.batch_size': 4, 'training_settings.group_size': 4,
        **kw}}

ROWS = {
    'shapes preset, float32': {'models': (), 'preset': 'shapes', 'device_settings.policy_dtype': 'float32',
                               'generation_settings.image_generation.dtype': 'float32'},
    'shapes preset, auto dtypes': {'models': (), 'preset': 'shapes'},
    'Qwen2.5-0.5B + SD 1.5': real('qwen2.5-0.5b', 'sd15'),
    'Qwen2.5-0.5B + SD 3 medium': real('qwen2.5-0.5b', 'sd3-medium'),
    'Qwen2.5-1.5B + SD 3 medium': real('qwen2.5-1.5b', 'sd3-medium'),
    'Qwen2.5-7B LoRA r16 + SD 3 medium': real('qwen2.5-7b', 'sd3-medium', **{'model_settings.use_lora': True}),
    'Qwen2.5-7B full, checkpointing + SD 3 medium': real('qwen2.5-7b', 'sd3-medium', **{'model_settings.gradient_checkpointing': True}),
}

def run_row(name:str, a)->dict:
    "Build the row's trainer on `a.device`, one warm-up step, `a.steps` timed steps."
    from vlm_grpo_nb.config import load_config, set_seed, apply_cpu_threads, ASSETS
    from vlm_grpo_nb.vlm_wrapper import VLMWrapper
    from vlm_grpo_nb.sd_generator import SD3Generator
    from vlm_grpo_nb.clip_reward import CLIPRewardCalculator
    from vlm_grpo_nb.trainer import GRPOTrainer
    from vlm_grpo_nb.data import load_prompts, PromptBatches
    spec = dict(ROWS[name]); models, preset = spec.pop('models'), spec.pop('preset')
    over = {**{f'device_settings.{k}': a.device for k in ('policy', 'generator', 'reward')}, **spec}
    for m in models: over['model_settings.vlm_model' if m in QWEN else 'model_settings.sd_model'] = str(model_dir(a.work, m, a.small))
    if not preset: over['data_settings.train_file'] = str(ASSETS/'shapes'/'train_prompts.jsonl')  # world prompts: any text will do
    if a.small and not preset: over.update({'generation_settings.image_generation.height': 64, 'generation_settings.image_generation.width': 64,
                                            'generation_settings.image_generation.num_inference_steps': 2, 'model_settings.clip_model': 'tiny'})
    cfg = load_config(preset=preset, **over); apply_cpu_threads(cfg); set_seed(cfg.training_settings.seed)
    gc.collect()
    if a.device.startswith('cuda'): torch.cuda.empty_cache(); torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    trainer = GRPOTrainer(VLMWrapper(config=cfg), SD3Generator(config=cfg), CLIPRewardCalculator(config=cfg), cfg)
    load = time.perf_counter() - t0
    bs = cfg.training_settings.batch_size
    batches = PromptBatches(load_prompts(cfg.data_settings.train_file, 'train'), bs, seed=0)
    prompts = lambda i: [r['user_prompt'] for r in batches[i]]
    trainer.train_step(prompts(0))
    if a.device.startswith('cuda'): torch.cuda.synchronize()
    t0 = time.perf_counter(); ms = [trainer.train_step(prompts(1 + i)) for i in range(a.steps)]
    if a.device.startswith('cuda'): torch.cuda.synchronize()
    dt = (time.perf_counter() - t0) / a.steps
    stages = {k.removeprefix('time_'): sum(m[k] for m in ms) / a.steps for k in ms[0] if k.startswith('time_') and k != 'time_step'}
    peak = torch.cuda.max_memory_allocated() / 2**30 if a.device.startswith('cuda') else float('nan')
    finite = all(math.isfinite(m['loss']) for m in ms)
    del trainer
    return {'row': name, 'load_s': load, 's_per_step': dt, 'completions_per_s': bs * cfg.training_settings.group_size / dt,
            'stages': stages, 'peak_gib': peak, 'loss_finite': finite, 'reward': sum(m.get('reward_mean', float('nan')) for m in ms) / a.steps}

def table(rs:list[dict])->str:
    keys = list(next((r['stages'] for r in rs if 'stages' in r), {}))
    out = ['| row | load s | s/step | completions/s | peak GPU GiB | loss finite | ' + ' | '.join(keys) + ' |',
           '|---|---|---|---|---|---|' + '---|' * len(keys)]
    for r in rs:
        if 'error' in r: out.append(f"| {r['row']} | failed: {r['error']} |"); continue
        out.append(f"| {r['row']} | {r['load_s']:.1f} | {r['s_per_step']:.2f} | {r['completions_per_s']:.1f} | {r['peak_gib']:.1f} | "
                   f"{r['loss_finite']} | " + ' | '.join(f"{r['stages'].get(k, float('nan')):.2f}" for k in keys) + ' |')
    return '\n'.join(out)

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--rows', nargs='+', default=list(ROWS), choices=list(ROWS))
    ap.add_argument('--steps', type=int, default=3, help='timed steps per row, after one warm-up step')
    ap.add_argument('--device', default='cuda'); ap.add_argument('--work', type=Path, default=Path('/tmp/vlm_grpo_real'))
    ap.add_argument('--small', action='store_true', help='toy widths (the real vocabulary), to check the script on a CPU')
    ap.add_argument('--json', type=Path, help='also write the rows here')
    a = ap.parse_args()
    if a.device.startswith('cuda') and not torch.cuda.is_available(): sys.exit('no CUDA device: pass --device cpu --small to check the script')
    build(a.work, a.small, 'cpu' if a.small else a.device, {m for r in a.rows for m in ROWS[r]['models']})
    rs = []
    for name in a.rows:
        try: rs.append(run_row(name, a))
        except Exception as e:  # a row that cannot run (out of memory, say) is reported in the table, the rest still run
            traceback.print_exc(); rs.append({'row': name, 'error': f'{type(e).__name__}: {str(e).splitlines()[0][:120]}'})
        print(rs[-1], flush=True)
        if a.json: a.json.write_text(json.dumps(rs, indent=1))
    dev = torch.cuda.get_device_name() if a.device.startswith('cuda') else a.device
    print(f"\n{dev}, torch {torch.__version__}; {a.steps} timed steps per row after one warm-up; stage columns: seconds per step\n")
    print(table(rs))

if __name__ == '__main__': main()
