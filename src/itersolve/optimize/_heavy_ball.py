"""Polyak's heavy-ball method."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from itersolve._core.solution import Status
from itersolve.optimize._first_order import (
    GradientMethod,
    GradientState,
    finite,
    norm,
    threshold,
)
from itersolve.optimize._problem import OptimizationProblem

Tensor = torch.Tensor


@dataclass(kw_only=True)
class HeavyBallState(GradientState):
    x_prev: Tensor
    g: Tensor
    alpha: float
    beta: float


def heavy_ball_parameters(L: float, mu: float) -> tuple[float, float]:
    """The quadratic-optimal ``alpha = 4 / (sqrt(L) + sqrt(mu))^2`` and
    ``beta = ((sqrt(kappa) - 1) / (sqrt(kappa) + 1))^2``.

    Examples
    --------
    >>> from itersolve.optimize import heavy_ball_parameters
    >>> alpha, beta = heavy_ball_parameters(L=4.0, mu=1.0)
    >>> round(alpha, 6), round(beta, 6)
    (0.444444, 0.111111)
    """
    sl, sm = math.sqrt(L), math.sqrt(mu)
    return 4.0 / (sl + sm) ** 2, ((sl - sm) / (sl + sm)) ** 2


@dataclass(frozen=True, kw_only=True)
class HeavyBall(GradientMethod):
    """Polyak's heavy ball:
    ``x_{k+1} = x_k - alpha grad f(x_k) + beta (x_k - x_{k-1})``.

    Compare with full-batch ``torch.optim.SGD(lr=alpha, momentum=beta)`` (the
    same recursion with ``v_{k+1} = beta v_k + g_k``, ``x_{k+1} = x_k - alpha
    v_{k+1}``).

    With ``alpha = 4/(sqrt(L) + sqrt(mu))^2`` and ``beta = ((sqrt(kappa) - 1) /
    (sqrt(kappa) + 1))^2`` it converges at rate ``(sqrt(kappa) - 1) /
    (sqrt(kappa) + 1)`` on quadratics, the optimal rate, but only locally on
    general strongly convex functions: on the Lessard–Recht–Packard function
    (:func:`itersolve.problems.lessard_counterexample`) it falls into a limit
    cycle and ends with ``MAX_STEPS``.

    Stopping rule: ``||grad f(x_k)|| <= max(rtol ||grad f(x_0)||, atol)``.

    Parameters
    ----------
    rtol, atol
        Tolerances of the stopping rule (``rtol=None``: ``max(1e-6, 10
        eps(dtype))``, see :class:`~itersolve.optimize.GradientMethod`).
    L, mu
        Smoothness and strong convexity (default: the problem's). Needed unless
        ``alpha`` and ``beta`` are both given.
    alpha, beta
        Step size and momentum; override the formulas above.

    References
    ----------
    Polyak, "Some methods of speeding up the convergence of iteration methods"
    (1964); Lessard, Recht, Packard, SIAM J. Optim. 26 (2016), Sec. 4.6.

    Examples
    --------
    >>> from itersolve.optimize import minimize, HeavyBall
    >>> from itersolve.problems import quadratic_logspaced
    >>> q = quadratic_logspaced(20, 100.0)
    >>> minimize(q, q.x0(), HeavyBall(atol=1e-10)).success
    True
    """

    alpha: float | None = None
    beta: float | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.alpha is not None and not self.alpha > 0:
            raise ValueError(f"alpha must be > 0, got {self.alpha}")
        if self.beta is not None and not 0 <= self.beta < 1:
            raise ValueError(f"beta must be in [0, 1), got {self.beta}")

    def parameters(self, problem: OptimizationProblem) -> tuple[float, float]:
        if self.alpha is not None and self.beta is not None:
            return self.alpha, self.beta
        L, mu = self.constants(problem)
        if L is None or mu is None or mu <= 0:
            raise ValueError(
                "HeavyBall needs L and mu > 0 (or alpha and beta); the problem "
                f"gives L={L}, mu={mu}"
            )
        alpha, beta = heavy_ball_parameters(L, mu)
        return (
            alpha if self.alpha is None else self.alpha,
            beta if self.beta is None else self.beta,
        )

    def init(self, problem: OptimizationProblem, x0: Tensor) -> HeavyBallState:
        alpha, beta = self.parameters(problem)
        f, g = problem.objective.value_and_grad(x0)
        gnorm = norm(g)
        L = self.constants(problem)[0]
        state = HeavyBallState(
            x0,
            threshold(self, gnorm, x0.dtype),
            gnorm,
            L if L is not None else math.nan,
            x_prev=x0,
            g=g,
            alpha=alpha,
            beta=beta,
        )
        if not finite(f, g):
            state.status = Status.NONFINITE
        state.verified = gnorm <= state.threshold
        return state

    def step(
        self, problem: OptimizationProblem, state: HeavyBallState
    ) -> HeavyBallState:
        x = state.x
        x_new = x - state.alpha * state.g + state.beta * (x - state.x_prev)
        f_new, g_new = problem.objective.value_and_grad(x_new)
        if not finite(f_new, g_new):
            state.status = Status.NONFINITE
            return state
        state.x_prev, state.x, state.g = x, x_new, g_new
        state.grad_norm = norm(g_new)
        state.verified = state.grad_norm <= state.threshold
        state.steps += 1
        return state
