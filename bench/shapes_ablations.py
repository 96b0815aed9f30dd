"""GRPO ablations in ShapesWorld, measured by the pixel judge on held-out prompts.

    python bench/shapes_ablations.py [--steps 60] [--seeds 0 1 2] [--only base kl0 ...] [--out bench/ablations]

Every variant trains the shipped supervised policy for the same number of steps (same completions per step) from the
`shapes` preset, and reports the judge's score of the trained policy on the validation prompts (mean and standard
deviation over seeds), the change from the supervised policy, the validation reward of the rewrites, and a Welch
t-test of each variant against its reference (the base; for per-prompt statistics on 40 prompts, group statistics on them) for both.
Variants: same-noise groups vs independent noise, group size 4 vs 8 (batch 8x4 vs 4x8), KL coefficient 0.02 vs 0,
group statistics vs per-prompt running statistics. Per-prompt statistics differ from the group's only when a prompt comes
back: a run sees each of the 1,500 training prompts at most once in its first 187 steps, so the last two variants train
on the first 40 training prompts (each seen 10 times in 50 steps), with group and with per-prompt statistics.
"""
import argparse, json, time
from pathlib import Path
import numpy as np

VARIANTS = {
    'base':            {},
    'independent noise': {'generation_settings.image_generation.same_noise_per_group': False},
    'group size 8':    {'training_settings.batch_size': 4, 'training_settings.group_size': 8},
    'kl 0':            {'training_settings.kl_coef': 0.0},
    'per-prompt stats': {'training_settings.per_prompt_stats': True},
    'group stats, 40 prompts': {'train_prompts': 40},
    'per-prompt stats, 40 prompts': {'training_settings.per_prompt_stats': True, 'train_prompts': 40},
}

REFERENCE = {'per-prompt stats, 40 prompts': 'group stats, 40 prompts'}  # what a variant is tested against; else 'base'

def first_prompts(n:int, out:Path)->str:
    "A JSONL file of the shipped shapes preset's first `n` training prompts, written into `out`; its path."
    from vlm_grpo_nb.config import load_config
    from vlm_grpo_nb.data import load_prompts, save_jsonl
    f = out/f'train_prompts_{n}.jsonl'
    if not f.exists(): save_jsonl(load_prompts(load_config(preset='shapes').data_settings.train_file)[:n], f)
    return str(f)

def run(name, seed, steps, out):
    from vlm_grpo_nb.system import VLMGRPOSystem
    kw = dict(VARIANTS[name])
    if n := kw.pop('train_prompts', None): kw['data_settings.train_file'] = first_prompts(n, out)
    kw = {**kw, 'training_settings.seed': seed, 'training_settings.num_iterations': steps,
          'training_settings.validation_freq': steps, 'training_settings.checkpoint_freq': steps,
          'output_settings.wandb.enabled': False, 'output_settings.save_images': False, 'output_settings.plots': False}
    t0 = time.time()
    res = VLMGRPOSystem(preset='shapes', output_dir=out/f"{name.replace(' ', '_')}-s{seed}", **kw).run_training(progress=False)
    return {'variant': name, 'seed': seed, 'minutes': (time.time() - t0) / 60, 'before': res['judge']['before']['ok'],
            'after': res['judge']['after']['ok'], 'oracle': res['judge']['oracle']['ok'], 'reward_after': res['final']['reward_rewrite']}

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--steps', type=int, default=60); ap.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    ap.add_argument('--only', nargs='+', default=list(VARIANTS)); ap.add_argument('--out', default='bench/ablations')
    a = ap.parse_args(); out = Path(a.out); out.mkdir(parents=True, exist_ok=True)
    from scipy.stats import ttest_ind
    rows = []
    for name in a.only:
        for s in a.seeds:
            f = out/f"{name.replace(' ', '_')}-s{s}.json"
            r = json.loads(f.read_text()) if f.exists() else run(name, s, a.steps, out)
            f.write_text(json.dumps(r)); rows.append(r); print(r, flush=True)
    after = {n: np.array([r['after'] for r in rows if r['variant'] == n]) for n in a.only}
    print(f"\n{a.steps} GRPO steps per run, seeds {a.seeds}; judge score of the trained policy on the validation prompts\n")
    rew = {n: np.array([r['reward_after'] for r in rows if r['variant'] == n]) for n in a.only}
    print('| variant | judge score after | change from SFT | vs reference (Welch t-test) | validation reward after | vs reference (Welch t-test) | minutes per run |\n|---|---|---|---|---|---|---|')
    for n in a.only:
        rs = [r for r in rows if r['variant'] == n]
        d, ref = np.array([r['after'] - r['before'] for r in rs]), REFERENCE.get(n, 'base')
        p = '' if n == ref or ref not in after else f"p = {ttest_ind(after[n], after[ref], equal_var=False).pvalue:.2f}"
        pr = '' if n == ref or ref not in rew else f"p = {ttest_ind(rew[n], rew[ref], equal_var=False).pvalue:.2f}"
        print(f"| {n} | {after[n].mean():.1%} ± {after[n].std(ddof=1):.1%} | {d.mean():+.1%} ± {d.std(ddof=1):.1%} | {p} | "
              f"{rew[n].mean():.4f} ± {rew[n].std(ddof=1):.4f} | {pr} | {np.mean([r['minutes'] for r in rs]):.1f} |")

if __name__ == '__main__': main()
