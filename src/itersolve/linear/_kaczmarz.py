"""Randomized Kaczmarz with row-norm sampling and a cheaply kept residual."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from itersolve._core.frontdoor import (
    DefaultTolerance,
    check_tolerances,
    resolve_rtol,
    tolerance_field,
)
from itersolve._core.iterate import IterativeMethod
from itersolve._core.jit import lazy_njit
from itersolve._core.operators import LinearOperator
from itersolve._core.solution import Status
from itersolve._core.stall import STALL_WINDOW
from itersolve.linear._problem import (
    ROW_ACTION_RTOL,
    LinearProblem,
    column_norms,
    explicit_matrix,
)

_SAMPLINGS = ("row-norm", "uniform")
_EMPTY: dict[torch.dtype, np.ndarray] = {
    torch.float32: np.zeros((1, 1), np.float32),
    torch.float64: np.zeros((1, 1), np.float64),
}
_RESIDUALS = ("sweep", "incremental")


# numba compiles the sequential row loops; without it they run in Python.
@lazy_njit(cache=True, nogil=True)
def _kaczmarz_rows(
    A: np.ndarray,
    b: np.ndarray,
    gram: np.ndarray,
    inv_norm2: np.ndarray,
    rows: np.ndarray,
    x: np.ndarray,
    r: np.ndarray,
    active: np.ndarray,
    threshold2: np.ndarray,
    incremental: bool,
) -> int:
    """Kaczmarz projections onto the rows ``rows``, in order; returns rows used.

    ``incremental=False``: ``r_i = b_i - a_i^T x`` from ``x`` (``gram`` and ``r``
    unused). ``incremental=True``: ``r = b - A x`` is kept with a column of
    ``gram = A A^T`` and the loop stops after the first row at which every
    column meets ``||r_j||^2 <= threshold2_j``.
    """
    m, n = A.shape
    k = x.shape[1]
    remaining = 0
    for j in range(k):
        if active[j]:
            remaining += 1
    for t in range(rows.shape[0]):
        i = rows[t]
        w = inv_norm2[i]
        for j in range(k):
            if not active[j]:
                continue
            if incremental:
                alpha = r[i, j] * w
            else:
                res = b[i, j]
                for c in range(n):
                    res -= A[i, c] * x[c, j]
                alpha = res * w
            for c in range(n):
                x[c, j] += alpha * A[i, c]
            if incremental:
                total = 0.0
                for q in range(m):
                    v = r[q, j] - alpha * gram[i, q]
                    r[q, j] = v
                    total += v * v
                if total <= threshold2[j]:
                    active[j] = False
                    remaining -= 1
        if remaining == 0:
            return t + 1
    return rows.shape[0]


@lazy_njit(cache=True, nogil=True)
def _kaczmarz_rows_csr(
    indptr: np.ndarray,
    indices: np.ndarray,
    data: np.ndarray,
    b: np.ndarray,
    gram_ptr: np.ndarray,
    gram_idx: np.ndarray,
    gram_val: np.ndarray,
    inv_norm2: np.ndarray,
    rows: np.ndarray,
    x: np.ndarray,
    r: np.ndarray,
    active: np.ndarray,
    threshold2: np.ndarray,
    incremental: bool,
) -> int:
    """:func:`_kaczmarz_rows` on a CSR matrix: ``O(nnz(a_i))`` per row.

    Sums run over the stored entries in column order, the order of the dense
    loop without its exact zeros, so both give the same iterates. With
    ``incremental=True`` the residual moves along the sparse row ``i`` of
    ``A A^T`` (``gram_*``) and its squared norms are kept as running sums,
    recomputed exactly at each call (the true residual confirms success).
    """
    m = r.shape[0]
    k = x.shape[1]
    total = np.zeros(k)
    remaining = 0
    for j in range(k):
        if active[j]:
            remaining += 1
            if incremental:
                for q in range(m):
                    total[j] += r[q, j] * r[q, j]
    for t in range(rows.shape[0]):
        i = rows[t]
        w = inv_norm2[i]
        for j in range(k):
            if not active[j]:
                continue
            if incremental:
                alpha = r[i, j] * w
            else:
                res = b[i, j]
                for p in range(indptr[i], indptr[i + 1]):
                    res -= data[p] * x[indices[p], j]
                alpha = res * w
            for p in range(indptr[i], indptr[i + 1]):
                x[indices[p], j] += alpha * data[p]
            if incremental:
                for p in range(gram_ptr[i], gram_ptr[i + 1]):
                    q = gram_idx[p]
                    old = r[q, j]
                    v = old - alpha * gram_val[p]
                    r[q, j] = v
                    total[j] += v * v - old * old
                if total[j] <= threshold2[j]:
                    active[j] = False
                    remaining -= 1
        if remaining == 0:
            return t + 1
    return rows.shape[0]


def make_generator(seed: int | torch.Generator) -> torch.Generator:
    """A CPU generator from ``seed`` (an int, or a generator used as is)."""
    if isinstance(seed, torch.Generator):
        return seed
    return torch.Generator().manual_seed(int(seed))


def check_seed(seed: Any) -> None:
    if isinstance(seed, torch.Generator):
        return
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(
            f"seed must be a non-negative int or a torch.Generator, got {seed!r}"
        )


def row_matrix(
    op: LinearOperator, dtype: torch.dtype, device: torch.device
) -> torch.Tensor:
    """The rows of ``op``: its dense or sparse CSR matrix on ``device`` (a sparse
    matrix stays sparse), or the dense matrix of a matrix-free operator."""
    matrix = explicit_matrix(op)
    if matrix is None or matrix.ndim != 2:
        return op.to_dense().to(dtype=dtype, device=device).contiguous()
    matrix = matrix.to(dtype=dtype, device=device)
    return matrix if matrix.layout == torch.sparse_csr else matrix.contiguous()


def csr_rows(A: torch.Tensor) -> torch.Tensor:
    """The row index of each stored entry of a CSR tensor."""
    crow = A.crow_indices()
    rows = torch.arange(A.shape[0], device=A.device)
    return torch.repeat_interleave(rows, crow.diff())


def squared_row_norms(A: torch.Tensor) -> torch.Tensor:
    """``||a_i||^2`` per row, from the stored entries of a CSR matrix."""
    if A.layout != torch.sparse_csr:
        return (A * A).sum(dim=1)
    values = A.values()
    out = torch.zeros(A.shape[0], dtype=A.dtype, device=A.device)
    return out.index_add_(0, csr_rows(A), values * values)


def row_product(A: torch.Tensor, X: torch.Tensor) -> torch.Tensor:
    """``A @ X`` for a dense or CSR ``A`` and a block ``X``."""
    return torch.sparse.mm(A, X) if A.layout == torch.sparse_csr else A @ X


def entries_finite(A: torch.Tensor) -> bool:
    values = A.values() if A.layout == torch.sparse_csr else A
    return bool(torch.isfinite(values).all())


def sampling_weights(squared_norms: torch.Tensor, sampling: str) -> torch.Tensor:
    """Row probabilities: proportional to ``||a_i||^2`` or uniform."""
    if sampling == "uniform" or not bool((squared_norms > 0).any()):
        return torch.ones_like(squared_norms)
    return squared_norms


@dataclass
class KaczmarzState:
    x: torch.Tensor
    x2: torch.Tensor
    """``x`` as ``(n, k)`` (a view: updated in place by the kernels)."""
    A: torch.Tensor
    """Dense, or sparse CSR (never densified)."""
    b2: torch.Tensor
    r: torch.Tensor
    gram: torch.Tensor | None
    """``A A^T`` for the incremental residual (CSR when ``A`` is)."""
    weights: torch.Tensor
    inv_norm2: torch.Tensor
    residual: torch.Tensor
    threshold: torch.Tensor
    bnorm: torch.Tensor
    generator: torch.Generator
    row_operations: int = 0
    steps: int = 0
    verified: bool = False
    status: Status | None = None


@dataclass(frozen=True, kw_only=True)
class RandomizedKaczmarz(IterativeMethod):
    """Randomized Kaczmarz: project onto one sampled row equation at a time.

    Row ``i`` is drawn with probability ``||a_i||^2 / ||A||_F^2`` (Strohmer &
    Vershynin) or uniformly, and ``x <- x + (b_i - a_i^T x) / ||a_i||^2 a_i``. For
    a consistent system (square nonsingular, or overdetermined with ``b`` in the
    range of ``A``) the error contracts in expectation by
    ``1 - sigma_min(A)^2 / ||A||_F^2`` per row; for an inconsistent system it
    stalls at a distance from the least-squares solution (use ``lsqr`` there).
    ``A`` may be rectangular. One driver step is ``rows_per_step`` row
    projections (a sweep of ``m`` rows, at least 1024, by default), run by a
    compiled numba loop on CPU (the computation is sequential; CUDA inputs are
    processed on the CPU and the answer returned on their device). A sparse
    ``A`` (scipy.sparse or torch CSR/COO) is never densified: a row projection
    reads the row's stored entries, ``O(nnz(a_i))``, and row norms come from
    them; the iterates are those of the dense run.
    Several right-hand sides ``b`` of shape ``(m, k)`` share the sampled rows.

    Compare with ``scipy.sparse.linalg.lsqr`` (Krylov, deterministic) on
    consistent overdetermined systems, and with :class:`SketchAndProject` (block
    projections, fewer and heavier steps).

    Stopping rule, per column ``j`` (the inner-accuracy rule of sketched SQP)::

        ||b_j - A x_j|| <= max(rtol * ||b_j||, atol)

    With ``residual="incremental"`` the residual ``r = b - A x`` is updated after
    every row in ``O(m)`` from a column of ``A A^T`` (formed once in ``init``:
    ``O(m^2)`` memory, ``O(m^2 n)`` work) and the run stops at the first row where
    the rule holds. With ``residual="sweep"`` (default, no extra memory) the rule
    is checked once per step on the true residual, ``O(mn)`` per step, i.e.
    ``O(n)`` per row like the projection itself. Success is always confirmed on
    the true residual ``b - A x``.

    Parameters
    ----------
    rtol, atol
        Relative and absolute tolerances. ``rtol`` defaults to 1e-6 (an
        inner-solve accuracy), lifted to ``100 eps`` in low precision (float32:
        1.2e-5); ``None`` means that default (see :mod:`itersolve.linear`).
    sampling
        ``"row-norm"`` (default) or ``"uniform"``. Zero rows are never used.
    residual
        ``"sweep"`` or ``"incremental"``, see the stopping rule.
    rows_per_step
        Row projections per driver step; ``None`` uses ``max(m, 1024)`` (a sweep
        of ``m`` rows, but never so few that the driver's per-step overhead
        dominates the compiled loop).
    seed
        Seed of the row sampling (an int or a ``torch.Generator``); the same seed
        gives the same iterates.

    References
    ----------
    Kaczmarz (1937); Strohmer & Vershynin, "A randomized Kaczmarz algorithm with
    exponential convergence", J. Fourier Anal. Appl. 15 (2009); Hong, Na, Mahoney
    & Kolar, "Constrained Optimization via Exact Augmented Lagrangian and
    Randomized Iterative Sketching", ICML 2023 (inner solver of AdaSketch-Newton).

    Examples
    --------
    >>> import numpy as np, itersolve
    >>> rng = np.random.default_rng(0)
    >>> A = rng.standard_normal((60, 10)); b = A @ np.ones(10)
    >>> method = itersolve.linear.RandomizedKaczmarz(rtol=1e-10)
    >>> sol = itersolve.linear_solve(A, b, method)
    >>> sol.success, np.allclose(sol.x, np.ones(10))
    (True, True)
    """

    rtol: float = DefaultTolerance(ROW_ACTION_RTOL)
    atol: float = 0.0
    sampling: str = "row-norm"
    residual: str = "sweep"
    rows_per_step: int | None = None
    seed: int | torch.Generator = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        tolerance_field(self, ROW_ACTION_RTOL)
        check_tolerances(self.rtol, self.atol)
        if self.sampling not in _SAMPLINGS:
            raise ValueError(
                f"sampling must be one of {_SAMPLINGS}, got {self.sampling!r}"
            )
        if self.residual not in _RESIDUALS:
            raise ValueError(
                f"residual must be one of {_RESIDUALS}, got {self.residual!r}"
            )
        if self.rows_per_step is not None and (
            isinstance(self.rows_per_step, bool)
            or not isinstance(self.rows_per_step, int)
            or self.rows_per_step < 1
        ):
            raise ValueError(
                f"rows_per_step must be a positive int or None, got "
                f"{self.rows_per_step!r}"
            )
        check_seed(self.seed)

    def default_max_steps(self, problem: LinearProblem) -> int:
        return 1000

    def default_stall_window(self, problem: LinearProblem) -> int:
        # A step of few rows may leave x unchanged (rows already satisfied): a
        # window spans a sweep of the m rows.
        rows = self.rows_per_step or problem.A.shape[0]
        return max(STALL_WINDOW, -(-problem.A.shape[0] // rows))

    def init(self, problem: LinearProblem, x0: torch.Tensor) -> KaczmarzState:
        if problem.b.is_complex():
            raise TypeError("RandomizedKaczmarz supports real systems only")
        cpu = torch.device("cpu")
        A = row_matrix(problem.A, problem.b.dtype, cpu)
        b2 = problem.b.to(cpu).reshape(A.shape[0], -1).contiguous()
        x2 = x0.to(cpu).clone().reshape(A.shape[1], -1).contiguous()
        x = x2[:, 0] if x0.ndim == 1 else x2
        squared = squared_row_norms(A)
        inv_norm2 = torch.where(squared > 0, 1.0 / squared, torch.zeros_like(squared))
        bnorm = column_norms(b2)
        rtol = resolve_rtol(self.rtol, b2.dtype)
        threshold = torch.clamp(bnorm * rtol, min=self.atol)
        r = b2 - row_product(A, x2)
        state = KaczmarzState(
            x=x,
            x2=x2,
            A=A,
            b2=b2,
            r=r,
            gram=None,
            weights=sampling_weights(squared, self.sampling),
            inv_norm2=inv_norm2,
            residual=column_norms(r),
            threshold=threshold,
            bnorm=bnorm,
            generator=make_generator(self.seed),
        )
        if not entries_finite(A):
            state.status = Status.NONFINITE_INPUT
        elif self.residual == "incremental":
            state.gram = _gram(A)
        return state

    def step(self, problem: LinearProblem, state: KaczmarzState) -> KaczmarzState:
        m = state.A.shape[0]
        count = self.rows_per_step or max(m, 1024)
        rows = torch.multinomial(
            state.weights, count, replacement=True, generator=state.generator
        ).numpy()
        active = (state.residual > state.threshold).numpy()
        common: tuple[Any, ...] = (
            state.inv_norm2.numpy(),
            rows,
            state.x2.numpy(),
            state.r.numpy(),
            active,
            (state.threshold**2).numpy(),
            state.gram is not None,
        )
        if state.A.layout == torch.sparse_csr:
            gram = state.A if state.gram is None else state.gram
            used = _kaczmarz_rows_csr(
                *_csr_arrays(state.A), state.b2.numpy(), *_csr_arrays(gram), *common
            )
        else:
            gram_dense = (
                _EMPTY[state.A.dtype] if state.gram is None else state.gram.numpy()
            )
            used = _kaczmarz_rows(
                state.A.numpy(), state.b2.numpy(), gram_dense, *common
            )
        state.row_operations += int(used)
        state.steps += 1
        state.r = state.b2 - row_product(state.A, state.x2)
        problem.A.matvecs += state.x2.shape[1]  # the true residual, as a matvec
        state.residual = column_norms(state.r)
        state.verified = not bool((state.residual > state.threshold).any())
        return state

    def terminate(
        self, problem: LinearProblem, state: KaczmarzState
    ) -> tuple[bool, Status]:
        if state.status is not None:
            return True, state.status
        if state.verified or not bool((state.residual > state.threshold).any()):
            return True, Status.SUCCESS
        return False, Status.SUCCESS

    def metrics(self, problem: LinearProblem, state: KaczmarzState) -> dict[str, float]:
        relative = state.residual / state.bnorm.clamp(
            min=torch.finfo(state.bnorm.dtype).tiny
        )
        return {
            "residual_norm": float(state.residual.max()),
            "relative_residual": float(relative.max()),
            "row_operations": float(state.row_operations),
        }

    def stats(self, problem: LinearProblem, state: KaczmarzState) -> dict[str, float]:
        m, n = state.A.shape
        row, gram_row = float(n), float(m)
        if state.A.layout == torch.sparse_csr:  # mean stored entries per row
            row = state.A.values().numel() / m
            if state.gram is not None:
                gram_row = state.gram.values().numel() / m
        # dot + axpy per row; the incremental residual adds an axpy + norm in R^m.
        per_row = 4 * row if state.gram is None else 2 * row + 4 * gram_row
        return {
            "row_operations": state.row_operations,
            "flops": float(state.row_operations * per_row * state.x2.shape[1]),
        }


def _gram(A: torch.Tensor) -> torch.Tensor:
    """``A A^T`` (CPU): CSR from scipy's sparse product when ``A`` is CSR."""
    if A.layout != torch.sparse_csr:
        return (A @ A.T).contiguous()
    arrays = _csr_arrays(A)
    csr = sp.csr_array(arrays[::-1], shape=tuple(A.shape))
    gram = sp.csr_array(csr @ csr.T)
    gram.sort_indices()
    return torch.sparse_csr_tensor(
        torch.from_numpy(gram.indptr.astype(np.int64)),
        torch.from_numpy(gram.indices.astype(np.int64)),
        torch.from_numpy(gram.data),
        size=gram.shape,
        check_invariants=False,
    )


def _csr_arrays(A: torch.Tensor) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """numpy views ``(indptr, indices, data)`` of a CPU CSR tensor."""
    return (
        A.crow_indices().numpy(),
        A.col_indices().numpy(),
        A.values().numpy(),
    )
