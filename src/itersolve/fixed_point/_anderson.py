"""Anderson acceleration (type II, Walker–Ni form) with a guarded history."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from itersolve.fixed_point._base import FixedPointMethod, FixedPointState
from itersolve.fixed_point._problem import FixedPointProblem


@dataclass(kw_only=True)
class AndersonState(FixedPointState):
    dX: torch.Tensor
    """Ring of iterate differences, ``(B, n, m)``."""
    dG: torch.Tensor
    """Ring of residual differences, ``(B, n, m)``."""
    valid: torch.Tensor
    """Which ring columns hold a difference, per row, ``(B, m)``."""
    age: torch.Tensor
    """Step at which each column was written, ``(m,)`` (``-1``: never)."""
    head: int = 0
    steps: int = 0
    dropped: int = 0
    """Columns dropped by the conditioning guard, over all rows."""


@dataclass(frozen=True, kw_only=True)
class Anderson(FixedPointMethod):
    """Anderson acceleration of ``z = f(z)``.

    With ``g_k = f(z_k) - z_k`` and the last ``m_k <= memory`` differences
    ``dZ = [z_{i+1} - z_i]``, ``dG = [g_{i+1} - g_i]`` (columns scaled to unit
    norm by ``D = diag(||dG_j||)``), each step solves the regularised least
    squares problem::

        gamma = argmin ||g_k - dG gamma||^2 + lambda ||D gamma||^2
        z_{k+1} = z_k + beta g_k - (dZ + beta dG) gamma

    with ``lambda = regularization`` relative to the scale of the history (it
    penalises ``gamma_j`` in units of ``||dG_j||``, so it means the same at
    every residual size; an absolute ``lambda``, as torchdeq's ``1e-4``, stalls
    once ``||dG||^2`` falls below it) and ``beta = mixing``. The small problem
    is solved in float64 by a QR-based ``lstsq`` of the stacked
    ``[dG D^-1; sqrt(lambda) I]``. Guard against ill-conditioned histories:
    while the Gram matrix of the unit columns has condition number above
    ``max_condition``, the oldest column of that sample is dropped; a
    non-finite ``gamma`` falls back to the damped step ``z + beta g``. One
    evaluation of ``f`` per step, ``2 m`` stored differences.

    Stopping rule (per sample, on a fresh evaluation)::

        ||f(z) - z||_2 <= max(rtol ||z||_2, atol)

    Compare with: ``scipy.optimize.anderson`` (root form ``f(z) - z = 0``),
    torchdeq's ``anderson_solver``.

    Parameters
    ----------
    memory
        ``m``, the most differences kept (>= 1).
    regularization
        ``lambda >= 0``, relative (see above).
    mixing
        ``beta`` in ``(0, 1]``.
    max_condition
        Largest condition number of the history's Gram matrix (> 1).
    rtol, atol
        Stopping tolerances.

    References
    ----------
    Anderson, "Iterative procedures for nonlinear integral equations", J. ACM
    12 (1965); Walker & Ni, "Anderson acceleration for fixed-point
    iterations", SIAM J. Numer. Anal. 49 (2011).

    Examples
    --------
    >>> import numpy as np
    >>> from itersolve.fixed_point import fixed_point
    >>> from itersolve.fixed_point import Anderson
    >>> sol = fixed_point(np.cos, np.array([1.0]), Anderson(memory=3))
    >>> sol.success, round(float(sol.x[0]), 8), sol.stats["fevals"] < 15
    (True, 0.73908513, True)
    """

    memory: int = 6
    regularization: float = 1e-10
    mixing: float = 1.0
    max_condition: float = 1e12

    def __post_init__(self) -> None:
        super().__post_init__()
        if isinstance(self.memory, bool) or not isinstance(self.memory, int):
            raise ValueError(f"memory must be an int >= 1, got {self.memory!r}")
        if self.memory < 1:
            raise ValueError(f"memory must be an int >= 1, got {self.memory!r}")
        if not (self.regularization >= 0 and math.isfinite(self.regularization)):
            raise ValueError(
                f"regularization must be finite and >= 0, got {self.regularization!r}"
            )
        if not 0 < self.mixing <= 1:
            raise ValueError(f"mixing must be in (0, 1], got {self.mixing!r}")
        if not self.max_condition > 1:
            raise ValueError(f"max_condition must be > 1, got {self.max_condition!r}")

    def init(self, problem: FixedPointProblem, x0: torch.Tensor) -> AndersonState:
        rows, n = x0.shape
        m = self.memory
        ring = torch.zeros(rows, n, m, dtype=x0.dtype, device=x0.device)
        return self.start(
            problem,
            x0,
            AndersonState,
            dX=ring,
            dG=ring.clone(),
            valid=torch.zeros(rows, m, dtype=torch.bool, device=x0.device),
            age=torch.full((m,), -1, dtype=torch.int64, device=x0.device),
        )

    def _coefficients(self, state: AndersonState) -> torch.Tensor | None:
        """``gamma`` (``(B, m)``, in float64) or ``None`` with no history."""
        valid = state.valid.clone()
        if not bool(valid.any()):
            return None
        G = state.dG.to(torch.float64)
        norms = torch.linalg.vector_norm(G, dim=1)
        valid &= norms > 0
        scale = torch.where(valid, norms, torch.ones_like(norms))
        Ghat = G / scale[:, None, :] * valid[:, None, :]
        gram = (Ghat[:, :, :, None] * Ghat[:, :, None, :]).sum(dim=1)
        eye = torch.eye(self.memory, dtype=torch.float64, device=G.device)
        age = state.age.to(torch.float64)
        for _ in range(self.memory):
            both = valid[:, :, None] & valid[:, None, :]
            padded = torch.where(both, gram, eye * (~valid)[:, :, None])
            eig = torch.linalg.eigvalsh(padded)
            cond = eig[:, -1] / torch.clamp(eig[:, 0], min=1e-300)
            bad = (cond > self.max_condition) & (valid.sum(dim=1) > 1)
            if not bool(bad.any()):
                break
            oldest = torch.where(valid, age, math.inf).argmin(dim=1)
            drop = bad[:, None] & (
                torch.arange(self.memory, device=G.device) == oldest[:, None]
            )
            valid &= ~drop
            state.dropped += int(bad.sum())
        # The regularised least-squares problem min ||g - Ghat gamma||^2 + reg
        # ||gamma||^2 through its m x m normal equations: the Gram matrix is
        # already a reduction (deterministic), its condition is capped by
        # max_condition above, and a batched LAPACK solve of an m x m system
        # is bitwise reproducible here, whereas torch.linalg.lstsq on the tall
        # stacked system is not (MKL's result depends on workspace alignment).
        both = valid[:, :, None] & valid[:, None, :]
        diag = torch.where(
            valid,
            torch.full_like(norms, self.regularization),
            torch.ones_like(norms),
        )
        normal = torch.where(both, gram, torch.zeros_like(gram)) + torch.diag_embed(
            diag
        )
        Ghat = Ghat * valid[:, None, :]
        rhs = (Ghat * state.g.to(torch.float64)[:, :, None]).sum(dim=1)
        gamma_hat = torch.linalg.solve(normal, rhs[:, :, None])[:, :, 0]
        return torch.where(valid, gamma_hat / scale, torch.zeros_like(gamma_hat))

    def step(self, problem: FixedPointProblem, state: AndersonState) -> AndersonState:
        x, g, beta = state.x, state.g, self.mixing
        z = x + beta * g
        gamma = self._coefficients(state)
        if gamma is not None:
            ok = torch.isfinite(gamma).all(dim=1)
            gamma = torch.where(ok[:, None], gamma, torch.zeros_like(gamma))
            # Products as reductions, not BLAS calls: MKL's results depend on
            # memory alignment, and equal inputs must give equal answers.
            weights = gamma.to(x.dtype)[:, None, :]
            z = z - ((state.dX + beta * state.dG) * weights).sum(dim=2)
        moved = self.accept(problem, state, z)
        slot = state.head
        state.dX[:, :, slot] = state.x - x
        state.dG[:, :, slot] = state.g - g
        state.valid[:, slot] = moved
        state.age[slot] = state.steps
        state.head = (slot + 1) % self.memory
        state.steps += 1
        return state

    def stats(self, problem: Any, state: AndersonState) -> dict[str, Any]:
        return {**super().stats(problem, state), "dropped_columns": state.dropped}
