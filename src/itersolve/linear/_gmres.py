"""Restarted GMRES(m) with right preconditioning, batched over right-hand sides."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
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
from itersolve.linear import _cg_kernels as kernels
from itersolve.linear import _krylov_kernels as kk
from itersolve.linear._problem import (
    KRYLOV_RTOL,
    LinearProblem,
    check_square,
    column_norms,
    explicit_matrix,
    fast_matvec,
    host_dots,
    make_preconditioner,
    stopping_threshold,
)


@dataclass
class GMRESState:
    x: torch.Tensor
    x_block: torch.Tensor  # (n, k) view of x
    b_block: torch.Tensor
    V: torch.Tensor  # (m + 1, n, k) Arnoldi basis
    H: np.ndarray  # (m + 1, m, k) Hessenberg, rotated into R in place
    cs: np.ndarray
    sn: np.ndarray
    g: np.ndarray  # rotated right-hand side; |g[i]| is the residual estimate
    lengths: np.ndarray  # per column: Krylov dimension used at the cycle's end
    active: np.ndarray  # columns still iterating in this cycle
    residual: np.ndarray  # true residual at the last restart, or the estimate
    threshold: np.ndarray
    bnorm: np.ndarray
    precondition: Any
    inner: int = 0
    steps: int = 0
    restarts: int = 0
    status: Status | None = None
    verified: bool = False
    best: float = float("inf")
    stalled_cycles: int = 0
    matvec: Any = None
    # One right-hand side on CPU with numba: V as (m + 1, n) numpy, the CSR
    # arrays when A is explicit, D^{-1} for a Jacobi M.
    single: bool = False
    V2: np.ndarray | None = None
    csr: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
    dinv: np.ndarray | None = None
    scratch: np.ndarray | None = None
    # sum(x), the finiteness certificate: x changes only at the end of a cycle.
    x_sum: float | None = None


@dataclass(frozen=True, kw_only=True)
class GMRES(IterativeMethod):
    """Restarted GMRES(m) for general (nonsymmetric, indefinite) square ``A``.

    Equivalent to ``scipy.sparse.linalg.gmres`` (same stopping rule on the
    unpreconditioned residual; ``restart`` is scipy's ``restart``). Each ``step`` is
    one Arnoldi iteration (one matvec per column), so ``max_steps`` counts inner
    iterations, unlike scipy's ``maxiter`` which counts restart cycles. ``b`` of
    shape ``(n, k)`` runs ``k`` independent GMRES recurrences at once.

    Stopping rule, per column ``j``::

        ||b_j - A x_j|| <= max(rtol * ||b_j||, atol)

    watched on the Givens-rotated residual estimate ``|g_{i+1}|`` and confirmed on
    the true residual at the end of each cycle (a cycle ends after ``restart``
    steps or when every column's estimate meets the rule).

    Parameters
    ----------
    rtol, atol
        Relative and absolute tolerances. ``rtol`` defaults to 1e-5 (SciPy's),
        lifted to ``100 eps`` in low precision (float32: 1.2e-5); ``None``
        means that default (see :mod:`itersolve.linear`).
    restart
        Krylov dimension ``m`` per cycle (scipy's default 20).
    M
        Right preconditioner approximating ``A^{-1}`` (``None``, ``"jacobi"``, a
        relaxation method such as ``SSOR(omega=1.2)`` or ``GaussSeidel()``, one
        sweep from zero per application (more with
        ``method.as_preconditioner(A, sweeps)``), a matrix, a
        ``LinearOperator`` or a callable); the iteration runs on
        ``A M u = b`` with ``x = M u``, so the monitored residual is the true one.
    stagnation_cycles
        ``Status.STAGNATION`` after this many restart cycles in a row without
        any decrease of the largest relative true residual.

    Orthogonalization: for one right-hand side on CPU (with numba), modified
    Gram-Schmidt in scipy's order, the whole Arnoldi step (product, MGS, Givens
    rotation) in one compiled call; for blocks, classical Gram-Schmidt with one
    re-orthogonalization (CGS2), as stable as MGS with two block products.
    ``Status.BREAKDOWN`` when the rotated Hessenberg matrix is singular (a
    singular ``A`` met an inconsistent ``b``).

    References
    ----------
    Saad & Schultz, *GMRES: a generalized minimal residual algorithm for solving
    nonsymmetric linear systems*, SIAM J. Sci. Stat. Comput. 7 (1986); Saad,
    *Iterative Methods for Sparse Linear Systems*, Alg. 6.9 and 9.5.

    Examples
    --------
    >>> import numpy as np, itersolve
    >>> A = np.array([[3.0, 1.0], [-1.0, 2.0]])
    >>> sol = itersolve.linear_solve(A, np.ones(2), itersolve.linear.GMRES(rtol=1e-12))
    >>> sol.success, np.allclose(A @ sol.x, 1.0)
    (True, True)
    """

    ADVICE: ClassVar[dict[Status, str]] = {
        Status.MAX_STEPS: (
            "raise max_steps, raise restart (restarted GMRES can stall on "
            "indefinite systems) or use a preconditioner"
        ),
        Status.STAGNATION: (
            "restart cycles stopped reducing the residual: raise restart or "
            "precondition; near rtol, loosen it or use float64"
        ),
    }

    rtol: float = DefaultTolerance(KRYLOV_RTOL)
    atol: float = 0.0
    restart: int = 20
    M: Any = None
    stagnation_cycles: int = 3

    def __post_init__(self) -> None:
        super().__post_init__()
        tolerance_field(self, KRYLOV_RTOL)
        check_tolerances(self.rtol, self.atol)
        if not isinstance(self.restart, int) or self.restart < 1:
            raise ValueError(f"restart must be a positive int, got {self.restart!r}")
        if not isinstance(self.stagnation_cycles, int) or self.stagnation_cycles < 1:
            raise ValueError(
                f"stagnation_cycles must be a positive int, got "
                f"{self.stagnation_cycles!r}"
            )

    def default_max_steps(self, problem: LinearProblem) -> int:
        return 10 * problem.A.shape[0]

    def default_stall_window(self, problem: LinearProblem) -> int:
        # x moves only at the end of a restart cycle: a window must span one.
        return max(STALL_WINDOW, 2 * self.restart)

    def init(self, problem: LinearProblem, x0: torch.Tensor) -> GMRESState:
        A, b = problem.A, problem.b
        check_square("GMRES", A)
        precondition = make_preconditioner(self.M, A)
        n = b.shape[0]
        k = 1 if b.ndim == 1 else b.shape[1]
        m = min(self.restart, n)
        x = x0.clone(memory_format=torch.contiguous_format)
        bnorm, threshold = stopping_threshold(
            b, resolve_rtol(self.rtol, b.dtype), self.atol
        )
        V = torch.zeros((m + 1, n, k), dtype=b.dtype, device=b.device)
        state = GMRESState(
            x=x,
            x_block=x.view(n, k),
            b_block=b.reshape(n, k),
            V=V,
            H=np.zeros((m + 1, m, k)),
            cs=np.zeros((m, k)),
            sn=np.zeros((m, k)),
            g=np.zeros((m + 1, k)),
            lengths=np.zeros(k, dtype=np.int64),
            active=np.zeros(k, dtype=bool),
            residual=np.zeros(k),
            threshold=np.atleast_1d(threshold.cpu().double().numpy()),
            bnorm=np.atleast_1d(bnorm.cpu().double().numpy()),
            precondition=precondition,
            matvec=fast_matvec(A),
        )
        if b.ndim == 1 and kk.HAVE_NUMBA and kernels.use_kernels(b):
            state.single = True
            state.V2 = V.numpy().reshape(m + 1, n)
            matrix = explicit_matrix(A)
            inverse = getattr(precondition, "inverse_diagonal", None)
            if (
                matrix is not None
                and matrix.layout == torch.sparse_csr
                and (precondition is None or inverse is not None)
            ):
                state.csr = kernels.csr_arrays(matrix)
                state.dinv = (
                    np.empty(0, dtype=state.V2.dtype)
                    if inverse is None
                    else inverse.to(b.dtype).contiguous().numpy()
                )
                state.scratch = np.empty(
                    n if inverse is not None else 0, dtype=state.V2.dtype
                )
        r = self._residual(problem, state) if bool(x.any()) else state.b_block
        self._start_cycle(state, r)
        if not state.active.any():
            state.verified = True
        return state

    def _start_cycle(self, state: GMRESState, r: torch.Tensor) -> None:
        rnorm = column_norms(r)
        norms = rnorm.cpu().double().numpy()
        state.residual = norms
        state.active = norms > state.threshold
        scale = torch.where(rnorm > 0, rnorm.reciprocal(), 0.0)
        state.V.zero_()
        state.V[0] = r * torch.where(
            torch.from_numpy(state.active).to(r.device), scale, 0.0
        )
        state.H.fill(0.0)
        state.g.fill(0.0)
        state.g[0] = np.where(state.active, norms, 0.0)
        state.lengths.fill(0)
        state.inner = 0
        state.x_sum = float(state.x.sum())

    def _residual(self, problem: LinearProblem, state: GMRESState) -> torch.Tensor:
        """``b - A x`` as an ``(n, k)`` block (a vector product for one column)."""
        if state.single:
            return (problem.b - state.matvec(state.x)).view(-1, 1)
        return state.b_block - problem.A.matvec(state.x_block)

    def _step_single(self, problem: LinearProblem, state: GMRESState) -> GMRESState:
        """One right-hand side: the product and one compiled Arnoldi call."""
        i, V2 = state.inner, state.V2
        assert V2 is not None
        if state.csr is not None:
            estimate = kk.arnoldi_csr(
                *state.csr, state.dinv, state.scratch, V2, i, state.H, state.cs,
                state.sn, state.g,
            )  # fmt: skip
            problem.A.matvecs += 1
        else:
            basis = state.V.view(V2.shape)
            v = basis[i] if state.precondition is None else state.precondition(basis[i])
            basis[i + 1].copy_(state.matvec(v))
            estimate = kk.arnoldi(V2, i, state.H, state.cs, state.sn, state.g)
        state.inner = i + 1
        state.steps += 1
        state.residual[0] = estimate
        if estimate <= state.threshold[0]:
            state.lengths[0] = i + 1
            self._end_cycle(problem, state)
        elif state.inner == V2.shape[0] - 1:
            self._end_cycle(problem, state)
        return state

    def step(self, problem: LinearProblem, state: GMRESState) -> GMRESState:
        if state.verified:  # between check points: nothing left to do
            return state
        if state.single:
            return self._step_single(problem, state)
        i = state.inner
        V = state.V
        v = V[i] if state.precondition is None else state.precondition(V[i])
        w = state.matvec(v).contiguous()
        h = _orthogonalize(V, i + 1, w) + _orthogonalize(V, i + 1, w)  # CGS2
        hn = np.sqrt(host_dots(w, w))
        scale = np.where(hn > 0, 1.0 / np.where(hn > 0, hn, 1.0), 0.0)
        torch.mul(w, torch.from_numpy(scale).to(w), out=V[i + 1])
        H = state.H
        H[: i + 1, i] = h
        H[i + 1, i] = hn
        estimate = np.empty(H.shape[2])
        kk.givens_block(H, state.cs, state.sn, state.g, i, estimate)
        state.inner = i + 1
        state.steps += 1
        newly_done = state.active & (state.lengths == 0) & (estimate <= state.threshold)
        state.lengths[newly_done] = i + 1
        state.residual = np.where(state.active, estimate, state.residual)
        running = state.active & (state.lengths == 0)
        if not running.any() or state.inner == V.shape[0] - 1:
            self._end_cycle(problem, state)
        return state

    def _end_cycle(self, problem: LinearProblem, state: GMRESState) -> None:
        i = state.inner
        lengths = np.where(
            state.active, np.where(state.lengths > 0, state.lengths, i), 0
        )
        # Per-column upper-triangular solves in one batched call: rows/columns
        # beyond a column's own length are padded with the identity (y = 0 there).
        R = np.moveaxis(state.H[:i, :i], -1, 0).copy()  # (k, i, i)
        rhs = state.g[:i].T.copy()  # (k, i)
        idx = np.arange(i)
        outside = idx[None, :] >= lengths[:, None]  # (k, i)
        R[outside[:, :, None] | outside[:, None, :]] = 0.0
        diag = R[:, idx, idx]
        diag[outside] = 1.0
        R[:, idx, idx] = diag
        rhs[outside] = 0.0
        scale = np.abs(R).max(axis=(1, 2), initial=0.0)
        tiny = np.finfo(np.float64).eps * np.maximum(scale, 1e-300)
        if (np.abs(diag) <= tiny[:, None]).any():
            state.status = Status.BREAKDOWN
            return
        y = np.linalg.solve(np.triu(R), rhs[..., None])[..., 0]  # (k, i)
        if state.single and state.V2 is not None:
            if state.precondition is None:
                kk.combine_into(state.V2, y[0], state.x.numpy())
            else:
                update = torch.zeros_like(state.x)
                kk.combine_into(state.V2, y[0], update.numpy())
                state.x += state.precondition(update)
        else:
            y_t = torch.from_numpy(y.T.copy()).to(state.V.dtype).to(state.V.device)
            update = _combine(state.V, y_t)
            if state.precondition is not None:
                update = state.precondition(update)
            state.x_block += update
        state.restarts += 1
        self._start_cycle(state, self._residual(problem, state))
        if not state.active.any():
            state.verified = True
            return
        worst = float(np.max(state.residual / np.maximum(state.threshold, 1e-300)))
        if worst < state.best * (1 - 1e-10):
            state.best, state.stalled_cycles = worst, 0
        else:
            state.stalled_cycles += 1
            if state.stalled_cycles >= self.stagnation_cycles:
                state.status = Status.STAGNATION

    def converged(self, problem: LinearProblem, state: GMRESState) -> bool:
        """``||b_j - A x_j|| <= max(rtol ||b_j||, atol)`` for every column, on
        the true residual ``b - A x`` that each cycle ends with (a cycle ends
        early once every estimate ``|g_{i+1}|`` meets the rule)."""
        return state.verified

    def metrics(self, problem: LinearProblem, state: GMRESState) -> dict[str, float]:
        relative = state.residual / np.maximum(state.bnorm, np.finfo(float).tiny)
        return {
            "residual_norm": float(state.residual.max()),
            "relative_residual": float(relative.max()),
        }

    def stats(self, problem: LinearProblem, state: GMRESState) -> dict[str, float]:
        return {"matvecs": problem.A.matvecs, "restarts": state.restarts}


def _orthogonalize(V: torch.Tensor, count: int, w: torch.Tensor) -> np.ndarray:
    """One classical Gram-Schmidt pass of ``w`` against ``V[:count]`` (in place)."""
    if kernels.use_kernels(w) and V.is_contiguous():
        return kernels.gram_schmidt_pass(V.numpy(), count, w.numpy())
    basis = V[:count]
    h = torch.einsum("jnk,nk->jk", basis, w)
    w -= torch.einsum("jnk,jk->nk", basis, h)
    return h.cpu().double().numpy()


def _combine(V: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``sum_j V[j] * y[j]`` column by column, over the first ``len(y)`` vectors."""
    if kernels.use_kernels(y) and V.is_contiguous():
        out = torch.empty(V.shape[1:], dtype=V.dtype)
        kernels.combine(V.numpy(), y.numpy(), out.numpy())
        return out
    return torch.einsum("jnk,jk->nk", V[: y.shape[0]], y)
