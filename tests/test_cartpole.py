"The CartPole GRPO reference must really learn: a short run triples the untrained policy's deterministic return."
import time
import vlm_grpo_nb.cartpole as cp
from vlm_grpo_nb.cartpole import CartPoleConfig, PolicyNet, train_cartpole, evaluate_policy
from vlm_grpo_nb.config import set_seed

STEPS = 20_000

def untrained_return(cfg):
    set_seed(cfg.seed)  # train_cartpole builds its network right after this same call: this is its starting policy
    return evaluate_policy(PolicyNet(hidden=cfg.hidden_size), n_episodes=20, seed=10_000)

def test_short_run_triples_return():
    cfg = CartPoleConfig(seed=0)
    before = untrained_return(cfg)
    t0 = time.time()
    hist = train_cartpole(cfg, max_env_steps=STEPS, progress=False)
    after = evaluate_policy(hist.policy, n_episodes=20, seed=10_000)
    print(f"untrained {before:.1f} -> trained {after:.1f} after {hist[-1]['env_steps']} env steps in {time.time() - t0:.1f} s")
    assert before < 50                 # tripling only means something from a poor start
    assert hist[-1]['env_steps'] >= STEPS
    assert after >= 3 * before, (before, after)

def test_flipped_advantages_do_not_learn(monkeypatch):
    "The same run with the advantages' sign flipped must fail the check above: the check can fail."
    orig = cp.step_advantages
    monkeypatch.setattr(cp, 'step_advantages', lambda *a, **k: -orig(*a, **k))
    cfg = CartPoleConfig(seed=0)
    before = untrained_return(cfg)
    hist = train_cartpole(cfg, max_env_steps=5_000, progress=False)
    assert evaluate_policy(hist.policy, n_episodes=20, seed=10_000) < 3 * before
