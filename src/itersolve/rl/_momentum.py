"""Policy gradient with (heavy-ball) momentum."""

from __future__ import annotations

from dataclasses import dataclass

from itersolve._core.estimators import check_weight, moving_average
from itersolve.rl._base import (
    PolicyGradientMethod,
    PolicyGradientState,
    PolicySearchRun,
)


@dataclass(frozen=True, kw_only=True)
class MomentumPG(PolicyGradientMethod):
    """``d_t = (1 - a) d_{t-1} + a g(tau_t, theta_t)``, ``theta += gamma_t d_t``.

    A moving average of GPOMDP estimates at the *current* iterates (biased by
    the iterates' motion, which :class:`NormalizedPGIGT` transports away).
    Compare with ``torch.optim.SGD(momentum=1 - a)`` on the same estimates.
    Stopping rule: the trajectory budget.

    Parameters
    ----------
    momentum
        Weight ``a`` of the fresh estimate, in ``(0, 1]``.

    Examples
    --------
    >>> import torch
    >>> from itersolve.rl import LinearGaussianLQR, MomentumPG, policy_search
    >>> problem = LinearGaussianLQR(state_dim=2, action_dim=1, horizon=10)
    >>> sol = policy_search(problem, torch.zeros(2, dtype=torch.float64),
    ...                     MomentumPG(), trajectory_budget=100, seed=0)
    >>> sol.num_steps
    10
    """

    step_size: float = 0.005
    batch_size: int = 10
    momentum: float = 0.2

    def __post_init__(self) -> None:
        super().__post_init__()
        check_weight(self.momentum, "momentum")

    def step(
        self, problem: PolicySearchRun, state: PolicyGradientState
    ) -> PolicyGradientState:
        batch = self.sample(problem, state, state.x)
        g = self.gradient(problem, state.x, batch)
        state.d = moving_average(state.d, g, self.momentum)
        state.step_size = self.gamma(state.t)
        state.x_prev = state.x
        state.x = state.x + state.step_size * state.d
        state.t += 1
        return state
