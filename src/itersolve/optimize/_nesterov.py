"""Nesterov's accelerated gradient method (strongly convex and convex forms)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from itersolve._core.solution import Status
from itersolve.optimize._first_order import (
    GradientMethod,
    GradientState,
    backtrack_step,
    confirm,
    estimate_L,
    finite,
    inner,
    norm,
    threshold,
)
from itersolve.optimize._problem import OptimizationProblem

Tensor = torch.Tensor

_MOMENTA = ("auto", "constant", "t-sequence", "k/(k+3)")
_RESTARTS = (None, "function", "gradient")


@dataclass(kw_only=True)
class NesterovState(GradientState):
    x_prev: Tensor
    f: Tensor
    """f(x_k) (kept for the function restart test)."""
    t: float = 1.0
    k: int = 0
    """Steps since the last restart."""
    fixed_L: bool = False
    mu: float | None = None


def torch_momentum_parameters(L: float, beta: float) -> dict[str, float]:
    """Arguments of ``torch.optim.SGD(..., nesterov=True)`` that reproduce
    constant-momentum Nesterov ``y_k = x_k + beta (x_k - x_{k-1})``,
    ``x_{k+1} = y_k - grad f(y_k) / L``.

    torch stores ``p`` = ``y_k`` (the point where it evaluates the gradient)
    and with ``lr = 1/L``, ``momentum = beta``, ``dampening = 0`` its update
    ``b_k = beta b_{k-1} + g``, ``p -= lr (g + beta b_k)`` is exactly this
    recursion written on ``y``.

    Examples
    --------
    >>> torch_momentum_parameters(4.0, 0.5)
    {'lr': 0.25, 'momentum': 0.5, 'dampening': 0.0, 'nesterov': True}
    """
    return {"lr": 1.0 / L, "momentum": beta, "dampening": 0.0, "nesterov": True}


@dataclass(frozen=True, kw_only=True)
class Nesterov(GradientMethod):
    """Nesterov's accelerated gradient method::

        y_k     = x_k + beta_k (x_k - x_{k-1})
        x_{k+1} = y_k - grad f(y_k) / L

    Compare with full-batch ``torch.optim.SGD(lr=1/L, momentum=beta,
    nesterov=True)`` (see :func:`torch_momentum_parameters`) and with
    ``scipy.optimize.minimize(method="CG")``.

    Momentum:

    * ``"constant"`` (strongly convex): ``beta = (sqrt(kappa) - 1) /
      (sqrt(kappa) + 1)``, ``kappa = L / mu``; ``f(x_k) - f* <= (1 -
      1/sqrt(kappa))^k (f(x_0) - f* + mu/2 ||x_0 - x*||^2)``;
    * ``"t-sequence"`` (convex): ``t_{k+1} = (1 + sqrt(1 + 4 t_k^2)) / 2``,
      ``beta_k = (t_k - 1) / t_{k+1}``; ``f(x_k) - f* <= 2 L ||x_0 - x*||^2 /
      (k + 1)^2``;
    * ``"k/(k+3)"``: ``beta_k = k / (k + 3)``;
    * ``"auto"`` (default): ``"constant"`` when ``mu > 0`` is known, else
      ``"t-sequence"``.

    ``L`` unknown (not given, not on the problem): backtracking on the descent
    lemma at ``y_k`` (FISTA-style; ``L`` shrinks by 0.9 before each step).
    Adaptive restart (O'Donoghue & Candès 2015) resets the momentum when
    ``f(x_{k+1}) > f(x_k)`` (``restart="function"``, one extra value per step
    unless backtracking) or ``<grad f(y_k), x_{k+1} - x_k> > 0``
    (``restart="gradient"``, free).

    Stopping rule: ``||grad f(x_k)|| <= max(rtol ||grad f(x_0)||, atol)``,
    tested on ``grad f(y_k)`` and confirmed at ``x_k``.

    Parameters
    ----------
    rtol, atol, L, mu
        Tolerances (``rtol=None``: ``max(1e-6, 10 eps(dtype))``) and constants
        (default: the problem's ``L``/``mu``).
    momentum
        ``"auto"``, ``"constant"``, ``"t-sequence"`` or ``"k/(k+3)"``.
    restart
        ``None``, ``"function"`` or ``"gradient"``.

    References
    ----------
    Nesterov, *Lectures on Convex Optimization* (2018), Sec. 2.2; Beck &
    Teboulle (2009); O'Donoghue & Candès, Found. Comput. Math. 15 (2015).

    Examples
    --------
    >>> from itersolve.optimize import minimize, Nesterov
    >>> from itersolve.problems import quadratic_logspaced
    >>> q = quadratic_logspaced(20, 100.0)
    >>> minimize(q, q.x0(), Nesterov(atol=1e-10)).success
    True
    """

    momentum: str = "auto"
    restart: str | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.momentum not in _MOMENTA:
            raise ValueError(
                f"momentum must be one of {_MOMENTA}, got {self.momentum!r}"
            )
        if self.restart not in _RESTARTS:
            raise ValueError(
                f"restart must be one of {_RESTARTS}, got {self.restart!r}"
            )

    def init(self, problem: OptimizationProblem, x0: Tensor) -> NesterovState:
        L, mu = self.constants(problem)
        if self.momentum == "constant" and not mu:
            raise ValueError(
                f"momentum='constant' needs mu > 0; the method and problem give mu={mu}"
            )
        f, g = problem.objective.value_and_grad(x0)
        gnorm = norm(g)
        state = NesterovState(
            x0,
            threshold(self, gnorm, x0.dtype),
            gnorm,
            L if L is not None else math.nan,
            x_prev=x0,
            f=f,
            fixed_L=L is not None,
            mu=mu,
        )
        if not finite(f, g):
            state.fail_nonfinite()
            return state
        state.verified = gnorm <= state.threshold
        if L is None:
            state.L = estimate_L(problem, x0, g)
        return state

    def _beta(self, state: NesterovState) -> tuple[float, float]:
        """``(beta_k, t_{k+1})`` for the current step."""
        momentum = self.momentum
        if momentum == "auto":
            momentum = "constant" if state.mu else "t-sequence"
        if momentum == "constant":
            assert state.mu is not None
            q = math.sqrt(min(state.mu / state.L, 1.0))
            return (1.0 - q) / (1.0 + q), state.t
        if momentum == "k/(k+3)":
            return state.k / (state.k + 3.0), state.t
        t_next = (1.0 + math.sqrt(1.0 + 4.0 * state.t**2)) / 2.0
        return (state.t - 1.0) / t_next, t_next

    def step(self, problem: OptimizationProblem, state: NesterovState) -> NesterovState:
        objective = problem.objective
        x = state.x
        beta, t_next = self._beta(state)
        y = x + beta * (x - state.x_prev) if state.k > 0 else x
        f_new: Tensor | None = None
        if state.fixed_L:
            f_y, g_y = objective.value_and_grad(y)
            if not finite(f_y, g_y):
                state.fail_nonfinite()
                return state
            x_new = y - g_y / state.L
        else:
            f_y, g_y = objective.value_and_grad(y)
            if not finite(f_y, g_y):
                state.fail_nonfinite()
                return state
            found = backtrack_step(problem, y, f_y, g_y, 0.9 * state.L)
            if found is None:
                state.status = Status.STAGNATION
                return state
            x_new, f_new, _, state.L, trials = found
            state.backtracks += trials - 1
        state.last_finite = y
        restart = False
        if self.restart == "gradient":
            restart = inner(g_y, x_new - x) > 0
        elif self.restart == "function":
            if f_new is None:
                f_new = objective.value(x_new)
            restart = bool(f_new > state.f)
        if f_new is not None:
            state.f = f_new
        state.x_prev, state.x = x, x_new
        state.t, state.k = t_next, state.k + 1
        if restart:
            state.x_prev, state.t, state.k = x_new, 1.0, 0
            state.restarts += 1
        state.grad_norm = norm(g_y)
        state.steps += 1
        confirm(problem, state, state.grad_norm)
        return state
