"""The linear-system problem object and the helpers Krylov solvers share."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse.linalg as spla
import torch

from itersolve._core.operators import LinearOperator, aslinearoperator
from itersolve.linear import _cg_kernels as kernels

Preconditioner = Callable[[torch.Tensor], torch.Tensor]

# The family's default relative tolerances; the reasons are stated once, in the
# "Tolerances" section of the itersolve.linear docstring. A default is lifted
# per dtype (itersolve._core.frontdoor.default_rtol); a given rtol is kept.
KRYLOV_RTOL = 1e-5
ROW_ACTION_RTOL = 1e-6
RELAXATION_RTOL = 1e-8


@dataclass(frozen=True)
class LinearProblem:
    """``A x = b`` with ``b`` of shape ``(n,)`` or ``(n, k)`` (k right-hand sides).

    Examples
    --------
    >>> import torch
    >>> from itersolve import aslinearoperator
    >>> from itersolve.linear import LinearProblem
    >>> A = torch.eye(3, dtype=torch.float64)
    >>> B = torch.ones(3, 2, dtype=torch.float64)  # two right-hand sides
    >>> problem = LinearProblem(aslinearoperator(A), B)
    >>> problem.b.shape
    torch.Size([3, 2])
    """

    A: LinearOperator
    b: torch.Tensor

    def __post_init__(self) -> None:
        m = self.A.shape[0]
        if self.b.ndim not in (1, 2) or self.b.shape[0] != m:
            raise ValueError(
                f"b must have shape ({m},) or ({m}, k) to match A of shape "
                f"{self.A.shape}, got {tuple(self.b.shape)}"
            )

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        return self.b - fast_matvec(self.A)(x)


class BatchedMatrixOperator(LinearOperator):
    """``B`` independent dense ``n x n`` matrices acting on the columns of a block.

    Holds ``A`` of shape ``(B, n, n)``; ``matvec(X)`` takes ``X`` of shape
    ``(n, B)`` and returns the block whose column ``i`` is ``A[i] @ X[:, i]``. Every
    column-batched Krylov solver therefore solves ``B`` unrelated systems in one
    run (``linear_solve`` maps ``b`` of shape ``(B, n)`` onto this layout).

    Examples
    --------
    >>> A = torch.stack([torch.eye(2) * 2, torch.eye(2) * 4]).double()
    >>> op = BatchedMatrixOperator(A)
    >>> op.matvec(torch.ones(2, 2, dtype=torch.float64))
    tensor([[2., 4.],
            [2., 4.]], dtype=torch.float64)
    """

    def __init__(self, A: torch.Tensor) -> None:
        if A.ndim != 3 or A.shape[-1] != A.shape[-2]:
            raise ValueError(
                f"a batched A must have shape (B, n, n), got {tuple(A.shape)}"
            )
        self.batch = A.shape[0]
        self.matrices = A

        def matvec(x: torch.Tensor) -> torch.Tensor:
            if x.ndim != 2 or x.shape[1] != self.batch:
                raise ValueError(
                    f"a batch of {self.batch} matrices needs a block of shape "
                    f"({A.shape[1]}, {self.batch}), got {tuple(x.shape)}"
                )
            return torch.bmm(A, x.T.unsqueeze(-1)).squeeze(-1).T

        super().__init__(
            matvec,
            (A.shape[1], A.shape[2]),
            dtype=A.dtype,
            device=A.device,
            diagonal=lambda: A.diagonal(dim1=-2, dim2=-1).T.clone(),
            transpose=lambda: BatchedMatrixOperator(A.mT),
            dense=lambda: A,
        )

    def __repr__(self) -> str:
        return (
            f"BatchedMatrixOperator(batch={self.batch}, shape={self.shape}, "
            f"dtype={self.dtype})"
        )


def column_norms(x: torch.Tensor) -> torch.Tensor:
    """Euclidean norm of a vector, or of each column of a block."""
    return torch.linalg.vector_norm(x, dim=0)


def explicit_matrix(op: LinearOperator) -> torch.Tensor | None:
    """The dense or CSR tensor behind ``op`` when it wraps an explicit matrix.

    Used for structure checks (symmetry, fused CPU kernels); ``None`` for
    matrix-free operators.
    """
    if isinstance(op, BatchedMatrixOperator):
        return op.matrices
    matrix = op.matrix
    if isinstance(matrix, torch.Tensor) and matrix.layout in (
        torch.strided,
        torch.sparse_csr,
    ):
        return matrix
    dense = getattr(op, "_dense", None)
    if dense is None:
        return None
    owner = getattr(dense, "__self__", None)  # ``A.to_dense`` of a CSR operator
    if isinstance(owner, torch.Tensor) and owner.layout == torch.sparse_csr:
        return owner
    if callable(dense) and owner is None:
        out = dense()
        if isinstance(out, torch.Tensor) and out.layout == torch.strided:
            return out
    return None


def fast_matvec(op: LinearOperator) -> Callable[[torch.Tensor], torch.Tensor]:
    """``op.matvec``, or a compiled CSR product on CPU when numba is installed.

    Same result and the same ``op.matvecs`` count; used inside solver loops,
    where torch's per-call cost for small CSR products dominates. Built once
    per operator (cached on it).
    """
    # The product counts on ``op`` itself: a tagged copy (which shares the
    # cache) builds its own.
    cached = op._cache.get("fast_matvec")
    if cached is None or cached[0] is not op:
        cached = op._cache["fast_matvec"] = (op, _fast_matvec(op))
    return cached[1]


def _fast_matvec(op: LinearOperator) -> Callable[[torch.Tensor], torch.Tensor]:
    if isinstance(op, BatchedMatrixOperator):
        return _batched_matvec(op)
    A = explicit_matrix(op) if kernels.HAVE_NUMBA else None
    if (
        A is None
        or A.layout != torch.sparse_csr
        or A.device.type != "cpu"
        or A.dtype not in (torch.float32, torch.float64)
    ):
        return op.matvec
    indptr, indices, data = kernels.csr_arrays(A)

    def matvec(x: torch.Tensor) -> torch.Tensor:
        if (
            x.requires_grad
            or x.dtype != A.dtype
            or x.device != A.device
            or x.ndim not in (1, 2)
            or x.shape[0] != op.shape[1]
        ):
            return op.matvec(x)  # the general product (or its shape error)
        x = x.contiguous()
        out = torch.empty_like(x)
        if x.ndim == 1:
            kernels.spmv(indptr, indices, data, x.numpy(), out.numpy())
            op.matvecs += 1
        else:
            kernels.spmm(indptr, indices, data, x.numpy(), out.numpy())
            op.matvecs += x.shape[1]
        return out

    return matvec


def _batched_matvec(
    op: BatchedMatrixOperator,
) -> Callable[[torch.Tensor], torch.Tensor]:
    """``op.matvec`` through a compiled loop on CPU (3x ``bmm`` for a batch of
    matrix-vector products); the block keeps the ``(B, n)`` memory layout that
    :func:`~itersolve.linear_solve` gives it, so nothing is copied."""
    A = op.matrices
    if not kernels.use_kernels(A):
        return op.matvec
    matrices = A.contiguous().numpy()

    def matvec(x: torch.Tensor) -> torch.Tensor:
        if (
            x.ndim != 2
            or x.shape[1] != op.batch
            or x.shape[0] != op.shape[1]
            or x.requires_grad
            or x.dtype != A.dtype
            or x.device != A.device
        ):
            return op.matvec(x)  # the general product (or its shape error)
        rows = x.T.contiguous()
        out = torch.empty((op.batch, op.shape[0]), dtype=x.dtype)
        kernels.batched_matvec(matrices, rows.numpy(), out.numpy())
        op.matvecs += op.batch
        return out.T

    return matvec


def host_dots(x: torch.Tensor, y: torch.Tensor) -> np.ndarray:
    """Column-wise ``x . y`` as a float64 numpy array of shape ``(k,)``.

    On CPU a compiled loop: torch's reductions and BLAS dots start thread pools
    whose wake-up costs more than the work at Krylov vector sizes.
    """
    if kernels.use_kernels(x):
        if x.ndim == 2 and x.T.is_contiguous() and y.T.is_contiguous():
            # A block stored transposed (a batch of systems): no copy.
            return kernels.row_dots(x.T.numpy(), y.T.numpy())
        a = x.reshape(x.shape[0], -1).contiguous().numpy()
        b = y.reshape(y.shape[0], -1).contiguous().numpy()
        return kernels.column_dots(a, b)
    return np.atleast_1d(torch.linalg.vecdot(x, y, dim=0).cpu().double().numpy())


def dots(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``torch.linalg.vecdot(x, y, dim=0)``, through :func:`host_dots` on CPU."""
    if not kernels.use_kernels(x):
        return torch.linalg.vecdot(x, y, dim=0)
    out = torch.from_numpy(host_dots(x, y)).to(x.dtype)
    return out.reshape(()) if x.ndim == 1 else out


def looks_spd(op: LinearOperator) -> bool:
    """Symmetric with a positive diagonal (a cheap necessary check for SPD).

    Declared structure (``op.symmetric``, ``op.positive_definite``) is taken
    as given; otherwise the explicit matrix is probed once and the verdict
    cached on the operator (keyed on the matrix's version counter, so a torch
    in-place change of the matrix is noticed). ``False`` for matrix-free
    operators, whose structure is unknown.
    """
    if op.positive_definite is not None:
        return op.positive_definite
    if op.symmetric is False:
        return False
    A = fresh_cache(op)
    if A is None or op.shape[0] != op.shape[1]:
        return False
    # Keyed on the declaration: tagged copies share the cache of the original.
    declared = op.symmetric is True
    key = "looks_spd_declared_symmetric" if declared else "looks_spd"
    if key not in op._cache:
        op._cache[key] = _probe_spd(op, A, declared_symmetric=declared)
    return op._cache[key]


_DERIVED = (
    "diagonal",
    "jacobi",
    "looks_spd",
    "looks_spd_declared_symmetric",
    "finite",
)


def fresh_cache(op: LinearOperator) -> torch.Tensor | None:
    """The explicit matrix of ``op``, after dropping what the operator cached
    about its entries (diagonal, Jacobi preconditioner, structure and
    finiteness verdicts) if they changed in place since (torch's version
    counter of the values)."""
    A = explicit_matrix(op)
    if A is None:
        return None
    values = A.values() if A.layout == torch.sparse_csr else A
    key = (id(A), values._version)
    if op._cache.get("matrix_version") != key:
        for name in _DERIVED:
            op._cache.pop(name, None)
        op._cache["matrix_version"] = key
    return A


def _probe_spd(op: LinearOperator, A: torch.Tensor, declared_symmetric: bool) -> bool:
    if not bool((op.diagonal() > 0).all()):
        return False
    return declared_symmetric or asymmetry(A) <= 1e-12


def asymmetry(A: torch.Tensor) -> float:
    """``max|A - A^T| / max|A|`` of a dense (or batched dense) or CSR matrix.

    >>> asymmetry(torch.tensor([[2.0, 1.0], [0.5, 2.0]]))
    0.25
    """
    if A.layout == torch.sparse_csr:
        coo = A.to_sparse_coo()
        diff = (coo - coo.t()).coalesce().values()
        scale = float(A.values().abs().max()) if A.values().numel() else 0.0
        change = float(diff.abs().max()) if diff.numel() else 0.0
    else:
        scale = float(A.abs().amax())
        change = float((A - A.mT).abs().amax())
    return change / scale if scale > 0 else 0.0


def stopping_threshold(
    b: torch.Tensor, rtol: float, atol: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(||b_j||, max(rtol ||b_j||, atol))`` per column: scipy's stopping rule."""
    bnorm = column_norms(b)
    return bnorm, torch.clamp(bnorm * rtol, min=atol)


def check_square(name: str, op: LinearOperator) -> None:
    if op.shape[0] != op.shape[1]:
        raise ValueError(f"{name} needs a square operator, got shape {op.shape}")


def column_scalars(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Per-column scalars shaped to broadcast against ``like`` (vector or block)."""
    return values if like.ndim == 1 else values.reshape(1, -1)


def make_preconditioner(
    M: Any, A: LinearOperator, *, symmetric: bool = False
) -> Preconditioner | None:
    """Turn the ``M`` argument of a solver into ``r -> M r`` (approximate ``A^{-1} r``).

    ``None`` means no preconditioning; ``"jacobi"`` divides by ``diag(A)``; a
    relaxation method (``Jacobi(...)``, ``SSOR(...)``, ``SOR(...)``,
    ``GaussSeidel()``: anything with ``as_preconditioner(A)``) becomes one sweep
    of it on ``A z = r`` from ``z = 0``; a matrix or ``LinearOperator`` is
    applied by matvec; a callable is used as is. ``symmetric=True`` (CG,
    MINRES) refuses a preconditioner known to be nonsymmetric (one whose
    ``symmetric`` attribute is ``False``, such as an SOR sweep).
    """
    if M is None:
        return None
    if hasattr(M, "as_preconditioner") and not isinstance(M, type):
        M = M.as_preconditioner(A)
    if symmetric and getattr(M, "symmetric", None) is False:
        name = type(getattr(M, "method", M)).__name__
        raise ValueError(
            f"M={name} is a nonsymmetric preconditioner (a forward sweep applies "
            "(D/omega + L)^{-1}), but this solver needs a symmetric one: use "
            "SSOR or Jacobi as M here, or GMRES/FlexibleCG with this M"
        )
    if isinstance(M, str):
        if M != "jacobi":
            raise ValueError(
                f"M must be None, 'jacobi', an operator or a callable, got {M!r}"
            )
        fresh_cache(A)
        cached = A._cache.get("jacobi")
        if cached is not None:
            return cached
        diag = A.diagonal()
        if not bool((diag != 0).all()):
            raise ValueError("M='jacobi' needs a diagonal without zeros")
        inv = diag.reciprocal()

        def jacobi(r: torch.Tensor) -> torch.Tensor:
            return r * (inv if r.ndim == inv.ndim else inv[:, None])

        jacobi.inverse_diagonal = inv  # type: ignore[attr-defined]
        A._cache["jacobi"] = jacobi  # like the diagonal it comes from
        return jacobi
    if callable(M) and not isinstance(
        M, (LinearOperator, torch.Tensor, spla.LinearOperator)
    ):
        return M
    op = aslinearoperator(M, dtype=A.dtype, device=A.device)
    if op.shape != (A.shape[1], A.shape[0]):
        raise ValueError(f"M has shape {op.shape}, expected {(A.shape[1], A.shape[0])}")
    return op.matvec
