"""Random Markov decision processes on graphs (the value-prediction task of
convergent graph solvers, Park, Choo and Park, ICLR 2022).

A deterministic MDP with ``n`` states and ``m`` actions is a directed graph with
``n m`` edges: action ``a`` in state ``s`` moves to ``next_state[s, a]`` and
earns ``rewards[s, a]``. The value of a policy ``pi`` solves the linear system
``(I - gamma P_pi) v = r_pi`` (``P_pi[s, s'] = sum of pi(a|s)`` over the
actions leading to ``s'``, ``r_pi[s] = sum_a pi(a|s) r[s, a]``), solved here by
a direct sparse factorisation; the optimal values come from policy iteration,
each of whose evaluations is such a direct solve, so they are exact to
rounding (no value-iteration tolerance).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla


def _check_int(value: Any, name: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < low:
        raise ValueError(f"{name} must be >= {low}, got {value}")
    return int(value)


@dataclass(frozen=True)
class RandomMDP:
    """A deterministic MDP on a directed graph, with its values by direct solves.

    Attributes
    ----------
    next_state : numpy.ndarray
        ``(n_states, n_actions)`` int64: the state action ``a`` leads to from ``s``
        (never ``s`` itself; the successors of one state are distinct).
    rewards : numpy.ndarray
        ``(n_states, n_actions)`` float64: the reward of taking ``a`` in ``s``.
    gamma : float
        The discount in ``[0, 1)``.

    Examples
    --------
    >>> from itersolve.problems import random_mdp
    >>> mdp = random_mdp(30, 4, seed=0)
    >>> v = mdp.policy_value()  # the uniform random policy
    >>> q = mdp.rewards + mdp.gamma * v[mdp.next_state]
    >>> bool(np.allclose(v, q.mean(axis=1), atol=1e-12))
    True
    >>> v_star, policy = mdp.optimal_values()
    >>> bool(np.all(v_star >= v - 1e-12))
    True
    """

    next_state: np.ndarray
    rewards: np.ndarray
    gamma: float

    @property
    def n_states(self) -> int:
        return int(self.next_state.shape[0])

    @property
    def n_actions(self) -> int:
        return int(self.next_state.shape[1])

    @property
    def edge_index(self) -> np.ndarray:
        """``(2, n_states n_actions)`` int64: row 0 the state ``s``, row 1 its
        successor ``next_state[s, a]``; edge ``e = s n_actions + a``. Values flow
        against the edges: ``v[s] = sum_e pi_e (r_e + gamma v[edge_index[1, e]])``
        over the edges leaving ``s``."""
        src = np.repeat(np.arange(self.n_states), self.n_actions)
        return np.stack([src, self.next_state.reshape(-1)]).astype(np.int64)

    @property
    def edge_reward(self) -> np.ndarray:
        """``(n_states n_actions,)``: the reward of every edge, in edge order."""
        return self.rewards.reshape(-1).copy()

    def _policy(self, policy: Any) -> np.ndarray:
        shape = (self.n_states, self.n_actions)
        if policy is None:
            return np.full(shape, 1.0 / self.n_actions)
        pi = np.asarray(policy)
        if pi.shape == (self.n_states,) and np.issubdtype(pi.dtype, np.integer):
            if pi.min() < 0 or pi.max() >= self.n_actions:
                raise ValueError(
                    f"policy actions must be in [0, {self.n_actions}), got range "
                    f"[{pi.min()}, {pi.max()}]"
                )
            return np.eye(self.n_actions)[pi]
        if pi.shape != shape:
            raise ValueError(
                f"policy must be an int array of shape ({self.n_states},) or "
                f"probabilities of shape {shape}, got shape {pi.shape}"
            )
        pi = pi.astype(np.float64)
        if (
            not np.all(np.isfinite(pi))
            or pi.min() < 0
            or not np.allclose(pi.sum(axis=1), 1.0, atol=1e-12)
        ):
            raise ValueError("policy probabilities must be >= 0 with rows summing to 1")
        return pi

    def transition_matrix(self, policy: Any = None) -> sp.csr_matrix:
        """``P_pi`` as a sparse ``(n_states, n_states)`` matrix (duplicate
        successors summed)."""
        pi = self._policy(policy)
        src, dst = self.edge_index
        return sp.csr_matrix(
            (pi.reshape(-1), (src, dst)), shape=(self.n_states, self.n_states)
        )

    def policy_value(self, policy: Any = None) -> np.ndarray:
        """The value ``v`` of ``policy`` from ``(I - gamma P_pi) v = r_pi`` (sparse
        LU).

        ``policy``: ``None`` (uniform over the actions), an int array of one
        action per state, or an ``(n_states, n_actions)`` probability array.
        """
        pi = self._policy(policy)
        system = sp.identity(self.n_states, format="csc") - self.gamma * (
            self.transition_matrix(pi).tocsc()
        )
        r = (pi * self.rewards).sum(axis=1)
        return np.asarray(spla.splu(system).solve(r), dtype=np.float64)

    def q_values(self, v: np.ndarray) -> np.ndarray:
        """``Q[s, a] = r[s, a] + gamma v[next_state[s, a]]`` for state values
        ``v``."""
        return (
            self.rewards + self.gamma * np.asarray(v, dtype=np.float64)[self.next_state]
        )

    def optimal_values(self, max_iter: int = 1000) -> tuple[np.ndarray, np.ndarray]:
        """The optimal values ``v*`` and a greedy optimal policy, by policy
        iteration (Howard): evaluate by a direct solve, switch each state to an
        action that improves its Q-value by more than ``1e-12 (1 + |v|)``, stop
        when none does (at most ``m^n`` policies, in practice a few rounds).

        Raises
        ------
        RuntimeError
            No convergence within ``max_iter`` rounds (cannot happen for
            ``gamma < 1`` in exact arithmetic).
        """
        policy = np.argmax(self.rewards, axis=1)
        for _ in range(max_iter):
            v = self.policy_value(policy)
            q = self.q_values(v)
            current = q[np.arange(self.n_states), policy]
            best = np.argmax(q, axis=1)
            better = q[np.arange(self.n_states), best] > current + 1e-12 * (
                1 + np.abs(v)
            )
            if not better.any():
                return v, policy
            policy = np.where(better, best, policy)
        raise RuntimeError(f"policy iteration did not settle in {max_iter} rounds")


def random_mdp(
    n_states: int,
    n_actions: int,
    gamma: float = 0.9,
    seed: int = 0,
    *,
    reward_range: tuple[float, float] = (-1.0, 1.0),
) -> RandomMDP:
    """A random deterministic MDP: each state's ``n_actions`` successors are
    distinct other states drawn uniformly, each action's reward is uniform on
    ``reward_range`` (the generator of the convergent-graph-solver paper's graph
    value iteration task: ``n_states`` in [20, 50), ``n_actions`` in [5, 10),
    rewards ``U[-1, 1]``, discount 0.9).

    Parameters
    ----------
    n_states
        Number of states, ``>= 2``.
    n_actions
        Actions per state, in ``[1, n_states - 1]``.
    gamma
        Discount in ``[0, 1)``.
    seed
        Seed of the numpy generator (same seed, same MDP).
    reward_range
        ``(low, high)`` with ``low <= high``.

    Returns
    -------
    RandomMDP

    Raises
    ------
    ValueError
        Sizes out of range, ``gamma`` outside ``[0, 1)``, ``low > high``.

    Examples
    --------
    >>> from itersolve.problems import random_mdp
    >>> mdp = random_mdp(20, 5, seed=1)
    >>> mdp.edge_index.shape, mdp.policy_value().shape
    ((2, 100), (20,))
    """
    n = _check_int(n_states, "n_states", 2)
    m = _check_int(n_actions, "n_actions", 1)
    if m > n - 1:
        raise ValueError(
            f"n_actions must be <= n_states - 1 = {n - 1} (distinct successors), "
            f"got {m}"
        )
    if isinstance(gamma, bool) or not isinstance(gamma, int | float):
        raise TypeError(f"gamma must be a float, got {type(gamma).__name__}")
    if not 0 <= gamma < 1:
        raise ValueError(f"gamma must be in [0, 1), got {gamma}")
    low, high = (float(r) for r in reward_range)
    if not (np.isfinite(low) and np.isfinite(high) and low <= high):
        raise ValueError(
            f"reward_range must be finite with low <= high, got {reward_range}"
        )
    rng = np.random.default_rng(seed)
    # Distinct successors other than s: a random m-subset of the n - 1 others,
    # shifted past s.
    picks = np.argsort(rng.random((n, n - 1)), axis=1)[:, :m]
    next_state = picks + (picks >= np.arange(n)[:, None])
    rewards = rng.uniform(low, high, size=(n, m))
    return RandomMDP(next_state.astype(np.int64), rewards, float(gamma))
