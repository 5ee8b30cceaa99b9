"""Kleinman (Newton) policy iteration for continuous-time LQR."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from itersolve._core.iterate import Callback, IterativeMethod, finish, iterate
from itersolve._core.solution import Solution, Status
from itersolve._core.tensors import as_tensor, to_output
from itersolve.control._riccati import care_residual, lyapunov


@dataclass(frozen=True)
class LQRProblem:
    """``dx/dt = A x + B u``, cost ``int x^T Q x + u^T R u dt`` (batched)."""

    A: torch.Tensor
    B: torch.Tensor
    Q: torch.Tensor
    R: torch.Tensor

    def gain(self, P: torch.Tensor) -> torch.Tensor:
        return torch.linalg.solve(self.R, self.B.mT @ P)


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

    tol: float = 1e-12

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
        return state.steps > 0 and state.change <= self.tol, Status.SUCCESS

    def metrics(self, problem: LQRProblem, state: KleinmanState) -> dict[str, float]:
        return {"change": state.change, "care_residual": state.residual}

    def stats(self, problem: LQRProblem, state: KleinmanState) -> dict[str, float]:
        return {"lyapunov_solves": state.steps}


def solve_lqr(
    A: Any,
    B: Any,
    Q: Any,
    R: Any,
    method: IterativeMethod | None = None,
    *,
    K0: Any = None,
    callback: Callback | None = None,
    record: bool | int = False,
    throw: bool = False,
) -> Solution:
    """Continuous-time LQR by policy iteration: ``P`` (``x``) and ``K`` (extras).

    Parameters
    ----------
    A, B, Q, R
        System and weights, shapes ``(..., n, n)``, ``(..., n, m)``,
        ``(..., n, n)``, ``(..., m, m)``; batched over leading dimensions.
    method
        ``Kleinman()`` (the default).
    K0
        Initial gain, shape ``(..., m, n)``; it must stabilise ``A - B K0``. When
        omitted, zeros (valid only when ``A`` is Hurwitz).
    callback, record, throw
        As in :func:`itersolve.linear_solve`.

    Returns
    -------
    Solution
        ``x`` = ``P`` in the array kind of ``A``; ``extras["K"]`` the gain.

    Raises
    ------
    ValueError
        If ``K0`` (or the zero gain) does not stabilise ``A - B K0``.
    """
    A_t, info = as_tensor(A, "A")
    B_t, Q_t, R_t = (
        as_tensor(M, name)[0] for M, name in ((B, "B"), (Q, "Q"), (R, "R"))
    )
    dtype = torch.float64 if A_t.dtype != torch.float32 else torch.float32
    A_t, B_t, Q_t, R_t = (M.to(dtype) for M in (A_t, B_t, Q_t, R_t))
    n = A_t.shape[-1]
    if A_t.ndim < 2 or A_t.shape[-2] != n:
        raise ValueError(f"A must be square (..., n, n), got {tuple(A_t.shape)}")
    if B_t.ndim < 2 or B_t.shape[-2] != n:
        raise ValueError(f"B must be (..., {n}, m), got {tuple(B_t.shape)}")
    m = B_t.shape[-1]
    if Q_t.shape[-2:] != (n, n) or R_t.shape[-2:] != (m, m):
        raise ValueError(
            f"Q must be {n}x{n} and R {m}x{m}, got {tuple(Q_t.shape)} and "
            f"{tuple(R_t.shape)}"
        )
    batch = torch.broadcast_shapes(A_t.shape[:-2], B_t.shape[:-2], Q_t.shape[:-2])
    A_t, Q_t = A_t.expand(*batch, n, n), Q_t.expand(*batch, n, n)
    B_t = B_t.expand(*batch, n, m)
    R_t = R_t.expand(*batch, m, m)
    if K0 is None:
        K0_t = torch.zeros(*batch, m, n, dtype=dtype)
    else:
        K0_t = as_tensor(K0, "K0", dtype=dtype)[0].expand(*batch, m, n)
    finite = all(bool(torch.isfinite(M).all()) for M in (A_t, B_t, Q_t, R_t, K0_t))
    if finite:
        worst = float(torch.linalg.eigvals(A_t - B_t @ K0_t).real.max())
        if worst >= 0:
            raise ValueError(
                "the initial policy does not stabilise the system: A - B K0 has an "
                f"eigenvalue with real part {worst:.4g} >= 0; pass a stabilising K0"
            )
    method = Kleinman() if method is None else method
    if not isinstance(method, IterativeMethod):
        raise TypeError(f"method must be a solver such as Kleinman(), got {method!r}")
    problem = LQRProblem(A_t, B_t, Q_t, R_t)
    state, solution = iterate(
        method,
        problem,
        K0_t,
        callback=callback,
        record=record,
        check_finite=(A_t, B_t, Q_t, R_t),
    )
    if state is not None:
        solution.x = to_output(state.x, info)
        solution.extras["K"] = to_output(state.K, info)
    else:
        solution.x = to_output(torch.full_like(Q_t, float("nan")), info)
    return finish(solution, throw=throw)
