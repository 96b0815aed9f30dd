"""The action agent's goal (issue 12): on held-out ShapesWorld change pairs, after at most 10 minutes of training on the
2-core CPU with the `shapes` preset, the mean centre error is at most half the mean baseline's and the mean IoU is at
least 0.5, on 3 seeds.

    OMP_NUM_THREADS=1 python bench/action_agent.py [--seeds 0 1 2] [--preset shapes] [--threads 1] [--set key=value ...]
    OMP_NUM_THREADS=1 python bench/action_agent.py --ablation [--seeds 0]

The ShapesWorld change set (`action_settings.data.shapes`) is built once, before any timing. Each seed
(`action_settings.training.seed`: the trainable weights' initialisation, dropout and batch order) then trains in a fresh
process, exactly as `vlm_grpo action train --preset shapes` does, with `max_minutes=10` as a hard stop. "minutes" is
the child's wall time from loading the config to the final metrics (models, feature cache, training, evaluations,
checkpoints, plots); "train min" is the time spent in optimizer steps. The metrics are those of the final weights on
the test split: held-out colour-shape pairs, never used for training or tuning. Prints a markdown table.

`--ablation` asks what each input contributes: the same training with patch or pooled vision features, with the caption
replaced by a constant ("vision only") or the vision features replaced by zeros ("text only"), in training and in
evaluation alike. ShapesWorld captions name the place of the change ("in the top left"), so the text alone carries a
coarse position; the images carry the exact one, and the size.
"""
import argparse, json, subprocess, sys, tempfile, time

CHILD = r'''
import json, sys, time
t0 = time.perf_counter()
from vlm_grpo_nb.config import load_config
from vlm_grpo_nb.action_trainer import ActionTrainer
preset, out, sets, inputs = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), sys.argv[4]
cfg = load_config(preset=preset, **{**sets, 'action_settings.output_dir': out})
if inputs != 'both':   # the ablation: hide one input from the agent, in training and in evaluation
    import torch
    batch = ActionTrainer._batch
    def masked(self, split, idx):
        b = batch(self, split, idx)
        if inputs == 'vision only': b['caption'] = ['a change'] * len(idx)
        else: b['feats_t1'], b['feats_t2'] = torch.zeros_like(b['feats_t1']), torch.zeros_like(b['feats_t2'])
        return b
    ActionTrainer._batch = masked
res = ActionTrainer.from_config(cfg).fit(progress=False)
print(json.dumps({'steps': res['steps'], 'minutes': (time.perf_counter() - t0) / 60, 'train_minutes': res['train_seconds'] / 60,
                  'test': res['test'], 'validation': res['validation']}))
'''

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    ap.add_argument('--preset', default='shapes')
    ap.add_argument('--threads', type=int, default=1, help='torch CPU threads (device_settings.cpu_threads)')
    ap.add_argument('--set', dest='sets', action='append', default=[], metavar='KEY=VALUE', help='extra config override')
    ap.add_argument('--ablation', action='store_true', help='what each input contributes (vision features x inputs), instead of the goal table')
    args = ap.parse_args()
    from vlm_grpo_nb.config import load_config, parse_set
    sets = {'action_settings.training.max_minutes': 10, 'action_settings.wandb.enabled': False,
            'device_settings.cpu_threads': args.threads, **dict(parse_set(s) for s in args.sets)}
    cfg = load_config(preset=args.preset, **sets)
    from vlm_grpo_nb.action_data import shapes_change_data
    a = cfg.action_settings
    if a.data.path == 'shapes':
        t = time.perf_counter(); shapes_change_data(**a.data.shapes, cache_dir=cfg.model_settings.cache_dir)
        print(f'data: ShapesWorld change pairs {dict(a.data.shapes)} ready in {time.perf_counter() - t:.1f}s', file=sys.stderr)
    print(f'preset {args.preset!r}: vision {a.model.vision_model!r}, language model {a.model.language_model!r}, '
          f'{a.training.max_steps} steps of {a.training.batch_size}, lr {a.training.learning_rate}, {args.threads} thread(s)\n')
    if args.ablation: return ablation(args, sets)
    print('| seed | steps | minutes | train min | centre error px: agent | mean baseline | ratio | IoU: agent | mean baseline | IoU >= 0.5 | goal |')
    print('|---|---|---|---|---|---|---|---|---|---|---|')
    ok = []
    for seed in args.seeds:
        res = run(args.preset, {**sets, 'action_settings.training.seed': seed}); t = res['test']
        ratio = t['centre_px'] / t['baseline_centre_px']
        met = ratio <= 0.5 and t['iou'] >= 0.5 and res['train_minutes'] <= 10
        ok.append(met)
        print(f"| {seed} | {res['steps']} | {res['minutes']:.2f} | {res['train_minutes']:.2f} | {t['centre_px']:.2f} | {t['baseline_centre_px']:.2f} | "
              f"{ratio:.2f} | {t['iou']:.3f} | {t['baseline_iou']:.3f} | {t['iou50']:.0%} | {'yes' if met else 'no'} |", flush=True)
    print(f"\n{len(ok)} seeds, {t['n']} held-out test pairs each; goal (centre error <= half the baseline's, IoU >= 0.5, <= 10 min) "
          f"met on {sum(ok)} of {len(ok)}")

def run(preset:str, sets:dict, inputs:str='both')->dict:
    "Train and evaluate in a fresh process; its results."
    with tempfile.TemporaryDirectory() as out:
        r = subprocess.run([sys.executable, '-c', CHILD, preset, out, json.dumps(sets), inputs], capture_output=True, text=True)
    if r.returncode != 0: sys.exit(f'{sets} {inputs} failed:\n{r.stderr[-3000:]}')
    return json.loads(r.stdout.strip().splitlines()[-1])

def ablation(args, sets:dict):
    "The ablation table: each vision feature kind with both inputs, vision only, and text only."
    print('| seed | vision features | inputs | steps | train min | test centre error px | mean baseline | test IoU | mean baseline | mse scale |')
    print('|---|---|---|---|---|---|---|---|---|---|')
    for seed in args.seeds:
        for feat, inputs in (('patch', 'both'), ('pooled', 'both'), ('patch', 'vision only'), ('pooled', 'vision only'), ('none', 'text only')):
            res = run(args.preset, {**sets, 'action_settings.training.seed': seed,
                                    'action_settings.model.vision_features': 'patch' if feat == 'none' else feat}, inputs)
            t = res['test']
            print(f"| {seed} | {feat} | {inputs} | {res['steps']} | {res['train_minutes']:.2f} | {t['centre_px']:.2f} | {t['baseline_centre_px']:.2f} | "
                  f"{t['iou']:.3f} | {t['baseline_iou']:.3f} | {t['mse_scale']:.4f} |", flush=True)

if __name__ == '__main__': main()
