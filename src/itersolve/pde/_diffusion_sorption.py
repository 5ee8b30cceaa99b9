"""1-D diffusion–sorption (PDEBench's setting) on a space-time grid.

``u_t = D / R(u) u_xx`` on ``x in [0, 1]``, ``t in [0, t_final]``, with the
Freundlich retardation factor

    ``R(u) = 1 + (1 - phi) / phi * rho_s * k_f * n_f * (u_+ + 1e-6)^(n_f - 1)``

(``u_+ = max(u, 0)``: the power is singular at ``u = 0``; the PDEBench / FINN
simulator and the hard-constraint reference guard it the same way), the
Dirichlet inflow ``u(t, 0) = 1`` and the outflow (Cauchy) condition
``u(t, 1) = -D u_x(t, 1)`` at the right end.

The sign at the right end. PDEBench's paper prints ``u(t, 1) = D u_x(t, 1)``.
Read literally that is a Robin condition of the unstable sign: ``sinh(k x)``
with ``k coth k = 1 / D`` is a mode growing like ``exp(t / (D R))``, a rate
near 700 per unit time for ``D = 5e-4`` (no grid resolves it and no solution
stays bounded over ``t_final = 500``). The simulator that generated the data
(FINN's ``Simulator.rc_ode``) sets the right ghost value to
``D (c_{N-1} - c_N) / dx = -D u_x``, i.e. the outflow condition above, which
is what is implemented here.

Initial conditions. ``initial="pdebench"`` is the PDEBench /
FINN start ``u0 = 0``: with the inflow ``u = 1`` it puts a jump into the
corner ``(0, 0)`` and a sorption front moves in (about ``sqrt(D t / R)``,
0.3 at ``t_final = 500``). ``initial="smooth"`` (the default), ``u0(x) = 1 - sin(pi x /
2)``, meets both boundary conditions and the first compatibility condition
at ``x = 0`` (``u0'' = 0``, so ``u_t`` is continuous at the corner): the
solution is smooth up to ``t = 0`` and the discretisations below show their
nominal order there (what the tests measure).

Discretisations:

* :meth:`DiffusionSorptionProblem.residual` — the constraint of the hard
  layer: Crank–Nicolson rows ``u_i - u_{i-1} - dt/2 (f(u_i) + f(u_{i-1}))``
  (``f = D / R(u) * central u_xx``) at interior nodes, ``u(0, x) - u0(x)``,
  ``u(t, 0) - 1`` and the outflow row with a second-order one-sided
  ``u_x``: one row per grid node, each in units of ``u``. Second order in
  ``dt`` and ``dx``.
* :func:`diffusion_sorption_reference` — the method of lines on a grid
  ``refine`` times finer (central differences, ghost node for the outflow
  condition) integrated by ``scipy.integrate.solve_ivp`` (BDF, banded
  Jacobian sparsity, ``rtol = 1e-10``): second order in ``dx``, time error
  below ``rtol``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

Tensor = torch.Tensor

#: The guard of the Freundlich power at ``u <= 0`` (PDEBench / FINN).
GUARD = 1e-6


def _positive(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be finite and > 0, got {value!r}")
    return float(value)


@dataclass(frozen=True, kw_only=True)
class DiffusionSorptionProblem:
    """1-D diffusion–sorption on an ``n_t x n_t`` space-time grid.

    Parameters
    ----------
    n_t, n_x
        Grid nodes in time (``t_i = i t_final / (n_t - 1)``) and space
        (``x_j = j / (n_x - 1)``), both >= 3.
    t_final
        Time horizon (PDEBench: 500).
    diffusivity, porosity, density, freundlich_k, freundlich_n
        ``D, phi, rho_s, k_f, n_f`` (PDEBench: 5e-4, 0.29, 2880, 3.5e-4,
        0.874).
    initial
        ``"pdebench"`` (``u0 = 0``) or ``"smooth"`` (``1 - sin(pi x / 2)``).

    Examples
    --------
    >>> import torch
    >>> from itersolve.pde import DiffusionSorptionProblem
    >>> problem = DiffusionSorptionProblem(n_t=5, n_x=6)
    >>> t, x = problem.axes()
    >>> u = torch.ones(1, 5, 6, dtype=torch.float64)
    >>> problem.residual(u).shape
    torch.Size([1, 30])
    >>> round(float(problem.retardation(torch.tensor(1.0))), 4)
    3.1569
    """

    n_t: int = 64
    n_x: int = 64
    t_final: float = 500.0
    diffusivity: float = 5e-4
    porosity: float = 0.29
    density: float = 2880.0
    freundlich_k: float = 3.5e-4
    freundlich_n: float = 0.874
    initial: str = "smooth"

    def __post_init__(self) -> None:
        for name in ("n_t", "n_x"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 3:
                raise ValueError(f"{name} must be an int >= 3, got {value!r}")
        for name in (
            "t_final",
            "diffusivity",
            "density",
            "freundlich_k",
            "freundlich_n",
        ):
            _positive(getattr(self, name), name)
        if self.initial not in ("pdebench", "smooth"):
            raise ValueError(
                f"initial must be 'pdebench' or 'smooth', got {self.initial!r}"
            )
        phi = _positive(self.porosity, "porosity")
        if not phi < 1:
            raise ValueError(f"porosity must be in (0, 1), got {self.porosity!r}")

    @property
    def dt(self) -> float:
        return self.t_final / (self.n_t - 1)

    @property
    def dx(self) -> float:
        return 1.0 / (self.n_x - 1)

    @property
    def shape(self) -> tuple[int, int]:
        return (self.n_t, self.n_x)

    def axes(self, dtype: torch.dtype = torch.float64) -> tuple[Tensor, Tensor]:
        """The grid axes ``t`` (``n_t``) and ``x`` (``n_x``)."""
        t = torch.linspace(0.0, self.t_final, self.n_t, dtype=dtype)
        return t, torch.linspace(0.0, 1.0, self.n_x, dtype=dtype)

    def u0(self, x: Tensor) -> Tensor:
        """The initial condition: ``0`` or ``1 - sin(pi x / 2)``."""
        if self.initial == "pdebench":
            return torch.zeros_like(x)
        return 1 - torch.sin(0.5 * math.pi * x)

    def retardation(self, u: Tensor) -> Tensor:
        """The Freundlich retardation factor ``R(u)`` (guarded at ``u <= 0``)."""
        phi, nf = self.porosity, self.freundlich_n
        scale = (1 - phi) / phi * self.density * self.freundlich_k * nf
        positive = torch.where(u > 0, u, torch.zeros_like(u))
        return 1 + scale * (positive + GUARD) ** (nf - 1)

    def _rate(self, u: Tensor) -> Tensor:
        """``f(u) = D / R(u) * u_xx`` at the interior columns of ``u``."""
        uxx = (u[..., 2:] - 2 * u[..., 1:-1] + u[..., :-2]) / self.dx**2
        return self.diffusivity / self.retardation(u[..., 1:-1]) * uxx

    def residual(self, u: Tensor, block: tuple[slice, ...] | None = None) -> Tensor:
        """The constraint rows ``F(u)`` on a block of the grid, ``(B, m)``.

        ``u`` has shape ``(B, *block_shape)``: the candidate on the block
        ``block`` (a pair of slices into the ``(n_t, n_x)`` grid; ``None``: the
        whole grid, ``m = n_t n_x``). A block has the Crank–Nicolson rows at
        the nodes whose stencil lies inside it, the initial rows if it holds
        ``t = 0`` and the boundary rows of the ends of ``[0, 1]`` it holds
        (the hard-constraint experts of Chalapathi et al. see only their own
        block). Usable as ``residual_fn`` of
        :class:`~itersolve.pde.HardConstraintLayer`.
        """
        if block is None:
            block = (slice(0, self.n_t), slice(0, self.n_x))
        if not isinstance(block, tuple) or len(block) != 2:
            raise ValueError(f"block must be a pair of slices, got {block!r}")
        (i0, i1, _), (j0, j1, _) = (
            block[0].indices(self.n_t),
            block[1].indices(self.n_x),
        )
        expected = (i1 - i0, j1 - j0)
        if not isinstance(u, Tensor) or u.ndim != 3 or tuple(u.shape[1:]) != expected:
            shape = tuple(u.shape) if isinstance(u, Tensor) else type(u).__name__
            raise ValueError(
                f"u must have shape (batch, {expected[0]}, {expected[1]}) for block "
                f"{block}, got {shape}"
            )
        if expected[1] < 3:
            raise ValueError(
                f"a block needs >= 3 columns for the x stencil, got {expected[1]}"
            )
        rows = [self.pde_rows(u)]
        first = 1 if i0 == 0 else 0  # t = 0 is the initial row's
        if i0 == 0:
            rows.append(self.initial_rows(u[:, 0, :], j0))
        if j0 == 0:
            rows.append(self.inflow_rows(u[:, first:, 0]))
        if j1 == self.n_x:
            rows.append(self.outflow_rows(u[:, first:, -3:]))
        return torch.cat(rows, dim=1)

    def pde_rows(self, u: Tensor) -> Tensor:
        """The Crank–Nicolson rows of ``u`` ``(B, m_t, m_x)`` (any window of
        the grid) at its nodes whose stencil it holds, ``(B, (m_t - 1)(m_x -
        2))``, time-major."""
        rate = self._rate(u)
        rows = (
            u[:, 1:, 1:-1]
            - u[:, :-1, 1:-1]
            - 0.5 * self.dt * (rate[:, 1:] + rate[:, :-1])
        )
        return rows.reshape(u.shape[0], -1)

    def initial_rows(self, u: Tensor, j0: int = 0) -> Tensor:
        """``u(0, x_j) - u0(x_j)``: ``u`` ``(B, m)`` holds ``t = 0`` at the
        columns ``j0 .. j0 + m - 1``."""
        j = torch.arange(j0, j0 + u.shape[-1], dtype=u.dtype, device=u.device)
        return u - self.u0(j * self.dx)

    def inflow_rows(self, u: Tensor) -> Tensor:
        """``u(t, 0) - 1``: ``u`` ``(B, m)`` holds the ``x = 0`` column."""
        return u - 1.0

    def outflow_rows(self, end: Tensor) -> Tensor:
        """``u + D u_x`` at ``x = 1`` (second-order one-sided ``u_x``):
        ``end`` ``(B, m, 3)`` holds the last three columns."""
        ux = (3 * end[..., 2] - 4 * end[..., 1] + end[..., 0]) / (2 * self.dx)
        return end[..., 2] + self.diffusivity * ux

    def residual_parts(self, u: Tensor) -> dict[str, Tensor]:
        """The whole-grid rows of :meth:`residual` by kind: ``pde`` (``(B,
        (n_t - 1)(n_x - 2))``), ``initial`` (``(B, n_x)``), ``boundary``
        (``(B, 2 (n_t - 1))``)."""
        rows = self.residual(u)
        n_pde = (self.n_t - 1) * (self.n_x - 2)
        return {
            "pde": rows[:, :n_pde],
            "initial": rows[:, n_pde : n_pde + self.n_x],
            "boundary": rows[:, n_pde + self.n_x :],
        }


def diffusion_sorption_reference(
    problem: DiffusionSorptionProblem, *, refine: int = 8, rtol: float = 1e-10
) -> np.ndarray:
    """Reference solution on the problem's grid, shape ``(n_t, n_x)``.

    Method of lines on ``refine (n_x - 1) + 1`` nodes (the problem's nodes are
    among them): ``u_j' = D / R(u_j) (u_{j-1} - 2 u_j + u_{j+1}) / h^2``,
    ``u_0 = 1``, the outflow condition by a ghost node
    ``u_{N+1} = u_{N-1} - 2 h u_N / D``; integrated by
    ``scipy.integrate.solve_ivp(method="BDF")`` with a tridiagonal Jacobian
    sparsity, ``rtol`` and ``atol = rtol / 100``. The spatial error is
    ``O((h / refine)^2)`` (measured order 2.0 in the tests).

    Examples
    --------
    >>> from itersolve.pde import (
    ...     DiffusionSorptionProblem, diffusion_sorption_reference)
    >>> problem = DiffusionSorptionProblem(n_t=4, n_x=9)
    >>> u = diffusion_sorption_reference(problem, refine=2)
    >>> u.shape, float(u[-1, 0])
    ((4, 9), 1.0)
    """
    from scipy.integrate import solve_ivp
    from scipy.sparse import diags

    if not isinstance(problem, DiffusionSorptionProblem):
        raise TypeError(
            f"problem must be a DiffusionSorptionProblem, got {type(problem).__name__}"
        )
    if isinstance(refine, bool) or not isinstance(refine, int) or refine < 1:
        raise ValueError(f"refine must be an int >= 1, got {refine!r}")
    rtol = _positive(rtol, "rtol")
    n = refine * (problem.n_x - 1)  # unknowns u_1 .. u_n
    h = 1.0 / n
    D = problem.diffusivity
    x = np.linspace(0.0, 1.0, n + 1)

    def rate(_t: float, v: np.ndarray) -> np.ndarray:
        u = np.concatenate(([1.0], v, [v[-2] - 2 * h * v[-1] / D]))
        R = problem.retardation(torch.from_numpy(v)).numpy()
        return D / R * (u[:-2] - 2 * u[1:-1] + u[2:]) / h**2

    sparsity = diags([1.0, 1.0, 1.0], [-1, 0, 1], shape=(n, n))
    t_eval = np.linspace(0.0, problem.t_final, problem.n_t)
    u0 = problem.u0(torch.from_numpy(x[1:])).numpy()
    sol = solve_ivp(
        rate,
        (0.0, problem.t_final),
        u0,
        method="BDF",
        t_eval=t_eval,
        rtol=rtol,
        atol=rtol / 100,
        jac_sparsity=sparsity,
    )
    if not sol.success:
        raise RuntimeError(f"the reference integration failed: {sol.message}")
    full = np.concatenate((np.ones((1, problem.n_t)), sol.y), axis=0).T
    return np.ascontiguousarray(full[:, ::refine])
