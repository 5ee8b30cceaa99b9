"""The triple momentum method of Van Scoy, Freeman and Lynch."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from itersolve.optimize._first_order import (
    GradientMethod,
    GradientState,
    confirm,
    finite,
    norm,
    threshold,
)
from itersolve.optimize._problem import OptimizationProblem

Tensor = torch.Tensor


@dataclass(kw_only=True)
class TripleMomentumState(GradientState):
    xi: Tensor
    xi_prev: Tensor
    alpha: float
    beta: float
    gamma: float
    delta: float


def triple_momentum_parameters(L: float, mu: float) -> dict[str, float]:
    """``rho = 1 - 1/sqrt(kappa)``, ``alpha = (1 + rho)/L``, ``beta = rho^2 /
    (2 - rho)``, ``gamma = rho^2 / ((1 + rho)(2 - rho))``, ``delta = rho^2 /
    (1 - rho^2)``.

    Examples
    --------
    >>> p = triple_momentum_parameters(100.0, 1.0)
    >>> round(p["rho"], 6), round(p["alpha"], 6)
    (0.9, 0.019)
    """
    rho = 1.0 - math.sqrt(mu / L)
    return {
        "rho": rho,
        "alpha": (1.0 + rho) / L,
        "beta": rho**2 / (2.0 - rho),
        "gamma": rho**2 / ((1.0 + rho) * (2.0 - rho)),
        "delta": rho**2 / (1.0 - rho**2) if rho < 1 else 0.0,
    }


@dataclass(frozen=True, kw_only=True)
class TripleMomentum(GradientMethod):
    """The triple momentum method (TMM)::

        y_k       = (1 + gamma) xi_k - gamma xi_{k-1}
        xi_{k+1}  = (1 + beta) xi_k - beta xi_{k-1} - alpha grad f(y_k)
        x_k       = (1 + delta) xi_k - delta xi_{k-1}      (the output)

    with the parameters of :func:`triple_momentum_parameters`. The output
    sequence ``x_k`` (not ``xi_k``) satisfies ``||x_k - x*|| <= c rho^k``,
    ``rho = 1 - 1/sqrt(kappa)``: the fastest known rate for L-smooth mu-strongly
    convex functions, about half the iterations of Nesterov's method. Needs
    accurate ``L`` and ``mu``. No mainstream library ships it; compare with
    :class:`~itersolve.optimize.Nesterov` and ``torch.optim.SGD(nesterov=True)``.

    Stopping rule: ``||grad f(x_k)|| <= max(rtol ||grad f(x_0)||, atol)``,
    tested on ``grad f(y_k)`` and confirmed at ``x_k``.

    Parameters
    ----------
    rtol, atol
        Tolerances (``rtol=None``: ``max(1e-6, 10 eps(dtype))``).
    L, mu
        Required (given here or known by the problem), ``0 < mu <= L``.

    References
    ----------
    Van Scoy, Freeman, Lynch, "The fastest known globally convergent first-order
    method for minimizing strongly convex functions", IEEE Control Syst. Lett. 2
    (2018).

    Examples
    --------
    >>> from itersolve.optimize import minimize, TripleMomentum
    >>> from itersolve.problems import quadratic_logspaced
    >>> q = quadratic_logspaced(20, 100.0)
    >>> minimize(q, q.x0(), TripleMomentum(atol=1e-10)).success
    True
    """

    def init(self, problem: OptimizationProblem, x0: Tensor) -> TripleMomentumState:
        L, mu = self.constants(problem)
        if L is None or not mu:
            raise ValueError(
                "TripleMomentum needs L and mu > 0 (pass L=, mu= or use a problem "
                f"that knows them); got L={L}, mu={mu}"
            )
        p = triple_momentum_parameters(L, mu)
        f, g = problem.objective.value_and_grad(x0)
        gnorm = norm(g)
        state = TripleMomentumState(
            x0,
            threshold(self, gnorm, x0.dtype),
            gnorm,
            L,
            xi=x0,
            xi_prev=x0,
            alpha=p["alpha"],
            beta=p["beta"],
            gamma=p["gamma"],
            delta=p["delta"],
        )
        if not finite(f, g):
            state.fail_nonfinite()
        state.verified = gnorm <= state.threshold
        return state

    def step(
        self, problem: OptimizationProblem, state: TripleMomentumState
    ) -> TripleMomentumState:
        xi, xi_prev = state.xi, state.xi_prev
        diff = xi - xi_prev
        y = xi + state.gamma * diff
        f_y, g_y = problem.objective.value_and_grad(y)
        if not finite(f_y, g_y):
            state.fail_nonfinite()
            return state
        state.last_finite = y
        xi_new = xi + state.beta * diff - state.alpha * g_y
        state.xi_prev, state.xi = xi, xi_new
        state.x = xi_new + state.delta * (xi_new - xi)
        state.grad_norm = norm(g_y)
        state.steps += 1
        confirm(problem, state, state.grad_norm)
        return state
