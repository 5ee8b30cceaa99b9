"""REINFORCE (GPOMDP with a baseline): the vanilla policy gradient."""

from __future__ import annotations

from dataclasses import dataclass

from itersolve.rl._base import (
    PolicyGradientMethod,
    PolicyGradientState,
    PolicySearchRun,
)


@dataclass(frozen=True, kw_only=True)
class REINFORCE(PolicyGradientMethod):
    """Vanilla policy gradient ascent ``theta += gamma_t g(tau_t, theta_t)``.

    ``g`` is the batch-mean GPOMDP estimate (Williams 1992; Baxter and Bartlett
    2001) with a leave-one-out baseline. Equivalent to / compare with garage's
    ``VPG`` and SB3's A2C without a critic. Stopping rule: the trajectory
    budget (see :class:`~itersolve.rl.PolicyGradientMethod`). Defaults:
    ``batch_size=10``, constant ``step_size=0.01``.

    Examples
    --------
    >>> import torch
    >>> from itersolve.rl import LinearGaussianLQR, REINFORCE, policy_search
    >>> problem = LinearGaussianLQR(state_dim=2, action_dim=1, horizon=10)
    >>> sol = policy_search(problem, torch.zeros(2, dtype=torch.float64),
    ...                     REINFORCE(step_size=0.002), trajectory_budget=200, seed=0)
    >>> sol.success, sol.stats["trajectories"]
    (True, 200)
    """

    step_size: float = 0.01
    batch_size: int = 10

    def step(
        self, problem: PolicySearchRun, state: PolicyGradientState
    ) -> PolicyGradientState:
        batch = self.sample(problem, state, state.x)
        g = self.gradient(problem, state.x, batch)
        state.step_size = self.gamma(state.t)
        state.x_prev, state.d = state.x, g
        state.x = state.x + state.step_size * g
        state.t += 1
        return state
