"""Newton–Krylov for the PDE problems: the one implementation of
:class:`itersolve.fixed_point.NewtonKrylov` with the grid problems' defaults,
preconditioner and tolerance floor."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from itersolve._core.frontdoor import resolve_rtol
from itersolve.fixed_point._newton_krylov import NewtonKrylov as _NewtonKrylov
from itersolve.fixed_point._newton_krylov import NewtonState
from itersolve.linear import CG
from itersolve.pde._grid import Grid, LaplacianInverse, laplacian_preconditioned
from itersolve.pde._problem import residual_rtol

# Frozen, hence safe to share as a default.
_DEFAULT_SOLVER = CG(rtol=0.1)


@dataclass(frozen=True, kw_only=True)
class NewtonKrylov(_NewtonKrylov):
    """:class:`itersolve.fixed_point.NewtonKrylov` for the variational PDE
    problems: ``J`` symmetric positive definite, hence ``CG(rtol=0.1)`` and the
    ``"symmetric"`` Jacobian product by default; on a grid problem the
    solver's ``M=None`` means the fast Laplacian inverse, and the default
    ``rtol`` is lifted to the residual's rounding floor
    (:func:`itersolve.pde._problem.residual_rtol`). Everything else, the
    stopping rule ``||F(u_k)|| <= max(rtol ||F(u_0)||, atol)`` included, is
    the fixed-point family's method.

    Compare with: ``scipy.optimize.newton_krylov(F, u0, inner_M=...)`` with the
    same preconditioner (the anchor).

    Examples
    --------
    >>> from itersolve.pde import log_gradient_energy, solve_variational
    >>> sol = solve_variational(log_gradient_energy(16), NewtonKrylov())
    >>> sol.success, sol.num_steps <= 8
    (True, True)
    """

    linear_solver: Any = _DEFAULT_SOLVER
    jacobian: str = "symmetric"

    def bind(self, problem: Any, x0: torch.Tensor) -> tuple[Any, Any]:
        grid = getattr(problem, "grid", None)
        if grid is None:
            return self.linear_solver, None
        pre = LaplacianInverse(grid, dtype=x0.dtype, device=x0.device)
        return laplacian_preconditioned(self.linear_solver, pre), pre

    def threshold(self, problem: Any, state: NewtonState) -> float:
        grid = getattr(problem, "grid", None)
        if isinstance(grid, Grid):
            rtol = residual_rtol(self.rtol, grid, state.x.dtype)
        else:
            rtol = resolve_rtol(self.rtol, state.x.dtype)
        return max(rtol * state.r0_norm, self.atol)

    def stats(self, problem: Any, state: NewtonState) -> dict[str, float]:
        stats = super().stats(problem, state)
        if state.precondition is not None:
            stats["poisson_solves"] = state.precondition.applications
        return stats
