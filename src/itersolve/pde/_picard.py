"""Picard (Kačanov, frozen-coefficient) iteration for variational elliptic PDEs."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch

from itersolve._core.errors import ConvergenceWarning
from itersolve._core.iterate import IterativeMethod
from itersolve._core.operators import aslinearoperator
from itersolve._core.solution import Status
from itersolve.pde._grid import LaplacianInverse
from itersolve.pde._variational import VariationalProblem

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


@dataclass
class PicardState:
    x: torch.Tensor
    r_norm: float
    r0_norm: float
    precondition: LaplacianInverse
    residuals: int = 1
    inner_steps: int = 0
    steps: int = 0
    status: Status | None = None


@dataclass(frozen=True, kw_only=True)
class PicardIteration(IterativeMethod):
    """Picard / Kačanov iteration: freeze the coefficients, solve a linear PDE.

    Compare with: :class:`SobolevGradientDescent` and ``scipy.optimize.newton_krylov``.

    For an isotropic flux ``a(|p|) p`` and reaction ``c(u) u``, step ``k`` solves
    ``-div(a(|grad u_k|) grad u) + c(u_k) u = f`` (same discretisation) by
    conjugate gradients preconditioned with the fast Laplacian inverse, to the
    relative tolerance ``inner_rtol``. Globally convergent for monotone
    ``a(s) s`` (Kačanov 1959); linear rate.

    Stopping rule::

        ||r(u_k)||_2 <= rtol * ||r(u_0)||_2

    Examples
    --------
    >>> from itersolve.pde import log_gradient_energy, solve_variational
    >>> solve_variational(log_gradient_energy(16), PicardIteration()).success
    True
    """

    rtol: float = 1e-8
    inner_rtol: float = 1e-10

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("rtol", "inner_rtol"):
            value = getattr(self, name)
            if not 0 < value < 1:
                raise ValueError(f"{name} must be in (0, 1), got {value}")

    def default_max_steps(self, problem: VariationalProblem) -> int:
        return 500

    def init(self, problem: VariationalProblem, x0: torch.Tensor) -> PicardState:
        pre = LaplacianInverse(problem.grid, dtype=x0.dtype, device=x0.device)
        norm = float(torch.linalg.vector_norm(problem.residual(x0)))
        return PicardState(x0.clone(), norm, norm, pre)

    def step(self, problem: VariationalProblem, state: PicardState) -> PicardState:
        from itersolve.linear import CG, linear_solve

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

        n = u.numel()
        op = aslinearoperator(matvec, shape=(n, n), dtype=u.dtype, device=u.device)

        def precondition(v: torch.Tensor) -> torch.Tensor:
            return state.precondition(v.reshape(shape)).reshape(-1)

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            sol = linear_solve(
                op,
                problem.f.to(u.dtype).reshape(-1),
                CG(rtol=self.inner_rtol, M=precondition),
                x0=u.reshape(-1),
            )
        state.inner_steps += sol.num_steps
        state.x = sol.x.reshape(shape)
        state.r_norm = float(torch.linalg.vector_norm(problem.residual(state.x)))
        state.residuals += 1
        state.steps += 1
        if not sol.success and sol.status is not Status.MAX_STEPS:
            state.status = sol.status
        return state

    def terminate(
        self, problem: VariationalProblem, state: PicardState
    ) -> tuple[bool, Status]:
        if state.status is not None:
            return True, state.status
        return state.r_norm <= self.rtol * state.r0_norm, Status.SUCCESS

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
