"""Symmetric successive over-relaxation (SSOR) as a solver."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from itersolve._core.operators import LinearOperator
from itersolve.linear._relaxation import Relaxation
from itersolve.linear._relaxation_kernels import Sweeper


@dataclass(frozen=True, kw_only=True)
class SSOR(Relaxation):
    """Symmetric SOR: a forward then a backward sweep per step.

    One step is ``x <- x + (D/omega + L)^{-1} (b - A x)`` followed by
    ``x <- x + (D/omega + U)^{-1} (b - A x)``. The iteration matrix is symmetrizable
    for symmetric ``A``, which is what makes SSOR a preconditioner for CG
    (:class:`SSORPreconditioner`); as a solver it converges for SPD ``A`` and
    ``0 < omega < 2``.

    Equivalent to / compare with ``pyamg.relaxation.relaxation.sor(...,
    sweep="symmetric")``.

    Stopping rule, per column ``j``: ``||b_j - A x_j|| <= max(rtol * ref_j,
    atol)`` as in :class:`SOR`.

    Parameters
    ----------
    omega, rtol, atol, norm_ref, check_every, backend
        As in :class:`SOR`.

    References
    ----------
    Saad, *Iterative Methods for Sparse Linear Systems*, §4.1.2.

    Examples
    --------
    >>> import numpy as np, itersolve
    >>> from itersolve.problems import poisson
    >>> A = poisson(16, dim=1)
    >>> sol = itersolve.linear_solve(A, np.ones(16), itersolve.linear.SSOR(omega=1.6))
    >>> sol.success
    True
    """

    symmetric_sweep: ClassVar[bool] = True

    def make_sweeper(
        self, A: LinearOperator, diag: torch.Tensor, backend: str
    ) -> Sweeper:
        return Sweeper(A, diag, self.omega, "symmetric", backend)
