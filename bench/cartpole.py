"""CartPole-v1: the GRPO reference agent (vlm_grpo_nb.cartpole, tuned defaults) against Stable-Baselines3 PPO with the
RL-Zoo hyper-parameters, side by side, seed by seed.

Both are scored the same way: every 5,000 environment steps, the mean return of 20 deterministic (argmax) episodes
from the same fixed reset seeds (`vlm_grpo_nb.cartpole.evaluate_policy`), stopping at the first score >= 475.
Reported: the env steps and wall seconds (evaluations included) to that first score, per seed and as medians, and
the ratio GRPO/PPO. GRPO's env steps are every step of every episode it collected (all episodes of each group).

    OMP_NUM_THREADS=1 nice -n 10 python bench/cartpole.py --seeds 0 1 2 3 4 --max-steps 200000
"""
from __future__ import annotations
import argparse, os, platform, time, warnings
import numpy as np
import torch

from vlm_grpo_nb.cartpole import CartPoleConfig, train_cartpole, evaluate_policy

ZOO_TIMESTEPS = 100_000  # RL-Zoo's n_timesteps for CartPole-v1: the horizon of its linear lr and clip schedules

def linear(initial:float, horizon:int, total:int):
    "RL-Zoo's `lin_<initial>` schedule over `horizon` steps, for a run of `total` steps (SB3 passes progress remaining)."
    return lambda progress_remaining: initial * max(0.0, 1 - (1 - progress_remaining) * total / horizon)

def run_grpo(seed:int, max_steps:int, eval_every:int, target:float)->dict:
    hist = train_cartpole(CartPoleConfig(seed=seed), max_env_steps=max_steps, eval_every=eval_every, progress=False,
                          callback=lambda r: r.get('eval_return', 0) >= target)
    hit = next((r for r in hist if r.get('eval_return', 0) >= target), None)
    return dict(steps=hit and hit['env_steps'], wall=hit and hit['wall_s'], final=hist.evals()[-1][1], last_steps=hist[-1]['env_steps'])

def run_ppo(seed:int, max_steps:int, eval_every:int, target:float)->dict:
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.callbacks import BaseCallback

    class EvalEvery(BaseCallback):
        "EvalCallback-like: every `eval_every` total env steps, score 20 deterministic episodes; stop at `target`."
        def __init__(self):
            super().__init__(); self.next, self.evals, self.hit = eval_every, [], None
        def _on_training_start(self): self.t0 = time.time()
        def _on_step(self)->bool:
            if self.num_timesteps < self.next: return True
            while self.next <= self.num_timesteps: self.next += eval_every
            score = evaluate_policy(lambda obs: self.model.predict(obs, deterministic=True)[0])
            self.evals.append((self.num_timesteps, score))
            if score >= target:
                self.hit = (self.num_timesteps, time.time() - self.t0); return False
            return True

    env = make_vec_env('CartPole-v1', n_envs=8, seed=seed)
    model = PPO('MlpPolicy', env, n_steps=32, batch_size=256, gae_lambda=0.8, gamma=0.98, n_epochs=20, ent_coef=0.0,
                learning_rate=linear(1e-3, ZOO_TIMESTEPS, max_steps), clip_range=linear(0.2, ZOO_TIMESTEPS, max_steps),
                seed=seed, device='cpu', verbose=0)
    cb = EvalEvery()
    model.learn(max_steps, callback=cb)
    return dict(steps=cb.hit and cb.hit[0], wall=cb.hit and cb.hit[1], final=cb.evals[-1][1] if cb.evals else float('nan'),
                last_steps=model.num_timesteps)

def fmt(x, f='{:,.0f}'): return 'not solved' if x is None else f.format(x)

def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2, 3, 4])
    p.add_argument('--max-steps', type=int, default=200_000)
    p.add_argument('--eval-every', type=int, default=5_000)
    p.add_argument('--target', type=float, default=475.0)
    a = p.parse_args()
    torch.set_num_threads(1)
    warnings.filterwarnings('ignore')
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPU cores, torch threads 1, "
          f"GPU: {'yes' if torch.cuda.is_available() else 'no'}; torch {torch.__version__}")
    print(CartPoleConfig())
    rows = []
    for s in a.seeds:
        g = run_grpo(s, a.max_steps, a.eval_every, a.target)
        q = run_ppo(s, a.max_steps, a.eval_every, a.target)
        rows.append((s, g, q))
        print(f"seed {s}: GRPO steps {fmt(g['steps'])} ({fmt(g['wall'], '{:.1f}')} s), "
              f"PPO steps {fmt(q['steps'])} ({fmt(q['wall'], '{:.1f}')} s)", flush=True)

    def med(xs): return None if any(x is None for x in xs) else float(np.median(xs))
    def ratio(x, y): return '-' if x is None or y is None else f'{x / y:.2f}'
    out = ['| seed | GRPO env steps | PPO env steps | steps GRPO/PPO | GRPO wall s | PPO wall s | wall GRPO/PPO |',
           '|---|---|---|---|---|---|---|']
    for s, g, q in rows:
        out.append(f"| {s} | {fmt(g['steps'])} | {fmt(q['steps'])} | {ratio(g['steps'], q['steps'])} | "
                   f"{fmt(g['wall'], '{:.1f}')} | {fmt(q['wall'], '{:.1f}')} | {ratio(g['wall'], q['wall'])} |")
    ms = [med([r[i]['steps'] for r in rows]) for i in (1, 2)]
    mw = [med([r[i]['wall'] for r in rows]) for i in (1, 2)]
    out.append(f"| **median** | **{fmt(ms[0])}** | **{fmt(ms[1])}** | **{ratio(*ms)}** | "
               f"**{fmt(mw[0], '{:.1f}')}** | **{fmt(mw[1], '{:.1f}')}** | **{ratio(*mw)}** |")
    print('\n' + '\n'.join(out))
    print(f"\nsolved (first deterministic mean >= {a.target:g} within {a.max_steps:,} steps): "
          f"GRPO {sum(r[1]['steps'] is not None for r in rows)}/{len(rows)}, PPO {sum(r[2]['steps'] is not None for r in rows)}/{len(rows)}")

if __name__ == '__main__': main()
