"""random_mdp: graph structure, policy values vs a dense solve, optimal values
by policy iteration, bad input."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from itersolve.problems import RandomMDP, random_mdp


def test_graph_structure_and_reproducibility() -> None:
    mdp = random_mdp(30, 6, seed=3)
    src, dst = mdp.edge_index
    assert mdp.edge_index.shape == (2, 180) and mdp.edge_index.dtype == np.int64
    assert np.all(src != dst)
    assert all(len(set(row)) == 6 for row in mdp.next_state)
    assert np.all((mdp.rewards >= -1) & (mdp.rewards <= 1))
    np.testing.assert_array_equal(mdp.edge_reward, mdp.rewards.reshape(-1))
    again = random_mdp(30, 6, seed=3)
    np.testing.assert_array_equal(again.next_state, mdp.next_state)
    np.testing.assert_array_equal(again.rewards, mdp.rewards)
    assert not np.array_equal(random_mdp(30, 6, seed=4).rewards, mdp.rewards)


@pytest.mark.parametrize("policy", ["uniform", "deterministic", "stochastic"])
def test_policy_value_matches_a_dense_solve(policy: str) -> None:
    mdp = random_mdp(25, 5, gamma=0.9, seed=1)
    rng = np.random.default_rng(0)
    pi: np.ndarray | None = None
    if policy == "deterministic":
        pi = rng.integers(0, 5, size=25)
        probs = np.eye(5)[pi]
    elif policy == "stochastic":
        probs = rng.random((25, 5))
        probs /= probs.sum(axis=1, keepdims=True)
        pi = probs
    else:
        probs = np.full((25, 5), 0.2)
    P = np.zeros((25, 25))
    for s, a in itertools.product(range(25), range(5)):
        P[s, mdp.next_state[s, a]] += probs[s, a]
    r = (probs * mdp.rewards).sum(axis=1)
    exact = np.linalg.solve(np.eye(25) - 0.9 * P, r)
    np.testing.assert_allclose(mdp.policy_value(pi), exact, rtol=0, atol=1e-12)
    np.testing.assert_allclose(mdp.transition_matrix(pi).toarray(), P, atol=0)


def test_optimal_values_satisfy_bellman_optimality() -> None:
    mdp = random_mdp(40, 7, seed=2)
    v, policy = mdp.optimal_values()
    q = mdp.q_values(v)
    np.testing.assert_allclose(v, q.max(axis=1), rtol=0, atol=1e-10)
    np.testing.assert_allclose(v, mdp.policy_value(policy), rtol=0, atol=1e-12)
    rng = np.random.default_rng(1)
    for _ in range(5):
        other = mdp.policy_value(rng.integers(0, 7, size=40))
        assert np.all(v >= other - 1e-10)


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "match"),
    [
        ((5, 5), {}, ValueError, r"n_actions must be <= n_states - 1 = 4"),
        ((1, 1), {}, ValueError, "n_states must be >= 2"),
        ((5, 0), {}, ValueError, "n_actions must be >= 1"),
        ((5.0, 2), {}, TypeError, "n_states must be an int"),
        ((5, 2, 1.0), {}, ValueError, r"gamma must be in \[0, 1\)"),
        ((5, 2, -0.1), {}, ValueError, "gamma"),
        ((5, 2), {"reward_range": (1, -1)}, ValueError, "reward_range"),
    ],
)
def test_bad_arguments(args, kwargs, error, match) -> None:
    with pytest.raises(error, match=match):
        random_mdp(*args, **kwargs)


def test_bad_policies() -> None:
    mdp = random_mdp(6, 2)
    assert isinstance(mdp, RandomMDP)
    with pytest.raises(ValueError, match="policy must be"):
        mdp.policy_value(np.zeros((6, 3)))
    with pytest.raises(ValueError, match="rows summing to 1"):
        mdp.policy_value(np.full((6, 2), 0.7))
    with pytest.raises(ValueError, match=r"policy actions must be in \[0, 2\)"):
        mdp.policy_value(np.full(6, 2))
