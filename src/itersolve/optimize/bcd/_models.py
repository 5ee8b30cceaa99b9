"""Coordinate structure of smooth objectives, with incrementally maintained state.

A *coordinate model* owns the iterate ``x`` (flattened to ``n`` coordinates)
and whatever makes a block update cheap:

* least squares ``s/2 ||A x - b||^2 + l2/2 ||x||^2``: the residual
  ``r = A x - b``; the full gradient ``g = s A^T r + l2 x`` is maintained by
  ``g += s A^T (A_b d)``, restricted to the rows the block touches (sparse
  ``A``) or through cached Gram columns ``A^T A_b`` (dense ``A``);
* quadratics ``1/2 x^T Q x - c^T x`` (label propagation): ``g = Q x - c``
  maintained by ``g += Q_b d``;
* linear-predictor losses (logistic, softmax) ``s sum_i l(a_i^T W) + l2/2
  ||W||^2``: the predictions ``Z = X W`` and the loss derivatives, updated on
  the rows the block touches;
* a generic :class:`~itersolve.Objective`: no structure; the gradient is
  recomputed (documented fallback).

Greedy rules read :meth:`CoordinateModel.gradient`, which then costs ``O(n)``
per step (plus the update of the touched rows), never a full recomputation.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from itersolve._core.objective import Objective, as_objective
from itersolve.optimize.bcd._columns import Columns
from itersolve.optimize.bcd._structure import (
    LeastSquaresTerms,
    LinearPredictorTerms,
    QuadraticTerms,
    Terms,
)

GRAM_CACHE_LIMIT = 2**25
"""Most entries of cached Gram columns (dense least squares): 256 MB in float64."""


class CoordinateModel:
    """Base: the iterate ``x`` and counters; subclasses supply the oracles."""

    quadratic = False
    """True when the Hessian is constant (exact block solves are one step)."""

    incremental = True
    """True when :meth:`gradient` comes from state updated step by step (it
    drifts from the exact gradient by rounding and needs a fresh check)."""

    def __init__(self, x0: torch.Tensor) -> None:
        self.shape = tuple(x0.shape)
        self.x = x0.detach().reshape(-1).clone()
        self.n = self.x.numel()
        self.dtype, self.device = self.x.dtype, self.x.device
        self.track = False
        self.coordinate_gradients = 0
        self.coordinate_updates = 0
        self.full_gradients = 0
        self.trial_evaluations = 0
        self._lipschitz: torch.Tensor | None = None

    # oracles every model implements
    def value(self) -> torch.Tensor:
        raise NotImplementedError

    def gradient(self) -> torch.Tensor:
        """The full gradient (maintained when ``track`` is on)."""
        raise NotImplementedError

    def fresh_gradient(self) -> torch.Tensor:
        """The full gradient recomputed from ``x`` (drift checks, refreshes)."""
        raise NotImplementedError

    def block_gradient(self, b: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def coordinate_lipschitz(self) -> torch.Tensor:
        """``L_i``: Lipschitz constants of the coordinate gradients."""
        raise NotImplementedError

    def block_bound(self, b: torch.Tensor) -> torch.Tensor:
        """A fixed matrix ``H_b`` with ``grad^2_bb f(x) <= H_b`` for every ``x``."""
        raise NotImplementedError

    def block_hessian(self, b: torch.Tensor) -> torch.Tensor:
        """The true block Hessian at the current ``x``."""
        return self.block_bound(b)

    def trial_value(self, b: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
        """``f(x + U_b d)`` without moving ``x`` (counted: line searches)."""
        self.trial_evaluations += 1
        return self._trial_value(b, d)

    def _trial_value(self, b: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def apply(self, b: torch.Tensor, d: torch.Tensor) -> None:
        """``x_b += d`` and the incremental update of the maintained state."""
        raise NotImplementedError

    def refresh(self) -> None:
        """Recompute the maintained state from ``x`` (removes rounding drift)."""

    def set_tracking(self, on: bool) -> None:
        self.track = on
        self.refresh()

    def hessian_graph(self) -> sp.csr_array | None:
        """The sparsity graph of the Hessian (quadratics with sparse ``Q``)."""
        return None

    def block_edges(self, b: torch.Tensor) -> tuple[torch.Tensor, ...]:
        raise ValueError(
            "message passing needs a quadratic with a sparse Hessian "
            f"(LabelPropagation, sparse Quadratic), got {type(self).__name__}"
        )

    def lipschitz(self) -> torch.Tensor:
        if self._lipschitz is None:
            self._lipschitz = self.coordinate_lipschitz().clamp(
                min=torch.finfo(self.dtype).tiny
            )
        return self._lipschitz

    def _eye(self, k: int) -> torch.Tensor:
        return torch.eye(k, dtype=self.dtype, device=self.device)


class LeastSquaresModel(CoordinateModel):
    """``s/2 ||A x - b||^2 + l2/2 ||x||^2`` with the residual maintained."""

    quadratic = True

    def __init__(
        self,
        A: Any,
        b: Any,
        x0: torch.Tensor,
        *,
        scale: float = 1.0,
        l2: float = 0.0,
    ) -> None:
        super().__init__(x0)
        self.cols = Columns(A, self.dtype, self.device)
        m, n = self.cols.shape
        if n != self.n:
            raise ValueError(f"x0 has {self.n} entries, A has {n} columns")
        self.b = torch.as_tensor(b).to(dtype=self.dtype, device=self.device).reshape(-1)
        if self.b.numel() != m:
            raise ValueError(
                f"b must have {m} entries to match A, got {self.b.numel()}"
            )
        self.scale, self.l2 = float(scale), float(l2)
        self.r = self.cols.matvec(self.x) - self.b
        self.g = torch.zeros_like(self.x)
        self._scratch = torch.zeros(m, dtype=self.dtype, device=self.device)
        self._gram_slot = torch.full((n,), -1, dtype=torch.int64, device=self.device)
        self._gram = torch.empty(n, 0, dtype=self.dtype, device=self.device)
        self._gram_ok = not self.cols.sparse and n * n <= GRAM_CACHE_LIMIT

    def value(self) -> torch.Tensor:
        out = 0.5 * self.scale * torch.dot(self.r, self.r)
        return out + 0.5 * self.l2 * torch.dot(self.x, self.x) if self.l2 else out

    def fresh_gradient(self) -> torch.Tensor:
        self.full_gradients += 1
        r = self.cols.matvec(self.x) - self.b
        return self.scale * self.cols.rmatvec(r) + self.l2 * self.x

    def gradient(self) -> torch.Tensor:
        if self.track:
            return self.g
        self.full_gradients += 1
        return self.scale * self.cols.rmatvec(self.r) + self.l2 * self.x

    def refresh(self) -> None:
        self.r = self.cols.matvec(self.x) - self.b
        if self.track:
            self.full_gradients += 1
            self.g = self.scale * self.cols.rmatvec(self.r) + self.l2 * self.x

    def block_gradient(self, b: torch.Tensor) -> torch.Tensor:
        self.coordinate_gradients += b.numel()
        if self.track:
            return self.g[b]
        if self.cols.sparse:
            rows, owner, vals = self.cols.column_entries(b)
            out = torch.zeros(b.numel(), dtype=self.dtype, device=self.device)
            out.index_add_(0, owner, vals * self.r[rows])
        else:
            out = self.cols.dense[:, b].T @ self.r
        return self.scale * out + self.l2 * self.x[b]

    def coordinate_lipschitz(self) -> torch.Tensor:
        return self.scale * self.cols.column_sq_norms() + self.l2

    def block_bound(self, b: torch.Tensor) -> torch.Tensor:
        H = self.scale * self.cols.gram(b)
        return H + self.l2 * self._eye(b.numel()) if self.l2 else H

    def _delta_r(self, b: torch.Tensor, d: torch.Tensor) -> tuple[Any, torch.Tensor]:
        """``A_b d`` as ``(rows, values)`` (sparse, rows may repeat) or dense."""
        if self.cols.sparse:
            rows, owner, vals = self.cols.column_entries(b)
            return rows, vals * d[owner]
        return None, self.cols.dense[:, b] @ d

    def _trial_value(self, b: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
        rows, delta = self._delta_r(b, d)
        if rows is None:
            r = self.r + delta
        else:
            r = self.r.clone().index_add_(0, rows, delta)
        out = 0.5 * self.scale * torch.dot(r, r)
        if self.l2:
            xb = self.x[b]
            out = out + 0.5 * self.l2 * (
                torch.dot(self.x, self.x)
                - torch.dot(xb, xb)
                + torch.dot(xb + d, xb + d)
            )
        return out

    def apply(self, b: torch.Tensor, d: torch.Tensor) -> None:
        self.coordinate_updates += b.numel()
        self.x[b] += d
        rows, delta = self._delta_r(b, d)
        if rows is None:
            self.r += delta
            if self.track:
                if self._gram_ok:
                    self.g += self.scale * (self._gram_columns(b) @ d)
                else:
                    self.g += self.scale * self.cols.rmatvec(delta)
        else:
            self.r.index_add_(0, rows, delta)
            if self.track:
                # g += s A^T dr, with dr non-zero only on the rows the block touches
                touched = torch.unique(rows)
                self._scratch.index_add_(0, rows, delta)
                if 4 * touched.numel() > self._scratch.numel():
                    # most rows changed: one sparse A^T dr beats gathering rows
                    self.g += self.scale * self.cols.rmatvec(self._scratch)
                else:
                    dr = self._scratch[touched]
                    cols, owner, vals = self.cols.row_entries(touched)
                    self.g.index_add_(0, cols, (self.scale * vals) * dr[owner])
                self._scratch[touched] = 0
        if self.track and self.l2:
            self.g[b] += self.l2 * d

    def _gram_columns(self, b: torch.Tensor) -> torch.Tensor:
        """``A^T A_b`` (cached column by column, computed on first use)."""
        slots = self._gram_slot[b]
        missing = b[slots < 0]
        if missing.numel():
            new = self.cols.rmatvec(self.cols.dense[:, missing])
            start = self._gram.shape[1]
            self._gram = torch.cat([self._gram, new], dim=1)
            self._gram_slot[missing] = torch.arange(
                start, start + missing.numel(), device=self.device
            )
            slots = self._gram_slot[b]
        return self._gram[:, slots]


class QuadraticModel(CoordinateModel):
    """``1/2 x^T Q x - c^T x`` (``Q`` symmetric), ``g = Q x - c`` maintained."""

    quadratic = True

    def __init__(self, Q: Any, c: Any, x0: torch.Tensor) -> None:
        super().__init__(x0)
        self.Q = Columns(Q, self.dtype, self.device)
        if self.Q.shape != (self.n, self.n):
            raise ValueError(
                f"Q must be ({self.n}, {self.n}) to match x0, got {self.Q.shape}"
            )
        self.c = torch.as_tensor(c).to(dtype=self.dtype, device=self.device).reshape(-1)
        if self.c.numel() != self.n:
            raise ValueError(f"c must have {self.n} entries, got {self.c.numel()}")
        self._Q_source = Q
        self.g = self.fresh_gradient()
        self._pos = torch.full((self.n,), -1, dtype=torch.int64, device=self.device)

    def value(self) -> torch.Tensor:
        return 0.5 * torch.dot(self.x, self.g) - 0.5 * torch.dot(self.c, self.x)

    def fresh_gradient(self) -> torch.Tensor:
        self.full_gradients += 1
        return self.Q.matvec(self.x) - self.c

    def gradient(self) -> torch.Tensor:
        return self.g

    def refresh(self) -> None:
        self.g = self.fresh_gradient()

    def block_gradient(self, b: torch.Tensor) -> torch.Tensor:
        self.coordinate_gradients += b.numel()
        return self.g[b]

    def coordinate_lipschitz(self) -> torch.Tensor:
        if self.Q.sparse:
            rows, owner, vals = self.Q.column_entries(
                torch.arange(self.n, device=self.device)
            )
            on = rows == owner
            out = torch.zeros(self.n, dtype=self.dtype, device=self.device)
            return out.index_add_(0, owner[on], vals[on])
        return self.Q.dense.diagonal().clone()

    def block_bound(self, b: torch.Tensor) -> torch.Tensor:
        return self.Q.columns(b)[b]

    def _trial_value(self, b: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
        Qd = self.block_bound(b) @ d
        return self.value() + torch.dot(self.g[b], d) + 0.5 * torch.dot(d, Qd)

    def apply(self, b: torch.Tensor, d: torch.Tensor) -> None:
        self.coordinate_updates += b.numel()
        self.x[b] += d
        if self.Q.sparse:
            rows, owner, vals = self.Q.column_entries(b)
            self.g.index_add_(0, rows, vals * d[owner])
        else:
            self.g += self.Q.dense[:, b] @ d

    def hessian_graph(self) -> sp.csr_array | None:
        if not self.Q.sparse:
            return None
        # Copies: numpy views of CPU tensors share memory with Q's CSR indices,
        # and callers edit the graph in place (eliminate_zeros would corrupt Q).
        rowptr = self.Q.rowptr.cpu().numpy().copy()
        colidx = self.Q.colidx.cpu().numpy().copy()
        return sp.csr_array(
            (np.ones(colidx.size, dtype=np.int8), colidx, rowptr), shape=self.Q.shape
        )

    def block_edges(self, b: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """``Q_bb`` in local indices: ``(diagonal, rows, cols, values)`` (off-diag)."""
        if not self.Q.sparse:
            return super().block_edges(b)
        rows, owner, vals = self.Q.column_entries(b)
        self._pos[b] = torch.arange(b.numel(), device=self.device)
        local = self._pos[rows]
        self._pos[b] = -1
        inside = local >= 0
        local, owner, vals = local[inside], owner[inside], vals[inside]
        on = local == owner
        diag = torch.zeros(b.numel(), dtype=self.dtype, device=self.device)
        diag.index_add_(0, owner[on], vals[on])
        return diag, local[~on], owner[~on], vals[~on]


class LinearPredictorModel(CoordinateModel):
    """``s sum_i loss(z_i) + l2/2 ||W||^2`` with ``Z = X W``; ``W`` is ``(d,)`` or
    ``(d, K)``, flattened row-major (coordinate ``i`` is ``W[i // K, i % K]``).

    ``loss`` is ``"logistic"`` (labels in {-1, +1}, ``K = 1``) or ``"softmax"``
    (one-hot ``Y`` of shape ``(m, K)``).
    """

    def __init__(
        self,
        X: Any,
        Y: torch.Tensor,
        x0: torch.Tensor,
        *,
        loss: str,
        scale: float = 1.0,
        l2: float = 0.0,
    ) -> None:
        super().__init__(x0)
        self.cols = Columns(X, self.dtype, self.device)
        m, d = self.cols.shape
        self.K = 1 if x0.ndim == 1 else int(x0.shape[1])
        if d * self.K != self.n:
            raise ValueError(
                f"x0 must have shape ({d},) or ({d}, K), got {tuple(x0.shape)}"
            )
        self.loss, self.scale, self.l2 = loss, float(scale), float(l2)
        self.Y = Y.to(dtype=self.dtype, device=self.device).reshape(m, self.K)
        self.Z = self.cols.matvec(self.x.reshape(d, self.K))
        self.psi = self._derivative(self.Z)
        self.g = torch.zeros_like(self.x)

    # the per-row loss and its derivatives
    def _loss(self, Z: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:
        if self.loss == "logistic":
            return torch.nn.functional.softplus(-Y * Z).sum()
        return (torch.logsumexp(Z, dim=1) - (Y * Z).sum(1)).sum()

    def _derivative(
        self, Z: torch.Tensor, Y: torch.Tensor | None = None
    ) -> torch.Tensor:
        Y = self.Y if Y is None else Y
        if self.loss == "logistic":
            return -Y * torch.sigmoid(-Y * Z)
        return torch.softmax(Z, dim=1) - Y

    def _class_bound(self, k: torch.Tensor) -> torch.Tensor:
        """Boehning's bound on the softmax Hessian restricted to the classes
        ``k`` of a block: ``(I - 11^T / K') / 2`` with ``K' = min(K, c + 1)``
        for ``c`` distinct classes (the restriction is the Hessian of a
        ``(c + 1)``-class softmax: the classes outside the block act as one).
        ``K' = K`` would be valid too but up to twice as loose: one class gives
        ``p (1 - p) <= 1/4``, not ``(1 - 1/K) / 2``. The official code's
        ``Hb_func`` uses the same ``K'``."""
        classes = min(self.K, int(torch.unique(k).numel()) + 1)
        same = (k[:, None] == k[None, :]).to(self.dtype)
        return 0.5 * (same - 1.0 / classes)

    def value(self) -> torch.Tensor:
        W = self.x
        return self.scale * self._loss(self.Z, self.Y) + 0.5 * self.l2 * torch.dot(W, W)

    def fresh_gradient(self) -> torch.Tensor:
        self.full_gradients += 1
        d = self.cols.shape[1]
        Z = self.cols.matvec(self.x.reshape(d, self.K))
        G = self.scale * self.cols.rmatvec(self._derivative(Z))
        return G.reshape(-1) + self.l2 * self.x

    def gradient(self) -> torch.Tensor:
        if self.track:
            return self.g
        self.full_gradients += 1
        G = self.scale * self.cols.rmatvec(self.psi)
        return G.reshape(-1) + self.l2 * self.x

    def refresh(self) -> None:
        d = self.cols.shape[1]
        self.Z = self.cols.matvec(self.x.reshape(d, self.K))
        self.psi = self._derivative(self.Z)
        if self.track:
            self.full_gradients += 1
            G = self.scale * self.cols.rmatvec(self.psi)
            self.g = G.reshape(-1) + self.l2 * self.x

    def _split(self, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.div(b, self.K, rounding_mode="floor"), b % self.K

    def block_gradient(self, b: torch.Tensor) -> torch.Tensor:
        self.coordinate_gradients += b.numel()
        if self.track:
            return self.g[b]
        j, k = self._split(b)
        if self.cols.sparse:
            rows, owner, vals = self.cols.column_entries(j)
            out = torch.zeros(b.numel(), dtype=self.dtype, device=self.device)
            out.index_add_(0, owner, vals * self.psi[rows, k[owner]])
        else:
            out = (self.cols.dense[:, j] * self.psi[:, k]).sum(0)
        return self.scale * out + self.l2 * self.x[b]

    def coordinate_lipschitz(self) -> torch.Tensor:
        norms = self.cols.column_sq_norms().repeat_interleave(self.K)
        # logistic: sigma' <= 1/4; softmax: p (1 - p) <= 1/4 per class as well
        return self.scale * 0.25 * norms + self.l2

    def block_bound(self, b: torch.Tensor) -> torch.Tensor:
        j, k = self._split(b)
        G = self.cols.gram(j)
        if self.loss == "logistic":
            H = 0.25 * G
        else:
            H = G * self._class_bound(k)
        return self.scale * H + self.l2 * self._eye(b.numel())

    def block_hessian(self, b: torch.Tensor) -> torch.Tensor:
        j, k = self._split(b)
        Xb = self.cols.columns(j)
        if self.loss == "logistic":
            p = torch.sigmoid(self.Z[:, 0])
            H = Xb.T @ (Xb * (p * (1 - p))[:, None])
        else:
            P = torch.softmax(self.Z, dim=1)[:, k]
            XP = Xb * P
            same = (k[:, None] == k[None, :]).to(self.dtype)
            H = (XP.T @ Xb) * same - XP.T @ XP
        return self.scale * H + self.l2 * self._eye(b.numel())

    def _delta_z(self, b: torch.Tensor, d: torch.Tensor) -> tuple[Any, torch.Tensor]:
        """Change of ``Z``: ``(touched rows, dZ on them)``; all rows when dense."""
        j, k = self._split(b)
        if self.cols.sparse:
            rows, owner, vals = self.cols.column_entries(j)
            touched, inverse = torch.unique(rows, return_inverse=True)
            dZ = torch.zeros(
                touched.numel(), self.K, dtype=self.dtype, device=self.device
            )
            dZ.index_put_((inverse, k[owner]), vals * d[owner], accumulate=True)
            return touched, dZ
        dZ = torch.zeros_like(self.Z)
        dZ.index_add_(1, k, self.cols.dense[:, j] * d)
        return None, dZ

    def _trial_value(self, b: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
        touched, dZ = self._delta_z(b, d)
        if touched is None:
            data = self.scale * self._loss(self.Z + dZ, self.Y)
        else:
            Zt, Yt = self.Z[touched], self.Y[touched]
            change = self._loss(Zt + dZ, Yt) - self._loss(Zt, Yt)
            data = self.scale * (self._loss(self.Z, self.Y) + change)
        xb = self.x[b]
        reg = torch.dot(self.x, self.x) - torch.dot(xb, xb) + torch.dot(xb + d, xb + d)
        return data + 0.5 * self.l2 * reg

    def apply(self, b: torch.Tensor, d: torch.Tensor) -> None:
        self.coordinate_updates += b.numel()
        self.x[b] += d
        touched, dZ = self._delta_z(b, d)
        if touched is None:
            self.Z += dZ
            psi = self._derivative(self.Z)
            dpsi = psi - self.psi
            self.psi = psi
            if self.track:
                self.g += self.scale * self.cols.rmatvec(dpsi).reshape(-1)
        else:
            self.Z[touched] += dZ
            psi_t = self._derivative(self.Z[touched], self.Y[touched])
            dpsi = psi_t - self.psi[touched]
            self.psi[touched] = psi_t
            if self.track:
                cols, owner, vals = self.cols.row_entries(touched)
                G = self.g.view(-1, self.K)
                G.index_add_(0, cols, (self.scale * vals)[:, None] * dpsi[owner])
        if self.track and self.l2:
            self.g[b] += self.l2 * d


class ObjectiveModel(CoordinateModel):
    """A generic :class:`~itersolve.Objective`: no coordinate structure is known,
    so the full gradient is recomputed for every block gradient (the cost a
    structured problem class avoids). Block Hessians come from ``|b|``
    Hessian-vector products; coordinate Lipschitz constants are unknown (use
    ``update="lipschitz_adaptive"`` or ``"newton"``).
    """

    incremental = False  # every gradient is computed afresh from x

    def __init__(self, objective: Objective, x0: torch.Tensor) -> None:
        super().__init__(x0)
        self.objective = objective
        self._g: torch.Tensor | None = None

    def _f(self, x: torch.Tensor) -> torch.Tensor:
        return self.objective.value(x.reshape(self.shape))

    def value(self) -> torch.Tensor:
        return self._f(self.x)

    def fresh_gradient(self) -> torch.Tensor:
        self.full_gradients += 1
        return self.objective.grad(self.x.reshape(self.shape)).reshape(-1)

    def gradient(self) -> torch.Tensor:
        if self._g is None:
            self._g = self.fresh_gradient()
        return self._g

    def refresh(self) -> None:
        self._g = None

    def block_gradient(self, b: torch.Tensor) -> torch.Tensor:
        self.coordinate_gradients += b.numel()
        return self.gradient()[b]

    def coordinate_lipschitz(self) -> torch.Tensor:
        raise ValueError(
            "coordinate Lipschitz constants are unknown for a generic Objective; use "
            "update='lipschitz_adaptive' or 'newton' with selection 'cyclic', "
            "'random' or 'gs'"
        )

    def block_bound(self, b: torch.Tensor) -> torch.Tensor:
        raise ValueError(
            "no Hessian upper bound is known for a generic Objective; use "
            "update='newton' (true block Hessian with a line search)"
        )

    def block_hessian(self, b: torch.Tensor) -> torch.Tensor:
        E = torch.zeros(self.n, b.numel(), dtype=self.dtype, device=self.device)
        E[b, torch.arange(b.numel(), device=self.device)] = 1.0
        x = self.x.reshape(self.shape)
        cols = [
            self.objective.hvp(x, E[:, i].reshape(self.shape)).reshape(-1)[b]
            for i in range(b.numel())
        ]
        H = torch.stack(cols, dim=1)
        return 0.5 * (H + H.T)

    def _trial_value(self, b: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
        x = self.x.clone()
        x[b] += d
        return self._f(x)

    def apply(self, b: torch.Tensor, d: torch.Tensor) -> None:
        self.coordinate_updates += b.numel()
        self.x[b] += d
        self._g = None


def coordinate_model(
    problem: Any, terms: Terms | None, x0: torch.Tensor
) -> tuple[CoordinateModel, Any]:
    """The coordinate model (and the L1 penalty, if any) for what ``minimize``
    hands a method, from the ``terms`` its source declares
    (:func:`~._structure.coordinate_terms`); without terms, the problem's
    objective runs as a generic objective.
    """
    source = getattr(problem, "source", problem)
    if isinstance(terms, LeastSquaresTerms):
        penalty = terms.penalty
        if penalty is not None and penalty.nonnegative and bool((x0 < 0).any()):
            raise ValueError(
                f"x0 must be >= 0 for a non-negative penalty ({type(source).__name__})"
            )
        model = LeastSquaresModel(terms.A, terms.b, x0, scale=terms.scale, l2=terms.l2)
        return model, penalty
    if isinstance(terms, QuadraticTerms):
        return QuadraticModel(terms.Q, terms.c, x0), None
    if isinstance(terms, LinearPredictorTerms):
        return LinearPredictorModel(
            terms.X, terms.Y, x0, loss=terms.loss, scale=terms.scale, l2=terms.l2
        ), None
    objective = getattr(problem, "objective", None)
    if not isinstance(objective, Objective):
        objective = as_objective(problem)
    return ObjectiveModel(objective, x0), None
