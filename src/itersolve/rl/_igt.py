"""N-PG-IGT: normalized policy gradient with implicit gradient transport."""

from __future__ import annotations

from dataclasses import dataclass

from itersolve._core.estimators import igt_extrapolate, moving_average, normalized_step
from itersolve.rl._base import (
    PolicyGradientMethod,
    PolicyGradientState,
    PolicySearchRun,
    _check_real,
)
from itersolve.rl._problem import schedule


@dataclass(frozen=True, kw_only=True)
class NormalizedPGIGT(PolicyGradientMethod):
    """N-PG-IGT (Fatkhullin, Barakat, Kireeva and He, ICML 2023, Algorithm 1).

    Per iteration, with ``eta_t = (c / (t + c))^q`` and ``gamma_t = gamma_0
    (c / (t + c))^p``::

        theta~_t = theta_t + (1 - eta_t) / eta_t (theta_t - theta_{t-1})
        sample tau_t ~ pi(theta~_t)
        d_t      = (1 - eta_t) d_{t-1} + eta_t g(tau_t, theta~_t)
        theta_{t+1} = theta_t + gamma_t d_t / max(||d_t||, eps)

    The look-ahead makes ``d_t`` track ``grad J(theta_t)`` to second order
    (exactly on a quadratic) without importance weights or Hessians; one
    batch per iteration. Defaults ``q = 4/5``, ``p = 1``: the pairing of the
    paper's ``O~(eps^-2.5)`` analysis (the momentum error ``sqrt(eta_t) +
    (gamma_t / eta_t)^2`` then decays like ``t^-2/5``; with ``gamma_t ~ 1/t``
    the gap follows it). ``step_size`` is a distance in parameter space.
    Equivalent to / compare with NIGT (Cutkosky and Mehta 2020). Stopping
    rule: the trajectory budget.

    Parameters
    ----------
    momentum_decay
        Exponent ``q`` of ``eta_t``.
    eps
        Floor of ``||d_t||`` in the normalisation.

    Examples
    --------
    >>> import torch
    >>> from itersolve.rl import LinearGaussianLQR, NormalizedPGIGT, policy_search
    >>> problem = LinearGaussianLQR(state_dim=2, action_dim=1, horizon=10)
    >>> method = NormalizedPGIGT(step_size=0.2)
    >>> theta0 = torch.zeros(2, dtype=torch.float64)
    >>> sol = policy_search(problem, theta0, method, trajectory_budget=50, seed=0)
    >>> sol.num_steps, sol.stats["trajectories"]
    (50, 50)
    """

    step_size: float = 0.1
    step_decay: float = 1.0
    momentum_decay: float = 0.8
    eps: float = 1e-8

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_real(self.momentum_decay, "momentum_decay")
        _check_real(self.eps, "eps", positive=True)

    def eta(self, t: int) -> float:
        return min(1.0, schedule(1.0, self.momentum_decay, self.schedule_offset, t))

    def step(
        self, problem: PolicySearchRun, state: PolicyGradientState
    ) -> PolicyGradientState:
        eta = self.eta(state.t)
        lookahead = igt_extrapolate(state.x, state.x_prev, eta)
        batch = self.sample(problem, state, lookahead)
        g = self.gradient(problem, lookahead, batch)
        state.d = moving_average(state.d, g, eta)
        state.step_size = self.gamma(state.t)
        state.x_prev = state.x
        state.x = normalized_step(state.x, state.d, state.step_size, self.eps)
        state.t += 1
        return state
