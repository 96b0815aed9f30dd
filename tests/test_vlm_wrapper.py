"The policy wrapper beyond the lesson: fault injection, the plain-template path, greedy decoding, train mode, the trainer's use."
import copy, logging, pickle
import pytest
import torch
from vlm_grpo_nb.config import load_config
from vlm_grpo_nb.tiny import tiny_path
from vlm_grpo_nb.grpo import grpo_loss
from vlm_grpo_nb.vlm_wrapper import VLMWrapper, Rewrite, Rollout, clean_rewrite
from vlm_grpo_nb.clip_text import clip_token_count

PROMPTS = ['a cat', 'a lighthouse at dusk']

@pytest.fixture(scope='module')
def policy():
    return VLMWrapper('tiny', load_config(preset='tiny'))

def _recompute(p, ro, **kw):
    out = p.log_probs(ro.prompt_ids, ro.prompt_mask, ro.completion_ids, ro.completion_mask, **kw)
    return out if kw.get('with_entropy') else out.logp

def test_generate_error_in_sample_is_raised_not_hidden(policy):
    "An error in generation (out of memory, a shape bug) goes up to the trainer; it is never turned into fallbacks."
    def boom(*a, **k): raise RuntimeError('simulated OOM')
    policy.model.generate = boom
    n0 = policy.n_fallbacks
    try:
        with pytest.raises(RuntimeError, match='simulated OOM'): policy.sample(PROMPTS, 3)
        with pytest.raises(RuntimeError, match='simulated OOM'): policy.enhance_prompts(PROMPTS)
    finally: del policy.model.generate
    assert policy.n_fallbacks == n0

def test_error_in_cleaning_is_raised_unless_it_is_a_row_error(policy, monkeypatch):
    "Cleaning errors of the expected kinds make that row a fallback; any other error is raised."
    import vlm_grpo_nb.vlm_wrapper as vw
    def bad_clean(*a, **k): raise AttributeError('a bug in cleaning')
    monkeypatch.setattr(vw, 'clean_rewrite', bad_clean)
    with pytest.raises(AttributeError, match='a bug in cleaning'): policy.sample(PROMPTS, 2)
    def row_error(*a, **k): raise UnicodeError('one row cannot be cleaned')
    monkeypatch.setattr(vw, 'clean_rewrite', row_error)
    ro = policy.sample(PROMPTS, 2)
    assert ro.n_fallbacks == 4 and all(t.reason == 'error: UnicodeError: one row cannot be cleaned' for t in ro.texts)
    assert ro.completion_mask.sum() > 0   # the sampled tokens are kept

def test_plain_template_and_echo(tmp_path):
    "A tokenizer without a chat template gets PLAIN_TEMPLATE, and its 'Detailed prompt:' echo is stripped."
    from transformers import AutoTokenizer, AutoModelForCausalLM
    src = tiny_path('policy')
    tok = AutoTokenizer.from_pretrained(src); tok.chat_template = None
    tok.save_pretrained(tmp_path); AutoModelForCausalLM.from_pretrained(src).save_pretrained(tmp_path)
    (tmp_path/'chat_template.jinja').unlink(missing_ok=True)
    p = VLMWrapper(str(tmp_path), load_config(preset='tiny'))
    assert p.template_kind == 'plain' and p.echoes == ('Detailed prompt:',)
    assert p.format_prompt('a cat').endswith('Short prompt: a cat\nDetailed prompt:')
    r = clean_rewrite(' Detailed prompt: a cat in a hat', 'a cat', 77, 0.5, p.special_tokens, p.echoes)
    assert (r, r.fallback) == ('a cat in a hat', False)
    ro = p.sample(['a cat'], 2, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(_recompute(p, ro), ro.logprobs, atol=1e-5, rtol=0)

def test_greedy_is_deterministic_and_logprobs_match():
    cfg = load_config(preset='tiny', **{'generation_settings.vlm_generation.do_sample': False})
    p = VLMWrapper('tiny', cfg)
    a, b = p.sample(PROMPTS, 2), p.sample(PROMPTS, 2)
    assert [str(t) for t in a.texts] == [str(t) for t in b.texts]
    assert torch.equal(a.completion_ids[0], a.completion_ids[1])   # greedy: a group is one answer repeated
    torch.testing.assert_close(_recompute(p, a), a.logprobs, atol=1e-5, rtol=0)

def test_sampling_leaves_global_rng_alone_with_generator(policy):
    torch.manual_seed(123); expected = torch.rand(3)
    torch.manual_seed(123); policy.sample(PROMPTS, 2, generator=torch.Generator().manual_seed(0))
    assert torch.equal(torch.rand(3), expected)

def test_train_mode_and_gradient_checkpointing_match_sampling():
    "The trainer calls log_probs in train mode; without dropout that equals sampling time, with checkpointing too."
    cfg = load_config(preset='tiny', model_settings__gradient_checkpointing=True)
    p = VLMWrapper('tiny', cfg)
    ro = p.sample(PROMPTS, 2, generator=torch.Generator().manual_seed(1))
    p.model.train()
    try:
        logp, ent = _recompute(p, ro, with_entropy=True)
        torch.testing.assert_close(logp, ro.logprobs, atol=1e-5, rtol=0)
        (logp.sum() + ent.sum()).backward()
        assert all(q.grad is not None for q in p.model.parameters() if q.requires_grad)
    finally: p.model.eval()
    assert not p.model.training

def test_reference_refresh_by_state_dict_with_lora():
    "The trainer refreshes the reference with ref.load_state_dict(policy.model.state_dict())."
    p = VLMWrapper('tiny', load_config(preset='tiny', model_settings__use_lora=True))
    ref = p.reference_model()
    with torch.no_grad():
        for n, q in p.model.named_parameters():
            if 'lora_B' in n: q.normal_(0, 0.05)
    ref.load_state_dict(p.model.state_dict())
    ro = p.sample(PROMPTS, 2)
    with torch.no_grad(): torch.testing.assert_close(_recompute(p, ro, model=ref), ro.logprobs, atol=1e-5, rtol=0)
    assert not any(q.requires_grad for q in ref.parameters())

def test_truncate_mode_in_sample():
    cfg = load_config(preset='tiny', generation_settings__over_length='truncate')
    p = VLMWrapper('tiny', cfg)
    long = 'a very detailed painting of ' + ' and '.join(['a red fox'] * 40)
    ro = p.sample([long], 2)
    assert clip_token_count(ro.prompts[0]) <= cfg.token_settings.max_prompt_length and p.n_truncated == 1
    assert all(clip_token_count(t) <= cfg.token_settings.max_prompt_length for t in ro.texts)

def test_token_limits_come_from_config():
    cfg = load_config(preset='tiny', token_settings__max_new_tokens=5, token_settings__max_prompt_length=20,
                      token_settings__max_sequence_length=25)
    p = VLMWrapper('tiny', cfg)
    ro = p.sample(PROMPTS, 2)
    assert ro.completion_ids.shape[1] <= 5
    assert all(clip_token_count(t) <= 20 for t in ro.texts)
    with pytest.raises(ValueError, match='max_prompt_length=20'): p.check_prompt(' '.join(['cat'] * 30))

def test_bad_inputs(policy):
    with pytest.raises(TypeError, match=r'prompts\[1\] must be a str, got int'): policy.sample(['a cat', 3], 2)
    with pytest.raises(ValueError, match='group_size must be an int >= 1'): policy.sample(['a cat'], True)
    with pytest.raises(ValueError, match='batch_size must be an int >= 1'): policy.enhance_prompts(['a cat'], batch_size=0)
    with pytest.raises(ValueError, match="prompt_template must contain"):
        VLMWrapper('tiny', load_config(preset='tiny', generation_settings__prompt_template='no placeholder'))
    with pytest.raises(ValueError, match='lora_target_modules'):
        VLMWrapper('tiny', load_config(preset='tiny', model_settings__use_lora=True, model_settings__lora_target_modules=['nope']))

def test_rollout_and_rewrite_pickle(policy):
    ro = policy.sample(PROMPTS, 2)
    ro2 = pickle.loads(pickle.dumps(ro))
    assert isinstance(ro2, Rollout) and [t.raw for t in ro2.texts] == [t.raw for t in ro.texts]
    assert torch.equal(ro2.logprobs, ro.logprobs)

def test_checkpointing_is_on_when_asked():
    p = VLMWrapper('tiny', load_config(preset='tiny', model_settings__gradient_checkpointing=True))
    on = getattr(p.model, 'is_activation_checkpointing', None)
    assert on if on is not None else p.model.is_gradient_checkpointing

def test_vl_lora_save_and_exact_resume(tmp_path):
    cfg = load_config(preset='tiny', model_settings__use_lora=True)
    p = VLMWrapper('tiny-vl', cfg)
    assert p.is_vl and all('language_model' in n for n, q in p.model.named_parameters() if q.requires_grad)
    with torch.no_grad():
        for n, q in p.model.named_parameters():
            if 'lora_B' in n: q.normal_(0, 0.05)
    ro = p.sample(PROMPTS, 2, generator=torch.Generator().manual_seed(0))
    p.save(tmp_path/'vl')
    q = VLMWrapper(str(tmp_path/'vl'), cfg)
    a, b = p.model.state_dict(), q.model.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    with torch.no_grad(): torch.testing.assert_close(_recompute(q, ro), ro.logprobs, atol=1e-5, rtol=0)
