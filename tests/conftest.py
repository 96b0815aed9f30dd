import os, tempfile
from pathlib import Path
import pytest

# Every test run builds tiny presets into its own cache unless VLM_GRPO_CACHE is set (CI sets it to a fresh folder).
os.environ.setdefault('VLM_GRPO_CACHE', str(Path(tempfile.gettempdir())/'vlm_grpo_nb_test_cache'))
os.environ.setdefault('WANDB_MODE', 'offline')
os.environ.setdefault('WANDB_SILENT', 'true')

@pytest.fixture
def tmp_cfg(tmp_path):
    "Write a user config JSON into tmp_path and return its path."
    import json
    def write(d, name='cfg.json'):
        p = tmp_path/name; p.write_text(json.dumps(d) if not isinstance(d, str) else d); return p
    return write
