"Property tests for `vlm_grpo_nb.grpo` (hypothesis): invariances and identities the GRPO math must satisfy."
import math
import pytest, torch
from hypothesis import given, settings, assume, strategies as st, HealthCheck

from vlm_grpo_nb.grpo import (group_advantages, discounted_returns, k3_kl, clipped_surrogate, entropy_from_logits,
                              grpo_loss)

@pytest.fixture(autouse=True)
def float64():
    "Run these tests in float64, and give the default back: other test files share the process."
    old = torch.get_default_dtype(); torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)

FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
finite = st.floats(-100, 100, allow_nan=False, allow_infinity=False)


@st.composite
def grouped_rewards(draw, min_size=2):
    "Rewards for `n_groups` contiguous groups of `group_size`, as (rewards, group_size)."
    g = draw(st.integers(min_size, 6)); n = draw(st.integers(1, 5))
    return torch.tensor(draw(st.lists(finite, min_size=g * n, max_size=g * n))), g


def group_sums(x, g): return x.view(-1, g).sum(1)


@FAST
@given(grouped_rewards(), st.sampled_from(['group', 'batch', 'none']), st.booleans())
def test_zero_mean_per_group(rg, scale, unbiased):
    r, g = rg
    adv = group_advantages(r, g, scale=scale, unbiased=unbiased)
    assert adv.shape == r.shape and torch.isfinite(adv).all()
    torch.testing.assert_close(group_sums(adv, g), torch.zeros(len(r) // g), atol=1e-9 * (1 + r.abs().max()), rtol=0)


@FAST
@given(grouped_rewards(), st.data())
def test_group_ids_any_order_equals_contiguous(rg, data):
    r, g = rg
    perm = torch.tensor(data.draw(st.permutations(range(len(r)))))
    ids = torch.arange(len(r)) // g * 7 + 3  # any integer labels, not 0..n-1
    adv = group_advantages(r[perm], group_ids=ids[perm])
    torch.testing.assert_close(adv, group_advantages(r, g)[perm])


@FAST
@given(grouped_rewards(), st.data(), st.floats(-50, 50), st.floats(0.5, 10))
def test_group_scale_invariant_to_shift_and_positive_scale(rg, data, shift, mult):
    r, g = rg
    assume((r.view(-1, g).std(1) > 0.5).all())  # a near-constant group is dominated by eps: not a property of it
    k = data.draw(st.integers(0, len(r) // g - 1))
    r2 = r.clone(); r2[k * g:(k + 1) * g] = r2[k * g:(k + 1) * g] * mult + shift
    # |A| <= sqrt(g-1) and eps/std <= 2e-4, so the eps term moves an advantage by < 1e-3
    torch.testing.assert_close(group_advantages(r2, g), group_advantages(r, g), atol=1e-3, rtol=0)


@FAST
@given(grouped_rewards(), st.data())
def test_all_equal_group_is_exactly_zero(rg, data):
    r, g = rg
    r[:g] = data.draw(finite)
    for scale in ('group', 'batch', 'none'):
        assert (group_advantages(r, g, scale=scale)[:g] == 0).all()


@FAST
@given(grouped_rewards(), st.data(), st.sampled_from(['group', 'batch', 'none']))
def test_nan_reward_gets_zero_and_does_not_poison(rg, data, scale):
    r, g = rg
    nan_at = data.draw(st.lists(st.integers(0, len(r) - 1), min_size=1, max_size=len(r) - 1, unique=True))
    rn = r.clone(); rn[nan_at] = float('nan')
    adv = group_advantages(rn, g, scale=scale)
    valid = ~torch.isnan(rn)
    assert torch.isfinite(adv).all() and (adv[~valid] == 0).all()
    # the others get what they would get if the missing rewards had never been there
    ids = torch.arange(len(r)) // g
    torch.testing.assert_close(adv[valid], group_advantages(rn[valid], group_ids=ids[valid], scale=scale))


@FAST
@given(grouped_rewards())
def test_population_std(rg):
    r, g = rg
    assume((r.view(-1, g).std(1) > 1e-3).all())
    want = (r.view(-1, g) - r.view(-1, g).mean(1, keepdim=True)) / (r.view(-1, g).std(1, correction=0, keepdim=True) + 1e-4)
    torch.testing.assert_close(group_advantages(r, g, unbiased=False), want.flatten())


@FAST
@given(st.lists(st.lists(st.floats(-10, 10), min_size=1, max_size=12), min_size=1, max_size=6),
       st.floats(0, 1), st.booleans())
def test_discounted_returns_match_naive_loop(episodes, gamma, left_pad):
    T = max(map(len, episodes)); B = len(episodes)
    r = torch.full((B, T), 123.0); m = torch.zeros(B, T)  # padding holds junk that must not leak
    want = torch.zeros(B, T)
    for b, ep in enumerate(episodes):
        sl = slice(T - len(ep), T) if left_pad else slice(0, len(ep))
        r[b, sl] = torch.tensor(ep); m[b, sl] = 1
        g, out = 0.0, []
        for x in reversed(ep): g = x + gamma * g; out.append(g)
        want[b, sl] = torch.tensor(out[::-1])
    torch.testing.assert_close(discounted_returns(r, gamma, m), want)
    torch.testing.assert_close(discounted_returns(r[0, m[0].bool()], gamma), want[0, m[0].bool()])


@FAST
@given(st.lists(st.floats(-20, 0), min_size=1, max_size=20), st.data())
def test_k3_zero_iff_equal(logps, data):
    lp = torch.tensor(logps)
    assert (k3_kl(lp, lp.clone()) == 0).all()
    d = torch.tensor(data.draw(st.lists(st.floats(1e-3, 5) | st.floats(-5, -1e-3), min_size=len(logps), max_size=len(logps))))
    assert (k3_kl(lp, lp + d) > 0).all()
    assert (k3_kl(lp.float(), (lp + d).float()) > 0).all()


def _pg_grad(adv, mask, loss_type, max_len):
    "The policy-gradient estimator's d loss / d logp: -A * mask / normaliser."
    m = mask.to(torch.float64); B = m.shape[0]
    A = adv[:, None] if adv.dim() == 1 else adv
    norm = {'grpo': m.sum(1, keepdim=True).clamp(min=1) * B, 'bnpo': m.sum().clamp(min=1), 'dr_grpo': B * max_len}[loss_type]
    return -A * m / norm


@FAST
@given(st.integers(1, 5), st.integers(1, 8), st.sampled_from(['grpo', 'bnpo', 'dr_grpo']), st.booleans(),
       st.booleans(), st.integers(0, 2**31 - 1))
def test_on_policy_gradient_is_policy_gradient(B, T, loss_type, per_token_adv, old_none, seed):
    gen = torch.Generator().manual_seed(seed)
    logp = (torch.randn(B, T, generator=gen) - 2).requires_grad_()
    adv = torch.randn(*((B, T) if per_token_adv else (B,)), generator=gen)
    mask = (torch.rand(B, T, generator=gen) > 0.3).long()
    max_len = T + 2
    loss, met = grpo_loss(logp, None if old_none else logp.detach().clone(), None, adv, mask,
                          loss_type=loss_type, max_len=max_len)
    loss.backward()
    torch.testing.assert_close(logp.grad, _pg_grad(adv, mask, loss_type, max_len))
    assert met['clip_frac'] == 0 and math.isclose(met['ratio_mean'], 1.0 if mask.any() else 0.0)


@FAST
@given(st.integers(1, 4), st.integers(1, 6), st.integers(2, 9), st.integers(0, 2**31 - 1))
def test_entropy_matches_definition(B, T, V, seed):
    logits = torch.randn(B, T, V, generator=torch.Generator().manual_seed(seed)) * 5
    p = logits.softmax(-1)
    torch.testing.assert_close(entropy_from_logits(logits), -(p * p.log()).sum(-1))
    torch.testing.assert_close(entropy_from_logits(logits + 1e4), -(p * p.log()).sum(-1), atol=1e-8, rtol=1e-8)


def test_surrogate_clip_zeroes_gradient_outside_the_range():
    logp = torch.tensor([[1.5, 0.5, 1.5, 0.5]]).log().requires_grad_()
    loss, cf = clipped_surrogate(logp, torch.zeros(1, 4), torch.tensor([[1.0, 1.0, -1.0, -1.0]]), clip_ratio=0.2, clip_ratio_high=0.28)
    loss.sum().backward()
    # A>0 above 1.28 and A<0 below 0.8 are clipped (no gradient); the other two are not
    torch.testing.assert_close(logp.grad, torch.tensor([[0.0, -0.5, 1.5, 0.0]]))
    assert cf.item() == 0.5


@pytest.mark.parametrize('call,msg', [
    (lambda: group_advantages(torch.ones(5), 2), 'not divisible by `group_size`'),
    (lambda: group_advantages(torch.ones(4), 2, scale='z'), "`scale` is 'z'"),
    (lambda: group_advantages(torch.ones(4), group_ids=torch.zeros(4)), '`group_ids` must be an integer tensor'),
    (lambda: discounted_returns(torch.ones(2, 3), 0.9, torch.ones(2, 4)), '`mask` has shape (2, 4)'),
    (lambda: k3_kl(torch.ones(3), torch.ones(4)), '`ref_logp` has shape (4,)'),
    (lambda: clipped_surrogate(torch.ones(2, 3), torch.ones(2, 2), torch.ones(2)), '`old_logp` has shape (2, 2)'),
    (lambda: grpo_loss(torch.ones(2, 3), None, None, torch.ones(2), torch.ones(2, 3), loss_type='x'), "`loss_type` is 'x'"),
    (lambda: grpo_loss(torch.ones(2, 3), None, None, torch.ones(2), torch.ones(2, 3), entropy_coef=0.1), 'no `entropy`'),
])
def test_bad_input_names_the_argument(call, msg):
    with pytest.raises(ValueError, match=None) as e: call()
    assert msg in str(e.value)
