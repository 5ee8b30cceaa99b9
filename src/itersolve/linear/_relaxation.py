"""What the stationary relaxation methods share: state, validation, stopping rule."""

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
from itersolve.linear._problem import RELAXATION_RTOL, LinearProblem, column_norms
from itersolve.linear._relaxation_kernels import (
    BACKENDS,
    BoundSweeper,
    checked_diagonal,
    explicit_matrix,
    matrix_is_finite,
    resolve_backend,
)
from itersolve.linear._relaxation_preconditioner import RelaxationPreconditioner

# A residual this many times the reference norm means the iteration diverges.
DIVERGENCE_FACTOR = 1e8


@dataclass
class RelaxationState:
    """The iterate, its residual and the stopping test's data.

    ``sq`` (the sweeper's buffer) holds the squared column norms of ``r``, fresh
    after each checked step (``fresh``); thresholds are numpy arrays, and for one
    column also floats (``single``), so the stopping test costs no tensor or
    array dispatch. ``x_sum`` is ``sum(x)`` when the step computed it, the
    driver's finiteness certificate.
    """

    x: torch.Tensor
    r: torch.Tensor
    sq: np.ndarray
    threshold: np.ndarray
    reference: np.ndarray
    limit: np.ndarray
    sweeper: Any
    single: tuple[float, float] | None
    steps: int = 0
    fresh: bool = True
    x_sum: float | None = None
    status: Status | None = None

    @property
    def residual(self) -> np.ndarray:
        """Column norms of the last residual computed."""
        return _residual_norms(self.sq, self.r)


def validate_omega(omega: float, upper: float = 2.0) -> None:
    if isinstance(omega, bool) or not isinstance(omega, (int, float)):
        raise TypeError(f"omega must be a float, got {type(omega).__name__}")
    if not 0.0 < omega < upper:
        raise ValueError(f"omega must be in (0, {upper:g}), got {omega}")


@dataclass(frozen=True, kw_only=True)
class Relaxation(IterativeMethod):
    """Base of Jacobi, Gauss–Seidel, SOR and SSOR: one sweep per step.

    Stopping rule, per column ``j`` of ``b``::

        ||b_j - A x_j|| <= max(rtol * ref_j, atol),
        ref_j = ||b_j||  (norm_ref="b")  or  ||b_j - A x0_j||  (norm_ref="r0"),

    checked on the true residual every ``check_every`` sweeps (the residual a
    checked sweep computes is a fresh ``b - A x``, not an update). ``DIVERGED``
    when the residual exceeds ``1e8`` times the reference; iterates that
    overflow end ``NONFINITE`` (the sweep's ``sum(x)`` is the certificate).

    As a preconditioner (``GMRES(M=Jacobi())``, ``FlexibleCG(M=SSOR())``, or
    :meth:`as_preconditioner` for several sweeps), ``M^{-1} r`` is the result
    of sweeps on ``A z = r`` from ``z = 0``.
    """

    #: Whether the sweep's ``M^{-1}`` is symmetric for symmetric ``A`` (Jacobi,
    #: SSOR), which CG and MINRES need of a preconditioner.
    symmetric_sweep: ClassVar[bool] = False

    omega: float = 1.0
    rtol: float = DefaultTolerance(RELAXATION_RTOL)
    atol: float = 0.0
    norm_ref: str = "b"
    check_every: int = 1
    backend: str = "auto"

    def __post_init__(self) -> None:
        super().__post_init__()
        validate_omega(self.omega)
        tolerance_field(self, RELAXATION_RTOL)
        check_tolerances(self.rtol, self.atol)
        if self.norm_ref not in ("b", "r0"):
            raise ValueError(f"norm_ref must be 'b' or 'r0', got {self.norm_ref!r}")
        if not isinstance(self.check_every, int) or self.check_every < 1:
            raise ValueError(
                f"check_every must be a positive int, got {self.check_every!r}"
            )
        if self.backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {self.backend!r}")

    @property
    def name(self) -> str:
        return type(self).__name__

    def default_max_steps(self, problem: LinearProblem) -> int:
        return 10_000

    def make_sweeper(
        self, A: LinearOperator, diag: torch.Tensor, backend: str
    ) -> BoundSweeper:
        raise NotImplementedError

    def as_preconditioner(self, A: Any, sweeps: int = 1) -> RelaxationPreconditioner:
        """``r -> M^{-1} r``: ``sweeps`` steps of this method on ``A z = r`` from
        ``z = 0`` (see :class:`RelaxationPreconditioner`); pass it as ``M``.

        Examples
        --------
        >>> import numpy as np, itersolve
        >>> from itersolve.problems import convection_diffusion
        >>> A = convection_diffusion(8, dim=2, peclet=20.0)
        >>> M = itersolve.linear.SOR(omega=1.2).as_preconditioner(A, sweeps=2)
        >>> method = itersolve.linear.GMRES(rtol=1e-8, M=M)
        >>> itersolve.linear_solve(A, np.ones(64), method).success
        True
        """
        return RelaxationPreconditioner(self, A, sweeps)

    def init(self, problem: LinearProblem, x0: torch.Tensor) -> RelaxationState:
        A = problem.A
        finite = matrix_is_finite(explicit_matrix(A, self.name))
        diag = checked_diagonal(A, self.name)
        backend = resolve_backend(self.backend, A)
        sweeper = self.make_sweeper(A, diag, backend)
        x = x0.clone().contiguous()
        r = torch.empty_like(x)
        sweeper.bind(x, problem.b.contiguous(), r)
        x_sum = sweeper.residual()
        residual = _residual_norms(sweeper.sq, r)
        bnorm = _norms(problem.b)
        reference = bnorm if self.norm_ref == "b" else residual.copy()
        rtol = resolve_rtol(self.rtol, problem.b.dtype)
        threshold = np.maximum(reference * rtol, self.atol)
        with np.errstate(over="ignore"):  # inf: only NONFINITE ends the run
            limit = DIVERGENCE_FACTOR * np.maximum(reference, bnorm)
        single = (float(threshold[0]), float(limit[0])) if len(bnorm) == 1 else None
        state = RelaxationState(
            x, r, sweeper.sq, threshold, reference, limit, sweeper, single
        )
        state.x_sum = x_sum
        if not finite:
            state.status = Status.NONFINITE_INPUT
        return state

    def step(self, problem: LinearProblem, state: RelaxationState) -> RelaxationState:
        state.steps += 1
        fresh = state.steps % self.check_every == 0
        # The residual, its norms and sum(x) come out of the sweep's own call.
        state.x_sum = state.sweeper.sweep(fresh)
        state.fresh = fresh
        return state

    def terminate(
        self, problem: LinearProblem, state: RelaxationState
    ) -> tuple[bool, Status]:
        if state.status is not None:
            return True, state.status
        if not state.fresh:
            # Asked off a check point (at the step limit): decide on a fresh residual.
            state.x_sum = state.sweeper.residual()
            state.fresh = True
        # Written so that a NaN residual never counts as converged.
        if state.single is not None:
            norm = math.sqrt(state.sq[0])
            if norm == math.inf:
                norm = float(_norms(state.r)[0])
            threshold, limit = state.single
            if norm <= threshold:
                return True, Status.SUCCESS
            return (True, Status.DIVERGED) if norm > limit else (False, Status.SUCCESS)
        norms = state.residual
        if (norms <= state.threshold).all():
            return True, Status.SUCCESS
        if (norms > state.limit).any():
            return True, Status.DIVERGED
        return False, Status.SUCCESS

    def metrics(
        self, problem: LinearProblem, state: RelaxationState
    ) -> dict[str, float]:
        tiny = np.finfo(state.reference.dtype).tiny
        residual = state.residual
        relative = residual / np.maximum(state.reference, tiny)
        return {
            "residual_norm": float(residual.max()),
            "relative_residual": float(relative.max()),
        }

    def stats(self, problem: LinearProblem, state: RelaxationState) -> dict[str, float]:
        return {"sweeps": state.steps}


def _norms(x: torch.Tensor) -> np.ndarray:
    """Column norms in float64, without overflow for entries near the dtype's max
    (the sum of squares overflows past ~1e154 in float64)."""
    norms = column_norms(x).cpu().numpy().reshape(-1).astype(np.float64)
    if np.isinf(norms).any():
        block = x.reshape(x.shape[0], -1).double()
        big = block.abs().amax(dim=0).clamp(min=torch.finfo(block.dtype).tiny)
        scaled = torch.where(big.isinf(), big, big * column_norms(block / big))
        norms = scaled.cpu().numpy().reshape(-1)
    return norms


def _residual_norms(sq: np.ndarray, r: torch.Tensor) -> np.ndarray:
    """``sqrt(sq)``, recomputed with scaling when the sum of squares overflowed."""
    norms = np.sqrt(sq)
    return _norms(r) if np.isinf(norms).any() else norms
