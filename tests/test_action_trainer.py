"Action trainer end to end: a killed run resumes to the same result, a kill mid-checkpoint loses nothing, the command works and its errors are one line."
import contextlib, io, json, os, subprocess, sys, textwrap
from pathlib import Path
import pytest

from vlm_grpo_nb.config import load_config
from vlm_grpo_nb.system import CheckpointError, last_checkpoint
from vlm_grpo_nb.action_trainer import ActionTrainer, action_main, read_action_checkpoint

SMALL = {'action_settings.training.max_steps': 30, 'action_settings.training.eval_freq': 10, 'action_settings.training.checkpoint_freq': 10,
         'action_settings.wandb.enabled': False, 'action_settings.num_plot_pairs': 2}

def _cfg(out, **kw): return load_config(preset='tiny', **{**SMALL, 'action_settings.output_dir': str(out), **kw})

def _run_script(body, tmp_path):
    "Run python code in a fresh process (as a user's killed job would be)."
    script = tmp_path/'job.py'; script.write_text(textwrap.dedent(body))
    return subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300, env=os.environ.copy())

_NO_TIME = lambda f: [{k: v for k, v in json.loads(l).items() if k != 'time_step'} for l in Path(f).read_text().splitlines()]

@pytest.fixture(scope='module')
def uninterrupted(tmp_path_factory):
    out = tmp_path_factory.mktemp('full')/'run'
    return out, ActionTrainer.from_config(_cfg(out)).fit(progress=False)

def test_full_run_writes_every_output(uninterrupted):
    out, res = uninterrupted
    names = {p.name for p in out.iterdir()}
    assert {'best_model', 'checkpoint_iter_20', 'checkpoint_iter_30', 'final_results.json', 'metrics.jsonl', 'evaluations.jsonl',
            'action_training.log', 'plots'} <= names and 'checkpoint_iter_10' not in names      # keep_checkpoints = 2
    assert {p.name for p in (out/'plots').iterdir()} == {'training_curves.png', 'validation.png', 'test_pairs.png'}
    assert res['steps'] == 30 and len((out/'metrics.jsonl').read_text().splitlines()) == 30
    assert [e['step'] for e in map(json.loads, (out/'evaluations.jsonl').read_text().splitlines())] == [10, 20, 30]
    t = res['test']
    assert t['centre_px'] < t['baseline_centre_px'] and {'mse_cx', 'mse_cy', 'mse_scale', 'iou', 'baseline_iou', 'iou50'} <= set(t)
    assert read_action_checkpoint(out/'best_model', state=False) is None and (out/'best_model'/'metrics.json').exists()

KILL_AFTER_CHECKPOINT_20 = '''
    import os
    from vlm_grpo_nb.config import load_config
    from vlm_grpo_nb.action_trainer import ActionTrainer
    orig = ActionTrainer.save_checkpoint
    def save_then_die(self):
        p = orig(self)
        if self.step == 20: os._exit(137)       # killed right after checkpoint 20: steps 21-30 never ran
        return p
    ActionTrainer.save_checkpoint = save_then_die
    ActionTrainer.from_config(load_config(preset='tiny', **{cfg!r})).fit(progress=False)
'''

def _resumed_equals(out, uninterrupted):
    full_out, full = uninterrupted
    res = ActionTrainer.from_config(_cfg(out), existing=True).fit(resume=True, progress=False)
    assert _NO_TIME(out/'metrics.jsonl') == _NO_TIME(full_out/'metrics.jsonl')
    assert _NO_TIME(out/'evaluations.jsonl') == _NO_TIME(full_out/'evaluations.jsonl')
    assert res['test'] == full['test'] and res['validation'] == full['validation'] and res['best'] == full['best']

def test_kill_and_resume_matches_uninterrupted(tmp_path, uninterrupted):
    out = tmp_path/'killed'
    r = _run_script(KILL_AFTER_CHECKPOINT_20.format(cfg={**SMALL, 'action_settings.output_dir': str(out)}), tmp_path)
    assert r.returncode == 137, r.stderr[-2000:]
    assert last_checkpoint(out).name == 'checkpoint_iter_20' and not (out/'final_results.json').exists()
    _resumed_equals(out, uninterrupted)

KILL_DURING_WRITE_OF_20 = '''
    import os, torch
    import vlm_grpo_nb.action_trainer as T
    from vlm_grpo_nb.config import load_config
    real_save = torch.save
    def dying_save(obj, f, *a, **k):
        if isinstance(obj, dict) and obj.get('step') == 20:
            with open(f, 'wb') as fh: fh.write(b'half a checkpoint')
            os._exit(137)                         # killed in the middle of writing checkpoint 20
        return real_save(obj, f, *a, **k)
    T.torch.save = dying_save
    T.ActionTrainer.from_config(load_config(preset='tiny', **{cfg!r})).fit(progress=False)
'''

def test_kill_during_checkpoint_write_keeps_previous(tmp_path, uninterrupted):
    out = tmp_path/'killed_mid_write'
    r = _run_script(KILL_DURING_WRITE_OF_20.format(cfg={**SMALL, 'action_settings.output_dir': str(out)}), tmp_path)
    assert r.returncode == 137, r.stderr[-2000:]
    assert last_checkpoint(out).name == 'checkpoint_iter_10'                 # the half-written one is not taken
    assert any(p.name.startswith('.tmp-checkpoint_iter_20') for p in out.iterdir())
    assert read_action_checkpoint(out/'checkpoint_iter_10')['step'] == 10
    _resumed_equals(out, uninterrupted)

def test_resume_refuses_a_different_setup_and_a_damaged_checkpoint(tmp_path, uninterrupted):
    import shutil
    full_out, _ = uninterrupted
    out = tmp_path/'copy'; shutil.copytree(full_out, out)
    with pytest.raises(CheckpointError, match=r'action_settings.training.learning_rate is 0.001 there but 0.01 now'):
        ActionTrainer.from_config(_cfg(out, **{'action_settings.training.learning_rate': 0.01}), existing=True).fit(resume=True, progress=False)
    (out/'checkpoint_iter_30'/'trainer_state.pt').write_bytes(b'\x00garbage')
    with pytest.raises(CheckpointError, match=r'trainer_state.pt: unreadable .* resume from an earlier checkpoint_iter_N'):
        read_action_checkpoint(out/'checkpoint_iter_30')
    with pytest.raises(Exception, match='already holds the results of a run'):
        ActionTrainer.from_config(_cfg(full_out))

def _main(*argv):
    "(exit code, stdout, stderr) of `vlm_grpo action ...` run in this process."
    out, err = io.StringIO(), io.StringIO()
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try: action_main(list(argv))
        except SystemExit as e: code = e.code
    return code, out.getvalue(), err.getvalue()

def test_command_errors_are_one_line_with_exit_code_2(tmp_path, uninterrupted):
    full_out, _ = uninterrupted
    img = tmp_path/'a.png'
    from PIL import Image; Image.new('RGB', (64, 64)).save(img); Image.new('RGB', (32, 32)).save(tmp_path/'small.png')
    ck = ['--checkpoint', str(full_out/'best_model')]
    cases = {
        ('train', '--set', 'action_settings.training.lr=1'): '`action_settings.training.lr` is not a known setting',
        ('train', '--preset', 'tiny', '--set', 'action_settings.device=gpu'): "`action_settings.device` is 'gpu'",
        ('train', '--preset', 'tiny', '--set', 'action_settings.model.quantization=8bit'): "allowed: 'auto', '4bit', 'none'",
        ('train', '--preset', 'tiny', '--output', '/etc/passwd'): 'is a file, not a folder; choose another --output (action_settings.output_dir)',
        ('train', '--preset', 'tiny', '--output', str(full_out)): 'already holds the results of a run; resume it with --resume last',
        ('train', '--preset', 'tiny', '--output', str(tmp_path/'o1'), '--set', f'action_settings.data.path={tmp_path}/nodata'): 'nodata: no such data folder',
        ('train', '--preset', 'tiny', '--output', str(tmp_path/'o2'), '--set', 'action_settings.data.image_size=224'): 'set action_settings.data.image_size=64',
        ('train', '--preset', 'tiny', '--output', str(tmp_path/'o3'), '--resume', str(tmp_path/'nock')): 'nock: no such checkpoint folder',
        ('evaluate', '--checkpoint', str(tmp_path/'nope')): 'nope: no such checkpoint folder',
        ('evaluate', '--checkpoint', str(full_out/'plots')): 'trainable.safetensors: missing',
        ('predict', *ck, '--image1', str(img), '--image2', str(tmp_path/'missing.png'), '--caption', 'x'): 'missing.png: cannot be read as an image',
        ('predict', *ck, '--image1', str(img), '--image2', str(tmp_path/'small.png'), '--caption', 'x'): 'the two images must be co-registered',
        ('predict', *ck, '--image1', str(img), '--image2', str(img), '--caption', '  '): 'the caption is empty',
    }
    if not __import__('torch').cuda.is_available():
        cases[('train', '--preset', 'tiny', '--output', str(tmp_path/'o4'), '--set', 'action_settings.model.quantization=4bit')] = "quantization='4bit' needs CUDA"
    for argv, want in cases.items():
        code, _, err = _main(*argv)
        assert code == 2, (argv, code, err)
        assert err.count('\n') == 1 and err.startswith(f'vlm_grpo action {argv[0]}: error: ') and want in err, (argv, err)
    code, _, err = _main('fly')
    assert code == 2 and err.count('\n') == 1 and "invalid choice: 'fly'" in err

def test_command_train_evaluate_predict(tmp_path, uninterrupted):
    full_out, full = uninterrupted
    sets = sum([['--set', f'{k}={json.dumps(v)}'] for k, v in {**SMALL, 'action_settings.training.max_steps': 10, 'action_settings.plots': False}.items()], [])
    r = subprocess.run(['vlm_grpo', 'action', 'train', '--preset', 'tiny', '--output', str(tmp_path/'cli'), '--no-progress', *sets],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert 'centre error' in r.stdout and (tmp_path/'cli'/'final_results.json').exists()
    code, out, err = _main('evaluate', '--checkpoint', str(full_out/'checkpoint_iter_30'), '--output', str(tmp_path/'ev'))
    assert code == 0, err
    ev = json.loads((tmp_path/'ev'/'evaluation_test.json').read_text())
    assert ev['centre_px'] == full['test']['centre_px'] and 'IoU' in out
    from vlm_grpo_nb.action_data import load_action_datasets
    d = load_config(preset='tiny').action_settings.data
    raw = load_action_datasets('shapes', image_size=64, shapes=dict(d.shapes))['test'].raw(0)
    raw['image'].save(tmp_path/'1.png'); raw['image2'].save(tmp_path/'2.png')
    code, out, err = _main('predict', '--checkpoint', str(full_out/'best_model'), '--image1', str(tmp_path/'1.png'),
                           '--image2', str(tmp_path/'2.png'), '--caption', raw['caption'])
    assert code == 0, err
    assert out.startswith('action [cx, cy, scale]: ') and 'box [x0, y0, x1, y1] in pixels: ' in out
