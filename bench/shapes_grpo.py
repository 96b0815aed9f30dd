"""The ShapesWorld main job over several training seeds: the judge's verdict for four rewriters on the held-out
validation prompts, the share of the gap between the supervised policy and the oracle that GRPO closes, the no-hacking
condition, and the wall time.

    python bench/shapes_grpo.py [--seeds 0 1 2] [--out bench/shapes_grpo_runs] [--set key=value ...] [--train-check 64]

Each seed runs `vlm_grpo train --preset shapes --set training_settings.seed=S` in its own process (as a user would),
timed from the command's start to its end. Goal (issue 11): GRPO closes at least 50% of the gap in at most 15 minutes,
and the judge's verdict on the user's named attributes for GRPO rewrites is not below the raw prompt's. A second table
reads the rewrites themselves: the share that keep the user's named attributes, by the world's parser.
`--train-check N` also judges each seed's final policy (`vlm_grpo evaluate`) on N user prompts of the training split
that are not in the training file: the no-hacking condition on colour-shape pairs the models saw, where a change can be
chosen without looking at the held-out prompts.
"""
import argparse, json, subprocess, sys, time
from pathlib import Path
import numpy as np
from vlm_grpo_nb.shapes_grpo import describe_rewrites

def train_check_prompts(n:int, dest:Path)->Path:
    "A JSONL file in `dest` of `n` user prompts of the training split that the shapes preset's training file does not hold."
    from vlm_grpo_nb.config import load_config
    from vlm_grpo_nb.data import load_prompts, save_jsonl
    from vlm_grpo_nb.shapes_grpo import prompt_records
    trained = {r['user_prompt'] for r in load_prompts(load_config(preset='shapes').data_settings.train_file)}
    recs = [r for r in prompt_records(20 * n, 99, 'train') if r['user_prompt'] not in trained][:n]
    return save_jsonl(recs, dest/f'train_check_{n}.jsonl')

def cli(args:list, sets:list)->str:
    "Run `vlm_grpo ARGS --preset shapes` with `--set` overrides in its own process, as a user would; its stdout (exit on failure)."
    cmd = [sys.executable, '-c', 'from vlm_grpo_nb.cli import main; main()', *args, '--preset', 'shapes', *sum([['--set', x] for x in sets], [])]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode: sys.exit(f"vlm_grpo {' '.join(args)} failed:\n{p.stderr[-3000:]}")
    return p.stdout

def train_check(d:Path, prompts:Path, sets:list)->dict:
    "The judge of `vlm_grpo evaluate` for the final policy of run `d` on `prompts` (cached in d/train_check/)."
    f = d/'train_check'/'evaluation.json'
    if not f.exists():
        last = max(d.glob('checkpoint_iter_*'), key=lambda c: int(c.name.split('_')[-1]))
        cli(['evaluate', '--checkpoint', str(last), '--output', str(d/'train_check')], [f'data_settings.val_file={prompts}', *sets])
    return json.loads(f.read_text())['judge']

def main():
    ap = argparse.ArgumentParser(); ap.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    ap.add_argument('--out', default='bench/shapes_grpo_runs'); ap.add_argument('--set', dest='sets', action='append', default=[])
    ap.add_argument('--train-check', type=int, default=0, help='also judge the final policies on N unseen training-split prompts')
    a = ap.parse_args(); out = Path(a.out); rows = []
    for s in a.seeds:
        d = out/f'seed{s}'
        if not (d/'final_results.json').exists():
            t0 = time.time()
            stdout = cli(['train', '--output', str(d), '--no-progress'], [f'training_settings.seed={s}', *a.sets])
            (d/'wall_seconds.txt').write_text(f'{time.time() - t0:.1f}\n'); print(stdout, flush=True)
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
    if a.train_check:
        prompts = train_check_prompts(a.train_check, out)
        for r in rows:
            j = train_check(out/f"seed{r['seed']}", prompts, a.sets)
            r.update({f'check_{k}_{m}': j[k][m] for k in ('user', 'policy', 'oracle') for m in ('ok', 'attributes')})
        print(f"\nThe final policies on {a.train_check} training-split prompts not in the training file (colour-shape pairs the models saw)\n")
        print('| rewriter | judge score | named attributes right |\n|---|---|---|')
        for k, n in (('user', 'raw user prompt'), ('policy', 'GRPO policy'), ('oracle', 'oracle rewrite')):
            print(f"| {n} | {ms(f'check_{k}_ok')} | {ms(f'check_{k}_attributes')} |")
        print(f"\nno hacking (GRPO attributes >= raw) on {sum(col('check_policy_attributes') >= col('check_user_attributes'))}/{len(rows)} seeds "
              f"(per seed, GRPO / raw: {', '.join(f'{x:.1%} / {y:.1%}' for x, y in zip(col('check_policy_attributes'), col('check_user_attributes')))})")
    (out/'summary.json').write_text(json.dumps(rows, indent=1))

if __name__ == '__main__': main()
