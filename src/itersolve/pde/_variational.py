"""Nonlinear elliptic variational problems on tensor grids, and the front door."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from itersolve._core.iterate import Callback, IterativeMethod, finish, iterate
from itersolve._core.solution import Solution
from itersolve._core.tensors import as_tensor, to_output
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


def solve_variational(
    problem: VariationalProblem,
    method: IterativeMethod | None = None,
    *,
    u0: Any = None,
    callback: Callback | None = None,
    record: bool | int = False,
    throw: bool = False,
) -> Solution:
    """Solve a :class:`VariationalProblem` for the grid function ``u``.

    Parameters
    ----------
    method
        :class:`SobolevGradientDescent` (default), :class:`L2GradientDescent`,
        :class:`PicardIteration` or :class:`NewtonKrylov`.
    u0
        Initial guess on the grid (zeros by default).

    Returns
    -------
    Solution
        ``x`` in the array kind and dtype of ``problem.f``; ``stats`` counts
        ``residuals`` (flux evaluations) and ``poisson_solves``.

    Examples
    --------
    >>> from itersolve.pde import log_gradient_energy
    >>> sol = solve_variational(log_gradient_energy(32))
    >>> sol.success
    True
    """
    from itersolve.pde._sobolev import SobolevGradientDescent

    if not isinstance(problem, VariationalProblem):
        raise TypeError(
            f"problem must be a VariationalProblem, got {type(problem).__name__}"
        )
    method = SobolevGradientDescent() if method is None else method
    if not isinstance(method, IterativeMethod):
        raise TypeError(f"method must be a solver, got {type(method).__name__}")
    dtype = problem.f.dtype
    if u0 is None:
        u0_t = torch.zeros(problem.grid.shape, dtype=dtype, device=problem.f.device)
    else:
        u0_t = as_tensor(u0, "u0", dtype=dtype, device=problem.f.device)[0]
        if tuple(u0_t.shape) != problem.grid.shape:
            raise ValueError(
                f"u0 must have the grid's shape {problem.grid.shape}, got "
                f"{tuple(u0_t.shape)}"
            )
    _, solution = iterate(
        method,
        problem,
        u0_t,
        callback=callback,
        record=record,
        check_finite=(problem.f,),
    )
    solution.x = to_output(solution.x, problem.info)
    return finish(solution, throw=throw)


# -- test problems with known (lam, Lam) ----------------------------------------


def _log_flux(p: torch.Tensor) -> torch.Tensor:
    return p * (1 + 1 / (1 + (p * p).sum(0)))


def _log_energy(p: torch.Tensor) -> torch.Tensor:
    s = (p * p).sum(0)
    return 0.5 * s + 0.5 * torch.log1p(s)


def _tanh_reaction(u: torch.Tensor) -> torch.Tensor:
    return u + 0.5 * torch.tanh(u)


def _tanh_energy(u: torch.Tensor) -> torch.Tensor:
    # G(u) = u^2/2 + log(cosh(u))/2, written stably
    a = u.abs()
    return 0.5 * u * u + 0.5 * (a + torch.log1p(torch.exp(-2 * a)) - math.log(2.0))


def _quadratic_flux(p: torch.Tensor) -> torch.Tensor:
    return p


def _quadratic_energy(p: torch.Tensor) -> torch.Tensor:
    return 0.5 * (p * p).sum(0)


def manufactured_solution(
    grid: Grid, dtype: torch.dtype = torch.float64
) -> torch.Tensor:
    """``u*(x) = prod_i sin(pi x_i)`` on the grid nodes."""
    x = grid.coordinates(dtype)
    return torch.sin(math.pi * x).prod(0)


def _manufactured_rhs(grid: Grid, flux: Field, reaction: Field | None) -> torch.Tensor:
    """``f = -div flux(grad u*) + reaction(u*)`` exactly (autograd on the
    closed-form gradient of ``u*``; no discretisation error)."""
    x = grid.coordinates(torch.float64).requires_grad_(True)
    s, c = torch.sin(math.pi * x), torch.cos(math.pi * x)
    d = grid.dim
    grads = []
    for k in range(d):
        others = [s[j] for j in range(d) if j != k]
        prod = torch.stack(others).prod(0) if others else torch.ones_like(s[0])
        grads.append(math.pi * c[k] * prod)
    q = flux(torch.stack(grads))
    div = torch.zeros_like(s[0])
    for k in range(d):
        (gk,) = torch.autograd.grad(q[k].sum(), x, retain_graph=True)
        div = div + gk[k]
    f = -div
    if reaction is not None:
        f = f + reaction(s.prod(0))
    return f.detach()


def log_gradient_energy(
    n: int, dim: int = 2, dtype: torch.dtype = torch.float64
) -> VariationalProblem:
    """``L = |p|^2/2 + log(1 + |p|^2)/2``: flux ``p (1 + 1/(1 + |p|^2))``,
    Hessian eigenvalues in ``[0.875, 2]``; homogeneous Dirichlet, manufactured
    ``u* = prod sin(pi x_i)``.

    >>> log_gradient_energy(16).grid.h
    0.058823529411764705
    """
    grid = Grid((n,) * dim, "dirichlet")
    f = _manufactured_rhs(grid, _log_flux, None).to(dtype)
    return VariationalProblem(
        grid, f, _log_flux, None, _log_energy, None, lam=0.875, Lam=2.0
    )


def semilinear_tanh(
    n: int, dim: int = 2, dtype: torch.dtype = torch.float64
) -> VariationalProblem:
    """``-Delta u + u + tanh(u)/2 = f`` (``g' in [1, 1.5]``), Dirichlet,
    manufactured ``u* = prod sin(pi x_i)``. With the ``sigma = 0`` Dirichlet
    preconditioner the bounds are ``lam = 1``, ``Lam = 1 + 1.5/lambda_min(-Delta_h)``
    (``u + tanh(u)/2`` has slope in ``[1, 1.5]``).

    >>> semilinear_tanh(8, dim=1).grid.shape
    (8,)
    """
    grid = Grid((n,) * dim, "dirichlet")
    f = _manufactured_rhs(grid, _quadratic_flux, _tanh_reaction).to(dtype)
    h = grid.h
    smallest = dim * (2 - 2 * math.cos(math.pi * h)) / h**2  # of -Delta_h
    return VariationalProblem(
        grid,
        f,
        _quadratic_flux,
        _tanh_reaction,
        _quadratic_energy,
        _tanh_energy,
        lam=1.0,
        Lam=1.0 + 1.5 / smallest,
    )
