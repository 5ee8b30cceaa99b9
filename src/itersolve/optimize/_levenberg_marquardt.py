"""Levenberg–Marquardt and Gauss–Newton for ``min 1/2 ||r(x)||^2``.

Both work on ``B`` independent rows at once (``B = 1`` unbatched): every row
has its own damping or step, stops on its own rule and is frozen once finished.
The shared part (the state, the stopping rule, the acceptance of a new iterate
with a fresh Jacobian) is :class:`LeastSquaresMethod`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import torch

from itersolve._core.frontdoor import check_tolerances, resolve_rtol, tolerance_field
from itersolve._core.iterate import IterativeMethod
from itersolve._core.linesearch import armijo_rows
from itersolve._core.solution import Status

if TYPE_CHECKING:
    from itersolve.optimize._least_squares import LeastSquaresProblem

Tensor = torch.Tensor

#: Row outcomes kept in ``LeastSquaresState.outcome`` (0: still running).
_OUTCOMES = {1: Status.SUCCESS, 2: Status.STAGNATION, 3: Status.NONFINITE}
_RUNNING, _SUCCESS, _STAGNATION, _NONFINITE = 0, 1, 2, 3

#: The family's default relative tolerance on the gradient ``J^T r`` (lifted to
#: ``100 eps`` of the dtype: float32 ``1.2e-5``).
LEAST_SQUARES_RTOL = 1e-8


@dataclass(kw_only=True)
class LeastSquaresState:
    """Rows ``(B, n)``: the iterate ``x``, ``r = r(x)`` ``(B, m)``, ``J``
    ``(B, m, n)``, ``A = J^T J``, ``f = 1/2 ||r||^2``, ``g = J^T r`` and its
    norm, the row's threshold, whether it still iterates, its outcome code and
    step count."""

    x: Tensor
    r: Tensor
    J: Tensor
    A: Tensor
    f: Tensor
    g: Tensor
    gnorm: Tensor
    threshold: Tensor
    active: Tensor
    outcome: Tensor
    steps: Tensor
    damping: Tensor
    growth: Tensor
    step_size: Tensor
    status: Status | None = None


def _rows_finite(t: Tensor) -> Tensor:
    return torch.isfinite(t.reshape(t.shape[0], -1)).all(dim=1)


def _normal_equations(J: Tensor, r: Tensor) -> tuple[Tensor, Tensor]:
    """``J^T J`` and ``g = J^T r`` per row."""
    return J.transpose(1, 2) @ J, (J.transpose(1, 2) @ r[..., None])[..., 0]


def _shifted_solve(A: Tensor, g: Tensor, shift: Tensor) -> tuple[Tensor, Tensor]:
    """``h = -(A + shift I)^-1 g`` per row by Cholesky, and which rows factored
    (``h = 0`` on the others)."""
    eye = torch.eye(A.shape[-1], dtype=A.dtype, device=A.device)
    L, info = torch.linalg.cholesky_ex(A + shift[:, None, None] * eye)
    ok = info == 0
    h = -torch.cholesky_solve(g[..., None], L)[..., 0]
    h = torch.where(ok[:, None] & _rows_finite(h)[:, None], h, torch.zeros_like(h))
    return h, ok & _rows_finite(h)


@dataclass(frozen=True, kw_only=True)
class LeastSquaresMethod(IterativeMethod):
    """Shared hyperparameters and stopping rule of the least-squares methods.

    Each row stops on its own, on the gradient of ``f = 1/2 ||r||^2`` evaluated
    at the accepted iterate (a fresh residual and Jacobian there)::

        ||J(x_k)^T r(x_k)||_2 <= max(rtol ||J(x_0)^T r(x_0)||_2, atol)

    relative to the starting gradient, so the rule does not depend on the scale
    of ``r``. A row ends with ``STAGNATION`` when its step is at the rounding
    level of ``x`` (``||h|| <= 2 eps (||x|| + 2 eps)``) without meeting the
    rule, and ``NONFINITE`` when the Jacobian at an accepted iterate is not
    finite (the iterate itself stays finite: trial points with a non-finite
    residual are rejected). The run succeeds when every row did.

    Parameters
    ----------
    rtol, atol
        Tolerances of the rule (``rtol`` default ``1e-8``, lifted to
        ``100 eps`` of the dtype; ``atol`` default 0).

    Examples
    --------
    >>> from itersolve.optimize import LevenbergMarquardt
    >>> LevenbergMarquardt(rtol=1e-10).atol
    0.0
    """

    rtol: float = None  # type: ignore[assignment]
    atol: float = 0.0

    def __post_init__(self) -> None:
        super().__post_init__()
        tolerance_field(self, LEAST_SQUARES_RTOL)
        check_tolerances(self.rtol, self.atol)

    def default_max_steps(self, problem: Any) -> int:
        # MINPACK's default budget, 100 (n + 1) evaluations, capped
        return min(100 * (problem_size(problem) + 1), 10_000)

    def initial_damping_of(self, A: Tensor) -> Tensor:
        return torch.zeros(A.shape[0], dtype=A.dtype, device=A.device)

    def init(self, problem: LeastSquaresProblem, x0: Tensor) -> LeastSquaresState:
        x = x0.clone()
        r = problem.residual(x)
        J = problem.jacobian(x, r)
        A, g = _normal_equations(J, r)
        gnorm = torch.linalg.vector_norm(g, dim=1)
        rtol = resolve_rtol(self.rtol, x.dtype)
        rows = x.shape[0]
        state = LeastSquaresState(
            x=x,
            r=r,
            J=J,
            A=A,
            f=0.5 * (r * r).sum(dim=1),
            g=g,
            gnorm=gnorm,
            threshold=torch.clamp(rtol * gnorm, min=self.atol),
            active=torch.ones(rows, dtype=torch.bool, device=x.device),
            outcome=torch.zeros(rows, dtype=torch.int64, device=x.device),
            steps=torch.zeros(rows, dtype=torch.int64, device=x.device),
            damping=self.initial_damping_of(A),
            growth=torch.full((rows,), 2.0, dtype=x.dtype, device=x.device),
            step_size=torch.zeros(rows, dtype=x.dtype, device=x.device),
        )
        bad = ~_rows_finite(J)
        self._finish(state, bad, _NONFINITE)
        self._finish(state, gnorm <= state.threshold, _SUCCESS)
        return state

    @staticmethod
    def _finish(state: LeastSquaresState, rows: Tensor, code: int) -> None:
        rows = rows & state.active
        state.outcome = torch.where(rows, code, state.outcome)
        state.active = state.active & ~rows

    def accept(
        self,
        problem: LeastSquaresProblem,
        state: LeastSquaresState,
        accepted: Tensor,
        x_new: Tensor,
        r_new: Tensor,
    ) -> None:
        """Move the ``accepted`` rows to ``x_new`` (residual ``r_new``), with
        a fresh Jacobian there, and test the stopping rule on them."""
        if not bool(accepted.any()):
            return
        mask = accepted[:, None]
        state.x = torch.where(mask, x_new, state.x)
        state.r = torch.where(mask, r_new, state.r)
        J = problem.jacobian(state.x, state.r)
        state.J = torch.where(accepted[:, None, None], J, state.J)
        A, g = _normal_equations(state.J, state.r)
        state.A = torch.where(accepted[:, None, None], A, state.A)
        state.g = torch.where(mask, g, state.g)
        state.f = 0.5 * (state.r * state.r).sum(dim=1)
        state.gnorm = torch.linalg.vector_norm(state.g, dim=1)
        state.steps += accepted.to(state.steps.dtype)
        self._finish(state, accepted & ~_rows_finite(state.J), _NONFINITE)
        self._finish(state, accepted & (state.gnorm <= state.threshold), _SUCCESS)

    def stagnate(self, state: LeastSquaresState, h: Tensor, scale: Tensor) -> None:
        """End the rows whose step ``scale * h`` is at the rounding level of x."""
        tiny = 2.0 * torch.finfo(state.x.dtype).eps
        xnorm = torch.linalg.vector_norm(state.x, dim=1)
        hnorm = scale * torch.linalg.vector_norm(h, dim=1)
        self._finish(state, hnorm <= tiny * (xnorm + tiny), _STAGNATION)

    def terminate(self, problem: Any, state: LeastSquaresState) -> tuple[bool, Status]:
        if state.status is not None:
            return True, state.status
        if bool(state.active.any()):
            return False, Status.SUCCESS
        codes = set(state.outcome.tolist())
        for code in (_NONFINITE, _STAGNATION):
            if code in codes:
                return True, _OUTCOMES[code]
        return True, Status.SUCCESS

    def converged(self, problem: Any, state: LeastSquaresState) -> bool:
        return not bool(state.active.any()) and bool((state.outcome == 1).all())

    def is_finite(self, problem: Any, state: LeastSquaresState) -> bool:
        # only trial points with a finite residual are accepted
        return True

    def metrics(self, problem: Any, state: LeastSquaresState) -> dict[str, float]:
        return {
            "objective": float(state.f.sum()),
            "grad_norm": float(state.gnorm.max()),
            "damping": float(state.damping.max()),
            "step_size": float(state.step_size.max()),
            "active": int(state.active.sum()),
        }

    def stats(self, problem: Any, state: LeastSquaresState) -> dict[str, Any]:
        return {
            "sample_status": [
                _OUTCOMES[c].name if c else None for c in state.outcome.tolist()
            ],
            "sample_steps": [int(s) for s in state.steps],
            "sample_objective": [float(f) for f in state.f],
        }


def problem_size(problem: Any) -> int:
    """Unknowns per row of a least-squares problem."""
    shape = problem.shape[1:] if problem.batched else problem.shape
    return math.prod(shape)


@dataclass(frozen=True, kw_only=True)
class LevenbergMarquardt(LeastSquaresMethod):
    """Levenberg–Marquardt with Nielsen's damping update.

    Compare with ``scipy.optimize.least_squares(method="lm")`` (MINPACK, a
    trust-region variant with column scaling) and ``optimistix
    .LevenbergMarquardt``.

    Each step solves ``(J^T J + mu I) h = -J^T r`` (Cholesky, per row) and
    accepts ``x + h`` when the gain ratio

        ``rho = (f(x) - f(x + h)) / (1/2 h^T (mu h - J^T r))``

    is positive (the denominator is the decrease the linear model predicts).
    Nielsen's update (Madsen, Nielsen & Tingleff 2004, Alg. 3.16): on
    acceptance ``mu <- mu max(1/3, 1 - (2 rho - 1)^3)``, ``nu <- 2``; on
    rejection ``mu <- nu mu``, ``nu <- 2 nu``. ``mu_0 = tau max diag(J_0^T
    J_0)``. One step is one trial (one residual evaluation, one Jacobian when
    accepted). Stopping rule: :class:`LeastSquaresMethod`.

    Parameters
    ----------
    rtol, atol
        See :class:`LeastSquaresMethod`.
    initial_damping
        ``tau`` in ``mu_0 = tau max diag(J^T J)`` (``1e-3``; ``1e-6`` when
        ``x0`` is believed close to the solution, up to ``1`` otherwise).

    References
    ----------
    K. Madsen, H. B. Nielsen, O. Tingleff, *Methods for Non-Linear Least
    Squares Problems*, 2nd ed., IMM DTU (2004), Sec. 3.2.

    Examples
    --------
    >>> import torch
    >>> from itersolve.optimize import least_squares, LevenbergMarquardt
    >>> r = lambda x: torch.stack([10 * (x[1] - x[0] ** 2), 1 - x[0]])
    >>> x0 = torch.tensor([-1.2, 1.0], dtype=torch.float64)
    >>> sol = least_squares(r, x0, LevenbergMarquardt(rtol=1e-12))
    >>> sol.success, [round(v, 8) for v in sol.x.tolist()]
    (True, [1.0, 1.0])
    """

    ADVICE: ClassVar[dict[Status, str]] = {
        Status.MAX_STEPS: (
            "raise max_steps; a slow final phase means a large residual at the "
            "solution (Gauss-Newton's model is poor there): a Newton method on "
            "1/2 ||r||^2 converges faster"
        ),
        Status.STAGNATION: (
            "the step reached the rounding level of x before the gradient test "
            "held: loosen rtol, use float64, or check the Jacobian (jac=)"
        ),
    }

    initial_damping: float = 1e-3

    def __post_init__(self) -> None:
        super().__post_init__()
        tau = self.initial_damping
        if not (isinstance(tau, int | float) and 0 < tau < math.inf):
            raise ValueError(
                f"initial_damping must be positive and finite, got {tau!r}"
            )

    def initial_damping_of(self, A: Tensor) -> Tensor:
        top = A.diagonal(dim1=1, dim2=2).amax(dim=1)
        return self.initial_damping * torch.where(top > 0, top, torch.ones_like(top))

    def step(
        self, problem: LeastSquaresProblem, state: LeastSquaresState
    ) -> LeastSquaresState:
        active = state.active
        A, mu, g = state.A, state.damping, state.g
        h, solved = _shifted_solve(A, g, mu)
        trying = active & solved
        x_new = torch.where(trying[:, None], state.x + h, state.x)
        r_new = problem.residual(x_new)
        f_new = 0.5 * (r_new * r_new).sum(dim=1)
        predicted = 0.5 * (h * (mu[:, None] * h - g)).sum(dim=1)
        rho = (state.f - f_new) / torch.where(predicted > 0, predicted, 1.0)
        accepted = (
            trying
            & _rows_finite(r_new)
            & (predicted > 0)
            & (rho > 0)
            & (f_new.isfinite())
        )
        rejected = active & ~accepted
        factor = torch.clamp(1.0 - (2.0 * rho - 1.0) ** 3, min=1.0 / 3.0)
        state.damping = torch.where(
            accepted, mu * factor, torch.where(rejected, mu * state.growth, mu)
        )
        state.growth = torch.where(
            accepted, 2.0, torch.where(rejected, 2.0 * state.growth, state.growth)
        )
        state.step_size = torch.where(
            trying, torch.linalg.vector_norm(h, dim=1), state.step_size
        )
        self.accept(problem, state, accepted, x_new, r_new)
        # a step at rounding level, or a damping past any useful size, ends
        # the row: nothing further can move x
        self.stagnate(state, h, torch.ones_like(mu))
        self._finish(state, state.growth > 2.0**60, _STAGNATION)
        return state


@dataclass(frozen=True, kw_only=True)
class GaussNewton(LeastSquaresMethod):
    """Gauss–Newton with a backtracking (Armijo) line search.

    Compare with ``scipy.optimize.least_squares`` (``method="trf"`` on a
    well-posed problem takes Gauss–Newton steps) and ``optimistix.GaussNewton``.

    Each step solves ``J^T J h = -J^T r`` per row (Cholesky; when ``J^T J`` is
    singular to working precision, with the smallest shift ``s = 10^k 1e-12
    max(1, max diag J^T J)`` that factors), then backtracks ``t = 1, 1/2,
    ...`` until ``f(x + t h) <= f(x) + c1 t g^T h``. A row whose line search
    fails after ``max_backtracks`` halvings ends with ``STAGNATION``. Fast
    (quadratic) near a zero-residual solution, linear or divergent on large
    residuals, where :class:`LevenbergMarquardt` is the safer choice. Stopping
    rule: :class:`LeastSquaresMethod`.

    Parameters
    ----------
    rtol, atol
        See :class:`LeastSquaresMethod`.
    c1
        Sufficient-decrease constant in ``(0, 1)`` (``1e-4``).
    max_backtracks
        Most halvings of the step per iteration (``40``).

    References
    ----------
    J. Nocedal, S. J. Wright, *Numerical Optimization* (2006), Sec. 10.3.

    Examples
    --------
    >>> import torch
    >>> from itersolve.optimize import least_squares, GaussNewton
    >>> t = torch.linspace(0, 1, 10, dtype=torch.float64)
    >>> r = lambda p: p[0] * torch.exp(p[1] * t) - 3.0 * torch.exp(0.5 * t)
    >>> sol = least_squares(r, torch.tensor([1.0, 0.0], dtype=torch.float64),
    ...                     GaussNewton())
    >>> sol.success, [round(v, 8) for v in sol.x.tolist()]
    (True, [3.0, 0.5])
    """

    ADVICE: ClassVar[dict[Status, str]] = {
        Status.STAGNATION: (
            "the line search found no decrease along the Gauss-Newton "
            "direction: the residual at the solution is large or J is "
            "ill-conditioned; use LevenbergMarquardt()"
        ),
    }

    c1: float = 1e-4
    max_backtracks: int = 40

    def __post_init__(self) -> None:
        super().__post_init__()
        if not (isinstance(self.c1, int | float) and 0 < self.c1 < 1):
            raise ValueError(f"c1 must be in (0, 1), got {self.c1!r}")
        n = self.max_backtracks
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"max_backtracks must be an int >= 1, got {n!r}")

    def _direction(self, state: LeastSquaresState) -> Tensor:
        A = state.A
        shift = torch.zeros(A.shape[0], dtype=A.dtype, device=A.device)
        h, solved = _shifted_solve(A, state.g, shift)
        if bool(solved.all()):
            return h
        top = A.diagonal(dim1=1, dim2=2).amax(dim=1).clamp(min=1.0)
        shift = torch.where(solved, shift, 1e-12 * top)
        for _ in range(14):
            h_shift, ok = _shifted_solve(A, state.g, shift)
            h = torch.where(solved[:, None], h, h_shift)
            solved = solved | ok
            if bool(solved.all()):
                break
            shift = torch.where(solved, shift, 10.0 * shift)
        return h

    def step(
        self, problem: LeastSquaresProblem, state: LeastSquaresState
    ) -> LeastSquaresState:
        h = self._direction(state)
        slope = (state.g * h).sum(dim=1)

        def trial(t: Tensor, rows: Tensor) -> tuple[Tensor, tuple]:
            x_try = torch.where(rows[:, None], state.x + t[:, None] * h, state.x)
            r_try = problem.residual(x_try)
            f_try = 0.5 * (r_try * r_try).sum(dim=1)
            f_try = torch.where(_rows_finite(r_try), f_try, torch.inf)
            return f_try, (x_try, r_try)

        t, accepted, (x_new, r_new) = armijo_rows(
            trial,
            state.f,
            slope,
            state.active,
            (state.x, state.r),
            c1=self.c1,
            max_evaluations=self.max_backtracks + 1,
        )
        state.step_size = torch.where(accepted, t, state.step_size)
        self.accept(problem, state, accepted, x_new, r_new)
        self.stagnate(state, h, t)
        self._finish(state, ~accepted, _STAGNATION)
        return state
