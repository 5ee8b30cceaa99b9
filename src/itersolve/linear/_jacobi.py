"""Weighted Jacobi iteration."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch

from itersolve._core.operators import LinearOperator
from itersolve.linear._relaxation import Relaxation
from itersolve.linear._relaxation_kernels import BoundSweeper


class _JacobiSweeper(BoundSweeper):
    """``x <- x + omega D^{-1} (b - A x)``: a matvec and a scaling, any device.

    The residual a checked step computes is the next step's ``b - A x``, so a
    step costs one matvec whether or not it is checked.
    """

    def __init__(self, A: LinearOperator, diag: torch.Tensor, omega: float):
        self.A = A
        self.vector_scale = omega / diag
        self.scale = self.vector_scale
        self.sq = np.zeros(1)
        # Whether ``r`` holds the residual of the current iterate.
        self.current = False

    def prepare(self, zero_start: bool) -> None:
        # From x = 0 the residual is b: the first sweep needs no matvec.
        x = self.x
        self.scale = self.vector_scale if x.ndim == 1 else self.vector_scale[:, None]
        self.current = zero_start
        if zero_start:
            self.r.copy_(self.b)

    def sweep(self, want: bool) -> float | None:
        residual = self.r if self.current else self.b - self.A.matvec(self.x)
        self.x.addcmul_(self.scale, residual)
        self.current = False
        return self.residual() if want else None

    def residual(self) -> float:
        r = self.r
        torch.sub(self.b, self.A.matvec(self.x), out=r)
        self.current = True
        self.sq[:] = torch.linalg.vecdot(r, r, dim=0).cpu().numpy().reshape(-1)
        return float(self.x.sum())


@dataclass(frozen=True, kw_only=True)
class Jacobi(Relaxation):
    """Weighted (damped) Jacobi: ``x <- x + omega D^{-1} (b - A x)``.

    Every component is updated from the previous iterate, so a step is one matvec
    and one scaling: fully parallel, any device, batched over right-hand sides.
    Converges for SPD ``A`` when ``0 < omega < 2 / lambda_max(D^{-1} A)``
    (``omega <= 1`` suffices for diagonally dominant ``A``); ``omega = 2/3`` is the
    classic multigrid smoother.

    Equivalent to / compare with ``pyamg.relaxation.relaxation.jacobi``.

    Stopping rule, per column ``j``: ``||b_j - A x_j|| <= max(rtol * ref_j,
    atol)`` as in :class:`SOR`.

    Parameters
    ----------
    omega
        Damping factor in (0, 2); 1 is plain Jacobi.
    rtol, atol, norm_ref, check_every
        As in :class:`SOR` (``backend`` is unused: torch ops only).

    References
    ----------
    Saad, *Iterative Methods for Sparse Linear Systems*, §4.1.

    Examples
    --------
    >>> import numpy as np, itersolve
    >>> A = np.array([[4.0, 1.0], [1.0, 3.0]])
    >>> sol = itersolve.linear_solve(A, np.array([1.0, 2.0]), itersolve.linear.Jacobi())
    >>> sol.success, np.allclose(A @ sol.x, [1.0, 2.0])
    (True, True)
    """

    symmetric_sweep: ClassVar[bool] = True

    def make_sweeper(
        self, A: LinearOperator, diag: torch.Tensor, backend: str
    ) -> _JacobiSweeper:
        return _JacobiSweeper(A, diag, self.omega)
