"""Data-parallel GRPO on 2 CPU processes (gloo): a run trains, checkpoints, resumes and writes one set of outputs; the
gradient averaged over 2 processes equals the single-process gradient; the SLURM script runs with a fake SLURM
environment; the action agent's trainer does the same. Also a worker: `torchrun ... tests/test_distributed.py grad OUT` (see `grad_worker`)."""
import json, os, socket, subprocess, sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TINY = ['--preset', 'tiny', '--no-progress', '--set', 'training_settings.num_validation_prompts=20',
        '--set', 'training_settings.validation_freq=2', '--set', 'training_settings.checkpoint_freq=2',
        '--set', 'output_settings.wandb.enabled=false']

def free_port()->int:
    with socket.socket() as s: s.bind(('127.0.0.1', 0)); return s.getsockname()[1]

def env(**kw)->dict:
    e = {**os.environ, 'OMP_NUM_THREADS': '1', 'TOKENIZERS_PARALLELISM': 'false', **kw}
    for k in ('RANK', 'WORLD_SIZE', 'LOCAL_RANK', 'MASTER_ADDR', 'MASTER_PORT'):
        if k not in kw: e.pop(k, None)
    return e

def run(cmd:list, timeout=240, **kw):
    p = subprocess.run(cmd, cwd=REPO, env=env(**kw), capture_output=True, text=True, timeout=timeout)
    assert p.returncode == 0, f'{cmd} failed ({p.returncode}):\n{p.stdout[-3000:]}\n{p.stderr[-6000:]}'
    return p

def torchrun(*args, nproc=2):
    return run([sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node', str(nproc), '--master_addr', '127.0.0.1',
                '--master_port', str(free_port()), *args])

def metrics(out:Path)->list[dict]: return [json.loads(l) for l in (out/'metrics.jsonl').read_text().splitlines()]

@pytest.fixture(scope='module')
def slurm_run(tmp_path_factory):
    "2 steps on 2 processes, launched by slurm/vlm_grpo.sbatch under a fake SLURM (srun runs its command once, here)."
    d = tmp_path_factory.mktemp('dist'); out, bin_ = d/'run', d/'bin'; bin_.mkdir()
    (bin_/'srun').write_text('#!/bin/bash\nwhile [[ "$1" == --* ]]; do shift; done\nexport SLURM_NODEID=0 SLURM_PROCID=0 SLURM_LOCALID=0\nexec "$@"\n')
    (bin_/'srun').chmod(0o755)
    p = run(['bash', 'slurm/vlm_grpo.sbatch', *TINY, '--output', str(out), '--set', 'training_settings.num_iterations=2'],
            PATH=f"{bin_}:{os.environ['PATH']}", SLURM_JOB_ID='4242', SLURM_NNODES='1', SLURM_JOB_NODELIST='localhost',
            NPROC_PER_NODE='2', MASTER_PORT=str(free_port()), PYTHON=sys.executable)
    return out, p

def test_slurm_script_trains_on_two_processes(slurm_run):
    out, p = slurm_run
    assert 'vlm_grpo: 1 node(s) [localhost]' in p.stdout
    log = (out/'vlm_grpo_training.log').read_text()
    assert '2 processes' in log and log.count('checkpoint saved') == 1   # one process wrote the log
    assert [m['step'] for m in metrics(out)] == [1, 2]
    assert p.stdout.count('validation reward of rewrites') == 2          # both processes finished; one of them wrote

def test_resume_on_two_processes_writes_one_set_of_outputs(slurm_run):
    out, _ = slurm_run
    torchrun('-m', 'vlm_grpo_nb.cli', 'train', *TINY, '--output', str(out), '--set', 'training_settings.num_iterations=4', '--resume', 'last')
    ms = metrics(out)
    assert [m['step'] for m in ms] == [1, 2, 3, 4]                        # one line per step, not one per process
    assert sorted(p.name for p in out.iterdir()) == ['best_model', 'checkpoint_iter_2', 'checkpoint_iter_4', 'final_results.json',
        'metrics.jsonl', 'plots', 'samples', 'validation_iter_0.json', 'validation_iter_2.json', 'validation_iter_4.json', 'vlm_grpo_training.log']
    assert ms[-1]['rendered_images'] > 0 and all(m['fallbacks'] >= 0 for m in ms)
    res = json.loads((out/'final_results.json').read_text())
    assert res['steps'] == 4 and res['final']['n'] == 20
    assert (out/'vlm_grpo_training.log').read_text().count('resumed from') == 1

def test_one_process_resumes_and_validates_like_two(slurm_run, tmp_path):
    "A 2-process checkpoint resumes in one process; a 1-process validation of its weights equals the 2-process one exactly."
    import shutil
    out, _ = slurm_run
    one = tmp_path/'one'; shutil.copytree(out, one); shutil.rmtree(one/'checkpoint_iter_4', ignore_errors=True)
    run([sys.executable, '-m', 'vlm_grpo_nb.cli', 'train', *TINY, '--output', str(one), '--set', 'training_settings.num_iterations=3',
         '--resume', str(one/'checkpoint_iter_2')])
    assert [m['step'] for m in metrics(one)] == [1, 2, 3] and metrics(one)[:2] == metrics(out)[:2]
    run([sys.executable, '-m', 'vlm_grpo_nb.cli', 'evaluate', *TINY[:2], *TINY[3:], '--output', str(tmp_path/'ev'),
         '--checkpoint', str(out/'checkpoint_iter_2')])
    rows = lambda f: json.loads(f.read_text())['rows']
    assert rows(tmp_path/'ev'/'evaluation.json') == rows(out/'validation_iter_2.json')   # 20 prompts: 2 chunks, one per process

def test_gradient_averaged_over_two_processes_equals_one_process(tmp_path):
    torchrun(__file__, 'grad', str(tmp_path))
    diffs = [json.loads((tmp_path/f'grad_{r}.json').read_text()) for r in range(2)]
    for d in diffs:
        for loss_type, v in d.items(): assert v['max_abs_diff'] < 1e-6 and v['grad_norm'] > 0, (loss_type, v)
    assert len({v['grad_norm'] for v in diffs[0].values()}) == 3   # three different losses, each averaged exactly
    print(diffs)

ACTION = ['--preset', 'tiny', '--no-progress', '--set', 'action_settings.wandb.enabled=false', '--set', 'action_settings.training.eval_freq=2',
          '--set', 'action_settings.training.checkpoint_freq=2', '--set', 'action_settings.model.lora_dropout=0',
          '--set', 'action_settings.model.head_dropout=0']

def test_action_trainer_on_two_processes_matches_one_and_resumes(tmp_path):
    "The action agent's trainer on 2 processes: one set of outputs, the 1-process losses (no dropout), and resume."
    steps = lambda n: ['--set', f'action_settings.training.max_steps={n}']
    torchrun('-m', 'vlm_grpo_nb.cli', 'action', 'train', *ACTION, *steps(4), '--output', str(tmp_path/'two'))
    run([sys.executable, '-m', 'vlm_grpo_nb.cli', 'action', 'train', *ACTION, *steps(4), '--output', str(tmp_path/'one')])
    two, one = metrics(tmp_path/'two'), metrics(tmp_path/'one')
    assert [m['step'] for m in two] == [0, 1, 2, 3]                      # one line per step, not one per process
    for a, b in zip(one, two): assert abs(a['loss'] - b['loss']) < 1e-5 and abs(a['grad_norm'] - b['grad_norm']) < 1e-4, (a, b)
    ev = lambda d: [json.loads(l) for l in (d/'evaluations.jsonl').read_text().splitlines()]
    assert [e['step'] for e in ev(tmp_path/'two')] == [2, 4] and ev(tmp_path/'two')[-1]['n'] == ev(tmp_path/'one')[-1]['n']
    assert abs(ev(tmp_path/'two')[-1]['mse'] - ev(tmp_path/'one')[-1]['mse']) < 1e-5   # validation split over 2 processes, gathered
    import shutil
    again = tmp_path/'again'; shutil.copytree(tmp_path/'two', again); shutil.rmtree(again/'checkpoint_iter_4')
    torchrun('-m', 'vlm_grpo_nb.cli', 'action', 'train', *ACTION, *steps(4), '--output', str(again), '--resume', str(again/'checkpoint_iter_2'))
    assert metrics(again) == [{**m, 'time_step': a['time_step']} for m, a in zip(two, metrics(again))]   # exact resume on 2 processes
    log = (again/'action_training.log').read_text()
    assert log.count('resumed from') == 1 and log.count('checkpoint saved') == 3   # 2 + 4, then 4 again: one process wrote
    assert sorted(p.name for p in again.iterdir()) == ['action_training.log', 'best_model', 'checkpoint_iter_2', 'checkpoint_iter_4',
                                                       'evaluations.jsonl', 'final_results.json', 'metrics.jsonl', 'plots']

def grad_worker(out:str):
    "Each process: the single-process gradient of a step's batch, and the gradient of its half averaged over processes."
    import torch
    from vlm_grpo_nb.config import load_config, set_seed
    from vlm_grpo_nb.distributed import process_context, DistContext, shard_slice, group_rows, average_grads
    from vlm_grpo_nb.vlm_wrapper import VLMWrapper
    from vlm_grpo_nb.sd_generator import SD3Generator
    from vlm_grpo_nb.clip_reward import CLIPRewardCalculator
    from vlm_grpo_nb.trainer import GRPOTrainer
    ctx = process_context(); assert ctx.world == 2
    cfg = load_config(preset='tiny', **{'training_settings.kl_coef': 0.05, 'training_settings.entropy_coef': 0.01})
    set_seed(0)
    policy, gen, rew = VLMWrapper(config=cfg), SD3Generator(config=cfg), CLIPRewardCalculator(config=cfg)
    one = GRPOTrainer(policy, gen, rew, cfg)                  # a single-process trainer: same weights on both processes
    prompts = ['a red cat on a mat', 'a blue car', 'a tree in snow', 'two dogs playing']
    set_seed(1); b = one._collect(prompts, {})               # the same rollouts on both processes (seeded, CPU)
    m = b.roll.completion_mask; N, T = m.shape                # rewrites of different lengths, so the loss types differ
    m.copy_((torch.arange(T) < torch.randint(1, T + 1, (N,), generator=torch.Generator().manual_seed(0))[:, None]).to(m.dtype))
    G, res = cfg.training_settings.group_size, {}
    rows = torch.arange(len(prompts) * G)[group_rows(shard_slice(len(prompts), ctx.rank, ctx.world), G)]
    for loss_type in ('grpo', 'bnpo', 'dr_grpo'):
        one.tr['loss_type'] = loss_type
        def grads(trainer, idx):
            trainer.opt.zero_grad(set_to_none=True)
            trainer._minibatch_loss(b, idx)[0].backward()
            if trainer.dist.world > 1: average_grads(trainer.params, trainer.dist)
            return [p.grad.clone() for p in trainer.params]
        g1 = grads(one, torch.arange(len(b.roll)))
        one.dist = ctx; g2 = grads(one, rows); one.dist = DistContext()
        res[loss_type] = {'max_abs_diff': max((a - c).abs().max().item() for a, c in zip(g1, g2)),
                          'grad_norm': torch.cat([g.flatten() for g in g1]).norm().item()}
    Path(out, f'grad_{ctx.rank}.json').write_text(json.dumps(res))

if __name__ == '__main__' and sys.argv[1:2] == ['grad']: grad_worker(sys.argv[2])
