"""The instance-optimal SOR relaxation factor (an eigenvalue oracle)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp
import scipy.sparse.linalg as spla

# Dense eigenvalues up to this order; Lanczos (eigsh) beyond.
_DENSE_ORDER = 2000


def jacobi_spectral_radius(A: Any) -> float:
    """``rho(I - D^{-1} A)`` for a symmetric ``A`` with a positive diagonal.

    Computed from the symmetric similar matrix ``I - D^{-1/2} A D^{-1/2}``: dense
    eigenvalues up to order 2000, ``scipy.sparse.linalg.eigsh`` beyond.

    Examples
    --------
    >>> from itersolve.problems import poisson
    >>> round(jacobi_spectral_radius(poisson(10, dim=2)), 6)  # cos(pi / 11)
    0.959493
    """
    M = sp.csr_array(A) if sp.issparse(A) else sp.csr_array(np.asarray(A, dtype=float))
    if M.shape[0] != M.shape[1]:
        raise ValueError(f"A must be square, got shape {M.shape}")
    diag = M.diagonal()
    if not np.all(diag > 0):
        raise ValueError("jacobi_spectral_radius needs a positive diagonal")
    inv_sqrt = 1.0 / np.sqrt(diag)
    n = M.shape[0]
    if n <= _DENSE_ORDER:
        dense = inv_sqrt[:, None] * M.toarray() * inv_sqrt[None, :]
        if not np.allclose(dense, dense.T, rtol=1e-10, atol=0):
            raise ValueError("jacobi_spectral_radius needs a symmetric A")
        eig = sla.eigvalsh(dense)
        lo, hi = float(eig[0]), float(eig[-1])
    else:
        scale = sp.diags_array(inv_sqrt)
        S = sp.csr_array(scale @ M @ scale)
        hi = float(spla.eigsh(S, k=1, which="LA", return_eigenvectors=False)[0])
        lo = float(spla.eigsh(S, k=1, which="SA", return_eigenvectors=False)[0])
    return max(abs(1.0 - lo), abs(1.0 - hi))


def optimal_sor_omega(A: Any) -> float:
    """Young's optimal SOR factor ``omega* = 2 / (1 + sqrt(1 - beta^2))``.

    ``beta`` is the Jacobi spectral radius :func:`jacobi_spectral_radius`. Valid
    for consistently ordered matrices (e.g. the natural ordering of the 5-point
    Laplacian) with ``beta < 1``; an oracle that needs an eigenvalue, which is
    what the bandit tuners of :class:`SequenceSolver` avoid.

    Equivalent to / compare with ``omega_opt.m`` of the Learning-to-Relax code.

    Examples
    --------
    >>> from itersolve.problems import poisson
    >>> round(optimal_sor_omega(poisson(64, dim=2)), 4)  # 2 / (1 + sin(pi/65))
    1.9078
    """
    beta = jacobi_spectral_radius(A)
    if not beta < 1.0:
        raise ValueError(
            f"the Jacobi spectral radius is {beta:.6g} >= 1: no convergent SOR factor "
            "from Young's formula"
        )
    return 2.0 / (1.0 + math.sqrt(1.0 - beta * beta))
