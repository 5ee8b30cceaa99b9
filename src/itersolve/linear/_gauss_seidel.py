"""Gauss–Seidel: SOR with ``omega = 1``."""

from __future__ import annotations

from dataclasses import dataclass, field

from itersolve.linear._sor import SOR


@dataclass(frozen=True, kw_only=True)
class GaussSeidel(SOR):
    """Gauss–Seidel iteration: forward sweeps ``x <- x + (D + L)^{-1} (b - A x)``.

    :class:`SOR` with ``omega = 1`` (not settable). Converges for symmetric
    positive definite and for strictly diagonally dominant ``A``.

    Equivalent to / compare with ``pyamg.relaxation.relaxation.gauss_seidel``.

    Stopping rule, per column ``j``: ``||b_j - A x_j|| <= max(rtol * ref_j,
    atol)`` as in :class:`SOR`.

    References
    ----------
    Saad, *Iterative Methods for Sparse Linear Systems*, §4.1.

    Examples
    --------
    >>> import numpy as np, itersolve
    >>> A = np.array([[4.0, 1.0], [1.0, 3.0]])
    >>> method = itersolve.linear.GaussSeidel()
    >>> sol = itersolve.linear_solve(A, np.array([1.0, 2.0]), method)
    >>> sol.success, np.allclose(A @ sol.x, [1.0, 2.0])
    (True, True)
    """

    omega: float = field(default=1.0, init=False)
