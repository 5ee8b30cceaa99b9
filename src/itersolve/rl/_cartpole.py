"""Batched torch CartPole-v1 (gymnasium's dynamics, many episodes at once)."""

from __future__ import annotations

import math

import torch

from itersolve.rl._policies import SoftmaxMLPPolicy
from itersolve.rl._problem import PolicySearchProblem

GRAVITY = 9.8
MASS_CART = 1.0
MASS_POLE = 0.1
TOTAL_MASS = MASS_CART + MASS_POLE
LENGTH = 0.5  # half the pole's length
POLE_MASS_LENGTH = MASS_POLE * LENGTH
FORCE_MAG = 10.0
TAU = 0.02
THETA_THRESHOLD = 12 * 2 * math.pi / 360
X_THRESHOLD = 2.4


class CartPole(PolicySearchProblem):
    """CartPole-v1 on a batch: gymnasium's equations, Euler integrator,
    termination and reward (1 per step, the terminating step included),
    initial state ``U(-0.05, 0.05)^4``, episodes capped at ``horizon`` (500
    in CartPole-v1). States are float64 like gymnasium's internal state (its
    observations are that state rounded to float32); the policy is a
    :class:`~itersolve.rl.SoftmaxMLPPolicy` ``4 -> hidden -> 2``.

    Examples
    --------
    >>> import torch
    >>> from itersolve.rl import CartPole, rollout
    >>> problem = CartPole(hidden=(8,))
    >>> theta = problem.policy.initial_parameters(seed=0)
    >>> batch = rollout(problem, theta, 4, torch.Generator().manual_seed(0))
    >>> bool((batch.returns() >= 8).all()), batch.states.shape[1:]
    (True, torch.Size([4, 4]))
    """

    def __init__(
        self,
        horizon: int = 500,
        *,
        discount: float = 0.99,
        hidden: tuple[int, ...] = (32, 32),
    ) -> None:
        if not isinstance(horizon, int) or horizon < 1:
            raise ValueError(f"horizon must be a positive int, got {horizon!r}")
        if not 0.0 < discount <= 1.0:
            raise ValueError(f"discount must be in (0, 1], got {discount!r}")
        self.horizon, self.discount = horizon, float(discount)
        self.mlp = SoftmaxMLPPolicy(4, 2, tuple(hidden))
        self.policy = self.mlp

    def reset(self, n: int, generator: torch.Generator) -> torch.Tensor:
        u = torch.rand((n, 4), generator=generator, dtype=torch.float64)
        return 0.1 * u - 0.05

    def step(
        self, states: torch.Tensor, actions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x, x_dot, theta, theta_dot = states.to(torch.float64).unbind(-1)
        force = torch.where(actions == 1, FORCE_MAG, -FORCE_MAG).to(torch.float64)
        cos, sin = torch.cos(theta), torch.sin(theta)
        temp = (force + POLE_MASS_LENGTH * theta_dot.square() * sin) / TOTAL_MASS
        theta_acc = (GRAVITY * sin - cos * temp) / (
            LENGTH * (4.0 / 3.0 - MASS_POLE * cos.square() / TOTAL_MASS)
        )
        x_acc = temp - POLE_MASS_LENGTH * theta_acc * cos / TOTAL_MASS
        nxt = torch.stack(
            (
                x + TAU * x_dot,
                x_dot + TAU * x_acc,
                theta + TAU * theta_dot,
                theta_dot + TAU * theta_acc,
            ),
            dim=-1,
        )
        terminated = (
            (nxt[..., 0] < -X_THRESHOLD)
            | (nxt[..., 0] > X_THRESHOLD)
            | (nxt[..., 2] < -THETA_THRESHOLD)
            | (nxt[..., 2] > THETA_THRESHOLD)
        )
        return nxt, torch.ones_like(x), terminated
