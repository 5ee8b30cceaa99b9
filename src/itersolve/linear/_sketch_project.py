"""Sketch-and-project with Gaussian or row-block sketches (block Kaczmarz)."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from itersolve._core.frontdoor import (
    DefaultTolerance,
    check_tolerances,
    resolve_rtol,
    tolerance_field,
)
from itersolve._core.iterate import IterativeMethod
from itersolve._core.solution import Status
from itersolve._core.stall import STALL_WINDOW
from itersolve.linear._kaczmarz import (
    check_seed,
    entries_finite,
    make_generator,
    row_matrix,
    row_product,
    sampling_weights,
    squared_row_norms,
)
from itersolve.linear._problem import ROW_ACTION_RTOL, LinearProblem, column_norms

_SKETCHES = ("gaussian", "block")
_SAMPLINGS = ("row-norm", "uniform")


@dataclass
class SketchState:
    x: torch.Tensor
    x2: torch.Tensor
    A: torch.Tensor
    """Dense, or sparse CSR (never densified)."""
    b2: torch.Tensor
    r: torch.Tensor
    weights: torch.Tensor
    residual: torch.Tensor
    threshold: torch.Tensor
    bnorm: torch.Tensor
    generator: torch.Generator
    sketch_size: int
    steps: int = 0
    row_operations: int = 0
    flops: float = 0.0
    replacements: int = 0
    verified: bool = False
    failed_verification: float = float("inf")
    status: Status | None = None
    queue: list[torch.Tensor] = field(default_factory=list)
    """Pre-drawn row blocks (drawn 64 steps at a time)."""
    transposed: torch.Tensor | None = None
    """``A^T`` as a sparse COO tensor, for Gaussian sketches of a sparse ``A``."""


@dataclass(frozen=True, kw_only=True)
class SketchAndProject(IterativeMethod):
    """Sketch-and-project: project onto a random sketch of the equations per step.

    Each step draws a sketch ``S`` (``m x s``) and moves ``x`` to the nearest point
    (in the Euclidean norm) satisfying ``S^T A x = S^T b``::

        x <- x + A^T S (S^T A A^T S)^+ S^T r,    r = b - A x.

    ``sketch="block"`` takes ``S`` = ``s`` distinct rows of the identity, drawn
    with probability proportional to ``||a_i||^2`` (or uniformly): randomized block
    Kaczmarz. ``sketch="gaussian"`` takes ``S`` with i.i.d. ``N(0, 1)`` entries
    (every step touches every row, ``O(s m n)``). The residual ``r`` is kept
    incrementally (``r <- r - A d``, no recomputation of ``b - A x``) and replaced
    by the true residual whenever it claims convergence. Works for rectangular
    ``A`` and consistent systems; batched over the columns of ``b`` (one sketch
    for all columns). Everything is torch: it runs on CUDA as well, and a sparse
    ``A`` (scipy.sparse or torch CSR/COO) is never densified: a block sketch
    gathers its ``s`` rows as a sparse block, a Gaussian sketch forms the
    dense ``s x n`` product ``S^T A``, and ``r <- r - A d`` is a sparse product.

    Compare with :class:`RandomizedKaczmarz` (``s = 1``, cheapest steps) and with
    ``scipy.sparse.linalg.lsqr``.

    Stopping rule, per column ``j`` (the inner-accuracy rule of sketched SQP)::

        ||b_j - A x_j|| <= max(rtol * ||b_j||, atol)

    confirmed on the true residual before success is declared.

    Parameters
    ----------
    rtol, atol
        Relative and absolute tolerances. ``rtol`` defaults to 1e-6 (an
        inner-solve accuracy), lifted to ``100 eps`` in low precision (float32:
        1.2e-5); ``None`` means that default (see :mod:`itersolve.linear`).
    sketch
        ``"block"`` (default) or ``"gaussian"``.
    sketch_size
        ``s``, the number of rows of the sketched system (clipped to ``m``).
    sampling
        Row probabilities of the block sketch: ``"row-norm"`` or ``"uniform"``.
    seed
        Seed of the sketches (an int or a ``torch.Generator`` on the device of
        ``b``); the same seed gives the same iterates.

    References
    ----------
    Gower & Richtárik, "Randomized iterative methods for linear systems", SIAM J.
    Matrix Anal. Appl. 36 (2015); Needell & Tropp, "Paved with good intentions:
    analysis of a randomized block Kaczmarz method", Linear Algebra Appl. 441
    (2014); Hong, Na, Mahoney & Kolar, ICML 2023 (Gaussian-sketch inner solver).

    Examples
    --------
    >>> import numpy as np, itersolve
    >>> rng = np.random.default_rng(0)
    >>> A = rng.standard_normal((80, 20)); b = A @ np.ones(20)
    >>> method = itersolve.linear.SketchAndProject(sketch_size=10, rtol=1e-10)
    >>> sol = itersolve.linear_solve(A, b, method)
    >>> sol.success, np.allclose(sol.x, np.ones(20))
    (True, True)
    """

    rtol: float = DefaultTolerance(ROW_ACTION_RTOL)
    atol: float = 0.0
    sketch: str = "block"
    sketch_size: int = 32
    sampling: str = "row-norm"
    seed: int | torch.Generator = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        tolerance_field(self, ROW_ACTION_RTOL)
        check_tolerances(self.rtol, self.atol)
        if self.sketch not in _SKETCHES:
            raise ValueError(f"sketch must be one of {_SKETCHES}, got {self.sketch!r}")
        if (
            isinstance(self.sketch_size, bool)
            or not isinstance(self.sketch_size, int)
            or self.sketch_size < 1
        ):
            raise ValueError(
                f"sketch_size must be a positive int, got {self.sketch_size!r}"
            )
        if self.sampling not in _SAMPLINGS:
            raise ValueError(
                f"sampling must be one of {_SAMPLINGS}, got {self.sampling!r}"
            )
        check_seed(self.seed)

    def default_max_steps(self, problem: LinearProblem) -> int:
        # The row budget of RandomizedKaczmarz: 1000 sweeps of the m rows.
        m = problem.A.shape[0]
        return 1000 * max(1, -(-m // min(self.sketch_size, m)))

    def default_stall_window(self, problem: LinearProblem) -> int:
        # A block of satisfied rows leaves x unchanged: a window spans a sweep.
        m = problem.A.shape[0]
        return max(STALL_WINDOW, -(-m // min(self.sketch_size, m)))

    def init(self, problem: LinearProblem, x0: torch.Tensor) -> SketchState:
        if problem.b.is_complex():
            raise TypeError("SketchAndProject supports real systems only")
        A = row_matrix(problem.A, problem.b.dtype, problem.b.device)
        m, n = A.shape
        b2 = problem.b.reshape(m, -1)
        x2 = x0.clone().reshape(n, -1)
        x = x2[:, 0] if x0.ndim == 1 else x2
        r = b2 - row_product(A, x2)
        bnorm = column_norms(b2)
        weights = sampling_weights(squared_row_norms(A), self.sampling)
        generator = (
            self.seed
            if isinstance(self.seed, torch.Generator)
            else _device_generator(self.seed, A.device)
        )
        state = SketchState(
            x=x,
            x2=x2,
            A=A,
            b2=b2,
            r=r,
            weights=weights,
            residual=column_norms(r),
            threshold=torch.clamp(
                bnorm * resolve_rtol(self.rtol, A.dtype), min=self.atol
            ),
            bnorm=bnorm,
            generator=generator,
            sketch_size=min(self.sketch_size, int((weights > 0).sum())),
        )
        if not entries_finite(A):
            state.status = Status.NONFINITE_INPUT
        elif A.layout == torch.sparse_csr and self.sketch == "gaussian":
            state.transposed = A.to_sparse_coo().t().coalesce()
        return state

    def step(self, problem: LinearProblem, state: SketchState) -> SketchState:
        A, s = state.A, state.sketch_size
        m, n = A.shape
        k = state.x2.shape[1]
        SA: torch.Tensor
        if self.sketch == "block":
            if not state.queue:
                state.queue = list(_draw_blocks(state.weights, s, state.generator))
            rows = state.queue.pop()
            Sr = state.r[rows]
            if A.layout == torch.sparse_csr:
                SA = _row_block(A, rows)
                gram = torch.sparse.mm(SA, SA.t()).to_dense()
            else:
                SA = A[rows]
                gram = SA @ SA.T
            state.flops += 2.0 * s * n * (s + 2 * k)
        else:
            S = torch.randn(
                m, s, dtype=A.dtype, device=A.device, generator=state.generator
            )
            if state.transposed is not None:
                SA = torch.sparse.mm(state.transposed, S).T
            else:
                SA = S.T @ A
            Sr = S.T @ state.r
            gram = SA @ SA.T
            state.flops += 2.0 * s * m * (n + k) + 2.0 * s * n * (s + 2 * k)
        # Minimum-norm solution of the sketched system (S^T A) d = S^T r; the
        # pseudo-inverse only when the sketched rows are linearly dependent.
        factor, info = torch.linalg.cholesky_ex(gram)
        if int(info) == 0:
            lam = torch.cholesky_solve(Sr, factor)
        else:
            lam = torch.linalg.pinv(gram, hermitian=True) @ Sr
        active = (state.residual > state.threshold).to(A.dtype)
        step = torch.sparse.mm(SA.t(), lam) if SA.is_sparse else SA.T @ lam
        d = step * active
        state.x2.add_(d)
        state.r.sub_(row_product(A, d))
        problem.A.matvecs += k
        state.flops += 2.0 * m * n * k
        state.row_operations += s
        state.steps += 1
        state.residual = column_norms(state.r)
        if not bool((state.residual > state.threshold).any()):
            self._verify(problem, state)
        return state

    def _verify(self, problem: LinearProblem, state: SketchState) -> None:
        true_r = state.b2 - row_product(state.A, state.x2)
        problem.A.matvecs += state.x2.shape[1]
        true_norm = column_norms(true_r)
        state.r, state.residual = true_r, true_norm
        if bool((true_norm <= state.threshold).all()):
            state.verified = True
            return
        worst = float((true_norm / state.threshold.clamp(min=1e-300)).max())
        if worst >= 0.9 * state.failed_verification:
            state.status = Status.STAGNATION
        state.failed_verification = worst
        state.replacements += 1

    def terminate(
        self, problem: LinearProblem, state: SketchState
    ) -> tuple[bool, Status]:
        if state.status is not None:
            return True, state.status
        if state.verified or (
            state.steps == 0 and not bool((state.residual > state.threshold).any())
        ):
            return True, Status.SUCCESS
        return False, Status.SUCCESS

    def metrics(self, problem: LinearProblem, state: SketchState) -> dict[str, float]:
        relative = state.residual / state.bnorm.clamp(
            min=torch.finfo(state.bnorm.dtype).tiny
        )
        return {
            "residual_norm": float(state.residual.max()),
            "relative_residual": float(relative.max()),
        }

    def stats(self, problem: LinearProblem, state: SketchState) -> dict[str, float]:
        return {
            "row_operations": state.row_operations,
            "flops": state.flops,
            "residual_replacements": state.replacements,
        }


def _draw_blocks(
    weights: torch.Tensor, size: int, generator: torch.Generator, steps: int = 64
) -> torch.Tensor:
    """``steps`` blocks of ``size`` distinct rows, row ``i`` drawn with weight
    ``w_i`` (Efraimidis–Spirakis: the ``size`` smallest ``Exp(1) / w_i``)."""
    u = torch.rand(
        steps,
        weights.shape[0],
        dtype=weights.dtype,
        device=weights.device,
        generator=generator,
    )
    keys = -torch.log1p(-u) / weights
    # Reverse so that pop() from the end hands out the blocks in drawing order.
    return keys.topk(size, dim=1, largest=False).indices.flip(0)


def _device_generator(seed: int, device: torch.device) -> torch.Generator:
    if device.type == "cpu":
        return make_generator(seed)
    return torch.Generator(device=device).manual_seed(int(seed))


def _row_block(A: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """Rows ``rows`` of the CSR tensor ``A`` as a sparse COO block (``s x n``),
    gathered from the stored entries of those rows only."""
    crow, values = A.crow_indices(), A.values()
    starts = crow[rows]
    counts = crow[rows + 1] - starts
    owner = torch.repeat_interleave(
        torch.arange(rows.shape[0], device=A.device), counts
    )
    first = torch.cumsum(counts, 0) - counts
    positions = starts[owner] + torch.arange(owner.shape[0], device=A.device)
    positions -= first[owner]
    indices = torch.stack([owner, A.col_indices()[positions].to(owner.dtype)])
    return torch.sparse_coo_tensor(
        indices,
        values[positions],
        (rows.shape[0], A.shape[1]),
        check_invariants=False,
    ).coalesce()
