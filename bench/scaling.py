"""Data-parallel scaling: completions per second of GRPO training steps with 1, 2, ... processes, side by side.

    OMP_NUM_THREADS=1 python bench/scaling.py                                # tiny preset, 1 and 2 CPU processes
    python bench/scaling.py --nproc 1 2 4 8 --device auto --preset shapes    # a GPU machine: one process per GPU

Each process count is a fresh `torchrun` launch of the same global batch (`--batch-size` prompts x `--group-size`
rewrites, split over the processes, whole groups per process) through `GRPOTrainer.train_step`, the code path of
`vlm_grpo train`. After `--warmup` steps, `--steps` steps are timed on the main process (the step ends with the
all-reduce of gradients and metrics, so it waits for the slowest process). Prints a markdown table with the rate and
its ratio to one process.
"""
import argparse, json, os, socket, subprocess, sys, tempfile, time
from pathlib import Path

def worker(a):
    "One process of a launch: build the components on this process's devices, time `steps` train steps."
    from vlm_grpo_nb.config import load_config, set_seed, apply_cpu_threads
    from vlm_grpo_nb.distributed import process_context, resolve_devices, barrier, check_world
    from vlm_grpo_nb.vlm_wrapper import VLMWrapper
    from vlm_grpo_nb.sd_generator import SD3Generator
    from vlm_grpo_nb.clip_reward import CLIPRewardCalculator
    from vlm_grpo_nb.trainer import GRPOTrainer
    from vlm_grpo_nb.data import load_prompts, PromptBatches
    ctx = process_context()
    over = {'training_settings.batch_size': a.batch_size, 'training_settings.group_size': a.group_size}
    if a.device: over.update({f'device_settings.{k}': a.device for k in ('policy', 'generator', 'reward')})
    cfg = load_config(preset=a.preset, **over); check_world(cfg, ctx.world)
    cfg = resolve_devices(cfg, ctx); apply_cpu_threads(cfg); set_seed(cfg.training_settings.seed)
    trainer = GRPOTrainer(VLMWrapper(config=cfg), SD3Generator(config=cfg), CLIPRewardCalculator(config=cfg), cfg, dist=ctx)
    batches = PromptBatches(load_prompts(cfg.data_settings.train_file, 'train'), a.batch_size, seed=0)
    prompts = lambda i: [r['user_prompt'] for r in batches[i]]
    for i in range(a.warmup): trainer.train_step(prompts(i))
    barrier(ctx); t0 = time.perf_counter()
    stages = [trainer.train_step(prompts(a.warmup + i)) for i in range(a.steps)]
    barrier(ctx); dt = time.perf_counter() - t0
    if ctx.is_main:
        keys = [k for k in stages[0] if k.startswith('time_') and k != 'time_step']
        Path(a.worker).write_text(json.dumps({'world': ctx.world, 'steps': a.steps, 'seconds': dt, 'completions': a.steps * a.batch_size * a.group_size,
                                              'stages': {k: sum(s[k] for s in stages) / a.steps for k in keys}}))

def free_port()->int:
    with socket.socket() as s: s.bind(('127.0.0.1', 0)); return s.getsockname()[1]

def launch(n:int, a)->dict:
    "One `torchrun` launch with `n` processes; its main process's measurement."
    with tempfile.TemporaryDirectory() as d:
        out = Path(d)/'r.json'
        cmd = [sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node', str(n), '--master_addr', '127.0.0.1',
               '--master_port', str(free_port()), __file__, '--worker', str(out), '--preset', a.preset, '--batch-size', str(a.batch_size),
               '--group-size', str(a.group_size), '--steps', str(a.steps), '--warmup', str(a.warmup)] + (['--device', a.device] if a.device else [])
        subprocess.run(cmd, check=True, env={**os.environ, 'OMP_NUM_THREADS': os.environ.get('OMP_NUM_THREADS', '1')},
                       stdout=subprocess.DEVNULL, stderr=None if a.verbose else subprocess.DEVNULL)
        return json.loads(out.read_text())

def table(rs:list[dict])->str:
    "Markdown: processes, completions/s, ratio to the first row, seconds per step and per stage."
    base, keys = rs[0]['completions'] / rs[0]['seconds'], list(rs[0]['stages'])
    lines = ['| processes | completions/s | ratio | s/step | ' + ' | '.join(k.removeprefix('time_') for k in keys) + ' |',
             '|---|---|---|---|' + '---|' * len(keys)]
    for r in rs:
        rate = r['completions'] / r['seconds']
        lines.append(f"| {r['world']} | {rate:.2f} | {rate / base:.2f} | {r['seconds'] / r['steps']:.2f} | "
                     + ' | '.join(f"{r['stages'][k]:.2f}" for k in keys) + ' |')
    return '\n'.join(lines)

if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--nproc', type=int, nargs='+', default=[1, 2], help='process counts to compare (one per GPU on a GPU machine)')
    ap.add_argument('--preset', default='tiny')
    ap.add_argument('--device', default=None, help="device for policy, generator and reward, e.g. 'auto' (each process: its GPU)")
    ap.add_argument('--batch-size', type=int, default=8, help='prompts per step (global, split over the processes)')
    ap.add_argument('--group-size', type=int, default=4)
    ap.add_argument('--steps', type=int, default=6); ap.add_argument('--warmup', type=int, default=2)
    ap.add_argument('--verbose', action='store_true', help="show the workers' logs")
    ap.add_argument('--worker', help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker: worker(a); sys.exit()
    rs = [launch(n, a) for n in a.nproc]
    print(f"preset {a.preset}, batch {a.batch_size} prompts x {a.group_size} rewrites, {a.steps} timed steps after {a.warmup}; "
          f"stage columns: seconds per step on the main process")
    print(table(rs))
