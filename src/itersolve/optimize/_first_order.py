"""Shared pieces of the gradient methods: hyperparameters, stopping rule, L search.

Every method stops when the gradient at the returned point is small::

    ||grad f(x_k)|| <= max(rtol * ||grad f(x_0)||, atol)

Tolerance defaults of the optimize family, stated once (``rtol=None`` selects
them; :func:`default_rtol`):

* ``rtol = max(1e-6, 10 eps)`` for the first-order methods (gradient descent,
  heavy ball, Nesterov, triple momentum): six digits of gradient reduction; more
  would cost these linearly converging methods a multiple of the steps;
* ``rtol = max(1e-8, 10 eps)`` for ``Newton``: the quadratic phase makes the
  last digits nearly free, so ask for what float64 rounding leaves reachable;
* ``rtol = max(0, 10 eps)``, ``atol = 1e-8`` for ``RegularizedNewton``
  (the absolute test of Doikov et al.'s experiments).

Why ``10 eps``: a relative gradient test much below ``eps`` cannot be met once
the gradient is dominated by its own rounding, so the float64 defaults of the
Newton methods are out of float32's reach (5-D Rosenbrock in float32 froze at a
relative gradient of about ``1e-7`` and ran on to ``max_steps``). ``10 eps`` is
``2.2e-15`` in float64 (below every default: no change) and ``1.2e-6`` in float32;
a larger floor stops too early on ill-conditioned problems (``1000 eps`` left
float32 Newton ``3e-2`` from Rosenbrock's minimizer), so a run that still
cannot meet it ends ``STAGNATION`` (frozen iterate or failed line search) rather
than report success on a poor answer. An ``rtol`` given explicitly is used as
it is.

Momentum methods evaluate the gradient at an extrapolated point ``y_k``; when
``||grad f(y_k)||`` passes the test the gradient at the output ``x_k`` is computed
once to confirm (a failed confirmation just continues), so the reported ``x`` is
always the certified one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

import torch

from itersolve._core import frontdoor
from itersolve._core.frontdoor import check_tolerances
from itersolve._core.iterate import IterativeMethod
from itersolve._core.solution import Status
from itersolve.optimize._problem import OptimizationProblem, uncounted

Tensor = torch.Tensor


def norm(x: Tensor) -> float:
    return float(torch.linalg.vector_norm(x))


def inner(a: Tensor, b: Tensor) -> float:
    return float((a * b).sum())


def finite(value: Tensor, grad: Tensor | None = None) -> bool:
    ok = bool(torch.isfinite(value).all())
    return ok and (grad is None or bool(torch.isfinite(grad).all()))


@dataclass
class GradientState:
    """Common part of every gradient method's state."""

    x: Tensor
    threshold: float
    grad_norm: float
    """Norm of the last gradient computed (at ``x`` or at the probe point)."""
    L: float
    steps: int = 0
    status: Status | None = None
    verified: bool = False
    restarts: int = 0
    backtracks: int = 0
    last_finite: Tensor | None = None
    """The last point where f and its gradient were finite (returned when a
    later evaluation is NaN/inf)."""

    def fail_nonfinite(self) -> None:
        self.status = Status.NONFINITE
        if self.last_finite is not None:
            self.x = self.last_finite


@dataclass(frozen=True, kw_only=True)
class GradientMethod(IterativeMethod):
    """Hyperparameters shared by the first-order methods.

    Parameters
    ----------
    rtol, atol
        Stop when ``||grad f(x)|| <= max(rtol ||grad f(x0)||, atol)``.
        ``rtol=None``: ``max(1e-6, 10 eps(dtype))`` (see
        :mod:`itersolve.optimize._first_order` for the reason).
    L
        Smoothness constant (Lipschitz constant of the gradient). ``None``: the
        problem's ``L`` when it knows one, else estimated by backtracking on the
        descent lemma ``f(y - g/L) <= f(y) - ||g||^2 / (2L)``.
    mu
        Strong-convexity constant; ``None``: the problem's ``mu`` if known.

    Examples
    --------
    The shared fields of :class:`GradientDescent`, :class:`HeavyBall`,
    :class:`Nesterov` and :class:`TripleMomentum`:

    >>> from itersolve.optimize import GradientDescent, GradientMethod
    >>> method = GradientDescent(L=10.0, mu=1.0, rtol=1e-8)
    >>> isinstance(method, GradientMethod), method.L, method.mu
    (True, 10.0, 1.0)
    """

    DEFAULT_RTOL: ClassVar[float] = 1e-6

    rtol: float | None = None
    atol: float = 0.0
    L: float | None = None
    mu: float | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        check_default_tolerances(self)
        if self.L is not None and not (math.isfinite(self.L) and self.L > 0):
            raise ValueError(f"L must be positive and finite, got {self.L}")
        if self.mu is not None and not (math.isfinite(self.mu) and self.mu >= 0):
            raise ValueError(f"mu must be >= 0 and finite, got {self.mu}")
        if self.L is not None and self.mu is not None and self.mu > self.L:
            raise ValueError(f"mu must be <= L, got mu={self.mu} > L={self.L}")

    def default_max_steps(self, problem: Any) -> int:
        return 100_000

    def constants(
        self, problem: OptimizationProblem
    ) -> tuple[float | None, float | None]:
        """``(L, mu)``: the method's own, else the problem's; checked."""
        L = self.L if self.L is not None else problem.L
        mu = self.mu if self.mu is not None else problem.mu
        if L is not None and mu is not None and mu > L:
            raise ValueError(f"mu must be <= L, got mu={mu} > L={L}")
        return L, mu

    def terminate(
        self, problem: OptimizationProblem, state: GradientState
    ) -> tuple[bool, Status]:
        if state.status is not None:
            return True, state.status
        if state.verified:
            return True, Status.SUCCESS
        return False, Status.SUCCESS

    def metrics(
        self, problem: OptimizationProblem, state: GradientState
    ) -> dict[str, float]:
        with uncounted(problem.objective) as f:
            value = float(f.value(state.x))
        return {"objective": value, "grad_norm": state.grad_norm, "L": state.L}

    def stats(
        self, problem: OptimizationProblem, state: GradientState
    ) -> dict[str, float]:
        return {"restarts": state.restarts, "backtracks": state.backtracks}


#: Multiple of ``eps(dtype)`` below which a default relative gradient tolerance
#: is not set (the rounding floor of the gradient; module docstring).
ROUNDING_RTOL_ULPS = 10.0


def default_rtol(default: float, dtype: torch.dtype) -> float:
    """``max(default, 10 eps(dtype))``: a default that ``dtype`` can reach.

    >>> default_rtol(1e-8, torch.float64), round(default_rtol(1e-8, torch.float32), 9)
    (1e-08, 1.192e-06)
    """
    return frontdoor.default_rtol(dtype, default, ulps=ROUNDING_RTOL_ULPS)


class _Tolerances(Protocol):
    DEFAULT_RTOL: ClassVar[float]

    @property
    def rtol(self) -> float | None: ...

    @property
    def atol(self) -> float: ...


def check_default_tolerances(method: _Tolerances) -> None:
    """:func:`check_tolerances` on the method's ``rtol`` (its default if ``None``)."""
    rtol = type(method).DEFAULT_RTOL if method.rtol is None else method.rtol
    check_tolerances(rtol, method.atol)


def threshold(method: _Tolerances, grad_norm: float, dtype: torch.dtype) -> float:
    """The stopping threshold ``max(rtol ||grad f(x0)||, atol)``, ``rtol=None``
    resolved by :func:`default_rtol`."""
    rtol = method.rtol
    if rtol is None:
        rtol = default_rtol(type(method).DEFAULT_RTOL, dtype)
    return max(rtol * grad_norm, method.atol)


def estimate_L(problem: OptimizationProblem, x: Tensor, g: Tensor) -> float:
    """A local curvature estimate ``||grad f(x - t g) - g|| / (t ||g||)`` from one
    extra gradient, used only to start the backtracking on ``L``."""
    gnorm = norm(g)
    if gnorm == 0:
        return 1.0
    t = 1e-4 * max(1.0, norm(x)) / gnorm
    g2 = problem.objective.grad(x - t * g)
    L = norm(g2 - g) / (t * gnorm)
    return L if math.isfinite(L) and L > 0 else 1.0


def backtrack_step(
    problem: OptimizationProblem,
    y: Tensor,
    f_y: Tensor,
    g_y: Tensor,
    L: float,
    *,
    max_trials: int = 60,
) -> tuple[Tensor, Tensor, Tensor, float, int] | None:
    """Smallest ``L * 2^j`` (``j >= 0``) with
    ``f(y - g/L) <= f(y) - ||g||^2 / (2L)``.

    Returns ``(x_new, f_new, g_new, L, trials)`` with the gradient at ``x_new``,
    or ``None`` when no trial gave a finite value that satisfies the test.
    """
    g2 = float((g_y * g_y).sum())
    fy = float(f_y)
    for trial in range(1, max_trials + 1):
        x_new = y - g_y / L
        f_new, g_new = problem.objective.value_and_grad(x_new)
        value = float(f_new)
        # A tiny slack absorbs rounding once the decrease is at machine level.
        slack = 8 * torch.finfo(y.dtype).eps * max(abs(fy), 1.0)
        if math.isfinite(value) and value <= fy - g2 / (2 * L) + slack:
            if finite(f_new, g_new):
                return x_new, f_new, g_new, L, trial
        L *= 2.0
    return None


def confirm(
    problem: OptimizationProblem, state: GradientState, probe_norm: float
) -> None:
    """Set ``state.verified`` when the gradient at ``state.x`` passes the test
    (computed only when the probe point's gradient already does)."""
    if probe_norm > state.threshold:
        return
    f, g = problem.objective.value_and_grad(state.x)
    if not finite(f, g):
        state.fail_nonfinite()
        return
    gnorm = norm(g)
    if gnorm <= state.threshold:
        state.grad_norm = gnorm
        state.verified = True
