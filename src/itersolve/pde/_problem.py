"""The nonlinear elliptic variational problem on a tensor grid, and its validation."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from itersolve._core.frontdoor import DefaultTolerance
from itersolve._core.tensors import as_tensor
from itersolve.pde._grid import Grid

Field = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True, eq=False)
class VariationalProblem:
    """Minimise ``E(u) = int F(grad u) + G(u) - f u dx`` on ``[0, 1]^d``.

    Euler–Lagrange equation ``-div flux(grad u) + reaction(u) = f`` with
    ``flux = dF/dp`` and ``reaction = dG/du`` (torch functions, applied
    pointwise: ``flux`` maps ``p`` of shape ``(d, ...)`` to the same shape).
    Discretisation: ``E_h(u) = h^d sum [F(D+ u) + F(D- u)] / 2 + h^d sum G(u) -
    h^d sum f u`` with forward/backward differences ``D+``, ``D-``; for
    ``F = |p|^2/2`` this is exactly the (2d+1)-point Laplacian, so the Sobolev
    preconditioner built from that Laplacian's exact eigenvalues is spectrally
    equivalent with the constants ``lam``, ``Lam`` of the continuous problem.

    Parameters
    ----------
    grid
        The :class:`Grid` (size, dimension, boundary condition).
    f
        Right-hand side on the grid nodes (array of the grid's shape).
    flux, reaction
        ``dF/dp`` and ``dG/du``; ``reaction=None`` means ``G = 0``.
    flux_energy, reaction_energy
        ``F`` and ``G`` themselves (needed only for the Armijo energy line
        search and :meth:`energy`).
    lam, Lam
        Bounds ``lam I <= Hess_(u,p) L <= Lam I`` (used for the step
        ``2/(lam + Lam)``).

    Examples
    --------
    Solve ``-div(grad u) = f`` (``F(p) = |p|^2 / 2``) on a 16 x 16 grid:

    >>> import torch
    >>> from itersolve.pde import Grid, VariationalProblem, solve_variational
    >>> grid = Grid((16, 16))
    >>> f = torch.ones(16, 16, dtype=torch.float64)
    >>> problem = VariationalProblem(grid, f=f, flux=lambda p: p, lam=1.0, Lam=1.0)
    >>> solve_variational(problem).success
    True
    """

    grid: Grid
    f: Any
    flux: Field
    reaction: Field | None = None
    flux_energy: Field | None = None
    reaction_energy: Field | None = None
    lam: float | None = None
    Lam: float | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.grid, Grid):
            raise TypeError(f"grid must be a Grid, got {type(self.grid).__name__}")
        f, info = as_tensor(self.f, "f")
        if tuple(f.shape) != self.grid.shape:
            raise ValueError(
                f"f must have the grid's shape {self.grid.shape}, got {tuple(f.shape)}"
            )
        if not callable(self.flux):
            raise TypeError("flux must be a callable p -> dF/dp")
        if (
            self.lam is not None
            and self.Lam is not None
            and not 0 < self.lam <= self.Lam
        ):
            raise ValueError(f"need 0 < lam <= Lam, got lam={self.lam}, Lam={self.Lam}")
        if self.grid.bc == "periodic" and self.reaction is None:
            mean = float(f.mean())
            if abs(mean) > 1e-10 * max(1.0, float(f.abs().max())):
                raise ValueError(
                    "periodic problem without a reaction term needs a zero-mean f "
                    f"(mean {mean:.3g}): otherwise no solution exists"
                )
        object.__setattr__(self, "f", f)
        object.__setattr__(self, "_info", info)

    @property
    def info(self) -> Any:
        return self._info  # type: ignore[attr-defined]

    def residual(self, u: torch.Tensor) -> torch.Tensor:
        """``grad E_h(u) / h^d``: the discrete Euler–Lagrange residual."""
        g = self.grid
        r = 0.5 * (
            g.divergence_forward(self.flux(g.forward_gradient(u)))
            + g.divergence_backward(self.flux(g.backward_gradient(u)))
        )
        if self.reaction is not None:
            r = r + self.reaction(u)
        return r - self.f.to(u.dtype)

    def energy(self, u: torch.Tensor) -> torch.Tensor:
        """The discrete energy ``E_h(u)``."""
        if self.flux_energy is None or (
            self.reaction is not None and self.reaction_energy is None
        ):
            raise ValueError(
                "energy needs flux_energy (and reaction_energy when there is a "
                "reaction term)"
            )
        g = self.grid
        e = 0.5 * (
            self.flux_energy(g.forward_gradient(u)).sum()
            + self.flux_energy(g.backward_gradient(u)).sum()
        )
        if self.reaction_energy is not None:
            e = e + self.reaction_energy(u).sum()
        return (e - (self.f.to(u.dtype) * u).sum()) * g.cell_volume


def residual_rtol(rtol: float, grid: Grid, dtype: torch.dtype) -> float:
    """The relative-residual tolerance a run on ``grid`` in ``dtype`` uses.

    A tolerance the user gave is used as given. The default is lifted to the
    rounding floor of the discrete residual, ``eps cond(-Delta_h)`` with
    ``cond(-Delta_h) ~ 4 / (pi h)^2``: evaluating ``-div flux(grad u)`` rounds
    each entry at about ``eps ||u|| / h^2``, while ``||r(u_0)|| = ||f||`` is of
    order ``||u||``. In float64 this floor is far below ``1e-8`` on every grid
    up to ``N ~ 1e4``; in float32 at ``N = 32`` it is ``5.3e-5``, where the
    Sobolev, Picard and Newton–Krylov runs stop with ``u`` within ``3e-5`` of
    the float64 answer.

    >>> from itersolve.pde import Grid
    >>> grid = Grid((32, 32), "dirichlet")
    >>> residual_rtol(DefaultTolerance(1e-8), grid, torch.float64)
    1e-08
    >>> round(residual_rtol(DefaultTolerance(1e-8), grid, torch.float32), 6)
    5.3e-05
    """
    if not isinstance(rtol, DefaultTolerance):
        return float(rtol)
    condition = 4.0 / (math.pi * grid.h) ** 2
    return max(float(rtol), torch.finfo(dtype).eps * condition)
