"""MINRES for symmetric (possibly indefinite) systems, batched over right-hand sides."""

from __future__ import annotations

from dataclasses import dataclass, field
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


def _host(t: torch.Tensor) -> np.ndarray:
    return np.atleast_1d(t.detach().cpu().double().numpy())


@dataclass
class MINRESState:
    x: torch.Tensor
    r1: torch.Tensor
    r2: torch.Tensor
    y: torch.Tensor  # M r2, the next (unscaled) Lanczos vector
    w: torch.Tensor
    w2: torch.Tensor
    v: torch.Tensor
    # Per-column Lanczos / QR scalars (float64, host), rows named in
    # _krylov_kernels (BETA, PHIBAR, ...); RESIDUAL is the estimate, rescaled by
    # SCALE = true / estimated residual at the last confirmation.
    S: np.ndarray
    threshold: np.ndarray
    bnorm: np.ndarray
    precondition: Any
    # Single right-hand side on CPU with numba: the fused kernels' numpy views.
    fused: bool = False
    csr: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
    dinv: np.ndarray | None = None
    x_sum: float | None = None
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    eps: float = 0.0
    steps: int = 0
    status: Status | None = None
    verified: bool = False
    failed_checks: int = 0
    last_true: float = float("inf")
    matvec: Any = None


@dataclass(frozen=True, kw_only=True)
class MINRES(IterativeMethod):
    """Minimum residual method for symmetric ``A``, definite or indefinite.

    Equivalent to ``scipy.sparse.linalg.minres`` (Paige-Saunders recurrences,
    ``M`` an SPD preconditioner approximating ``A^{-1}``), but stopping on the
    same rule as :class:`CG` and scipy's ``cg``/``gmres`` — scipy's ``minres``
    instead stops on ``||r|| <= rtol (||A|| ||x|| + ||b||)``, a looser test.

    Stopping rule, per column ``j``::

        ||b_j - A x_j|| <= max(rtol * ||b_j||, atol)

    watched on the recursive estimate ``phibar`` (the exact residual norm without
    preconditioning, the ``M^{-1}``-norm with it) and confirmed on the true
    residual; after a failed confirmation the Lanczos process restarts from the
    true residual, and ``Status.STAGNATION`` is returned when a confirmation
    shows no progress (less than 10%) over the previous one. ``b`` of shape
    ``(n, k)`` runs ``k`` recurrences at once. One right-hand side on CPU (with
    numba, ``M`` None or ``"jacobi"``) takes one compiled call per step: the
    product, the three-term update, the QR rotation and the ``w``/``x`` updates.

    Parameters
    ----------
    rtol, atol
        Relative and absolute tolerances. ``rtol`` defaults to 1e-5 (SciPy's),
        lifted to ``100 eps`` in low precision (float32: 1.2e-5); ``None``
        means that default (see :mod:`itersolve.linear`).
    M
        SPD preconditioner (``None``, ``"jacobi"``, matrix, ``LinearOperator`` or
        callable); ``r^T M r < 0`` gives ``Status.NOT_POSITIVE_DEFINITE``.

    References
    ----------
    Paige & Saunders, *Solution of sparse indefinite systems of linear
    equations*, SIAM J. Numer. Anal. 12 (1975); Choi, Paige & Saunders,
    *MINRES-QLP*, SIAM J. Sci. Comput. 33 (2011) for the preconditioned form.

    Examples
    --------
    >>> import numpy as np, itersolve
    >>> A = np.array([[2.0, 1.0], [1.0, -3.0]])  # symmetric indefinite
    >>> sol = itersolve.linear_solve(A, np.ones(2), itersolve.linear.MINRES(rtol=1e-12))
    >>> sol.success, np.allclose(A @ sol.x, 1.0)
    (True, True)
    """

    ADVICE: ClassVar[dict[Status, str]] = {
        Status.MAX_STEPS: (
            "raise max_steps, loosen rtol or use an SPD preconditioner; MINRES "
            "needs A symmetric: for a nonsymmetric A use GMRES"
        ),
        Status.STAGNATION: (
            "the residual stopped falling near rtol: loosen rtol or use float64"
        ),
    }

    rtol: float = DefaultTolerance(KRYLOV_RTOL)
    atol: float = 0.0
    M: Any = None

    def __post_init__(self) -> None:
        super().__post_init__()
        tolerance_field(self, KRYLOV_RTOL)
        check_tolerances(self.rtol, self.atol)

    def default_max_steps(self, problem: LinearProblem) -> int:
        return 5 * problem.A.shape[0]

    def init(self, problem: LinearProblem, x0: torch.Tensor) -> MINRESState:
        A, b = problem.A, problem.b
        check_square("MINRES", A)
        precondition = make_preconditioner(self.M, A, symmetric=True)
        fused = (
            kk.HAVE_NUMBA
            and b.ndim == 1
            and kernels.use_kernels(b)
            and (self.M is None or isinstance(self.M, str))
        )
        x = x0.contiguous().clone() if fused else x0.clone()
        r1 = problem.residual(x) if bool(x.any()) else b.clone()
        bnorm, threshold = stopping_threshold(
            b, resolve_rtol(self.rtol, b.dtype), self.atol
        )
        k = 1 if b.ndim == 1 else b.shape[1]
        state = MINRESState(
            x=x,
            r1=r1,
            r2=r1,
            y=r1,
            w=r1,
            w2=r1,
            v=r1,
            S=kk.minres_scalars(k),
            threshold=_host(threshold),
            bnorm=_host(bnorm),
            precondition=precondition,
            fused=fused,
        )
        state.matvec = fast_matvec(A)
        state.eps = float(torch.finfo(b.dtype).eps)
        if fused:
            matrix = explicit_matrix(A)
            if matrix is not None and matrix.layout == torch.sparse_csr:
                state.csr = kernels.csr_arrays(matrix)
            inverse = getattr(precondition, "inverse_diagonal", None)
            state.dinv = (
                np.empty(0, dtype=b.numpy().dtype)
                if inverse is None
                else inverse.to(b.dtype).contiguous().numpy()
            )
        self._restart(state, r1)
        if state.status is None and not (state.S[kk.RESIDUAL] > state.threshold).any():
            state.verified = True
        return state

    def step(self, problem: LinearProblem, state: MINRESState) -> MINRESState:
        if state.fused:
            return self._step_fused(problem, state)
        s = state
        S = s.S
        vec = s.x.ndim == 1
        dev, dt = s.x.device, s.x.dtype

        def col(a: np.ndarray) -> Any:
            # One right-hand side: a Python float (no tensor per scalar).
            if vec:
                return float(a[0])
            return torch.from_numpy(np.ascontiguousarray(a)).to(dtype=dt, device=dev)

        def axpy(y: torch.Tensor, x: torch.Tensor, a: np.ndarray) -> None:
            c = col(a)
            y.add_(x, alpha=c) if vec else y.addcmul_(x, c)

        beta, oldb = S[kk.BETA], S[kk.OLDB]
        active = (S[kk.RESIDUAL] > s.threshold) & (beta > 0)
        if not active.any():
            if (S[kk.RESIDUAL] > s.threshold).any():
                # Lanczos ran out (beta = 0) with the rule unmet: A is singular
                # and b is not in its range, or rounding left the estimate behind.
                s.status = Status.BREAKDOWN
            return s  # else every estimate meets the rule: the check confirms it
        inv_beta = np.where(active, 1.0 / np.where(beta > 0, beta, 1.0), 0.0)
        v = s.y * col(inv_beta)
        y = s.matvec(v)
        axpy(y, s.r1, -np.where(oldb > 0, beta / np.where(oldb > 0, oldb, 1.0), 0))
        alfa = host_dots(v, y)
        axpy(y, s.r2, -alfa * inv_beta)
        s.r1, s.r2 = s.r2, y
        z = y if s.precondition is None else s.precondition(y)
        beta_sq = host_dots(y, z)
        code = kk.lanczos_rotation_block(S, active, alfa, beta_sq, s.eps)
        if code != kk.OK:
            s.status = _STATUS[code]
            return s
        s.y = z
        w1, s.w2 = s.w2, s.w
        # w = (v - oldeps w1 - delta w2) / gamma, written into w1's buffer.
        w1.mul_(col(-S[kk.OLDEPS]))
        w1.add_(v)
        axpy(w1, s.w2, -S[kk.DELTA])
        w1.mul_(col(S[kk.INV_GAMMA]))
        s.w = w1
        axpy(s.x, s.w, S[kk.PHI])
        s.steps += 1
        return s

    def _step_fused(self, problem: LinearProblem, s: MINRESState) -> MINRESState:
        """One right-hand side: one compiled call per step (plus the product
        for a matrix-free operator)."""
        S = s.S
        if not S[kk.RESIDUAL, 0] > s.threshold[0]:
            return s  # the estimate meets the rule: the next check confirms it
        if not S[kk.BETA, 0] > 0:
            s.status = Status.BREAKDOWN
            return s
        a = s.arrays
        if s.csr is not None:
            code, x_sum = kk.minres_step_csr(
                *s.csr, a["y"], a["r1"], a["r2"], a["v"], s.dinv, a["w"], a["w2"],
                a["x"], S, s.eps,
            )  # fmt: skip
            problem.A.matvecs += 1
        else:
            product = s.matvec(s.y).contiguous().numpy()
            code, x_sum = kk.minres_step(
                product, a["y"], a["r1"], a["r2"], a["v"], s.dinv, a["w"], a["w2"],
                a["x"], S, s.eps,
            )  # fmt: skip
        if code != kk.OK:
            s.status = _STATUS[code]
            return s
        # r1 now holds the new Lanczos vector (and y = M r1 was written in place
        # when preconditioned); w2's buffer holds the new w.
        s.r1, s.r2 = s.r2, s.r1
        a["r1"], a["r2"] = a["r2"], a["r1"]
        if s.precondition is None:
            s.y, a["y"] = s.r2, a["r2"]
        s.w, s.w2 = s.w2, s.w
        a["w"], a["w2"] = a["w2"], a["w"]
        s.x_sum = x_sum
        s.steps += 1
        return s

    def converged(self, problem: LinearProblem, state: MINRESState) -> bool:
        """``||b_j - A x_j|| <= max(rtol ||b_j||, atol)`` for every column: the
        estimates first, then the true residual (:meth:`_verify`)."""
        if state.verified:
            return True
        if (state.S[kk.RESIDUAL] > state.threshold).any():
            return False
        self._verify(problem, state)
        return state.verified

    def _verify(self, problem: LinearProblem, state: MINRESState) -> None:
        true_r = problem.residual(state.x)
        true = _host(column_norms(true_r))
        if (true <= state.threshold).all():
            state.S[kk.RESIDUAL] = true
            state.verified = True
            return
        # The recursive estimate ran ahead of the true residual (rounding, or
        # the M^{-1}-norm): restart the Lanczos process from the true residual.
        worst = float(np.max(true / np.maximum(state.threshold, 1e-300)))
        if worst >= 0.9 * state.last_true:
            state.status = Status.STAGNATION
            return
        state.last_true = worst
        state.failed_checks += 1
        self._restart(state, true_r)

    @staticmethod
    def _restart(state: MINRESState, r1: torch.Tensor) -> None:
        y = r1 if state.precondition is None else state.precondition(r1)
        beta_sq = host_dots(r1, y)
        if (beta_sq < 0).any():
            state.status = Status.NOT_POSITIVE_DEFINITE
            return
        beta1 = np.sqrt(beta_sq)
        true = _host(column_norms(r1))
        state.r1 = r1.contiguous().clone()
        state.r2 = r1.contiguous().clone()
        state.y = state.r2 if state.fused and y is r1 else y.contiguous().clone()
        state.w, state.w2 = torch.zeros_like(state.r1), torch.zeros_like(state.r1)
        state.v = torch.zeros_like(state.r1)
        if state.fused:
            # numpy views of the buffers, swapped with them (no per-step views).
            state.arrays = {
                name: getattr(state, name).numpy()
                for name in ("x", "r1", "r2", "y", "w", "w2", "v")
            }
        S = state.S
        S[[kk.OLDB, kk.DBAR, kk.EPSLN, kk.SN]] = 0.0
        S[kk.BETA] = beta1
        S[kk.PHIBAR] = beta1
        S[kk.CS] = -1.0
        S[kk.RESIDUAL] = true
        S[kk.SCALE] = np.where(beta1 > 0, true / np.maximum(beta1, 1e-300), 1.0)

    def metrics(self, problem: LinearProblem, state: MINRESState) -> dict[str, float]:
        residual = state.S[kk.RESIDUAL]
        relative = residual / np.maximum(state.bnorm, np.finfo(float).tiny)
        return {
            "residual_norm": float(residual.max()),
            "relative_residual": float(relative.max()),
        }

    def stats(self, problem: LinearProblem, state: MINRESState) -> dict[str, float]:
        return {"matvecs": problem.A.matvecs, "restarts": state.failed_checks}


_STATUS = {
    kk.NOT_POSITIVE_DEFINITE: Status.NOT_POSITIVE_DEFINITE,
    kk.BREAKDOWN: Status.BREAKDOWN,
}
