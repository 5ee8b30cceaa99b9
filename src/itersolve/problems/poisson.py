"""Finite-difference Laplacians on tensor grids."""

from __future__ import annotations

import scipy.sparse as sp


def poisson(n: int, dim: int = 2) -> sp.csr_array:
    """The negative Laplacian, ``(2 dim)``-point stencil, Dirichlet boundary.

    ``n`` interior points per side; the matrix is SPD of order ``n**dim`` with
    eigenvalues ``sum_i 4 sin^2(pi k_i / (2(n+1)))`` (unscaled: no ``1/h^2``).

    >>> poisson(3, dim=1).toarray()
    array([[ 2., -1.,  0.],
           [-1.,  2., -1.],
           [ 0., -1.,  2.]])
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    if dim not in (1, 2, 3):
        raise ValueError(f"dim must be 1, 2 or 3, got {dim}")
    T = sp.diags_array([-1.0, 2.0, -1.0], offsets=[-1, 0, 1], shape=(n, n))
    eye = sp.eye_array(n)
    A = T
    for _ in range(dim - 1):
        A = sp.kron(A, eye) + sp.kron(sp.eye_array(A.shape[0]), T)
    return sp.csr_array(A)
