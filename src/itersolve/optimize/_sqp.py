"""AdaSketch SQP: equality-constrained Newton steps solved by randomized sketching,
globalized by the exact augmented Lagrangian (Hong, Na, Mahoney & Kolar 2023)."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from itersolve._core.frontdoor import check_tolerances
from itersolve._core.iterate import IterativeMethod
from itersolve._core.linesearch import LineSearchResult, armijo
from itersolve._core.solution import Status
from itersolve.linear import RandomizedKaczmarz, inner_solve
from itersolve.linear._kaczmarz import check_seed
from itersolve.optimize._constraints import BoundConstraints, bind_constraints
from itersolve.optimize._problem import OptimizationProblem
from itersolve.optimize._second_order import NewtonTypeMethod

Tensor = torch.Tensor

#: Rank test of the constraint Jacobian: ``lambda_min(G G^T) < LICQ_TOL *
#: max(1, ||G||_2^2)`` counts as rank-deficient (relative, so scaling ``c`` does
#: not change the verdict).
LICQ_TOL = 1e-10


#: ``|slope| <= ROUNDING_ULPS eps (1 + |merit|)``: a merit decrease Armijo cannot
#: resolve (the decrease is ``O(KKT^2)``; 1.1e-13 in float64, 6e-5 in float32).
ROUNDING_ULPS = 500.0


def _norm(v: Tensor) -> float:
    return float(torch.linalg.vector_norm(v))


@dataclass
class Point:
    """The oracles at one ``(x, lam)``: ``f``, ``grad f``, ``c``, ``G`` and
    ``grad_x L = grad f + G^T lam`` (flat)."""

    x: Tensor
    lam: Tensor
    f: float
    g: Tensor
    c: Tensor
    G: Tensor
    grad_L: Tensor

    @property
    def kkt(self) -> float:
        return math.hypot(_norm(self.grad_L), _norm(self.c))

    def finite(self) -> bool:
        return math.isfinite(self.f) and bool(
            torch.isfinite(self.grad_L).all() and torch.isfinite(self.c).all()
        )


@dataclass
class SQPState:
    x: Tensor
    lam: Tensor
    point: Point
    constraints: BoundConstraints
    threshold: float
    eta1: float
    eta2: float
    delta: float
    jacobian_scale: float = 0.0
    """``||G(x_0)||_F``, the scale of the infeasibility test."""
    z: Tensor | None = None
    """The last KKT direction ``(dx, dlam)``, the warm start of the next solve."""
    status: Status | None = None
    steps: int = 0
    step_size: float = math.nan
    inner_rtol: float = math.nan
    inner_rows: int = 0
    row_operations: int = 0
    inner_solves: int = 0
    inner_failures: int = 0
    factorizations: int = 0
    penalty_updates: int = 0
    hessian_modifications: int = 0
    rank_deficient_steps: int = 0
    rank_deficient: bool = False
    line_search_evaluations: int = 0
    finding: str | None = None


def _evaluate(
    problem: OptimizationProblem, bound: BoundConstraints, x: Tensor, lam: Tensor
) -> Point:
    f, g = problem.objective.value_and_grad(x)
    c = bound.value(x)
    G = bound.jacobian(x)
    g = g.reshape(-1)
    return Point(x, lam, float(f), g, c, G, g + G.T @ lam)


def ruiz_scaling(K: Tensor, sweeps: int = 10) -> Tensor:
    """``d`` with ``diag(d) K diag(d)`` of rows and columns of max-norm near 1
    (symmetric Ruiz equilibration, ``sweeps`` passes of ``O(nnz)``).

    >>> K = torch.tensor([[100.0, 1.0], [1.0, 0.0]], dtype=torch.float64)
    >>> d = ruiz_scaling(K)
    >>> scaled = (d[:, None] * K * d[None, :]).abs().max(dim=1).values
    >>> [round(v, 2) for v in scaled.tolist()]
    [1.0, 1.0]
    """
    d = torch.ones(K.shape[0], dtype=K.dtype, device=K.device)
    A = K.abs()
    for _ in range(sweeps):
        r = (d[:, None] * A * d[None, :]).max(dim=1).values.sqrt()
        d = d / torch.where(r > 0, r, torch.ones_like(r))
    return d


def _least_squares_multipliers(g: Tensor, G: Tensor) -> Tensor:
    """``argmin ||g + G^T lam||`` (zeros when ``G`` has no usable rank)."""
    if not bool(torch.isfinite(G).all()) or not bool(G.any()):
        return torch.zeros(G.shape[0], dtype=g.dtype, device=g.device)
    return -torch.linalg.lstsq(G.T, g[:, None], rcond=None).solution[:, 0]


@dataclass(frozen=True, kw_only=True)
class AdaSketchSQP(NewtonTypeMethod):
    """AdaSketch SQP (AdaSketch-Newton): Newton-KKT steps for ``min f(x) s.t.
    c(x) = 0``, solved inexactly by randomized sketching, with a line search on
    the exact augmented Lagrangian.

    Compare with ``scipy.optimize.minimize(method="SLSQP" | "trust-constr",
    constraints=NonlinearConstraint(c, 0, 0))`` and IPOPT (``casadi.nlpsol``).

    Each step at ``(x_k, lam_k)`` with ``G = Jacobian of c``, ``grad_x L = grad f
    + G^T lam`` and ``H = Hess_x L``:

    1. ``B = H``, or ``B = H + (xi_B + ||H||_F) I`` when the reduced Hessian
       ``Z^T H Z`` (``Z``: null space of ``G``, from its SVD) has an eigenvalue
       below 1e-6;
    2. the KKT system ``[[B, G^T], [G, 0]] z = b``, ``b = -(grad_x L, c)``, is
       solved by ``linear_solver`` to ``||K z - b|| <= rtol_k ||b||``, warm-started;
    3. descent test on the merit ``L_eta = f + lam^T c + eta1/2 ||c||^2 +
       eta2/2 ||grad_x L||^2``: ``<grad L_eta, z> <= -eta2/2 ||b||^2``, with
       ``grad_x L_eta = grad_x L + eta1 G^T c + eta2 H grad_x L`` and
       ``grad_lam L_eta = c + eta2 G grad_x L``. When it fails, ``eta1 <-
       nu^2 eta1``, ``eta2 <- eta2 / nu``, ``delta <- delta / nu^4`` and the
       solve continues from ``z`` (a penalty update; accepted as is once
       ``eta1 > 1e8`` or ``eta2 < 1e-8``, the reference's safeguard);
    4. Armijo backtracking on ``L_eta`` from ``alpha = 1`` (``c1 = beta``,
       halving), ``(x, lam) += alpha z``. Near a solution the predicted
       decrease ``|<grad L_eta, z>| = O(KKT^2)`` falls below the rounding of
       ``L_eta`` (``<= 500 eps (1 + |L_eta|)``); there the unit step is taken
       when it reduces the KKT residual, instead of comparing noise.

    Adaptive inner accuracy: ``rtol_k = max(delta_k min(1, ||b_k||), 1e-13)``
    (``inner_rtol=None``). The reference's rule ``||K|| psi ||r|| <= delta
    ||b||`` with ``psi >= 20 / min(xi_B, 1) = 200`` and ``delta <= delta_trial
    = (0.5 - beta) eta2 / ((1 + eta1 + eta2) Upsilon^2 psi^2) <= 4.8e-7`` is a
    fixed relative accuracy below ``1e-6 / (200 ||K||)`` from the first step
    on (the floor ``delta >= 1e-6`` binds at once); it is not adaptive in
    practice. This rule keeps the reference's ``delta`` and its decrease on
    every penalty update (the explicit descent test safeguards the merit), and
    scales it by the KKT residual: a forcing term ``O(||b_k||)`` gives local
    quadratic convergence with unit steps (Dembo, Eisenstat & Steihaug 1982),
    loose solves far from the solution. A float ``inner_rtol`` fixes it.

    Equilibration (not in the paper): randomized Kaczmarz contracts by ``1 -
    sigma_min(K)^2 / ||K||_F^2`` per row, and saddle-point matrices of CUTEst
    problems are badly scaled (MWRIGHT at ``x0``: ``||K||_F^2 / sigma_min^2 =
    6.7e8``, hopeless within 1e5 rows). The sketching solvers therefore run
    on ``D K D`` with the symmetric Ruiz scaling ``D`` (10 sweeps, ``O(nnz)``
    each; MWRIGHT: ``9.2e3``), to the relative accuracy ``rtol_k`` on the
    scaled residual ``D (K z - b)``; the descent test is unchanged.

    Derivative choice: the merit gradient uses ``H = Hess_x L`` (the formula);
    the reference code's ``Hess f`` differs when ``lam != 0``.

    Stopping rule (on oracles evaluated at the accepted ``(x_k, lam_k)``)::

        ||(grad f(x_k) + G(x_k)^T lam_k, c(x_k))|| <= max(rtol * KKT_0, atol)

    Rank-deficient ``G`` (``lambda_min(G G^T) < 1e-10 max(1, ||G||_2^2)``,
    LICQ fails, also whenever ``m > n``): the reference aborts; here the run
    goes on with the singular KKT system (counted in
    ``stats["rank_deficient_steps"]``): ``"direct"`` takes its minimum-norm
    least-squares solution (SVD), the row-action solvers skip zero rows and
    converge on the consistent part; redundant but consistent constraints
    still converge. A point where ``||c|| > atol`` and ``||G^T c|| <= 1e-8
    max(||G||_F, ||G(x_0)||_F) ||c||`` (a stationary point of ``||c||^2``: no
    feasible point nearby) ends the run with ``Status.STAGNATION`` and says so
    in ``Solution.detail``; so does a line search without decrease.

    Parameters
    ----------
    rtol, atol
        Tolerances of the KKT test (defaults 0 and 1e-6; the paper uses
        ``atol=1e-4``).
    linear_solver
        ``"direct"`` (dense LU) or a method of :mod:`itersolve.linear` with an
        ``rtol`` field, run by :func:`~itersolve.linear.inner_solve`:
        ``RandomizedKaczmarz`` (default: row-norm sampling, incremental
        residual), ``SketchAndProject(sketch="gaussian", ...)`` (the paper's
        Gaussian variant), ``MINRES()``. An integer ``seed`` of the solver is
        advanced per solve (runs stay reproducible).
    inner_rtol
        ``None`` (adaptive, above) or a fixed relative accuracy.
    max_inner_rows
        Row operations per inner solve (the reference's cap, 1e5); a solve
        that reaches it returns its iterate, which the descent test judges.
    eta1, eta2, delta, xi_B, beta, nu
        The paper's parameters (``Param.jl`` defaults): penalties of the
        merit, initial inner accuracy, Hessian-shift floor, Armijo constant,
        penalty growth factor.
    equilibrate
        Solve the symmetrically equilibrated system ``(D K D) y = D b``, ``z =
        D y`` (Ruiz, :func:`ruiz_scaling`; not for ``"direct"``), see above;
        ``False``: the paper's unscaled sketching.
    seed
        Seed of the inner sketching (an int: solve ``k`` uses ``seed + k``);
        ``None`` keeps the solver's own ``seed``.

    Notes
    -----
    ``solution.stats`` (floats, at the returned point): ``kkt_residual`` and
    ``constraint_violation`` (``||c||``) of the last fresh evaluation,
    ``kkt_row_ops`` (row operations of the sketching solves; a Krylov solver's
    products count ``n + m`` rows each), ``penalty_updates``, ``inner_solves``,
    ``inner_failures`` (solves stopped at ``max_inner_rows``),
    ``factorizations`` (``"direct"``), ``hessian_modifications``,
    ``rank_deficient_steps``, ``line_search_evaluations`` and the constraint
    counters ``constraint_values``, ``constraint_jacobians``,
    ``constraint_hessians``. ``record=True`` traces ``kkt_residual``,
    ``constraint_violation``, ``objective``, ``step_size``, ``eta1``, ``eta2``,
    ``inner_rtol`` and ``inner_rows`` per step. The final multipliers are
    ``sol.extras["multipliers"]`` (one per constraint, in the array kind of
    ``x0``); during the run a callback reads ``info.state.lam``.

    References
    ----------
    Hong, Na, Mahoney & Kolar, "Constrained Optimization via Exact Augmented
    Lagrangian and Randomized Iterative Sketching", ICML 2023.

    Examples
    --------
    ``min ||x||^2`` on the plane ``x_1 + x_2 + x_3 = 3``:

    >>> import torch
    >>> from itersolve.optimize import AdaSketchSQP, EqualityConstraints, minimize
    >>> con = EqualityConstraints(lambda x: x.sum().reshape(1) - 3.0)
    >>> sol = minimize(lambda x: (x**2).sum(), torch.zeros(3, dtype=torch.float64),
    ...                AdaSketchSQP(atol=1e-10), constraints=con)
    >>> sol.success, [round(v, 6) for v in sol.x.tolist()]
    (True, [1.0, 1.0, 1.0])
    >>> sol.stats["kkt_residual"] <= 1e-10
    True

    The multiplier (``lam = -2``: ``grad f + lam grad c = 2 x + lam = 0``):

    >>> [round(v, 6) for v in sol.extras["multipliers"].tolist()]
    [-2.0]
    """

    accepts_constraints: ClassVar[bool] = True

    ADVICE: ClassVar[dict[Status, str]] = {
        Status.MAX_STEPS: (
            "raise max_steps, use linear_solver='direct' if the inner sketching "
            "solves are the bottleneck, or start closer to a feasible point"
        ),
        Status.STAGNATION: (
            "the constraints may have no feasible point near here, or their "
            "Jacobian is rank-deficient (see detail); check c, start elsewhere, "
            "or loosen atol"
        ),
    }

    rtol: float = 0.0
    atol: float = 1e-6
    linear_solver: Any = dataclasses.field(
        default_factory=lambda: RandomizedKaczmarz(residual="incremental")
    )
    inner_rtol: float | None = None
    max_inner_rows: int = 100_000
    eta1: float = 1.0
    eta2: float = 0.1
    delta: float = 0.1
    xi_B: float = 0.1
    beta: float = 0.1
    nu: float = 1.5
    seed: int | None = None
    equilibrate: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        check_tolerances(self.rtol, self.atol)
        solver = self.linear_solver
        if not (isinstance(solver, str) and solver == "direct") and not (
            isinstance(solver, IterativeMethod) and hasattr(solver, "rtol")
        ):
            raise ValueError(
                "linear_solver must be 'direct' or a solver of itersolve.linear "
                f"with an rtol field (RandomizedKaczmarz()), got {solver!r}"
            )
        if self.inner_rtol is not None and not 0 < self.inner_rtol < 1:
            raise ValueError(
                f"inner_rtol must be in (0, 1) or None, got {self.inner_rtol}"
            )
        if isinstance(self.max_inner_rows, bool) or not (
            isinstance(self.max_inner_rows, int) and self.max_inner_rows >= 1
        ):
            raise ValueError(
                f"max_inner_rows must be a positive int, got {self.max_inner_rows!r}"
            )
        for name in ("eta1", "eta2", "delta", "xi_B"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and 0 < value < math.inf):
                raise ValueError(f"{name} must be positive and finite, got {value!r}")
        if not 0 < self.beta < 0.5:
            raise ValueError(f"beta must be in (0, 0.5), got {self.beta}")
        if self.seed is not None:
            check_seed(self.seed)
        if not self.nu > 1:
            raise ValueError(f"nu must be > 1, got {self.nu}")

    def default_max_steps(self, problem: Any) -> int:
        return 1000

    def init(self, problem: OptimizationProblem, x0: Tensor) -> SQPState:
        if problem.constraints is None:
            raise ValueError(
                "AdaSketchSQP needs constraints=EqualityConstraints(c) (for an "
                "unconstrained problem use Newton())"
            )
        bound = bind_constraints(problem.constraints, x0)
        f, g = problem.objective.value_and_grad(x0)
        c, G = bound.value(x0), bound.jacobian(x0)
        g = g.reshape(-1)
        lam = _least_squares_multipliers(g, G)
        point = Point(x0, lam, float(f), g, c, G, g + G.T @ lam)
        kkt0 = point.kkt
        state = SQPState(
            x0,
            lam,
            point,
            bound,
            max(self.rtol * kkt0, self.atol),
            float(self.eta1),
            float(self.eta2),
            float(self.delta),
        )
        state.jacobian_scale = float(torch.linalg.matrix_norm(G))
        if not point.finite():
            state.status = Status.NONFINITE
        elif kkt0 <= state.threshold:
            state.status = Status.SUCCESS
        return state

    # -- the Newton-KKT system -------------------------------------------------

    def _lagrangian_hessian(
        self, problem: OptimizationProblem, state: SQPState
    ) -> Tensor:
        p = state.point
        H = problem.objective.hessian(p.x).reshape(p.g.numel(), -1)
        H = H + state.constraints.hessian(p.x, p.lam)
        return 0.5 * (H + H.T)

    def _kkt_matrix(self, state: SQPState, H: Tensor) -> Tensor:
        p = state.point
        n, m = p.g.numel(), p.c.numel()
        G = p.G
        # one SVD gives the LICQ test, the rank and the null space of G
        _, sigma, Vh = torch.linalg.svd(G)
        top = float(sigma[0]) if sigma.numel() else 0.0
        gram_min = float(sigma[-1]) ** 2 if m <= n else 0.0
        state.rank_deficient = gram_min < LICQ_TOL * max(1.0, top**2)
        rank = m
        if state.rank_deficient:
            state.rank_deficient_steps += 1
            cutoff = max(m, n) * torch.finfo(G.dtype).eps * top
            rank = int((sigma > cutoff).sum())
        B = H
        if rank < n:
            Z = Vh[rank:].T
            if float(torch.linalg.eigvalsh(Z.T @ H @ Z)[0]) < 1e-6:
                shift = self.xi_B + float(torch.linalg.matrix_norm(H))
                B = H + shift * torch.eye(n, dtype=H.dtype, device=H.device)
                state.hessian_modifications += 1
        K = torch.zeros(n + m, n + m, dtype=H.dtype, device=H.device)
        K[:n, :n] = B
        K[:n, n:] = G.T
        K[n:, :n] = G
        return K

    def _solve(
        self, state: SQPState, K: Tensor, b: Tensor, rtol: float, start: Tensor
    ) -> Tensor:
        if isinstance(self.linear_solver, str):
            state.factorizations += 1
            z, info = torch.linalg.solve_ex(K, b)
            if state.rank_deficient or int(info) or not bool(torch.isfinite(z).all()):
                # singular K: the minimum-norm least-squares step (SVD)
                z = torch.linalg.lstsq(K, b[:, None], driver="gelsd").solution[:, 0]
            return z
        solver = self.linear_solver
        changes: dict[str, Any] = {"rtol": rtol}
        seed = getattr(solver, "seed", None) if self.seed is None else self.seed
        if isinstance(seed, int) and not isinstance(seed, bool):
            changes["seed"] = seed + state.inner_solves
        solver = dataclasses.replace(solver, **changes)
        rows = getattr(solver, "rows_per_step", None) or max(K.shape[0], 1024)
        limit = max(1, -(-self.max_inner_rows // rows))
        if self.equilibrate:
            d = ruiz_scaling(K)
            scaled = d[:, None] * K * d[None, :]
            sol = inner_solve(solver, scaled, d * b, x0=start / d, max_steps=limit)
            sol.x = d * sol.x
        else:
            sol = inner_solve(solver, K, b, x0=start, max_steps=limit)
        state.inner_solves += 1
        used = int(sol.stats.get("row_operations", sol.stats.get("matvecs", 0)))
        if "row_operations" not in sol.stats:
            used *= K.shape[0]  # a matvec touches every row of K
        state.inner_rows += used
        state.row_operations += used
        state.inner_failures += not sol.success
        z = sol.x
        if not bool(torch.isfinite(z).all()):
            return start
        return z

    # -- the step --------------------------------------------------------------

    def _merit(self, p: Point, eta1: float, eta2: float) -> float:
        return (
            p.f
            + float(p.lam @ p.c)
            + 0.5 * eta1 * float(p.c @ p.c)
            + 0.5 * eta2 * float(p.grad_L @ p.grad_L)
        )

    def step(self, problem: OptimizationProblem, state: SQPState) -> SQPState:
        p = state.point
        n = p.g.numel()
        H = self._lagrangian_hessian(problem, state)
        K = self._kkt_matrix(state, H)
        b = -torch.cat([p.grad_L, p.c])
        bnorm = _norm(b)
        HgL = H @ p.grad_L
        GgL = p.G @ p.grad_L
        GTc = p.G.T @ p.c
        z = (
            state.z
            if state.z is not None and state.z.shape == b.shape
            else torch.zeros_like(b)
        )
        state.inner_rows = 0
        solved = False
        while True:
            if self.inner_rtol is None:
                rtol = max(state.delta * min(1.0, bnorm), 1e-13)
            else:
                rtol = self.inner_rtol
            state.inner_rtol = rtol
            if not (solved and isinstance(self.linear_solver, str)):
                # an exact solve does not change with the penalties
                z = self._solve(state, K, b, rtol, z)
                solved = True
            merit_grad = torch.cat(
                [p.grad_L + state.eta1 * GTc + state.eta2 * HgL, p.c + state.eta2 * GgL]
            )
            slope = float(merit_grad @ z)
            if state.eta1 > 1e8 or state.eta2 < 1e-8:
                break
            if slope <= -0.5 * state.eta2 * bnorm**2:
                break
            state.eta1 *= self.nu**2
            state.eta2 /= self.nu
            state.delta = max(state.delta / self.nu**4, 1e-13)
            state.penalty_updates += 1
        state.z = z
        dx, dlam = z[:n], z[n:]
        merit0 = self._merit(p, state.eta1, state.eta2)
        cache: dict[float, Point] = {}
        bound = state.constraints

        def phi(t: float) -> float:
            x_t = p.x + t * dx.reshape(p.x.shape)
            q = _evaluate(problem, bound, x_t, p.lam + t * dlam)
            if not q.finite():
                return math.inf
            cache[t] = q
            return self._merit(q, state.eta1, state.eta2)

        result = None
        eps = torch.finfo(p.g.dtype).eps
        if -slope <= ROUNDING_ULPS * eps * (1.0 + abs(merit0)):
            # The predicted decrease is below the merit's rounding: Armijo
            # would compare noise. Take the unit step if it reduces the KKT
            # residual (the quantity the merit's decrease stands for).
            state.line_search_evaluations += 1
            if phi(1.0) < math.inf and cache[1.0].kkt < p.kkt:
                result = LineSearchResult(1.0, 0.0, 1, True)
        if result is None:
            result = armijo(phi, merit0, slope, step=1.0, c1=self.beta)
            state.line_search_evaluations += result.evaluations
        if not result.success:
            state.status = Status.STAGNATION
            what = "the line search on the merit found no decrease"
            if self._infeasible(p, state):
                what = "no feasible point nearby; " + what
            state.finding = self._finding(p, what)
            return state
        q = cache[result.step]
        state.point = q
        state.x, state.lam = q.x, q.lam
        state.step_size = result.step
        state.steps += 1
        if q.kkt <= state.threshold:
            state.status = Status.SUCCESS
        elif self._infeasible(q, state):
            state.status = Status.STAGNATION
            state.finding = self._finding(q, "no feasible point nearby")
        return state

    @staticmethod
    def _infeasible(p: Point, state: SQPState) -> bool:
        cnorm = _norm(p.c)
        if cnorm <= state.threshold:
            return False
        # G may vanish at the stationary point itself: measure it against the
        # Jacobian's scale at x0 as well
        scale = max(float(torch.linalg.matrix_norm(p.G)), state.jacobian_scale)
        return _norm(p.G.T @ p.c) <= 1e-8 * scale * cnorm

    @staticmethod
    def _finding(p: Point, what: str) -> str:
        m = p.c.numel()
        G = p.G
        n = G.shape[1]
        gram_min = float(torch.linalg.eigvalsh(G @ G.T)[0]) if m <= n else 0.0
        return (
            f"{what}: KKT residual {p.kkt:.3e}, ||c|| = {_norm(p.c):.3e}, "
            f"||G^T c|| = {_norm(G.T @ p.c):.3e}, lambda_min(G G^T) = "
            f"{gram_min:.3e} (m = {m}, n = {n})"
        )

    def diagnose(self, problem: Any, state: SQPState, status: Status) -> str | None:
        return state.finding

    def outputs(
        self, problem: OptimizationProblem, state: SQPState
    ) -> dict[str, Tensor]:
        return {"multipliers": state.point.lam}

    def metrics(
        self, problem: OptimizationProblem, state: SQPState
    ) -> dict[str, float]:
        p = state.point
        return {
            "objective": p.f,
            "kkt_residual": p.kkt,
            "constraint_violation": _norm(p.c),
            "step_size": state.step_size,
            "eta1": state.eta1,
            "eta2": state.eta2,
            "inner_rtol": state.inner_rtol,
            "inner_rows": float(state.inner_rows),
        }

    def stats(self, problem: OptimizationProblem, state: SQPState) -> dict[str, float]:
        p = state.point
        return {
            "kkt_residual": p.kkt,
            "constraint_violation": _norm(p.c),
            "kkt_row_ops": state.row_operations,
            "penalty_updates": state.penalty_updates,
            "inner_solves": state.inner_solves,
            "inner_failures": state.inner_failures,
            "factorizations": state.factorizations,
            "hessian_modifications": state.hessian_modifications,
            "rank_deficient_steps": state.rank_deficient_steps,
            "line_search_evaluations": state.line_search_evaluations,
            **state.constraints.counts,
        }
