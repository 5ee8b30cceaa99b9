"""Test problems with known bounds ``(lam, Lam)`` and manufactured solutions."""

from __future__ import annotations

import math

import torch

from itersolve.pde._grid import Grid
from itersolve.pde._problem import Field, VariationalProblem


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
    """``u*(x) = prod_i sin(pi x_i)`` on the grid nodes.

    Examples
    --------
    >>> from itersolve.pde import Grid, manufactured_solution
    >>> u = manufactured_solution(Grid((3, 3)))
    >>> u.shape, round(u[1, 1].item(), 6)  # the centre node (0.5, 0.5)
    (torch.Size([3, 3]), 1.0)
    """
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

    Examples
    --------
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

    Examples
    --------
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
