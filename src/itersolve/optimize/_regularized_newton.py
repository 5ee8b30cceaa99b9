"""Gradient-regularized Newton with approximate Hessians (adaptive gamma)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from itersolve._core.solution import Status
from itersolve.optimize._first_order import (
    check_default_tolerances,
    finite,
    threshold,
)
from itersolve.optimize._problem import OptimizationProblem
from itersolve.optimize._second_order import (
    NewtonTypeMethod,
    NormMatrix,
    check_f_star,
    check_linear_solver,
    f_star_reached,
    resolve_hessian,
    solve_regularized,
)

Tensor = torch.Tensor


@dataclass
class RegularizedNewtonState:
    x: Tensor
    f: Tensor
    g: Tensor
    grad_norm: float
    """Dual norm ``||g||_* = sqrt(g^T B^{-1} g)`` at ``x``."""
    threshold: float
    gamma: float
    hessian: Any
    norm: NormMatrix
    steps: int = 0
    status: Status | None = None
    lam: float = math.nan
    inner_steps: int = 0
    last_inner: int = 0
    factorizations: int = 0
    krylov_steps: int = 0
    matvecs: int = 0


@dataclass(frozen=True, kw_only=True)
class RegularizedNewton(NewtonTypeMethod):
    """Gradient-regularized Newton with adaptive ``gamma`` (Algorithm 1 of
    Semenov, Jaggi & Doikov 2025), for exact or approximate Hessians ``H``.

    Compare with ``scipy.optimize.minimize(method="trust-exact")`` /
    ``"trust-krylov"`` (``linear_solver=CG()``) and sklearn's
    ``newton-cholesky``.

    Each outer step, with ``g = grad f(x_k)`` and ``||g||_* = sqrt(g^T B^{-1}
    g)``, repeats (at most ``max_inner`` trials)::

        lambda = ||g||_* / gamma
        d      = -(H(x_k) + lambda B)^{-1} g      (not PD: gamma /= 2, retry)
        x+     = x_k + d
        accept iff f(x_k) - f(x+) >= ||grad f(x+)||_*^2 / (8 lambda)
                   (up to 16 eps |f(x_k)|, the rounding of f)
        accepted: gamma *= 2;  rejected: gamma = max(gamma / 2, gamma_min)

    ``gamma`` persists across outer steps. ``adaptive=False`` is the fixed-gamma
    variant (one trial, always accepted).

    Stopping rule: ``||grad f(x_k)||_* <= max(rtol ||grad f(x_0)||_*, atol)``
    or, when ``f_star`` is given, ``f(x_k) - f_star <= max(rtol_f |f_star|,
    atol_f)`` (the spec's ``f - f* < eps``; value and gradient evaluated at the
    accepted ``x_k``);
    ``STAGNATION`` after ``max_inner`` rejected trials.

    Parameters
    ----------
    rtol, atol
        Tolerances on the dual gradient norm; ``rtol=None``: ``10 eps(dtype)``
        (a no-op in float64 beside ``atol=1e-8``; in float32 what the rounded
        gradient can reach: :mod:`itersolve.optimize._first_order`).
    hessian
        ``"exact"``; an approximation the problem provides (``"gauss_newton"``
        for :class:`~itersolve.problems.Logistic`, ``Softmax``, ``LogSumExp``,
        ``Rosenbrock``; ``"fisher"`` for ``Logistic``); ``"fisher_rank_one"``
        (the empirical Fisher as diagonal plus rank one, built from the
        problem's per-sample gradients: ``per_sample_grads(x)`` or the
        ``Logistic`` / ``Softmax`` structure; solved by Sherman–Morrison); or a
        callable ``x ->``
        dense matrix or :class:`DiagonalPlusRankOne` (the rank-one Fisher fast
        path, Sherman–Morrison, ``O(n)`` per trial; see
        :func:`fisher_rank_one`).
    B
        Norm matrix: ``None`` (identity), a positive vector (diagonal) or an
        SPD matrix.
    gamma0, gamma_min
        Initial and smallest ``gamma``.
    max_inner
        Most trials per outer step (40 in the paper).
    adaptive
        ``False``: fixed ``gamma = gamma0``, no acceptance test.
    linear_solver
        ``"cholesky"``, or a solver object of :mod:`itersolve.linear` such as
        ``CG(rtol=1e-6)``, run through :func:`itersolve.linear.inner_solve` to
        ``||(H + lambda B) d + g|| <= rtol ||g||`` (its own ``rtol``) in at most
        ``max(2 n, 20)`` steps unless it sets ``max_steps``; with
        ``hessian="exact"`` it is Hessian-free, on Hessian-vector products. A
        solve stopped by non-positive curvature keeps the direction built so
        far (zero: the trial counts as not positive definite).
    f_star, rtol_f, atol_f
        Optional optimal value (or a target value) and the tolerances of the
        rule on ``f``; a value at or below ``f_star`` also stops.

    References
    ----------
    Semenov, Jaggi, Doikov, "Gradient-Normalized Smoothness for Optimization
    with Approximate Hessians", arXiv:2506.13710 (ICLR 2026).

    Examples
    --------
    >>> from itersolve.optimize import minimize, RegularizedNewton
    >>> from itersolve.problems import breast_cancer_logistic
    >>> p = breast_cancer_logistic(l2=1e-3)
    >>> sol = minimize(p, p.x0(), RegularizedNewton(atol=1e-8, rtol=0))
    >>> sol.success, sol.num_steps < 30
    (True, True)
    """

    ADVICE: ClassVar[dict[Status, str]] = {
        Status.MAX_STEPS: (
            "raise max_steps; with hessian='gauss_newton' or 'fisher' the "
            "model drops curvature and converges linearly: use hessian='exact' "
            "for the fast local rate"
        ),
        Status.STAGNATION: (
            "no accepted step: the gradient is at the rounding level of f "
            "(loosen tol, or use float64)"
        ),
    }

    DEFAULT_RTOL: ClassVar[float] = 0.0

    rtol: float | None = None
    atol: float = 1e-8
    hessian: Any = "exact"
    B: Any = None
    gamma0: float = 1.0
    gamma_min: float = 1e-9
    max_inner: int = 40
    adaptive: bool = True
    linear_solver: Any = "cholesky"
    f_star: float | None = None
    rtol_f: float = 1e-10
    atol_f: float = 1e-10

    def __post_init__(self) -> None:
        super().__post_init__()
        check_default_tolerances(self)
        if not (self.gamma0 > 0 and math.isfinite(self.gamma0)):
            raise ValueError(f"gamma0 must be positive and finite, got {self.gamma0}")
        if not 0 < self.gamma_min <= self.gamma0:
            raise ValueError(
                f"gamma_min must be in (0, gamma0={self.gamma0}], got {self.gamma_min}"
            )
        if not (isinstance(self.max_inner, int) and self.max_inner >= 1):
            raise ValueError(f"max_inner must be an int >= 1, got {self.max_inner!r}")
        check_linear_solver(self.linear_solver)
        check_f_star(self)

    def default_max_steps(self, problem: Any) -> int:
        return 500

    def init(self, problem: OptimizationProblem, x0: Tensor) -> RegularizedNewtonState:
        objective = problem.objective
        hessian = resolve_hessian(self.hessian, objective, self.linear_solver)
        B = NormMatrix.build(self.B, x0.numel(), x0.dtype, x0.device)
        f, g = objective.value_and_grad(x0)
        gnorm = B.dual_norm(g)
        state = RegularizedNewtonState(
            x0,
            f,
            g,
            gnorm,
            threshold(self, gnorm, x0.dtype),
            self.gamma0,
            hessian,
            B,
        )
        if not finite(f, g):
            state.status = Status.NONFINITE
        elif gnorm <= state.threshold or f_star_reached(self, f):
            state.status = Status.SUCCESS
        return state

    def step(
        self, problem: OptimizationProblem, state: RegularizedNewtonState
    ) -> RegularizedNewtonState:
        objective = problem.objective
        H = state.hessian(state.x)
        f0 = float(state.f)
        # Rounding guard: a decrease below the resolution of f counts as zero,
        # not as an increase (otherwise linear phases stall at machine precision).
        slack = 16 * torch.finfo(state.x.dtype).eps * abs(f0)
        trials = 0
        nonfinite = 0
        while trials < self.max_inner:
            trials += 1
            lam = state.grad_norm / state.gamma
            solved = solve_regularized(
                H,
                state.g,
                lam,
                state.norm,
                x=state.x,
                objective=objective,
                linear_solver=self.linear_solver,
            )
            state.factorizations += solved.factorizations
            state.krylov_steps += solved.krylov_steps
            state.matvecs += solved.matvecs
            if solved.direction is None:
                state.gamma = max(state.gamma / 2, self.gamma_min)
                continue
            x_new = state.x + solved.direction
            f_new, g_new = objective.value_and_grad(x_new)
            if not finite(f_new, g_new):
                nonfinite += 1
                state.gamma = max(state.gamma / 2, self.gamma_min)
                continue
            gnorm_new = state.norm.dual_norm(g_new)
            decrease = f0 - float(f_new) + slack
            accepted = not self.adaptive or decrease >= gnorm_new**2 / (8 * lam)
            if accepted:
                if self.adaptive:
                    state.gamma *= 2
                state.x, state.f, state.g = x_new, f_new, g_new
                state.grad_norm, state.lam = gnorm_new, lam
                break
            state.gamma = max(state.gamma / 2, self.gamma_min)
        else:
            state.status = (
                Status.NONFINITE if nonfinite == trials else Status.STAGNATION
            )
        state.inner_steps += trials
        state.last_inner = trials
        state.steps += 1
        converged = state.grad_norm <= state.threshold or f_star_reached(self, state.f)
        if state.status is None and converged:
            state.status = Status.SUCCESS
        return state

    def metrics(
        self, problem: OptimizationProblem, state: RegularizedNewtonState
    ) -> dict[str, float]:
        return {
            "objective": float(state.f),
            "grad_norm": state.grad_norm,
            "gamma": state.gamma,
            "lambda": state.lam,
            "inner_steps": state.last_inner,
        }

    def stats(
        self, problem: OptimizationProblem, state: RegularizedNewtonState
    ) -> dict[str, float]:
        return {
            "inner_steps": state.inner_steps,
            "factorizations": state.factorizations,
            "krylov_steps": state.krylov_steps,
            "matvecs": state.matvecs,
        }
