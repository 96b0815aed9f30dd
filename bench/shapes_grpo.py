"""The ShapesWorld main job over several training seeds: the judge's verdict for four rewriters on the held-out
validation prompts, the share of the gap between the supervised policy and the oracle that GRPO closes, the no-hacking
condition, and the wall time.

    python bench/shapes_grpo.py [--seeds 0 1 2] [--out bench/shapes_grpo_runs] [--set key=value ...]

Each seed runs `vlm_grpo train --preset shapes --set training_settings.seed=S` in its own process (as a user would),
timed from the command's start to its end. Goal (issue 11): GRPO closes at least 50% of the gap in at most 15 minutes,
and the judge's verdict on the user's named attributes for GRPO rewrites is not below the raw prompt's. A second table
reads the rewrites themselves: the share that keep the user's named attributes, by the world's parser.
"""
import argparse, json, subprocess, sys, time
from pathlib import Path
import numpy as np
from vlm_grpo_nb.shapes_grpo import describe_rewrites

def main():
    ap = argparse.ArgumentParser(); ap.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    ap.add_argument('--out', default='bench/shapes_grpo_runs'); ap.add_argument('--set', dest='sets', action='append', default=[])
    a = ap.parse_args(); out = Path(a.out); rows = []
    for s in a.seeds:
        d = out/f'seed{s}'
        if not (d/'final_results.json').exists():
            t0 = time.time()
            cmd = [sys.executable, '-c', 'from vlm_grpo_nb.cli import main; main()', 'train', '--preset', 'shapes', '--output', str(d),
                   '--no-progress', '--set', f'training_settings.seed={s}', *sum([['--set', x] for x in a.sets], [])]
            p = subprocess.run(cmd, capture_output=True, text=True)
            if p.returncode: sys.exit(f'seed {s} failed:\n{p.stderr[-3000:]}')
            (d/'wall_seconds.txt').write_text(f'{time.time() - t0:.1f}\n'); print(p.stdout, flush=True)
        res = json.loads((d/'final_results.json').read_text())
        last = max(int(f.stem.split('_')[-1]) for f in d.glob('validation_iter_*.json'))
        kept = {}   # what the policy's rewrites keep of the user's words, read by the world's parser
        for when, it in (('before', 0), ('after', last)):
            v = json.loads((d/f'validation_iter_{it}.json').read_text())['rows']
            kept.update({f'{when}_{k}': x for k, x in describe_rewrites([r['user_prompt'] for r in v], [r['rewrite'] for r in v]).items()})
        rows.append({'seed': s, 'minutes': float((d/'wall_seconds.txt').read_text()) / 60, 'gap_closed': res['gap_closed'],
                     **{f'{k}_{m}': v[m] for k, v in res['judge'].items() for m in ('ok', 'attributes', 'quality')}, **kept})
    col = lambda k: np.array([r[k] for r in rows])
    ms = lambda k, pct=True: f"{col(k).mean():.1%} ± {col(k).std(ddof=1) if len(rows) > 1 else 0:.1%}" if pct else f"{col(k).mean():.2f} ± {col(k).std(ddof=1) if len(rows) > 1 else 0:.2f}"
    print(f"\nShapesWorld main job, seeds {a.seeds}: judge on {len(json.loads((out/f'seed{a.seeds[0]}'/'validation_iter_0.json').read_text())['rows'])} held-out prompts\n")
    print('| rewriter | judge score | named attributes right | quality |\n|---|---|---|---|')
    for k, n in (('raw', 'raw user prompt'), ('before', 'supervised policy (before GRPO)'), ('after', 'GRPO policy'), ('oracle', 'oracle rewrite')):
        print(f"| {n} | {ms(k + '_ok')} | {ms(k + '_attributes')} | {ms(k + '_quality', False)} |")
    print(f"\ngap closed: {ms('gap_closed')} (per seed: {', '.join(f'{x:.0%}' for x in col('gap_closed'))}); "
          f"wall minutes: {ms('minutes', False)}; no hacking (GRPO attributes >= raw) on {sum(col('after_attributes') >= col('raw_attributes'))}/{len(rows)} seeds")
    print('\n| rewrites keep the user\'s (parsed text) | every named attribute | shape | colour | size | position | quality words |\n|---|---|---|---|---|---|---|')
    for k, n in (('before', 'supervised policy (before GRPO)'), ('after', 'GRPO policy')):
        print(f"| {n} | " + ' | '.join(ms(f'{k}_{c}') for c in ('keeps_attributes', 'keeps_shape', 'keeps_colour', 'keeps_size', 'keeps_position', 'quality_words')) + ' |')
    (out/'summary.json').write_text(json.dumps(rows, indent=1))

if __name__ == '__main__': main()
