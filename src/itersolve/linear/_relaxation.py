"""What the stationary relaxation methods share: state, validation, stopping rule."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from itersolve._core.iterate import IterativeMethod
from itersolve._core.solution import Status
from itersolve.linear._problem import LinearProblem, column_norms
from itersolve.linear._relaxation_kernels import (
    BACKENDS,
    checked_diagonal,
    explicit_matrix,
    matrix_is_finite,
    resolve_backend,
)

# A residual this many times the reference norm means the iteration diverges.
DIVERGENCE_FACTOR = 1e8


@dataclass
class RelaxationState:
    """Residual norms are kept as numpy arrays (one entry per column): the
    stopping test then runs without tensor dispatch, which dominates small sweeps.
    """

    x: torch.Tensor
    r: torch.Tensor
    residual: np.ndarray
    threshold: np.ndarray
    reference: np.ndarray
    limit: np.ndarray
    sweeper: Any
    steps: int = 0
    status: Status | None = None


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

    checked on the true residual every ``check_every`` sweeps. ``DIVERGED`` when the
    residual exceeds ``1e8`` times the reference.
    """

    omega: float = 1.0
    rtol: float = 1e-8
    atol: float = 0.0
    norm_ref: str = "b"
    check_every: int = 1
    backend: str = "auto"

    def __post_init__(self) -> None:
        super().__post_init__()
        validate_omega(self.omega)
        if not self.rtol >= 0:
            raise ValueError(f"rtol must be >= 0, got {self.rtol}")
        if not self.atol >= 0:
            raise ValueError(f"atol must be >= 0, got {self.atol}")
        if self.rtol == 0 and self.atol == 0:
            raise ValueError("rtol and atol cannot both be 0")
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
        self, problem: LinearProblem, diag: torch.Tensor, backend: str
    ) -> Any:
        raise NotImplementedError

    def init(self, problem: LinearProblem, x0: torch.Tensor) -> RelaxationState:
        A, b = problem.A, problem.b
        finite = matrix_is_finite(explicit_matrix(A, self.name))
        diag = checked_diagonal(A, self.name)
        backend = resolve_backend(self.backend, A)
        sweeper = self.make_sweeper(problem, diag, backend)
        x = x0.clone().contiguous()
        r = problem.residual(x).contiguous()
        residual = _norms(r)
        bnorm = _norms(b)
        reference = bnorm if self.norm_ref == "b" else residual.copy()
        threshold = np.maximum(reference * self.rtol, self.atol)
        limit = DIVERGENCE_FACTOR * np.maximum(reference, bnorm)
        state = RelaxationState(x, r, residual, threshold, reference, limit, sweeper)
        if not finite:
            state.status = Status.NONFINITE_INPUT
        return state

    def step(self, problem: LinearProblem, state: RelaxationState) -> RelaxationState:
        state.steps += 1
        check = state.steps % self.check_every == 0
        norms = state.sweeper.sweep(state.x, problem.b, state.r if check else None)
        if norms is not None:
            state.residual = norms
        return state

    def terminate(
        self, problem: LinearProblem, state: RelaxationState
    ) -> tuple[bool, Status]:
        if state.status is not None:
            return True, state.status
        if state.steps % self.check_every:
            return False, Status.SUCCESS
        # Written so that a NaN residual never counts as converged.
        if (state.residual <= state.threshold).all():
            return True, Status.SUCCESS
        if (state.residual > state.limit).any():
            return True, Status.DIVERGED
        return False, Status.SUCCESS

    def metrics(
        self, problem: LinearProblem, state: RelaxationState
    ) -> dict[str, float]:
        tiny = np.finfo(state.reference.dtype).tiny
        relative = state.residual / np.maximum(state.reference, tiny)
        return {
            "residual_norm": float(state.residual.max()),
            "relative_residual": float(relative.max()),
        }

    def stats(self, problem: LinearProblem, state: RelaxationState) -> dict[str, float]:
        return {"sweeps": state.steps}


def _norms(x: torch.Tensor) -> np.ndarray:
    return column_norms(x).cpu().numpy().reshape(-1)
