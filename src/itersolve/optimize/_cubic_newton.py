"""Cubic-regularized Newton (Nesterov & Polyak 2006) with adaptive ``M``."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from itersolve._core.solution import Status
from itersolve.optimize._first_order import (
    check_default_tolerances,
    finite,
    norm,
    threshold,
)
from itersolve.optimize._problem import OptimizationProblem
from itersolve.optimize._second_order import (
    DiagonalPlusRankOne,
    NewtonTypeMethod,
    check_f_star,
    f_star_reached,
    resolve_hessian,
)

Tensor = torch.Tensor


@dataclass
class CubicStep:
    """The minimizer ``h`` of ``g^T h + h^T H h / 2 + M ||h||^3 / 6``."""

    h: Tensor
    mu: float
    """``M ||h|| / 2``, the shift with ``(H + mu I) h = -g``."""
    model_decrease: float
    """``-(g^T h + h^T H h / 2 + M ||h||^3 / 6) >= 0``."""
    hard_case: bool
    """``g`` had no component on the lowest eigenvector: ``mu = -lambda_min``
    and ``h`` has a free component along that eigenvector."""


def cubic_subproblem(
    H: Tensor | None,
    g: Tensor,
    M: float,
    *,
    eigh: tuple[Tensor, Tensor] | None = None,
) -> CubicStep:
    """The global minimizer of the cubic model ``m(h) = g^T h + h^T H h / 2 +
    M ||h||^3 / 6`` for a symmetric ``H`` (Nesterov & Polyak 2006, Sec. 5).

    ``h`` is global iff ``(H + mu I) h = -g``, ``H + mu I >= 0`` and ``mu = M
    ||h|| / 2``. With ``H = Q diag(lambda) Q^T`` and ``c = Q^T g`` this is the
    1-D secular equation ``||h(mu)|| = 2 mu / M``, ``h(mu) = -Q c / (lambda +
    mu)``, on ``mu > max(0, -lambda_1)``, where ``||h(mu)|| - 2 mu / M`` is
    strictly decreasing: solved by Newton's method on ``1 / ||h(mu)|| - M / (2
    mu)`` (nearly linear in ``mu``) inside a bisection bracket. Hard case (no
    root there: ``c`` vanishes on the eigenspace of ``lambda_1 < 0``): ``mu =
    -lambda_1`` and ``h = h_perp + tau q_1`` with ``tau`` completing ``||h|| = 2
    mu / M``.

    ``eigh`` passes a precomputed ``torch.linalg.eigh(H)`` (``H`` may then be
    ``None``).

    Examples
    --------
    >>> import torch
    >>> from itersolve.optimize import cubic_subproblem
    >>> H = torch.diag(torch.tensor([1.0, -1.0], dtype=torch.float64))
    >>> g = torch.tensor([1.0, 0.0], dtype=torch.float64)
    >>> s = cubic_subproblem(H, g, 1.0)  # the hard case: leaves the axis y = 0
    >>> s.hard_case, [round(v, 6) for v in s.h.abs().tolist()], s.mu
    (True, [0.5, 1.936492], 1.0)
    """
    if not M > 0:
        raise ValueError(f"M must be positive, got {M}")
    shape = g.shape
    flat = g.reshape(-1)
    if eigh is None:
        if H is None:
            raise ValueError("cubic_subproblem needs H or its eigh")
        eigh = torch.linalg.eigh(0.5 * (H + H.mT))
    lam, Q = eigh
    c = Q.mT @ flat
    eps = torch.finfo(flat.dtype).eps
    scale = max(1.0, float(lam.abs().max()))
    lam1 = float(lam[0])
    mu_low = max(0.0, -lam1)
    gnorm = float(torch.linalg.vector_norm(flat))

    def radius(mu: float) -> float:
        return float(torch.linalg.vector_norm(c / (lam + mu)))

    def finish(mu: float, coeffs: Tensor, hard: bool) -> CubicStep:
        h = Q @ coeffs
        r = float(torch.linalg.vector_norm(h))
        quad = float((lam * coeffs * coeffs).sum())
        value = float(c @ coeffs) + 0.5 * quad + M * r**3 / 6.0
        return CubicStep(h.reshape(shape), mu, -value, hard)

    # Eigenvalues this close to lambda_1 are one eigenspace (rounding of eigh).
    lowest = lam <= lam1 + 16 * eps * scale
    delta = 64 * eps * max(scale, mu_low)
    if gnorm == 0.0 and lam1 >= 0:
        return CubicStep(torch.zeros_like(g), 0.0, 0.0, False)
    if lam1 < 0:
        rest = ~lowest
        coeffs = torch.zeros_like(c)
        coeffs[rest] = -c[rest] / (lam[rest] + mu_low)
        r_perp = float(torch.linalg.vector_norm(coeffs))
        c_low = float(torch.linalg.vector_norm(c[lowest]))
        # No root above -lambda_1 (to the resolution of mu): the hard case.
        if (
            c_low <= 16 * eps * gnorm
            or radius(mu_low + delta) <= 2 * (mu_low + delta) / M
        ):
            if r_perp <= 2 * mu_low / M:
                tau = math.sqrt(max(0.0, (2 * mu_low / M) ** 2 - r_perp**2))
                index = int(torch.nonzero(lowest)[0])
                # Either sign minimizes the model; pick the one making g^T h <= 0.
                sign = -1.0 if float(c[index]) > 0 else 1.0
                coeffs[index] = coeffs[index] + sign * tau
                return finish(mu_low, coeffs, True)
    lo = mu_low
    hi = mu_low + math.sqrt(M * gnorm / 2) + delta
    while radius(hi) > 2 * hi / M:  # guaranteed by the bound; rounding guard
        hi *= 2
    mu = hi
    for _ in range(200):
        r = radius(mu)
        phi = r - 2 * mu / M
        if phi > 0:
            lo = mu
        else:
            hi = mu
        if hi - lo <= 4 * eps * hi or phi == 0:
            break
        # Newton on psi(mu) = 1/r - M/(2 mu): psi' = sum c^2/(lam+mu)^3 / r^3
        # + M / (2 mu^2) > 0.
        psi = 1.0 / r - M / (2 * mu) if r > 0 else -math.inf
        dpsi = float((c * c / (lam + mu) ** 3).sum()) / r**3 + M / (2 * mu * mu)
        candidate = mu - psi / dpsi if math.isfinite(psi) else math.nan
        mu = candidate if lo < candidate < hi else 0.5 * (lo + hi)
    # hi keeps phi <= 0 (H + hi I positive definite, ||h|| <= 2 hi / M).
    return finish(hi, -c / (lam + hi), False)


@dataclass
class CubicNewtonState:
    x: Tensor
    f: Tensor
    g: Tensor
    grad_norm: float
    threshold: float
    M: float
    hessian: Any
    eig: tuple[Tensor, Tensor] | None = None
    """``eigh(H(x))`` when already computed at the current ``x``."""
    steps: int = 0
    status: Status | None = None
    step_norm: float = math.nan
    mu: float = math.nan
    inner_steps: int = 0
    last_inner: int = 0
    factorizations: int = 0
    hard_cases: int = 0


@dataclass(frozen=True, kw_only=True)
class CubicRegularizedNewton(NewtonTypeMethod):
    """Cubic-regularized Newton (Nesterov & Polyak 2006) with adaptive ``M``.

    Compare with ``scipy.optimize.minimize(method="trust-exact")`` (the same
    eigenvalue-based subproblem with a trust radius instead of a cubic term).

    Each step minimizes the cubic model exactly (:func:`cubic_subproblem`, an
    eigendecomposition of ``H(x_k)`` and a 1-D secular equation; the hard case
    included)::

        h_k  = argmin_h  g_k^T h + h^T H(x_k) h / 2 + M ||h||^3 / 6
        x+   = x_k + h_k
        accept iff f(x+) <= f(x_k) + g_k^T h_k + h_k^T H h_k / 2 + M ||h_k||^3 / 6
                   (up to 16 eps |f(x_k)|, the rounding of f)
        accepted: M_{k+1} = max(M / 2, M_min);  rejected: M = 2 M, retry

    (the adaptive variant of Nesterov & Polyak, Sec. 5.2: ``M`` doubles until
    the model is an upper bound at the trial point, then halves).
    ``adaptive=False`` keeps ``M = M0`` and accepts every step (the basic
    method; converges when ``M0`` is at least the Hessian's Lipschitz constant).
    Negative curvature is used, so strict saddle points repel the iterates.

    Stopping rule (every quantity evaluated at the accepted ``x_k``)::

        ||grad f(x_k)|| <= tol = max(rtol ||grad f(x_0)||, atol)
          and lambda_min(H(x_k)) >= -(sqrt(M_k tol) + 10 eps |H(x_k)|)

    (an approximate second-order stationary point) or, when ``f_star`` is given,
    ``f(x_k) - f_star <= max(rtol_f |f_star|, atol_f)``. ``STAGNATION`` after
    ``max_inner`` rejected trials.

    Parameters
    ----------
    rtol, atol
        Gradient tolerances; ``rtol=None``: ``max(1e-8, 10 eps(dtype))``.
    hessian
        ``"exact"``, an approximation the problem provides (``"gauss_newton"``),
        or a callable ``x ->`` dense matrix (or :class:`DiagonalPlusRankOne`,
        used densely).
    M0, M_min
        Initial and smallest regularization constant ``M``.
    max_inner
        Most trials (doublings of ``M``) per step.
    adaptive
        ``False``: fixed ``M = M0``, no acceptance test.
    f_star, rtol_f, atol_f
        Optional optimal value and the tolerances of the rule on ``f``.

    References
    ----------
    Yu. Nesterov, B. T. Polyak, "Cubic regularization of Newton method and its
    global performance", Math. Program. 108 (2006) 177-205.

    Examples
    --------
    >>> from itersolve.optimize import minimize, CubicRegularizedNewton
    >>> from itersolve.problems import Rosenbrock
    >>> p = Rosenbrock(4)
    >>> sol = minimize(p, p.x0(), CubicRegularizedNewton(atol=1e-10))
    >>> sol.success, round(float(sol.x[0]), 6)
    (True, 1.0)
    """

    ADVICE: ClassVar[dict[Status, str]] = {
        Status.MAX_STEPS: "raise max_steps, or pass M0 near the Hessian's "
        "Lipschitz constant",
        Status.STAGNATION: (
            "no trial step decreased f as the cubic model predicts: the gradient "
            "is at the rounding level of f (loosen tol, or use float64)"
        ),
    }

    DEFAULT_RTOL: ClassVar[float] = 1e-8

    rtol: float | None = None
    atol: float = 0.0
    hessian: Any = "exact"
    M0: float = 1.0
    M_min: float = 1e-8
    max_inner: int = 60
    adaptive: bool = True
    f_star: float | None = None
    rtol_f: float = 1e-10
    atol_f: float = 1e-10

    def __post_init__(self) -> None:
        super().__post_init__()
        check_default_tolerances(self)
        if not (self.M0 > 0 and math.isfinite(self.M0)):
            raise ValueError(f"M0 must be positive and finite, got {self.M0}")
        if not 0 < self.M_min <= self.M0:
            raise ValueError(f"M_min must be in (0, M0={self.M0}], got {self.M_min}")
        if not (isinstance(self.max_inner, int) and self.max_inner >= 1):
            raise ValueError(f"max_inner must be an int >= 1, got {self.max_inner!r}")
        check_f_star(self)

    def default_max_steps(self, problem: Any) -> int:
        return 500

    def _dense_hessian(self, state: CubicNewtonState) -> Tensor:
        H = state.hessian(state.x)
        if isinstance(H, DiagonalPlusRankOne):
            H = H.dense()
        if not isinstance(H, Tensor):
            raise TypeError(
                "CubicRegularizedNewton needs the Hessian as a dense matrix, got "
                f"{type(H).__name__}"
            )
        return H.reshape(state.x.numel(), state.x.numel())

    def _eig(self, state: CubicNewtonState) -> tuple[Tensor, Tensor]:
        if state.eig is None:
            H = self._dense_hessian(state)
            state.eig = torch.linalg.eigh(0.5 * (H + H.mT))
            state.factorizations += 1
        return state.eig

    def _check(self, state: CubicNewtonState) -> None:
        """Set ``SUCCESS`` when the stopping rule holds at ``state.x``."""
        if f_star_reached(self, state.f):
            state.status = Status.SUCCESS
            return
        if state.grad_norm > state.threshold:
            return
        lam = self._eig(state)[0]
        if not bool(torch.isfinite(lam).all()):
            state.status = Status.NONFINITE
            return
        eps = torch.finfo(lam.dtype).eps
        floor = math.sqrt(state.M * state.threshold)
        floor += 10 * eps * float(lam.abs().max())
        if float(lam[0]) >= -floor:
            state.status = Status.SUCCESS

    def init(self, problem: OptimizationProblem, x0: Tensor) -> CubicNewtonState:
        objective = problem.objective
        hessian = resolve_hessian(self.hessian, objective, "cholesky")
        f, g = objective.value_and_grad(x0)
        gnorm = norm(g)
        state = CubicNewtonState(
            x0, f, g, gnorm, threshold(self, gnorm, x0.dtype), self.M0, hessian
        )
        if not finite(f, g):
            state.status = Status.NONFINITE
        else:
            self._check(state)
        return state

    def step(
        self, problem: OptimizationProblem, state: CubicNewtonState
    ) -> CubicNewtonState:
        objective = problem.objective
        eig = self._eig(state)
        f0 = float(state.f)
        slack = 16 * torch.finfo(state.x.dtype).eps * abs(f0)
        M = state.M
        trials = nonfinite = 0
        accepted = False
        while trials < self.max_inner:
            trials += 1
            sub = cubic_subproblem(None, state.g, M, eigh=eig)
            x_new = state.x + sub.h
            f_new, g_new = objective.value_and_grad(x_new)
            if not finite(f_new, g_new):
                nonfinite += 1
                M *= 2
                continue
            model = f0 - sub.model_decrease
            if not self.adaptive or float(f_new) <= model + slack:
                accepted = True
                break
            M *= 2
        state.inner_steps += trials
        state.last_inner = trials
        state.steps += 1
        if not accepted:
            state.M = M
            state.status = (
                Status.NONFINITE if nonfinite == trials else Status.STAGNATION
            )
            return state
        state.hard_cases += sub.hard_case
        state.step_norm = norm(sub.h)
        state.mu = sub.mu
        state.M = max(M / 2, self.M_min) if self.adaptive else M
        state.x, state.f, state.g = x_new, f_new, g_new
        state.grad_norm = norm(g_new)
        state.eig = None
        self._check(state)
        return state

    def metrics(
        self, problem: OptimizationProblem, state: CubicNewtonState
    ) -> dict[str, float]:
        return {
            "objective": float(state.f),
            "grad_norm": state.grad_norm,
            "M": state.M,
            "step_norm": state.step_norm,
            "inner_steps": state.last_inner,
        }

    def stats(
        self, problem: OptimizationProblem, state: CubicNewtonState
    ) -> dict[str, float]:
        return {
            "inner_steps": state.inner_steps,
            "factorizations": state.factorizations,
            "hard_cases": state.hard_cases,
        }
