"""policy_search and the policy-gradient methods: what is specific to them.

(The contract battery covers max_steps, callbacks, NaN input, kinds and
hyperparameter errors.) Here: with exact oracles substituted for the sampled
estimates every method converges to the LQR optimum (the recursions are right);
with samples every method improves the LQR gap; budgets are counted exactly;
seeds reproduce; bad input raises.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

import itersolve.rl._harpg as harpg_module
from itersolve import ConvergenceWarning, Status
from itersolve.rl import (
    HARPG,
    REINFORCE,
    CartPole,
    LinearGaussianLQR,
    MomentumPG,
    NormalizedHARPG,
    NormalizedPGIGT,
    PolicySearchProblem,
    policy_search,
)


def _gap(problem: LinearGaussianLQR, x) -> float:
    return problem.optimal_return() - float(problem.expected_return(torch.as_tensor(x)))


EXACT_CONFIGS = [
    REINFORCE(step_size=0.004, batch_size=1),
    MomentumPG(step_size=0.004, batch_size=1, momentum=0.5),
    NormalizedPGIGT(step_size=0.3, batch_size=1),
    HARPG(step_size=0.004, batch_size=1),
    NormalizedHARPG(step_size=0.3, batch_size=1),
]


@pytest.mark.parametrize("method", EXACT_CONFIGS, ids=lambda m: type(m).__name__)
def test_recursions_converge_with_exact_oracles(lqr, method, monkeypatch):
    """Exact gradient for g and exact H(theta^) u for v: the IGT and HARPG
    trackers then follow grad J and every method reaches the optimum."""
    monkeypatch.setattr(
        type(method), "gradient", lambda self, run, th, batch: lqr.gradient(th)
    )
    monkeypatch.setattr(
        harpg_module,
        "hessian_vector_estimate",
        lambda problem, point, batch, u, **kw: lqr.hvp(point, u),
    )
    theta0 = torch.zeros(6, dtype=torch.float64)
    sol = policy_search(lqr, theta0, method, trajectory_budget=300, seed=0)
    assert sol.success
    assert _gap(lqr, sol.x) < 1e-3 * _gap(lqr, theta0)


SAMPLED_CONFIGS = [
    REINFORCE(step_size=0.003),
    MomentumPG(step_size=0.003),
    NormalizedPGIGT(step_size=0.3, batch_size=4),
    HARPG(step_size=0.0005, batch_size=10),
    NormalizedHARPG(step_size=0.1, batch_size=10, causal_hvp=True),
]


@pytest.mark.parametrize("method", SAMPLED_CONFIGS, ids=lambda m: type(m).__name__)
def test_every_method_improves_the_lqr_gap(lqr, method):
    """Median over 3 seeds: the sampled runs are noisy (the GPOMDP noise at
    theta = 0 exceeds the gradient), a single seed may end worse."""
    theta0 = torch.zeros(6, dtype=torch.float64)
    gaps = []
    for seed in range(3):
        sol = policy_search(
            lqr, theta0, method, trajectory_budget=600, seed=seed, record=True
        )
        assert sol.success and sol.stats["trajectories"] <= 600
        trace = sol.trace
        assert trace is not None
        assert trace["trajectories"][-1] == sol.stats["trajectories"]
        assert np.all(np.diff(trace["trajectories"]) > 0)
        assert np.isfinite(trace["grad_norm"]).all()
        gaps.append(_gap(lqr, sol.x))
    assert float(np.median(gaps)) < 0.7 * _gap(lqr, theta0)


def test_harpg_counts_two_batches_after_the_first_step(lqr):
    sol = policy_search(
        lqr,
        np.zeros(6),
        HARPG(step_size=1e-4, batch_size=3),
        trajectory_budget=20,
        seed=0,
    )
    # 3 + 6 + 6 = 15; one more step would need 21
    assert sol.stats["trajectories"] == 15 and sol.num_steps == 3


def test_seeds_reproduce_and_differ(lqr):
    def run(seed: int) -> np.ndarray:
        method = NormalizedHARPG(step_size=0.1, batch_size=2)
        return policy_search(
            lqr, np.zeros(6), method, trajectory_budget=30, seed=seed
        ).x

    np.testing.assert_array_equal(run(3), run(3))
    assert not np.array_equal(run(3), run(4))


def test_target_return_stops_early_or_reports_max_steps():
    problem = CartPole(horizon=50, hidden=(4,))
    theta = problem.policy.initial_parameters(seed=0)
    method = REINFORCE(step_size=0.01, batch_size=2)
    sol = policy_search(
        problem, theta, method, trajectory_budget=100, seed=0, target_return=5.0
    )
    assert sol.status is Status.SUCCESS and sol.num_steps == 1
    with pytest.warns(ConvergenceWarning, match="MAX_STEPS.*trajectory_budget"):
        sol = policy_search(
            problem, theta, method, trajectory_budget=4, seed=0, target_return=1e6
        )
    assert sol.status is Status.MAX_STEPS and sol.stats["trajectories"] == 4


def test_default_method_and_float_kinds(lqr):
    sol = policy_search(lqr, [0.0] * 6, trajectory_budget=21, seed=0)
    assert sol.success and isinstance(sol.x, np.ndarray)
    sol = policy_search(lqr, torch.zeros(6), trajectory_budget=21, seed=0)
    assert sol.x.dtype == torch.float32


class _NoGradPolicy:
    """A policy whose log-prob is computed off the autograd graph."""

    def __init__(self, inner):
        self.inner = inner
        self.num_params = inner.num_params

    def log_prob(self, theta, states, actions):
        return self.inner.log_prob(theta.detach(), states, actions)

    def sample(self, theta, states, generator):
        return self.inner.sample(theta, states, generator)


class _Wrapped(PolicySearchProblem):
    def __init__(self, base, policy):
        self.base, self.policy = base, policy
        self.horizon, self.discount = base.horizon, base.discount

    def reset(self, n, generator):
        return self.base.reset(n, generator)

    def step(self, states, actions):
        return self.base.step(states, actions)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"trajectory_budget": 0}, ValueError, "trajectory_budget must be a positive"),
        (
            {"trajectory_budget": 2.5},
            ValueError,
            "trajectory_budget must be a positive",
        ),
        ({"seed": "a"}, TypeError, "seed must be an int"),
        ({"theta0": np.zeros(5)}, ValueError, r"theta0 must have shape \(6,\)"),
        ({"problem": "lqr"}, TypeError, "problem must be a PolicySearchProblem"),
        ({"method": "harpg"}, TypeError, "method must be a method"),
        ({"trajectory_budget": 5}, ValueError, "smaller than one batch"),
        ({"target_return": float("nan")}, ValueError, "target_return must be finite"),
        ({"theta0": torch.zeros(6, device="meta")}, ValueError, "rollouts on the CPU"),
    ],
)
def test_bad_input_raises(lqr, kwargs, error, match):
    args = {
        "problem": lqr,
        "theta0": np.zeros(6),
        "method": REINFORCE(batch_size=10),
        "trajectory_budget": 50,
        "seed": 0,
        **kwargs,
    }
    with pytest.raises(error, match=match):
        policy_search(
            args.pop("problem"), args.pop("theta0"), args.pop("method"), **args
        )


def test_negative_step_sizes_raise():
    for cls in (REINFORCE, MomentumPG, NormalizedPGIGT, HARPG, NormalizedHARPG):
        with pytest.raises(ValueError, match="step_size must be finite and > 0"):
            cls(step_size=-0.1)


def test_non_differentiable_log_prob_raises(lqr):
    problem = _Wrapped(lqr, _NoGradPolicy(lqr.policy))
    with pytest.raises(ValueError, match="log_prob is not differentiable"):
        policy_search(problem, np.zeros(6), trajectory_budget=10, seed=0)


def test_diverging_steps_end_in_nonfinite_status(lqr):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        sol = policy_search(
            lqr, np.zeros(6), REINFORCE(step_size=10.0), trajectory_budget=500, seed=0
        )
    assert sol.status is Status.NONFINITE and not sol.success
