"The CLIP reward: preprocessing parity, running statistics, flags, the text cache, token counting, and the generator's images end to end."
import logging, math
import numpy as np
import PIL.Image
import pytest, torch
import open_clip
from vlm_grpo_nb.config import load_config, set_seed
from vlm_grpo_nb.clip_reward import (CLIPRewardCalculator, RewardResult, RewardNormalizer, _fit, length_penalty,
                                     repetition_penalty)

@pytest.fixture(scope='module')
def calc(): return CLIPRewardCalculator(config=load_config(preset='tiny'))

def calc_with(**kw): return CLIPRewardCalculator(config=load_config(preset='tiny', **kw))

def test_preprocess_matches_open_clip_for_many_sizes(calc):
    _, _, oc = open_clip.create_model_and_transforms(calc.location)
    rng = np.random.default_rng(0)
    sizes = [(64, 64), (63, 65), (128, 96), (40, 200), (300, 64), (17, 23)]
    pils = [PIL.Image.fromarray((rng.random((h, w, 3)) * 255).astype(np.uint8)) for h, w in sizes]
    ours, theirs = calc.preprocess(pils), torch.stack([oc(p) for p in pils])
    assert ours.shape == theirs.shape == (len(sizes), 3, 64, 64)
    # same geometry (resize, crop offsets); only interpolation rounding differs
    assert (ours - theirs).abs().mean(dim=(1, 2, 3)).max() < 0.05
    # a batched tensor and the same images one by one agree exactly
    x = torch.rand(3, 3, 80, 120)
    torch.testing.assert_close(calc.preprocess(x), calc.preprocess(list(x)))

@pytest.mark.parametrize('mode', ['shortest', 'longest', 'squash'])
def test_fit_non_square_targets(mode):
    x = torch.rand(2, 3, 50, 90)
    assert _fit(x, (32, 48), mode).shape == (2, 3, 32, 48)
    assert _fit(x, (48, 32), mode).shape == (2, 3, 48, 32)

def test_running_statistics_follow_the_ema():
    n, m = RewardNormalizer('running', momentum=0.25), 0.25
    batches = [torch.tensor([0.1, 0.2, 0.3]), torch.tensor([0.5, 0.7]), torch.tensor([0.0, 1.0, float('nan')])]
    mean = sq = None
    for b in batches:
        v = b[~b.isnan()].double()
        mean = v.mean().item() if mean is None else (1 - m) * mean + m * v.mean().item()
        sq = (v**2).mean().item() if sq is None else (1 - m) * sq + m * (v**2).mean().item()
        out = n('relevance', b)
    std = math.sqrt(sq - mean**2 + n.eps)
    torch.testing.assert_close(out[:2], (batches[-1][:2] - mean) / std)
    assert n.stats['relevance']['count'] == 3

def test_all_flagged_batch_embeds_nothing_and_keeps_stats(monkeypatch):
    c = calc_with(reward_settings__normalization='running')
    c.calculate_rewards(torch.rand(2, 3, 64, 64), ['a cat', 'a dog'])
    state = c.state_dict()
    monkeypatch.setattr(c.model, 'encode_image', lambda x: (_ for _ in ()).throw(AssertionError('encoded a flagged image')))
    res = c.calculate_rewards(torch.full((2, 3, 64, 64), float('nan')), ['a cat', 'a dog'], flags=['nan', 'black'])
    assert res.total.isnan().all() and res.breakdown['relevance'].isnan().all()
    assert res.breakdown['penalty'].tolist() == [0.0, 0.0]
    assert c.state_dict() == state
    assert math.isnan(res.mean()['total'])

def test_empty_batch(calc):
    res = calc.calculate_rewards([], [])
    assert isinstance(res, RewardResult) and res.total.shape == (0,) and res.breakdown['alignment'].shape == (0,)

def test_results_are_cpu_float32_and_single_matches_batch(calc):
    set_seed(0); x = torch.rand(3, 3, 64, 64)
    res = calc.calculate_rewards(x, ['a cat', 'a dog', 'a fox'], ['cat', 'dog', 'fox'])
    assert all(t.device.type == 'cpu' and t.dtype == torch.float32 for t in [res.total, *res.breakdown.values()])
    assert calc.calculate_reward(x[1], 'a dog', 'dog') == pytest.approx(res.total[1].item(), abs=1e-5)

def test_cache_limit_and_disabled_cache():
    c = calc_with(reward_settings__text_cache_size=3)
    for i in range(10): c.text_features([f'prompt {i}', 'shared'])
    assert len(c._text_cache) <= 3 and 'shared' in c._text_cache
    assert c.text_encodes == 11 and c.cache_hits == 9
    off = calc_with(reward_settings__text_cache_size=0)
    off.text_features(['a']); off.text_features(['a'])
    assert (off.text_encodes, off.cache_hits, len(off._text_cache)) == (2, 0, 0)

def test_token_counting_fallback_is_logged_once(calc, monkeypatch, caplog):
    c = calc_with()
    expected = c.count_tokens(['a cat on a mat', 'x'])
    monkeypatch.setattr(c, 'tokenizer', lambda texts: open_clip.tokenize(texts))   # a tokenizer that cannot count
    records = []
    h = logging.Handler(); h.emit = records.append
    logging.getLogger('vlm_grpo_nb').addHandler(h)
    try:
        assert c.count_tokens(['a cat on a mat', 'x']) == expected
        c.count_tokens(['again'])
    finally: logging.getLogger('vlm_grpo_nb').removeHandler(h)
    assert sum('cannot count tokens' in r.getMessage() for r in records) == 1

def test_penalty_reads_max_prompt_length_from_config():
    c = calc_with(token_settings__max_prompt_length=10, token_settings__max_sequence_length=35)
    assert c.max_length == 10
    text = 'one two three four five six seven eight nine'   # 9 words + start/end = 11 tokens
    assert c.count_tokens([text]) == [11]
    assert c.penalty([text]).item() == -1.0
    assert length_penalty(11, 77) == 0.0 and repetition_penalty(text) == 0.0

def test_offline_setting_is_applied():
    import huggingface_hub.constants as hc
    saved = hc.HF_HUB_OFFLINE
    try:
        hc.HF_HUB_OFFLINE = False
        calc_with(model_settings__offline=True)
        assert hc.HF_HUB_OFFLINE
    finally: hc.HF_HUB_OFFLINE = saved

def test_generator_images_score_end_to_end(calc):
    from vlm_grpo_nb.sd_generator import SD3Generator
    gen = SD3Generator('tiny', load_config(preset='tiny'))
    batch = gen.generate_images(['a cat', 'a cat', 'a dog', 'a dog'], [1, 2, 3, 4])
    batch.flags[1] = 'flat'   # as if the generator had flagged it
    res = calc.calculate_rewards(batch.tensors, ['a cat, photo', 'a cat, painting', 'a dog', 'a dog, sketch'],
                                 ['a cat', 'a cat', 'a dog', 'a dog'], group_size=2, flags=batch.flags)
    assert res.total.isnan().tolist() == [False, True, False, False]
    im = PIL.Image.fromarray((batch.tensors[0].permute(1, 2, 0) * 255).round().byte().numpy())
    pil = calc.calculate_rewards([im], ['a cat, photo'], ['a cat'])
    assert pil.total.item() == pytest.approx(res.total[0].item(), abs=0.02)

def test_scores_do_not_depend_on_the_global_default_dtype(calc):
    "A user (or another library) running with float64 as torch's default dtype still gets float32 rewards, equal to the usual ones."
    imgs, texts = torch.rand(4, 3, 64, 64, generator=torch.Generator().manual_seed(0)), ['a cat', 'a dog', 'a red car', 'a blue sea']
    want = calc.calculate_rewards(imgs, texts, flags=[None, 'black', None, None], update_stats=False)
    old = torch.get_default_dtype(); torch.set_default_dtype(torch.float64)
    try: got = calc.calculate_rewards(imgs, texts, flags=[None, 'black', None, None], update_stats=False)
    finally: torch.set_default_dtype(old)
    assert got.total.dtype == torch.float32
    torch.testing.assert_close(got.total, want.total, equal_nan=True)
