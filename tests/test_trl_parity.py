"""Parity of `vlm_grpo_nb.grpo` with TRL 1.16's `GRPOTrainer`.

File: /work/venv/lib/python3.11/site-packages/trl/trainer/grpo_trainer.py (trl==1.16.0).

- Loss: we call TRL's own `GRPOTrainer._compute_loss` (lines 3020-3290) as an unbound method on a stub whose attributes
  are set the way `GRPOTrainer.__init__` sets them from a real `GRPOConfig` (lines 811-846, 945-946, 983, 782), with
  TRL's own `_get_per_token_logps_and_entropies` (lines 1419-1508) and a fake model whose forward returns chosen
  per-token log-probabilities and entropies (TRL calls it at line 1498 and reads `outputs.log_probs` /
  `outputs.entropy` at lines 1499-1501).
- Advantages: they are computed inline in `_generate_and_score_completions`, lines 2759-2810. We do not copy them: we
  cut those exact lines out of the installed source and execute them (with TRL's `nanstd` from trl/trainer/utils.py),
  after checking that they sit where this docstring says.
"""
import contextlib, inspect, tempfile, textwrap, types, warnings
from collections import defaultdict
from types import SimpleNamespace

import pytest, torch

trl = pytest.importorskip('trl')
from trl import GRPOConfig
from trl.trainer.grpo_trainer import GRPOTrainer
from trl.trainer.utils import nanstd, entropy_from_logits as trl_entropy_from_logits

from vlm_grpo_nb.grpo import group_advantages, grpo_loss, entropy_from_logits

pytestmark = pytest.mark.skipif(trl.__version__ != '1.16.0', reason='line numbers cited are for trl 1.16.0')
ATOL = 1e-6


# ------------------------------------------------------------------------------------------------ TRL's loss, called

class FakeLM:
    "Stands in for the policy: its forward returns the per-token log-probs and entropies we chose (prompt part: 0)."
    def __init__(self, logp, entropy, n_prompt):
        self.logp, self.entropy, self.n_prompt = logp, entropy, n_prompt
    def __call__(self, input_ids, attention_mask, labels=None, fused_lm_head=False, **kw):
        pad = self.logp.new_zeros(self.logp.shape[0], self.n_prompt)
        return SimpleNamespace(log_probs=torch.cat([pad, self.logp], 1), entropy=torch.cat([pad, self.entropy], 1))


def trl_stub(**cfg):
    "An object with the attributes `_compute_loss` reads, set as `GRPOTrainer.__init__` sets them from `GRPOConfig(**cfg)`."
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        args = GRPOConfig(output_dir=tempfile.mkdtemp(), report_to=[], use_cpu=True, bf16=False, **cfg)
    acc = SimpleNamespace(is_main_process=True, num_processes=1, sync_gradients=True, autocast=contextlib.nullcontext,
                          gather=lambda x: x, gather_for_metrics=lambda x: x, reduce=lambda x, reduction='sum': x)
    s = SimpleNamespace(
        args=args, accelerator=acc, state=SimpleNamespace(global_step=0), model=SimpleNamespace(training=True),
        # grpo_trainer.py lines 811-846
        use_vllm=args.use_vllm, vllm_importance_sampling_correction=args.vllm_importance_sampling_correction,
        loss_type=args.loss_type, importance_sampling_level=args.importance_sampling_level,
        off_policy_mask_threshold=args.off_policy_mask_threshold, top_entropy_quantile=args.top_entropy_quantile,
        entropy_coef=args.entropy_coef, use_adaptive_entropy=args.use_adaptive_entropy,
        _entropy_bonus_enabled=args.entropy_coef != 0.0 or args.use_adaptive_entropy,
        _last_world_entropy=float('inf'), _entropy_window_stats=None, aux_loss_enabled=False,
        # lines 945-946, 983, 782
        epsilon_low=args.epsilon, epsilon_high=args.epsilon_high if args.epsilon_high is not None else args.epsilon,
        beta=args.beta, max_completion_length=args.max_completion_length,
        current_gradient_accumulation_steps=1, _metrics={'train': defaultdict(list), 'eval': defaultdict(list)})
    s._get_per_token_logps_and_entropies = types.MethodType(GRPOTrainer._get_per_token_logps_and_entropies, s)
    return s


def trl_loss(logp, old, ref, adv, mask, entropy=None, n_prompt=3, **cfg):
    "TRL's `_compute_loss` on these per-token values; returns (loss, metrics of the call)."
    s = trl_stub(**cfg)
    B, T = logp.shape
    inputs = dict(prompt_ids=torch.zeros(B, n_prompt, dtype=torch.long), prompt_mask=torch.ones(B, n_prompt, dtype=torch.long),
                  completion_ids=torch.ones(B, T, dtype=torch.long), completion_mask=mask, advantages=adv)
    if old is not None: inputs['old_per_token_logps'] = old
    if ref is not None: inputs['ref_per_token_logps'] = ref
    ent = torch.zeros_like(logp) if entropy is None else entropy
    loss = GRPOTrainer._compute_loss(s, FakeLM(logp, ent, n_prompt), inputs)
    return loss, {k: v[-1] for k, v in s._metrics['train'].items()}


def random_batch(seed, B=6, T=9, spread=0.4):
    "float64 log-probs, old/ref log-probs that differ enough to cross the clip range, advantages, a ragged mask."
    g = torch.Generator().manual_seed(seed)
    logp = torch.randn(B, T, generator=g, dtype=torch.float64) * 0.5 - 2
    old = logp + torch.randn(B, T, generator=g, dtype=torch.float64) * spread
    ref = logp + torch.randn(B, T, generator=g, dtype=torch.float64) * spread
    adv = torch.randn(B, generator=g, dtype=torch.float64)
    lens = torch.randint(1, T + 1, (B,), generator=g)
    mask = (torch.arange(T)[None] < lens[:, None]).long()
    ent = torch.rand(B, T, generator=g, dtype=torch.float64) * 3
    return logp, old, ref, adv, mask, ent


def both(seed, loss_type, beta, eps, eps_high, with_old=True, max_len=12, entropy_coef=0.0):
    "Our loss and TRL's on the same random batch, with their gradients w.r.t. logp."
    logp, old, ref, adv, mask, ent = random_batch(seed)
    old = old if with_old else None
    lp1, lp2 = logp.clone().requires_grad_(), logp.clone().requires_grad_()
    ours, met = grpo_loss(lp1, old, ref, adv, mask, kl_coef=beta, clip_ratio=eps, clip_ratio_high=eps_high, entropy=ent,
                          entropy_coef=entropy_coef, loss_type=loss_type, max_len=max_len)
    theirs, tmet = trl_loss(lp2, old, ref, adv, mask, ent, loss_type=loss_type, beta=beta, epsilon=eps,
                            epsilon_high=eps_high, max_completion_length=max_len, entropy_coef=entropy_coef,
                            use_bias_correction_kl=False)
    ours.backward(); theirs.backward()
    return ours, theirs, lp1.grad, lp2.grad, met, tmet


@pytest.mark.parametrize('loss_type', ['grpo', 'bnpo', 'dr_grpo'])
@pytest.mark.parametrize('beta', [0.0, 0.04])
@pytest.mark.parametrize('eps,eps_high', [(0.2, None), (0.2, 0.28), (0.1, 0.3)])
@pytest.mark.parametrize('with_old', [True, False])
def test_loss_matches_trl(loss_type, beta, eps, eps_high, with_old):
    """Our `grpo_loss` == TRL `GRPOTrainer._compute_loss` (grpo_trainer.py 3020-3290, called), loss and gradient.

    TRL settings: beta=kl_coef, epsilon=eps_low, epsilon_high=eps_high, max_completion_length=max_len,
    use_bias_correction_kl=False (TRL 1.16 defaults it to True: KL * ratio, lines 3104-3105), everything else TRL's default:
    importance_sampling_level='token', delta=None, top_entropy_quantile=1.0, off_policy_mask_threshold=None,
    use_vllm=False, gradient accumulation 1 (TRL divides the loss by it, lines 3155-3167)."""
    for seed in range(3):
        ours, theirs, g1, g2, met, tmet = both(seed, loss_type, beta, eps, eps_high, with_old)
        torch.testing.assert_close(ours, theirs, atol=ATOL, rtol=0)
        torch.testing.assert_close(g1, g2, atol=ATOL, rtol=0)
        assert abs(met['clip_frac'] - tmet['clip_ratio/region_mean']) < ATOL      # lines 3274-3279
        assert abs(met['entropy'] - tmet['entropy']) < ATOL                        # line 3270
        if beta: assert abs(met['kl'] - tmet['kl']) < ATOL                         # line 3268
        if with_old: assert met['clip_frac'] > 0  # the batch does exercise the clip


@pytest.mark.parametrize('loss_type', ['grpo', 'bnpo', 'dr_grpo'])
def test_parity_is_sensitive(loss_type):
    """The comparison can fail: changing eps_high, beta or max_len moves both losses, by the same amount."""
    base = both(0, loss_type, 0.04, 0.2, None)
    for kw in (dict(eps_high=0.28), dict(beta=0.2), dict(max_len=30)):
        args = dict(loss_type=loss_type, beta=0.04, eps=0.2, eps_high=None) | kw
        mx = args.pop('max_len', 12)
        new = both(0, **args, max_len=mx)
        if 'max_len' in kw and loss_type != 'dr_grpo': continue
        assert abs(new[0] - base[0]) > 1e-4 and abs(new[1] - base[1]) > 1e-4, kw
        torch.testing.assert_close(new[0], new[1], atol=ATOL, rtol=0)
    # and a wrong setting on our side is caught: eps_high 0.28 vs TRL's 0.2
    ours, theirs = both(0, loss_type, 0.04, 0.2, 0.28)[0], base[1]
    assert abs(ours - theirs) > 1e-4


def test_on_policy_kl_with_trl_default_bias_correction():
    """On-policy (old_logp None -> ratio 1), TRL's default use_bias_correction_kl=True (lines 3104-3105) changes nothing."""
    logp, _, ref, adv, mask, ent = random_batch(5)
    for lt in ('grpo', 'bnpo', 'dr_grpo'):
        ours, _ = grpo_loss(logp, None, ref, adv, mask, kl_coef=0.1, loss_type=lt, max_len=12)
        theirs, _ = trl_loss(logp, None, ref, adv, mask, loss_type=lt, beta=0.1, max_completion_length=12)
        torch.testing.assert_close(ours, theirs, atol=ATOL, rtol=0)


def test_entropy_bonus_bnpo_matches_trl():
    """With an entropy bonus, TRL subtracts coef * (mean entropy over all real tokens) (lines 3199-3211) whatever the
    loss_type; ours subtracts it per token before aggregating. The two agree for 'bnpo' (checked here) and differ for
    'grpo'/'dr_grpo' (checked too, so a change on either side is noticed)."""
    ours, theirs, g1, g2, *_ = both(1, 'bnpo', 0.04, 0.2, 0.28, entropy_coef=0.05)
    torch.testing.assert_close(ours, theirs, atol=ATOL, rtol=0)
    torch.testing.assert_close(g1, g2, atol=ATOL, rtol=0)
    for lt in ('grpo', 'dr_grpo'):
        ours, theirs, *_ = both(1, lt, 0.04, 0.2, 0.28, entropy_coef=0.05)
        assert abs(ours - theirs) > 1e-4


def test_entropy_from_logits_matches_trl():
    "`entropy_from_logits` == trl.trainer.utils.entropy_from_logits (utils.py line 604)."
    logits = torch.randn(3, 5, 17, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 4
    torch.testing.assert_close(entropy_from_logits(logits), trl_entropy_from_logits(logits), atol=1e-10, rtol=0)


# ------------------------------------------------------------------------------------- TRL's advantages, executed

ADV_FIRST, ADV_LAST = 2759, 2810  # grpo_trainer.py: `unscorable_mask = ...` .. `advantages = torch.nan_to_num(...)`


def trl_advantage_code():
    "Lines 2759-2810 of grpo_trainer.py, cut from the installed source, dedented and compiled."
    lines, start = inspect.getsourcelines(GRPOTrainer._generate_and_score_completions)
    first = next(i for i, l in enumerate(lines) if 'unscorable_mask = torch.isnan(rewards_per_func).all(dim=1)' in l)
    last = next(i for i, l in enumerate(lines) if 'advantages = torch.nan_to_num(advantages, nan=0.0)' in l)
    assert (start + first, start + last) == (ADV_FIRST, ADV_LAST), 'TRL moved the advantage code: update the cited lines'
    return compile(textwrap.dedent(''.join(lines[first:last + 1])), f'grpo_trainer.py:{ADV_FIRST}-{ADV_LAST}', 'exec')


def trl_advantages(rewards, num_generations, scale_rewards):
    "Run TRL's advantage lines with one reward function whose rewards are `rewards` (NaN = unscorable)."
    self = SimpleNamespace(multi_objective_aggregation='sum_then_normalize', scale_rewards=scale_rewards,
                           reward_weights=torch.ones(1, dtype=rewards.dtype), reward_funcs=[None])
    ns = dict(self=self, rewards_per_func=rewards[:, None].clone(), num_generations=num_generations, device='cpu',
              torch=torch, nanstd=nanstd)
    exec(trl_advantage_code(), ns)
    return ns['advantages']


@pytest.mark.parametrize('scale', ['group', 'batch', 'none'])
@pytest.mark.parametrize('G', [2, 4, 8])
def test_advantages_match_trl(scale, G):
    """`group_advantages(scale=s)` == TRL's `scale_rewards=s` (grpo_trainer.py 2759-2810, executed), with NaN rewards,
    an all-equal group and a group with a single valid reward."""
    g = torch.Generator().manual_seed(G)
    for trial in range(5):
        r = torch.randn(5 * G, generator=g, dtype=torch.float64) * 3
        r[:G] = 0.7                                  # all-equal group
        r[G + 1] = float('nan')                      # a missing reward
        r[2 * G:3 * G - 1] = float('nan')            # a group with one valid reward
        if trial: r = r[torch.randperm(len(r), generator=g)]
        torch.testing.assert_close(group_advantages(r, G, scale=scale), trl_advantages(r, G, scale), atol=ATOL, rtol=0)
    # sensitivity: a different scale gives a different answer on both sides
    other = {'group': 'batch', 'batch': 'none', 'none': 'group'}[scale]
    r = torch.randn(4 * G, generator=g, dtype=torch.float64) * 3
    assert (group_advantages(r, G, scale=other) - trl_advantages(r, G, scale)).abs().max() > 1e-3
    assert (trl_advantages(r, G, other) - trl_advantages(r, G, scale)).abs().max() > 1e-3


def test_trl_bool_scale_rewards():
    "GRPOConfig maps scale_rewards True/False to 'group'/'none' (grpo_config.py line 1078); so do we, by name."
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        for b, name in ((True, 'group'), (False, 'none')):
            assert GRPOConfig(output_dir=tempfile.mkdtemp(), use_cpu=True, bf16=False, scale_rewards=b).scale_rewards == name
