"""Every bad input a user can give, across `train`, `enhance`, `evaluate` and the Python API: each is one line naming
the file, line, key or argument, exit code 2 from the CLI (or the documented exception type), and an existing results
folder is byte-identical afterwards."""
import contextlib, errno, hashlib, io, json, os, shutil, subprocess, sys
from pathlib import Path
import pytest

from vlm_grpo_nb import cli
from vlm_grpo_nb.config import ConfigError, load_config
from vlm_grpo_nb.data import DataError, load_prompts
from vlm_grpo_nb.system import VLMGRPOSystem, CheckpointError, OutputError, read_checkpoint, check_output_dir

SMALL = ['--set', 'training_settings.num_iterations=2', '--set', 'training_settings.checkpoint_freq=2',
         '--set', 'training_settings.num_validation_prompts=4', '--set', 'output_settings.plots=false',
         '--set', 'output_settings.wandb.enabled=false']
GOOD = '{"user_prompt": "a cat", "category": "basic", "difficulty": "easy"}\n'

@pytest.fixture(scope='module')
def world(tmp_path_factory):
    "A finished results folder (made by the CLI in its own process), and a folder of bad files."
    root = tmp_path_factory.mktemp('bad_inputs')
    res = root/'results'
    p = subprocess.run([sys.executable, '-c', 'from vlm_grpo_nb.cli import main; main()', 'train', '--preset', 'tiny', '--output', str(res), '--no-progress', *SMALL],
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-2000:]
    f = root/'files'; f.mkdir()
    (f/'afile.txt').write_text('not a folder')
    (f/'folder.json').mkdir(); (f/'folder.jsonl').mkdir()
    (f/'latin1.json').write_bytes('{"training_settings": {"seed": "caf\xe9"}}'.encode('latin-1'))
    (f/'empty.json').write_text(''); (f/'list.json').write_text('[1, 2]'); (f/'broken.json').write_text('{"a": 1,}')
    (f/'unknown.json').write_text(json.dumps({'training_settings': {'learning_rat': 1e-5}}))
    (f/'wrongtype.json').write_text(json.dumps({'training_settings': {'learning_rate': 'fast'}}))
    (f/'bad_line.jsonl').write_text(GOOD + '{"user_prompt": "a dog",\n')
    (f/'no_field.jsonl').write_text(GOOD + '{"user_prompt": "a dog", "difficulty": "easy"}\n')
    (f/'latin1.jsonl').write_bytes(GOOD.encode() + '{"user_prompt": "caf\xe9", "category": "basic", "difficulty": "easy"}\n'.encode('latin-1'))
    (f/'empty.jsonl').write_text('\n\n')
    (f/'bad_difficulty.jsonl').write_text(GOOD + '{"user_prompt": "a dog", "category": "basic", "difficulty": "extreme"}\n')
    ck = f/'broken_ck'; shutil.copytree(res/'checkpoint_iter_2', ck); (ck/'trainer_state.pt').write_bytes(b'\x00 not a checkpoint')
    ckc = f/'broken_config_ck'; shutil.copytree(res/'checkpoint_iter_2', ckc); (ckc/'config.json').write_text('{"training_settings": ')
    (f/'no_results').mkdir()
    return res, f

def snapshot(folder:Path)->dict:
    "Every file under `folder` (relative path -> sha256 of its bytes)."
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob('*')) if p.is_file()}

def run_cli(argv:list)->tuple:
    "Run `vlm_grpo` in this process: (exit code, stderr)."
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try: cli.main([str(a) for a in argv]); code = 0
        except SystemExit as e: code = e.code
    return code, err.getvalue()

R, F = '{results}', '{files}'   # placeholders, filled in from the fixture
LONG = 'a photo of ' + ' and '.join(['a red fox in the snow'] * 20)
CLI_CASES = {
    # train: the results folder
    'output is a file':          (['train', '--preset', 'tiny', '--output', F + '/afile.txt'], 'afile.txt: is a file, not a folder'),
    'output holds a run':        (['train', '--preset', 'tiny', '--output', R], 'already holds the results of a run; resume it with --resume last'),
    'output under a file':       (['train', '--preset', 'tiny', '--output', F + '/afile.txt/run'], 'afile.txt/run: cannot be written'),
    # train: the config file
    'config missing':            (['train', '--config', F + '/nope.json'], 'nope.json: config file not found'),
    'config is a folder':        (['train', '--config', F + '/folder.json'], 'folder.json: is a folder; pass a JSON config file'),
    'config not UTF-8':          (['train', '--config', F + '/latin1.json'], 'latin1.json: not UTF-8 text'),
    'config empty':              (['train', '--config', F + '/empty.json'], 'empty.json: the file is empty'),
    'config not an object':      (['train', '--config', F + '/list.json'], 'list.json: the config must be a JSON object'),
    'config not JSON':           (['train', '--config', F + '/broken.json'], 'broken.json: not valid JSON (line 1'),
    'config unknown key':        (['train', '--config', F + '/unknown.json'], '`training_settings.learning_rat` is not a known setting'),
    'config wrong type':         (['train', '--config', F + '/wrongtype.json'], "`training_settings.learning_rate` must be a number, got str 'fast'"),
    # train: overrides and options
    'set unknown key':           (['train', '--preset', 'tiny', '--set', 'training_settings.lr=1'], '`training_settings.lr` is not a known setting'),
    'set without =':             (['train', '--set', 'learning_rate'], "override 'learning_rate' must look like section.key=value"),
    'set out of range':          (['train', '--set', 'training_settings.learning_rate=-1'], '`training_settings.learning_rate` is -1.0; must be > 0'),
    'set prompt over 77':        (['train', '--set', 'token_settings.max_prompt_length=90'], '`token_settings.max_prompt_length` is 90; must be >= 1 and <= 77'),
    'set reward out of range':   (['train', '--set', 'reward_settings.max_repeat_fraction=2'], '`reward_settings.max_repeat_fraction` is 2.0; must be >= 0 and <= 1'),
    'unknown preset':            (['train', '--preset', 'huge'], "argument --preset: invalid choice: 'huge'"),
    'unknown option':            (['train', '--epochs', '3'], 'unrecognized arguments: --epochs 3'),
    # train: the data files
    'train file missing':        (['train', '--preset', 'tiny', '--output', F + '/o1', '--set', f'data_settings.train_file={F}/nope.jsonl'], 'nope.jsonl: prompt file not found'),
    'train file bad line':       (['train', '--preset', 'tiny', '--output', F + '/o2', '--set', f'data_settings.train_file={F}/bad_line.jsonl'], 'bad_line.jsonl:2: not valid JSON'),
    'train file missing field':  (['train', '--preset', 'tiny', '--output', F + '/o3', '--set', f'data_settings.train_file={F}/no_field.jsonl'], "no_field.jsonl:2: field 'category' is missing"),
    'train file is a folder':    (['train', '--preset', 'tiny', '--output', F + '/o4', '--set', f'data_settings.train_file={F}/folder.jsonl'], 'folder.jsonl: is a folder'),
    'train file not UTF-8':      (['train', '--preset', 'tiny', '--output', F + '/o5', '--set', f'data_settings.train_file={F}/latin1.jsonl'], 'latin1.jsonl:2: not UTF-8'),
    'train file empty':          (['train', '--preset', 'tiny', '--output', F + '/o6', '--set', f'data_settings.train_file={F}/empty.jsonl'], 'empty.jsonl: no prompts in the file'),
    'val file bad difficulty':   (['train', '--preset', 'tiny', '--output', F + '/o7', '--set', f'data_settings.val_file={F}/bad_difficulty.jsonl'], "bad_difficulty.jsonl:2: field 'difficulty' is 'extreme'"),
    'unknown category':          (['train', '--preset', 'tiny', '--output', F + '/o8', '--set', 'data_settings.categories=["nope"]'], "category ['nope'] not found"),
    # train: resuming
    'resume folder missing':     (['train', '--preset', 'tiny', '--output', R, '--resume', F + '/nope_ck'], 'nope_ck: no such checkpoint folder'),
    'resume broken checkpoint':  (['train', '--preset', 'tiny', '--output', R, '--resume', F + '/broken_ck'], 'broken_ck/trainer_state.pt: unreadable'),
    'resume broken config':      (['train', '--preset', 'tiny', '--output', R, '--resume', F + '/broken_config_ck'], 'broken_config_ck/config.json: not valid JSON'),
    'resume with nothing there': (['train', '--preset', 'tiny', '--output', F + '/no_results', '--resume', 'last'], 'no_results: no checkpoint_iter_N to resume from'),
    'resume another config':     (['train', '--preset', 'tiny', '--output', R, '--resume', 'last', *SMALL, '--set', 'training_settings.seed=1'],
                                  'config.json: training_settings.seed is 42 there but 1 now'),
    # enhance
    'enhance empty prompt':      (['enhance', ''], "prompt 1 '' is empty"),
    'enhance blank prompt':      (['enhance', 'a cat', '   '], "prompt 2 '   ' is empty"),
    'enhance prompt over 77':    (['enhance', LONG], 'CLIP tokens, more than token_settings.max_prompt_length=77'),
    'enhance checkpoint missing': (['enhance', 'a cat', '--checkpoint', F + '/nope_ck'], 'nope_ck: no such folder'),
    'enhance checkpoint a file': (['enhance', 'a cat', '--checkpoint', F + '/afile.txt'], 'afile.txt: is a file'),
    'enhance not a checkpoint':  (['enhance', 'a cat', '--checkpoint', F + '/no_results'], 'neither a best_model nor a checkpoint_iter_N folder'),
    'enhance -n 0':              (['enhance', 'a cat', '-n', '0'], 'argument -n: must be >= 1, got 0'),
    'enhance -n not a number':   (['enhance', 'a cat', '-n', 'three'], "argument -n: 'three' is not an integer"),
    'enhance no prompt':         (['enhance'], 'the following arguments are required: prompts'),
    # evaluate
    'evaluate no checkpoint':    (['evaluate'], 'the following arguments are required: --checkpoint'),
    'evaluate checkpoint missing': (['evaluate', '--checkpoint', F + '/nope_ck'], 'nope_ck: no such folder'),
    'evaluate checkpoint a file': (['evaluate', '--checkpoint', F + '/afile.txt'], 'afile.txt: is a file'),
    'evaluate bad split':        (['evaluate', '--checkpoint', R + '/best_model', '--split', 'test'], "argument --split: invalid choice: 'test'"),
    'evaluate broken config':    (['evaluate', '--checkpoint', F + '/broken_config_ck'], 'broken_config_ck/config.json: not valid JSON'),
    'no command':                ([], 'the following arguments are required: command'),
}

@pytest.mark.parametrize('name', list(CLI_CASES))
def test_cli_bad_input(world, name):
    results, files = world
    argv, expected = CLI_CASES[name]
    argv = [a.replace(R, str(results)).replace(F, str(files)) for a in argv]
    before = snapshot(results)
    code, err = run_cli(argv)
    assert code == 2, (code, err)
    assert len(err.strip().splitlines()) == 1, err        # one line, no traceback
    assert err.startswith('vlm_grpo'), err
    assert expected.replace(R, str(results)).replace(F, str(files)) in err, err
    assert snapshot(results) == before                    # nothing already written is lost or changed

def _disk_full(*a, **k): raise OSError(errno.ENOSPC, 'No space left on device')

def test_cli_disk_full_is_one_line(world, monkeypatch, tmp_path):
    "A full disk (simulated) when the results folder is first written: one line, exit 2, nothing else touched."
    import tempfile
    results, _ = world
    before = snapshot(results)
    monkeypatch.setattr(tempfile, 'NamedTemporaryFile', _disk_full)
    code, err = run_cli(['train', '--preset', 'tiny', '--output', tmp_path/'new'])
    assert code == 2 and len(err.strip().splitlines()) == 1 and 'new: cannot be written (No space left on device)' in err, err
    assert snapshot(results) == before

def test_checkpoint_write_on_full_disk_keeps_the_previous_one(world, monkeypatch, tmp_path):
    "A checkpoint whose write fails (disk full) raises, names the error, and leaves the earlier checkpoint complete."
    import torch
    from vlm_grpo_nb import system as sysmod
    results, _ = world
    out = tmp_path/'run'; shutil.copytree(results, out)
    s = VLMGRPOSystem(preset='tiny', output_dir=out, **{'training_settings.num_iterations': 2, 'training_settings.num_validation_prompts': 4,
                                                        'output_settings.plots': False, 'output_settings.wandb.enabled': False})
    s.load_checkpoint(out/'checkpoint_iter_2')
    s.wandb = sysmod.WandbLogger(s.config, out)
    before = snapshot(out/'checkpoint_iter_2')
    monkeypatch.setattr(torch, 'save', _disk_full)
    s.trainer.step = 4
    with pytest.raises(OSError, match='No space left on device'): s.save_checkpoint()
    assert snapshot(out/'checkpoint_iter_2') == before and not (out/'checkpoint_iter_4').exists()
    assert not [p for p in out.iterdir() if p.name.startswith('.tmp-')]

def _as_nobody(f):
    "Run `f()` in a forked child as user `nobody` (when we are root); return (exit code, stderr text)."
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r); sys.stderr = os.fdopen(w, 'w')
        try:
            if os.getuid() == 0: os.setgid(65534); os.setuid(65534)
            f(); code = 0
        except SystemExit as e: code = e.code
        except BaseException: code = 99
        sys.stderr.flush(); os._exit(code)
    os.close(w)
    with os.fdopen(r) as fh: err = fh.read()
    return os.waitpid(pid, 0)[1] >> 8, err

def test_cli_output_folder_without_write_permission(world):
    "As a user who may not write there (not root, who may write anywhere): one line, exit 2."
    import tempfile
    import vlm_grpo_nb.system, vlm_grpo_nb.data, vlm_grpo_nb.trainer, vlm_grpo_nb.tiny  # imported before dropping privileges,
    load_config(preset='tiny')                                                          # and the defaults read
    results, _ = world
    top = Path(tempfile.mkdtemp(dir='/tmp')); os.chmod(top, 0o755)          # reachable by anyone ...
    locked = top/'locked'; locked.mkdir(); os.chmod(locked, 0o555)        # ... but not writable
    before = snapshot(results)
    code, err = _as_nobody(lambda: cli.main(['train', '--preset', 'tiny', '--output', str(locked/'run')]))
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1 and 'locked/run: cannot be written (Permission denied)' in err, err
    assert snapshot(results) == before
    shutil.rmtree(top)

API_CASES = {
    'config file missing':   (lambda f, r: VLMGRPOSystem(f/'nope.json'), ConfigError, 'nope.json: config file not found'),
    'config not an object':  (lambda f, r: load_config(f/'list.json'), ConfigError, 'list.json: the config must be a JSON object'),
    'unknown preset':        (lambda f, r: load_config(preset='huge'), ConfigError, "preset 'huge' is unknown; presets: tiny"),
    'unknown override':      (lambda f, r: load_config(training_settings__lr=1), ConfigError, 'overrides: `training_settings.lr` is not a known setting'),
    'prompt file a folder':  (lambda f, r: load_prompts(f/'folder.jsonl'), DataError, 'folder.jsonl: is a folder'),
    'prompt file bad line':  (lambda f, r: load_prompts(f/'bad_line.jsonl'), DataError, 'bad_line.jsonl:2: not valid JSON'),
    'broken checkpoint':     (lambda f, r: read_checkpoint(f/'broken_ck'), CheckpointError, 'broken_ck/trainer_state.pt: unreadable'),
    'output is a file':      (lambda f, r: check_output_dir(f/'afile.txt'), OutputError, 'afile.txt: is a file, not a folder'),
    'run over a finished run': (lambda f, r: VLMGRPOSystem(preset='tiny', output_dir=r).run_training(progress=False), OutputError,
                                'already holds the results of a run'),
    'resume from nothing':   (lambda f, r: VLMGRPOSystem(preset='tiny', output_dir=f/'no_results').run_training(resume=True), CheckpointError,
                              'no_results: no checkpoint_iter_N to resume from'),
}

@pytest.mark.parametrize('name', list(API_CASES))
def test_api_bad_input(world, name):
    results, files = world
    f, exc, expected = API_CASES[name]
    before = snapshot(results)
    with pytest.raises(exc) as e: f(files, results)
    assert expected in str(e.value) and '\n' not in str(e.value), str(e.value)
    assert snapshot(results) == before
