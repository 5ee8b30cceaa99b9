"""Preconditioned conjugate gradients, batched over right-hand sides."""

from __future__ import annotations

import math
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
from itersolve._core.operators import LinearOperator
from itersolve._core.solution import Status
from itersolve.linear import _cg_kernels as kernels
from itersolve.linear._problem import (
    KRYLOV_RTOL,
    LinearProblem,
    asymmetry,
    check_square,
    column_norms,
    column_scalars,
    dots,
    explicit_matrix,
    fast_matvec,
    make_preconditioner,
    stopping_threshold,
)

_BACKENDS = ("auto", "torch", "numba")

#: Steps between stopping tests on CUDA (each test is a host synchronisation).
CUDA_CHECK_EVERY = 8


@dataclass
class FusedBuffers:
    """numpy views of the CG vectors for the compiled kernels (CPU, CSR).

    Scalars are Python floats for one right-hand side and float64 arrays for a
    block, so a step is one kernel call and a handful of scalar operations.
    """

    csr: tuple[np.ndarray, np.ndarray, np.ndarray]
    x: np.ndarray
    r: np.ndarray
    z: np.ndarray
    q: np.ndarray
    p: np.ndarray
    dinv: np.ndarray
    rz: Any
    residual: Any
    threshold: Any
    one: bool
    x_sum: float = 0.0

    def scalars(self, values: Any) -> Any:
        """Host values as the path's scalar type (float or float64 array)."""
        arr = np.asarray(values, dtype=np.float64)
        return float(arr.reshape(-1)[0]) if self.one else arr.reshape(-1).copy()

    def converged(self) -> bool:
        """The recursive residual test (``False`` on NaN)."""
        if self.one:
            return bool(self.residual <= self.threshold)
        return bool(np.all(self.residual <= self.threshold))


@dataclass
class CGState:
    x: torch.Tensor
    r: torch.Tensor
    p: torch.Tensor
    # Tensors of one value per column, or Python floats on the scalar path.
    rz: Any
    residual: Any
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
    # ``r`` is the true residual ``b - A x`` (at the start, after a replacement).
    true_residual: bool = True
    # Columns that met p^T A p <= 0 or r^T M r < 0, kept on the device when the
    # stopping test runs only every few steps (no host sync inside ``step``).
    not_positive_definite: torch.Tensor | None = None
    # One right-hand side tested every step (the inner solves of Newton-type
    # methods): ``rz``, ``residual`` and ``limit`` live as Python floats, so a
    # step is the matvec plus five vector operations and no tensor bookkeeping.
    scalar: bool = False
    limit: float = 0.0
    # Scalar path with a preconditioner: the step that meets the test skips
    # ``z = M r`` (the solve usually ends there, as SciPy's cg does, saving one
    # preconditioner application, e.g. a whole AMG V-cycle); a step that runs
    # after it (a failed true-residual check resets p itself; an unchecked
    # step with check_every > 1 does not) first completes the direction.
    direction_pending: bool = False


#: Failures a nonsymmetric matrix can cause in CG (worth the symmetry check).
_SYMMETRY_SUSPECTS = (
    Status.MAX_STEPS,
    Status.STAGNATION,
    Status.BREAKDOWN,
    Status.NOT_POSITIVE_DEFINITE,
)


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
    progress give ``Status.STAGNATION``). The test runs every ``check_every``
    steps: 1 on CPU, ``CUDA_CHECK_EVERY`` on CUDA, where it is the only host
    synchronisation; a column that converged between two tests is frozen
    (``alpha = beta = 0``), so the extra steps leave its answer unchanged.

    Parameters
    ----------
    rtol, atol
        Relative and absolute tolerances. ``rtol`` defaults to 1e-5 (SciPy's),
        lifted to ``100 eps`` in low precision (float32: 1.2e-5); ``None``
        means that default (see :mod:`itersolve.linear`).
    M
        Preconditioner approximating ``A^{-1}``: ``None``, ``"jacobi"``, a matrix,
        a ``LinearOperator``, ``Jacobi()``/``SSOR()`` (one sweep from zero) or a
        callable ``r -> M r``. Must be SPD (use
        :class:`FlexibleCG` for a variable or nonlinear one).
    residual_replacement
        Recompute the true residual every this many steps (``None``: only when
        the recursive one says converged). Guards against drift on ill-conditioned
        systems, at one extra matvec each time.
    backend
        ``"auto"``: on CPU with an explicit CSR matrix and ``M`` in
        ``(None, "jacobi")``, compiled numba kernels (one call per step) when
        numba is installed, torch otherwise; ``"torch"`` forces the torch path;
        ``"numba"`` requires the compiled path.

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
    >>> method = itersolve.linear.CG(rtol=1e-12)
    >>> sol = itersolve.linear_solve(A, np.array([1.0, 2.0]), method)
    >>> sol.success, np.allclose(A @ sol.x, [1.0, 2.0])
    (True, True)
    """

    ADVICE: ClassVar[dict[Status, str]] = {
        Status.MAX_STEPS: (
            "raise max_steps, loosen rtol or precondition (M='jacobi', "
            "SSORPreconditioner, an AMG V-cycle); CG needs A symmetric positive "
            "definite: for a nonsymmetric A use GMRES"
        ),
        Status.STAGNATION: (
            "the true residual stopped falling near rtol: loosen rtol (float32 "
            "resolves about 1e-7 relative) or precondition; a nonsymmetric A "
            "also stalls CG: use GMRES"
        ),
    }

    rtol: float = DefaultTolerance(KRYLOV_RTOL)
    atol: float = 0.0
    M: Any = None
    residual_replacement: int | None = None
    backend: str = "auto"

    def __post_init__(self) -> None:
        super().__post_init__()
        tolerance_field(self, KRYLOV_RTOL)
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

    def default_check_every(self, problem: LinearProblem) -> int:
        return CUDA_CHECK_EVERY if problem.b.is_cuda else 1

    def init(self, problem: LinearProblem, x0: torch.Tensor) -> CGState:
        A, b = problem.A, problem.b
        check_square("CG", A)
        precondition = make_preconditioner(self.M, A, symmetric=True)
        bnorm, threshold = stopping_threshold(
            b, resolve_rtol(self.rtol, b.dtype), self.atol
        )
        fused = self._fused_matrix(A, b.dtype, b.device)
        if fused is not None:
            return self._init_fused(problem, x0, fused, precondition, bnorm, threshold)
        x = x0.clone()
        r = problem.residual(x) if bool(x.any()) else b.clone()
        p, rz = _first_direction(r, precondition)
        state = CGState(x, r, p, rz, column_norms(r), threshold, bnorm, precondition)
        state.matvec = fast_matvec(A)
        if (self.check_every or self.default_check_every(problem)) > 1:
            state.not_positive_definite = torch.zeros_like(rz, dtype=torch.bool)
        elif b.ndim == 1:
            state.scalar = True
            state.rz = float(rz)
            state.residual = float(state.residual)
            state.limit = float(threshold)
        if bool((torch.as_tensor(rz) < 0).any()):
            state.status = Status.NOT_POSITIVE_DEFINITE
        return state

    # -- compiled CPU path -----------------------------------------------------

    def setup(self, A: LinearOperator) -> None:
        """One-off work for many solves with ``A`` (cached on the operator):
        the preconditioner and the arrays of the compiled kernels."""
        check_square("CG", A)
        make_preconditioner(self.M, A, symmetric=True)
        self._fused_matrix(A, A.dtype, A.device)

    def _fused_matrix(
        self, A: LinearOperator, dtype: torch.dtype, device: torch.device
    ) -> Any:
        usable = (
            kernels.HAVE_NUMBA
            and self.backend != "torch"
            and device.type == "cpu"
            and dtype in (torch.float32, torch.float64)
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
        if matrix is None:
            return None
        # The numpy views are cached on the operator: one setup, many solves.
        cached = A._cache.get("csr_arrays")
        if cached is None or cached[0] is not matrix:
            cached = (matrix, kernels.csr_arrays(matrix))
            A._cache["csr_arrays"] = cached
        return cached[1]

    def _init_fused(
        self,
        problem: LinearProblem,
        x0: torch.Tensor,
        csr: tuple[np.ndarray, np.ndarray, np.ndarray],
        precondition: Any,
        bnorm: torch.Tensor,
        threshold: torch.Tensor,
    ) -> CGState:
        # numpy throughout: a handful of tensor ops cost more than a small solve.
        b = problem.b
        x = x0.contiguous().clone()
        xs = x.numpy()
        r = problem.residual(x) if xs.any() else b.clone()
        r = r.contiguous()
        rs = r.numpy()
        if precondition is None:
            z, dinv = r, np.empty(0, dtype=rs.dtype)
        else:
            inv = precondition.inverse_diagonal.to(r.dtype).contiguous()
            z, dinv = precondition(r).contiguous(), inv.numpy()
        zs = z.numpy()
        one = b.ndim == 1
        if one:
            rr = float(np.dot(rs, rs))
            rz: Any = rr if precondition is None else float(np.dot(rs, zs))
            residual: Any = math.sqrt(rr)
            limit: Any = float(threshold)
        else:
            rz = kernels.column_dots(rs, zs)
            residual = np.sqrt(kernels.column_dots(rs, rs))
            limit = threshold.numpy().astype(np.float64)
        p = z.clone()
        buffers = FusedBuffers(
            csr=csr,
            x=xs,
            r=rs,
            z=zs,
            q=np.empty_like(rs),
            p=p.numpy(),
            dinv=dinv,
            rz=rz,
            residual=residual,
            threshold=limit,
            one=one,
        )
        # The tensors ``rz`` and ``residual`` of the state are the torch path's;
        # here the buffers hold them (``_verify`` sets ``residual``).
        state = CGState(
            x, r, p, bnorm, bnorm, threshold, bnorm, precondition, fused=buffers
        )
        if np.any(np.asarray(rz) < 0):
            state.status = Status.NOT_POSITIVE_DEFINITE
        return state

    def _step_fused(self, problem: LinearProblem, state: CGState) -> CGState:
        f = state.fused
        assert f is not None
        if f.converged():
            return state  # waiting for the next check point (check_every > 1)
        every = self.residual_replacement
        whole = not (every and (state.steps + 1) % every == 0)
        if f.one:
            code, alpha, rr, rz, total = kernels.cg_step(
                *f.csr, f.x, f.r, f.p, f.q, f.dinv, f.z, f.rz, whole
            )
            problem.A.matvecs += 1
        else:
            code, alpha, rr, rz, total = kernels.cg_step_block(
                *f.csr, f.x, f.r, f.p, f.q, f.dinv, f.z, f.rz, f.residual,
                f.threshold, whole,
            )  # fmt: skip
            problem.A.matvecs += f.x.shape[1]
        if code == kernels.NOT_POSITIVE_DEFINITE:
            state.status = Status.NOT_POSITIVE_DEFINITE
            return state
        state.steps += 1
        state.true_residual = False
        if not whole:
            self._replace_residual(problem, state, alpha)
        elif f.one:
            f.rz = rz
            f.residual = math.sqrt(rr)
            f.x_sum = total
        else:
            f.x_sum = total
        return state

    def _replace_residual(
        self, problem: LinearProblem, state: CGState, alpha: Any
    ) -> None:
        """The step after ``r -= alpha q``, with ``r`` replaced by ``b - A x``."""
        f = state.fused
        assert f is not None
        active = np.atleast_1d(f.residual > f.threshold)
        x, p = state.x, state.p
        a = torch.as_tensor(np.atleast_1d(alpha), dtype=x.dtype)
        x.addcmul_(p, a if not f.one else a[0])
        state.r.copy_(problem.residual(x))
        state.residual_replacements += 1
        state.true_residual = True
        rr, rz = self._refresh_z(state)
        beta = np.where(active, np.asarray(rz) / np.where(active, f.rz, 1.0), 0.0)
        p.mul_(torch.as_tensor(beta if not f.one else beta[0], dtype=p.dtype))
        p.add_(torch.from_numpy(f.z))
        f.rz = rz
        f.residual = math.sqrt(rr) if f.one else np.sqrt(rr)
        f.x_sum = float(x.sum())

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
        if state.status is not None:
            return state  # failed between two check points: wait for the test
        if state.fused is not None:
            return self._step_fused(problem, state)
        if state.scalar:
            return self._step_scalar(problem, state)
        x, r, p = state.x, state.r, state.p
        # With deferred tests the flags stay on the device: no host sync here.
        flags = state.not_positive_definite
        active = state.residual > state.threshold
        if flags is not None:
            active = active & ~flags
        q = state.matvec(p)
        pq = dots(p, q)
        bad = active & ~(pq > 0)
        if flags is not None:
            flags |= bad
            active = active & ~bad
        elif bool(bad.any()):
            state.status = Status.NOT_POSITIVE_DEFINITE
            return state
        # ``where`` keeps 0/0 of a frozen column out of x.
        alpha = column_scalars(torch.where(active, state.rz / pq, 0.0), x)
        x.addcmul_(p, alpha)
        r.addcmul_(q, alpha, value=-1.0)
        self._count_step(problem, state)
        if state.precondition is None:
            rz_new = dots(r, r)
            state.residual = rz_new.sqrt()
            z = r
        else:
            z = state.precondition(r)
            rz_new = dots(r, z)
            state.residual = column_norms(r)
            bad = active & (rz_new < 0)
            if flags is not None:
                flags |= bad
                active = active & ~bad
            elif bool(bad.any()):
                state.status = Status.NOT_POSITIVE_DEFINITE
                return state
        beta = column_scalars(torch.where(active, rz_new / state.rz, 0.0), p)
        p.mul_(beta).add_(z)
        state.rz = rz_new
        return state

    def _count_step(self, problem: LinearProblem, state: CGState) -> None:
        """After ``x += alpha p``, ``r -= alpha q``: count the step and, every
        ``residual_replacement`` steps, replace ``r`` by ``b - A x``."""
        state.steps += 1
        state.true_residual = False
        every = self.residual_replacement
        if every and state.steps % every == 0:
            state.r.copy_(problem.residual(state.x))
            state.residual_replacements += 1
            state.true_residual = True

    def _step_scalar(self, problem: LinearProblem, state: CGState) -> CGState:
        """One step for a single right-hand side with host scalars (same
        recurrence as :meth:`step`; the test runs every step, so a failure
        returns at once with ``x`` as it was before the failing update)."""
        x, r, p = state.x, state.r, state.p
        if state.direction_pending:
            state.direction_pending = False
            if not self._next_direction(state, float(torch.linalg.vector_norm(r))):
                return state
        q = state.matvec(p)
        pq = float(torch.dot(p, q))
        if not pq > 0:
            state.status = Status.NOT_POSITIVE_DEFINITE
            return state
        alpha = state.rz / pq
        x.add_(p, alpha=alpha)
        r.sub_(q, alpha=alpha)
        self._count_step(problem, state)
        if state.precondition is None:
            rz = float(torch.dot(r, r))
            p.mul_(rz / state.rz).add_(r)
            state.rz = rz
            state.residual = math.sqrt(rz)
            return state
        residual = float(torch.linalg.vector_norm(r))
        if residual <= state.limit:
            state.residual = residual
            state.direction_pending = True
            return state
        self._next_direction(state, residual)
        return state

    def _next_direction(self, state: CGState, residual: float) -> bool:
        """``z = M r``, ``p = z + (r.z / r_old.z_old) p`` on the scalar path;
        ``False`` (and NOT_POSITIVE_DEFINITE) when ``r.z < 0``."""
        assert state.precondition is not None
        z = state.precondition(state.r)
        rz = float(torch.dot(state.r, z))
        state.residual = residual
        if rz < 0:
            state.status = Status.NOT_POSITIVE_DEFINITE
            return False
        state.p.mul_(rz / state.rz).add_(z)
        state.rz = rz
        return True

    # -- stopping rule ------------------------------------------------------------

    def terminate(self, problem: LinearProblem, state: CGState) -> tuple[bool, Status]:
        """Stop on a failure flag, or once :meth:`converged` (success)."""
        if state.status is None and state.not_positive_definite is not None:
            if bool(state.not_positive_definite.any()):
                state.status = Status.NOT_POSITIVE_DEFINITE
        if state.status is not None:
            return True, state.status
        if self.converged(problem, state):
            return True, Status.SUCCESS
        if state.status is not None:  # a confirmation failed without progress
            return True, state.status
        return False, Status.SUCCESS

    def converged(self, problem: LinearProblem, state: CGState) -> bool:
        """``||r_j|| <= max(rtol ||b_j||, atol)`` for every column, on the
        recursive residual, then confirmed on ``b - A x`` (:meth:`_verify`)."""
        if state.verified:
            return True
        if state.fused is not None:
            recursive = state.fused.converged()
        elif state.scalar:
            recursive = state.residual <= state.limit
        else:
            recursive = bool((state.residual <= state.threshold).all())
        if not recursive:
            return False
        if state.true_residual:
            return True
        return self._verify(problem, state)

    def _verify(self, problem: LinearProblem, state: CGState) -> bool:
        true_r = problem.residual(state.x)
        f = state.fused
        if f is not None:
            # host values: the buffers' scalars, no tensor reductions
            rs = true_r.numpy()
            if f.one:
                true_norm: Any = math.sqrt(float(np.dot(rs, rs)))
            else:
                true_norm = np.sqrt(kernels.column_dots(rs, rs))
            f.residual = true_norm
            limit = np.maximum(np.asarray(f.threshold), 1e-300)
            ratio = float(np.max(np.asarray(true_norm) / limit))
            accepted = bool(np.all(np.asarray(true_norm) <= f.threshold))
        else:
            true_norm = column_norms(true_r)
            state.residual = true_norm
            accepted = bool((true_norm <= state.threshold).all())
            if not accepted:
                limit = state.threshold.clamp(min=1e-300)
                ratio = float((true_norm / limit).max())
        if accepted:
            state.verified = True
            return True
        if ratio >= 0.9 * state.failed_verification:
            state.status = Status.STAGNATION
        state.failed_verification = ratio
        state.residual_replacements += 1
        state.true_residual = True
        if f is not None:
            state.r.copy_(true_r)
            _, f.rz = self._refresh_z(state)
            np.copyto(f.p, f.z)  # restart: p = M r
            return False
        state.r = true_r
        state.p, state.rz = _first_direction(true_r, state.precondition)
        state.direction_pending = False
        if state.scalar:
            state.rz = float(state.rz)
            state.residual = float(true_norm)
        return False

    def is_finite(self, problem: LinearProblem, state: CGState) -> bool:
        # The compiled update sums x on the fly: a finite sum proves every entry
        # finite; an infinite or NaN one falls back to the full scan.
        if state.fused is not None and math.isfinite(state.fused.x_sum):
            return True
        return super().is_finite(problem, state)

    def diagnose(
        self, problem: LinearProblem, state: CGState, status: Status
    ) -> str | None:
        """After a failure on an explicit matrix, say whether ``A`` is
        nonsymmetric (one pass over the matrix, paid only here)."""
        if status not in _SYMMETRY_SUSPECTS or problem.A.symmetric is True:
            return None
        A = explicit_matrix(problem.A)
        if A is None:
            return None
        ratio = asymmetry(A)
        if ratio <= 1e-12:
            return None
        return (
            f"A is not symmetric: max|A - A^T| = {ratio:.2g} max|A|; CG needs a "
            "symmetric positive definite A, use GMRES"
        )

    def metrics(self, problem: LinearProblem, state: CGState) -> dict[str, float]:
        residual = state.residual
        if state.fused is not None:
            residual = torch.as_tensor(np.atleast_1d(state.fused.residual))
        elif state.scalar:
            residual = torch.tensor([float(residual)], dtype=torch.float64)
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


def _first_direction(
    r: torch.Tensor, precondition: Any
) -> tuple[torch.Tensor, torch.Tensor]:
    """The first search direction ``p = M r`` and ``r^T M r`` of a Krylov sequence."""
    z = r if precondition is None else precondition(r)
    return z.clone(), dots(r, z)
