"""What every accelerated fixed-point method shares: the evaluation of a new
iterate, the per-sample stopping rule and the lowest-residual record."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar

import torch

from itersolve._core.frontdoor import check_tolerances, resolve_rtol, tolerance_field
from itersolve._core.iterate import IterativeMethod
from itersolve._core.solution import Status
from itersolve.fixed_point._problem import (
    DIVERGENCE_FACTOR,
    FixedPointProblem,
    row_norms,
)

#: The family's default relative tolerance on ``||f(z) - z|| / ||z||``, lifted to
#: ``100 eps`` of the dtype (float32: 1.2e-5).
FIXED_POINT_RTOL = 1e-8


@dataclass(kw_only=True)
class FixedPointState:
    """Rows ``(B, n)``: the iterate ``x``, ``fx = f(x)`` and ``g = fx - x``
    evaluated at ``x`` itself; per row the residual norm ``res``, its first
    value ``res0``, whether the row still iterates (``active``), whether it
    diverged, and how many evaluations of ``f`` it used (``fevals``)."""

    x: torch.Tensor
    fx: torch.Tensor
    g: torch.Tensor
    res: torch.Tensor
    res0: torch.Tensor
    active: torch.Tensor
    diverged: torch.Tensor
    fevals: torch.Tensor
    status: Status | None = None


StateT = TypeVar("StateT", bound=FixedPointState)


@dataclass(frozen=True, kw_only=True)
class FixedPointMethod(IterativeMethod):
    """Shared hyperparameters and stopping rule of the fixed-point methods.

    Each row ``b`` (sample) of the problem stops on its own, on a fresh
    evaluation of ``f`` at its current iterate::

        ||f(z_b) - z_b||_2 <= max(rtol ||z_b||_2, atol)

    A converged row is frozen (its iterate no longer changes, its evaluations
    are no longer counted); a row whose residual grows past ``1e6`` times its
    first one is frozen as diverged. The run succeeds when every row
    converged, ends with ``DIVERGED`` when some row diverged and none still
    iterates, and ``NONFINITE`` when ``f`` returns a non-finite value. A row
    that did not converge returns its lowest-residual iterate.

    Parameters
    ----------
    rtol, atol
        Tolerances of the stopping rule (``rtol`` default ``1e-8``, lifted to
        ``100 eps`` of the dtype; ``atol`` default 0).

    Examples
    --------
    >>> from itersolve.fixed_point import Anderson
    >>> Anderson(rtol=1e-10).atol
    0.0
    """

    rtol: float = None  # type: ignore[assignment]
    atol: float = 0.0

    def __post_init__(self) -> None:
        super().__post_init__()
        tolerance_field(self, FIXED_POINT_RTOL)
        check_tolerances(self.rtol, self.atol)

    def default_max_steps(self, problem: Any) -> int:
        return 1000

    # -- shared pieces ------------------------------------------------------

    def start(
        self,
        problem: FixedPointProblem,
        x0: torch.Tensor,
        cls: type[StateT],
        **extra: Any,
    ) -> StateT:
        """A ``cls`` state at ``x0`` (one evaluation of ``f``); ``extra`` are
        the method's own fields."""
        x = x0.clone()
        fx = problem.map(x)
        g = fx - x
        res = row_norms(g)
        rows, device = x.shape[0], x.device
        state = cls(
            x=x,
            fx=fx,
            g=g,
            res=res,
            res0=res.clone(),
            active=torch.ones(rows, dtype=torch.bool, device=device),
            diverged=torch.zeros(rows, dtype=torch.bool, device=device),
            fevals=torch.ones(rows, dtype=torch.int64, device=device),
            **extra,
        )
        rec = problem.record
        rec.best_x, rec.best_res = x.clone(), res.clone()
        rec.converged = torch.zeros(rows, dtype=torch.bool, device=device)
        if bool(torch.isfinite(g).all()):
            self._update_active(problem, state)
        else:
            state.status = Status.NONFINITE_INPUT
        return state

    def _update_active(self, problem: FixedPointProblem, state: Any) -> None:
        x, res = state.x, state.res
        rtol = resolve_rtol(self.rtol, x.dtype)
        tol = torch.clamp(rtol * row_norms(x), min=self.atol)
        done = res <= tol
        floor = torch.clamp(state.res0, min=torch.finfo(x.dtype).tiny)
        blown = (res > DIVERGENCE_FACTOR * floor) & ~done
        assert problem.record.converged is not None
        problem.record.converged |= done & state.active
        state.diverged |= blown & state.active
        state.active &= ~(done | blown)

    def accept(
        self, problem: FixedPointProblem, state: FixedPointState, z: torch.Tensor
    ) -> torch.Tensor:
        """Move the active rows to ``z``, evaluate ``f`` there and update the
        residuals, the record and the flags; returns the rows that moved."""
        moved = state.active.clone()
        mask = moved[:, None]
        x = torch.where(mask, z, state.x)
        fx = torch.where(mask, problem.map(x), state.fx)
        g = fx - x
        res = row_norms(g)
        state.x, state.fx, state.g, state.res = x, fx, g, res
        state.fevals += moved.to(state.fevals.dtype)
        if not bool(torch.isfinite(res).all()):
            state.status = Status.NONFINITE
            return moved
        rec = problem.record
        assert rec.best_x is not None and rec.best_res is not None
        better = res < rec.best_res
        rec.best_x = torch.where(better[:, None], x, rec.best_x)
        rec.best_res = torch.where(better, res, rec.best_res)
        self._update_active(problem, state)
        return moved

    def is_finite(self, problem: Any, state: Any) -> bool:
        # accept() has already checked f(x) - x, finite only where x is.
        return state.status is not Status.NONFINITE

    def terminate(self, problem: Any, state: Any) -> tuple[bool, Status]:
        if state.status is not None:
            return True, state.status
        if bool(state.active.any()):
            return False, Status.SUCCESS
        return True, Status.DIVERGED if bool(state.diverged.any()) else Status.SUCCESS

    def converged(self, problem: Any, state: Any) -> bool:
        return not bool(state.active.any()) and not bool(state.diverged.any())

    def metrics(self, problem: Any, state: Any) -> dict[str, float]:
        znorm = torch.clamp(row_norms(state.x), min=torch.finfo(state.x.dtype).tiny)
        return {
            "residual_norm": float(state.res.max()),
            "relative_residual": float((state.res / znorm).max()),
            "active": int(state.active.sum()),
        }

    def stats(self, problem: Any, state: Any) -> dict[str, Any]:
        stats: dict[str, Any] = {"fevals": problem.calls}
        if problem.batched:
            stats["sample_fevals"] = [int(v) for v in state.fevals]
        return stats
