"End-to-end: bad inputs fail clearly, a killed run resumes to the same result, a kill mid-checkpoint loses nothing, the CLI works."
import json, os, subprocess, sys, textwrap
from pathlib import Path
import pytest

from vlm_grpo_nb.config import ConfigError
from vlm_grpo_nb.data import DataError
from vlm_grpo_nb.system import VLMGRPOSystem, CheckpointError, read_checkpoint, last_checkpoint

SMALL = {'training_settings.num_iterations': 6, 'training_settings.checkpoint_freq': 2, 'training_settings.validation_freq': 3,
         'training_settings.num_validation_prompts': 6, 'output_settings.plots': False, 'output_settings.save_images': False,
         'output_settings.wandb.enabled': False}

def _kw(out): return {'preset': 'tiny', 'output_dir': str(out), **SMALL}

def _run_script(body, tmp_path):
    "Run python code in a fresh process (as a user's killed job would be); return the completed process."
    script = tmp_path/'job.py'
    script.write_text(textwrap.dedent(body))
    return subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=600, env=os.environ.copy())

_NO_TIME = lambda h: {k: v for k, v in h.items() if not k.startswith('time_')}

@pytest.fixture(scope='module')
def uninterrupted(tmp_path_factory):
    out = tmp_path_factory.mktemp('full')
    res = VLMGRPOSystem(**_kw(out)).run_training(progress=False)
    return out, res

def test_malformed_jsonl_line_names_file_and_line(tmp_path):
    f = tmp_path/'train.jsonl'
    f.write_text('{"user_prompt": "a cat", "category": "basic", "difficulty": "easy"}\n{"user_prompt": "a dog", \n')
    s = VLMGRPOSystem(preset='tiny', output_dir=tmp_path/'o', **{'data_settings.train_file': str(f)})
    with pytest.raises(DataError, match=rf"{f}:2: not valid JSON"): s.initialize_components()

def test_missing_field_names_file_line_and_field(tmp_path):
    f = tmp_path/'val.jsonl'
    f.write_text('{"user_prompt": "a cat", "category": "basic", "difficulty": "easy"}\n\n{"user_prompt": "a dog", "category": "basic"}\n')
    s = VLMGRPOSystem(preset='tiny', output_dir=tmp_path/'o', **{'data_settings.val_file': str(f)})
    with pytest.raises(DataError, match=rf"{f}:3: field 'difficulty' is missing"): s.initialize_components()

def test_config_error_names_key(tmp_path):
    (tmp_path/'c.json').write_text(json.dumps({'training_settings': {'group_size': 'four'}}))
    with pytest.raises(ConfigError, match=r"c.json: `training_settings.group_size` must be an integer"):
        VLMGRPOSystem(tmp_path/'c.json')

def test_full_run_writes_every_output(uninterrupted):
    out, res = uninterrupted
    names = {p.name for p in out.iterdir()}
    assert {'best_model', 'checkpoint_iter_4', 'checkpoint_iter_6', 'final_results.json', 'metrics.jsonl', 'vlm_grpo_training.log',
            'validation_iter_0.json', 'validation_iter_3.json', 'validation_iter_6.json'} <= names
    assert 'checkpoint_iter_2' not in names   # keep_checkpoints = 2
    assert res['steps'] == 6 and len((out/'metrics.jsonl').read_text().splitlines()) == 6
    assert (out/'best_model'/'model.safetensors').exists() and (out/'checkpoint_iter_6'/'policy'/'model.safetensors').exists()

def test_unreadable_checkpoint_is_a_clear_error(uninterrupted, tmp_path):
    import shutil
    out, _ = uninterrupted
    ck = tmp_path/'ck'; shutil.copytree(out/'checkpoint_iter_6', ck)
    (ck/'trainer_state.pt').write_bytes(b'\x00garbage')
    with pytest.raises(CheckpointError, match=r'trainer_state.pt: unreadable .* resume from an earlier checkpoint_iter_N'): read_checkpoint(ck)
    with pytest.raises(CheckpointError, match='no such checkpoint folder'): read_checkpoint(tmp_path/'nope')
    s = VLMGRPOSystem(preset='tiny', output_dir=tmp_path/'o2', **SMALL)
    with pytest.raises(CheckpointError, match='unreadable'): s.run_training(resume=ck, progress=False)

def _resumed_equals(out, uninterrupted):
    full_out, full = uninterrupted
    res = VLMGRPOSystem(**_kw(out)).run_training(resume=True, progress=False)
    h_full = [_NO_TIME(json.loads(l)) for l in (full_out/'metrics.jsonl').read_text().splitlines()]
    h_res = [_NO_TIME(json.loads(l)) for l in (out/'metrics.jsonl').read_text().splitlines()]
    assert h_res == h_full
    for n in (3, 6):
        a = json.loads((full_out/f'validation_iter_{n}.json').read_text())['rows']
        b = json.loads((out/f'validation_iter_{n}.json').read_text())['rows']
        assert a == b, n
    assert res['final']['reward_rewrite'] == full['final']['reward_rewrite']

KILL_AFTER_CHECKPOINT_4 = '''
    import os
    from vlm_grpo_nb.system import VLMGRPOSystem
    orig = VLMGRPOSystem.save_checkpoint
    def save_then_die(self):
        p = orig(self)
        if self.trainer.step == 4: os._exit(137)   # killed right after checkpoint 4 (steps 5-6 never ran)
        return p
    VLMGRPOSystem.save_checkpoint = save_then_die
    VLMGRPOSystem(preset='tiny', output_dir={out!r}, **{small!r}).run_training(progress=False)
'''

def test_kill_and_resume_matches_uninterrupted(tmp_path, uninterrupted):
    out = tmp_path/'killed'
    r = _run_script(KILL_AFTER_CHECKPOINT_4.format(out=str(out), small=SMALL), tmp_path)
    assert r.returncode == 137, r.stderr[-2000:]
    assert last_checkpoint(out).name == 'checkpoint_iter_4' and not (out/'final_results.json').exists()
    _resumed_equals(out, uninterrupted)

KILL_DURING_WRITE_OF_4 = '''
    import os, torch
    import vlm_grpo_nb.system as S
    real_save = torch.save
    def dying_save(obj, f, *a, **k):
        if isinstance(obj, dict) and obj.get('step') == 4:
            with open(f, 'wb') as fh: fh.write(b'half a checkpoint')
            os._exit(137)                           # killed in the middle of writing checkpoint 4
        return real_save(obj, f, *a, **k)
    S.torch.save = dying_save
    S.VLMGRPOSystem(preset='tiny', output_dir={out!r}, **{small!r}).run_training(progress=False)
'''

def test_kill_during_checkpoint_write_keeps_previous(tmp_path, uninterrupted):
    out = tmp_path/'killed_mid_write'
    r = _run_script(KILL_DURING_WRITE_OF_4.format(out=str(out), small=SMALL), tmp_path)
    assert r.returncode == 137, r.stderr[-2000:]
    assert last_checkpoint(out).name == 'checkpoint_iter_2'                      # the half-written one is not taken
    assert any(p.name.startswith('.tmp-checkpoint_iter_4') for p in out.iterdir())
    assert read_checkpoint(out/'checkpoint_iter_2')['step'] == 2                 # and the previous one loads
    _resumed_equals(out, uninterrupted)

def test_cli_train_enhance_evaluate(tmp_path):
    out = tmp_path/'cli'
    sets = sum([['--set', f'{k}={json.dumps(v)}'] for k, v in {**SMALL, 'training_settings.num_iterations': 4}.items()], [])
    r = subprocess.run(['vlm_grpo', 'train', '--preset', 'tiny', '--output', str(out), '--no-progress', *sets], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert 'validation reward of rewrites' in r.stdout
    r = subprocess.run(['vlm_grpo', 'enhance', 'a cat', '--checkpoint', str(out/'best_model'), '--seed', '0'], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    line = r.stdout.strip().splitlines()[-1]
    assert line.startswith('a cat -> ') and len(line) > len('a cat -> ')
    r = subprocess.run(['vlm_grpo', 'evaluate', '--checkpoint', str(out/'checkpoint_iter_4')], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert 'success rate' in r.stdout and (out/'evaluation.json').exists()
    r = subprocess.run(['vlm_grpo', 'train', '--preset', 'tiny', '--set', 'training_settings.group_size=1'], capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and '`training_settings.group_size` is 1; must be >= 2' in r.stderr

def test_wandb_failures_are_logged_and_never_stop_training(tmp_path, monkeypatch):
    import wandb
    class BrokenRun:
        id = 'broken'
        def log(self, *a, **k): raise ConnectionError('wandb server unreachable')
        def finish(self): raise ConnectionError('wandb server unreachable')
    monkeypatch.setattr(wandb, 'init', lambda **k: BrokenRun())
    kw = {**_kw(tmp_path/'wb'), 'output_settings.wandb.enabled': True, 'training_settings.num_iterations': 2,
          'training_settings.validation_freq': 2}
    res = VLMGRPOSystem(**kw).run_training(progress=False)
    assert res['steps'] == 2 and (tmp_path/'wb'/'final_results.json').exists()
    assert res['wandb_failures'] >= 3            # two steps' logs and a validation table at least
    assert 'wandb log failed (ConnectionError: wandb server unreachable); training goes on without it' in (tmp_path/'wb'/'vlm_grpo_training.log').read_text()

    monkeypatch.setattr(wandb, 'init', lambda **k: (_ for _ in ()).throw(RuntimeError('no wandb login')))
    res = VLMGRPOSystem(**{**kw, 'output_dir': str(tmp_path/'wb2')}).run_training(progress=False)
    assert res['steps'] == 2 and res['wandb_failures'] == 1
