"""Kleinman (Newton) policy iteration for continuous-time LQR."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from itersolve._core.frontdoor import DefaultTolerance, resolve_rtol
from itersolve._core.iterate import IterativeMethod
from itersolve._core.solution import Status
from itersolve.control._problem import LQRProblem
from itersolve.control._riccati import care_residual, lyapunov


@dataclass
class KleinmanState:
    x: torch.Tensor  # P
    K: torch.Tensor
    change: float = float("inf")
    residual: float = float("inf")
    steps: int = 0
    unstable: bool = False
    status: Status | None = None
    """Set when a Lyapunov solve fails (the status of that solve)."""


@dataclass(frozen=True, kw_only=True)
class Kleinman(IterativeMethod):
    """Kleinman's Newton iteration on the CARE (model-based policy iteration).

    Compare with: ``scipy.linalg.solve_continuous_are`` / ``control.lqr`` (the
    fixed point) and :func:`itersolve.control.care`.

    From a stabilising gain ``K_0``, each step solves the Lyapunov equation
    ``(A - B K_k)^T P_k + P_k (A - B K_k) + Q + K_k^T R K_k = 0`` and sets
    ``K_{k+1} = R^{-1} B^T P_k``. Convergence is monotone and quadratic
    (Kleinman 1968): it is Newton's method on the Riccati equation, and the
    noise-free limit of integral-RL policy iteration.

    Stopping rule::

        ||P_k - P_{k-1}||_F <= tol * ||P_k||_F

    A Lyapunov solve that fails (the sign iteration of :func:`lyapunov` for
    ``n > 16``) ends the run with its status; an unstable ``A - B K_k`` with
    ``DIVERGED``.

    Examples
    --------
    >>> import numpy as np
    >>> from itersolve.control import solve_lqr
    >>> A = np.array([[0.0, 1.0], [-1.0, -1.0]]); B = np.array([[0.0], [1.0]])
    >>> sol = solve_lqr(A, B, np.eye(2), np.eye(1))
    >>> sol.success, sol.num_steps < 10
    (True, True)
    """

    ADVICE: ClassVar[dict[Status, str]] = {
        Status.DIVERGED: (
            "a gain stopped stabilizing A - B K (Kleinman has no step size): "
            "start from a stabilizing K0, or let solve_lqr pick one"
        ),
        Status.MAX_STEPS: (
            "raise max_steps or loosen tol: from a stabilizing K0 Kleinman "
            "converges quadratically, so a long run means K0 barely stabilizes "
            "the system or tol is below the rounding level"
        ),
    }

    tol: float = DefaultTolerance(1e-12)

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0 < self.tol < 1:
            raise ValueError(f"tol must be in (0, 1), got {self.tol}")

    def default_max_steps(self, problem: LQRProblem) -> int:
        return 100

    def init(self, problem: LQRProblem, x0: torch.Tensor) -> KleinmanState:
        return KleinmanState(torch.zeros_like(problem.Q), x0.clone())

    def step(self, problem: LQRProblem, state: KleinmanState) -> KleinmanState:
        A, B, Q, R = problem.A, problem.B, problem.Q, problem.R
        K = state.K
        Ak = A - B @ K
        if bool((torch.linalg.eigvals(Ak).real >= 0).any()):
            state.unstable = True
            return state
        solved = lyapunov(Ak, Q + K.mT @ R @ K, full_output=True)
        if not solved.success:
            state.status = solved.status
            return state
        P = 0.5 * (solved.x + solved.x.mT)
        state.change = float(
            (torch.linalg.matrix_norm(P - state.x) / torch.linalg.matrix_norm(P)).max()
        )
        state.x = P
        state.K = problem.gain(P)
        state.residual = float(care_residual(A, B, Q, R, P).max())
        state.steps += 1
        return state

    def terminate(
        self, problem: LQRProblem, state: KleinmanState
    ) -> tuple[bool, Status]:
        if state.unstable:
            return True, Status.DIVERGED
        if state.status is not None:
            return True, state.status
        tol = resolve_rtol(self.tol, state.x.dtype)
        return state.steps > 0 and state.change <= tol, Status.SUCCESS

    def metrics(self, problem: LQRProblem, state: KleinmanState) -> dict[str, float]:
        return {"change": state.change, "care_residual": state.residual}

    def stats(self, problem: LQRProblem, state: KleinmanState) -> dict[str, float]:
        return {"lyapunov_solves": state.steps}
