"""The policy-search problem type, the policy protocol and batched rollouts.

A :class:`PolicySearchProblem` is an episodic environment stepped on a batch of
states at once (torch tensors, so many trajectories cost one Python loop over
the horizon), a :class:`Policy` acting on a flat parameter vector ``theta``,
a horizon and a discount. Methods see trajectories only through
:func:`rollout`; the gradient estimators live in :mod:`._gradients`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import torch


@runtime_checkable
class Policy(Protocol):
    """A stochastic policy on a flat parameter vector.

    ``log_prob`` must be differentiable in ``theta`` (twice, for HARPG's
    Hessian-vector term); ``sample`` draws only from ``generator``.

    Examples
    --------
    >>> from itersolve.rl import LinearGaussianPolicy, Policy
    >>> isinstance(LinearGaussianPolicy(state_dim=3, action_dim=1), Policy)
    True
    """

    @property
    def num_params(self) -> int: ...

    def log_prob(
        self, theta: torch.Tensor, states: torch.Tensor, actions: torch.Tensor
    ) -> torch.Tensor:
        """``log pi(actions | states)`` over the leading (batch) dimensions."""
        ...

    def sample(
        self, theta: torch.Tensor, states: torch.Tensor, generator: torch.Generator
    ) -> torch.Tensor:
        """Actions for a batch of states, drawn from ``generator``."""
        ...


class PolicySearchProblem:
    """Maximise ``J(theta) = E[sum_{t < H} discount^t r_t]`` over a policy.

    Subclasses set ``policy``, ``horizon`` and ``discount`` and implement the
    batched environment: :meth:`reset` and :meth:`step`. A problem with a
    closed-form objective (:class:`~itersolve.rl.LinearGaussianLQR`) also
    overrides :meth:`expected_return`.

    Examples
    --------
    A one-state problem whose reward is the action (the policy is linear
    Gaussian on the constant state 1):

    >>> import torch
    >>> from itersolve.rl import LinearGaussianPolicy, PolicySearchProblem, rollout
    >>> class Bandit(PolicySearchProblem):
    ...     policy = LinearGaussianPolicy(state_dim=1, action_dim=1, std=1.0)
    ...     horizon, discount = 1, 1.0
    ...     def reset(self, n, generator):
    ...         return torch.ones(n, 1, dtype=torch.float64)
    ...     def step(self, states, actions):
    ...         return states, actions[:, 0], torch.ones(len(states), dtype=torch.bool)
    >>> batch = rollout(Bandit(), torch.tensor([2.0]).double(), 4000,
    ...                 torch.Generator().manual_seed(0))
    >>> round(float(batch.returns().mean()), 1)  # E[a] = theta
    2.0
    """

    policy: Policy
    horizon: int
    discount: float

    def reset(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """``n`` initial states, drawn from ``generator``."""
        raise NotImplementedError

    def step(
        self, states: torch.Tensor, actions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(next_states, rewards, terminated)`` for a batch (no randomness
        other than what :meth:`transition_noise` draws)."""
        raise NotImplementedError

    def transition_noise(
        self, states: torch.Tensor, generator: torch.Generator
    ) -> torch.Tensor | None:
        """Noise added to ``step``'s next states (``None``: deterministic)."""
        return None

    def expected_return(self, theta: torch.Tensor) -> torch.Tensor | None:
        """``J(theta)`` in closed form, or ``None`` when it has none."""
        return None


def check_problem(problem: object) -> PolicySearchProblem:
    if not isinstance(problem, PolicySearchProblem):
        raise TypeError(
            "problem must be a PolicySearchProblem such as LinearGaussianLQR() or "
            f"CartPole(), got {type(problem).__name__}"
        )
    if not isinstance(problem.policy, Policy):
        raise TypeError(
            "problem.policy must implement num_params, log_prob and sample, got "
            f"{type(problem.policy).__name__}"
        )
    if not isinstance(problem.horizon, int) or problem.horizon < 1:
        raise ValueError(f"horizon must be a positive int, got {problem.horizon!r}")
    if not 0.0 < problem.discount <= 1.0:
        raise ValueError(f"discount must be in (0, 1], got {problem.discount!r}")
    return problem


@dataclass(frozen=True)
class Trajectories:
    """A batch of ``N`` episodes padded to a common length ``T <= horizon``.

    ``states`` ``(T, N, ...)``, ``actions`` ``(T, N, ...)``, ``rewards`` and
    ``mask`` ``(T, N)``: ``mask[t, i]`` is 1 while episode ``i`` is running
    (the step that terminates it included, as gymnasium rewards it).

    Examples
    --------
    >>> import torch
    >>> batch = Trajectories(torch.zeros(2, 1, 1), torch.zeros(2, 1, 1),
    ...                      torch.tensor([[1.0], [1.0]]), torch.ones(2, 1))
    >>> batch.returns(), batch.rewards_to_go(0.5).flatten()
    (tensor([2.]), tensor([1.5000, 0.5000]))
    """

    states: torch.Tensor
    actions: torch.Tensor
    rewards: torch.Tensor
    mask: torch.Tensor

    @property
    def num(self) -> int:
        return int(self.mask.shape[1])

    @property
    def env_steps(self) -> int:
        return int(self.mask.sum())

    def returns(self) -> torch.Tensor:
        """Undiscounted return of each episode, shape ``(N,)``."""
        return (self.rewards * self.mask).sum(0)

    def rewards_to_go(self, discount: float) -> torch.Tensor:
        """``sum_{t' >= t} discount^t' r_t'`` (GPOMDP weights), ``(T, N)``."""
        T = self.rewards.shape[0]
        powers = discount ** torch.arange(T, dtype=self.rewards.dtype)
        weighted = (self.rewards * self.mask) * powers[:, None]
        return weighted.flip(0).cumsum(0).flip(0)


def rollout(
    problem: PolicySearchProblem,
    theta: torch.Tensor,
    n: int,
    generator: torch.Generator,
) -> Trajectories:
    """Sample ``n`` episodes of ``problem.policy`` at ``theta`` (no gradient).

    Examples
    --------
    >>> import torch
    >>> from itersolve.rl import LinearGaussianLQR, rollout
    >>> problem = LinearGaussianLQR(state_dim=2, action_dim=1, horizon=5)
    >>> theta = torch.zeros(problem.policy.num_params, dtype=torch.float64)
    >>> batch = rollout(problem, theta, 3, torch.Generator().manual_seed(0))
    >>> tuple(batch.rewards.shape), batch.env_steps
    ((5, 3), 15)
    """
    theta = theta.detach()
    policy = problem.policy
    states_t, actions_t, rewards_t, mask_t = [], [], [], []
    with torch.no_grad():
        s = problem.reset(n, generator)
        alive = torch.ones(n, dtype=torch.bool)
        for _ in range(problem.horizon):
            a = policy.sample(theta, s, generator)
            s_next, r, terminated = problem.step(s, a)
            noise = problem.transition_noise(s, generator)
            if noise is not None:
                s_next = s_next + noise
            states_t.append(s)
            actions_t.append(a)
            rewards_t.append(r)
            mask_t.append(alive)
            alive = alive & ~terminated
            if not bool(alive.any()):
                break
            s = s_next
    dtype = states_t[0].dtype
    return Trajectories(
        torch.stack(states_t),
        torch.stack(actions_t),
        torch.stack(rewards_t).to(dtype),
        torch.stack(mask_t).to(dtype),
    )


def schedule(base: float, decay: float, offset: float, t: int) -> float:
    """``base * (offset / (t + offset)) ** decay``: 1 at ``t = 0`` for ``base=1``.

    >>> schedule(1.0, 1.0, 2.0, 2)
    0.5
    """
    return base * math.pow(offset / (t + offset), decay)
