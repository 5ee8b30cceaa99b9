"""Preconditioned conjugate gradients, batched over right-hand sides."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from itersolve._core.iterate import IterativeMethod
from itersolve._core.solution import Status
from itersolve.linear import _cg_kernels as kernels
from itersolve.linear._problem import (
    LinearProblem,
    check_square,
    check_tolerances,
    column_norms,
    column_scalars,
    dots,
    explicit_matrix,
    fast_matvec,
    make_preconditioner,
    stopping_threshold,
)

_BACKENDS = ("auto", "torch", "numba")


@dataclass
class FusedBuffers:
    """numpy views of the CG vectors for the fused numba kernels (CPU, CSR).

    Scalars are Python floats for one right-hand side and float64 arrays for a
    block, so a step costs two kernel calls and a handful of scalar operations.
    """

    csr: tuple[np.ndarray, np.ndarray, np.ndarray]
    x: np.ndarray
    r: np.ndarray
    z: np.ndarray
    q: np.ndarray
    p: np.ndarray
    p_spare: np.ndarray
    p_spare_t: torch.Tensor
    dinv: np.ndarray
    beta: Any
    rz: Any
    residual: Any
    threshold: Any
    one: bool
    x_sum: float = 0.0

    def scalars(self, values: Any) -> Any:
        """Host values as the path's scalar type (float or float64 array)."""
        arr = np.asarray(values, dtype=np.float64)
        return float(arr.reshape(-1)[0]) if self.one else arr.reshape(-1).copy()


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
    fused: FusedBuffers | None = None
    matvec: Any = None


@dataclass(frozen=True, kw_only=True)
class CG(IterativeMethod):
    """Preconditioned conjugate gradients for symmetric positive definite ``A``.

    Equivalent to ``scipy.sparse.linalg.cg`` (same stopping rule, same meaning of
    ``M``), batched: ``b`` of shape ``(n, k)`` runs ``k`` independent CG recurrences
    at once, each column stopping on its own; a batched dense ``A`` of shape
    ``(B, n, n)`` (see :func:`~itersolve.linear_solve`) runs ``B`` systems at once.

    Stopping rule, per column ``j``::

        ||b_j - A x_j|| <= max(rtol * ||b_j||, atol)

    checked on the recursive residual and confirmed on the true residual
    ``b - A x`` before declaring success (a failed confirmation replaces the
    recursive residual and the iteration goes on; two failures in a row without
    progress give ``Status.STAGNATION``).

    Parameters
    ----------
    rtol, atol
        Relative and absolute tolerances (scipy's defaults).
    M
        Preconditioner approximating ``A^{-1}``: ``None``, ``"jacobi"``, a matrix,
        a ``LinearOperator`` or a callable ``r -> M r``. Must be SPD (use
        :class:`FlexibleCG` for a variable or nonlinear one).
    residual_replacement
        Recompute the true residual every this many steps (``None``: only when
        the recursive one says converged). Guards against drift on ill-conditioned
        systems, at one extra matvec each time.
    backend
        ``"auto"``: on CPU with an explicit CSR matrix and ``M`` in
        ``(None, "jacobi")``, fused numba kernels (two passes over memory per
        step) when numba is installed, torch otherwise; ``"torch"`` forces the
        torch path; ``"numba"`` requires the fused path.

    Status ``NOT_POSITIVE_DEFINITE`` is returned when ``p^T A p <= 0`` or
    ``r^T M r < 0`` for an unconverged column.

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
    backend: str = "auto"

    def __post_init__(self) -> None:
        super().__post_init__()
        check_tolerances(self.rtol, self.atol)
        if self.residual_replacement is not None and self.residual_replacement < 1:
            raise ValueError(
                "residual_replacement must be >= 1 or None, got "
                f"{self.residual_replacement}"
            )
        if self.backend not in _BACKENDS:
            raise ValueError(
                f"backend must be one of {_BACKENDS}, got {self.backend!r}"
            )
        if self.backend == "numba" and not kernels.HAVE_NUMBA:
            raise ValueError("backend='numba' needs numba installed")

    def default_max_steps(self, problem: LinearProblem) -> int:
        return 10 * problem.A.shape[0]

    def init(self, problem: LinearProblem, x0: torch.Tensor) -> CGState:
        A, b = problem.A, problem.b
        check_square("CG", A)
        precondition = make_preconditioner(self.M, A)
        bnorm, threshold = stopping_threshold(b, self.rtol, self.atol)
        fused = self._fused_matrix(problem)
        if fused is not None:
            return self._init_fused(problem, x0, fused, precondition, bnorm, threshold)
        x = x0.clone()
        r = problem.residual(x) if bool(x.any()) else b.clone()
        p, rz = _first_direction(r, precondition)
        state = CGState(x, r, p, rz, column_norms(r), threshold, bnorm, precondition)
        state.matvec = fast_matvec(A)
        if bool((rz < 0).any()):
            state.status = Status.NOT_POSITIVE_DEFINITE
        return state

    # -- fused CPU path --------------------------------------------------------

    def _fused_matrix(self, problem: LinearProblem) -> torch.Tensor | None:
        A, b = problem.A, problem.b
        usable = (
            kernels.HAVE_NUMBA
            and self.backend != "torch"
            and b.device.type == "cpu"
            and b.dtype in (torch.float32, torch.float64)
            and (self.M is None or (isinstance(self.M, str) and self.M == "jacobi"))
        )
        matrix = explicit_matrix(A) if usable else None
        if matrix is not None and matrix.layout != torch.sparse_csr:
            matrix = None
        if matrix is None and self.backend == "numba":
            raise ValueError(
                "backend='numba' needs a CPU float32/float64 CSR matrix and M in "
                "(None, 'jacobi')"
            )
        return matrix

    def _init_fused(
        self,
        problem: LinearProblem,
        x0: torch.Tensor,
        matrix: torch.Tensor,
        precondition: Any,
        bnorm: torch.Tensor,
        threshold: torch.Tensor,
    ) -> CGState:
        b = problem.b
        x = x0.contiguous().clone()
        r = problem.residual(x) if bool(x.any()) else b.contiguous().clone()
        r = r.contiguous()
        if precondition is None:
            z, dinv = r, np.empty(0, dtype=r.numpy().dtype)
        else:
            inv = precondition.inverse_diagonal.to(r.dtype).contiguous()
            z, dinv = precondition(r).contiguous(), inv.numpy()
        rz = torch.linalg.vecdot(r, z, dim=0)
        residual = column_norms(r)
        one = b.ndim == 1
        p, spare = torch.zeros_like(r), torch.zeros_like(r)
        q = torch.empty_like(r)
        buffers = FusedBuffers(
            csr=kernels.csr_arrays(matrix),
            x=x.numpy(),
            r=r.numpy(),
            z=z.numpy(),
            q=q.numpy(),
            p=p.numpy(),
            p_spare=spare.numpy(),
            p_spare_t=spare,
            dinv=dinv,
            beta=0.0 if one else np.zeros(b.shape[1]),
            rz=None,
            residual=None,
            threshold=None,
            one=one,
        )
        buffers.rz = buffers.scalars(rz.numpy())
        buffers.residual = buffers.scalars(residual.numpy())
        buffers.threshold = buffers.scalars(threshold.numpy())
        state = CGState(
            x, r, p, rz, residual, threshold, bnorm, precondition, fused=buffers
        )
        if bool((rz < 0).any()):
            state.status = Status.NOT_POSITIVE_DEFINITE
        return state

    def _step_fused(self, problem: LinearProblem, state: CGState) -> CGState:
        f = state.fused
        assert f is not None
        if f.one:
            # p_new = z + beta p and q = A p_new in one pass; p_new goes to the
            # spare buffer, which then becomes the current direction.
            pq = kernels.direction_spmv(*f.csr, f.z, f.p, f.beta, f.p_spare, f.q, 1)
            problem.A.matvecs += 1
            self._swap_directions(state)
            if not pq > 0:
                state.status = Status.NOT_POSITIVE_DEFINITE
                return state
            rr, rz, f.x_sum = kernels.update(
                f.x, f.r, f.p, f.q, f.rz / pq, f.dinv, f.z, 1
            )
            if state.precondition is None:
                rz = rr
            active: Any = True
        else:
            active = f.residual > f.threshold
            pq = kernels.direction_spmm(*f.csr, f.z, f.p, f.beta, f.p_spare, f.q, 1)
            problem.A.matvecs += f.x.shape[1]
            self._swap_directions(state)
            if (active & (pq <= 0)).any():
                state.status = Status.NOT_POSITIVE_DEFINITE
                return state
            alpha = np.where(active, f.rz / np.where(active, pq, 1.0), 0.0)
            rr, rz, f.x_sum = kernels.update_block(
                f.x, f.r, f.p, f.q, alpha, f.dinv, f.z, 1
            )
            if state.precondition is None:
                rz = rr
        state.steps += 1
        if self.residual_replacement and state.steps % self.residual_replacement == 0:
            state.r.copy_(problem.residual(state.x))
            state.residual_replacements += 1
            rr, rz = self._refresh_z(state)
        if np.any(active & (np.asarray(rz) < 0)):
            state.status = Status.NOT_POSITIVE_DEFINITE
            return state
        if f.one:
            f.beta = rz / f.rz
        else:
            f.beta = np.where(active, rz / np.where(active, f.rz, 1.0), 0.0)
        f.rz = rz
        f.residual = np.sqrt(rr) if not f.one else math.sqrt(rr)
        if not np.any(f.residual > f.threshold):
            self._verify(problem, state)
        return state

    @staticmethod
    def _swap_directions(state: CGState) -> None:
        f = state.fused
        assert f is not None
        state.p, f.p_spare_t = f.p_spare_t, state.p
        f.p, f.p_spare = f.p_spare, f.p

    @staticmethod
    def _refresh_z(state: CGState) -> tuple[Any, Any]:
        """After ``r`` was replaced: recompute ``z = M r``, ``r.r`` and ``r.z``."""
        f = state.fused
        assert f is not None
        rr = f.scalars(torch.linalg.vecdot(state.r, state.r, dim=0).numpy())
        if state.precondition is None:
            return rr, rr
        torch.from_numpy(f.z).copy_(state.precondition(state.r))
        rz = torch.linalg.vecdot(state.r, torch.from_numpy(f.z), dim=0)
        return rr, f.scalars(rz.numpy())

    # -- torch path -------------------------------------------------------------

    def step(self, problem: LinearProblem, state: CGState) -> CGState:
        if state.fused is not None:
            return self._step_fused(problem, state)
        x, r, p = state.x, state.r, state.p
        active = state.residual > state.threshold
        q = state.matvec(p)
        pq = dots(p, q)
        if bool((active & (pq <= 0)).any()):
            state.status = Status.NOT_POSITIVE_DEFINITE
            return state
        alpha = column_scalars(torch.where(active, state.rz / pq, 0.0), x)
        x.addcmul_(p, alpha) if x.ndim > 1 else x.add_(p, alpha=_item(alpha))
        r.addcmul_(q, alpha, value=-1.0) if r.ndim > 1 else r.sub_(
            q, alpha=_item(alpha)
        )
        state.steps += 1
        if self.residual_replacement and state.steps % self.residual_replacement == 0:
            r.copy_(problem.residual(x))
            state.residual_replacements += 1
        if state.precondition is None:
            rz_new = dots(r, r)
            state.residual = rz_new.sqrt()
            z = r
        else:
            z = state.precondition(r)
            rz_new = dots(r, z)
            state.residual = column_norms(r)
            if bool((active & (rz_new < 0)).any()):
                state.status = Status.NOT_POSITIVE_DEFINITE
                return state
        beta = column_scalars(torch.where(active, rz_new / state.rz, 0.0), p)
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
        state.residual = true_norm
        state.residual_replacements += 1
        if state.fused is not None:
            f = state.fused
            state.r.copy_(true_r)
            f.residual = f.scalars(true_norm.numpy())
            _, f.rz = self._refresh_z(state)
            f.beta = 0.0 if f.one else np.zeros_like(f.beta)
            return
        state.r = true_r
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

    def is_finite(self, problem: LinearProblem, state: CGState) -> bool:
        # The fused update sums x on the fly: a finite sum proves every entry
        # finite; an infinite or NaN one falls back to the full scan.
        if state.fused is not None and math.isfinite(state.fused.x_sum):
            return True
        return super().is_finite(problem, state)

    def metrics(self, problem: LinearProblem, state: CGState) -> dict[str, float]:
        residual = state.residual
        if state.fused is not None and not state.verified:
            residual = torch.as_tensor(np.atleast_1d(state.fused.residual))
        relative = residual.to(state.bnorm.dtype) / state.bnorm.clamp(
            min=torch.finfo(state.bnorm.dtype).tiny
        )
        return {
            "residual_norm": float(residual.max()),
            "relative_residual": float(relative.max()),
        }

    def stats(self, problem: LinearProblem, state: CGState) -> dict[str, float]:
        return {
            "matvecs": problem.A.matvecs,
            "residual_replacements": state.residual_replacements,
        }


def _item(t: torch.Tensor) -> float:
    return float(t)


def _first_direction(
    r: torch.Tensor, precondition: Any
) -> tuple[torch.Tensor, torch.Tensor]:
    """The first search direction ``p = M r`` and ``r^T M r`` of a Krylov sequence."""
    z = r if precondition is None else precondition(r)
    return z.clone(), dots(r, z)
