"""Preconditioned conjugate gradients, batched over right-hand sides."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from itersolve._core.iterate import IterativeMethod
from itersolve._core.solution import Status
from itersolve.linear._problem import LinearProblem, column_norms, make_preconditioner


@dataclass
class CGState:
    x: torch.Tensor
    r: torch.Tensor
    p: torch.Tensor
    rz: torch.Tensor
    residual: torch.Tensor
    threshold: torch.Tensor
    bnorm: torch.Tensor
    precondition: Any
    steps: int = 0
    status: Status | None = None
    verified: bool = False
    failed_verification: float = float("inf")
    residual_replacements: int = 0


@dataclass(frozen=True, kw_only=True)
class CG(IterativeMethod):
    """Preconditioned conjugate gradients for symmetric positive definite ``A``.

    Equivalent to ``scipy.sparse.linalg.cg`` (same stopping rule, same meaning of
    ``M``), batched: ``b`` of shape ``(n, k)`` runs ``k`` independent CG recurrences
    at once, each column stopping on its own.

    Stopping rule, per column ``j``::

        ||b_j - A x_j|| <= max(rtol * ||b_j||, atol)

    checked on the recursive residual and confirmed on the true residual
    ``b - A x`` before declaring success (a failed confirmation replaces the
    recursive residual and the iteration goes on).

    Parameters
    ----------
    rtol, atol
        Relative and absolute tolerances (scipy's defaults).
    M
        Preconditioner approximating ``A^{-1}``: ``None``, ``"jacobi"``, a matrix,
        a ``LinearOperator`` or a callable ``r -> M r``. Must be SPD.
    residual_replacement
        Recompute the true residual every this many steps (``None``: only when
        the recursive one says converged). Guards against drift on ill-conditioned
        systems, at one extra matvec each time.

    Status ``NOT_POSITIVE_DEFINITE`` is returned when ``p^T A p <= 0`` or
    ``r^T M r <= 0`` for an unconverged column.

    References
    ----------
    Hestenes & Stiefel (1952); Saad, *Iterative Methods for Sparse Linear Systems*,
    Alg. 9.1.

    Examples
    --------
    >>> import numpy as np, itersolve
    >>> A = np.array([[4.0, 1.0], [1.0, 3.0]])
    >>> sol = itersolve.linear_solve(A, np.array([1.0, 2.0]), itersolve.CG(rtol=1e-12))
    >>> sol.success, np.allclose(A @ sol.x, [1.0, 2.0])
    (True, True)
    """

    rtol: float = 1e-5
    atol: float = 0.0
    M: Any = None
    residual_replacement: int | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.rtol >= 0:
            raise ValueError(f"rtol must be >= 0, got {self.rtol}")
        if not self.atol >= 0:
            raise ValueError(f"atol must be >= 0, got {self.atol}")
        if self.rtol == 0 and self.atol == 0:
            raise ValueError("rtol and atol cannot both be 0")
        if self.residual_replacement is not None and self.residual_replacement < 1:
            raise ValueError(
                "residual_replacement must be >= 1 or None, got "
                f"{self.residual_replacement}"
            )

    def default_max_steps(self, problem: LinearProblem) -> int:
        return 10 * problem.A.shape[0]

    def init(self, problem: LinearProblem, x0: torch.Tensor) -> CGState:
        A, b = problem.A, problem.b
        if A.shape[0] != A.shape[1]:
            raise ValueError(f"CG needs a square operator, got shape {A.shape}")
        precondition = make_preconditioner(self.M, A)
        x = x0.clone()
        r = problem.residual(x) if bool(x.any()) else b.clone()
        bnorm = column_norms(b)
        threshold = torch.clamp(bnorm * self.rtol, min=self.atol)
        p, rz = _first_direction(r, precondition)
        state = CGState(x, r, p, rz, column_norms(r), threshold, bnorm, precondition)
        if bool((rz < 0).any()):
            state.status = Status.NOT_POSITIVE_DEFINITE
        return state

    def step(self, problem: LinearProblem, state: CGState) -> CGState:
        x, r, p = state.x, state.r, state.p
        active = state.residual > state.threshold
        q = problem.A.matvec(p)
        pq = torch.linalg.vecdot(p, q, dim=0)
        if bool((active & (pq <= 0)).any()):
            state.status = Status.NOT_POSITIVE_DEFINITE
            return state
        alpha = torch.where(active, state.rz / pq, 0.0)
        x.addcmul_(p, alpha)
        r.addcmul_(q, alpha, value=-1.0)
        state.steps += 1
        if self.residual_replacement and state.steps % self.residual_replacement == 0:
            r.copy_(problem.residual(x))
            state.residual_replacements += 1
        if state.precondition is None:
            rz_new = torch.linalg.vecdot(r, r, dim=0)
            state.residual = rz_new.sqrt()
            z = r
        else:
            z = state.precondition(r)
            rz_new = torch.linalg.vecdot(r, z, dim=0)
            state.residual = column_norms(r)
            if bool((active & (rz_new < 0)).any()):
                state.status = Status.NOT_POSITIVE_DEFINITE
                return state
        beta = torch.where(active, rz_new / state.rz, 0.0)
        p.mul_(beta).add_(z)
        state.rz = rz_new
        if not bool((state.residual > state.threshold).any()):
            self._verify(problem, state)
        return state

    def _verify(self, problem: LinearProblem, state: CGState) -> None:
        true_r = problem.residual(state.x)
        true_norm = column_norms(true_r)
        if bool((true_norm <= state.threshold).all()):
            state.residual = true_norm
            state.verified = True
            return
        worst = float((true_norm / state.threshold.clamp(min=1e-300)).max())
        if worst >= 0.9 * state.failed_verification:
            state.status = Status.STAGNATION
        state.failed_verification = worst
        state.r = true_r
        state.residual = true_norm
        state.residual_replacements += 1
        state.p, state.rz = _first_direction(true_r, state.precondition)

    def terminate(self, problem: LinearProblem, state: CGState) -> tuple[bool, Status]:
        if state.status is not None:
            return True, state.status
        if state.verified or (state.steps == 0 and self._solved_at_start(state)):
            return True, Status.SUCCESS
        return False, Status.SUCCESS

    @staticmethod
    def _solved_at_start(state: CGState) -> bool:
        return not bool((state.residual > state.threshold).any())

    def metrics(self, problem: LinearProblem, state: CGState) -> dict[str, float]:
        relative = state.residual / state.bnorm.clamp(
            min=torch.finfo(state.bnorm.dtype).tiny
        )
        return {
            "residual_norm": float(state.residual.max()),
            "relative_residual": float(relative.max()),
        }

    def stats(self, problem: LinearProblem, state: CGState) -> dict[str, float]:
        return {
            "matvecs": problem.A.matvecs,
            "residual_replacements": state.residual_replacements,
        }


def _first_direction(
    r: torch.Tensor, precondition: Any
) -> tuple[torch.Tensor, torch.Tensor]:
    """The first search direction ``p = M r`` and ``r^T M r`` of a Krylov sequence."""
    z = r if precondition is None else precondition(r)
    return z.clone(), torch.linalg.vecdot(r, z, dim=0)
