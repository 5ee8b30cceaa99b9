"""The reconstruction problem and what both reconstruction methods share."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from itersolve._core.frontdoor import check_tolerances
from itersolve._core.iterate import IterativeMethod
from itersolve._core.solution import Status
from itersolve.imaging._projector import ParallelBeamProjector

Tensor = torch.Tensor


@dataclass
class TomographyProblem:
    """``K x ~ y`` with ``x >= 0``; ``delta`` is the noise norm ``||e||``
    (``None``: unknown, the discrepancy rule is off).

    ``Kty = K^T y`` is computed on first use (in the method's ``init``, after
    the driver's input check, so it is counted as one back-projection of the
    run); every projection goes through ``projector`` and is counted there.
    """

    projector: ParallelBeamProjector
    y: Tensor
    delta: float | None
    _Kty: Tensor | None = None
    _Kt1: Tensor | None = None

    @property
    def Kty(self) -> Tensor:
        if self._Kty is None:
            self._Kty = self.projector.adjoint(self.y)
        return self._Kty

    @property
    def Kt1(self) -> Tensor:
        """``K^T 1``, the column sums (the Kullback-Leibler gradient's ``V``)."""
        if self._Kt1 is None:
            self._Kt1 = self.projector.adjoint(torch.ones_like(self.y))
        return self._Kt1

    def counts(self) -> dict[str, int]:
        return {
            "forward_projections": self.projector.forward_count,
            "back_projections": self.projector.adjoint_count,
        }


@dataclass(frozen=True, kw_only=True)
class ReconstructionMethod(IterativeMethod):
    """Hyperparameters and stopping rule shared by :class:`SGP` and
    :class:`FISTATV` (not a method of its own).

    Stopping rule, checked after every step: the discrepancy principle
    ``||K x_k - y|| <= tau delta`` when the noise norm ``delta`` is known, or
    ``||x_k - x_{k-1}|| <= rtol ||x_k||``, or ``max_steps``.
    """

    lam: float = 0.1
    rtol: float = 1e-6
    tau: float = 1.01
    nonnegative: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        if not (isinstance(self.lam, (int, float)) and math.isfinite(self.lam)):
            raise ValueError(f"lam must be a finite number >= 0, got {self.lam!r}")
        if self.lam < 0:
            raise ValueError(f"lam must be a finite number >= 0, got {self.lam!r}")
        check_tolerances(self.rtol, 0.0, both_zero=True)
        if self.rtol == 0:
            raise ValueError(f"rtol must be > 0, got {self.rtol!r}")
        if not (math.isfinite(self.tau) and self.tau >= 1):
            raise ValueError(f"tau must be a finite number >= 1, got {self.tau!r}")

    def default_max_steps(self, problem: Any) -> int:
        return 500

    def converged(self, problem: TomographyProblem, state: Any) -> bool:
        if problem.delta is not None and state.residual <= self.tau * problem.delta:
            state.stopped_by = "discrepancy"
            return True
        if state.change <= self.rtol * state.x_norm:
            state.stopped_by = "change"
            return True
        return False

    def terminate(self, problem: Any, state: Any) -> tuple[bool, Status]:
        if state.status is not None:
            return True, state.status
        if state.steps > 0 and self.converged(problem, state):
            return True, Status.SUCCESS
        if state.steps == 0 and problem.delta is not None:
            if state.residual <= self.tau * problem.delta:
                state.stopped_by = "discrepancy"
                return True, Status.SUCCESS
        return False, Status.SUCCESS

    def stats(self, problem: Any, state: Any) -> dict[str, float]:
        # 1.0 when the discrepancy principle ended the run (the early stop a
        # noisy reconstruction wants), 0.0 otherwise.
        return {"discrepancy_stop": float(state.stopped_by == "discrepancy")}


def norm(t: Tensor) -> float:
    return float(torch.linalg.vector_norm(t))
