"""Inexact Newton–Krylov for a residual equation ``F(u) = 0``.

The one implementation: :mod:`itersolve.pde` re-exports it with the grid
problems' preconditioner and tolerance floor (:class:`itersolve.pde.NewtonKrylov`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from itersolve._core.frontdoor import DefaultTolerance, check_tolerances, resolve_rtol
from itersolve._core.iterate import IterativeMethod
from itersolve._core.linesearch import armijo
from itersolve._core.solution import Status
from itersolve.fixed_point._problem import FixedPointProblem
from itersolve.linear import GMRES, inner_solve

_JACOBIANS = ("symmetric", "autograd", "finite_difference")


# Frozen, hence safe to share as a default.
_DEFAULT_SOLVER = GMRES(rtol=0.1)


def check_krylov_solver(linear_solver: Any) -> None:
    """A solver object of :mod:`itersolve.linear` with ``rtol`` and ``M`` fields."""
    if not isinstance(linear_solver, IterativeMethod) or not all(
        hasattr(linear_solver, name) for name in ("rtol", "M")
    ):
        raise ValueError(
            "linear_solver must be a Krylov solver of itersolve.linear such as "
            f"CG(rtol=1e-10) or GMRES(), got {linear_solver!r}"
        )


@dataclass
class NewtonState:
    x: torch.Tensor
    r: torch.Tensor
    r_norm: float
    r0_norm: float
    precondition: Any
    """What :meth:`NewtonKrylov.bind` attached (a grid's Laplacian inverse)."""
    solver: Any
    """The configured linear solver with its preconditioner bound."""
    residuals: int = 1
    jvps: int = 0
    inner_steps: int = 0
    line_search_evaluations: int = 0
    steps: int = 0
    last_ratio: float = 1.0
    status: Status | None = None


@dataclass(frozen=True, kw_only=True)
class NewtonKrylov(IterativeMethod):
    """Inexact Newton: ``J(u_k) d_k = -F(u_k)`` by a Krylov solver, then a
    backtracking line search on ``0.5 ||F||^2``.

    Compare with: ``scipy.optimize.newton_krylov(F, u0, inner_M=...)`` with the
    same preconditioner (the anchor).

    ``F`` is ``problem.residual``: ``f(z) - z`` for :func:`fixed_point`, or any
    problem with a ``residual(u)`` method (for
    :class:`itersolve.pde.VariationalProblem` the gradient of the convex
    discrete energy, so ``J`` is symmetric positive definite; the
    :mod:`itersolve.pde` export binds the fast Laplacian inverse as ``M``).
    Each step solves the
    Newton system with ``linear_solver`` through the shared Krylov engine
    (:func:`itersolve.linear.inner_solve`) to the Eisenstat–Walker (1996)
    forcing term ``||J d_k + F_k|| <= eta_k ||F_k||``,
    ``eta_k = min(eta_max, 0.9 (||F_k|| / ||F_{k-1}||)^2)`` (``eta_0 = eta_max``,
    floored at ``1e-12``) with ``eta_max`` the solver's own ``rtol``. The step
    ``t_k`` is Armijo backtracking from ``t = 1`` (halving, ``c1 = 1e-4``, at
    most 20 trials) on the merit ``phi(t) = 0.5 ||F(u_k + t d_k)||^2`` with the
    exact slope ``phi'(0) = <F_k, J d_k>`` (one Jacobian product).

    Stopping rule, for :func:`fixed_point` (``F = f(z) - z``, unbatched
    only: one Krylov solve couples the samples of a batch)::

        ||F(z_k)||_2 <= max(rtol ||z_k||_2, atol)

    and for any other residual problem::

        ||F(u_k)||_2 <= max(rtol ||F(u_0)||_2, atol)

    ``STAGNATION`` when the line search finds no sufficient decrease; a linear
    solve that breaks down (``BREAKDOWN``, ``NOT_POSITIVE_DEFINITE``,
    ``NONFINITE``) ends the run with its status.

    Parameters
    ----------
    rtol, atol
        Tolerances of the stopping rule (``rtol`` in ``(0, 1)``, default
        ``1e-8`` lifted to ``100 eps`` of the dtype; ``atol`` default 0).
    linear_solver
        A solver of :mod:`itersolve.linear`: ``GMRES`` for any Jacobian (the
        default, ``eta_max = 0.1``), ``CG`` for a symmetric positive definite
        one, ``MINRES`` for a symmetric one.
    jacobian
        How ``J v`` is applied: ``"symmetric"`` (one reverse-mode pass through
        the recorded residual graph, ``J^T v``, equal to ``J v`` only for a
        symmetric ``J``: the variational problems), ``"autograd"`` (exact
        ``J v`` for any differentiable ``F``: the vector-Jacobian product of the
        linear map ``w -> J^T w``, two reverse passes, no forward mode) or
        ``"finite_difference"`` (``(F(u + h v) - F(u)) / h``, ``h = sqrt(eps)
        max(1, ||u||) / ||v||``; any ``F``, numpy maps included, one residual
        per product: the default).

    References
    ----------
    Eisenstat & Walker, "Globally convergent inexact Newton methods", SIAM J.
    Optim. 4 (1994); "Choosing the forcing terms in an inexact Newton method",
    SIAM J. Sci. Comput. 17 (1996). Kelley, *Solving Nonlinear Equations with
    Newton's Method* (2003), Ch. 3.

    Examples
    --------
    >>> import numpy as np
    >>> from itersolve.fixed_point import fixed_point
    >>> sol = fixed_point(np.cos, np.array([1.0]), NewtonKrylov())
    >>> sol.success, round(float(sol.x[0]), 8), sol.num_steps <= 6
    (True, 0.73908513, True)
    """

    rtol: float = DefaultTolerance(1e-8)
    atol: float = 0.0
    linear_solver: Any = _DEFAULT_SOLVER
    jacobian: str = "finite_difference"

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0 < self.rtol < 1:
            raise ValueError(f"rtol must be in (0, 1), got {self.rtol}")
        check_tolerances(self.rtol, self.atol)
        check_krylov_solver(self.linear_solver)
        if not 0 < self.linear_solver.rtol < 1:
            raise ValueError(
                "linear_solver.rtol (the largest forcing term) must be in (0, 1), "
                f"got {self.linear_solver.rtol}"
            )
        if self.jacobian not in _JACOBIANS:
            raise ValueError(
                f"jacobian must be one of {_JACOBIANS}, got {self.jacobian!r}"
            )

    def default_max_steps(self, problem: Any) -> int:
        return 50

    def bind(self, problem: Any, x0: torch.Tensor) -> tuple[Any, Any]:
        """The linear solver for this problem and what it binds (``None``
        here; a grid's Laplacian inverse in :class:`itersolve.pde.NewtonKrylov`)."""
        return self.linear_solver, None

    def threshold(self, problem: Any, state: NewtonState) -> float:
        """The residual norm at which the run stops (the stopping rule)."""
        rtol = resolve_rtol(self.rtol, state.x.dtype)
        if isinstance(problem, FixedPointProblem):
            scale = float(torch.linalg.vector_norm(state.x))
        else:
            scale = state.r0_norm
        return max(rtol * scale, self.atol)

    def init(self, problem: Any, x0: torch.Tensor) -> NewtonState:
        if isinstance(problem, FixedPointProblem) and x0.shape[0] > 1:
            raise ValueError(
                "NewtonKrylov solves one fixed point (one Krylov solve would "
                "couple the samples): use batch_dim=None, or Anderson/Broyden "
                "for a batch"
            )
        solver, pre = self.bind(problem, x0)
        r = problem.residual(x0)
        norm = float(torch.linalg.vector_norm(r))
        state = NewtonState(x0.clone(), r, norm, norm, pre, solver)
        if not math.isfinite(norm):
            state.status = Status.NONFINITE_INPUT
        return state

    def _jacobian_product(
        self, problem: Any, state: NewtonState
    ) -> Callable[[torch.Tensor], torch.Tensor]:
        """``v -> J(u_k) v`` on flattened vectors, counting ``state.jvps``."""
        u, shape = state.x, state.x.shape

        if self.jacobian == "symmetric":
            x = u.detach().requires_grad_(True)
            with torch.enable_grad():
                r_graph = problem.residual(x)

            def product(v: torch.Tensor) -> torch.Tensor:
                state.jvps += 1
                (jv,) = torch.autograd.grad(
                    r_graph, x, v.reshape(shape), retain_graph=True
                )
                return jv.reshape(-1)

        elif self.jacobian == "autograd":
            # J v without forward mode: w -> J^T w is linear in w, and its own
            # vector-Jacobian product with v is J v (reverse over reverse).
            x = u.detach().requires_grad_(True)
            with torch.enable_grad():
                r_graph = problem.residual(x)
                w = torch.zeros_like(r_graph, requires_grad=True)
                (jtw,) = torch.autograd.grad(r_graph, x, w, create_graph=True)

            def product(v: torch.Tensor) -> torch.Tensor:
                state.jvps += 1
                (jv,) = torch.autograd.grad(jtw, w, v.reshape(shape), retain_graph=True)
                return jv.reshape(-1)

        else:
            r0 = state.r.reshape(-1)
            scale = math.sqrt(torch.finfo(u.dtype).eps) * max(
                1.0, float(torch.linalg.vector_norm(u))
            )

            def product(v: torch.Tensor) -> torch.Tensor:
                state.jvps += 1
                vnorm = float(torch.linalg.vector_norm(v))
                if vnorm == 0:
                    return torch.zeros_like(v)
                h = scale / vnorm
                state.residuals += 1
                shifted = problem.residual(u + h * v.reshape(shape))
                return (shifted.reshape(-1) - r0) / h

        return product

    def step(self, problem: Any, state: NewtonState) -> NewtonState:
        u, shape = state.x, state.x.shape
        product = self._jacobian_product(problem, state)
        eta_max = self.linear_solver.rtol
        ratio = state.r_norm / max(state.r0_norm, 1e-300)
        eta = (
            min(eta_max, 0.9 * (ratio / state.last_ratio) ** 2)
            if state.steps
            else eta_max
        )
        solver = dataclasses.replace(state.solver, rtol=max(eta, 1e-12))
        sol = inner_solve(solver, product, -state.r.reshape(-1))
        state.inner_steps += sol.num_steps
        if sol.status in (
            Status.BREAKDOWN,
            Status.NOT_POSITIVE_DEFINITE,
            Status.NONFINITE,
        ):
            state.status = sol.status
            return state
        delta = sol.x.reshape(shape)
        # phi'(0) = <F, J d>: exact, so an inexact direction is judged honestly.
        slope = float(state.r.reshape(-1) @ product(sol.x))
        trials: dict[float, tuple[torch.Tensor, torch.Tensor, float]] = {}

        def merit(t: float) -> float:
            trial = u + t * delta
            r = problem.residual(trial)
            state.residuals += 1
            norm = float(torch.linalg.vector_norm(r))
            trials[t] = (trial, r, norm)
            return 0.5 * norm * norm if math.isfinite(norm) else math.inf

        search = armijo(
            merit, 0.5 * state.r_norm**2, slope, step=1.0, max_evaluations=20
        )
        state.line_search_evaluations += search.evaluations
        if not search.success:
            state.status = Status.STAGNATION
            return state
        state.last_ratio = ratio
        state.x, state.r, state.r_norm = trials[search.step]
        state.steps += 1
        return state

    def converged(self, problem: Any, state: NewtonState) -> bool:
        return state.r_norm <= self.threshold(problem, state)

    def metrics(self, problem: Any, state: NewtonState) -> dict[str, float]:
        return {
            "residual_norm": state.r_norm,
            "relative_residual": state.r_norm / max(state.r0_norm, 1e-300),
        }

    def stats(self, problem: Any, state: NewtonState) -> dict[str, float]:
        stats: dict[str, float] = {
            "residuals": state.residuals,
            "jvps": state.jvps,
            "inner_steps": state.inner_steps,
            "line_search_evaluations": state.line_search_evaluations,
        }
        if isinstance(problem, FixedPointProblem):
            stats["fevals"] = problem.calls
        return stats
