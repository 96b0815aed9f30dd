"""What filling an unnamed size with 'small' or 'large' does, by the reward and by the judge. On TRAINING-split prompts only.

    OMP_NUM_THREADS=2 python bench/shapes_size_fill.py [--n 300] [--weights 0 0.1 0.25 0.5 1] [--set model_settings.sd_model=PATH]

With a quality head trained on renders alone, GRPO rewrites filled a size the user did not name with 'small'
(bench/RESULTS.md, issue 11's train-check). This measures why, and whether a quality head (`--set
model_settings.aesthetic_head=FILE`) still pulls that way: for the training-split prompts among
`heldout_cases(n, seed=2024, split='train')` that name no size, the oracle rewrite with 'small' and with 'large' filled
in (same words and noise otherwise) is rendered by the `shapes` generator and scored by the reward (relevance, quality
head, the preset's weighted total) and by the judge; then how often the reward prefers the small fill at other quality
weights.
"""
import argparse
import numpy as np, torch

def main():
    ap = argparse.ArgumentParser(); ap.add_argument('--n', type=int, default=300)
    ap.add_argument('--weights', type=float, nargs='+', default=[0, 0.1, 0.25, 0.5, 1], help="quality weights for the second table (the config's other weights)")
    ap.add_argument('--set', dest='sets', action='append', default=[], help='config override key=value, as the CLI takes it'); a = ap.parse_args()
    from vlm_grpo_nb.config import load_config, apply_cpu_threads, parse_set
    from vlm_grpo_nb.sd_generator import SD3Generator
    from vlm_grpo_nb.clip_reward import CLIPRewardCalculator
    from vlm_grpo_nb import shapes as S, shapes_models as M
    cfg = load_config(preset='shapes', **dict(parse_set(x) for x in a.sets)); apply_cpu_threads(cfg)
    gen, rew = SD3Generator(config=cfg), CLIPRewardCalculator(config=cfg)
    users = [c['user'] for c in M.heldout_cases(a.n, seed=2024, split='train') if 'size' not in S.parse_prompt(c['user'])[0]]
    seeds, res, pen = [900_000 + i for i in range(len(users))], {}, {}
    for size in ('small', 'large'):
        texts = [S.oracle_rewrite(M.prompt_of({**S.parse_prompt(u)[0], 'size': size}), 7 + i) for i, u in enumerate(users)]
        ims = M.generate(gen, texts, seeds)
        r = rew.calculate_rewards(torch.from_numpy(ims).permute(0, 3, 1, 2).float() / 255, texts, users, update_stats=False)
        v, pen[size] = S.judge_batch(list(ims), users), r.breakdown['penalty'].numpy()
        res[size] = {'relevance': r.breakdown['relevance'].numpy(), 'quality head': r.breakdown['quality'].numpy(), 'reward': r.total.numpy(),
                     'shape': np.array([x.checks[0]['shape'] for x in v], float),
                     'named attributes': np.array([all(all(c.values()) for c in x.checks) for x in v], float),
                     'judge quality': np.array([x.quality for x in v]), 'passes quality bar': np.array([x.passes_quality for x in v], float),
                     'judge score': np.array([x.ok for x in v], float)}
    print(f"{len(users)} training-split prompts that name no size, weights {dict(cfg.reward_settings.weights)}\n")
    print('| measure | small filled | large filled | small higher | large higher |\n|---|---|---|---|---|')
    for k in res['small']:
        s, l = res['small'][k], res['large'][k]
        print(f"| {k} | {s.mean():.3f} | {l.mean():.3f} | {np.mean(s > l):.1%} | {np.mean(l > s):.1%} |")
    W = dict(cfg.reward_settings.weights)
    tot = lambda k, w: W['relevance'] * res[k]['relevance'] + w * res[k]['quality head'] + W['penalty'] * pen[k]
    print('\n| quality weight | the reward prefers small |\n|---|---|')
    for w in a.weights: print(f"| {w:g} | {np.mean(tot('small', w) > tot('large', w)):.1%} |")

if __name__ == '__main__': main()
