"""Shared pieces of the Newton methods: Hessian sources and regularized solves.

A Hessian source is resolved once per run into a function of ``x`` returning one
of: a dense ``(n, n)`` tensor; a :class:`DiagonalPlusRankOne` (solved by
Sherman–Morrison in ``O(n)``); or the marker :data:`HVP` meaning "use
Hessian-vector products" (only with a Krylov ``linear_solver``).

The linear solver of a Newton method is ``"cholesky"`` or a solver object of
:mod:`itersolve.linear` (``CG(rtol=0.5)``, ``MINRES()``, ...), run through
:func:`itersolve.linear.inner_solve`: the one Krylov engine, no copy here.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import torch

from itersolve._core.iterate import IterativeMethod
from itersolve._core.objective import Objective
from itersolve._core.solution import Status
from itersolve.linear import inner_solve

Tensor = torch.Tensor

HVP = "hvp"


class NewtonTypeMethod(IterativeMethod):
    """Base of the Newton-type methods (Newton, RegularizedNewton,
    CubicRegularizedNewton): their ``step`` tests the stopping rule on the
    gradient at the accepted point (and the optional ``f_star`` rule), so it
    records SUCCESS, like a failure, in ``state.status``; the driver's
    ``terminate`` only reads it."""

    def converged(self, problem: Any, state: Any) -> bool:
        return False


@dataclass(frozen=True)
class DiagonalPlusRankOne:
    """The matrix ``diag(diagonal) + coefficient * u u^T`` (e.g. a Fisher term
    ``c grad f grad f^T`` on top of a diagonal), solved by Sherman–Morrison.

    Examples
    --------
    >>> import torch
    >>> from itersolve.optimize import DiagonalPlusRankOne
    >>> M = DiagonalPlusRankOne(torch.ones(2, dtype=torch.float64),
    ...                         torch.tensor([1.0, 0.0], dtype=torch.float64), 3.0)
    >>> M.dense().tolist()
    [[4.0, 0.0], [0.0, 1.0]]
    """

    diagonal: Tensor
    u: Tensor
    coefficient: float

    def dense(self) -> Tensor:
        u = self.u.reshape(-1)
        return torch.diag(self.diagonal.reshape(-1)) + self.coefficient * torch.outer(
            u, u
        )


def fisher_rank_one(
    objective: Objective, *, damping: float = 0.0, scale: Callable[[Tensor], float]
) -> Callable[[Tensor], DiagonalPlusRankOne]:
    """The approximation ``damping I + scale(x) grad f(x) grad f(x)^T``.

    For ``f(x) = ||u(x)||^p / p`` with ``u`` affine and orthogonal Jacobian the
    exact Hessian is ``||u||^{p-2} I + (p - 2) / ||u||^p g g^T`` (Semenov, Jaggi,
    Doikov 2025, Sec. 6); pass ``scale`` accordingly.

    Examples
    --------
    >>> import torch
    >>> from itersolve import Objective
    >>> from itersolve.optimize import fisher_rank_one
    >>> f = Objective(lambda x: 0.5 * (x**2).sum())
    >>> approx = fisher_rank_one(f, damping=1.0, scale=lambda x: 1.0)
    >>> M = approx(torch.tensor([1.0, 0.0], dtype=torch.float64))
    >>> M.diagonal.tolist(), M.coefficient
    ([1.0, 1.0], 1.0)
    """

    def approximation(x: Tensor) -> DiagonalPlusRankOne:
        g = objective.grad(x)
        diag = torch.full_like(g, float(damping))
        return DiagonalPlusRankOne(diag, g, float(scale(x)))

    return approximation


def empirical_fisher_rank_one(
    mean_grad: Tensor, mean_square: Tensor, damping: float = 0.0
) -> DiagonalPlusRankOne:
    """``diag(mean_i g_i^2 - gbar^2) + damping + gbar gbar^T`` from the mean
    ``gbar`` and mean square of per-sample gradients ``g_i``.

    The empirical Fisher ``F = 1/m sum_i g_i g_i^T`` is the covariance of the
    ``g_i`` plus ``gbar gbar^T``; this keeps the rank-one part exactly and the
    covariance's diagonal, so ``diag`` of the result equals ``diag F``.

    Examples
    --------
    >>> import torch
    >>> G = torch.tensor([[1.0, 0.0], [3.0, 2.0]], dtype=torch.float64)
    >>> M = empirical_fisher_rank_one(G.mean(0), (G * G).mean(0))
    >>> M.dense().diagonal().tolist() == (G.T @ G / 2).diagonal().tolist()
    True
    """
    diagonal = (mean_square - mean_grad * mean_grad).clamp_min(0.0) + damping
    return DiagonalPlusRankOne(diagonal, mean_grad, 1.0)


def _per_sample_source(problem: Any) -> Callable[[Tensor], DiagonalPlusRankOne] | None:
    """The empirical-Fisher rank-one model of a problem that exposes its
    per-sample gradients, or ``None``.

    Two sources, in order: a ``per_sample_grads(x)`` method returning the
    ``(m, *x.shape)`` gradients of the ``m`` terms ``f_i`` of ``f = 1/m sum_i
    f_i + l2/2 ||x||^2`` (``l2``: the problem's attribute, 0 when absent, added
    as damping); or the linear-predictor structure (``X``, ``y``, ``l2`` and
    ``loss`` in ``{"logistic", "softmax"}``, as
    :class:`~itersolve.optimize.bcd.LinearPredictorStructure` declares it, e.g.
    :class:`~itersolve.problems.Logistic`, ``Softmax``), whose per-sample
    gradients ``x_i r_i^T`` are closed form and never materialized.
    """
    l2 = float(getattr(problem, "l2", 0.0) or 0.0)
    per_sample = getattr(problem, "per_sample_grads", None)
    if callable(per_sample):

        def from_samples(x: Tensor) -> DiagonalPlusRankOne:
            G = per_sample(x).reshape(-1, x.numel())
            return empirical_fisher_rank_one(G.mean(0), (G * G).mean(0), l2)

        return from_samples
    loss = getattr(problem, "loss", None)
    X = getattr(problem, "X", None)
    if loss not in ("logistic", "softmax") or not isinstance(X, Tensor):
        return None
    y = problem.y

    def residuals(x: Tensor) -> Tensor:
        """``r_i`` with ``grad f_i = x_i r_i^T`` (one column for logistic)."""
        Z = X @ x
        if loss == "logistic":
            return (-y * torch.sigmoid(-y * Z))[:, None]
        onehot = torch.nn.functional.one_hot(y.to(torch.int64), x.shape[1])
        return torch.softmax(Z, dim=1) - onehot.to(Z.dtype)

    def from_structure(x: Tensor) -> DiagonalPlusRankOne:
        R = residuals(x)
        m = X.shape[0]
        mean = (X.T @ R / m).reshape(-1)
        square = ((X * X).T @ (R * R) / m).reshape(-1)
        return empirical_fisher_rank_one(mean, square, l2)

    return from_structure


def fisher_rank_one_of(objective: Objective) -> Callable[[Tensor], Any]:
    """The ``hessian="fisher_rank_one"`` model of ``objective`` (no callable).

    The problem's own approximation of that name when it lists one; else the
    empirical Fisher, diagonal plus rank one (:func:`empirical_fisher_rank_one`),
    from the problem's per-sample gradients (:func:`_per_sample_source`); else
    a ``ValueError`` saying what to provide.
    """
    problem = getattr(objective, "problem", None)
    if "fisher_rank_one" in getattr(problem, "approximations", ()):
        named: Callable[[Tensor], Any] = objective.approximation("fisher_rank_one")  # type: ignore[attr-defined]
        return named
    source = _per_sample_source(problem)
    if source is None:
        what = type(problem if problem is not None else objective).__name__
        raise ValueError(
            "hessian='fisher_rank_one' needs per-sample gradients: give the "
            "problem a per_sample_grads(x) method returning the (m, *x.shape) "
            "gradients of its terms, use a Logistic / Softmax problem (or one "
            "with X, y, l2 and loss='logistic'|'softmax'), list 'fisher_rank_one' "
            "in its approximations, or pass hessian=fisher_rank_one(objective, "
            f"scale=...); got {what}"
        )

    def counted(x: Tensor) -> DiagonalPlusRankOne:
        objective.counts["hessians"] += 1
        return source(x)

    return counted


def check_linear_solver(linear_solver: Any) -> None:
    """``"cholesky"`` or a Krylov solver object with an ``rtol`` field."""
    if isinstance(linear_solver, str) and linear_solver == "cholesky":
        return
    if not isinstance(linear_solver, IterativeMethod) or not hasattr(
        linear_solver, "rtol"
    ):
        raise ValueError(
            "linear_solver must be 'cholesky' or a Krylov solver such as "
            f"itersolve.linear.CG(rtol=0.5), got {linear_solver!r}"
        )


def is_krylov(linear_solver: Any) -> bool:
    return not isinstance(linear_solver, str)


def resolve_hessian(spec: Any, objective: Objective, linear_solver: Any) -> Any:
    """The function ``x -> Hessian (approximation)`` named by ``spec``."""
    if callable(spec):

        def counted(x: Tensor) -> Any:
            objective.counts["hessians"] += 1
            return spec(x)

        return counted
    if spec == "exact":
        if is_krylov(linear_solver):
            return lambda x: HVP
        return objective.hessian
    if spec == "fisher_rank_one":
        return fisher_rank_one_of(objective)
    if isinstance(spec, str):
        approximation = getattr(objective, "approximation", None)
        if approximation is None:
            raise ValueError(
                f"hessian={spec!r} needs a SmoothProblem (itersolve.optimize) "
                "that lists it in its approximations (or pass a callable "
                "x -> matrix); this objective only has 'exact'"
            )
        return approximation(spec)
    raise TypeError(
        "hessian must be 'exact', the name of an approximation such as "
        f"'gauss_newton', or a callable, got {type(spec).__name__}"
    )


@dataclass
class NormMatrix:
    """The norm matrix ``B`` of ``||h|| = sqrt(h^T B h)``: ``None`` (identity),
    a vector (diagonal) or an SPD matrix (Cholesky-factored once)."""

    B: Tensor | None
    factor: Tensor | None = None

    @classmethod
    def build(cls, B: Any, n: int, dtype: torch.dtype, device: Any) -> NormMatrix:
        if B is None:
            return cls(None)
        Bt = torch.as_tensor(B, dtype=dtype, device=device)
        if Bt.shape == (n,):
            if not bool((Bt > 0).all()):
                raise ValueError("a diagonal B must have positive entries")
            return cls(Bt)
        if Bt.shape != (n, n):
            raise ValueError(f"B must have shape ({n},) or ({n}, {n}), got {Bt.shape}")
        factor, info = torch.linalg.cholesky_ex(Bt)
        if int(info) != 0:
            raise ValueError("B must be symmetric positive definite")
        return cls(Bt, factor)

    def dual_norm(self, g: Tensor) -> float:
        """``sqrt(g^T B^{-1} g)``."""
        g = g.reshape(-1)
        if self.B is None:
            return float(torch.linalg.vector_norm(g))
        if self.factor is None:
            return float(torch.sqrt((g * g / self.B).sum()))
        z = torch.linalg.solve_triangular(self.factor, g[:, None], upper=False)
        return float(torch.linalg.vector_norm(z))

    def add_to(self, H: Tensor, lam: float) -> Tensor:
        if lam == 0:
            return H
        if self.B is None:
            out = H.clone()
            out.diagonal().add_(lam)
            return out
        if self.factor is None:
            return H + torch.diag(lam * self.B)
        return H + lam * self.B

    def apply(self, v: Tensor) -> Tensor:
        if self.B is None:
            return v
        if self.factor is None:
            return self.B * v
        return self.B @ v


@dataclass
class SolveResult:
    direction: Tensor | None
    """``None`` when the regularized matrix was not positive definite (or the
    Krylov solve produced no usable direction)."""
    factorizations: int = 0
    krylov_steps: int = 0
    matvecs: int = 0
    status: Status | None = None
    """How the Krylov solve ended (``None`` for direct solves)."""


def solve_regularized(
    H: Any,
    g: Tensor,
    lam: float,
    norm: NormMatrix,
    *,
    x: Tensor,
    objective: Objective,
    linear_solver: Any,
    rtol: float | None = None,
) -> SolveResult:
    """``d = -(H + lam B)^{-1} g`` with ``d`` shaped like ``g``.

    ``rtol`` overrides the Krylov solver's tolerance for this solve (a forcing
    term); ``None`` keeps the solver's own.
    """
    shape = g.shape
    flat = g.reshape(-1)
    if isinstance(H, DiagonalPlusRankOne):
        return _sherman_morrison(H, flat, lam, norm, shape)
    if not is_krylov(linear_solver):
        if not isinstance(H, Tensor):
            raise TypeError(
                "linear_solver='cholesky' needs the Hessian as a dense matrix; use "
                "a Krylov solver (linear_solver=CG()) for Hessian-vector products"
            )
        M = norm.add_to(H, lam)
        L, info = torch.linalg.cholesky_ex(M)
        if int(info) != 0:
            return SolveResult(None, 1)
        d = torch.cholesky_solve(-flat[:, None], L)[:, 0]
        if not bool(torch.isfinite(d).all()):
            return SolveResult(None, 1)
        return SolveResult(d.reshape(shape), 1)
    return _krylov_solve(H, g, lam, norm, x, objective, linear_solver, rtol)


def _sherman_morrison(
    H: DiagonalPlusRankOne, g: Tensor, lam: float, norm: NormMatrix, shape: Any
) -> SolveResult:
    if norm.factor is not None:
        raise ValueError("the rank-one fast path needs B = None or a diagonal B")
    base = H.diagonal.reshape(-1) + lam * (
        1.0 if norm.B is None else norm.B.reshape(-1)
    )
    if not bool((base > 0).all()):
        return SolveResult(None)
    u = H.u.reshape(-1)
    Dg, Du = g / base, u / base
    denom = 1.0 + H.coefficient * float(u @ Du)
    if not denom > 0 or not math.isfinite(denom):
        return SolveResult(None)
    d = -(Dg - Du * (H.coefficient * float(u @ Dg) / denom))
    return SolveResult(d.reshape(shape))


def _krylov_solve(
    H: Any,
    g: Tensor,
    lam: float,
    norm: NormMatrix,
    x: Tensor,
    objective: Objective,
    linear_solver: Any,
    rtol: float | None,
) -> SolveResult:
    """Truncated Krylov solve of ``(H + lam B) d = -g`` (Hessian-free when ``H``
    is :data:`HVP`) through the shared engine's inner entry.

    The solver stops at ``||(H + lam B) d + g|| <= rtol ||g||`` (confirmed on
    the true residual), after ``max(2 n, 20)`` steps unless the solver sets its
    own ``max_steps``, or at non-positive curvature: CG then returns the iterate
    before the failing update, the direction built so far (Steihaug's truncated
    Newton), which is kept whatever the status, unless it is zero or not finite.
    """
    shape = g.shape
    flat = g.reshape(-1)

    def regularized(v: Tensor) -> Tensor:
        if isinstance(H, Tensor):
            hv = H @ v
        else:
            hv = objective.hvp(x, v.reshape(shape)).reshape(-1)
        return hv + lam * norm.apply(v) if lam else hv

    operator: Any = H if isinstance(H, Tensor) and not lam else regularized
    solver = linear_solver
    if rtol is not None:
        solver = dataclasses.replace(linear_solver, rtol=rtol)
    limit = linear_solver.max_steps or max(2 * flat.numel(), 20)
    solution = inner_solve(solver, operator, -flat, max_steps=limit)
    d = solution.x
    result = SolveResult(
        None, 0, solution.num_steps, int(solution.stats["matvecs"]), solution.status
    )
    if solution.status is not Status.NONFINITE and bool(d.any()):
        if bool(torch.isfinite(d).all()):
            result.direction = d.reshape(shape)
    return result


class _FStarFields(Protocol):
    @property
    def f_star(self) -> float | None: ...

    @property
    def rtol_f(self) -> float: ...

    @property
    def atol_f(self) -> float: ...


def check_f_star(method: _FStarFields) -> None:
    """Validate the optional optimal-value stopping rule's fields."""
    f_star = method.f_star
    if f_star is not None and not (
        isinstance(f_star, (int, float)) and math.isfinite(f_star)
    ):
        raise ValueError(f"f_star must be a finite number or None, got {f_star!r}")
    if not (method.rtol_f >= 0 and math.isfinite(method.rtol_f)):
        raise ValueError(f"rtol_f must be >= 0 and finite, got {method.rtol_f}")
    if not (method.atol_f >= 0 and math.isfinite(method.atol_f)):
        raise ValueError(f"atol_f must be >= 0 and finite, got {method.atol_f}")
    if f_star is not None and method.rtol_f == 0 and method.atol_f == 0:
        raise ValueError("rtol_f and atol_f cannot both be 0 when f_star is given")


def f_star_reached(method: _FStarFields, f: Tensor | float) -> bool:
    """``f - f_star <= max(rtol_f |f_star|, atol_f)``; ``False`` without
    ``f_star``. ``f`` is the value at the current iterate, evaluated there (never
    a model prediction)."""
    if method.f_star is None:
        return False
    gap = float(f) - method.f_star
    return gap <= max(method.rtol_f * abs(method.f_star), method.atol_f)
