"""(N-)HARPG: Hessian-aided recursive policy gradient."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from itersolve._core.estimators import (
    interpolation_point,
    normalized_step,
    recursive_momentum,
)
from itersolve.rl._base import (
    PolicyGradientMethod,
    PolicyGradientState,
    PolicySearchRun,
    _check_real,
)
from itersolve.rl._gradients import hessian_vector_estimate
from itersolve.rl._problem import schedule


@dataclass(frozen=True, kw_only=True)
class HARPG(PolicyGradientMethod):
    """HARPG (Fatkhullin, Barakat, Kireeva and He, ICML 2023, Algorithm 2).

    Per iteration ``t >= 1``, with ``eta_t = (c / (t + c))^q``::

        q_t ~ U[0, 1];  theta^_t = q_t theta_t + (1 - q_t) theta_{t-1}
        sample tau_t ~ pi(theta_t) and tau^_t ~ pi(theta^_t)
        v_t = B(tau^_t, theta^_t)(theta_t - theta_{t-1})
        d_t = (1 - eta_t)(d_{t-1} + v_t) + eta_t g(tau_t, theta_t)
        theta_{t+1} = theta_t + gamma_t d_t

    (``d_0 = g(tau_0, theta_0)``). ``B(tau, theta) u = <grad log p(tau), u>
    g(tau, theta) + hess Phi(tau, theta) u`` is unbiased for ``hess J(theta)
    u``, and the random point makes ``v_t`` unbiased for ``grad J(theta_t) -
    grad J(theta_{t-1})``: a STORM recursion
    (:func:`~itersolve._core.estimators.recursive_momentum`) without
    importance sampling. Two batches and one Hessian-vector product per
    iteration; memory ``theta, theta_{t-1}, d``. Compare with SHARP
    (Salehkaleybar et al. 2022) and STORM-PG. Stopping rule: the trajectory
    budget. Defaults ``q = 1`` and constant steps; :class:`NormalizedHARPG`
    takes normalized ``gamma_t ~ 1/t`` steps.

    Parameters
    ----------
    momentum_decay
        Exponent ``q`` of ``eta_t``.
    causal_hvp
        ``False``: the paper's ``B`` (whole-trajectory score times ``g``);
        ``True``: the causal form of
        :func:`~itersolve.rl.hessian_vector_estimate` (each reward paired
        with the score of earlier actions only; also unbiased).

    Examples
    --------
    >>> import torch
    >>> from itersolve.rl import HARPG, LinearGaussianLQR, policy_search
    >>> problem = LinearGaussianLQR(state_dim=2, action_dim=1, horizon=10)
    >>> method = HARPG(step_size=0.0005, batch_size=10)
    >>> theta0 = torch.zeros(2, dtype=torch.float64)
    >>> sol = policy_search(problem, theta0, method, trajectory_budget=50, seed=0)
    >>> sol.num_steps, sol.stats["trajectories"]  # 10 + 2 x 10 per later step
    (3, 50)
    """

    step_size: float = 0.01
    momentum_decay: float = 1.0
    causal_hvp: bool = False

    BATCHES_PER_STEP: ClassVar[int] = 2

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_real(self.momentum_decay, "momentum_decay")

    def eta(self, t: int) -> float:
        return min(1.0, schedule(1.0, self.momentum_decay, self.schedule_offset, t))

    def step_cost(self, state: PolicyGradientState) -> int:
        return self.batch_size * (1 if state.x_prev is None else 2)

    def move(self, state: PolicyGradientState) -> None:
        assert state.d is not None
        state.step_size = self.gamma(state.t)
        state.x_prev = state.x
        state.x = state.x + state.step_size * state.d

    def step(
        self, problem: PolicySearchRun, state: PolicyGradientState
    ) -> PolicyGradientState:
        batch = self.sample(problem, state, state.x)
        g = self.gradient(problem, state.x, batch)
        if state.x_prev is None:
            state.d = g
        else:
            point, _ = interpolation_point(state.x, state.x_prev, state.generator)
            second = self.sample(problem, state, point, record=False)
            v = hessian_vector_estimate(
                problem.problem,
                point,
                second,
                state.x - state.x_prev,
                baseline=self.baseline,
                causal=self.causal_hvp,
            )
            state.d = recursive_momentum(state.d, g, v, self.eta(state.t))
        self.move(state)
        state.t += 1
        return state


@dataclass(frozen=True, kw_only=True)
class NormalizedHARPG(HARPG):
    """N-HARPG: :class:`HARPG` with normalized steps
    ``theta_{t+1} = theta_t + gamma_t d_t / max(||d_t||, eps)``.

    Defaults ``eta_t = 2/(t + 2)`` and ``gamma_t = gamma_0 2/(t + 2)``, the
    pairing of the paper's ``O~(eps^-2)`` analysis: the recursion's error
    ``sqrt(eta_t) + gamma_t / sqrt(eta_t)`` decays like ``t^-1/2``.
    ``step_size`` is a distance in parameter space. Stopping rule: the
    trajectory budget.

    Parameters
    ----------
    eps
        Floor of ``||d_t||`` in the normalisation.

    Examples
    --------
    >>> import torch
    >>> from itersolve.rl import LinearGaussianLQR, NormalizedHARPG, policy_search
    >>> problem = LinearGaussianLQR(state_dim=2, action_dim=1, horizon=10)
    >>> theta0 = torch.zeros(2, dtype=torch.float64)
    >>> method = NormalizedHARPG(step_size=0.1, batch_size=10)
    >>> sol = policy_search(problem, theta0, method, trajectory_budget=410, seed=0,
    ...                     record=True)
    >>> gap0 = problem.optimal_return() - float(problem.expected_return(theta0))
    >>> gap = problem.optimal_return() - sol.trace["expected_return"][-1]
    >>> bool(gap < 0.5 * gap0)
    True
    """

    step_size: float = 0.1
    step_decay: float = 1.0
    eps: float = 1e-8

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_real(self.eps, "eps", positive=True)

    def move(self, state: PolicyGradientState) -> None:
        assert state.d is not None
        state.step_size = self.gamma(state.t)
        state.x_prev = state.x
        state.x = normalized_step(state.x, state.d, state.step_size, self.eps)
