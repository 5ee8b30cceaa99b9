"""Sweep kernels behind the relaxation methods and the SSOR preconditioner.

Three backends compute the same iterates:

* ``"numba"`` (CPU, when numba is installed): compiled in-place sweeps over the CSR
  rows. A checked step is one compiled call: the sweep, then the residual
  ``b - A x`` of the new iterate (summed like a matvec, so it equals a fresh
  evaluation), its squared norm and ``sum(x)`` in one more pass over the
  non-zeros, still in cache. The sweep itself carries from row to row only a
  multiply-add and a scaling by the precomputed ``omega / a_ii``.
* ``"torch"``: the matrix form of the reference code, ``x <- x + M^{-1} r`` with a
  dense triangular ``M`` and :func:`torch.linalg.solve_triangular`, then
  ``r = b - A x``. Works on any device; for small or dense systems.
* ``"scipy"``: the same matrix form with a sparse ``M`` and
  :func:`scipy.sparse.linalg.spsolve_triangular` (CPU fallback for large sparse
  systems without numba; slow, correct).

Every kernel takes one right-hand side ``(n,)`` or a block ``(n, k)`` whose
columns share every sweep.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
import torch

from itersolve._core.jit import HAVE_NUMBA, compiled, lazy_njit
from itersolve._core.operators import LinearOperator

BACKENDS = ("auto", "numba", "torch", "scipy")
# Dense triangular factors beyond this order cost more memory than they save time.
DENSE_LIMIT = 4096

# Index arrays are unsigned (``index_dtype``): numba then skips the wraparound
# test of negative indices, which doubles the speed of these gather loops.


@lazy_njit(cache=True, nogil=True)
def _sweep_vector(ptr, idx, val, adjacent, scale, keep, forward, x, b):
    """One SOR sweep in place on one right-hand side.

    ``(ptr, idx, val)`` holds the off-diagonal entries of each row except the
    one on the row swept just before (``adjacent``): that entry multiplies
    the value computed one row earlier, kept in a register, so the recurrence
    from row to row is one multiply-add and one scaling (no division, no trip
    through memory).
    """
    n = x.shape[0]
    prev = 0.0
    for step in range(n):
        i = step if forward else n - 1 - step
        t = b[i]
        for p in range(ptr[i], ptr[i + 1]):
            t -= val[p] * x[idx[p]]
        a = adjacent[i]
        if a != 0.0:
            t -= a * prev
        x[i] = keep * x[i] + scale[i] * t
        prev = x[i]


@lazy_njit(cache=True, nogil=True)
def _residual_vector(indptr, indices, data, x, b, r, sq):
    """``r = b - A x`` (summed in CSR order, as a matvec), ``sq[0] = ||r||^2``;
    returns ``sum(x)``, the driver's finiteness certificate."""
    total = 0.0
    x_sum = 0.0
    for i in range(x.shape[0]):
        acc = 0.0
        for p in range(indptr[i], indptr[i + 1]):
            acc += data[p] * x[indices[p]]
        ri = b[i] - acc
        r[i] = ri
        total += ri * ri
        x_sum += x[i]
    sq[0] = total
    return x_sum


@lazy_njit(cache=True, nogil=True)
def _sweep_block(ptr, idx, val, adjacent, scale, keep, forward, x, b, t):
    """:func:`_sweep_vector` on ``k`` right-hand sides (``t`` is scratch)."""
    n, k = x.shape
    for step in range(n):
        i = step if forward else n - 1 - step
        for c in range(k):
            t[c] = b[i, c]
        for p in range(ptr[i], ptr[i + 1]):
            a = val[p]
            j = idx[p]
            for c in range(k):
                t[c] -= a * x[j, c]
        a = adjacent[i]
        if a != 0.0:
            j = i - 1 if forward else i + 1
            for c in range(k):
                t[c] -= a * x[j, c]
        s = scale[i]
        for c in range(k):
            x[i, c] = keep * x[i, c] + s * t[c]


@lazy_njit(cache=True, nogil=True)
def _residual_block(indptr, indices, data, x, b, r, sq, acc):
    """:func:`_residual_vector` on ``k`` columns: ``sq[c] = ||r_c||^2``."""
    n, k = x.shape
    x_sum = 0.0
    for c in range(k):
        sq[c] = 0.0
    for i in range(n):
        for c in range(k):
            acc[c] = 0.0
        for p in range(indptr[i], indptr[i + 1]):
            a = data[p]
            j = indices[p]
            for c in range(k):
                acc[c] += a * x[j, c]
        for c in range(k):
            ri = b[i, c] - acc[c]
            r[i, c] = ri
            sq[c] += ri * ri
            x_sum += x[i, c]
    return x_sum


@lazy_njit(cache=True, nogil=True)
def _ssor_apply(indptr, indices, data, diag, rhs, omega, out):
    """``out = omega (2 - omega) (D + omega U)^{-1} D (D + omega L)^{-1} rhs``."""
    n, k = rhs.shape
    s = np.empty(k, dtype=rhs.dtype)
    for i in range(n):
        for c in range(k):
            s[c] = rhs[i, c]
        for p in range(indptr[i], indptr[i + 1]):
            j = indices[p]
            if j < i:
                a = omega * data[p]
                for c in range(k):
                    s[c] -= a * out[j, c]
        for c in range(k):
            out[i, c] = s[c] / diag[i]
    scale = omega * (2.0 - omega)
    for i in range(n - 1, -1, -1):
        for c in range(k):
            s[c] = scale * diag[i] * out[i, c]
        for p in range(indptr[i], indptr[i + 1]):
            j = indices[p]
            if j > i:
                a = omega * data[p]
                for c in range(k):
                    s[c] -= a * out[j, c]
        for c in range(k):
            out[i, c] = s[c] / diag[i]


@lazy_njit(cache=True, nogil=True)
def _sor_count_grid(
    ptr,
    idx,
    val,
    adjacent,
    diag,
    indptr,
    indices,
    data,
    b,
    omegas,
    threshold,
    max_steps,
):
    """Forward SOR sweeps from ``x0 = 0`` until ``||r|| <= threshold``, for each
    relaxation factor in turn: the sweeps taken, ``max_steps + 1`` at the cap,
    ``-1`` on overflow. Same kernels as the driver, hence the same counts."""
    counts = np.empty(omegas.shape[0], dtype=np.int64)
    r = np.empty_like(b)
    sq = np.empty(1, dtype=np.float64)
    for g in range(omegas.shape[0]):
        omega = omegas[g]
        scale = omega / diag
        x = np.zeros_like(b)
        counts[g] = max_steps + 1
        for step in range(1, max_steps + 1):
            _sweep_vector(ptr, idx, val, adjacent, scale, 1.0 - omega, True, x, b)
            _residual_vector(indptr, indices, data, x, b, r, sq)
            if not np.isfinite(sq[0]):
                counts[g] = -1
                break
            if np.sqrt(sq[0]) <= threshold:
                counts[g] = step
                break
    return counts


def resolve_backend(backend: str, A: LinearOperator) -> str:
    """The backend ``"auto"`` stands for on this operator, or a ValueError."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    cuda = A.device.type != "cpu"
    if backend == "auto":
        if cuda:
            return "torch"
        if HAVE_NUMBA:
            return "numba"
        return "torch" if A.shape[0] <= DENSE_LIMIT else "scipy"
    if backend == "numba" and not HAVE_NUMBA:
        raise ValueError("backend='numba' needs numba (pip install itersolve[fast])")
    if backend in ("numba", "scipy") and cuda:
        raise ValueError(f"backend={backend!r} runs on CPU only, A is on {A.device}")
    return backend


def explicit_matrix(A: LinearOperator, who: str) -> torch.Tensor:
    """The matrix behind ``A``: relaxation reads its entries, a matvec is not enough."""
    if A.matrix is None:
        raise ValueError(
            f"{who} needs an explicit matrix (dense or sparse), got a matrix-free "
            "operator"
        )
    if A.shape[0] != A.shape[1]:
        raise ValueError(f"{who} needs a square matrix, got shape {A.shape}")
    return A.matrix


def matrix_is_finite(M: torch.Tensor) -> bool:
    values = M if M.layout == torch.strided else M.values()
    return bool(torch.isfinite(values).all())


def checked_diagonal(A: LinearOperator, who: str) -> torch.Tensor:
    diag = A.diagonal()
    zero = torch.nonzero(diag == 0)
    if zero.numel():
        i = int(zero[0, 0])
        raise ValueError(f"{who} needs a diagonal without zeros, got A[{i}, {i}] = 0")
    return diag


def index_dtype(limit: int) -> type:
    """Unsigned 32-bit indices when they fit (fast gathers in numba), else int64."""
    return np.uint32 if limit < 2**32 else np.int64


@dataclass
class CSRArrays:
    """numpy views of a CSR matrix and its diagonal, as the numba kernels take them."""

    indptr: np.ndarray
    indices: np.ndarray
    data: np.ndarray
    diag: np.ndarray

    @classmethod
    def from_matrix(cls, M: torch.Tensor, diag: torch.Tensor) -> CSRArrays:
        if M.layout == torch.strided:
            csr = sp.csr_array(M.detach().cpu().numpy())
            indptr, indices, data = csr.indptr, csr.indices, csr.data
        else:
            if M.layout != torch.sparse_csr:
                M = M.to_sparse_csr()
            indptr = M.crow_indices().cpu().numpy()
            indices = M.col_indices().cpu().numpy()
            data = M.values().detach().cpu().numpy()
        return cls(
            indptr.astype(index_dtype(len(data) + 1)),
            indices.astype(index_dtype(M.shape[1])),
            data,
            diag.cpu().numpy(),
        )


@dataclass
class SweepOrder:
    """A CSR matrix split for one sweep direction (see :func:`_sweep_vector`).

    ``adjacent[i]`` is the entry of row ``i`` on the row swept just before it
    (``i - 1`` forward, ``i + 1`` backward; duplicates summed, 0 if absent);
    ``(ptr, idx, val)`` holds every other off-diagonal entry.
    """

    ptr: np.ndarray
    idx: np.ndarray
    val: np.ndarray
    adjacent: np.ndarray
    forward: bool

    def arrays(self) -> tuple[np.ndarray, ...]:
        return self.ptr, self.idx, self.val, self.adjacent

    @classmethod
    def from_csr(cls, csr: CSRArrays, forward: bool) -> SweepOrder:
        n = csr.diag.shape[0]
        counts: np.ndarray = np.diff(csr.indptr.astype(np.int64))
        rows = np.repeat(np.arange(n), counts)
        cols = csr.indices.astype(np.int64)
        adjacent = cols == (rows - 1 if forward else rows + 1)
        rest = (cols != rows) & ~adjacent
        ptr = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(np.bincount(rows[rest], minlength=n), out=ptr[1:])
        weights = np.bincount(rows[adjacent], csr.data[adjacent], minlength=n)
        return cls(
            ptr.astype(csr.indptr.dtype),
            csr.indices[rest],
            csr.data[rest],
            weights.astype(csr.data.dtype),
            forward,
        )


def as_block(x: torch.Tensor) -> np.ndarray:
    """A writable ``(n, k)`` numpy view sharing memory with the contiguous ``x``."""
    return x.view(x.shape[0], -1).numpy()


def _scipy_csr(M: torch.Tensor) -> sp.csr_array:
    if M.layout == torch.strided:
        return sp.csr_array(M.detach().cpu().numpy())
    csr = M if M.layout == torch.sparse_csr else M.to_sparse_csr()
    return sp.csr_array(
        (
            csr.values().detach().cpu().numpy(),
            csr.col_indices().cpu().numpy(),
            csr.crow_indices().cpu().numpy(),
        ),
        shape=tuple(csr.shape),
    )


def _triangle(M: torch.Tensor, lower: bool) -> torch.Tensor:
    """Strict lower (or upper) triangle as a dense tensor."""
    dense = M.to_dense() if M.layout != torch.strided else M
    return torch.tril(dense, -1) if lower else torch.triu(dense, 1)


_DIRECTIONS = {"forward": (True,), "backward": (False,), "symmetric": (True, False)}


class BoundSweeper:
    """A sweeper bound once per run to its tensors (see :class:`Sweeper`)."""

    x: torch.Tensor
    b: torch.Tensor
    r: torch.Tensor
    sq: np.ndarray

    def bind(
        self,
        x: torch.Tensor,
        b: torch.Tensor,
        r: torch.Tensor,
        zero_start: bool = False,
    ) -> None:
        """Attach the run's contiguous tensors: ``x`` (updated in place), ``b``
        and the residual buffer ``r``; ``zero_start`` promises ``x = 0``."""
        self.x, self.b, self.r = x, b, r
        self.sq = np.zeros(1 if x.ndim == 1 else x.shape[1])
        self.prepare(zero_start)

    def prepare(self, zero_start: bool) -> None:
        """Per-run setup after :meth:`bind` attached the tensors."""

    def sweep(self, want: bool) -> float | None:
        """One step in place; with ``want``, the residual too (returns ``sum(x)``)."""
        raise NotImplementedError

    def residual(self) -> float:
        """Fresh ``r = b - A x`` and :attr:`sq`; returns ``sum(x)``."""
        raise NotImplementedError


class Sweeper(BoundSweeper):
    """Relaxation sweeps ``x <- x + M^{-1}(b - A x)`` on a fixed matrix.

    ``kind`` is ``"forward"`` (SOR with ``M = D/omega + L``), ``"backward"``
    (``M = D/omega + U``) or ``"symmetric"`` (forward then backward). The sweeper
    is bound once to the run's tensors ``x`` (updated in place), ``b`` and ``r``;
    :meth:`sweep` then does one step, and with ``want=True`` also writes the new
    residual ``r = b - A x`` and its squared column norms into :attr:`sq` and
    returns ``sum(x)``, in the same compiled call on the numba backend.
    """

    def __init__(
        self,
        A: LinearOperator,
        diag: torch.Tensor,
        omega: float,
        kind: str,
        backend: str,
    ) -> None:
        self.A = A
        self.omega = omega
        self.kind = kind
        self.backend = backend
        self.sq = np.zeros(1)
        M = explicit_matrix(A, "relaxation")
        if backend == "numba":
            self.csr = CSRArrays.from_matrix(M, diag)
            self.scale = omega / self.csr.diag
            self.orders = [
                SweepOrder.from_csr(self.csr, forward) for forward in _DIRECTIONS[kind]
            ]
        elif backend == "torch":
            scaled = torch.diag(diag / omega)
            self.lower = scaled + _triangle(M, True)
            self.upper = scaled + _triangle(M, False)
        else:
            csr = _scipy_csr(M)
            scaled = sp.diags_array(diag.cpu().numpy() / omega)
            self.lower_sp = sp.csr_array(sp.tril(csr, -1) + scaled)
            self.upper_sp = sp.csr_array(sp.triu(csr, 1) + scaled)

    def prepare(self, zero_start: bool) -> None:
        """The argument lists of the compiled kernels are built here, once, so a
        step does no conversion (``zero_start`` changes nothing: a sweep reads
        ``x``)."""
        x, b, r = self.x, self.b, self.r
        if self.backend != "numba":
            return
        c, keep = self.csr, 1.0 - self.omega
        if x.ndim == 1:
            xs, bs, rs = x.numpy(), b.numpy(), r.numpy()
            extra: tuple = ()
            kernels: tuple[Any, Any] = (
                compiled(_sweep_vector),
                compiled(_residual_vector),
            )
            residual_extra: tuple = (self.sq,)
        else:
            xs, bs, rs = as_block(x), as_block(b), as_block(r)
            extra = (np.empty(xs.shape[1], dtype=xs.dtype),)
            kernels = (compiled(_sweep_block), compiled(_residual_block))
            residual_extra = (self.sq, np.empty(xs.shape[1]))
        self._sweep_kernel, self._residual_kernel = kernels
        self._sweep_args = [
            (*o.arrays(), self.scale, keep, o.forward, xs, bs, *extra)
            for o in self.orders
        ]
        self._residual_args = (c.indptr, c.indices, c.data, xs, bs, rs, *residual_extra)

    def sweep(self, want: bool) -> float | None:
        """One step in place; with ``want``, the residual too (returns ``sum(x)``)."""
        if self.backend == "numba":
            kernel = self._sweep_kernel
            for args in self._sweep_args:
                kernel(*args)
            return self._residual_kernel(*self._residual_args) if want else None
        for forward in _DIRECTIONS[self.kind]:
            self.x += self._solve(self.b - self.A.matvec(self.x), forward)
        return self.residual() if want else None

    def residual(self) -> float:
        """Fresh ``r = b - A x`` and :attr:`sq`; returns ``sum(x)``."""
        if self.backend == "numba":
            return self._residual_kernel(*self._residual_args)
        r = self.r
        r.copy_(self.b - self.A.matvec(self.x))
        self.sq[:] = torch.linalg.vecdot(r, r, dim=0).cpu().numpy().reshape(-1)
        return float(self.x.sum())

    def _solve(self, rhs: torch.Tensor, lower: bool) -> torch.Tensor:
        if self.backend == "torch":
            T = self.lower if lower else self.upper
            block = rhs.view(rhs.shape[0], -1)
            return torch.linalg.solve_triangular(T, block, upper=not lower).view_as(rhs)
        T_sp = self.lower_sp if lower else self.upper_sp
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", sp.SparseEfficiencyWarning)
            out = spla.spsolve_triangular(T_sp, rhs.cpu().numpy(), lower=lower)
        return torch.as_tensor(np.asarray(out), dtype=rhs.dtype).view_as(rhs)


def sor_count(
    A: Any,
    b: np.ndarray,
    omega: float | np.ndarray,
    *,
    rtol: float = 1e-8,
    max_steps: int = 10_000,
) -> Any:
    """Sweeps forward SOR from ``x0 = 0`` needs to reach ``||r|| <= rtol ||b||``.

    The whole solve runs compiled (numba), for cost tables over many instances and
    grid values; the count equals ``linear_solve(A, b, SOR(omega=omega,
    rtol=rtol)).num_steps``. ``omega`` may be an array (one count per value,
    returned as an int array). A count of ``max_steps + 1`` means the cap was hit,
    ``-1`` that the iterates overflowed.
    """
    if not HAVE_NUMBA:
        raise ValueError("sor_count needs numba (pip install itersolve[fast])")
    csr = sp.csr_array(A)
    csr.sum_duplicates()
    csr.sort_indices()
    diag = csr.diagonal()
    if not np.all(diag != 0):
        raise ValueError("sor_count needs a diagonal without zeros")
    vector = np.asarray(b, dtype=np.float64)
    if vector.shape != (csr.shape[0],):
        raise ValueError(f"b must have shape ({csr.shape[0]},), got {vector.shape}")
    omegas = np.atleast_1d(np.asarray(omega, dtype=np.float64))
    if not ((omegas > 0) & (omegas < 2)).all():
        raise ValueError(f"omega must be in (0, 2), got {omega}")
    arrays = CSRArrays(
        csr.indptr.astype(index_dtype(csr.nnz + 1)),
        csr.indices.astype(index_dtype(csr.shape[1])),
        csr.data.astype(np.float64),
        diag.astype(np.float64),
    )
    order = SweepOrder.from_csr(arrays, forward=True)
    counts = _sor_count_grid(
        order.ptr,
        order.idx,
        order.val,
        order.adjacent,
        arrays.diag,
        arrays.indptr,
        arrays.indices,
        arrays.data,
        np.ascontiguousarray(vector),
        omegas,
        rtol * float(np.linalg.norm(vector)),
        int(max_steps),
    )
    return int(counts[0]) if np.ndim(omega) == 0 else counts
