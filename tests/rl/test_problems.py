"""The rl problems and estimators against exact quantities.

LQR: the closed-form return against Monte Carlo, the optimum's first- and
second-order conditions, the GPOMDP gradient and both Hessian-vector
estimators unbiased (batch means within 4 standard errors of the closed
forms). CartPole: step for step against gymnasium's CartPole-v1.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from itersolve.rl import (
    CartPole,
    LinearGaussianLQR,
    SoftmaxMLPPolicy,
    gradient_estimate,
    hessian_vector_estimate,
    rollout,
)


def _zscores(samples: torch.Tensor, exact: torch.Tensor) -> torch.Tensor:
    se = samples.std(0) / samples.shape[0] ** 0.5
    return (samples.mean(0) - exact) / se


def test_closed_form_return_matches_monte_carlo(lqr):
    theta = 0.5 * lqr.optimal_theta()
    batch = rollout(lqr, theta, 20000, torch.Generator().manual_seed(0))
    returns = batch.rewards_to_go(lqr.discount)[0]
    z = (returns.mean() - lqr.expected_return(theta)) / (returns.std() / 20000**0.5)
    assert abs(float(z)) < 4


def test_optimum_is_a_strict_maximum_beyond_the_infinite_horizon_gain(lqr):
    theta = lqr.optimal_theta()
    assert float(lqr.gradient(theta).norm()) < 1e-9
    assert bool((torch.linalg.eigvalsh(lqr.hessian(theta)) < 0).all())
    assert lqr.optimal_return() >= float(
        lqr.expected_return(lqr.infinite_horizon_theta())
    )


def test_closed_form_derivatives_match_finite_differences(lqr):
    theta = 0.3 * lqr.optimal_theta()
    u = torch.linspace(-1, 1, 6, dtype=torch.float64)
    h = 1e-6
    fd = (lqr.expected_return(theta + h * u) - lqr.expected_return(theta - h * u)) / (
        2 * h
    )
    assert float(fd) == pytest.approx(float(lqr.gradient(theta) @ u), rel=1e-6)
    fd_hvp = (lqr.gradient(theta + h * u) - lqr.gradient(theta - h * u)) / (2 * h)
    torch.testing.assert_close(lqr.hvp(theta, u), fd_hvp, rtol=1e-5, atol=1e-6)


def test_gradient_estimate_is_unbiased(lqr):
    theta = 0.5 * lqr.optimal_theta()
    g = torch.Generator().manual_seed(1)
    samples = torch.stack(
        [gradient_estimate(lqr, theta, rollout(lqr, theta, 25, g)) for _ in range(40)]
    )
    assert _zscores(samples, lqr.gradient(theta)).abs().max() < 4


@pytest.mark.parametrize("causal", [False, True])
def test_hessian_vector_estimate_is_unbiased(lqr, causal):
    theta = 0.5 * lqr.optimal_theta()
    u = torch.tensor([1.0, -0.5, 0.2, 0.3, 0.0, -1.0], dtype=torch.float64)
    g = torch.Generator().manual_seed(2)
    samples = torch.stack(
        [
            hessian_vector_estimate(
                lqr, theta, rollout(lqr, theta, 25, g), u, causal=causal
            )
            for _ in range(40)
        ]
    )
    assert _zscores(samples, lqr.hvp(theta, u)).abs().max() < 4


def test_causal_hessian_estimate_equals_paper_form_for_one_step_episodes():
    # With H = 1 each reward follows every action, so the forms coincide.
    problem = LinearGaussianLQR(state_dim=2, action_dim=1, horizon=1)
    theta, u = torch.tensor([0.1, -0.2]).double(), torch.tensor([1.0, 2.0]).double()
    batch = rollout(problem, theta, 16, torch.Generator().manual_seed(0))
    torch.testing.assert_close(
        hessian_vector_estimate(problem, theta, batch, u, causal=True),
        hessian_vector_estimate(problem, theta, batch, u, causal=False),
    )


def test_cartpole_step_matches_gymnasium_on_random_states():
    env = gym.make("CartPole-v1").unwrapped
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    states = rng.uniform([-2.4, -3, -0.2, -3], [2.4, 3, 0.2, 3], size=(200, 4))
    actions = rng.integers(0, 2, size=200)
    ours, reward, done = CartPole().step(
        torch.from_numpy(states), torch.from_numpy(actions)
    )
    for i in range(200):
        env.state = states[i].copy()
        env.steps_beyond_terminated = None
        _, r, terminated, _, _ = env.step(int(actions[i]))
        np.testing.assert_allclose(ours[i].numpy(), env.state, rtol=0, atol=1e-12)
        assert float(reward[i]) == r and bool(done[i]) == terminated


def test_cartpole_episode_matches_gymnasium_step_for_step():
    env = gym.make("CartPole-v1")
    obs, _ = env.reset(seed=3)
    problem = CartPole()
    state = torch.from_numpy(env.unwrapped.state.copy())[None]
    rng = np.random.default_rng(1)
    for t in range(500):
        action = int(rng.integers(0, 2))
        obs, _, terminated, truncated, _ = env.step(action)
        state, _, done = problem.step(state, torch.tensor([action]))
        np.testing.assert_allclose(state[0].numpy(), env.unwrapped.state, atol=1e-10)
        np.testing.assert_allclose(state[0].float().numpy(), obs, atol=1e-6)
        assert bool(done[0]) == terminated, t
        if terminated or truncated:
            break
    assert terminated


def test_rollout_masks_finished_episodes_and_counts_steps():
    problem = CartPole(horizon=60, hidden=(4,))
    theta = problem.policy.initial_parameters(seed=0)
    batch = rollout(problem, theta, 6, torch.Generator().manual_seed(0))
    lengths = batch.mask.sum(0)
    assert batch.env_steps == int(lengths.sum())
    assert bool((lengths >= 8).all()) and bool((lengths <= 60).all())
    # once an episode ends its mask stays 0
    assert bool((batch.mask[1:] <= batch.mask[:-1]).all())
    torch.testing.assert_close(batch.returns(), lengths.to(batch.rewards.dtype))


def test_softmax_policy_sampling_follows_its_probabilities():
    policy = SoftmaxMLPPolicy(state_dim=4, num_actions=3, hidden=(5,))
    theta = 30 * policy.initial_parameters(seed=1)
    s = torch.ones(20000, 4) * 0.3
    actions = policy.sample(theta, s, torch.Generator().manual_seed(0))
    probs = torch.softmax(policy.logits(theta, s[0]), -1)
    assert float(probs.min()) > 0.02  # every action is exercised
    freq = torch.bincount(actions, minlength=3).float() / 20000
    torch.testing.assert_close(freq, probs.float(), atol=0.015, rtol=0)


def test_hessian_vector_estimate_leaves_no_graph_behind(lqr):
    """The double backward runs through ``torch.autograd.grad`` only: after
    warm-up, repeated estimates leave the number of live tensors unchanged
    (``backward(create_graph=True)`` would keep a reference cycle per call)."""
    import gc

    theta, u = 0.5 * lqr.optimal_theta(), torch.ones(6, dtype=torch.float64)
    batch = rollout(lqr, theta, 5, torch.Generator().manual_seed(0))

    def live() -> int:
        gc.collect()
        # type(), not isinstance(): some torch objects warn on __class__
        return sum(issubclass(type(o), torch.Tensor) for o in gc.get_objects())

    hessian_vector_estimate(lqr, theta, batch, u, causal=True)
    before = live()
    for causal in (False, True) * 25:
        out = hessian_vector_estimate(lqr, theta, batch, u, causal=causal)
        assert out.grad_fn is None and not out.requires_grad
    del out
    assert live() <= before
