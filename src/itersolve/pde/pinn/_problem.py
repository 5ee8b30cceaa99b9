"""1-D problems for physics-informed training: the shared base
:class:`PINNProblem` (collocation, residual hooks, error vs the reference) and
periodic convection(-diffusion)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import KW_ONLY, dataclass
from typing import Any, ClassVar

import torch

from itersolve.pde.pinn._autograd import _grad
from itersolve.pde.pinn._reference import (
    InitialCondition,
    convection_diffusion_fft,
    convection_exact,
)


def _real(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return float(value)


def _count(value: Any, name: str, least: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise ValueError(f"{name} must be an int >= {least}, got {value!r}")


class PINNProblem:
    """Base of the problems :func:`~itersolve.pde.train_pinn` trains on.

    A subclass (a frozen dataclass) has the fields ``n_x``, ``n_t``,
    ``t_final``, ``length`` and ``u0`` and supplies the physics through two
    hooks: :meth:`pde_residual` (the PDE residual from the network output and
    its autograd derivatives) and :meth:`extra_residuals` (boundary or data
    terms, none by default); :meth:`eval_grid` and :meth:`reference` give the
    exact solution the error is measured against. The space interval is
    ``[x_start, x_start + length)``, periodic for the models' input
    embedding.

    Examples
    --------
    >>> from itersolve.pde import BurgersProblem, ConvectionProblem, PINNProblem
    >>> isinstance(ConvectionProblem(1.0), PINNProblem)
    True
    >>> isinstance(BurgersProblem(), PINNProblem)
    True
    """

    n_x: int
    n_t: int
    t_final: float
    length: float
    u0: InitialCondition
    #: Left end of the space interval.
    x_start: ClassVar[float] = 0.0

    def collocation(
        self, seed: int = 0, dtype: torch.dtype = torch.float64
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """A seeded jittered tensor grid: ``n_x`` points in
        ``[x_start, x_start + length)``,
        ``n_t`` in ``(0, t_final]`` (one uniform draw per cell, sorted).

        Residuals are taken on the product grid, the initial condition on the
        ``x`` points at ``t = 0``.
        """
        generator = torch.Generator().manual_seed(seed)
        jitter_x = torch.rand(self.n_x, generator=generator, dtype=torch.float64)
        jitter_t = torch.rand(self.n_t, generator=generator, dtype=torch.float64)
        x = (torch.arange(self.n_x, dtype=torch.float64) + jitter_x) / self.n_x
        t = (torch.arange(self.n_t, dtype=torch.float64) + 1 - jitter_t) / self.n_t
        return (x * self.length + self.x_start).to(dtype), (t * self.t_final).to(dtype)

    def check_collocation(self, x: torch.Tensor, t: torch.Tensor) -> None:
        """Raise ``ValueError`` unless ``x`` and ``t`` are non-empty 1-D grids."""
        for name, grid in (("collocation x", x), ("collocation t", t)):
            if grid.ndim != 1 or grid.shape[0] == 0:
                raise ValueError(
                    f"{name} must be a non-empty 1-D tensor (the points of one "
                    f"axis of the tensor grid), got shape {tuple(grid.shape)}"
                )

    def pde_residual(
        self, u: torch.Tensor, x: torch.Tensor, t: torch.Tensor
    ) -> torch.Tensor:
        """The PDE residual at the points ``(x_k, t_k)`` from ``u = u(x, t)``.

        ``x`` and ``t`` require grad and ``u[k]`` depends on ``x[k], t[k]``
        only (any shape, a batch of ensemble members included), so the
        derivatives are pointwise autograd gradients.
        """
        raise NotImplementedError

    def extra_residuals(
        self,
        field: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
        x: torch.Tensor,
        t: torch.Tensor,
    ) -> dict[str, torch.Tensor]:
        """Named residuals besides the PDE and the initial condition (boundary
        or data terms), from the network ``field(x, t)`` and the collocation
        axes ``x``, ``t``. None by default."""
        return {}

    def eval_grid(
        self, dtype: torch.dtype = torch.float64
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The error-evaluation grid ``(x, t)``."""
        raise NotImplementedError

    def reference(self) -> torch.Tensor:
        """The exact solution on :meth:`eval_grid`, shape ``(len(t), len(x))``."""
        raise NotImplementedError

    def relative_l2(self, u: torch.Tensor) -> float:
        """``||u - u_ref||_2 / ||u_ref||_2`` over :meth:`eval_grid`."""
        ref = self.reference()
        if tuple(u.shape) != tuple(ref.shape):
            raise ValueError(
                f"u must have the eval grid's shape {tuple(ref.shape)}, "
                f"got {tuple(u.shape)}"
            )
        diff = u.detach().to(torch.float64) - ref
        return float(torch.linalg.vector_norm(diff) / torch.linalg.vector_norm(ref))


@dataclass(frozen=True, eq=False)
class ConvectionProblem(PINNProblem):
    """``u_t + c u_x = 0`` on ``[0, length)`` (periodic), ``t in [0, t_final]``.

    The reference is exact: ``u(x, t) = u0(x - c t)``. Errors are measured on
    the uniform ``eval_x x eval_t`` grid (``x`` periodic, ``t`` from 0 to
    ``t_final`` inclusive) as ``||u - u_ref||_2 / ||u_ref||_2``.

    Parameters
    ----------
    c
        Convection speed (the paper's failure mode of a plain PINN appears at
        ``c >= 30`` on ``[0, 2 pi)`` with ``t_final = 1``).
    n_x, n_t
        Collocation points per axis (a seeded, jittered tensor grid, see
        :meth:`collocation`).
    t_final, length
        Time horizon and period.
    eval_x, eval_t
        Size of the error-evaluation grid.
    u0
        Initial condition (torch function, periodic with period ``length``).

    Examples
    --------
    >>> from itersolve.pde import ConvectionProblem
    >>> problem = ConvectionProblem(30.0, n_x=8, n_t=4)
    >>> x, t = problem.collocation(seed=0)
    >>> x.shape, t.shape, problem.nu
    (torch.Size([8]), torch.Size([4]), 0.0)
    """

    c: float
    _: KW_ONLY
    n_x: int = 64
    n_t: int = 25
    t_final: float = 1.0
    length: float = 2 * math.pi
    eval_x: int = 256
    eval_t: int = 100
    u0: InitialCondition = torch.sin

    def __post_init__(self) -> None:
        _real(self.c, "c")
        for name in ("t_final", "length"):
            if not _real(getattr(self, name), name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)!r}")
        _count(self.n_x, "n_x", 2)
        _count(self.n_t, "n_t", 1)
        _count(self.eval_x, "eval_x", 2)
        _count(self.eval_t, "eval_t", 2)
        if not callable(self.u0):
            raise TypeError(f"u0 must be callable, got {self.u0!r}")

    #: Viscosity: 0 for pure convection (a field of the diffusion problem).
    nu: ClassVar[float] = 0.0

    def eval_grid(
        self, dtype: torch.dtype = torch.float64
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The uniform error-evaluation grid ``(x, t)``."""
        x = torch.arange(self.eval_x, dtype=dtype) * (self.length / self.eval_x)
        t = torch.linspace(0.0, self.t_final, self.eval_t, dtype=dtype)
        return x, t

    def reference(self) -> torch.Tensor:
        """The exact solution on :meth:`eval_grid`, shape ``(eval_t, eval_x)``."""
        x, t = self.eval_grid()
        return convection_exact(self.u0, self.c, x, t, length=self.length)

    def pde_residual(
        self, u: torch.Tensor, x: torch.Tensor, t: torch.Tensor
    ) -> torch.Tensor:
        """``u_t + c u_x - nu u_xx`` pointwise (``nu = 0``: no second
        derivative is taken)."""
        u_x, u_t = _grad(u, x), _grad(u, t)
        pde = u_t + self.c * u_x
        if self.nu > 0:
            pde = pde - self.nu * _grad(u_x, x)
        return pde


@dataclass(frozen=True, eq=False)
class ConvectionDiffusionProblem(ConvectionProblem):
    """``u_t + c u_x = nu u_xx``, periodic; reference by FFT.

    Same grids and options as :class:`ConvectionProblem`; the reference
    multiplies each Fourier mode ``k`` of ``u0`` on the ``eval_x`` grid by
    ``exp(-(i c k + nu k^2) t)``
    (:func:`~itersolve.pde.convection_diffusion_fft`).

    Examples
    --------
    >>> from itersolve.pde import ConvectionDiffusionProblem
    >>> problem = ConvectionDiffusionProblem(30.0, 0.01)
    >>> problem.reference().shape
    torch.Size([100, 256])
    """

    nu: float  # type: ignore[misc]

    def __post_init__(self) -> None:
        super().__post_init__()
        if not _real(self.nu, "nu") >= 0:
            raise ValueError(f"nu must be >= 0, got {self.nu!r}")

    def reference(self) -> torch.Tensor:
        x, t = self.eval_grid()
        return convection_diffusion_fft(
            self.u0(x), self.c, self.nu, t, length=self.length
        )
