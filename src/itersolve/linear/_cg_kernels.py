"""Compiled CPU kernels for CG on a CSR matrix (numba; optional).

One CG iteration is one call, :func:`cg_step` (or :func:`cg_step_block` for a
block of right-hand sides), made of three simple passes that each stream
through memory once and vectorize:

* ``q = A p`` and ``p . q`` (:func:`spmv_dot`);
* ``r -= alpha q``, ``r . r`` and, with a Jacobi preconditioner,
  ``z = D^{-1} r`` and ``r . z`` (:func:`residual_update`);
* ``x += alpha p`` with ``sum(x)`` (the finiteness certificate: finite iff every
  entry is, barring overflow of the sum) and ``p = z + beta p``
  (:func:`direction_update`).

Ten vector touches per iteration (scipy's loop makes about twenty) and no
recomputation: an earlier version formed ``z + beta p`` inside the product, at
every nonzero. A fused "frontier" variant of the first two passes was measured
slower at 256^2 (its short per-row loops do not vectorize).

Index arrays are read as *unsigned* integers (:func:`csr_arrays` returns such
views, no copy): numba then skips the negative-index wrap-around test on every
gather, which makes the product 2.5x faster, on par with scipy's C++ kernel.

The kernels are serial, like scipy's. Blocks ``(n, k)`` are C-contiguous: the
``k`` right-hand sides of a row sit side by side and the inner loop vectorizes.
numba loads when a kernel is first called (:func:`~itersolve._core.jit.lazy_njit`).
Without numba, :data:`HAVE_NUMBA` is ``False`` and CG uses its torch path.
``spmv``/``spmm`` are the plain products the other Krylov solvers use on CPU
(torch's CSR kernels cost more per call at these sizes); ``batched_matvec``
is the product of a batch of dense matrices (3x torch's ``bmm`` for a
matrix-vector batch).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from itersolve._core.jit import HAVE_NUMBA, lazy_njit

#: Return codes of the fused steps.
OK, NOT_POSITIVE_DEFINITE = 0, 1


@lazy_njit(cache=True, nogil=True)
def spmv_dot(indptr, indices, data, p, q):  # pragma: no cover - compiled
    """``q = A p`` and return ``p . q``."""
    acc = 0.0
    one, two = np.uint64(1), np.uint64(2)
    start = np.uint64(indptr[0])
    for i in range(q.shape[0]):
        # Two products in flight: 20% faster than one running sum.
        end = np.uint64(indptr[i + 1])
        s = 0.0
        jj = start
        while jj + one < end:  # unsigned arithmetic (uint64 + int is float)
            s += data[jj] * p[indices[jj]] + data[jj + one] * p[indices[jj + one]]
            jj += two
        if jj < end:
            s += data[jj] * p[indices[jj]]
        q[i] = s
        acc += s * p[i]
        start = end
    return acc


@lazy_njit(cache=True, nogil=True, fastmath=True)
def residual_update(r, q, alpha, dinv, z):  # pragma: no cover - compiled
    """``r -= alpha q``; returns ``(r.r, r.z)`` with ``z = dinv * r`` when
    ``dinv`` is not empty (else ``r.z`` is 0 and ``z`` untouched)."""
    rr = 0.0
    rz = 0.0
    if dinv.shape[0] == r.shape[0]:
        for i in range(r.shape[0]):
            ri = r[i] - alpha * q[i]
            r[i] = ri
            rr += ri * ri
            zi = dinv[i] * ri
            z[i] = zi
            rz += ri * zi
    else:
        for i in range(r.shape[0]):
            ri = r[i] - alpha * q[i]
            r[i] = ri
            rr += ri * ri
    return rr, rz


@lazy_njit(cache=True, nogil=True, fastmath=True)
def direction_update(x, p, z, alpha, beta):  # pragma: no cover - compiled
    """``x += alpha p``, then ``p = z + beta p``; returns ``sum(x)``."""
    total = 0.0
    for i in range(x.shape[0]):
        pi = p[i]
        xi = x[i] + alpha * pi
        x[i] = xi
        total += xi
        p[i] = z[i] + beta * pi
    return total


@lazy_njit(cache=True, nogil=True)
def cg_step(indptr, indices, data, x, r, p, q, dinv, z, rz, whole):  # pragma: no cover
    """One CG iteration for one right-hand side.

    ``z`` is ``r`` itself without preconditioner (``dinv`` empty). Returns
    ``(code, alpha, r.r, r.z, sum(x))``; with ``whole=False`` it stops after
    the residual update (the caller replaces ``r`` and finishes with
    :func:`direction_update`), ``sum(x)`` is then NaN.
    """
    pq = spmv_dot(indptr, indices, data, p, q)
    if not pq > 0:
        return NOT_POSITIVE_DEFINITE, 0.0, 0.0, 0.0, 0.0
    alpha = rz / pq
    rr, rz_new = residual_update(r, q, alpha, dinv, z)
    if dinv.shape[0] != r.shape[0]:
        rz_new = rr
    elif rz_new < 0:
        return NOT_POSITIVE_DEFINITE, alpha, rr, rz_new, 0.0
    if not whole:
        return OK, alpha, rr, rz_new, np.nan
    total = direction_update(x, p, z, alpha, rz_new / rz)
    return OK, alpha, rr, rz_new, total


@lazy_njit(cache=True, nogil=True)
def spmm_dot(indptr, indices, data, p, q):  # pragma: no cover - compiled
    """``q = A p`` for a block and the column dots ``p . q``."""
    n, k = q.shape
    acc = np.zeros(k)
    s = np.empty(k)
    for i in range(n):
        s[:] = 0.0
        for jj in range(indptr[i], indptr[i + 1]):
            j = indices[jj]
            a = data[jj]
            for c in range(k):
                s[c] += a * p[j, c]
        for c in range(k):
            q[i, c] = s[c]
            acc[c] += s[c] * p[i, c]
    return acc


@lazy_njit(cache=True, nogil=True, fastmath=True)
def residual_update_block(r, q, alpha, dinv, z):  # pragma: no cover
    """Column-wise :func:`residual_update` with per-column ``alpha``."""
    n, k = r.shape
    rr = np.zeros(k)
    rz = np.zeros(k)
    precondition = dinv.shape[0] == n
    for i in range(n):
        for c in range(k):
            ri = r[i, c] - alpha[c] * q[i, c]
            r[i, c] = ri
            rr[c] += ri * ri
        if precondition:
            d = dinv[i]
            for c in range(k):
                zi = d * r[i, c]
                z[i, c] = zi
                rz[c] += r[i, c] * zi
    return rr, rz


@lazy_njit(cache=True, nogil=True, fastmath=True)
def direction_update_block(x, p, z, alpha, beta):  # pragma: no cover
    """Column-wise :func:`direction_update`."""
    n, k = x.shape
    total = 0.0
    for i in range(n):
        for c in range(k):
            pi = p[i, c]
            xi = x[i, c] + alpha[c] * pi
            x[i, c] = xi
            total += xi
            p[i, c] = z[i, c] + beta[c] * pi
    return total


@lazy_njit(cache=True, nogil=True)
def cg_step_block(
    indptr, indices, data, x, r, p, q, dinv, z, rz, residual, threshold, whole
):  # pragma: no cover - compiled
    """One CG iteration for a block; converged columns stay frozen.

    A column is active while ``residual > threshold``; inactive ones get
    ``alpha = beta = 0`` (``x``, ``r`` unchanged, ``p = z``), so steps past
    convergence are harmless. Updates ``rz`` and ``residual`` in place and
    returns ``(code, alpha, rr, rz_new, sum(x))`` (see :func:`cg_step`).
    """
    k = rz.shape[0]
    active = residual > threshold
    pq = spmm_dot(indptr, indices, data, p, q)
    alpha = np.zeros(k)
    for c in range(k):
        if active[c]:
            if not pq[c] > 0:
                return NOT_POSITIVE_DEFINITE, alpha, alpha, alpha, 0.0
            alpha[c] = rz[c] / pq[c]
    rr, rz_new = residual_update_block(r, q, alpha, dinv, z)
    if dinv.shape[0] != r.shape[0]:
        rz_new = rr
    for c in range(k):
        if active[c] and rz_new[c] < 0:
            return NOT_POSITIVE_DEFINITE, alpha, rr, rz_new, 0.0
    if not whole:
        return OK, alpha, rr, rz_new, np.nan
    beta = np.zeros(k)
    for c in range(k):
        if active[c]:
            beta[c] = rz_new[c] / rz[c]
        rz[c] = rz_new[c]
        residual[c] = np.sqrt(rr[c])
    total = direction_update_block(x, p, z, alpha, beta)
    return OK, alpha, rr, rz_new, total


@lazy_njit(cache=True, nogil=True)
def spmv(indptr, indices, data, x, y):  # pragma: no cover - compiled
    spmv_dot(indptr, indices, data, x, y)


@lazy_njit(cache=True, nogil=True)
def spmm(indptr, indices, data, x, y):  # pragma: no cover - compiled
    spmm_dot(indptr, indices, data, x, y)


@lazy_njit(cache=True, nogil=True, fastmath=True)
def batched_matvec(A, x, y):  # pragma: no cover - compiled
    """``y[b] = A[b] @ x[b]`` for ``A`` (B, n, m), ``x`` (B, m), ``y`` (B, n)."""
    batch, n, m = A.shape
    for b in range(batch):
        for i in range(n):
            s = 0.0
            for j in range(m):
                s += A[b, i, j] * x[b, j]
            y[b, i] = s


@lazy_njit(cache=True, nogil=True)
def column_dots(x, y):  # pragma: no cover - compiled
    """``sum_i x[i, c] y[i, c]`` per column of two C-contiguous blocks."""
    n, k = x.shape
    out = np.zeros(k)
    for i in range(n):
        for c in range(k):
            out[c] += x[i, c] * y[i, c]
    return out


@lazy_njit(cache=True, nogil=True)
def row_dots(x, y):  # pragma: no cover - compiled
    """``sum_i x[c, i] y[c, i]`` per row (a column block stored transposed)."""
    k, n = x.shape
    out = np.zeros(k)
    for c in range(k):
        acc = 0.0
        for i in range(n):
            acc += x[c, i] * y[c, i]
        out[c] = acc
    return out


@lazy_njit(cache=True, nogil=True)
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


@lazy_njit(cache=True, nogil=True)
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


_UNSIGNED = {np.dtype(np.int32): np.uint32, np.dtype(np.int64): np.uint64}


def csr_arrays(A: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """numpy views (no copy) of a CPU torch CSR tensor's arrays.

    The index arrays are viewed as unsigned integers of the same width (valid
    CSR indices are never negative): see the module note.
    """
    indptr = A.crow_indices().numpy()
    indices = A.col_indices().numpy()
    return (
        indptr.view(_UNSIGNED[indptr.dtype]),
        indices.view(_UNSIGNED[indices.dtype]),
        A.values().numpy(),
    )
