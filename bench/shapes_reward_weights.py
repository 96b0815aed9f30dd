"""Does the ShapesWorld reward prefer what the judge prefers, and for which quality weight? On TRAINING-split prompts only.

    OMP_NUM_THREADS=1 python bench/shapes_reward_weights.py [--weights 0 0.25 0.5 1 1.5 2 3 5]

Two checks, for each quality weight (relevance weight 1, penalty 1, the shipped `shapes` models):
- agreement: the share of 600 training prompts (3 x 200, seeds 100-102) where the reward ranks the image of the
  grammar's oracle rewrite above the raw prompt's (same noise), as `bench/shapes_world.py` measures on held-out prompts;
- within groups: 120 training prompts, each with 8 rewrites drawn from the supervised policy's training mixture
  (`sft_rewrite`) and rendered from the same noise, as GRPO sees a group; the share of pairs the judge orders (by its
  score, by named attributes, by quality) that the reward orders the same way.
The held-out prompts are never used, so the weight can be chosen here without tuning on the evaluation.
"""
import argparse, collections
import numpy as np, torch

def main():
    ap = argparse.ArgumentParser(); ap.add_argument('--weights', type=float, nargs='+', default=[0, 0.25, 0.5, 1, 1.5, 2, 3, 5])
    ap.add_argument('--set', dest='sets', action='append', default=[], help='config override key=value, as the CLI takes it'); a = ap.parse_args()
    from vlm_grpo_nb.config import load_config, apply_cpu_threads, parse_set
    from vlm_grpo_nb.sd_generator import SD3Generator
    from vlm_grpo_nb.clip_reward import CLIPRewardCalculator
    from vlm_grpo_nb import shapes as S, shapes_models as M
    cfg = load_config(preset='shapes', **dict(parse_set(x) for x in a.sets)); apply_cpu_threads(cfg)
    gen, rew = SD3Generator(config=cfg), CLIPRewardCalculator(config=cfg)
    as_t = lambda ims: torch.from_numpy(ims).permute(0, 3, 1, 2).float() / 255
    def score(texts, users, seeds):
        ims = M.generate(gen, texts, seeds)
        r = rew.calculate_rewards(as_t(ims), texts, users, update_stats=False)
        v = S.judge_batch(list(ims), users)
        return [{'rel': float(r.breakdown['relevance'][k]), 'q': float(r.breakdown['quality'][k]), 'pen': float(r.breakdown['penalty'][k]),
                 'ok': float(v[k].ok), 'attr': float(np.mean([all(c.values()) for c in v[k].checks])), 'jq': float(v[k].quality)} for k in range(len(texts))]
    total = lambda x, w: x['rel'] + w * x['q'] + x['pen']
    pairs = []
    for s in (100, 101, 102):
        cases = M.heldout_cases(200, seed=s, split='train')
        users, seeds = [c['user'] for c in cases], [s * 100_003 + i for i in range(len(cases))]
        pairs += list(zip(score(users, users, seeds), score([c['oracle'] for c in cases], users, seeds)))
    rng, G, groups = np.random.default_rng(555), 8, []
    for gi, c in enumerate(M.heldout_cases(120, seed=555, split='train')):
        rw = [M.sft_rewrite(c['user'], rng)[0] for _ in range(G)]
        groups.append(score(rw, [c['user']] * G, [777_000 + gi] * G))
    def within(key, judge):
        agree = n = 0
        for g in groups:
            for x in g:
                for y in g:
                    if x[judge] > y[judge]: n += 1; agree += key(x) > key(y)
        return agree / max(n, 1), n
    print(f"oracle over raw on {len(pairs)} training prompts: judge score {np.mean([o['ok'] for _, o in pairs]):.1%} vs {np.mean([u['ok'] for u, _ in pairs]):.1%}; "
          f"CLIP relevance alone agrees {np.mean([o['rel'] > u['rel'] for u, o in pairs]):.1%}, quality head alone {np.mean([o['q'] > u['q'] for u, o in pairs]):.1%}\n")
    n = {j: within(lambda x: x['rel'], j)[1] for j in ('ok', 'attr', 'jq')}
    print(f"| quality weight | agreement (oracle > raw) | within groups: judge score ({n['ok']} pairs) | named attributes ({n['attr']}) | judge quality ({n['jq']}) |\n|---|---|---|---|---|")
    for w in a.weights:
        print(f"| {w:g} | {np.mean([total(o, w) > total(u, w) for u, o in pairs]):.1%} | " + ' | '.join(f"{within(lambda x: total(x, w), j)[0]:.1%}" for j in ('ok', 'attr', 'jq')) + ' |')

if __name__ == '__main__': main()
