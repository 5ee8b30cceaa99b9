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
``(n, k)`` are C-contiguous: the ``k`` right-hand sides of a row sit side by
side and the inner loop vectorizes.
Without numba, :data:`HAVE_NUMBA` is ``False`` and CG uses its torch path.
``spmv``/``spmm`` are the plain products the other Krylov solvers use on CPU
(torch's CSR kernels cost more per call at these sizes).
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


if HAVE_NUMBA:

    @numba.njit(cache=True, nogil=True)
    def spmv(indptr, indices, data, x, y):  # pragma: no cover - compiled
        for i in range(y.shape[0]):
            s = 0.0
            for jj in range(indptr[i], indptr[i + 1]):
                s += data[jj] * x[indices[jj]]
            y[i] = s

    @numba.njit(cache=True, nogil=True)
    def spmm(indptr, indices, data, x, y):  # pragma: no cover - compiled
        n, k = y.shape
        s = np.empty(k)
        for i in range(n):
            s[:] = 0.0
            for jj in range(indptr[i], indptr[i + 1]):
                j = indices[jj]
                a = data[jj]
                for col in range(k):
                    s[col] += a * x[j, col]
            for col in range(k):
                y[i, col] = s[col]


if HAVE_NUMBA:

    @numba.njit(cache=True, nogil=True)
    def column_dots(x, y):  # pragma: no cover - compiled
        """``sum_i x[i, c] y[i, c]`` per column of two C-contiguous blocks."""
        n, k = x.shape
        out = np.zeros(k)
        for i in range(n):
            for c in range(k):
                out[c] += x[i, c] * y[i, c]
        return out

    @numba.njit(cache=True, nogil=True)
    def gram_schmidt_pass(V, count, w):  # pragma: no cover - compiled
        """One classical Gram-Schmidt pass of ``w`` (n, k) against ``V[:count]``.

        Returns ``h[j, c] = V[j, :, c] . w[:, c]`` and subtracts ``V h`` from
        ``w`` in place.
        """
        n, k = w.shape
        h = np.zeros((count, k))
        for j in range(count):
            for i in range(n):
                for c in range(k):
                    h[j, c] += V[j, i, c] * w[i, c]
        for i in range(n):
            for c in range(k):
                acc = 0.0
                for j in range(count):
                    acc += V[j, i, c] * h[j, c]
                w[i, c] -= acc
        return h

    @numba.njit(cache=True, nogil=True)
    def combine(V, y, out):  # pragma: no cover - compiled
        """``out[:, c] = sum_j V[j, :, c] y[j, c]`` over the first ``len(y)``."""
        count = y.shape[0]
        n, k = out.shape
        for i in range(n):
            for c in range(k):
                acc = 0.0
                for j in range(count):
                    acc += V[j, i, c] * y[j, c]
                out[i, c] = acc


def use_kernels(t: Any) -> bool:
    """Whether the compiled helpers apply to tensor ``t`` (CPU, float32/64)."""
    import torch

    return (
        HAVE_NUMBA
        and t.device.type == "cpu"
        and t.dtype in (torch.float32, torch.float64)
    )


def csr_arrays(A: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """numpy views (no copy) of a CPU torch CSR tensor's index and value arrays."""
    return (
        A.crow_indices().numpy(),
        A.col_indices().numpy(),
        A.values().numpy(),
    )
