"""Our prompt trainer against TRL's GRPOTrainer, on the tiny prompt-rewriting setup (issue 6).

    python bench/trl_vs_ours.py [--what compare|overhead|noise|dedupe|before-after] [--steps 20] [--warmup 2] [--seeds 3]
                                [--threads 1] [--cpu 1] [--json FILE]

The tables and the exact commands that produced them are in bench/RESULTS.md.

Both trainers get the same tiny policy (the `tiny` preset's Qwen2 folder, loaded by path), the same tiny SD3 generator and
tiny CLIP reward, the same prompts in the same order, B=4 prompts x G=4 completions per step, max_new_tokens 25,
temperature 0.8 / top_p 0.9 / top_k 50, lr 3e-4 (constant), beta (kl_coef) 0.02, epsilon (clip_ratio) 0.2, 2 inner
iterations (grpo_epochs / num_iterations) over the whole batch, max_grad_norm 1, the reference model refreshed every 10
steps, no entropy bonus (TRL aggregates it differently for loss_type 'grpo', see tests/test_trl_parity.py).
TRL's reward function is written the way a user would write it: clean each completion, one batched pipeline call
for all completions (one torch.Generator, so independent noise per image), then the CLIP score.

Every run is a fresh child process (so that its peak resident memory is its own), pinned to the same CPU with the same
torch thread count; the parent alternates ours / TRL (and swaps the order for every other seed).

--what compare   ours vs TRL: completions/s, s/step by stage, peak RSS, reward after the run (mean over seeds)
--what overhead  ours and TRL with timing hooks: the share of step time outside model forward, backward,
                 generation, denoising, VAE decoding and CLIP encoding
--what noise     ours with same-noise groups vs independent noise: the reward curve over the same steps
--what dedupe    render time of a step's images when rewrites of a group repeat (ours renders each distinct one once)
--what before-after --baseline DIR   our trainer before (the vlm_grpo_nb package in DIR) and after this issue's changes
"""
import argparse, json, os, statistics, subprocess, sys, time, warnings
from collections import defaultdict
from contextlib import contextmanager

B, G = 4, 4                       # prompts per step, completions per prompt
EVAL_PROMPTS, EVAL_SEED = 32, 1234  # the common evaluation: 32 fixed prompts x G rewrites, fixed sampling and noise seeds


# ----------------------------------------------------------------------------------------------------- shared setup

def bench_config(seed:int, same_noise:bool=True):
    "The tiny preset, seeded, with the entropy bonus off (the one setting whose aggregation TRL does differently)."
    from vlm_grpo_nb.config import load_config
    return load_config(preset='tiny', **{'training_settings.seed': seed, 'training_settings.entropy_coef': 0.0,
                                         'generation_settings.image_generation.same_noise_per_group': same_noise})

def step_prompts(seed:int, n:int)->list[list[str]]:
    "The user prompts of each of `n` steps: our `PromptBatches` order, which TRL is fed unshuffled."
    from vlm_grpo_nb.data import load_prompts, PromptBatches
    pb = PromptBatches(load_prompts(), B, seed=seed)
    return [[r['user_prompt'] for r in pb[i]] for i in range(n)]

def mem()->dict:
    "Current and peak resident set size of this process, MiB (Linux /proc)."
    st = dict(l.split(':', 1) for l in open('/proc/self/status').read().splitlines() if ':' in l)
    return {'rss': int(st['VmRSS'].split()[0]) / 1024, 'peak': int(st['VmHWM'].split()[0]) / 1024}

def evaluate(model_state:dict, generator)->float:
    "Mean reward of a policy with these weights on fixed prompts, fixed sampling seed and fixed same-noise seeds."
    import torch
    from vlm_grpo_nb.data import load_prompts
    from vlm_grpo_nb.vlm_wrapper import VLMWrapper
    from vlm_grpo_nb.clip_reward import CLIPRewardCalculator
    cfg = bench_config(0)
    pol = VLMWrapper(config=cfg)
    pol.model.load_state_dict(model_state)
    prompts = [r['user_prompt'] for r in load_prompts()[::7][:EVAL_PROMPTS]]
    roll = pol.sample(prompts, G, generator=torch.Generator().manual_seed(EVAL_SEED))
    imgs = generator.generate_groups(list(roll.texts), G, seed=EVAL_SEED, same_noise=True)
    rr = CLIPRewardCalculator(config=cfg).calculate_rewards(imgs.tensors, list(roll.texts), [p for p in prompts for _ in range(G)],
                                                            group_size=G, flags=imgs.flags, update_stats=False)
    return torch.nanmean(rr.total).item()


# --------------------------------------------------------------------------------------------- compute-time hooks

class ComputeClock:
    "Seconds spent inside model compute (outermost region only, so nested calls are not counted twice), by kind."
    def __init__(self): self.depth, self.t0, self.kind, self.by = 0, 0.0, None, defaultdict(float)
    def enter(self, kind):
        if self.depth == 0: self.t0, self.kind = time.perf_counter(), kind
        self.depth += 1
    def exit(self):
        self.depth -= 1
        if self.depth == 0: self.by[self.kind] += time.perf_counter() - self.t0
    def total(self)->float: return sum(self.by.values())
    def wrap(self, obj, name:str, kind:str):
        "Count calls of `obj.name` as `kind`."
        f = getattr(obj, name)
        def timed(*a, **k):
            self.enter(kind)
            try: return f(*a, **k)
            finally: self.exit()
        setattr(obj, name, timed)
    def hook(self, module, kind:str):
        "Count `module`'s forward calls as `kind`."
        module.register_forward_pre_hook(lambda *a: self.enter(kind))
        module.register_forward_hook(lambda *a: self.exit())

def _wrap_fn(clock:ComputeClock, f, kind:str):
    def timed(*a, **k):
        clock.enter(kind)
        try: return f(*a, **k)
        finally: clock.exit()
    return timed

def instrument(clock:ComputeClock, call:ComputeClock, policy_model, ref_model, pipe, clip_model, logp_owner, logp_name):
    """Hook every model-compute entry point of one system, on two clocks.
    `clock` (strict): nn.Module forwards of the policy, reference, SD text encoders and denoiser, the VAE decode, CLIP's
    encode_image/encode_text, backward, and `generate` as a whole. `call` (call level): whole calls of `generate`, of
    the log-prob function (`logp_owner.logp_name`: our `VLMWrapper.log_probs`, TRL's `_get_per_token_logps_and_entropies`,
    i.e. forward plus log-softmax), of the diffusion pipeline (`pipe(...)`: denoising with its own tokenizers and
    scheduler), of CLIP's encoders, and backward."""
    import torch
    clock.wrap(policy_model, 'generate', 'generation'); call.wrap(policy_model, 'generate', 'generation')
    clock.hook(policy_model, 'policy forward')
    if ref_model is not None: clock.hook(ref_model, 'reference forward')
    call.wrap(logp_owner, logp_name, 'policy forward')
    torch.Tensor.backward = _wrap_fn(call, _wrap_fn(clock, torch.Tensor.backward, 'backward'), 'backward')
    for n in ('text_encoder', 'text_encoder_2', 'text_encoder_3'):
        if getattr(pipe, n, None) is not None: clock.hook(getattr(pipe, n), 'SD text encoders')
    clock.hook(pipe.transformer if hasattr(pipe, 'transformer') else pipe.unet, 'denoiser')
    clock.wrap(pipe.vae, 'decode', 'VAE decode')
    cls = type(pipe); cls.__call__ = _wrap_fn(call, cls.__call__, 'denoiser')
    for n in ('encode_image', 'encode_text'): clock.wrap(clip_model, n, 'CLIP encode'); call.wrap(clip_model, n, 'CLIP encode')

@contextmanager
def stage(clock:ComputeClock|None, acc:dict, name:str):
    "Add the wall seconds of the block to acc[name], and its compute seconds to acc[name + ' compute']."
    c0, t0 = clock.total() if clock else 0.0, time.perf_counter()
    try: yield
    finally:
        acc[name] = acc.get(name, 0.0) + time.perf_counter() - t0
        if clock: acc[name + ' compute'] = acc.get(name + ' compute', 0.0) + clock.total() - c0


# ---------------------------------------------------------------------------------------------------- our trainer

def run_ours(seed:int, steps:int, warmup:int, threads:int, profile:bool=False, same_noise:bool=True)->dict:
    import torch
    torch.set_num_threads(threads)
    from vlm_grpo_nb.config import set_seed
    from vlm_grpo_nb.vlm_wrapper import VLMWrapper
    from vlm_grpo_nb.sd_generator import SD3Generator
    from vlm_grpo_nb.clip_reward import CLIPRewardCalculator
    from vlm_grpo_nb.trainer import GRPOTrainer
    cfg = bench_config(seed, same_noise)
    set_seed(seed)
    policy, gen, rew = VLMWrapper(config=cfg), SD3Generator(config=cfg), CLIPRewardCalculator(config=cfg)
    tr = GRPOTrainer(policy, gen, rew, cfg)
    start = {k: v.detach().clone() for k, v in policy.model.state_dict().items()}   # evaluated after the peak is read
    clock, call = (ComputeClock(), ComputeClock()) if profile else (None, None)
    if profile:
        instrument(clock, call, policy.model, tr.ref_model, gen.pipe, rew.model, policy, 'log_probs')
        acc = {}
        for obj, name, st in ((policy, 'sample', 'sample'), (gen, 'generate_groups', 'render'), (rew, 'calculate_rewards', 'score'), (tr, '_update', 'update')):
            f = getattr(obj, name)
            def timed(*a, _f=f, _st=st, **k):
                with stage(clock, acc, _st): return _f(*a, **k)
            setattr(obj, name, timed)
    after_setup = mem()
    rows = []
    for i, prompts in enumerate(step_prompts(seed, warmup + steps)):
        if profile: acc.clear(); c0, by0, cc0 = clock.total(), dict(clock.by), call.total()
        t0 = time.perf_counter()
        m = tr.train_step(prompts)
        wall = time.perf_counter() - t0
        row = {'wall': wall, 'sample': m['time_sample'], 'render': m['time_render'], 'score': m['time_score'],
               'reference': m.get('time_reference', 0.0), 'update': m['time_update'], 'reward': m['reward_mean'],
               'fallbacks': m['fallbacks'], 'rewrite_tokens': m['rewrite_tokens'], 'rendered_images': m.get('rendered_images'),
               'zero_std': m['zero_std_frac'], 'group_std': tr.last['rewards'].total.view(-1, G).std(1).nanmean().item()}
        if profile:
            row['compute'], row['compute_call'] = clock.total() - c0, call.total() - cc0
            row['compute_by'] = {k: v - by0.get(k, 0.0) for k, v in clock.by.items()}
            row['stages'] = dict(acc)
        rows.append(row)
    peak = mem()
    return {'system': 'ours', 'seed': seed, 'rows': rows, 'mem_setup': after_setup, 'mem_end': peak,
            'eval': evaluate(policy.model.state_dict(), gen), 'eval0': evaluate(start, gen)}


# -------------------------------------------------------------------------------------------------- TRL's trainer

def run_trl(seed:int, steps:int, warmup:int, threads:int, profile:bool=False)->dict:
    import torch, tempfile
    torch.set_num_threads(threads)
    warnings.filterwarnings('ignore')
    from datasets import Dataset
    from transformers import TrainerCallback
    from trl import GRPOConfig, GRPOTrainer as TRLGRPOTrainer
    from vlm_grpo_nb.tiny import resolve_model
    from vlm_grpo_nb.config import step_seed
    from vlm_grpo_nb.vlm_wrapper import clean_rewrite
    from vlm_grpo_nb.sd_generator import SD3Generator
    from vlm_grpo_nb.clip_reward import CLIPRewardCalculator
    cfg = bench_config(seed)
    tr, gs, ig = cfg.training_settings, cfg.generation_settings, cfg.generation_settings.image_generation
    vg = gs.vlm_generation
    gen, calc = SD3Generator(config=cfg), CLIPRewardCalculator(config=cfg)
    pipe = gen.pipe
    clock, call = (ComputeClock(), ComputeClock()) if profile else (None, None)
    acc, rewards = {}, []

    # the reward function, as a TRL user writes it: clean, one batched pipeline call, CLIP score
    calls = [0]
    def clip_reward(prompts, completions, **kw):
        users = [p[-1]['content'] for p in prompts]
        texts = [clean_rewrite(c[0]['content'], u, cfg.token_settings.max_prompt_length, cfg.reward_settings.max_repeat_fraction)
                 for c, u in zip(completions, users)]
        with stage(clock, acc, 'render'):
            g = torch.Generator().manual_seed(step_seed(seed, calls[0], "noise")); calls[0] += 1
            imgs = pipe(prompt=texts, height=gen.height, width=gen.width, num_inference_steps=ig.num_inference_steps,
                        guidance_scale=ig.guidance_scale, generator=g, output_type='pt').images
        with stage(clock, acc, 'score'):
            r = calc.calculate_rewards(imgs.float().clamp(0, 1), texts, users).total
        rewards.append(torch.nanmean(r).item())
        return r.tolist()

    sys_prompt = gs.system_prompt
    rows_prompts = [p for batch in step_prompts(seed, warmup + steps) for p in batch]
    ds = Dataset.from_list([{'prompt': [{'role': 'system', 'content': sys_prompt}, {'role': 'user', 'content': p}]} for p in rows_prompts])
    args = GRPOConfig(
        output_dir=tempfile.mkdtemp(), report_to='none', use_cpu=True, bf16=False, seed=seed, disable_tqdm=True,
        save_strategy='no', max_steps=(warmup + steps) * tr.grpo_epochs, shuffle_dataset=False,
        per_device_train_batch_size=B * G, num_generations=G, steps_per_generation=1, gradient_accumulation_steps=1,
        max_completion_length=cfg.token_settings.max_new_tokens, temperature=vg.temperature, top_p=vg.top_p,
        top_k=vg.top_k, repetition_penalty=vg.repetition_penalty,
        learning_rate=tr.learning_rate, lr_scheduler_type='constant', weight_decay=tr.weight_decay, max_grad_norm=tr.max_grad_norm,
        beta=tr.kl_coef, epsilon=tr.clip_ratio, num_iterations=tr.grpo_epochs, loss_type=tr.loss_type,
        scale_rewards=tr.advantage_scale, use_bias_correction_kl=False, entropy_coef=0.0,
        sync_ref_model=True, ref_model_mixup_alpha=1.0, ref_model_sync_steps=tr.update_ref_model_freq * tr.grpo_epochs,
        gradient_checkpointing=False)
    trainer = TRLGRPOTrainer(model=resolve_model('tiny', 'policy'), reward_funcs=clip_reward, args=args, train_dataset=ds)

    # the stages: generation, reward (render + score), the no-grad log-prob passes (old and reference), the update
    for name, st in (('_generate', 'sample'), ('_generate_and_score_completions', 'collect'), ('training_step', 'training_step')):
        f = getattr(trainer, name)
        def timed(*a, _f=f, _st=st, **k):
            with stage(clock, acc, _st): return _f(*a, **k)
        setattr(trainer, name, timed)
    f_lp = trainer._get_per_token_logps_and_entropies
    def logps(*a, **k):
        with stage(clock, acc, 'reference' if not torch.is_grad_enabled() else 'train_forward'): return f_lp(*a, **k)
    trainer._get_per_token_logps_and_entropies = logps
    if profile: instrument(clock, call, trainer.model, trainer.ref_model, pipe, calc.model, trainer, '_get_per_token_logps_and_entropies')

    ticks, snaps = [], []
    class Tick(TrainerCallback):
        def on_train_begin(self, args, state, control, **kw):
            opt = kw['optimizer']; f = opt.step
            def step(*a, **k):
                with stage(clock, acc, 'optimizer'): return f(*a, **k)
            opt.step = step
            ticks.append(time.perf_counter()); snaps.append((dict(acc), clock.total() if clock else 0.0, dict(clock.by) if clock else {}, call.total() if call else 0.0))
        def on_step_end(self, args, state, control, **kw):
            if state.global_step % tr.grpo_epochs == 0:   # one generation round = one of our steps
                ticks.append(time.perf_counter()); snaps.append((dict(acc), clock.total() if clock else 0.0, dict(clock.by) if clock else {}, call.total() if call else 0.0))
    trainer.add_callback(Tick())
    after_setup = mem()
    trainer.train()
    peak = mem()
    rows = []
    for i in range(1, len(ticks)):
        a0, a1 = snaps[i - 1][0], snaps[i][0]
        d = {k: a1.get(k, 0.0) - a0.get(k, 0.0) for k in a1}
        upd = d.get('training_step', 0) - d.get('collect', 0) + d.get('optimizer', 0)
        row = {'wall': ticks[i] - ticks[i - 1], 'sample': d.get('sample', 0), 'render': d.get('render', 0),
               'score': d.get('score', 0), 'reference': d.get('reference', 0), 'update': upd, 'reward': rewards[i - 1]}
        if profile:
            row['compute'], row['compute_call'] = snaps[i][1] - snaps[i - 1][1], snaps[i][3] - snaps[i - 1][3]
            row['compute_by'] = {k: v - snaps[i - 1][2].get(k, 0.0) for k, v in snaps[i][2].items()}
            row['stages'] = d
        rows.append(row)
    return {'system': 'trl', 'seed': seed, 'rows': rows, 'mem_setup': after_setup, 'mem_end': peak,
            'eval': evaluate(trainer.model.state_dict(), gen)}


# ------------------------------------------------------------------------------------------ rendering duplicates once

def run_dedupe(threads:int, repeats:int=5):
    "Seconds to render B*G same-noise images of which only k rewrites are distinct, for several k (ours renders k)."
    import torch
    torch.set_num_threads(threads)
    from vlm_grpo_nb.sd_generator import SD3Generator
    gen = SD3Generator(config=bench_config(0))
    base = [f'a red fox in the snow, style {i}' for i in range(B * G)]
    print(f'\n{B} groups x {G} same-noise images; k distinct rewrites per group; median of {repeats} calls\n')
    print('| distinct rewrites per group | images rendered | s per call | vs all distinct |\n|---|---|---|---|')
    ref = None
    for k in (G, G // 2, 1):
        prompts = [base[g * G + (j % k)] for g in range(B) for j in range(G)]
        gen.generate_groups(prompts, G, seed=0)   # warm-up
        ts = []
        for r in range(repeats):
            t0 = time.perf_counter(); b = gen.generate_groups(prompts, G, seed=r); ts.append(time.perf_counter() - t0)
        t = statistics.median(ts); ref = ref or t
        print(f'| {k} | {b.n_rendered} | {t:.3f} | {t / ref:.2f} |')


# ----------------------------------------------------------------------------------------------------- the parent

def child(system:str, seed:int, a, baseline:str|None=None, **kw)->dict:
    "Run one system for one seed in a fresh process (with `baseline` first on the path, if given); return its JSON record."
    cmd = [sys.executable, __file__, '--child', system, '--seed', str(seed), '--steps', str(a.steps), '--warmup', str(a.warmup),
           '--threads', str(a.threads)] + [f'--{k.replace("_", "-")}' for k, v in kw.items() if v]
    env = {**os.environ, 'OMP_NUM_THREADS': str(a.threads), 'MKL_NUM_THREADS': str(a.threads), 'TOKENIZERS_PARALLELISM': 'false'}
    if baseline: env['PYTHONPATH'] = os.pathsep.join([os.path.abspath(baseline)] + [x for x in [os.environ.get('PYTHONPATH')] if x])
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if r.returncode: sys.exit(f'{system} seed {seed} failed:\n{r.stderr[-4000:]}')
    return json.loads(r.stdout.strip().splitlines()[-1])

def timed_rows(run:dict, warmup:int)->list[dict]: return run['rows'][warmup:]
def mean(xs): xs = list(xs); return sum(xs) / len(xs) if xs else float('nan')

STAGES = ('sample', 'render', 'score', 'reference', 'update')

def summary(runs:list[dict], warmup:int)->dict:
    "Per-system means over seeds (and over the timed steps within a seed)."
    rows = [r for run in runs for r in timed_rows(run, warmup)]
    s = {k: mean(r[k] for r in rows) for k in ('wall',) + STAGES}
    s['other'] = s['wall'] - sum(s[k] for k in STAGES)
    s['completions/s'] = B * G / s['wall']
    s['images rendered/step'] = mean(r.get('rendered_images') or B * G for r in rows)
    s['peak RSS MiB'] = mean(run['mem_end']['peak'] for run in runs)
    s['RSS after setup MiB'] = mean(run['mem_setup']['rss'] for run in runs)
    s['train reward, last 5 steps'] = mean(mean(r['reward'] for r in run['rows'][-5:]) for run in runs)
    s['eval reward after the run'] = mean(run['eval'] for run in runs)
    s['eval reward (sd over seeds)'] = statistics.stdev([run['eval'] for run in runs]) if len(runs) > 1 else 0.0
    return s

def print_compare(ours:list[dict], trl:list[dict], a, names=('ours', 'TRL')):
    so, st = summary(ours, a.warmup), summary(trl, a.warmup)
    n1, n2 = names
    print(f'\n{a.steps} timed steps after {a.warmup} warm-up steps, seeds {a.seed_list}; B={B} prompts x G={G} completions per step\n')
    print(f'| metric | {n1} | {n2} | {n1} / {n2} |\n|---|---|---|---|')
    keys = ['completions/s'] + [f's/step {k}' for k in ('wall',) + STAGES + ('other',)] + \
           ['images rendered/step', 'peak RSS MiB', 'RSS after setup MiB', 'train reward, last 5 steps', 'eval reward after the run', 'eval reward (sd over seeds)']
    for k in keys:
        kk = k.removeprefix('s/step ')
        label = 's/step total (wall)' if kk == 'wall' else ('s/step ' + ('reference (+old) log-probs' if kk == 'reference' else kk) if k.startswith('s/step') else k)
        o, t = so[kk], st[kk]
        ratio = f'{o / t:.2f}' if t and not k.startswith('eval reward (sd') and not k.startswith('train reward') and not k.startswith('eval reward after') else ''
        print(f'| {label} | {o:.4g} | {t:.4g} | {ratio} |')
    print(f"\neval reward of the starting policy: {ours[0]['eval0']:.4f}")
    print_curve({n1: ours, n2: trl}, a)
    print('\nper seed: ' + '; '.join(f"seed {o['seed']}: eval {n1} {o['eval']:.4f} / {n2} {t['eval']:.4f}, "
                                     f"s/step {n1} {mean(r['wall'] for r in timed_rows(o, a.warmup)):.3f} / {n2} {mean(r['wall'] for r in timed_rows(t, a.warmup)):.3f}"
                                     for o, t in zip(ours, trl)))

COMPUTE = ('generation', 'policy forward', 'reference forward', 'backward', 'SD text encoders', 'denoiser', 'VAE decode', 'CLIP encode')

NESTED = {'collect': ('sample', 'render', 'score', 'reference'), 'training_step': ('collect', 'train_forward')}
NAMES = {'collect': 'collect (rest)', 'training_step': 'update (rest of training_step)', 'reference': 'reference+old log-probs',
         'train_forward': 'update log-probs'}

def print_overhead(runs:dict, a):
    print(f'\nshare of step time, {a.steps} timed steps after {a.warmup} warm-up, seeds {a.seed_list}\n')
    print('| system | s/step | ' + ' | '.join(COMPUTE) + ' | overhead, strict (s/step) | share | overhead, call level (s/step) | share |')
    print('|---|---|' + '---|' * len(COMPUTE) + '---|---|---|---|')
    for name, rs in runs.items():
        rows = [r for run in rs for r in timed_rows(run, a.warmup)]
        wall = mean(r['wall'] for r in rows)
        by = {k: mean(r['compute_by'].get(k, 0.0) for r in rows) for k in COMPUTE}
        ov = wall - sum(by.values())
        ovc = wall - mean(r['compute_call'] for r in rows)
        print(f'| {name} | {wall:.3f} | ' + ' | '.join(f'{by[k]:.3f}' for k in COMPUTE) + f' | {ov:.4f} | {100 * ov / wall:.1f}% '
              f'| {ovc:.4f} | {100 * ovc / wall:.1f}% |')
    print('\noverhead by stage (s/step; stage wall time minus the model compute inside it)\n')
    for name, rs in runs.items():
        rows = [r for run in rs for r in timed_rows(run, a.warmup)]
        names = sorted({k for r in rows for k in r['stages'] if not k.endswith(' compute')})
        wall = mean(r['wall'] for r in rows)
        parts = {k: mean(r['stages'].get(k, 0) - r['stages'].get(k + ' compute', 0) for r in rows) for k in names}
        incl = dict(parts)
        for parent, kids in NESTED.items():   # TRL's stages nest: report each one's own share
            if parent in parts: parts[parent] = incl[parent] - sum(incl.get(k, 0.0) for k in kids)
        parts = {NAMES.get(k, k): v for k, v in parts.items()}
        parts['outside the stages'] = mean(r['wall'] - r['compute'] for r in rows) - sum(parts.values())
        print(f'- {name}: ' + ', '.join(f'{k} {v:.4f}' for k, v in parts.items()))

def print_curve(runs:dict, a):
    "Training reward (mean over the step's B*G images, each system's own noise) by block of steps, mean over seeds."
    n = a.warmup + a.steps
    w = max(1, n // 6)
    print(f'\ntraining reward by block of steps (mean over the block and over seeds {a.seed_list})\n')
    print('| steps | ' + ' | '.join(runs) + ' |\n|---|' + '---|' * len(runs))
    for s in range(0, n, w):
        print(f'| {s + 1}-{min(s + w, n)} | ' + ' | '.join(f"{mean(mean(r['reward'] for r in run['rows'][s:s + w]) for run in rs):.4f}"
                                                         for rs in runs.values()) + ' |')

def print_noise(same:list[dict], indep:list[dict], a):
    n = a.warmup + a.steps
    print(f'\nours, {n} steps, same-noise groups vs independent noise per image; seeds {a.seed_list}')
    print_curve({'same noise': same, 'independent noise': indep}, a)
    ev = lambda runs: mean(run['eval'] for run in runs)
    sd = lambda runs: statistics.stdev([run['eval'] for run in runs]) if len(runs) > 1 else 0.0
    print(f"\n| eval reward (fixed prompts, sampling and noise) | same noise | independent noise |\n|---|---|---|")
    print(f"| starting policy | {same[0]['eval0']:.4f} | {indep[0]['eval0']:.4f} |")
    print(f'| after {n} steps, mean over seeds | {ev(same):.4f} | {ev(indep):.4f} |')
    print(f'| sd over seeds | {sd(same):.4f} | {sd(indep):.4f} |')
    print(f"| groups with all-equal rewards (zero_std_frac) | {mean(r['zero_std'] for run in same for r in run['rows']):.3f} | "
          f"{mean(r['zero_std'] for run in indep for r in run['rows']):.3f} |")
    print(f"| reward std within a group, mean | {mean(r['group_std'] for run in same for r in run['rows']):.4f} | "
          f"{mean(r['group_std'] for run in indep for r in run['rows']):.4f} |")
    print('\nper seed eval: ' + '; '.join(f"seed {s['seed']}: same {s['eval']:.4f} / indep {i['eval']:.4f}" for s, i in zip(same, indep)))

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--what', choices=('compare', 'overhead', 'noise', 'dedupe', 'before-after'), default='compare')
    ap.add_argument('--baseline', default=None, help="before-after: a folder holding the 'before' vlm_grpo_nb package")
    ap.add_argument('--steps', type=int, default=20, help='timed steps per run (after the warm-up)')
    ap.add_argument('--warmup', type=int, default=2, help='untimed steps first (they do train)')
    ap.add_argument('--seeds', type=int, default=3, help='seeds 0..seeds-1')
    ap.add_argument('--threads', type=int, default=1, help='torch threads in every run')
    ap.add_argument('--cpu', type=int, default=None, help='pin every run to this CPU (taskset)')
    ap.add_argument('--json', default=None, help='also write the raw records here')
    ap.add_argument('--child', choices=('ours', 'trl'), help=argparse.SUPPRESS)
    ap.add_argument('--seed', type=int, help=argparse.SUPPRESS)
    ap.add_argument('--profile', action='store_true', help=argparse.SUPPRESS)
    ap.add_argument('--independent-noise', action='store_true', help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child == 'ours':
        print(json.dumps(run_ours(a.seed, a.steps, a.warmup, a.threads, a.profile, not a.independent_noise))); return
    if a.child == 'trl':
        print(json.dumps(run_trl(a.seed, a.steps, a.warmup, a.threads, a.profile))); return
    if a.cpu is not None: os.sched_setaffinity(0, {a.cpu})
    if a.what == 'dedupe':
        import torch; torch.set_num_threads(a.threads); return run_dedupe(a.threads)
    a.seed_list = list(range(a.seeds))
    print(f'machine: {os.cpu_count()} CPUs (runs pinned to {sorted(os.sched_getaffinity(0))}), torch threads {a.threads}, '
          f'load average {os.getloadavg()[0]:.2f} at start', flush=True)
    rec = {}
    for s in a.seed_list:
        if a.what == 'noise': pair = (('same', 'ours', {}), ('indep', 'ours', {'independent_noise': True}))
        elif a.what == 'before-after': pair = (('before', 'ours', {'baseline': a.baseline}), ('after', 'ours', {}))
        else: pair = (('ours', 'ours', {'profile': a.what == 'overhead'}), ('trl', 'trl', {'profile': a.what == 'overhead'}))
        for name, system, kw in (pair if s % 2 == 0 else pair[::-1]):
            t0 = time.perf_counter()
            rec.setdefault(name, []).append(child(system, s, a, **kw))
            print(f'  {name} seed {s}: {time.perf_counter() - t0:.0f}s', file=sys.stderr, flush=True)
    print(f'load average {os.getloadavg()[0]:.2f} at the end')
    if a.json: json.dump(rec, open(a.json, 'w'))
    if a.what == 'compare': print_compare(rec['ours'], rec['trl'], a)
    elif a.what == 'overhead': print_overhead(rec, a)
    elif a.what == 'before-after': print_compare(rec['after'], rec['before'], a, names=('after', 'before'))
    else: print_noise(rec['same'], rec['indep'], a)

if __name__ == '__main__': main()
