"""optimize-newton: gradient-regularized Newton (exact / Gauss–Newton Hessians) and
damped Newton vs scipy, scikit-learn and torch.optim.LBFGS on L2-regularised
logistic and softmax regression (identical objective scaling for every tool).

Objective (``itersolve.problems.Logistic`` / ``Softmax``): mean loss +
``l2/2 ||w||^2``, no intercept; scikit-learn gets ``C = 1/(n l2)`` and
``fit_intercept=False``, which has the same minimizer. The reported objective is
the relative suboptimality ``(f(x) - f*) / |f*|`` recomputed in float64, with
``f*`` from a damped Newton run to ``||grad|| <= 1e-13``.

One stopping rule for every method: ``||grad f(x)||_2 <= 1e-8`` (itersolve's
``atol``, ``rtol = 0``). After each run the suite recomputes ``||grad f(x)||_2``
of the returned point in float64 (column ``grad_norm``; one gradient evaluation,
inside every method's timed region alike) and the row is ``SUCCESS`` only when
that meets the rule; a method that stopped on its own rule first is
``STAGNATION`` (its flag is kept in ``native_status``). How each anchor is
stopped:

- scipy ``trust-exact`` / ``trust-krylov``: native ``gtol = 1e-8``; their test is
  ``||g||_2 < gtol``, our rule (up to ``<`` vs ``<=``).
- scipy ``L-BFGS-B`` and ``Newton-CG``: a callback on our exact rule (raising
  ``StopIteration``; it reuses the gradient of the last evaluation when that was
  at the new iterate). The native rules are switched off so they cannot stop
  first: L-BFGS-B ``gtol = 0, ftol = 0`` (its ``gtol`` is on the inf-norm of the
  projected gradient), Newton-CG ``xtol = 0`` (it has only a step-length rule).
- scikit-learn (``lbfgs``, ``newton-cholesky``) and ``torch.optim.LBFGS`` take no
  callback, and their rule is on the inf-norm: ``max |g_i| <= tol``. Since
  ``||g||_inf <= ||g||_2``, a point meeting our rule meets ``tol = 1e-8``, so
  ``tol = 1e-8`` never runs past our rule; any ``tol < 1e-8`` would (a gradient
  along one coordinate has ``||g||_inf = ||g||_2``). ``tol = 1e-8`` is therefore
  the tightest native setting not tighter than ours. (The old ``1e-10`` cost
  L-BFGS-B 32-34% more iterations.) newton-cholesky also asks for half the
  squared Newton decrement ``g^T H^-1 g / 2 <= tol``, implied at our rule:
  ``<= ||g||_2^2 / (2 l2) = 5e-14`` with ``l2 = 1e-3``. Because
  ``||g||_2 <= sqrt(d) ||g||_inf``, these may stop with ``||g||_2`` above 1e-8;
  such a run is judged by our rule (not ``SUCCESS``) and the claims name it.

Algorithm 1 against the reference code (``epfml/grad-norm-smooth``,
``src/methods.py::grad_norm_smooth``): the same constants (``gamma0 = 1``,
``gamma_min = 1e-9``, ``lambda = ||g||_* / gamma``, accept iff ``f(x) - f(x+) >=
||grad f(x+)||_*^2 / (8 lambda)``, ``gamma`` doubled on acceptance and halved on
rejection or a failed Cholesky, 40 trials). The paper's approximate-Hessian
problem is a single log-sum-exp (``src/oracles.py``, no logistic oracle), whose
weighted Gauss–Newton model drops exactly ``grad f grad f^T / mu``: an error
controlled by ``||grad f||``, which is what the gradient-normalized smoothness
needs. Case ``lse-random1000x1000`` is the notebook's recipe
(``notebooks/examples.ipynb``, "LogSumExp": numpy seed 3124, ``A`` uniform in
``[-1, 1]`` 1000 x 1000, ``mu = 1``, rows shifted so the optimum is 0,
``B = A A^T``, ``x0 = 1``, stop at ``f - f* < 1e-8``); its figure shows about 35
(exact) and 95 (weighted Gauss–Newton) iterations, a ratio of ~2.7, so the spec's
"approximate <= 2x exact" is not what the paper itself measured.

On logistic and softmax *regression* (finite sums) the Gauss–Newton model
``G`` drops ``(1/n) sum_i x_i x_i^T (x) p_i p_i^T`` (logistic: weights
``sigma(-m_i)^2``, the per-sample Fisher term), which does not vanish at the
optimum: the gradient-normalized smoothness of ``G`` tends to 0 with
``||grad f||``, and no constant of Algorithm 1 restores a fast rate. Since
``G >= H`` (the dropped term is PSD), every eigenvalue of ``(G + lambda B)^-1 H``
with ``lambda >= 0`` is at most ``theta_min(G^-1 H)`` on its slowest mode, so
the local contraction of ``x+ = x - (G + lambda B)^-1 g`` is at least the floor
``1 - theta_min(G(x*)^-1 H(x*))``; each Gauss–Newton row carries it as
``gn_floor``: 0.673 on breast_cancer (>= 46 iterations per 8 decades; measured
49, per-step gradient ratio 0.73-0.75) and 0.99929 on digits (>= 25 852; the
run stops at its cap). The iteration claims over these cases therefore stay
FAIL with that floor printed.

The same mechanism sets the inner trials. Near ``x*`` a Gauss–Newton step
decreases ``f`` by ``~ c ||g||^2`` while ``||grad f(x+)|| ~ q ||g||`` with the
per-step contraction ``q`` bounded away from 0, so the acceptance test ``f(x) -
f(x+) >= ||grad f(x+)||^2 / (8 lambda)`` needs ``lambda >= q^2 / (8 c)``: a
floor independent of ``||g||``. Then ``gamma = ||g|| / lambda`` must shrink by
``q`` per step while Algorithm 1 doubles it on every acceptance, so each step
costs ``1 + log2(2 / q)`` trials in steady state: more than 2 whenever ``q < 1``
(the constant ``lambda`` also keeps the rate slower than the floor above). With
the exact Hessian ``q -> 0`` (quadratic convergence), the decrease wins, ``gamma``
grows and one trial suffices. Measured (GN, tail of the run): breast_cancer ``q
= 0.742`` (predicted 2.43 trials; the tail alternates 2 and 3, mean 2.35 over
the run), synthetic 2000 x 100 ``q = 0.474`` (3.08; tail 3); on digits, where
``q`` is at least the floor 0.9993, the prediction is 2.0 (measured 2.03). So
"<= ~2 trials per step" holds for the exact model and cannot hold for a model
whose error does not vanish at ``x*``; the claim keeps the spec's number.

``itersolve-cubic-newton`` (``CubicRegularizedNewton``: Nesterov–Polyak cubic
regularization with adaptive ``M`` and the exact eigen / secular subproblem; the
reference code's ``cubic_newton`` baseline) runs on the regression cases as
context: no claim reads it, and it is not among "our methods" of the time and
objective claims, which compare the methods the spec names.

The "best anchor" of the time claim is the fastest of every anchor run (scipy
trust-exact, trust-krylov, Newton-CG and L-BFGS-B, scikit-learn lbfgs and
newton-cholesky, and torch.optim.LBFGS) that met our rule or stopped as
converged on its own rule; for the latter (the inf-norm ones, short of our rule)
the time is a lower bound on their time to our rule, so including them can only
make the claim harder. The same-objective claim compares with the anchors that
met our rule.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

import numpy as np
import scipy.optimize as so
import torch

from itersolve.bench.anchors import torch_lbfgs
from itersolve.bench.results import Results
from itersolve.bench.suite import Case, Claim, ClaimOutcome, Method, RunOutput, Suite
from itersolve.linear import CG
from itersolve.optimize import (
    CubicRegularizedNewton,
    GradientDescent,
    Newton,
    RegularizedNewton,
    minimize,
)
from itersolve.problems import (
    Logistic,
    LogSumExp,
    Softmax,
    breast_cancer_data,
    digits_data,
    synthetic_classification,
)

L2 = 1e-3
GTOL = 1e-8
GD_MAX_STEPS = 1000
F_TOL = 1e-8
"""The paper's stopping rule on the LogSumExp case: ``f(x_k) - f* < 1e-8``."""
LSE_CASE = "lse-random1000x1000"
#: Iterations to f - f* < 1e-8 read off the reference notebook's figure
#: (``notebooks/examples.ipynb``, "Random Data (A in R^{1000 x 1000}, mu = 1)").
PAPER_LSE_ITERATIONS = {"exact": 35, "gauss_newton": 95}


@dataclass(frozen=True)
class Fit:
    """A classification problem plus its reference optimum."""

    problem: Logistic | Softmax
    """On the paper's case a :class:`LogSumExp` (regression-only methods skip it)."""
    f_star: float
    labels: np.ndarray
    """Labels as scikit-learn takes them (0/1 or class indices)."""
    gd_max_steps: int = GD_MAX_STEPS
    newton_max_steps: int = 100
    x0: Any = None
    """Start point (``None``: ``problem.x0()``, zero)."""
    B: Any = None
    """Norm matrix of RegularizedNewton (``None``: identity)."""
    f_rule: bool = False
    """Stop and judge on ``f - f* < F_TOL`` (the paper's rule) instead of the
    gradient norm."""
    gn_floor: float | None = None
    """``1 - theta_min(G(x*)^-1 H(x*))``: the slowest local contraction any
    step ``-(G + lambda B)^-1 g`` with the Gauss–Newton model ``G`` can reach
    (module docstring)."""

    def start(self) -> Any:
        return self.problem.x0() if self.x0 is None else self.x0


def _reference(problem: Logistic | Softmax) -> tuple[float, float]:
    """``f*`` and the Gauss–Newton floor at the reference optimum."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sol = minimize(problem, problem.x0(), Newton(rtol=0.0, atol=1e-13))
    x = torch.as_tensor(sol.x)
    return float(problem.value(x)), _gn_floor(problem, x)


def _gn_floor(problem: Logistic | Softmax, x_star: torch.Tensor) -> float:
    H = problem.hessian(x_star)
    G = problem.gauss_newton(x_star)
    theta = torch.linalg.eigvals(torch.linalg.solve(G, H)).real
    return float(1.0 - theta.min())


def _paper_lse(n: int) -> Fit:
    """The reference notebook's LogSumExp case (module docstring), n x n."""
    rs = np.random.RandomState(3124)
    A = rs.rand(n, n) * 2 - 1  # (n, m); the oracle's rows a_i are A's columns
    b = rs.rand(n) * 2 - 1
    rows = A.T
    s = -b  # scores at x = 0 (mu = 1)
    p = np.exp(s - s.max())
    p /= p.sum()
    # Shift every row by grad f(0) = rows^T p: the optimum moves to x = 0.
    shifted = rows - rows.T @ p
    problem = LogSumExp(torch.tensor(shifted), torch.tensor(b), mu=1.0)
    zero = torch.zeros(n, dtype=torch.float64)
    return Fit(
        problem,  # type: ignore[arg-type]
        float(problem.value(zero)),
        np.zeros(0),
        newton_max_steps=1000,
        x0=torch.ones(n, dtype=torch.float64),
        B=torch.tensor(A @ A.T),
        f_rule=True,
    )


def _build(kind: str, n: int = 0) -> Fit:
    if kind == "lse":
        return _paper_lse(n)
    if kind == "breast_cancer":
        X, y = breast_cancer_data()
        problem: Logistic | Softmax = Logistic(X, y, l2=L2)
        labels = y.numpy().astype(int)
    elif kind == "digits":
        X, y = digits_data()
        if n:
            X, y = X[:n], y[:n]
        problem = Softmax(X, y, l2=L2 if not n else 1e-2, n_classes=10)
        labels = y.numpy()
    elif kind == "synthetic-softmax":
        X, y = synthetic_classification(n, 10, n_classes=3, seed=n)
        problem = Softmax(X, y, l2=L2, n_classes=3)
        labels = y.numpy()
    else:
        d = 100 if n >= 1000 else 10
        X, y = synthetic_classification(n, d, condition_number=1e3, seed=n)
        problem = Logistic(X, y, l2=L2)
        labels = y.numpy()
    small = 0 < n < 500
    f_star, floor = _reference(problem)
    return Fit(
        problem,
        f_star,
        labels,
        # The 20000-row set is only in the timing claim: GD there is context.
        50 if small else (200 if n >= 10_000 else GD_MAX_STEPS),
        30 if small else 100,
        gn_floor=floor,
    )


def cases(scale: str) -> list[Case]:
    if scale == "smoke":
        return [
            Case("logistic-synthetic200x10", partial(_build, "synthetic", 200)),
            Case("softmax-synthetic60x10x3", partial(_build, "synthetic-softmax", 60)),
        ]
    return [
        Case("logistic-breast_cancer", partial(_build, "breast_cancer"), {"d": 30}),
        Case("logistic-synthetic2000x100", partial(_build, "synthetic", 2000)),
        Case("softmax-digits", partial(_build, "digits"), {"d": 640}),
        Case("logistic-synthetic20000x100", partial(_build, "synthetic", 20000)),
        # Iteration counts only (deterministic): one repeat.
        Case(LSE_CASE, partial(_build, "lse", 1000), {"d": 1000}, repeats=1),
    ]


def evaluate(fit: Fit, x: Any) -> float:
    x64 = torch.as_tensor(np.asarray(x, dtype=np.float64).reshape(fit.problem.shape))
    value = float(fit.problem.value(x64))
    return (value - fit.f_star) / abs(fit.f_star)


def grad_norm(fit: Fit, x: Any) -> float:
    """``||grad f(x)||_2`` recomputed in float64 (the suite's stopping rule)."""
    x64 = torch.as_tensor(np.asarray(x, dtype=np.float64).reshape(fit.problem.shape))
    return float(torch.linalg.vector_norm(fit.problem.grad(x64)))


def judged(fit: Fit, out: RunOutput) -> RunOutput:
    """``out`` with its status set by our rule on the float64 gradient norm.

    ``SUCCESS`` iff ``||grad||_2 <= GTOL`` (on the paper's LogSumExp case:
    ``f - f* < F_TOL``); a run whose own rule said it had
    converged but which misses ours is ``STAGNATION``; other native statuses
    (``MAX_STEPS``, ...) are kept.
    """
    gnorm = grad_norm(fit, out.x)
    if fit.f_rule:
        x64 = torch.as_tensor(np.asarray(out.x, dtype=np.float64))
        gap = float(fit.problem.value(x64)) - fit.f_star
        met = math.isfinite(gap) and gap < F_TOL
    else:
        met = math.isfinite(gnorm) and gnorm <= GTOL
    if met:
        status = "SUCCESS"
    else:
        status = "STAGNATION" if out.status == "SUCCESS" else out.status
    extras = {**out.extras, "grad_norm": gnorm, "native_status": out.status}
    return RunOutput(out.x, out.num_steps, status, out.counters, extras)


# -- ours ----------------------------------------------------------------------


def _paper_rule(fit: Fit) -> dict[str, Any]:
    """RegularizedNewton options of the paper's case: its ``B`` and ``f*`` rule."""
    if not fit.f_rule:
        return {}
    # A gradient threshold far below rounding: only f - f* < F_TOL stops.
    return {
        "B": fit.B,
        "f_star": fit.f_star,
        "rtol_f": 0.0,
        "atol_f": F_TOL,
        "atol": 1e-300,
    }


def _ours(method_factory: Any, gd: bool = False):
    def run(fit: Fit) -> RunOutput:
        p = fit.problem
        cap = fit.gd_max_steps if gd else fit.newton_max_steps
        method = method_factory(max_steps=cap, **_paper_rule(fit))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sol = minimize(p, fit.start(), method)
        inner = sol.stats.get("inner_steps")
        extras: dict[str, Any] = {}
        if inner is not None and sol.num_steps:
            extras["inner_per_step"] = inner / sol.num_steps
        if getattr(method, "hessian", None) == "gauss_newton" and fit.gn_floor:
            extras["gn_floor"] = fit.gn_floor
        counters: dict[str, float] = {
            k: sol.stats[k]
            for k in ("grads", "values", "hessians", "factorizations")
            if k in sol.stats
        }
        out = RunOutput(sol.x, sol.num_steps, sol.status.name, counters, extras)
        return judged(fit, out)

    return run


def _ours_trace(method_factory: Any):
    def trace(fit: Fit) -> dict[str, list[float]]:
        p = fit.problem
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            method = method_factory(max_steps=fit.newton_max_steps, **_paper_rule(fit))
            sol = minimize(p, fit.start(), method, record=True)
        assert sol.trace is not None
        return {
            "step": sol.trace["step"].tolist(),
            "objective": [
                (v - fit.f_star) / abs(fit.f_star) for v in sol.trace["objective"]
            ],
            "time": sol.trace["time"].tolist(),
        }

    return trace


def _regnewton(hessian: str, linear_solver: Any = "cholesky") -> Any:
    return partial(
        RegularizedNewton,
        hessian=hessian,
        rtol=0.0,
        atol=GTOL,
        linear_solver=linear_solver,
    )


# -- anchors -------------------------------------------------------------------


def _numpy_oracles(p: Logistic | Softmax):
    shape = p.shape

    def fun(w: np.ndarray) -> tuple[float, np.ndarray]:
        f, g = p.value_and_grad(torch.from_numpy(w.reshape(shape)))
        return float(f), g.reshape(-1).numpy()

    def hess(w: np.ndarray) -> np.ndarray:
        return p.hessian(torch.from_numpy(w.reshape(shape))).numpy()

    def hessp(w: np.ndarray, v: np.ndarray) -> np.ndarray:
        t = torch.from_numpy
        return p.hvp(t(w.reshape(shape)), t(v.reshape(shape))).reshape(-1).numpy()

    return fun, hess, hessp


class _StopAtRule:
    """scipy callback stopping a run at ``||g||_2 <= GTOL`` (our exact rule).

    ``oracle`` is the function scipy evaluates; it remembers the last point and
    gradient so the callback costs no extra evaluation when the new iterate was
    the last point evaluated (the usual end of a line search).
    """

    def __init__(self, fun: Any) -> None:
        self.fun = fun
        self.x: np.ndarray | None = None
        self.g: np.ndarray | None = None
        self.fired = False

    def oracle(self, w: np.ndarray) -> tuple[float, np.ndarray]:
        f, g = self.fun(w)
        self.x, self.g = w.copy(), g
        return f, g

    def __call__(self, intermediate_result: so.OptimizeResult) -> None:
        x = intermediate_result.x
        if self.x is not None and self.g is not None and np.array_equal(x, self.x):
            g = self.g
        else:
            g = self.oracle(x)[1]
        if float(np.linalg.norm(g)) <= GTOL:
            self.fired = True
            raise StopIteration


#: Native options: trust-* stop on ||g||_2 < gtol (our rule); L-BFGS-B and
#: Newton-CG have their own rules switched off and stop by ``_StopAtRule``.
_SCIPY_OPTIONS: dict[str, dict[str, float]] = {
    "L-BFGS-B": {"gtol": 0.0, "ftol": 0.0, "maxiter": 20000},
    "trust-exact": {"gtol": GTOL, "maxiter": 1000},
    "trust-krylov": {"gtol": GTOL, "maxiter": 1000},
    "Newton-CG": {"xtol": 0.0, "maxiter": 1000},
}
_BY_CALLBACK = ("L-BFGS-B", "Newton-CG")


def _scipy(method: str):
    options = _SCIPY_OPTIONS[method]

    def run(fit: Fit) -> RunOutput:
        p = fit.problem
        fun, hess, hessp = _numpy_oracles(p)
        kwargs: dict[str, Any] = {}
        if method == "trust-exact":
            kwargs["hess"] = hess
        elif method in ("trust-krylov", "Newton-CG"):
            kwargs["hessp"] = hessp
        stop = _StopAtRule(fun)
        if method in _BY_CALLBACK:
            kwargs["callback"] = stop
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = so.minimize(
                stop.oracle,
                np.zeros(int(np.prod(p.shape))),
                jac=True,
                method=method,
                options=options,
                **kwargs,
            )
        # Native verdict: for callback-stopped methods only the callback is
        # convergence (their own rules are off, so a "success" there is a stall).
        converged = stop.fired if method in _BY_CALLBACK else res.success
        if converged:
            status = "SUCCESS"
        else:
            status = "MAX_STEPS" if res.nit >= options["maxiter"] else "STAGNATION"
        counters = {"grads": float(getattr(res, "njev", 0) or res.nfev)}
        if getattr(res, "nhev", None):
            counters["hessians"] = float(res.nhev)
        extras = {"native_message": str(res.message)}
        out = RunOutput(res.x.reshape(p.shape), int(res.nit), status, counters, extras)
        return judged(fit, out)

    return run


def _sklearn(solver: str):
    def prepare(fit: Fit) -> tuple[Fit, np.ndarray]:
        return fit, fit.problem.X.numpy()

    def run(prepared: tuple[Fit, np.ndarray]) -> RunOutput:
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.linear_model import LogisticRegression

        fit, X = prepared
        model = LogisticRegression(
            C=fit.problem.C,
            fit_intercept=False,
            solver=solver,
            # max |g_i| <= tol: the tightest setting not tighter than ours.
            tol=GTOL,
            max_iter=10000,
        )
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)
            model.fit(X, fit.labels)
        failed = any(issubclass(w.category, ConvergenceWarning) for w in caught)
        coef = model.coef_
        x = coef[0] if isinstance(fit.problem, Logistic) else coef.T
        out = RunOutput(
            x, int(np.max(model.n_iter_)), "MAX_STEPS" if failed else "SUCCESS"
        )
        return judged(fit, out)

    return prepare, run


def _torch_lbfgs(fit: Fit) -> RunOutput:
    p = fit.problem
    # torch stops at max |g_i| <= tolerance_grad: GTOL is the tightest setting
    # not tighter than ours (module docstring).
    w, iterations, evaluations = torch_lbfgs(
        p.value_and_grad, p.x0(), gtol=GTOL, max_iter=5000
    )
    native = "SUCCESS" if float(p.grad(w).abs().max()) <= GTOL else "MAX_STEPS"
    return judged(fit, RunOutput(w, iterations, native, {"grads": evaluations}))


# -- claims --------------------------------------------------------------------

NEWTON_CASES = (
    "logistic-breast_cancer",
    "logistic-synthetic2000x100",
    "softmax-digits",
)
TIMING_CASES = (
    "logistic-breast_cancer",
    "softmax-digits",
    "logistic-synthetic20000x100",
)
OURS = (
    "itersolve-regnewton-exact",
    "itersolve-regnewton-gn",
    "itersolve-newton",
    "itersolve-newton-cg",
    "itersolve-regnewton-cg",
)
ANCHORS = (
    "scipy-trust-exact",
    "scipy-trust-krylov",
    "scipy-newton-cg",
    "scipy-lbfgsb",
    "sklearn-lbfgs",
    "sklearn-newton-cholesky",
    "torch-lbfgs",
)


def _present(results: Results, cases: tuple[str, ...]) -> list[str]:
    names = {r["dataset_name"] for r in results.rows}
    return [c for c in cases if c in names]


def _floor_note(results: Results, case: str, m: str) -> str:
    """``, floor r (>= N it per 8 decades)`` for a Gauss–Newton row."""
    floor = results.median(case, m, "gn_floor")
    if floor is None or not 0 < floor < 1:
        return ""
    return (
        f", GN floor {floor:.4g} (>= {math.log(1e-8) / math.log(floor):.0f} it/8 dec)"
    )


def _regnewton_iterations(results: Results) -> ClaimOutcome:
    worst, notes, ok = 0.0, [], True
    cases = _present(results, (*NEWTON_CASES, LSE_CASE))
    if not cases:
        return ClaimOutcome(None, None, "no rows")
    for case in cases:
        for m in ("itersolve-regnewton-exact", "itersolve-regnewton-gn"):
            steps = results.median(case, m, "num_steps")
            inner = results.median(case, m, "inner_per_step")
            if steps is None or inner is None:
                return ClaimOutcome(None, None, f"no rows for {m} on {case}")
            ok &= results.all_succeeded(case, m) and steps <= 60 and inner <= 2
            worst = max(worst, steps)
            notes.append(
                f"{case}/{m.split('-')[-1]}: {steps:.0f} it, {inner:.2f} trials"
                + _floor_note(results, case, m)
            )
    return ClaimOutcome(worst, ok, "; ".join(notes))


def _approx_vs_exact(results: Results) -> ClaimOutcome:
    ratios, notes = [], []
    for case in _present(results, (*NEWTON_CASES, LSE_CASE)):
        r = results.ratio(
            case, "itersolve-regnewton-gn", "itersolve-regnewton-exact", "num_steps"
        )
        if r is not None:
            ratios.append(r)
            notes.append(f"{case}: {r:.2f}")
    if not ratios:
        return ClaimOutcome(None, None, "no rows")
    return ClaimOutcome(max(ratios), max(ratios) <= 2.0, "; ".join(notes))


def _paper_figure(results: Results) -> ClaimOutcome:
    """Iterations to ``f - f* < 1e-8`` on the notebook's LogSumExp case over the
    counts read off its figure (exact 35, weighted Gauss–Newton 95)."""
    if not _present(results, (LSE_CASE,)):
        return ClaimOutcome(None, None, "no rows")
    worst, ok, notes = 0.0, True, []
    for hessian, paper in PAPER_LSE_ITERATIONS.items():
        m = "itersolve-regnewton-" + ("gn" if hessian == "gauss_newton" else hessian)
        steps = results.median(LSE_CASE, m, "num_steps")
        if steps is None:
            return ClaimOutcome(None, None, f"no rows for {m}")
        dev = abs(steps / paper - 1)
        worst = max(worst, dev)
        ok &= results.all_succeeded(LSE_CASE, m)
        notes.append(f"{hessian}: {steps:.0f} it (paper ~{paper})")
    return ClaimOutcome(worst, ok and worst <= 0.1, "; ".join(notes))


def _gd_iterations(results: Results) -> ClaimOutcome:
    ratios, notes = [], []
    for case in _present(results, NEWTON_CASES):
        gd = results.median(case, "itersolve-gd", "num_steps")
        rn = results.median(case, "itersolve-regnewton-exact", "num_steps")
        if gd is None or not rn:
            continue
        ratios.append(gd / rn)
        if not results.all_succeeded(case, "itersolve-gd"):
            notes.append(
                f"{case}: GD stopped at its cap {gd:.0f} (ratio is a lower bound)"
            )
    if not ratios:
        return ClaimOutcome(None, None, "no rows")
    return ClaimOutcome(min(ratios), min(ratios) >= 10, "; ".join(notes))


def _best(
    results: Results, case: str, names: tuple[str, ...], native: bool = False
) -> tuple[str, float] | None:
    """The fastest (median time) of ``names`` whose every run met our rule, or,
    with ``native``, stopped as converged by its own rule (a rule not tighter
    than ours: the time is then a lower bound on its time to our rule)."""
    key = "native_status" if native else "status"
    best = None
    for m in names:
        t = results.median(case, m)
        rows = results.select(case, m)
        ok = bool(rows) and all(r.get(key, r["status"]) == "SUCCESS" for r in rows)
        if t is not None and ok and (best is None or t < best[1]):
            best = (m, t)
    return best


def _missed_rule(results: Results, case: str, names: tuple[str, ...]) -> list[str]:
    """``name (status, ||g||_2 = ...)`` for each method run that missed the rule."""
    out = []
    for m in names:
        rows = results.select(case, m)
        if rows and not results.all_succeeded(case, m):
            worst = max(
                (r for r in rows), key=lambda r: float(r.get("grad_norm") or math.inf)
            )
            g = worst.get("grad_norm")
            shown = f"{float(g):.2g}" if g is not None else "n/a"
            out.append(f"{m} ({worst['status']}, ||g||_2 = {shown})")
    return out


def _same_objective(results: Results) -> ClaimOutcome:
    worst, notes, missed = 0.0, [], []
    cases = _present(results, TIMING_CASES)
    if not cases:
        return ClaimOutcome(None, None, "no rows")
    for case in cases:
        ours = _best(results, case, OURS)
        if ours is None:
            return ClaimOutcome(None, False, f"{case}: none of ours met the rule")
        mine = results.median(case, ours[0], "objective_value")
        compared = 0
        for anchor in ANCHORS:
            theirs = results.median(case, anchor, "objective_value")
            if mine is None or theirs is None:
                continue
            if not results.all_succeeded(case, anchor):
                continue  # it has no answer at our rule; listed below
            compared += 1
            gap = abs(mine - theirs)
            if gap > worst:
                worst = gap
                notes = [f"largest gap: {case} {ours[0]} vs {anchor}"]
        if not compared:
            return ClaimOutcome(None, False, f"{case}: no anchor met the rule")
        missed += [f"{case}: {m}" for m in _missed_rule(results, case, ANCHORS)]
    if missed:
        notes.append("missed the rule, not compared: " + "; ".join(missed))
    return ClaimOutcome(worst, worst <= 1e-10, "; ".join(notes))


def _time_ratio(results: Results) -> ClaimOutcome:
    """Our fastest method that met the rule over the fastest anchor that either
    met it or stopped as converged by its own rule (sklearn and torch stop at
    ``max |g_i| <= 1e-8``, short of ``||g||_2 <= 1e-8`` at times: their time is
    a lower bound on their time to our rule, so counting it can only make this
    claim harder). Anchors that stopped for other reasons are named."""
    worst, notes, missed = 0.0, [], []
    cases = _present(results, TIMING_CASES)
    if not cases:
        return ClaimOutcome(None, None, "no rows")
    for case in cases:
        ours = _best(results, case, OURS)
        anchor = _best(results, case, ANCHORS, native=True)
        if ours is None or anchor is None:
            return ClaimOutcome(None, False, f"{case}: a side has no converged run")
        ratio = ours[1] / anchor[1]
        bound = "" if results.all_succeeded(case, anchor[0]) else " (lower bound)"
        notes.append(f"{case}: {ours[0]} / {anchor[0]}{bound} = {ratio:.2f}")
        worst = max(worst, ratio)
        missed += [f"{case}: {m}" for m in _missed_rule(results, case, ANCHORS)]
    if missed:
        notes.append("anchors that missed our rule: " + "; ".join(missed))
    return ClaimOutcome(worst, worst <= 1.0, "; ".join(notes))


def _method(name: str, factory: Any, anchor: str | None = None) -> Method:
    return Method(name, _ours(factory), trace=_ours_trace(factory), anchor=anchor)


#: The methods of the reference notebook's LogSumExp figure; the others (and
#: every anchor: scikit-learn has no LogSumExp) run on the regression cases only.
PAPER_METHODS = ("itersolve-regnewton-exact", "itersolve-regnewton-gn")


def _not_paper_case(case: Case) -> bool:
    return case.name != LSE_CASE


def _on_cases(methods: list[Method]) -> list[Method]:
    return [
        m if m.name in PAPER_METHODS else replace(m, applies=_not_paper_case)
        for m in methods
    ]


_SK_LBFGS = _sklearn("lbfgs")
_SK_NEWTON = _sklearn("newton-cholesky")

SUITES = [
    Suite(
        name="optimize-newton",
        description=(
            "L2-regularised logistic (breast_cancer, synthetic ill-conditioned) and "
            "softmax (digits) regression, l2 = 1e-3, x0 = 0, every method judged on "
            "||grad||_2 <= 1e-8 recomputed in float64 (anchors: trust-* native, "
            "L-BFGS-B / Newton-CG by callback, sklearn and torch at tol = 1e-8 on "
            "the inf-norm): "
            "RegularizedNewton (Semenov-Jaggi-Doikov Alg. 1; exact, Gauss-Newton and "
            "Hessian-free CG), damped Newton (Cholesky and Hessian-free CG), cubic "
            "Newton (context), "
            "gradient descent vs scipy (trust-exact, trust-krylov, Newton-CG, "
            "L-BFGS-B), scikit-learn LogisticRegression "
            "(lbfgs, newton-cholesky) with C = 1/(n l2), and torch.optim.LBFGS."
        ),
        objective_name="relative suboptimality (f - f*) / |f*|",
        cases=cases,
        evaluate=evaluate,
        methods=_on_cases(
            [
                _method(
                    "itersolve-regnewton-exact",
                    _regnewton("exact"),
                    "scipy-trust-exact",
                ),
                _method(
                    "itersolve-regnewton-gn",
                    _regnewton("gauss_newton"),
                    "scipy-trust-exact",
                ),
                _method(
                    "itersolve-regnewton-cg",
                    _regnewton("exact", CG(rtol=1e-6)),
                    "scipy-trust-krylov",
                ),
                _method(
                    "itersolve-newton",
                    partial(Newton, rtol=0.0, atol=GTOL),
                    "sklearn-newton-cholesky",
                ),
                _method(
                    "itersolve-newton-cg",
                    # rtol=0.5: scipy Newton-CG's forcing term min(0.5, sqrt||g||).
                    partial(Newton, rtol=0.0, atol=GTOL, linear_solver=CG(rtol=0.5)),
                    "scipy-newton-cg",
                ),
                # Context (the spec's cubic_newton baseline): no claim reads it.
                Method(
                    "itersolve-cubic-newton",
                    _ours(partial(CubicRegularizedNewton, rtol=0.0, atol=GTOL)),
                    anchor="scipy-trust-exact",
                ),
                Method(
                    "itersolve-gd",
                    _ours(partial(GradientDescent, rtol=0.0, atol=GTOL), gd=True),
                ),
                Method("scipy-trust-exact", _scipy("trust-exact")),
                Method("scipy-trust-krylov", _scipy("trust-krylov")),
                Method("scipy-newton-cg", _scipy("Newton-CG")),
                Method("scipy-lbfgsb", _scipy("L-BFGS-B")),
                Method(
                    "sklearn-lbfgs",
                    _SK_LBFGS[1],
                    prepare=_SK_LBFGS[0],
                    requires=("sklearn",),
                ),
                Method(
                    "sklearn-newton-cholesky",
                    _SK_NEWTON[1],
                    prepare=_SK_NEWTON[0],
                    requires=("sklearn",),
                ),
                Method("torch-lbfgs", _torch_lbfgs),
            ]
        ),
        claims=[
            Claim(
                "RegularizedNewton exact & Gauss-Newton: ||grad|| <= 1e-8 from x0 = 0 "
                "(logistic, softmax; the paper's LogSumExp to f - f* < 1e-8): max "
                "outer iterations, with <= 2 trials/step",
                "<= 60",
                _regnewton_iterations,
            ),
            Claim(
                "Gauss-Newton / exact RegularizedNewton iterations (max over cases)",
                "<= 2.0",
                _approx_vs_exact,
            ),
            Claim(
                "reference notebook's LogSumExp figure (A 1000x1000, mu = 1, "
                "B = A A^T, x0 = 1, f - f* < 1e-8): |iterations / figure's - 1| "
                "for exact (35) and weighted Gauss-Newton (95)",
                "<= 0.1",
                _paper_figure,
            ),
            Claim(
                "gradient descent / RegularizedNewton iterations (min over cases)",
                ">= 10",
                _gd_iterations,
            ),
            Claim(
                "same final objective as every anchor that met ||grad||_2 <= 1e-8 "
                "(max |relative gap|, our fastest method)",
                "<= 1e-10",
                _same_objective,
            ),
            Claim(
                "wall time to ||grad||_2 <= 1e-8, our fastest method / fastest of "
                "all 7 anchors that converged (sklearn / torch on their inf-norm "
                "rule: a lower bound) (max over digits, breast_cancer, synthetic "
                "20000x100)",
                "<= 1.0",
                _time_ratio,
            ),
        ],
        repeats={"smoke": 1, "quick": 3, "full": 5},
        estimate_seconds={"smoke": 20, "quick": 60, "full": 400},
    )
]
