"""Successive over-relaxation (SOR)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from itersolve._core.operators import LinearOperator
from itersolve.linear._relaxation import Relaxation
from itersolve.linear._relaxation_kernels import Sweeper


@dataclass(frozen=True, kw_only=True)
class SOR(Relaxation):
    """Successive over-relaxation: forward sweeps with relaxation factor ``omega``.

    One step is one forward sweep, in matrix form
    ``x <- x + (D/omega + L)^{-1} (b - A x)`` with ``D`` the diagonal and ``L`` the
    strict lower triangle of ``A`` (the form of the Learning-to-Relax reference
    code). Converges for symmetric positive definite ``A`` and ``0 < omega < 2``;
    ``omega = 1`` is Gauss–Seidel. On CPU with numba a checked step is one
    compiled call: the sweep, then the residual of the new iterate, its norm and
    ``sum(x)`` (the driver's finiteness certificate) in one pass over the
    non-zeros while they are still in cache.

    Equivalent to / compare with ``pyamg.relaxation.relaxation.sor`` (which has
    no stopping rule: it runs a fixed number of sweeps).

    Stopping rule, per column ``j``::

        ||b_j - A x_j|| <= max(rtol * ref_j, atol)

    with ``ref_j = ||b_j||`` (``norm_ref="b"``) or ``||b_j - A x0_j||``
    (``norm_ref="r0"``), checked every ``check_every`` sweeps.

    Parameters
    ----------
    omega
        Relaxation factor in (0, 2).
    rtol, atol, norm_ref
        The stopping rule above. ``rtol`` defaults to 1e-8 (the tolerance of the
        relaxation papers), lifted to ``100 eps`` in low precision (float32:
        1.2e-5); ``None`` means that default (see :mod:`itersolve.linear`).
    check_every
        Compute the residual and test the stopping rule every this many sweeps
        (the sweeps in between skip the residual work).
    backend
        ``"auto"`` (numba on CPU if installed, else dense triangular solves in
        torch up to order 4096, else scipy sparse triangular solves), ``"numba"``,
        ``"torch"`` or ``"scipy"``.

    References
    ----------
    Young, *Iterative methods for solving partial difference equations of elliptic
    type* (1950); Saad, *Iterative Methods for Sparse Linear Systems*, §4.1;
    Khodak et al., *Learning to Relax*, ICLR 2024 (arXiv 2310.02246).

    Examples
    --------
    >>> import numpy as np, itersolve
    >>> from itersolve.problems import poisson
    >>> A = poisson(8, dim=2)
    >>> b = np.ones(64)
    >>> sol = itersolve.linear_solve(A, b, itersolve.linear.SOR(omega=1.5, rtol=1e-10))
    >>> sol.success, bool(np.linalg.norm(b - A @ sol.x) <= 1e-10 * 8)
    (True, True)
    """

    def make_sweeper(
        self, A: LinearOperator, diag: torch.Tensor, backend: str
    ) -> Sweeper:
        return Sweeper(A, diag, self.omega, "forward", backend)
