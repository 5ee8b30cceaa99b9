"""Weighted Jacobi iteration."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from itersolve.linear._problem import LinearProblem
from itersolve.linear._relaxation import Relaxation


class _JacobiSweeper:
    """``x <- x + omega D^{-1} (b - A x)``: a matvec and a scaling, any device."""

    def __init__(self, problem: LinearProblem, diag: torch.Tensor, omega: float):
        self.A = problem.A
        self.scale = omega / diag
        # The residual of the current iterate, when the last sweep computed it.
        self.current: torch.Tensor | None = None

    def sweep(
        self, x: torch.Tensor, b: torch.Tensor, r: torch.Tensor | None
    ) -> np.ndarray | None:
        scale = self.scale if x.ndim == 1 else self.scale[:, None]
        residual = self.current if self.current is not None else b - self.A.matvec(x)
        x.addcmul_(scale, residual)
        self.current = None
        if r is None:
            return None
        self.current = b - self.A.matvec(x)
        r.copy_(self.current)
        return torch.linalg.vector_norm(r, dim=0).cpu().numpy().reshape(-1)


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
    >>> sol = itersolve.linear_solve(A, np.array([1.0, 2.0]), itersolve.Jacobi())
    >>> sol.success, np.allclose(A @ sol.x, [1.0, 2.0])
    (True, True)
    """

    def make_sweeper(
        self, problem: LinearProblem, diag: torch.Tensor, backend: str
    ) -> _JacobiSweeper:
        return _JacobiSweeper(problem, diag, self.omega)
