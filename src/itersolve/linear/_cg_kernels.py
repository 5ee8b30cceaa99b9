"""Fused CPU kernels for CG on a CSR matrix (numba; optional).

One CG iteration touches memory twice instead of six times:

* ``direction_spmv``: ``p_new = z + beta p_old``, ``q = A p_new`` and ``p_new . q``
  in one pass over the rows (``p_new`` is formed on the fly where the stencil
  reads it, and written to a second buffer so no row sees a half-updated ``p``);
* ``update``: ``x += alpha p``, ``r -= alpha q``, ``r . r``, ``sum(x)`` (a
  finiteness certificate: finite iff every entry is, barring overflow of the sum)
  and, with a Jacobi preconditioner, ``z = D^{-1} r`` and ``r . z``.

The kernels are serial (like scipy's); rows are grouped in chunks so that a
parallel variant can split them without changing the summation order. Blocks
``(n, k)`` are C-contiguous: the ``k`` right-hand sides of a row sit side by side and the inner loop vectorizes.
Without numba, :data:`HAVE_NUMBA` is ``False`` and CG uses its torch path.
"""

from __future__ import annotations

import importlib.util
from typing import Any

import numpy as np

HAVE_NUMBA = importlib.util.find_spec("numba") is not None


def num_chunks(n: int, k: int) -> int:
    return 1


if HAVE_NUMBA:
    import numba

    @numba.njit(cache=True, nogil=True)
    def direction_spmv(
        indptr, indices, data, z, p_old, beta, p_new, q, chunks
    ):  # pragma: no cover - compiled
        n = q.shape[0]
        partial = np.zeros(chunks)
        for c in range(chunks):
            lo = c * n // chunks
            hi = (c + 1) * n // chunks
            acc = 0.0
            for i in range(lo, hi):
                s = 0.0
                for jj in range(indptr[i], indptr[i + 1]):
                    j = indices[jj]
                    s += data[jj] * (z[j] + beta * p_old[j])
                pi = z[i] + beta * p_old[i]
                p_new[i] = pi
                q[i] = s
                acc += s * pi
            partial[c] = acc
        return partial.sum()

    @numba.njit(cache=True, nogil=True, fastmath=True)
    def update(x, r, p, q, alpha, dinv, z, chunks):  # pragma: no cover - compiled
        n = x.shape[0]
        rr_part = np.zeros(chunks)
        rz_part = np.zeros(chunks)
        x_sum = 0.0
        precondition = dinv.shape[0] == n
        for c in range(chunks):
            lo = c * n // chunks
            hi = (c + 1) * n // chunks
            rr = 0.0
            rz = 0.0
            for i in range(lo, hi):
                xi = x[i] + alpha * p[i]
                x[i] = xi
                x_sum += xi
                ri = r[i] - alpha * q[i]
                r[i] = ri
                rr += ri * ri
                if precondition:
                    zi = dinv[i] * ri
                    z[i] = zi
                    rz += ri * zi
            rr_part[c] = rr
            rz_part[c] = rz
        return rr_part.sum(), rz_part.sum(), x_sum

    @numba.njit(cache=True, nogil=True)
    def direction_spmm(
        indptr, indices, data, z, p_old, beta, p_new, q, chunks
    ):  # pragma: no cover - compiled
        n, k = q.shape
        partial = np.zeros((chunks, k))
        for c in range(chunks):
            lo = c * n // chunks
            hi = (c + 1) * n // chunks
            s = np.empty(k)
            for i in range(lo, hi):
                s[:] = 0.0
                for jj in range(indptr[i], indptr[i + 1]):
                    j = indices[jj]
                    a = data[jj]
                    for col in range(k):
                        s[col] += a * (z[j, col] + beta[col] * p_old[j, col])
                for col in range(k):
                    pi = z[i, col] + beta[col] * p_old[i, col]
                    p_new[i, col] = pi
                    q[i, col] = s[col]
                    partial[c, col] += s[col] * pi
        return partial.sum(axis=0)

    @numba.njit(cache=True, nogil=True, fastmath=True)
    def update_block(x, r, p, q, alpha, dinv, z, chunks):  # pragma: no cover
        n, k = x.shape
        rr_part = np.zeros((chunks, k))
        rz_part = np.zeros((chunks, k))
        x_sum = 0.0
        precondition = dinv.shape[0] == n
        for c in range(chunks):
            lo = c * n // chunks
            hi = (c + 1) * n // chunks
            for i in range(lo, hi):
                for col in range(k):
                    xi = x[i, col] + alpha[col] * p[i, col]
                    x[i, col] = xi
                    x_sum += xi
                    ri = r[i, col] - alpha[col] * q[i, col]
                    r[i, col] = ri
                    rr_part[c, col] += ri * ri
                    if precondition:
                        zi = dinv[i] * ri
                        z[i, col] = zi
                        rz_part[c, col] += ri * zi
        return rr_part.sum(axis=0), rz_part.sum(axis=0), x_sum


def csr_arrays(A: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """numpy views (no copy) of a CPU torch CSR tensor's index and value arrays."""
    return (
        A.crow_indices().numpy(),
        A.col_indices().numpy(),
        A.values().numpy(),
    )
