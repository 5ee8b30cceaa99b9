"""Gradient descent with a fixed step or a backtracking line search."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from itersolve._core.linesearch import armijo
from itersolve._core.solution import Status
from itersolve.optimize._first_order import (
    GradientMethod,
    GradientState,
    backtrack_step,
    estimate_L,
    finite,
    norm,
    threshold,
)
from itersolve.optimize._problem import OptimizationProblem

Tensor = torch.Tensor


@dataclass(kw_only=True)
class GradientDescentState(GradientState):
    f: Tensor
    g: Tensor
    step_size: float = math.nan
    first_step: float = 0.0


@dataclass(frozen=True, kw_only=True)
class GradientDescent(GradientMethod):
    """Gradient descent ``x_{k+1} = x_k - alpha_k grad f(x_k)``.

    Compare with ``scipy.optimize.minimize(method="CG")`` (a better first-order
    baseline) or full-batch ``torch.optim.SGD(lr=alpha)``.

    Step sizes:

    * ``line_search=None`` with ``L`` known (given or from the problem):
      ``alpha = 2 / (L + mu)`` when ``mu`` is known (rate
      ``(kappa - 1)/(kappa + 1)`` on quadratics), else ``1 / L``;
    * ``line_search=None`` with ``L`` unknown: backtracking on ``L`` (descent
      lemma ``f(x - g/L) <= f(x) - ||g||^2/(2L)``), ``L`` shrunk by 0.9 before
      every step so it can also decrease;
    * ``line_search="armijo"``: Armijo backtracking (``c1 = 1e-4``) from the
      larger of the last accepted step and the first trial ``1/L`` (``L`` known
      or estimated); it never grows beyond that, as steps near ``2/L`` that
      Armijo accepts stall the stiff modes. Armijo compares function values,
      so it resolves ``||g||`` only to
      about ``sqrt(eps)`` relative; below that it stops with ``STAGNATION``.

    Stopping rule: ``||grad f(x_k)|| <= max(rtol ||grad f(x_0)||, atol)``.

    Parameters
    ----------
    rtol, atol, L, mu
        See :class:`~itersolve.optimize.HeavyBall`.
    line_search
        ``None`` or ``"armijo"``.

    References
    ----------
    Nesterov, *Lectures on Convex Optimization* (2018), Sec. 2.1.5.

    Examples
    --------
    >>> import torch
    >>> from itersolve.optimize import minimize, GradientDescent
    >>> from itersolve.problems import quadratic_logspaced
    >>> q = quadratic_logspaced(20, 10.0)
    >>> sol = minimize(q, q.x0(), GradientDescent(atol=1e-10))
    >>> sol.success, bool(torch.allclose(sol.x, q.x_star))
    (True, True)
    """

    line_search: str | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.line_search not in (None, "armijo"):
            raise ValueError(
                f"line_search must be None or 'armijo', got {self.line_search!r}"
            )

    def init(self, problem: OptimizationProblem, x0: Tensor) -> GradientDescentState:
        f, g = problem.objective.value_and_grad(x0)
        gnorm = norm(g)
        L, mu = self.constants(problem)
        state = GradientDescentState(
            x0, threshold(self, gnorm, x0.dtype), gnorm, L or math.nan, f=f, g=g
        )
        if not finite(f, g):
            state.status = Status.NONFINITE
            return state
        state.verified = gnorm <= state.threshold
        if L is not None and self.line_search is None:
            state.step_size = 2.0 / (L + mu) if mu else 1.0 / L
        elif self.line_search is None:
            state.L = estimate_L(problem, x0, g)
        else:
            state.step_size = 1.0 / (L or estimate_L(problem, x0, g))
            state.first_step = state.step_size
        return state

    def step(
        self, problem: OptimizationProblem, state: GradientDescentState
    ) -> GradientDescentState:
        x, f, g = state.x, state.f, state.g
        fixed = self.line_search is None and not math.isnan(state.step_size)
        if fixed:
            x_new = x - state.step_size * g
            f_new, g_new = problem.objective.value_and_grad(x_new)
            if not finite(f_new, g_new):
                state.status = Status.NONFINITE
                return state
        elif self.line_search is None:
            found = backtrack_step(problem, x, f, g, 0.9 * state.L)
            if found is None:
                state.status = Status.STAGNATION
                return state
            x_new, f_new, g_new, state.L, trials = found
            state.backtracks += trials - 1
        else:
            objective = problem.objective
            slope = -float((g * g).sum())
            result = armijo(
                lambda t: float(objective.value(x - t * g)),
                float(f),
                slope,
                step=max(state.step_size, state.first_step),
            )
            state.backtracks += result.evaluations - 1
            if not result.success:
                state.status = Status.STAGNATION
                return state
            state.step_size = result.step
            x_new = x - result.step * g
            f_new, g_new = objective.value_and_grad(x_new)
            if not finite(f_new, g_new):
                state.status = Status.NONFINITE
                return state
        state.x, state.f, state.g = x_new, f_new, g_new
        state.grad_norm = norm(g_new)
        state.verified = state.grad_norm <= state.threshold
        state.steps += 1
        return state
