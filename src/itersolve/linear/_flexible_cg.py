"""Flexible CG (Notay's FCG(m)) for variable or nonlinear preconditioners."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from itersolve._core.frontdoor import (
    DefaultTolerance,
    check_tolerances,
    resolve_rtol,
    tolerance_field,
)
from itersolve._core.iterate import IterativeMethod
from itersolve._core.solution import Status
from itersolve.linear._problem import (
    KRYLOV_RTOL,
    LinearProblem,
    check_square,
    column_norms,
    column_scalars,
    dots,
    fast_matvec,
    make_preconditioner,
    stopping_threshold,
)


@dataclass
class FlexibleCGState:
    x: torch.Tensor
    r: torch.Tensor
    residual: torch.Tensor
    threshold: torch.Tensor
    bnorm: torch.Tensor
    precondition: Any
    # The last ``truncation`` directions p_j, their images A p_j and p_j^T A p_j.
    directions: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = field(
        default_factory=list
    )
    steps: int = 0
    status: Status | None = None
    verified: bool = False
    failed_verification: float = float("inf")
    matvec: Any = None
    zero_direction: bool = False


@dataclass(frozen=True, kw_only=True)
class FlexibleCG(IterativeMethod):
    """Flexible conjugate gradients: CG whose preconditioner may change every step.

    Compare with :class:`CG` (fixed SPD ``M``) and ``scipy.sparse.linalg.cg``,
    which lose their convergence guarantees when ``M`` is itself an inner
    iteration, a multigrid cycle with varying smoothing, or a learned map. FCG
    A-orthogonalizes the new direction explicitly against the last
    ``truncation`` ones (Notay's FCG(m))::

        z = M_k(r);  p = z - sum_j (z^T A p_j / p_j^T A p_j) p_j
        alpha = p^T r / p^T A p

    With ``truncation=1`` this is CG with the Polak-Ribière-type
    ``beta = -z^T A p_old / p_old^T A p_old``; for a fixed linear SPD ``M`` it
    reproduces PCG in exact arithmetic.

    Stopping rule, per column ``j`` (confirmed on the true residual)::

        ||b_j - A x_j|| <= max(rtol * ||b_j||, atol)

    Parameters
    ----------
    rtol, atol
        Relative and absolute tolerances. ``rtol`` defaults to 1e-5 (SciPy's),
        lifted to ``100 eps`` in low precision (float32: 1.2e-5); ``None``
        means that default (see :mod:`itersolve.linear`).
    M
        Preconditioner: ``None``, ``"jacobi"``, a relaxation method (``SSOR()``,
        ``Jacobi()``, ``SOR()``: one sweep from zero), a matrix/operator, or any
        callable ``r -> z`` (may be nonlinear or vary between calls).
    truncation
        Number of earlier directions kept for re-orthogonalization (``m >= 1``).

    ``Status.NOT_POSITIVE_DEFINITE`` when ``p^T A p <= 0`` for an unconverged
    column; ``Status.BREAKDOWN`` when the new direction is exactly zero (the
    preconditioner returned zero, or a vector in the span of the kept
    directions).

    References
    ----------
    Notay, *Flexible conjugate gradients*, SIAM J. Sci. Comput. 22 (2000);
    Golub & Ye, *Inexact preconditioned conjugate gradient method with
    inner-outer iteration*, SIAM J. Sci. Comput. 21 (1999).

    Examples
    --------
    >>> import numpy as np, itersolve
    >>> A = np.diag([1.0, 10.0, 100.0])
    >>> inexact = lambda r: r / (1.0 + r.abs())  # a nonlinear "preconditioner"
    >>> method = itersolve.linear.FlexibleCG(rtol=1e-10, M=inexact)
    >>> sol = itersolve.linear_solve(A, np.ones(3), method)
    >>> sol.success, np.allclose(A @ sol.x, 1.0)
    (True, True)
    """

    rtol: float = DefaultTolerance(KRYLOV_RTOL)
    atol: float = 0.0
    M: Any = None
    truncation: int = 1

    def __post_init__(self) -> None:
        super().__post_init__()
        tolerance_field(self, KRYLOV_RTOL)
        check_tolerances(self.rtol, self.atol)
        if not isinstance(self.truncation, int) or self.truncation < 1:
            raise ValueError(
                f"truncation must be a positive int, got {self.truncation!r}"
            )

    def default_max_steps(self, problem: LinearProblem) -> int:
        return 10 * problem.A.shape[0]

    def init(self, problem: LinearProblem, x0: torch.Tensor) -> FlexibleCGState:
        A, b = problem.A, problem.b
        check_square("FlexibleCG", A)
        precondition = make_preconditioner(self.M, A)
        x = x0.clone()
        r = problem.residual(x) if bool(x.any()) else b.clone()
        bnorm, threshold = stopping_threshold(
            b, resolve_rtol(self.rtol, b.dtype), self.atol
        )
        state = FlexibleCGState(x, r, column_norms(r), threshold, bnorm, precondition)
        state.matvec = fast_matvec(A)
        state.verified = not bool((state.residual > threshold).any())
        return state

    def step(self, problem: LinearProblem, state: FlexibleCGState) -> FlexibleCGState:
        r = state.r
        active = state.residual > state.threshold
        if not bool(active.any()):
            return state  # the recursive residuals meet the rule: a check confirms
        z = r if state.precondition is None else state.precondition(r)
        p = z.clone()
        for p_j, q_j, pq_j in state.directions:
            coef = dots(z, q_j) / pq_j
            p.sub_(p_j * column_scalars(coef, p))
        if bool((active & (column_norms(p) == 0)).any()):
            # M(r) = 0, or M(r) in the span of the kept directions: the step
            # has nowhere to go (not a definiteness question)
            state.zero_direction = True
            state.status = Status.BREAKDOWN
            return state
        q = state.matvec(p)
        pq = dots(p, q)
        if bool((active & (pq <= 0)).any()):
            state.status = Status.NOT_POSITIVE_DEFINITE
            return state
        pq = torch.where(active, pq, 1.0)
        alpha = torch.where(active, dots(p, r) / pq, 0.0)
        alpha = column_scalars(alpha, p)
        state.x.add_(p * alpha)
        r.sub_(q * alpha)
        state.directions.append((p, q, pq))
        del state.directions[: -self.truncation]
        state.steps += 1
        state.residual = column_norms(r)
        return state

    def diagnose(
        self, problem: LinearProblem, state: FlexibleCGState, status: Status
    ) -> str | None:
        if state.zero_direction:
            return (
                "the preconditioner's output left no new direction (zero after "
                "A-orthogonalization against the last "
                f"{self.truncation}); M must map a nonzero residual to a vector "
                "outside their span"
            )
        return None

    def converged(self, problem: LinearProblem, state: FlexibleCGState) -> bool:
        """``||b_j - A x_j|| <= max(rtol ||b_j||, atol)`` for every column: the
        recursive residuals first, then the true residual (:meth:`_verify`)."""
        if state.verified:
            return True
        if bool((state.residual > state.threshold).any()):
            return False
        self._verify(problem, state)
        return state.verified

    def _verify(self, problem: LinearProblem, state: FlexibleCGState) -> None:
        true_r = problem.residual(state.x)
        true_norm = column_norms(true_r)
        state.residual = true_norm
        if bool((true_norm <= state.threshold).all()):
            state.verified = True
            return
        worst = float((true_norm / state.threshold.clamp(min=1e-300)).max())
        if worst >= 0.9 * state.failed_verification:
            state.status = Status.STAGNATION
        state.failed_verification = worst
        state.r = true_r
        state.directions.clear()

    def metrics(
        self, problem: LinearProblem, state: FlexibleCGState
    ) -> dict[str, float]:
        relative = state.residual / state.bnorm.clamp(
            min=torch.finfo(state.bnorm.dtype).tiny
        )
        return {
            "residual_norm": float(state.residual.max()),
            "relative_residual": float(relative.max()),
        }

    def stats(self, problem: LinearProblem, state: FlexibleCGState) -> dict[str, float]:
        return {"matvecs": problem.A.matvecs}
