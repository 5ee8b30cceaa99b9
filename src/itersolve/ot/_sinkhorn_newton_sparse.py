"""Sinkhorn-Newton-Sparse: Sinkhorn warm start, then sparsified Newton on the dual."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import torch

from itersolve._core.frontdoor import DefaultTolerance, resolve_rtol
from itersolve._core.iterate import IterativeMethod
from itersolve._core.operators import LinearOperator
from itersolve._core.solution import Status
from itersolve.linear import CG, inner_solve
from itersolve.ot._problem import (
    TransportProblem,
    gibbs_plan,
    log_marginal,
    row_error,
    sinkhorn_sweep,
)
from itersolve.ot._sinkhorn import check_common

SINKHORN, NEWTON = 0.0, 1.0
_NEWTON_SOLVER = CG(rtol=1e-2, M="jacobi")
# keep_per_row="auto": start, cap and target of the adaptive keep count.
AUTO_START, AUTO_MAX = 4.0, 64.0
AUTO_DROPPED = 1e-4
# Accepted Newton steps without halving the phase's best error that count as a
# stall (an error that oscillates instead of falling; slower than 0.966 per
# step, about Sinkhorn's pace on the hard cases).
NEWTON_STALL = 20


@dataclass
class SinkhornNewtonSparseState:
    x: torch.Tensor
    """Stacked log-scalings ``[u, v]``."""
    plan: torch.Tensor
    trial: torch.Tensor
    log_rowsum: torch.Tensor
    error: torch.Tensor
    sweeps_left: int
    plan_ready: bool = False
    rows: torch.Tensor | None = None
    cols: torch.Tensor | None = None
    dual: float = float("nan")
    stage: float = SINKHORN
    no_progress: int = 0
    newton_best: float = float("inf")
    cg_cap: int = 0
    last_cg_capped: bool = False
    newton_stalled: int = 0
    fallback_sweeps: int = 0
    fallback_error: float = float("inf")
    status: Status | None = None
    sinkhorn_steps: int = 0
    newton_steps: int = 0
    cg_steps: int = 0
    line_search_trials: int = 0
    fallbacks: int = 0
    last_cg_steps: int = 0
    last_step_size: float = float("nan")
    last_density: float = float("nan")
    keep_per_row: float = AUTO_START
    last_dropped: float = float("nan")


@dataclass(frozen=True, kw_only=True)
class SinkhornNewtonSparse(IterativeMethod):
    """Sinkhorn-Newton-Sparse (SNS): Sinkhorn warm start, then sparse Newton steps.

    Compare with ``ot.sinkhorn(a, b, M, reg, method="sinkhorn_log")`` (POT; same
    problem, same ``reg``): SNS reaches machine-precision marginals in tens of
    iterations where Sinkhorn needs thousands at small ``reg``.

    Stage 1 runs ``n_sinkhorn`` log-domain Sinkhorn sweeps. Stage 2 maximises the
    concave dual ``D(u, v) = <a, u> + <b, v> - sum_ij P_ij`` (log-scalings,
    ``P_ij = exp(u_i + v_j - C_ij / reg)``) by Newton steps: the negative Hessian
    ``H = [[diag(P 1), P], [P^T, diag(P^T 1)]]`` is sparsified by keeping the
    ``keep_per_row * n`` largest entries of ``P`` (the paper's density
    ``lambda = keep_per_row / m``, threshold rho = that order statistic) with the
    diagonal taken from the **full** plan, so the sparsified matrix stays
    diagonally dominant (positive semi-definite). The direction solves
    ``H_sparse d = grad D`` with ``linear_solver`` (Jacobi-preconditioned
    conjugate gradients by default, the shared :class:`~itersolve.linear.CG`); the
    null direction ``(1, -1)`` of ``H``, along which ``D`` is constant, is
    projected out of the right-hand side and of ``d``.
    A backtracking line search on ``alpha in {1, 1/2, ...}`` accepts when ``D``
    increases by the Armijo amount **or** the marginal error decreases; the second
    test keeps the iteration moving where differences of ``D`` are below float64
    resolution (the paper's line search stalls there). When no step size is
    accepted, three accepted steps in a row fail to reduce the error, or 20 accepted
    steps fail to halve the best error of the Newton phase (an error that oscillates
    instead of falling), ``fallback="sinkhorn"`` runs ``n_sinkhorn`` more Sinkhorn
    sweeps and then resumes Newton (``fallback=None`` stops with ``STAGNATION``). A
    fallback reached without the error having halved since the previous one doubles
    the next Sinkhorn phase: on dual plateaus (L1 costs at small ``reg``, where the
    Hessian has near-null directions besides ``(1, -1)`` and even exact Newton steps
    shrink to ``alpha ~ 1e-10``) the futile Newton attempts then take a vanishing
    share of the steps, the run progresses like Sinkhorn until the plateau is left,
    and Newton takes over again from there.

    Every sweep and every Newton step is one step of the driver, so
    ``num_steps = sinkhorn_steps + newton_steps``.

    Stopping rule::

        ||P 1 - a||_1 + ||P^T 1 - b||_1 <= tol

    ``Status.STAGNATION`` when the log-scalings stop changing at rounding level
    (the driver's frozen-iterate check, ``stall_window``; the way a float32 run
    ends: float32 cannot reach 1e-10).

    Parameters
    ----------
    tol
        Target L1 marginal error (the paper runs to machine precision).
    n_sinkhorn
        Warm-start sweeps ``N1`` (paper: 20 for random costs and L2 images,
        700 for the L1 image cost whose optimal plan is not unique).
    keep_per_row
        Entries of the plan kept per row on average: the ``keep_per_row * n``
        largest entries overall (the paper's density ``lambda = keep_per_row /
        m``; its ``lambda = 2/n`` is 2, which can stall at linear speed), or
        ``"auto"`` (default): start at 4 and double, up to 64, whenever

        * the dropped mass exceeds ``1e-4`` of the plan's (checked before each
          step). The sparsified matrix is ``M = H - E`` with ``E >= 0`` the
          dropped entries and the full row/column sums on the diagonal, so
          ``||D^-1 E||_inf`` (``D`` that diagonal) is the largest dropped
          fraction of a row's mass, and the local rate of the inexact Newton
          iteration, ``||I - M^-1 H|| = ||M^-1 E||``, is that fraction times
          up to the conditioning of ``H`` on the complement of ``(1, -1)``.
          On MNIST-like L2 (20x20, ``reg = 1e-3``) 4 per row drops 7e-3 of
          the mass and converges linearly at 0.93 per step, i.e. the rate is
          ~100x the dropped fraction; ``1e-4`` then gives ~1e-2 per step;
        * a full step (``alpha = 1``) fails to halve the marginal error (the
          linear regime the dropped entries cause: Newton's own local
          convergence is quadratic), or no step size is accepted.

        The count never shrinks within a run. Fixed counts: near-permutation
        plans (random assignment) converge with 4 to 8; smooth W2 problems,
        whose entropic plan spreads each row over a neighbourhood, converge
        linearly below ~15 (MNIST-like 28x28 at ``reg = 1e-3``: 155 Newton
        steps at 8, 14 at 15); non-unique (L1) costs need more still. The
        value used last is ``stats["keep_per_row"]``.
    linear_solver
        The solver of the Newton system ``H_sparse d = grad D``, run through
        :func:`itersolve.linear.inner_solve` on the explicit sparse matrix
        (default ``CG(rtol=1e-2, M="jacobi")``: stop at ``||r|| <= 0.01
        ||grad D||``). Its ``max_steps`` defaults to ``min(n + m, 500)``,
        raised 4x (up to ``10 (n + m)``) after each full step that came from
        a truncated solve and did not halve the error: near-permutation plans
        give Hessians with many near-null directions on which CG in floating
        point needs several times ``n + m`` steps (random assignment n = 100,
        reg = 1/1200: with the fixed cap every direction was truncated and SNS
        oscillated near 1e-6 until MAX_STEPS). The cap is not simply larger
        from the start: on L1 dual plateaus the truncated directions are the
        ones that make progress (the exact Newton steps collapse). Any
        iterate of CG started from 0 is an ascent direction, so a solve stopped
        early (``MAX_STEPS``, or ``NOT_POSITIVE_DEFINITE`` from rounding) still
        gives a usable direction; one that is not an ascent direction triggers
        the fallback.
    armijo
        Sufficient-increase constant ``c1`` of the line search.
    max_halvings
        Step-size halvings before a Newton step counts as failed.
    fallback
        ``"sinkhorn"`` or ``None``.
    patience
        Deprecated, no effect (``DeprecationWarning`` when given).

    References
    ----------
    X. Tang, M. Shavlovsky, H. Rahmanian, E. Tardini, K. K. Thekumparampil,
    T. Xiao, L. Ying, "Accelerating Sinkhorn Algorithm with Sparse Newton
    Iterations", ICLR 2024, arXiv:2401.12253.

    Examples
    --------
    >>> import numpy as np
    >>> from itersolve import ot
    >>> rng = np.random.default_rng(0)
    >>> C = rng.random((30, 30))
    >>> w = np.full(30, 1 / 30)
    >>> sol = ot.transport(w, w, C, ot.SinkhornNewtonSparse(), reg=0.01)
    >>> sol.success, sol.extras["marginal_error"] <= 1e-10
    (True, True)
    """

    tol: float = DefaultTolerance(1e-10)
    n_sinkhorn: int = 20
    keep_per_row: float | str = "auto"
    linear_solver: IterativeMethod = _NEWTON_SOLVER
    armijo: float = 1e-4
    max_halvings: int = 30
    fallback: str | None = "sinkhorn"
    patience: int | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        check_common(self.tol, self.patience)
        if not isinstance(self.n_sinkhorn, int) or self.n_sinkhorn < 0:
            raise ValueError(
                f"n_sinkhorn must be a non-negative int, got {self.n_sinkhorn!r}"
            )
        keep = self.keep_per_row
        if isinstance(keep, str):
            if keep != "auto":
                raise ValueError(
                    f"keep_per_row must be 'auto' or a number > 0, got {keep!r}"
                )
        elif isinstance(keep, bool) or not isinstance(keep, (int, float)):
            raise TypeError(
                f"keep_per_row must be 'auto' or a number > 0, got {keep!r}"
            )
        elif not keep > 0:
            raise ValueError(f"keep_per_row must be > 0, got {keep}")
        if not isinstance(self.linear_solver, IterativeMethod):
            raise TypeError(
                "linear_solver must be a linear solver such as CG(rtol=1e-2), got "
                f"{type(self.linear_solver).__name__}"
            )
        if not 0 < self.armijo < 0.5:
            raise ValueError(f"armijo must be in (0, 0.5), got {self.armijo}")
        if not isinstance(self.max_halvings, int) or self.max_halvings < 0:
            raise ValueError(
                f"max_halvings must be a non-negative int, got {self.max_halvings!r}"
            )
        if self.fallback not in ("sinkhorn", None):
            raise ValueError(
                f"fallback must be 'sinkhorn' or None, got {self.fallback!r}"
            )

    def default_max_steps(self, problem: TransportProblem) -> int:
        # Sinkhorn's default budget: where Newton stalls, the growing Sinkhorn
        # fallback phases must be able to do what plain Sinkhorn would.
        return self.n_sinkhorn + 10_000

    # -- driver hooks --------------------------------------------------------------

    def init(
        self, problem: TransportProblem, x0: torch.Tensor
    ) -> SinkhornNewtonSparseState:
        if problem.batched:
            raise ValueError(
                "SinkhornNewtonSparse solves one problem at a time; got a batch of "
                f"{problem.a.shape[0]} (use Sinkhorn for batches)"
            )
        x = x0.clone()
        u, v = problem.split(x)
        plan = torch.empty(problem.plan_shape, dtype=x.dtype, device=x.device)
        log_colsum, _ = log_marginal(problem, u, v, -2, plan)
        v.add_(problem.log_b - log_colsum)
        log_rowsum, fast = log_marginal(problem, u, v, -1, plan)
        state = SinkhornNewtonSparseState(
            x,
            plan,
            torch.empty_like(plan),
            log_rowsum,
            row_error(problem, log_rowsum),
            sweeps_left=self.n_sinkhorn,
            plan_ready=fast,
        )
        if not self._auto:
            state.keep_per_row = float(self.keep_per_row)
        return state

    @property
    def _auto(self) -> bool:
        return self.keep_per_row == "auto"

    def _grow_keep(self, state: SinkhornNewtonSparseState) -> None:
        if self._auto:
            state.keep_per_row = min(2.0 * state.keep_per_row, AUTO_MAX)

    def step(
        self, problem: TransportProblem, state: SinkhornNewtonSparseState
    ) -> SinkhornNewtonSparseState:
        if state.sweeps_left > 0:
            self._sweep(problem, state)
        else:
            self._newton(problem, state)
        return state

    def terminate(
        self, problem: TransportProblem, state: SinkhornNewtonSparseState
    ) -> tuple[bool, Status]:
        if state.status is not None:
            return True, state.status
        if float(state.error) <= resolve_rtol(self.tol, state.x.dtype):
            return True, Status.SUCCESS
        return False, Status.SUCCESS

    def metrics(
        self, problem: TransportProblem, state: SinkhornNewtonSparseState
    ) -> dict[str, float]:
        newton = state.stage == NEWTON
        return {
            "marginal_error": float(state.error),
            "stage": state.stage,
            "cg_steps": float(state.last_cg_steps) if newton else 0.0,
            "step_size": state.last_step_size if newton else float("nan"),
            "density": state.last_density if newton else float("nan"),
            "dropped": state.last_dropped if newton else float("nan"),
        }

    def stats(
        self, problem: TransportProblem, state: SinkhornNewtonSparseState
    ) -> dict[str, float]:
        return {
            "sinkhorn_steps": state.sinkhorn_steps,
            "newton_steps": state.newton_steps,
            "cg_steps": state.cg_steps,
            "line_search_trials": state.line_search_trials,
            "fallbacks": state.fallbacks,
            "keep_per_row": state.keep_per_row,
        }

    # -- stages --------------------------------------------------------------------

    def _sweep(
        self, problem: TransportProblem, state: SinkhornNewtonSparseState
    ) -> None:
        u, v = problem.split(state.x)
        state.log_rowsum, state.plan_ready = sinkhorn_sweep(
            problem, u, v, state.log_rowsum, state.plan
        )
        state.error = row_error(problem, state.log_rowsum)
        state.rows = state.cols = None
        state.sweeps_left -= 1
        state.sinkhorn_steps += 1
        state.stage = SINKHORN

    def _start_fallback(
        self, problem: TransportProblem, state: SinkhornNewtonSparseState
    ) -> None:
        if self.fallback is None:
            state.status = Status.STAGNATION
            return
        state.fallbacks += 1
        state.no_progress = 0
        state.newton_best, state.newton_stalled = float("inf"), 0
        # A failed Newton phase may be the sparsification's fault: try the
        # next one with twice the kept entries.
        self._grow_keep(state)
        # A Newton phase that failed without halving the error since the last
        # fallback is stuck where Sinkhorn must do the work (a plateau of the
        # dual, e.g. L1 costs at small reg, where even exact Newton steps
        # shrink to nothing): double the Sinkhorn phase each time, so the run
        # spends at most about half its steps on futile Newton attempts and
        # ends no worse than plain Sinkhorn would in the same steps. A phase
        # that did halve it restarts from n_sinkhorn.
        error = float(state.error)
        if error > 0.5 * state.fallback_error:
            state.fallback_sweeps = 2 * max(state.fallback_sweeps, self.n_sinkhorn, 1)
        else:
            state.fallback_sweeps = max(self.n_sinkhorn, 1)
        state.fallback_error = error
        state.sweeps_left = state.fallback_sweeps
        # The sweeps start with the next step, so that this step counts as the
        # Newton step it was and num_steps = sinkhorn_steps + newton_steps.
        u, v = problem.split(state.x)
        state.log_rowsum, _ = log_marginal(problem, u, v, -1, state.plan)
        state.rows = state.cols = None

    def _prepare_newton(
        self, problem: TransportProblem, state: SinkhornNewtonSparseState
    ) -> None:
        if not state.plan_ready:
            u, v = problem.split(state.x)
            gibbs_plan(problem, u, v, out=state.plan, floor=True)
        state.rows = state.plan.sum(1)
        state.cols = state.plan.sum(0)
        state.error = _marginal_error(problem, state.rows, state.cols)
        state.dual = _dual(problem, state.x, state.plan)
        state.plan_ready = True

    def _newton(
        self, problem: TransportProblem, state: SinkhornNewtonSparseState
    ) -> None:
        if state.rows is None or not state.plan_ready:
            self._prepare_newton(problem, state)
        assert state.rows is not None and state.cols is not None
        if not bool(
            torch.isfinite(state.rows).all() & torch.isfinite(state.cols).all()
        ):
            self._start_fallback(problem, state)
            return
        state.stage = NEWTON
        n, m = problem.n, problem.m
        grad = torch.cat([problem.a - state.rows, problem.b - state.cols])
        _project_null(grad, n)
        values, index = self._select(state, n, m)
        # Entries below eps * (smallest diagonal entry) change no matvec beyond
        # rounding; dropping them keeps (slow) subnormal arithmetic out of CG.
        floor = torch.finfo(values.dtype).eps * min(state.rows.min(), state.cols.min())
        significant = values > floor
        if not bool(significant.all()):
            values, index = values[significant], index[significant]
        if state.cg_cap == 0:
            state.cg_cap = min(n + m, 500)
        limit = None if self.linear_solver.max_steps else state.cg_cap
        direction, cg_steps = self._direction(
            state.rows, state.cols, values, index, grad, limit
        )
        state.last_cg_capped = limit is not None and cg_steps >= limit
        state.newton_steps += 1
        state.cg_steps += cg_steps
        state.last_cg_steps = cg_steps
        state.last_density = values.numel() / (n * m)
        _project_null(direction, n)
        slope = float(torch.dot(grad, direction))
        if not (math.isfinite(slope) and slope > 0):
            self._start_fallback(problem, state)
            return
        if not self._line_search(problem, state, direction, slope):
            self._start_fallback(problem, state)

    def _select(
        self, state: SinkhornNewtonSparseState, n: int, m: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The kept plan entries (values, flat indices) for this Newton step.

        ``"auto"`` keeps the ``keep_per_row * n`` largest entries, with
        ``keep_per_row`` doubled (from 4, at most 64) until the dropped
        off-diagonal mass is at most ``AUTO_DROPPED`` of the total (see the
        class docstring for why that fraction bounds the linear rate).
        """
        flat = state.plan.reshape(-1)
        if not self._auto:
            keep = min(max(math.ceil(state.keep_per_row * n), 1), n * m)
            return _largest(flat, keep)
        cap = min(math.ceil(AUTO_MAX * n), n * m)
        values, index = _largest(flat, cap)
        values, order = torch.sort(values, descending=True)
        index = index[order]
        total = state.rows.sum() if state.rows is not None else flat.sum()
        kept = torch.cumsum(values, 0)
        need = int(torch.searchsorted(kept, (1.0 - AUTO_DROPPED) * total)) + 1
        while state.keep_per_row * n < need and state.keep_per_row < AUTO_MAX:
            state.keep_per_row = min(2.0 * state.keep_per_row, AUTO_MAX)
        keep = min(max(math.ceil(state.keep_per_row * n), 1), cap)
        state.last_dropped = float(1.0 - kept[keep - 1] / total)
        return values[:keep], index[:keep]

    def _direction(
        self,
        rows: torch.Tensor,
        cols: torch.Tensor,
        values: torch.Tensor,
        index: torch.Tensor,
        rhs: torch.Tensor,
        limit: int | None,
    ) -> tuple[torch.Tensor, int]:
        """Solve ``[[diag(rows), P_s], [P_s^T, diag(cols)]] d = rhs``.

        ``values`` are the kept plan entries at flat positions ``index``. The
        operator carries its CSR matrix, so the shared compiled CSR product
        (:func:`itersolve.linear._problem.fast_matvec`) serves the CG steps and
        the final true-residual check on CPU, and its diagonal, known here, so
        ``M="jacobi"`` costs no extraction.
        """
        m = cols.shape[0]
        matrix = _newton_matrix(rows, cols, values, index // m, index % m)
        # Row sums of the floored plan are positive; the clamp only guards the
        # Jacobi division against an underflowed one.
        diagonal = torch.cat([rows, cols]).clamp(min=torch.finfo(rows.dtype).tiny)
        size = diagonal.shape[0]
        op = LinearOperator(
            matrix.matmul,
            (size, size),
            dtype=matrix.dtype,
            device=matrix.device,
            diagonal=lambda: diagonal,
            dense=matrix.to_dense,
            matrix=matrix,
        )
        solution = inner_solve(self.linear_solver, op, rhs, max_steps=limit)
        return solution.x, solution.num_steps

    def _line_search(
        self,
        problem: TransportProblem,
        state: SinkhornNewtonSparseState,
        direction: torch.Tensor,
        slope: float,
    ) -> bool:
        alpha = 1.0
        old_error = float(state.error)
        for _ in range(self.max_halvings + 1):
            state.line_search_trials += 1
            x_new = torch.add(state.x, direction, alpha=alpha)
            u, v = problem.split(x_new)
            plan = gibbs_plan(problem, u, v, out=state.trial, floor=True)
            rows, cols = plan.sum(1), plan.sum(0)
            if bool(torch.isfinite(rows).all() & torch.isfinite(cols).all()):
                error = float(_marginal_error(problem, rows, cols))
                dual = _dual(problem, x_new, plan)
                if (
                    dual >= state.dual + self.armijo * alpha * slope
                    or error < old_error
                ):
                    state.x = x_new
                    state.plan, state.trial = plan, state.plan
                    state.rows, state.cols = rows, cols
                    state.error = torch.tensor(error, dtype=x_new.dtype)
                    state.dual = dual
                    state.last_step_size = alpha
                    state.no_progress = (
                        state.no_progress + 1 if error >= old_error else 0
                    )
                    # A full step that does not halve the error is in a linear
                    # regime set by the dropped part of the Hessian.
                    if alpha == 1.0 and error > 0.5 * old_error:
                        self._grow_keep(state)
                        # ... or by a truncated CG direction.
                        if state.last_cg_capped:
                            size = problem.n + problem.m
                            state.cg_cap = min(4 * state.cg_cap, 10 * size)
                    if error <= 0.5 * state.newton_best:
                        state.newton_best, state.newton_stalled = error, 0
                    else:
                        state.newton_stalled += 1
                    if state.no_progress >= 3 or state.newton_stalled >= NEWTON_STALL:
                        self._start_fallback(problem, state)
                    return True
            alpha *= 0.5
        state.last_step_size = 0.0
        return False


def _marginal_error(
    problem: TransportProblem, rows: torch.Tensor, cols: torch.Tensor
) -> torch.Tensor:
    return (rows - problem.a).abs().sum() + (cols - problem.b).abs().sum()


def _dual(problem: TransportProblem, x: torch.Tensor, plan: torch.Tensor) -> float:
    u, v = problem.split(x)
    return float(torch.dot(problem.a, u) + torch.dot(problem.b, v) - plan.sum())


def _largest(flat: torch.Tensor, keep: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``keep`` largest entries of ``flat`` and their indices, unordered.

    On CPU ``numpy.argpartition`` (introselect, O(N)) is ~3x faster than
    ``torch.topk`` for ``keep << N``; elsewhere ``torch.topk``.
    """
    if flat.device.type == "cpu":
        array = flat.numpy()
        index = torch.from_numpy(np.argpartition(array, array.size - keep)[-keep:])
        return flat[index], index
    values, index = torch.topk(flat, keep, sorted=False)
    return values, index


def _newton_matrix(
    rows: torch.Tensor,
    cols: torch.Tensor,
    values: torch.Tensor,
    row_index: torch.Tensor,
    col_index: torch.Tensor,
) -> torch.Tensor:
    """``[[diag(rows), P_s], [P_s^T, diag(cols)]]`` as a torch CSR matrix."""
    n, size = rows.shape[0], rows.shape[0] + cols.shape[0]
    diag = torch.arange(size, device=rows.device)
    r = torch.cat([diag, row_index, col_index + n])
    c = torch.cat([diag, col_index + n, row_index])
    v = torch.cat([rows, cols, values, values])
    order = torch.argsort(r * size + c)
    r, c, v = r[order], c[order], v[order]
    crow = torch.zeros(size + 1, dtype=torch.int64, device=rows.device)
    crow[1:] = torch.cumsum(torch.bincount(r, minlength=size), 0)
    index_dtype = torch.int32 if v.numel() < 2**31 - 1 else torch.int64
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Sparse CSR tensor support is in beta")
        warnings.filterwarnings("ignore", "Sparse invariant checks")
        return torch.sparse_csr_tensor(
            crow.to(index_dtype),
            c.to(index_dtype),
            v,
            size=(size, size),
            check_invariants=False,
        )


def _project_null(w: torch.Tensor, n: int) -> None:
    """Remove the component of ``w`` along the null vector ``(1_n, -1_m)``."""
    shift = (w[:n].sum() - w[n:].sum()) / w.shape[0]
    w[:n] -= shift
    w[n:] += shift
