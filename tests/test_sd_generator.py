"The image generator: progress bar, fresh seeds, flag counting, config mismatches and offline failures."
import logging, time
import pytest, torch
from vlm_grpo_nb.config import load_config, set_seed, ConfigError
from vlm_grpo_nb.tiny import ModelNotAvailable, set_offline
from vlm_grpo_nb.sd_generator import SD3Generator, ImageBatch, check_images

@pytest.fixture(scope='module')
def gen(): return SD3Generator('tiny', load_config(preset='tiny'))

def test_progress_bar_does_not_change_images(gen, capsys):
    p, s = ['a cat', 'a dog', 'a fish'], [1, 2, 3]
    a = gen.generate_images(p, s, chunk_size=2, progress=True)
    assert 'rendering 3 images' in capsys.readouterr().err
    torch.testing.assert_close(a.tensors, gen.generate_images(p, s).tensors, atol=1e-4, rtol=0)

def test_fresh_seeds_are_recorded_and_reproducible(gen):
    set_seed(5); a = gen.generate_images(['a cat', 'a cat'])
    set_seed(5); b = gen.generate_images(['a cat', 'a cat'])
    assert a.seeds == b.seeds and a.seeds[0] != a.seeds[1]
    torch.testing.assert_close(a.tensors, b.tensors)
    assert gen.generate_image('a cat').size == (gen.width, gen.height)

def test_flagged_images_are_counted_logged_and_zeroed(gen, monkeypatch):
    def render(prompts, seeds):
        x = torch.rand(len(prompts), 3, gen.height, gen.width); x[0] = 0; x[1, :, 0, 0] = float('nan'); return x
    monkeypatch.setattr(gen, '_render', render)
    records = []
    h = logging.Handler(); h.emit = records.append
    logging.getLogger('vlm_grpo_nb').addHandler(h)
    try: b = gen.generate_images(['a', 'b', 'c'], [1, 2, 3])
    finally: logging.getLogger('vlm_grpo_nb').removeHandler(h)
    assert b.flags == ['black', 'nan', None] and b.n_flagged == 2 and b.ok.tolist() == [False, False, True]
    assert torch.isfinite(b.tensors).all()
    assert gen.flag_counts['black'] >= 1 and gen.flag_counts['nan'] >= 1
    assert any('2 of 3 images flagged' in r.getMessage() for r in records)

def test_bad_arguments(gen):
    with pytest.raises(ValueError, match='chunk_size must be a positive integer'): gen.generate_images(['a'], [1], chunk_size=0)
    with pytest.raises(TypeError, match='prompt must be a string'): gen.generate_image(['a'])
    with pytest.raises(ValueError, match='group_size must be a positive integer'): gen.generate_groups(['a', 'b'], 0, seed=0)
    with pytest.raises(ValueError, match='n_groups must be a positive integer'): gen.group_seeds(0, 2, seed=0)
    with pytest.raises(ValueError, match='ImageBatch: 1 flags for 2 images'): ImageBatch(torch.zeros(2, 3, 4, 4), [1, 2], [None])
    with pytest.raises(ValueError, match='expected \\(N,3,H,W\\)'): check_images(torch.zeros(3, 4, 4))

def test_sd_type_mismatch_fails_before_loading():
    cfg = load_config(preset='tiny', **{'model_settings.sd_type': 'sd15'})
    with pytest.raises(ValueError, match="sd_type is 'sd15', but .* names StableDiffusion3Pipeline"): SD3Generator('tiny', cfg)

def test_sd_type_forced_matches_auto():
    g = SD3Generator('tiny-sd15', load_config(preset='tiny', **{'model_settings.sd_type': 'sd15'}))
    assert g.kind == 'sd15' and type(g.pipe).__name__ == 'StableDiffusionPipeline'

def test_uncached_hub_model_fails_fast_offline():
    cfg = load_config(preset='tiny', **{'model_settings.offline': True})
    import huggingface_hub.constants as hc
    was, t0 = hc.HF_HUB_OFFLINE, time.perf_counter()
    try:
        with pytest.raises(ModelNotAvailable, match='offline mode is on'):
            SD3Generator('stabilityai/stable-diffusion-3-medium-diffusers', cfg)
    finally: set_offline(was)
    assert time.perf_counter() - t0 < 5
