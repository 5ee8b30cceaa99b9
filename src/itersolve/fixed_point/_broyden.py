"""Limited-memory Broyden's method on ``g(z) = f(z) - z``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from itersolve.fixed_point._base import FixedPointMethod, FixedPointState
from itersolve.fixed_point._problem import FixedPointProblem

_VARIANTS = ("good", "bad")


@dataclass(kw_only=True)
class BroydenState(FixedPointState):
    U: torch.Tensor
    """``(B, n, L)``: ``H = -I + U V^T`` per row."""
    V: torch.Tensor
    head: int = 0
    skipped: int = 0
    restarts: int = 0
    """Updates skipped for a vanishing denominator, over all rows."""


def _apply(state: BroydenState, v: torch.Tensor) -> torch.Tensor:
    """``H v`` per row."""
    return -v + (state.U @ (state.V.mT @ v[:, :, None]))[:, :, 0]


def _apply_t(state: BroydenState, v: torch.Tensor) -> torch.Tensor:
    """``H^T v`` per row."""
    return -v + (state.V @ (state.U.mT @ v[:, :, None]))[:, :, 0]


def _dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a * b).sum(dim=1)


@dataclass(frozen=True, kw_only=True)
class Broyden(FixedPointMethod):
    """Limited-memory Broyden's method for ``g(z) = f(z) - z = 0``.

    Keeps an approximation ``H_k = -I + U V^T`` of the inverse Jacobian of
    ``g`` (``-I`` is exact when ``f`` is constant, so the first step is a
    plain fixed-point step) and steps ``z_{k+1} = z_k - H_k g_k``. With
    ``s = z_{k+1} - z_k`` and ``y = g_{k+1} - g_k``, the rank-one updates are::

        good:  H+ = H + (s - H y) s^T H / (s^T H y)
        bad:   H+ = H + (s - H y) y^T / (y^T y)

    stored as pairs ``(u, v)``, at most ``memory`` of them: when they are
    all used, ``H`` restarts from ``-I`` (each pair is built on the ones
    before it, so dropping only the oldest would break the secant conditions
    the others satisfy), and memory stays ``O(memory n)`` whatever the step
    count (torchdeq's storage grows with ``max_iter``, locuslab/deq#28). An
    update whose denominator is below ``eps`` times its scale is skipped.
    One evaluation of ``f`` per step. No line search: a non-contractive map
    can end in ``DIVERGED``, with the lowest-residual iterate returned.

    Stopping rule (per sample, on a fresh evaluation)::

        ||f(z) - z||_2 <= max(rtol ||z||_2, atol)

    Compare with: ``scipy.optimize.broyden1`` (good) / ``broyden2`` (bad) on
    ``f(z) - z = 0``; torchdeq's ``broyden_solver``.

    Parameters
    ----------
    memory
        Number of rank-one pairs kept (>= 1).
    variant
        ``"good"`` (Broyden's first method) or ``"bad"`` (second method).
    rtol, atol
        Stopping tolerances.

    References
    ----------
    Broyden, "A class of methods for solving nonlinear simultaneous
    equations", Math. Comp. 19 (1965); Kelley, *Iterative Methods for Linear
    and Nonlinear Equations* (1995), Ch. 7 (limited-memory form).

    Examples
    --------
    >>> import numpy as np
    >>> from itersolve.fixed_point import fixed_point
    >>> from itersolve.fixed_point import Broyden
    >>> sol = fixed_point(np.cos, np.array([1.0]), Broyden(memory=5))
    >>> sol.success, round(float(sol.x[0]), 8)
    (True, 0.73908513)
    """

    memory: int = 64
    variant: str = "good"

    def __post_init__(self) -> None:
        super().__post_init__()
        if (
            isinstance(self.memory, bool)
            or not isinstance(self.memory, int)
            or self.memory < 1
        ):
            raise ValueError(f"memory must be an int >= 1, got {self.memory!r}")
        if self.variant not in _VARIANTS:
            raise ValueError(
                f"variant must be one of {_VARIANTS}, got {self.variant!r}"
            )

    def init(self, problem: FixedPointProblem, x0: torch.Tensor) -> BroydenState:
        rows, n = x0.shape
        U = torch.zeros(rows, n, self.memory, dtype=x0.dtype, device=x0.device)
        return self.start(problem, x0, BroydenState, U=U, V=U.clone())

    def step(self, problem: FixedPointProblem, state: BroydenState) -> BroydenState:
        x, g = state.x, state.g
        moved = self.accept(problem, state, x - _apply(state, g))
        s, y = state.x - x, state.g - g
        Hy = _apply(state, y)
        if self.variant == "good":
            v = _apply_t(state, s)
            denom = _dot(s, Hy)
            scale = torch.linalg.vector_norm(s, dim=1) * torch.linalg.vector_norm(
                Hy, dim=1
            )
        else:
            v = y
            denom = _dot(y, y)
            scale = denom
        eps = torch.finfo(x.dtype).eps
        ok = moved & (denom.abs() > eps * scale) & torch.isfinite(denom)
        state.skipped += int((moved & ~ok).sum())
        safe = torch.where(ok, denom, torch.ones_like(denom))
        u = torch.where(ok[:, None], (s - Hy) / safe[:, None], torch.zeros_like(s))
        if state.head == self.memory:
            # Restart at H = -I: every pair was built on the ones before it
            # (v = H^T s), so overwriting only the oldest leaves an H that no
            # longer satisfies the secant conditions (it diverged on
            # contractive_tanh with a small input).
            state.U.zero_()
            state.V.zero_()
            state.head = 0
            state.restarts += 1
        slot = state.head
        state.U[:, :, slot] = u
        state.V[:, :, slot] = torch.where(ok[:, None], v, torch.zeros_like(v))
        state.head = slot + 1
        return state

    def stats(self, problem: Any, state: BroydenState) -> dict[str, Any]:
        return {
            **super().stats(problem, state),
            "skipped_updates": state.skipped,
            "restarts": state.restarts,
        }
