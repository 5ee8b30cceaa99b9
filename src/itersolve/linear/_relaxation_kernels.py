"""Sweep kernels behind the relaxation methods and the SSOR preconditioner.

Three backends compute the same iterates:

* ``"numba"`` (CPU, when numba is installed): compiled in-place sweeps over the CSR
  rows. A sweep also returns the residual of the new iterate at half the cost of a
  matvec (the correction ``U delta`` over the entries the sweep read *before* they
  were updated), so a residual-checked SOR step costs 1.5 passes over the non-zeros.
* ``"torch"``: the matrix form of the reference code, ``x <- x + M^{-1} r`` with a
  dense triangular ``M`` and :func:`torch.linalg.solve_triangular`, then
  ``r = b - A x``. Works on any device; for small or dense systems.
* ``"scipy"``: the same matrix form with a sparse ``M`` and
  :func:`scipy.sparse.linalg.spsolve_triangular` (CPU fallback for large sparse
  systems without numba; slow, correct).

All kernels take blocks ``(n, k)``: ``k`` right-hand sides share every sweep.
"""

from __future__ import annotations

import importlib.util
import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
import torch

from itersolve._core.operators import LinearOperator

HAVE_NUMBA = importlib.util.find_spec("numba") is not None
BACKENDS = ("auto", "numba", "torch", "scipy")
# Dense triangular factors beyond this order cost more memory than they save time.
DENSE_LIMIT = 4096

if HAVE_NUMBA:
    import numba

    @numba.njit(cache=True, nogil=True)
    def _sweep(indptr, indices, data, diag, x, b, omega, forward, r, delta):
        """One SOR sweep in place; with ``r.shape[0] > 0`` also the new residual."""
        n, k = x.shape
        want = r.shape[0] > 0
        s = np.empty(k, dtype=x.dtype)
        for step in range(n):
            i = step if forward else n - 1 - step
            for c in range(k):
                s[c] = b[i, c]
            for p in range(indptr[i], indptr[i + 1]):
                j = indices[p]
                if j != i:
                    a = data[p]
                    for c in range(k):
                        s[c] -= a * x[j, c]
            d = diag[i]
            for c in range(k):
                new = (1.0 - omega) * x[i, c] + omega * s[c] / d
                if want:
                    delta[i, c] = new - x[i, c]
                    r[i, c] = s[c] - d * new
                x[i, c] = new
        if want:
            # Entries read before their update saw the old value: correct by delta.
            for i in range(n):
                for p in range(indptr[i], indptr[i + 1]):
                    j = indices[p]
                    if (j > i) if forward else (j < i):
                        a = data[p]
                        for c in range(k):
                            r[i, c] -= a * delta[j, c]

    @numba.njit(cache=True, nogil=True)
    def _sweep_vector(indptr, indices, data, diag, x, b, omega, forward, r, delta):
        """:func:`_sweep` for one right-hand side (1-D arrays, scalar sums)."""
        n = x.shape[0]
        want = r.shape[0] > 0
        for step in range(n):
            i = step if forward else n - 1 - step
            s = b[i]
            for p in range(indptr[i], indptr[i + 1]):
                j = indices[p]
                if j != i:
                    s -= data[p] * x[j]
            new = (1.0 - omega) * x[i] + omega * s / diag[i]
            if want:
                delta[i] = new - x[i]
                r[i] = s - diag[i] * new
            x[i] = new
        if want:
            for i in range(n):
                t = r[i]
                for p in range(indptr[i], indptr[i + 1]):
                    j = indices[p]
                    if (j > i) if forward else (j < i):
                        t -= data[p] * delta[j]
                r[i] = t

    @numba.njit(cache=True, nogil=True)
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

    @numba.njit(cache=True, nogil=True)
    def _sor_count(indptr, indices, data, diag, x, b, omega, threshold, max_steps):
        """Forward SOR sweeps until ``||r|| <= threshold``; returns the sweeps taken.

        Returns ``max_steps + 1`` when the cap was hit without convergence.
        """
        n, k = x.shape
        r = np.empty_like(x)
        delta = np.empty_like(x)
        for step in range(1, max_steps + 1):
            _sweep(indptr, indices, data, diag, x, b, omega, True, r, delta)
            worst = 0.0
            for c in range(k):
                total = 0.0
                for i in range(n):
                    total += r[i, c] * r[i, c]
                worst = max(worst, total)
            if not np.isfinite(worst):
                return -1
            if np.sqrt(worst) <= threshold:
                return step
        return max_steps + 1

    @numba.njit(cache=True, nogil=True)
    def _sor_count_grid(indptr, indices, data, diag, b, omegas, threshold, max_steps):
        """:func:`_sor_count` from ``x0 = 0`` for each relaxation factor in turn."""
        counts = np.empty(omegas.shape[0], dtype=np.int64)
        for g in range(omegas.shape[0]):
            x = np.zeros_like(b)
            counts[g] = _sor_count(
                indptr, indices, data, diag, x, b, omegas[g], threshold, max_steps
            )
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
            return cls(csr.indptr, csr.indices, csr.data, diag.cpu().numpy())
        if M.layout != torch.sparse_csr:
            M = M.to_sparse_csr()
        return cls(
            M.crow_indices().cpu().numpy(),
            M.col_indices().cpu().numpy(),
            M.values().detach().cpu().numpy(),
            diag.cpu().numpy(),
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


class Sweeper:
    """One relaxation sweep ``x <- x + M^{-1}(b - A x)`` on a fixed matrix.

    ``kind`` is ``"forward"`` (SOR with ``M = D/omega + L``), ``"backward"``
    (``M = D/omega + U``) or ``"symmetric"`` (forward then backward). ``sweep``
    updates ``x`` in place and, when ``r`` is given, writes the new residual.
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
        self._views: tuple | None = None
        self._residual_view: tuple | None = None
        M = explicit_matrix(A, "relaxation")
        if backend == "numba":
            self.csr = CSRArrays.from_matrix(M, diag)
        elif backend == "torch":
            scaled = torch.diag(diag / omega)
            self.lower = scaled + _triangle(M, True)
            self.upper = scaled + _triangle(M, False)
        else:
            csr = _scipy_csr(M)
            scaled = sp.diags_array(diag.cpu().numpy() / omega)
            self.lower_sp = sp.csr_array(sp.tril(csr, -1) + scaled)
            self.upper_sp = sp.csr_array(sp.triu(csr, 1) + scaled)

    def sweep(
        self, x: torch.Tensor, b: torch.Tensor, r: torch.Tensor | None
    ) -> np.ndarray | None:
        """Sweep ``x`` in place; with ``r``, write the new residual and return its
        column norms (numpy, so the stopping test costs no tensor dispatch)."""
        if self.backend == "numba":
            return self._sweep_numba(x, b, r)
        for forward in _DIRECTIONS[self.kind]:
            residual = b - self.A.matvec(x)
            x += self._solve(residual, forward)
        if r is None:
            return None
        r.copy_(b - self.A.matvec(x))
        return torch.linalg.vector_norm(r, dim=0).cpu().numpy().reshape(-1)

    def _sweep_numba(
        self, x: torch.Tensor, b: torch.Tensor, r: torch.Tensor | None
    ) -> np.ndarray | None:
        # The state's tensors live for the whole run: build their views once.
        # One right-hand side runs the 1-D kernel (scalar sums, ~2x faster).
        views = self._views
        if views is None or views[0] is not x or views[1] is not b:
            xb = x.numpy() if x.ndim == 1 else as_block(x)
            bb = b.numpy() if b.ndim == 1 else as_block(b)
            empty = np.empty((0, *xb.shape[1:]), dtype=xb.dtype)
            views = (x, b, xb, bb, np.empty_like(xb), empty)
            self._views = views
        _, _, xb, bb, delta, empty = views
        rb = empty
        if r is not None:
            if self._residual_view is None or self._residual_view[0] is not r:
                self._residual_view = (r, r.numpy() if r.ndim == 1 else as_block(r))
            rb = self._residual_view[1]
        kernel = _sweep_vector if xb.ndim == 1 else _sweep
        c = self.csr
        passes = _DIRECTIONS[self.kind]
        for i, forward in enumerate(passes):
            want = r is not None and i == len(passes) - 1
            kernel(
                c.indptr,
                c.indices,
                c.data,
                c.diag,
                xb,
                bb,
                self.omega,
                forward,
                rb if want else empty,
                delta if want else empty,
            )
        if r is None:
            return None
        if rb.ndim == 1:
            return np.array([math.sqrt(float(rb @ rb))])
        return np.sqrt(np.einsum("ij,ij->j", rb, rb))

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
    counts = _sor_count_grid(
        csr.indptr,
        csr.indices,
        csr.data.astype(np.float64),
        diag.astype(np.float64),
        np.ascontiguousarray(vector.reshape(-1, 1)),
        omegas,
        rtol * float(np.linalg.norm(vector)),
        int(max_steps),
    )
    return int(counts[0]) if np.ndim(omega) == 0 else counts
