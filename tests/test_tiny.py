"Tiny presets build deterministically and atomically; hub ids that cannot be fetched fail fast with a fix."
import hashlib, os, socket, subprocess, sys, textwrap, threading
from pathlib import Path
import pytest
from vlm_grpo_nb import tiny
from vlm_grpo_nb.tiny import tiny_path, resolve_model, set_offline, ModelNotAvailable, TINY_BUILDERS

def _digest(folder):
    h = hashlib.sha256()
    for p in sorted(Path(folder).rglob('*.safetensors')): h.update(p.read_bytes())
    return h.hexdigest()

def test_presets_are_deterministic_and_loadable(tmp_path):
    a = {k: tiny_path(k, tmp_path/'a') for k in TINY_BUILDERS}
    b = {k: tiny_path(k, tmp_path/'b') for k in TINY_BUILDERS}
    for k in TINY_BUILDERS: assert _digest(a[k]) == _digest(b[k]), k
    assert _digest(tiny_path('policy', tmp_path/'c', seed=1)) != _digest(a['policy'])
    from transformers import AutoModelForCausalLM
    from diffusers import DiffusionPipeline
    import open_clip
    assert AutoModelForCausalLM.from_pretrained(a['policy']).config.model_type == 'qwen2'
    assert type(DiffusionPipeline.from_pretrained(a['sd15'])).__name__ == 'StableDiffusionPipeline'
    assert open_clip.create_model_and_transforms(f"local-dir:{a['clip']}")[0].visual.image_size == (64, 64)

def test_failed_build_leaves_nothing(tmp_path, monkeypatch):
    def broken(dest, seed=0):
        Path(dest).mkdir(parents=True); (Path(dest)/'half.bin').write_bytes(b'x'); raise RuntimeError('disk full')
    monkeypatch.setitem(TINY_BUILDERS, 'clip', broken)
    with pytest.raises(RuntimeError, match='disk full'): tiny_path('clip', tmp_path)
    assert list(tmp_path.iterdir()) == []

def test_offline_mode_fails_without_network_call(tmp_path, monkeypatch):
    monkeypatch.setenv('HF_HUB_CACHE', str(tmp_path))
    import huggingface_hub.constants as hc
    monkeypatch.setattr(hc, 'HF_HUB_CACHE', str(tmp_path))
    set_offline(True)
    try:
        with pytest.raises(ModelNotAvailable, match=r"policy model 'Qwen/Qwen2.5-0.5B-Instruct' .* offline mode is on\. Fix:"):
            resolve_model('Qwen/Qwen2.5-0.5B-Instruct', 'policy')
    finally: set_offline(False)

_PROBE = textwrap.dedent('''
    import time
    from vlm_grpo_nb.tiny import resolve_model, ModelNotAvailable
    t = time.perf_counter()
    try: resolve_model("stabilityai/stable-diffusion-3-medium-diffusers", "generator", timeout=3.0)
    except ModelNotAvailable as e: print(f"{time.perf_counter()-t:.3f}"); print(e)
    else: print("resolved")
''')

def _probe(endpoint, tmp_path):
    env = dict(os.environ, HF_ENDPOINT=endpoint, HF_HOME=str(tmp_path/'hf'), HF_HUB_OFFLINE='0')
    out = subprocess.run([sys.executable, '-c', _PROBE], env=env, capture_output=True, text=True, timeout=120).stdout
    secs, *msg = out.strip().splitlines()
    return float(secs), '\n'.join(msg)

@pytest.fixture
def silent_server():
    "A loopback server that accepts connections and never answers: a hub that hangs."
    s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(16); held = []
    def accept():
        while True:
            try: held.append(s.accept()[0])
            except OSError: return
    threading.Thread(target=accept, daemon=True).start()
    yield f'http://127.0.0.1:{s.getsockname()[1]}'
    s.close(); [c.close() for c in held]

def _closed_port():
    s = socket.socket(); s.bind(('127.0.0.1', 0)); port = s.getsockname()[1]; s.close(); return port

@pytest.mark.parametrize('kind', ['refused', 'hangs'])
def test_unreachable_hub_fails_fast_with_fix(kind, tmp_path, request):
    endpoint = f'http://127.0.0.1:{_closed_port()}' if kind == 'refused' else request.getfixturevalue('silent_server')
    secs, msg = _probe(endpoint, tmp_path)
    assert secs < 5, secs
    assert "generator model 'stabilityai/stable-diffusion-3-medium-diffusers'" in msg
    assert 'Fix:' in msg and 'model_settings.sd_model=tiny' in msg
