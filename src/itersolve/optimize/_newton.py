"""Damped Newton with a line search and a modified-Hessian fallback."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from itersolve._core.linesearch import armijo
from itersolve._core.solution import Status
from itersolve.optimize._first_order import (
    check_default_tolerances,
    finite,
    norm,
    threshold,
)
from itersolve.optimize._problem import OptimizationProblem
from itersolve.optimize._second_order import (
    NewtonTypeMethod,
    NormMatrix,
    check_f_star,
    check_linear_solver,
    f_star_reached,
    is_krylov,
    resolve_hessian,
    solve_regularized,
)

Tensor = torch.Tensor


@dataclass
class NewtonState:
    x: Tensor
    f: Tensor
    g: Tensor
    grad_norm: float
    threshold: float
    hessian: Any
    norm: NormMatrix
    steps: int = 0
    status: Status | None = None
    step_size: float = math.nan
    shift: float = 0.0
    factorizations: int = 0
    krylov_steps: int = 0
    matvecs: int = 0
    truncated: int = 0
    """Krylov solves stopped by non-positive curvature."""
    modified: int = 0
    """Steps whose Hessian needed a diagonal shift to be positive definite."""
    line_search_evaluations: int = 0


@dataclass(frozen=True, kw_only=True)
class Newton(NewtonTypeMethod):
    """Damped Newton: ``x_{k+1} = x_k + t_k d_k``, ``(H_k + tau_k I) d_k = -g_k``.

    Compare with ``scipy.optimize.minimize(method="Newton-CG")``
    (``linear_solver=CG(rtol=0.5)``, Hessian-free) and ``trust-exact``;
    ``sklearn`` ``newton-cholesky`` for logistic regression.

    ``tau_k = 0`` when the Cholesky factorization of ``H_k`` succeeds; otherwise
    the modified-Hessian fallback (Nocedal & Wright, Alg. 3.3) tries ``tau =
    max(2 tau, 1e-3 * max(1, |diag H|_max))``, starting from ``1e-3 - min
    diag(H)`` when the diagonal has non-positive entries, until it factors.
    ``t_k`` from Armijo backtracking from ``t = 1`` (``c1 = 1e-4``).

    With a Krylov ``linear_solver`` (``CG(rtol=0.5)``: scipy's Newton-CG) the
    system is solved on Hessian-vector products by the shared engine
    (:func:`itersolve.linear.inner_solve`) to the forcing term
    ``||H_k d_k + g_k|| <= eta_k ||g_k||``, ``eta_k = min(rtol, sqrt(||g_k||))``
    with ``rtol`` the solver's own (scipy's rule for ``rtol = 0.5``), in at most
    ``max(2 n, 20)`` steps unless the solver sets ``max_steps``. Truncated
    Newton (Nocedal & Wright, Alg. 7.1): when CG meets non-positive curvature it
    returns the direction built so far, or ``-g_k`` when that is still zero.

    Stopping rule: ``||grad f(x_k)|| <= max(rtol ||grad f(x_0)||, atol)`` or,
    when ``f_star`` is given, ``f(x_k) - f_star <= max(rtol_f |f_star|,
    atol_f)`` (both on the value and gradient evaluated at the accepted
    ``x_k``); ``STAGNATION`` when the line search finds no decrease.

    Parameters
    ----------
    rtol, atol
        Tolerances; ``rtol=None``: ``max(1e-8, 10 eps(dtype))`` (the family's
        defaults and their reason: :mod:`itersolve.optimize._first_order`).
    hessian
        ``"exact"`` (closed form or autograd), an approximation the problem
        provides (``"gauss_newton"``, ``"fisher"``), ``"fisher_rank_one"``
        (see :class:`RegularizedNewton`), or a callable
        ``x -> (n, n) tensor``.
    linear_solver
        ``"cholesky"`` (dense Hessian) or a solver object of
        :mod:`itersolve.linear` with an ``rtol`` field, e.g. ``CG(rtol=0.5)``.
    f_star, rtol_f, atol_f
        Optional optimal value (or a target value) and the tolerances of the
        rule on ``f``; a value at or below ``f_star`` also stops.

    References
    ----------
    Nocedal & Wright, *Numerical Optimization* (2006), Sec. 3.4 and 7.1.

    Examples
    --------
    >>> from itersolve.optimize import minimize, Newton
    >>> from itersolve.problems import Rosenbrock
    >>> p = Rosenbrock(4)
    >>> sol = minimize(p, p.x0(), Newton(atol=1e-10))
    >>> sol.success, round(float(sol.x[0]), 6)
    (True, 1.0)
    """

    ADVICE: ClassVar[dict[Status, str]] = {
        Status.MAX_STEPS: (
            "raise max_steps or start closer to a minimizer: Newton's fast "
            "local convergence needs a start near one; on a nonconvex problem "
            "try RegularizedNewton"
        ),
        Status.STAGNATION: (
            "the line search found no decrease: the gradient is at the "
            "rounding level of f (loosen tol, or use float64) or the Hessian "
            "model is poor here (try RegularizedNewton)"
        ),
    }

    DEFAULT_RTOL: ClassVar[float] = 1e-8

    rtol: float | None = None
    atol: float = 0.0
    hessian: Any = "exact"
    linear_solver: Any = "cholesky"
    f_star: float | None = None
    rtol_f: float = 1e-10
    atol_f: float = 1e-10

    def __post_init__(self) -> None:
        super().__post_init__()
        check_default_tolerances(self)
        check_linear_solver(self.linear_solver)
        check_f_star(self)

    def default_max_steps(self, problem: Any) -> int:
        return 500

    def init(self, problem: OptimizationProblem, x0: Tensor) -> NewtonState:
        objective = problem.objective
        hessian = resolve_hessian(self.hessian, objective, self.linear_solver)
        f, g = objective.value_and_grad(x0)
        gnorm = norm(g)
        state = NewtonState(
            x0,
            f,
            g,
            gnorm,
            threshold(self, gnorm, x0.dtype),
            hessian,
            NormMatrix(None),
        )
        if not finite(f, g):
            state.status = Status.NONFINITE
        elif gnorm <= state.threshold or f_star_reached(self, f):
            state.status = Status.SUCCESS
        return state

    def _direction(self, problem: OptimizationProblem, state: NewtonState) -> Tensor:
        H = state.hessian(state.x)
        forcing = None
        if is_krylov(self.linear_solver):
            forcing = min(self.linear_solver.rtol, math.sqrt(state.grad_norm))
        shift = 0.0
        for attempt in range(60):
            result = solve_regularized(
                H,
                state.g,
                shift,
                state.norm,
                x=state.x,
                objective=problem.objective,
                linear_solver=self.linear_solver,
                rtol=forcing,
            )
            state.factorizations += result.factorizations
            state.krylov_steps += result.krylov_steps
            state.matvecs += result.matvecs
            curved = result.status is Status.NOT_POSITIVE_DEFINITE
            state.truncated += curved
            if result.direction is not None:
                slope = float((result.direction * state.g).sum())
                if slope < 0:
                    state.shift = shift
                    state.modified += attempt > 0
                    return result.direction
            elif curved:
                # Non-positive curvature along -g itself: steepest descent.
                state.shift = shift
                return -state.g
            if attempt == 0:
                # The Hessian (or its CG solve) failed: start the shift search.
                floor, min_diag = 1e-3, 1.0
                if isinstance(H, Tensor):
                    diag = H.diagonal()
                    floor = 1e-3 * max(1.0, float(diag.abs().max()))
                    min_diag = float(diag.min())
                shift = floor - min_diag if min_diag <= 0 else floor
            else:
                shift = 2.0 * shift
        return -state.g

    def step(self, problem: OptimizationProblem, state: NewtonState) -> NewtonState:
        objective = problem.objective
        d = self._direction(problem, state)
        x = state.x
        cache: dict[float, tuple[Tensor, Tensor]] = {}

        def phi(t: float) -> float:
            f_t, g_t = objective.value_and_grad(x + t * d)
            if not finite(f_t, g_t):
                return math.inf
            cache[t] = (f_t, g_t)
            return float(f_t)

        slope = float((d * state.g).sum())
        result = armijo(phi, float(state.f), slope, step=1.0)
        state.line_search_evaluations += result.evaluations
        if not result.success:
            state.status = (
                Status.NONFINITE if math.isinf(phi_last(cache)) else Status.STAGNATION
            )
            return state
        state.step_size = result.step
        state.x = x + result.step * d
        state.f, state.g = cache[result.step]
        state.grad_norm = norm(state.g)
        state.steps += 1
        if state.grad_norm <= state.threshold or f_star_reached(self, state.f):
            state.status = Status.SUCCESS
        return state

    def metrics(
        self, problem: OptimizationProblem, state: NewtonState
    ) -> dict[str, float]:
        return {
            "objective": float(state.f),
            "grad_norm": state.grad_norm,
            "step_size": state.step_size,
            "shift": state.shift,
        }

    def stats(
        self, problem: OptimizationProblem, state: NewtonState
    ) -> dict[str, float]:
        return {
            "factorizations": state.factorizations,
            "krylov_steps": state.krylov_steps,
            "matvecs": state.matvecs,
            "truncated_solves": state.truncated,
            "modified_hessians": state.modified,
            "line_search_evaluations": state.line_search_evaluations,
        }


def phi_last(cache: dict[float, tuple[Tensor, Tensor]]) -> float:
    """``inf`` when no finite trial was seen (every trial was non-finite)."""
    return 0.0 if cache else math.inf
