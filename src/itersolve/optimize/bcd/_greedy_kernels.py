"""The numba kernels of the compiled greedy path (:mod:`._greedy`).

numba loads when a kernel is first called (a :class:`~._greedy.GreedyL1Engine`
is built), not when :mod:`itersolve.optimize` is imported.
"""

from __future__ import annotations

from itersolve._core.jit import lazy_njit

CHUNK = 256
"""Coordinates per chunk of the vectorized search (one chunk is rescanned)."""


@lazy_njit(cache=True, nogil=True, inline="always")
def _prox(z: float, t: float, nonneg: bool) -> float:
    if nonneg:
        return z - t if z > t else 0.0
    return z - t if z > t else (z + t if z < -t else 0.0)


@lazy_njit(cache=True, nogil=True, inline="always")
def _support_score(wj, gj, Lj, invLj, lam, nonneg):
    """``|G_j| = L_j |w_j - prox(w_j - g_j / L_j)|``."""
    return Lj * abs(wj - _prox(wj - gj * invLj, lam * invLj, nonneg))


@lazy_njit(cache=True, nogil=True)
def _gram_column(i, colptr, rowidx, colval, rowptr, colidx, rowval, out):
    """``out = X^T X_i`` from the rows of ``X`` that column ``i`` touches."""
    out[:] = 0.0
    for p in range(colptr[i], colptr[i + 1]):
        k = rowidx[p]
        a = colval[p]
        for q in range(rowptr[k], rowptr[k + 1]):
            out[colidx[q]] += a * rowval[q]


# fmt: off
@lazy_njit(cache=True, nogil=True)
def select(
    w, g, L, invL, weight, zw, zmask, lam, sign, nonneg, support, count, G,
    Gmax, c, bound, wmax,
):
    # fmt: on
    """Apply ``g += c G`` and return the greedy coordinate (-1: optimal).

    The support is scored exactly. A chunk of zero coordinates is rescanned
    only when its bound ``M_k + sum |c| max_k |G|`` on ``max |g_j|`` (``M_k``
    exact at its last scan) lets a score beat the best so far: away from
    the optimum's boundary most chunks are skipped after the ``axpy``.
    """
    n = g.shape[0]
    for j in range(n):
        g[j] += c * G[j]
    step = abs(c) * (1.0 + 1e-12)  # inflated: rounding in g stays inside
    for k in range(bound.shape[0]):
        bound[k] += step * Gmax[k]
    best = 0.0
    best_j = -1
    for s in range(count):
        j = support[s]
        score = _support_score(w[j], g[j], L[j], invL[j], lam, nonneg) * weight[j]
        if score > best or (score == best and score > 0 and j < best_j):
            best = score
            best_j = j
    for k in range(bound.shape[0]):
        b = bound[k] * (1.0 + 1e-10)
        if b <= lam or (b - lam) * wmax[k] < best:
            continue
        lo = k * CHUNK
        hi = min(lo + CHUNK, n)
        top = 0.0
        top_j = -1
        high = 0.0
        for j in range(lo, hi):
            # zmask_j = 1 on zero coordinates: no branch but the rare win.
            a = max(-g[j], sign * g[j])
            high = max(high, a * zmask[j])
            v = (a - lam) * zw[j]
            if v > top:
                top = v
                top_j = j
        bound[k] = high
        if top > best or (top == best and top > 0 and top_j < best_j):
            best = top
            best_j = top_j
    return best_j

@lazy_njit(cache=True, nogil=True)
def _chunk_max(G, out):
    """``out[k] = max |G_j|`` over chunk ``k``."""
    n = G.shape[0]
    for k in range(out.shape[0]):
        top = 0.0
        for j in range(k * CHUNK, min(k * CHUNK + CHUNK, n)):
            top = max(top, abs(G[j]))
        out[k] = top

# fmt: off
@lazy_njit(cache=True, nogil=True)
def updates(
    budget, colptr, rowidx, colval, rowptr, colidx, rowval, w, r, g, L, invL,
    weight, zw, zmask, lam, sign, nonneg, scale, support, position, ints, slot,
    cache, gmax, scratch, scratch_max, bound, wmax,
):
    # fmt: on
    """Up to ``budget`` greedy coordinate updates in place.

    ``ints`` = ``[next coordinate, support size, cached columns,
    updates done, update of the last support change]``. Stops early when
    nothing can improve. A coordinate that finds the Gram cache full has its
    column recomputed at each of its updates.
    """
    cap = cache.shape[0]
    for _ in range(budget):
        i = ints[0]
        if i < 0:
            return
        if slot[i] < 0 and ints[2] < cap:
            slot[i] = ints[2]
            ints[2] += 1
            col = cache[slot[i]]
            _gram_column(i, colptr, rowidx, colval, rowptr, colidx, rowval, col)
            _chunk_max(col, gmax[slot[i]])
        if slot[i] >= 0:
            G = cache[slot[i]]
            Gmax = gmax[slot[i]]
        else:
            _gram_column(i, colptr, rowidx, colval, rowptr, colidx, rowval, scratch)
            _chunk_max(scratch, scratch_max)
            G = scratch
            Gmax = scratch_max
        wi = w[i]
        new = _prox(wi - g[i] * invL[i], lam * invL[i], nonneg)
        d = new - wi
        w[i] = new
        for p in range(colptr[i], colptr[i + 1]):
            r[rowidx[p]] += d * colval[p]
        ints[3] += 1
        if (wi == 0.0) != (new == 0.0):
            ints[4] = ints[3]
            if new != 0.0:
                position[i] = ints[1]
                support[ints[1]] = i
                ints[1] += 1
                zw[i] = 0.0
                zmask[i] = 0.0
            else:
                last = support[ints[1] - 1]
                support[position[i]] = last
                position[last] = position[i]
                position[i] = -1
                ints[1] -= 1
                zw[i] = weight[i]
                zmask[i] = 1.0
                k = i // CHUNK
                bound[k] = max(bound[k], max(-g[i], sign * g[i]))
        ints[0] = select(
            w, g, L, invL, weight, zw, zmask, lam, sign, nonneg, support, ints[1],
            G, Gmax, d * scale, bound, wmax,
        )  # fmt: skip

@lazy_njit(cache=True, nogil=True)
def measure(w, r, g, y, L, invL, lam, nonneg, criterion):
    """``(||w||_1, sum(w), ||g||_inf or max(-g), max |G_j|, ||r||^2, r.y)``;
    ``max |G_j|`` only with ``criterion`` (else 0)."""
    l1 = 0.0
    total = 0.0
    g_max = 0.0
    for j in range(w.shape[0]):
        l1 += abs(w[j])
        total += w[j]
        g_max = max(g_max, -g[j] if nonneg else abs(g[j]))
    crit = 0.0
    if criterion:
        for j in range(w.shape[0]):
            crit = max(crit, _support_score(w[j], g[j], L[j], invL[j], lam, nonneg))
    r2 = 0.0
    ry = 0.0
    for k in range(r.shape[0]):
        r2 += r[k] * r[k]
        ry += r[k] * y[k]
    return l1, total, g_max, crit, r2, ry

@lazy_njit(cache=True, nogil=True)
def refresh(colptr, rowidx, colval, w, y, scale, r, g):
    """``r = X w - y`` and ``g = s X^T r`` afresh (CSC, column by column)."""
    r[:] = -y
    for j in range(w.shape[0]):
        wj = w[j]
        if wj != 0.0:
            for p in range(colptr[j], colptr[j + 1]):
                r[rowidx[p]] += wj * colval[p]
    for j in range(w.shape[0]):
        # Four partial sums: the gathers overlap instead of one add chain.
        a0 = a1 = a2 = a3 = 0.0
        p = colptr[j]
        stop = colptr[j + 1]
        while p + 4 <= stop:
            a0 += colval[p] * r[rowidx[p]]
            a1 += colval[p + 1] * r[rowidx[p + 1]]
            a2 += colval[p + 2] * r[rowidx[p + 2]]
            a3 += colval[p + 3] * r[rowidx[p + 3]]
            p += 4
        while p < stop:
            a0 += colval[p] * r[rowidx[p]]
            p += 1
        g[j] = scale * ((a0 + a1) + (a2 + a3))
