"""Compiled greedy (Gauss–Southwell) coordinate descent for L1 least squares.

The path :class:`~itersolve.optimize.BlockCoordinateDescent` takes for
``f(w) = s/2 ||X w - y||^2 + h(w)``, ``h = lam ||w||_1`` (optionally ``w >= 0``),
with a sparse ``X``, single coordinates (``block_size=1``), a greedy rule and the
proximal-gradient update (exact coordinate minimization here). Same iteration
as the generic path, one compiled loop over many coordinate updates:

* the residual ``r = X w - y`` and the gradient ``g = s X^T r`` are maintained;
  ``g`` moves along the Gram column ``X^T X_i``, computed once per coordinate
  that ever moves (greedy rules revisit the support, so few are needed) from
  the rows of ``X`` the column touches;
* the rule's score ``|G_j| c_j`` (``G`` the proximal-gradient mapping, ``c_j = 1``
  for GS, ``1 / sqrt(L_j)`` for GSL/GSD/VB) is ``(|g_j| - lam) c_j`` on a zero
  coordinate, so the update of ``g`` and the search over the zero coordinates
  are one vectorized pass (chunk maxima, then one chunk rescanned); the few
  non-zero coordinates are scored from a support list.

Between driver steps :meth:`GreedyL1Engine.measure` reduces the maintained
state (``||w||_1``, ``sum(w)``, ``||g||_inf``, ``max |G_j|``, ``||r||^2``,
``r.y``) in one pass for the stopping rule and the finiteness certificate.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from itersolve.problems.coordinate import CompressedMatrix

HAVE_NUMBA = importlib.util.find_spec("numba") is not None
CHUNK = 256
"""Coordinates per chunk of the vectorized search (one chunk is rescanned)."""
GRAM_LIMIT = 2**25
"""Most cached Gram entries (256 MB in float64); past it columns are recomputed."""
GRAM_COLUMNS = 1024
"""Most cached Gram columns (greedy rules keep revisiting a small support)."""

if HAVE_NUMBA:
    import numba

    @numba.njit(cache=True, nogil=True, inline="always")
    def _prox(z: float, t: float, nonneg: bool) -> float:
        if nonneg:
            return z - t if z > t else 0.0
        return z - t if z > t else (z + t if z < -t else 0.0)

    @numba.njit(cache=True, nogil=True, inline="always")
    def _support_score(wj, gj, Lj, invLj, lam, nonneg):
        """``|G_j| = L_j |w_j - prox(w_j - g_j / L_j)|``."""
        return Lj * abs(wj - _prox(wj - gj * invLj, lam * invLj, nonneg))

    @numba.njit(cache=True, nogil=True)
    def _gram_column(i, colptr, rowidx, colval, rowptr, colidx, rowval, out):
        """``out = X^T X_i`` from the rows of ``X`` that column ``i`` touches."""
        out[:] = 0.0
        for p in range(colptr[i], colptr[i + 1]):
            k = rowidx[p]
            a = colval[p]
            for q in range(rowptr[k], rowptr[k + 1]):
                out[colidx[q]] += a * rowval[q]

    # fmt: off
    @numba.njit(cache=True, nogil=True)
    def _select(
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

    @numba.njit(cache=True, nogil=True)
    def _chunk_max(G, out):
        """``out[k] = max |G_j|`` over chunk ``k``."""
        n = G.shape[0]
        for k in range(out.shape[0]):
            top = 0.0
            for j in range(k * CHUNK, min(k * CHUNK + CHUNK, n)):
                top = max(top, abs(G[j]))
            out[k] = top

    # fmt: off
    @numba.njit(cache=True, nogil=True)
    def _updates(
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
            ints[0] = _select(
                w, g, L, invL, weight, zw, zmask, lam, sign, nonneg, support, ints[1],
                G, Gmax, d * scale, bound, wmax,
            )  # fmt: skip

    @numba.njit(cache=True, nogil=True)
    def _measure(w, r, g, y, L, invL, lam, nonneg, criterion):
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

    @numba.njit(cache=True, nogil=True)
    def _refresh(colptr, rowidx, colval, w, y, scale, r, g):
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


@dataclass
class Reductions:
    """What one pass over the maintained state gives the stopping rule."""

    l1: float
    x_sum: float
    g_max: float
    criterion: float
    r_norm2: float
    r_dot_y: float


class GreedyL1Engine:
    """The compiled greedy iteration on ``s/2 ||X w - y||^2 + lam ||w||_1``.

    ``w`` is updated in place (``x`` is a torch view of it). ``scaled`` selects
    the ``1 / sqrt(L_j)`` weighting (GSL, GSD, VB) instead of plain GS.
    """

    def __init__(
        self,
        X: CompressedMatrix,
        y: np.ndarray,
        w0: np.ndarray,
        *,
        scale: float,
        lam: float,
        nonneg: bool,
        scaled: bool,
    ) -> None:
        self.csc, self.csr = X.csc, X.csr
        n = X.column_sq_norms.shape[0]
        self.y = np.ascontiguousarray(y, dtype=np.float64)
        self.scale, self.lam, self.nonneg = float(scale), float(lam), bool(nonneg)
        self.sign = -1.0 if nonneg else 1.0
        self.w = np.array(w0, dtype=np.float64).reshape(-1)
        self.x = torch.from_numpy(self.w)
        self.L = scale * X.column_sq_norms
        self.invL = np.divide(1.0, self.L, out=np.zeros(n), where=self.L > 0)
        self.weight = np.sqrt(self.invL) if scaled else np.ones(n)
        self.zmask = (self.w == 0).astype(np.float64)
        self.zw = self.zmask * self.weight
        chunks = -(-n // CHUNK)
        padded = np.zeros(chunks * CHUNK)
        padded[:n] = self.weight
        self.wmax = padded.reshape(chunks, CHUNK).max(axis=1)
        self.bound = np.empty(chunks)
        self.r = np.empty(self.y.shape[0])
        self.g = np.empty(n)
        self.position = np.full(n, -1, dtype=np.int64)
        self.support = np.empty(n, dtype=np.int64)
        nonzero = np.flatnonzero(self.w)
        self.support[: nonzero.size] = nonzero
        self.position[nonzero] = np.arange(nonzero.size)
        self.slot = np.full(n, -1, dtype=np.int64)
        # Reserved, not touched: pages are committed as columns are cached.
        self.cache = np.empty((max(1, min(n, GRAM_LIMIT // n, GRAM_COLUMNS)), n))
        self.gmax = np.empty((self.cache.shape[0], chunks))
        self.scratch = np.empty(n)
        self.scratch_max = np.empty(chunks)
        # [next coordinate, support size, cached columns, updates, last change]
        self.ints = np.array([-1, nonzero.size, 0, 0, 0], dtype=np.int64)
        self.full_gradients = 0
        self.refresh()

    @property
    def updates(self) -> int:
        return int(self.ints[3])

    @property
    def last_support_change(self) -> int:
        return int(self.ints[4])

    @property
    def support_size(self) -> int:
        return int(self.ints[1])

    def refresh(self) -> None:
        """Recompute ``r`` and ``g`` from ``w`` and the next greedy choice."""
        _refresh(*self.csc, self.w, self.y, self.scale, self.r, self.g)
        self.full_gradients += 1
        self.bound[:] = np.inf  # every chunk rescanned: the search alone
        self.scratch[:] = 0.0
        self.scratch_max[:] = 0.0
        self.ints[0] = _select(
            self.w, self.g, self.L, self.invL, self.weight, self.zw, self.zmask,
            self.lam, self.sign, self.nonneg, self.support, self.ints[1],
            self.scratch, self.scratch_max, 0.0, self.bound, self.wmax,
        )  # fmt: skip

    def run(self, budget: int) -> None:
        """Up to ``budget`` coordinate updates (fewer at an exact optimum)."""
        _updates(
            budget, *self.csc, *self.csr, self.w, self.r, self.g, self.L, self.invL,
            self.weight, self.zw, self.zmask, self.lam, self.sign, self.nonneg,
            self.scale, self.support, self.position, self.ints, self.slot,
            self.cache, self.gmax, self.scratch, self.scratch_max, self.bound,
            self.wmax,
        )  # fmt: skip

    def measure(self, criterion: bool = True) -> Reductions:
        """The reductions of the maintained state (``criterion``: also
        ``max |G_j|``, the gradient-mapping stopping rule's quantity)."""
        out = _measure(
            self.w, self.r, self.g, self.y, self.L, self.invL, self.lam,
            self.nonneg, criterion,
        )  # fmt: skip
        return Reductions(*(float(v) for v in out))

    def objective(self, red: Reductions) -> float:
        return 0.5 * self.scale * red.r_norm2 + self.lam * red.l1


def greedy_engine(method: Any, source: Any, x0: torch.Tensor) -> GreedyL1Engine | None:
    """The compiled engine when ``method`` on ``source`` is its case, else None.

    The case: numba installed, a sparse :class:`~itersolve.problems.Lasso` or
    :class:`~itersolve.problems.NonNegativeLeastSquaresL1` in float64 on CPU,
    ``block_size=1`` on the default partition, the GS / GSL / GSD / VB / GS-VB
    rule and the proximal-gradient update.
    """
    from itersolve.optimize.bcd._selection import (
        GaussSouthwellDiagonalRule,
        GaussSouthwellLipschitzRule,
        GaussSouthwellRule,
        VariableBlockRule,
        as_selection_rule,
    )
    from itersolve.optimize.bcd._updates import GradientUpdate, as_update_rule
    from itersolve.problems.coordinate import Lasso, NonNegativeLeastSquaresL1

    if (
        not HAVE_NUMBA
        or method.block_size != 1
        or method.blocks
        not in (
            None,
            "contiguous",
        )
    ):
        return None
    if x0.dtype != torch.float64 or x0.device.type != "cpu":
        return None
    if type(as_update_rule(method.update)) is not GradientUpdate:
        return None
    rule = as_selection_rule(method.selection)
    if isinstance(rule, VariableBlockRule):
        scaled = rule.scaling == "lipschitz"
    elif type(rule) is GaussSouthwellRule:
        scaled = False
    elif type(rule) in (GaussSouthwellLipschitzRule, GaussSouthwellDiagonalRule):
        scaled = True
    else:
        return None
    if isinstance(source, Lasso) and source.compressed is not None:
        return GreedyL1Engine(
            source.compressed, source.y, x0.cpu().numpy(), scale=1.0 / source.n_samples,
            lam=source.alpha, nonneg=False, scaled=scaled,
        )  # fmt: skip
    if isinstance(source, NonNegativeLeastSquaresL1) and source.compressed is not None:
        if bool((x0 < 0).any()):
            raise ValueError("x0 must be >= 0 for NonNegativeLeastSquaresL1")
        return GreedyL1Engine(
            source.compressed, source.b, x0.cpu().numpy(), scale=1.0, lam=source.lam,
            nonneg=True, scaled=scaled,
        )  # fmt: skip
    return None
