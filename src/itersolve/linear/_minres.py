"""MINRES for symmetric (possibly indefinite) systems, batched over right-hand sides."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from itersolve._core.iterate import IterativeMethod
from itersolve._core.solution import Status
from itersolve.linear._problem import (
    LinearProblem,
    check_square,
    check_tolerances,
    column_norms,
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
    y: torch.Tensor
    w: torch.Tensor
    w2: torch.Tensor
    # Per-column Lanczos / QR scalars (float64, host).
    beta: np.ndarray
    oldb: np.ndarray
    dbar: np.ndarray
    epsln: np.ndarray
    phibar: np.ndarray
    cs: np.ndarray
    sn: np.ndarray
    residual: np.ndarray  # the estimate, rescaled by the last confirmation
    scale: np.ndarray  # true / estimated residual at the last confirmation
    threshold: np.ndarray
    bnorm: np.ndarray
    precondition: Any
    steps: int = 0
    status: Status | None = None
    verified: bool = False
    failed_checks: int = 0
    anorm: np.ndarray = field(default_factory=lambda: np.zeros(1))
    restart_step: int = 0
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
    ``(n, k)`` runs ``k`` recurrences at once.

    Parameters
    ----------
    rtol, atol
        Relative and absolute tolerances.
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
    >>> sol = itersolve.linear_solve(A, np.ones(2), itersolve.MINRES(rtol=1e-12))
    >>> sol.success, np.allclose(A @ sol.x, 1.0)
    (True, True)
    """

    rtol: float = 1e-5
    atol: float = 0.0
    M: Any = None

    def __post_init__(self) -> None:
        super().__post_init__()
        check_tolerances(self.rtol, self.atol)

    def default_max_steps(self, problem: LinearProblem) -> int:
        return 5 * problem.A.shape[0]

    def init(self, problem: LinearProblem, x0: torch.Tensor) -> MINRESState:
        A, b = problem.A, problem.b
        check_square("MINRES", A)
        precondition = make_preconditioner(self.M, A)
        x = x0.clone()
        r1 = problem.residual(x) if bool(x.any()) else b.clone()
        bnorm, threshold = stopping_threshold(b, self.rtol, self.atol)
        empty = np.zeros(0)
        state = MINRESState(
            x=x,
            r1=r1,
            r2=r1,
            y=r1,
            w=r1,
            w2=r1,
            beta=empty,
            oldb=empty,
            dbar=empty,
            epsln=empty,
            phibar=empty,
            cs=empty,
            sn=empty,
            residual=empty,
            scale=empty,
            threshold=_host(threshold),
            bnorm=_host(bnorm),
            precondition=precondition,
        )
        state.matvec = fast_matvec(A)
        self._restart(state, r1)
        if state.status is None and not (state.residual > state.threshold).any():
            state.verified = True
        return state

    def step(self, problem: LinearProblem, state: MINRESState) -> MINRESState:
        s = state
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

        active = (s.residual > s.threshold) & (s.beta > 0)
        if not active.any():
            # Lanczos ran out (beta = 0) with the rule unmet: A is singular and
            # b is not in its range, or rounding left the estimate behind.
            s.status = Status.BREAKDOWN
            return s
        inv_beta = np.where(active, 1.0 / np.where(s.beta > 0, s.beta, 1.0), 0.0)
        v = s.y * col(inv_beta)
        y = s.matvec(v)
        if s.steps > s.restart_step:
            ratio = np.where(s.oldb > 0, s.beta / np.where(s.oldb > 0, s.oldb, 1.0), 0)
            axpy(y, s.r1, -ratio)
        alfa = host_dots(v, y)
        axpy(y, s.r2, -alfa * inv_beta)
        s.r1, s.r2 = s.r2, y
        z = y if s.precondition is None else s.precondition(y)
        beta_sq = host_dots(y, z)
        if (active & (beta_sq < 0)).any():
            s.status = Status.NOT_POSITIVE_DEFINITE
            return s
        s.y = z
        s.oldb = s.beta
        s.beta = np.where(active, np.sqrt(np.maximum(beta_sq, 0.0)), 0.0)
        s.anorm = np.maximum(s.anorm, np.maximum(np.abs(alfa), s.beta))
        # Lanczos is exhausted when beta vanishes relative to ||A||: an exact
        # invariant subspace was found, and a rule still unmet means b is not
        # in the range of A.
        eps = torch.finfo(s.x.dtype).eps
        s.beta = np.where(s.beta <= 10 * eps * s.anorm, 0.0, s.beta)
        oldeps = s.epsln
        delta = s.cs * s.dbar + s.sn * alfa
        gbar = s.sn * s.dbar - s.cs * alfa
        s.epsln = s.sn * s.beta
        s.dbar = -s.cs * s.beta
        gamma = np.hypot(gbar, s.beta)
        singular = active & (gamma == 0)
        if singular.any():
            s.status = Status.BREAKDOWN
            return s
        gamma = np.where(active, gamma, 1.0)
        cs, sn = gbar / gamma, s.beta / gamma
        phi = np.where(active, cs * s.phibar, 0.0)
        s.phibar = np.where(active, sn * s.phibar, s.phibar)
        s.cs, s.sn = np.where(active, cs, s.cs), np.where(active, sn, s.sn)
        w1, s.w2 = s.w2, s.w
        # w = (v - oldeps w1 - delta w2) / gamma, written into w1's buffer.
        w1.mul_(col(-oldeps))
        w1.add_(v)
        axpy(w1, s.w2, -delta)
        w1.mul_(col(1.0 / gamma))
        s.w = w1
        axpy(s.x, s.w, phi)
        s.steps += 1
        s.residual = np.where(active, s.phibar * s.scale, s.residual)
        if not (s.residual > s.threshold).any():
            self._verify(problem, s)
        return s

    def _verify(self, problem: LinearProblem, state: MINRESState) -> None:
        true_r = problem.residual(state.x)
        true = _host(column_norms(true_r))
        if (true <= state.threshold).all():
            state.residual = true
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
        k = beta_sq.shape[0]
        beta1 = np.sqrt(beta_sq)
        true = _host(column_norms(r1))
        state.r1, state.r2, state.y = r1, r1.clone(), y.clone()
        state.w, state.w2 = torch.zeros_like(r1), torch.zeros_like(r1)
        state.beta, state.oldb = beta1, np.zeros(k)
        state.dbar, state.epsln = np.zeros(k), np.zeros(k)
        state.phibar, state.cs, state.sn = beta1.copy(), -np.ones(k), np.zeros(k)
        state.residual = true
        state.scale = np.where(beta1 > 0, true / np.maximum(beta1, 1e-300), 1.0)
        state.restart_step = state.steps
        if state.anorm.shape != (k,):
            state.anorm = np.zeros(k)

    def terminate(
        self, problem: LinearProblem, state: MINRESState
    ) -> tuple[bool, Status]:
        if state.status is not None:
            return True, state.status
        if state.verified:
            return True, Status.SUCCESS
        return False, Status.SUCCESS

    def metrics(self, problem: LinearProblem, state: MINRESState) -> dict[str, float]:
        relative = state.residual / np.maximum(state.bnorm, np.finfo(float).tiny)
        return {
            "residual_norm": float(state.residual.max()),
            "relative_residual": float(relative.max()),
        }

    def stats(self, problem: LinearProblem, state: MINRESState) -> dict[str, float]:
        return {"matvecs": problem.A.matvecs, "restarts": state.failed_checks}
