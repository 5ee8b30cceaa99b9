"""``LinearOperator``: one matvec interface for dense, sparse and matrix-free."""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
import torch

from itersolve._core.tensors import floating_dtype, numpy_view

MatvecFn = Callable[[torch.Tensor], torch.Tensor]


class LinearOperator:
    """A linear map ``x -> A @ x`` on torch tensors that counts its applications.

    ``matvec`` accepts a vector of shape ``(n,)`` or a block ``(n, k)``; a block
    counts as ``k`` matvecs. Build one with :func:`aslinearoperator`, which accepts
    dense tensors/arrays, torch sparse CSR/COO, scipy.sparse matrices, scipy
    ``LinearOperator`` and callables.

    Structure tags (lineax's ``symmetric_tag``/``positive_semidefinite_tag`` are
    the model): ``symmetric`` and ``positive_definite`` are ``True``/``False``
    when the user declared them and ``None`` when unknown. Solvers trust them:
    ``linear_solve`` picks its default method from them without probing the
    matrix. ``positive_definite=True`` means symmetric positive definite.

    An operator caches what it learns about its matrix (diagonal, structure
    verdict, the arrays of compiled kernels, the Jacobi preconditioner), so one
    operator serves many solves cheaply; after changing the matrix in place,
    build a new operator.

    Examples
    --------
    >>> op = aslinearoperator(torch.eye(3, dtype=torch.float64) * 2)
    >>> op.matvec(torch.ones(3, dtype=torch.float64))
    tensor([2., 2., 2.], dtype=torch.float64)
    >>> op.matvecs
    1
    >>> op.with_tags(positive_definite=True).symmetric
    True
    """

    def __init__(
        self,
        matvec: MatvecFn,
        shape: tuple[int, int],
        *,
        dtype: torch.dtype,
        device: torch.device | str = "cpu",
        diagonal: Callable[[], torch.Tensor] | None = None,
        transpose: Callable[[], LinearOperator] | None = None,
        dense: Callable[[], torch.Tensor] | None = None,
        matrix: torch.Tensor | None = None,
        symmetric: bool | None = None,
        positive_definite: bool | None = None,
    ) -> None:
        if len(shape) != 2 or min(shape) < 1:
            raise ValueError(
                f"operator shape must be (m, n) with m, n >= 1, got {shape}"
            )
        self._matvec = matvec
        self.shape = (int(shape[0]), int(shape[1]))
        self.dtype = dtype
        self.device = torch.device(device)
        self._diagonal = diagonal
        self._transpose = transpose
        self._dense = dense
        # The explicit matrix (dense or sparse CSR) when there is one: methods that
        # need its entries (relaxation sweeps, incomplete factorizations) read it.
        self.matrix = matrix
        self._cache: dict[str, Any] = {}
        self.matvecs = 0
        self.symmetric, self.positive_definite = _check_tags(
            self.shape, symmetric, positive_definite
        )

    def with_tags(
        self,
        *,
        symmetric: bool | None = None,
        positive_definite: bool | None = None,
    ) -> LinearOperator:
        """The same operator with declared structure (a new object sharing the
        matrix and its caches; its ``matvecs`` counter starts at 0).

        Tags not given keep their current value.
        """
        out = copy.copy(self)
        out.matvecs = 0
        out.symmetric, out.positive_definite = _check_tags(
            self.shape,
            self.symmetric if symmetric is None else symmetric,
            self.positive_definite if positive_definite is None else positive_definite,
        )
        return out

    def matvec(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[0] != self.shape[1] or x.ndim not in (1, 2):
            raise ValueError(
                f"operator of shape {self.shape} cannot be applied to an array of "
                f"shape {tuple(x.shape)}"
            )
        self.matvecs += 1 if x.ndim == 1 else x.shape[1]
        return self._matvec(x)

    __matmul__ = matvec

    def diagonal(self) -> torch.Tensor:
        """The main diagonal (cached); only for explicit matrices."""
        if self._diagonal is None:
            raise ValueError("diagonal() is not available for a matrix-free operator")
        if "diagonal" not in self._cache:
            self._cache["diagonal"] = self._diagonal()
        return self._cache["diagonal"]

    @property
    def T(self) -> LinearOperator:
        """The transpose (``A.T @ y``); explicit matrices only."""
        if self._transpose is None:
            raise ValueError("the transpose of a matrix-free operator is not available")
        if "T" not in self._cache:
            self._cache["T"] = self._transpose()
        return self._cache["T"]

    def to_dense(self) -> torch.Tensor:
        if self._dense is not None:
            return self._dense()
        eye = torch.eye(self.shape[1], dtype=self.dtype, device=self.device)
        return self._matvec(eye)

    def __repr__(self) -> str:
        tags = "".join(
            f", {name}={value}"
            for name, value in (
                ("symmetric", self.symmetric),
                ("positive_definite", self.positive_definite),
            )
            if value is not None
        )
        return f"LinearOperator(shape={self.shape}, dtype={self.dtype}{tags})"


def _check_tags(
    shape: tuple[int, int], symmetric: bool | None, positive_definite: bool | None
) -> tuple[bool | None, bool | None]:
    for name, value in (
        ("symmetric", symmetric),
        ("positive_definite", positive_definite),
    ):
        if value is not None and not isinstance(value, bool):
            raise TypeError(f"{name} must be True, False or None, got {value!r}")
    if positive_definite and symmetric is False:
        raise ValueError(
            "positive_definite=True declares a symmetric positive definite "
            "operator; it contradicts symmetric=False"
        )
    if (symmetric or positive_definite) and shape[0] != shape[1]:
        raise ValueError(f"only a square operator can be symmetric, got shape {shape}")
    if positive_definite:
        symmetric = True
    return symmetric, positive_definite


def _dense_operator(A: torch.Tensor) -> LinearOperator:
    return LinearOperator(
        lambda x: A @ x,
        (A.shape[0], A.shape[1]),
        dtype=A.dtype,
        device=A.device,
        diagonal=lambda: A.diagonal().clone(),
        transpose=lambda: _dense_operator(A.T),
        dense=lambda: A,
        matrix=A,
    )


def _csr_operator(A: torch.Tensor) -> LinearOperator:
    def matvec(x: torch.Tensor) -> torch.Tensor:
        # sparse.mm is several times faster than ``@`` for blocks on CPU.
        return A @ x if x.ndim == 1 else torch.sparse.mm(A, x)

    def diagonal() -> torch.Tensor:
        crow, col = A.crow_indices(), A.col_indices()
        rows = torch.repeat_interleave(
            torch.arange(A.shape[0], device=A.device), crow.diff()
        )
        on_diag = rows == col
        diag = torch.zeros(min(A.shape), dtype=A.dtype, device=A.device)
        return diag.index_add_(0, rows[on_diag], A.values()[on_diag])

    return LinearOperator(
        matvec,
        (A.shape[0], A.shape[1]),
        dtype=A.dtype,
        device=A.device,
        diagonal=diagonal,
        transpose=lambda: _csr_operator(_transpose_csr(A)),
        dense=A.to_dense,
        matrix=A,
    )


def _transpose_csr(A: torch.Tensor) -> torch.Tensor:
    return A.to_sparse_coo().t().coalesce().to_sparse_csr()


def _torch_csr_from_scipy(
    A: sp.sparray | sp.spmatrix, dtype: torch.dtype, device: torch.device | str | None
) -> torch.Tensor:
    csr = sp.csr_array(A)
    csr.sum_duplicates()
    csr.sort_indices()
    # int32 indices when they fit: torch's CPU CSR kernel is ~1.5x faster with them.
    index_dtype = np.int32 if csr.nnz < 2**31 - 1 else np.int64
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Sparse CSR tensor support is in beta")
        return torch.sparse_csr_tensor(
            torch.from_numpy(csr.indptr.astype(index_dtype, copy=False)),
            torch.from_numpy(csr.indices.astype(index_dtype, copy=False)),
            torch.from_numpy(csr.data).to(dtype),
            size=csr.shape,
            device=device,
            check_invariants=False,
        )


def _scipy_operator(A: spla.LinearOperator, dtype: torch.dtype) -> LinearOperator:
    def matvec(x: torch.Tensor) -> torch.Tensor:
        y = A.matvec(x.cpu().numpy()) if x.ndim == 1 else A.matmat(x.cpu().numpy())
        return torch.as_tensor(np.asarray(y), dtype=dtype, device=x.device)

    return LinearOperator(matvec, A.shape, dtype=dtype)


def aslinearoperator(
    A: Any,
    *,
    shape: tuple[int, int] | None = None,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
    symmetric: bool | None = None,
    positive_definite: bool | None = None,
) -> LinearOperator:
    """Wrap ``A`` as a :class:`LinearOperator`.

    Accepted: ``LinearOperator`` (returned as is), dense torch tensors and numpy
    arrays, torch sparse CSR/COO tensors, scipy.sparse matrices/arrays (converted
    once to torch CSR), ``scipy.sparse.linalg.LinearOperator`` and a callable
    ``matvec(x)`` together with ``shape`` (and ``dtype``; float64 by default).
    Integer matrices become float64. ``symmetric`` / ``positive_definite``
    declare structure (see :class:`LinearOperator`); they are not checked.

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> op = aslinearoperator(sp.eye_array(3), positive_definite=True)
    >>> op.symmetric, op.positive_definite
    (True, True)
    """
    op = _wrap(A, shape=shape, dtype=dtype, device=device)
    if symmetric is None and positive_definite is None:
        return op
    return op.with_tags(symmetric=symmetric, positive_definite=positive_definite)


def _wrap(
    A: Any,
    *,
    shape: tuple[int, int] | None,
    dtype: torch.dtype | None,
    device: torch.device | str | None,
) -> LinearOperator:
    if isinstance(A, LinearOperator):
        return A
    if isinstance(A, spla.LinearOperator):
        target = dtype or floating_dtype(torch.from_numpy(np.zeros(0, A.dtype)).dtype)
        return _scipy_operator(A, target)
    if sp.issparse(A):
        target = dtype or floating_dtype(torch.from_numpy(np.zeros(0, A.dtype)).dtype)
        return _csr_operator(_torch_csr_from_scipy(A, target, device))
    if isinstance(A, np.ndarray):
        A = torch.from_numpy(numpy_view(A))
    if isinstance(A, torch.Tensor):
        if A.ndim != 2:
            raise ValueError(f"A must be a 2-D matrix, got shape {tuple(A.shape)}")
        A = A.detach().to(dtype=dtype or floating_dtype(A.dtype), device=device)
        if A.layout == torch.sparse_coo:
            A = A.coalesce().to_sparse_csr()
        if A.layout == torch.sparse_csr:
            return _csr_operator(A)
        if A.layout != torch.strided:
            return _csr_operator(A.to_sparse_csr())
        return _dense_operator(A)
    if callable(A):
        if shape is None:
            raise ValueError("a callable matvec needs shape=(m, n)")
        return LinearOperator(
            A, shape, dtype=dtype or torch.float64, device=device or "cpu"
        )
    raise TypeError(
        "A must be a tensor, array, scipy.sparse matrix, LinearOperator or callable, "
        f"got {type(A).__name__}"
    )
