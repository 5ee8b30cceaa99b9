"""Column access to a data matrix for coordinate methods (dense or sparse).

Coordinate methods touch ``A`` one block of columns at a time: ``A_b d``
(a residual update), ``A_b^T r`` (a block gradient) and ``A^T v`` restricted to
the rows a block touches (the incremental full gradient). A sparse matrix is
stored twice, as CSC (columns) and CSR (rows) index arrays on the tensor's
device, and every operation is a vectorized gather / ``index_add_``.
"""

from __future__ import annotations

import warnings
import weakref
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch


def _segment_ids(ptr: torch.Tensor, idx: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Positions of the entries of the segments ``idx`` of a compressed array.

    Returns ``(entries, owner)``: the flat positions into the index/value arrays
    and, for each, which element of ``idx`` it belongs to.
    """
    start, stop = ptr[idx], ptr[idx + 1]
    counts = stop - start
    owner = torch.repeat_interleave(
        torch.arange(idx.numel(), device=idx.device), counts
    )
    offsets = torch.cumsum(counts, 0) - counts
    entries = (
        start[owner] + torch.arange(owner.numel(), device=idx.device) - offsets[owner]
    )
    return entries, owner


class Columns:
    """``A`` (``m x n``) for column-block access; dense or sparse.

    Parameters
    ----------
    A
        Dense torch tensor, numpy array, scipy sparse matrix or torch sparse
        tensor (COO/CSR/CSC).
    dtype, device
        Target dtype and device.
    """

    def __init__(self, A: Any, dtype: torch.dtype, device: torch.device) -> None:
        self.sparse = False
        if isinstance(A, torch.Tensor) and A.layout != torch.strided:
            A = _torch_sparse_to_scipy(A)
        if sp.issparse(A):
            self.sparse = True
            csc = sp.csc_array(A)
            csc.sum_duplicates()
            csr = sp.csr_array(csc)
            self.shape = (int(csc.shape[0]), int(csc.shape[1]))
            self.colptr = torch.from_numpy(csc.indptr.astype(np.int64)).to(device)
            self.rowidx = torch.from_numpy(csc.indices.astype(np.int64)).to(device)
            self.colval = torch.from_numpy(csc.data).to(dtype=dtype, device=device)
            self.rowptr = torch.from_numpy(csr.indptr.astype(np.int64)).to(device)
            self.colidx = torch.from_numpy(csr.indices.astype(np.int64)).to(device)
            self.rowval = torch.from_numpy(csr.data).to(dtype=dtype, device=device)
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", "Sparse CSR tensor support")
                self._AT = torch.sparse_csr_tensor(
                    self.colptr, self.rowidx, self.colval, size=self.shape[::-1]
                )
                self._A = torch.sparse_csr_tensor(
                    self.rowptr, self.colidx, self.rowval, size=self.shape
                )
        else:
            if isinstance(A, np.ndarray):
                A = torch.from_numpy(np.ascontiguousarray(A))
            if not isinstance(A, torch.Tensor):
                raise TypeError(
                    "the data matrix must be a tensor, array or sparse matrix, got "
                    f"{type(A).__name__}"
                )
            if A.ndim != 2:
                raise ValueError(f"the data matrix must be 2-D, got {tuple(A.shape)}")
            self.dense = A.detach().to(dtype=dtype, device=device)
            self.shape = (int(A.shape[0]), int(A.shape[1]))
        self.dtype, self.device = dtype, device

    @property
    def nnz(self) -> int:
        return (
            int(self.colval.numel()) if self.sparse else self.shape[0] * self.shape[1]
        )

    def matvec(self, x: torch.Tensor) -> torch.Tensor:
        """``A x`` for ``x`` of shape ``(n,)`` or ``(n, k)``."""
        if self.sparse:
            return self._A @ x if x.ndim == 1 else torch.sparse.mm(self._A, x)
        return self.dense @ x

    def rmatvec(self, v: torch.Tensor) -> torch.Tensor:
        """``A^T v`` for ``v`` of shape ``(m,)`` or ``(m, k)``."""
        if self.sparse:
            return self._AT @ v if v.ndim == 1 else torch.sparse.mm(self._AT, v)
        return self.dense.T @ v

    def column_sq_norms(self) -> torch.Tensor:
        if self.sparse:
            out = torch.zeros(self.shape[1], dtype=self.dtype, device=self.device)
            counts = self.colptr.diff()
            cols = torch.repeat_interleave(
                torch.arange(self.shape[1], device=self.device), counts
            )
            return out.index_add_(0, cols, self.colval**2)
        return (self.dense**2).sum(0)

    def columns(self, idx: torch.Tensor) -> torch.Tensor:
        """``A[:, idx]`` as a dense ``(m, |idx|)`` tensor."""
        if not self.sparse:
            return self.dense[:, idx]
        entries, owner = _segment_ids(self.colptr, idx)
        out = torch.zeros(
            self.shape[0], idx.numel(), dtype=self.dtype, device=self.device
        )
        out[self.rowidx[entries], owner] = self.colval[entries]
        return out

    def column_entries(self, idx: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Sparse ``A[:, idx]`` as ``(rows, owner, values)``, owner into ``idx``."""
        entries, owner = _segment_ids(self.colptr, idx)
        return self.rowidx[entries], owner, self.colval[entries]

    def row_entries(self, rows: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Sparse ``A[rows, :]`` as ``(cols, owner, values)``, owner into ``rows``."""
        entries, owner = _segment_ids(self.rowptr, rows)
        return self.colidx[entries], owner, self.rowval[entries]

    def gram(self, idx: torch.Tensor) -> torch.Tensor:
        """``A_b^T A_b`` for the block ``idx``."""
        Ab = self.columns(idx)
        return Ab.T @ Ab


def _torch_sparse_to_scipy(A: torch.Tensor) -> sp.csr_array:
    A = A.detach().cpu()
    if A.layout != torch.sparse_coo:
        A = A.to_sparse_coo()
    A = A.coalesce()
    i = A.indices().numpy()
    return sp.csr_array((A.values().numpy(), (i[0], i[1])), shape=tuple(A.shape))


def _index(a: np.ndarray, limit: int) -> np.ndarray:
    return a.astype(np.uint32 if limit < 2**32 else np.int64)


@dataclass(frozen=True)
class CompressedMatrix:
    """A sparse matrix as compiled coordinate kernels read it: CSC and CSR arrays
    ``(pointers, indices, values)`` in float64, unsigned 32-bit indices when they
    fit (no negative-index test in the gather loops), and the squared column
    norms."""

    csc: tuple[np.ndarray, np.ndarray, np.ndarray]
    csr: tuple[np.ndarray, np.ndarray, np.ndarray]
    column_sq_norms: np.ndarray

    @classmethod
    def from_sparse(cls, A: Any) -> CompressedMatrix:
        csr = sp.csr_array(A, dtype=np.float64)
        csr.sum_duplicates()
        csc = sp.csc_array(csr)
        m, n = csr.shape
        sq = np.zeros(n)
        np.add.at(sq, csr.indices, csr.data * csr.data)
        return cls(
            (_index(csc.indptr, csc.nnz + 1), _index(csc.indices, m), csc.data),
            (_index(csr.indptr, csr.nnz + 1), _index(csr.indices, n), csr.data),
            sq,
        )


_COMPRESSED: dict[int, CompressedMatrix] = {}


def compressed_matrix(A: Any) -> CompressedMatrix:
    """The :class:`CompressedMatrix` of the scipy sparse matrix ``A``, built once
    per matrix object and dropped with it (problem data is not modified in
    place, so repeated solves on one problem share the conversion).

    >>> A = sp.csr_array(np.eye(3))
    >>> compressed_matrix(A) is compressed_matrix(A)
    True
    """
    key = id(A)
    out = _COMPRESSED.get(key)
    if out is None:
        out = _COMPRESSED[key] = CompressedMatrix.from_sparse(A)
        weakref.finalize(A, _COMPRESSED.pop, key, None)
    return out
