"""Picard (Kačanov, frozen-coefficient) iteration for variational elliptic PDEs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from itersolve._core.frontdoor import DefaultTolerance
from itersolve._core.iterate import IterativeMethod
from itersolve._core.solution import Status
from itersolve.fixed_point._newton_krylov import check_krylov_solver
from itersolve.linear import CG, inner_solve
from itersolve.pde._grid import (
    LaplacianInverse,
    laplacian_preconditioned,
)
from itersolve.pde._problem import VariationalProblem, residual_rtol

_TINY = 1e-12


def _flux_coefficient(problem: VariationalProblem, p: torch.Tensor) -> torch.Tensor:
    """``a`` with ``flux(p) = a(|p|) p`` (isotropic flux), pointwise."""
    q = problem.flux(p)
    s = (p * p).sum(0)
    eps = torch.zeros_like(p)
    eps[0] = _TINY
    a0 = problem.flux(eps)[0] / _TINY
    return torch.where(s > _TINY**2, (q * p).sum(0) / s.clamp(min=_TINY**2), a0)


def _reaction_coefficient(problem: VariationalProblem, u: torch.Tensor) -> torch.Tensor:
    assert problem.reaction is not None
    g = problem.reaction(u)
    g0 = problem.reaction(torch.full_like(u, _TINY)) / _TINY
    return torch.where(u.abs() > _TINY, g / torch.where(u == 0, 1.0, u), g0)


# Frozen, hence safe to share as a default.
_DEFAULT_SOLVER = CG(rtol=1e-10)
INEXACT = (Status.MAX_STEPS, Status.STAGNATION)


@dataclass
class PicardState:
    x: torch.Tensor
    r_norm: float
    r0_norm: float
    precondition: LaplacianInverse
    solver: Any
    """The configured linear solver with its preconditioner bound."""
    residuals: int = 1
    inner_steps: int = 0
    steps: int = 0
    status: Status | None = None


@dataclass(frozen=True, kw_only=True)
class PicardIteration(IterativeMethod):
    """Picard / Kačanov iteration: freeze the coefficients, solve a linear PDE.

    Compare with: :class:`SobolevGradientDescent` and ``scipy.optimize.newton_krylov``.

    For an isotropic flux ``a(|p|) p`` and reaction ``c(u) u``, step ``k`` solves
    ``-div(a(|grad u_k|) grad u) + c(u_k) u = f`` (same discretisation), warm
    started at ``u_k``, with ``linear_solver`` through the shared Krylov engine
    (:func:`itersolve.linear.inner_solve`): conjugate gradients preconditioned
    with the fast Laplacian inverse by default, to its own tolerance. Globally
    convergent for monotone ``a(s) s`` (Kačanov 1959); linear rate.

    Stopping rule::

        ||r(u_k)||_2 <= rtol * ||r(u_0)||_2

    A linear solve that ends with a status other than ``SUCCESS``,
    ``MAX_STEPS`` or ``STAGNATION`` (breakdown, not positive definite,
    non-finite) ends the run with that status; an inner solve that stalled at
    rounding level (float32 against the inner ``rtol = 1e-10``) has solved as
    far as the dtype allows, and its answer is used like a truncated one.

    Parameters
    ----------
    rtol
        Tolerance of the stopping rule.
    linear_solver
        A solver of :mod:`itersolve.linear` (``CG``, ``MINRES``, ``GMRES``...);
        ``M=None`` means the fast Laplacian inverse of the grid.

    Examples
    --------
    >>> from itersolve.pde import log_gradient_energy, solve_variational
    >>> solve_variational(log_gradient_energy(16), PicardIteration()).success
    True
    """

    rtol: float = DefaultTolerance(1e-8)
    linear_solver: Any = _DEFAULT_SOLVER

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0 < self.rtol < 1:
            raise ValueError(f"rtol must be in (0, 1), got {self.rtol}")
        check_krylov_solver(self.linear_solver)

    def default_max_steps(self, problem: VariationalProblem) -> int:
        return 500

    def init(self, problem: VariationalProblem, x0: torch.Tensor) -> PicardState:
        pre = LaplacianInverse(problem.grid, dtype=x0.dtype, device=x0.device)
        norm = float(torch.linalg.vector_norm(problem.residual(x0)))
        solver = laplacian_preconditioned(self.linear_solver, pre)
        return PicardState(x0.clone(), norm, norm, pre, solver)

    def step(self, problem: VariationalProblem, state: PicardState) -> PicardState:
        g = problem.grid
        u = state.x
        a_plus = _flux_coefficient(problem, g.forward_gradient(u))
        a_minus = _flux_coefficient(problem, g.backward_gradient(u))
        c = _reaction_coefficient(problem, u) if problem.reaction is not None else None
        shape = g.shape

        def matvec(v: torch.Tensor) -> torch.Tensor:
            w = v.reshape(shape)
            out = 0.5 * (
                g.divergence_forward(a_plus * g.forward_gradient(w))
                + g.divergence_backward(a_minus * g.backward_gradient(w))
            )
            if c is not None:
                out = out + c * w
            return out.reshape(-1)

        rhs = problem.f.to(u.dtype).reshape(-1)
        sol = inner_solve(state.solver, matvec, rhs, x0=u.reshape(-1))
        state.inner_steps += sol.num_steps
        state.x = sol.x.reshape(shape)
        state.r_norm = float(torch.linalg.vector_norm(problem.residual(state.x)))
        state.residuals += 1
        state.steps += 1
        if not sol.success and sol.status not in INEXACT:
            state.status = sol.status
        return state

    def terminate(
        self, problem: VariationalProblem, state: PicardState
    ) -> tuple[bool, Status]:
        if state.status is not None:
            return True, state.status
        rtol = residual_rtol(self.rtol, problem.grid, state.x.dtype)
        return state.r_norm <= rtol * state.r0_norm, Status.SUCCESS

    def metrics(
        self, problem: VariationalProblem, state: PicardState
    ) -> dict[str, float]:
        return {
            "residual_norm": state.r_norm,
            "relative_residual": state.r_norm / max(state.r0_norm, 1e-300),
        }

    def stats(
        self, problem: VariationalProblem, state: PicardState
    ) -> dict[str, float]:
        return {
            "residuals": state.residuals,
            "inner_steps": state.inner_steps,
            "poisson_solves": state.precondition.applications,
        }
