"""optimize-acceleration: gradient descent, heavy ball, Nesterov and triple momentum
with (L, mu) known: fitted contraction rates on an ill-conditioned quadratic, the
Lessard–Recht–Packard heavy-ball counterexample, and L2-logistic regression
side by side with torch.optim.SGD(nesterov=True), torch.optim.LBFGS and
scipy.optimize.minimize (CG, L-BFGS-B).

The rate of a run is fitted (least squares on ``log ||x_k - x*||``) over the last
500 iterations before ``||x_k - x*|| <= 1e-10 ||x*||`` (or before the end of the
run). Theoretical rates (spec 09): GD with step ``2/(L+mu)``
``(kappa-1)/(kappa+1)``; heavy ball ``(sqrt(kappa)-1)/(sqrt(kappa)+1)``;
Nesterov ``sqrt(1 - 1/sqrt(kappa))`` (the class bound); triple momentum
``1 - 1/sqrt(kappa)``. On a quadratic Nesterov's iteration matrix has the
double eigenvalue ``1 - 1/sqrt(kappa)`` at ``lambda = mu``, so it is also
compared with that exact quadratic rate.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import scipy.optimize as so
import torch

from itersolve._core.trace import IterInfo
from itersolve.bench.anchors import torch_lbfgs
from itersolve.bench.results import Results
from itersolve.bench.suite import Case, Claim, ClaimOutcome, Method, RunOutput, Suite
from itersolve.optimize import (
    GradientDescent,
    HeavyBall,
    Nesterov,
    SmoothProblem,
    TripleMomentum,
    minimize,
    torch_momentum_parameters,
)
from itersolve.problems import (
    breast_cancer_logistic,
    lessard_counterexample,
    quadratic_logspaced,
)

TARGET = 1e-10
QUADRATIC = "quadratic-d500-kappa1e4"
QUADRATIC_KAPPA = 1e4
FIT_WINDOW = 500
LESSARD_STEPS = 10_000
#: GD's slow modes are log-spaced near lambda = mu; its fitted rate settles to
#: within a few percent of (kappa-1)/(kappa+1) only after ~kappa*5 steps.
GD_STEPS_PER_KAPPA = 5


@dataclass(frozen=True)
class Bench:
    """A problem with its minimizer and optimal value (float64)."""

    kind: str
    problem: SmoothProblem
    x_star: torch.Tensor
    f_star: float
    L: float
    mu: float
    max_steps: int = 100_000


def _bench(
    kind: str, problem: SmoothProblem, x_star: torch.Tensor, max_steps: int = 100_000
) -> Bench:
    assert problem.L is not None and problem.mu is not None
    f_star = float(problem.value(x_star))
    return Bench(kind, problem, x_star, f_star, problem.L, problem.mu, max_steps)


def _quadratic(d: int, kappa: float) -> Bench:
    q = quadratic_logspaced(d, kappa, seed=0)
    return _bench("quadratic", q, q.x_star)


def _lessard(steps: int = LESSARD_STEPS) -> Bench:
    p = lessard_counterexample()
    assert p.x_star is not None
    return _bench("lessard", p, p.x_star, steps)


def _logistic() -> Bench:
    p = breast_cancer_logistic(l2=1e-2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from itersolve.optimize import Newton

        x_star = torch.as_tensor(minimize(p, p.x0(), Newton(rtol=0.0, atol=1e-13)).x)
    return _bench("logistic", p, x_star)


def cases(scale: str) -> list[Case]:
    if scale == "smoke":
        return [
            Case(
                "quadratic-d20-kappa1e2",
                partial(_quadratic, 20, 1e2),
                {"d": 20, "L": 1e2, "mu": 1.0},
            ),
            Case("lessard-300", partial(_lessard, 300)),
        ]
    return [
        Case(
            QUADRATIC,
            partial(_quadratic, 500, QUADRATIC_KAPPA),
            {"d": 500, "L": QUADRATIC_KAPPA, "mu": 1.0},
        ),
        Case("lessard", _lessard),
        Case("logistic-breast_cancer-l2=1e-2", _logistic),
    ]


def evaluate(bench: Bench, x: Any) -> float:
    """Relative distance ``||x - x*|| / max(||x*||, 1)`` (float64)."""
    x64 = torch.as_tensor(np.asarray(x, dtype=np.float64)).reshape(bench.x_star.shape)
    return float(
        torch.linalg.vector_norm(x64 - bench.x_star)
        / max(float(torch.linalg.vector_norm(bench.x_star)), 1.0)
    )


def theoretical_rates(L: float, mu: float) -> dict[str, float]:
    kappa = L / mu
    s = math.sqrt(kappa)
    return {
        "gd": (kappa - 1) / (kappa + 1),
        "heavy-ball": (s - 1) / (s + 1),
        "nesterov": math.sqrt(1 - 1 / s),
        "nesterov-quadratic": 1 - 1 / s,
        "triple-momentum": 1 - 1 / s,
    }


def fit_rate(errors: np.ndarray, window: int = FIT_WINDOW) -> float:
    """Geometric rate of the last ``window`` entries (least squares on logs)."""
    seg = np.log(errors[-window:])
    if len(seg) < 10 or not np.isfinite(seg).all():
        return math.nan
    return math.exp(np.polyfit(np.arange(len(seg)), seg, 1)[0])


class _Distances:
    """Callback recording ``||x_k - x*||``; stops once below ``TARGET ||x*||``."""

    def __init__(self, bench: Bench, stop: bool, start: int = 0) -> None:
        self.x_star = bench.x_star
        self.scale = max(float(torch.linalg.vector_norm(bench.x_star)), 1.0)
        self.stop, self.start = stop, start
        self.errors: list[float] = []

    def __call__(self, info: IterInfo) -> bool:
        if info.step < self.start:
            return False
        err = float(torch.linalg.vector_norm(info.x - self.x_star)) / self.scale
        self.errors.append(err)
        return self.stop and err <= TARGET


def _ours(name: str, factory: Callable[..., Any]):
    def run(bench: Bench) -> RunOutput:
        p = bench.problem
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if bench.kind == "quadratic" and name == "gd":
                return _gd_rate_run(bench, factory)
            if bench.kind == "quadratic":
                dist = _Distances(bench, stop=True)
                sol = minimize(p, p.x0(), factory(bench), callback=dist)
                errors = np.asarray(dist.errors)
                reached = bool(errors.size and errors[-1] <= TARGET)
                extras = {
                    "fitted_rate": fit_rate(errors),
                    "steps_to_target": len(errors) if reached else math.nan,
                }
                status = "SUCCESS" if reached else sol.status.name
                return RunOutput(sol.x, sol.num_steps, status, {}, extras)
            if bench.kind == "lessard":
                dist = _Distances(bench, stop=False)
                sol = minimize(p, p.x0(), factory(bench), callback=dist)
                tail = np.asarray(dist.errors[-100:])
                extras = {"tail_max_distance": float(tail.max()) if tail.size else 0.0}
                return RunOutput(sol.x, sol.num_steps, sol.status.name, {}, extras)
            sol = minimize(p, p.x0(), factory(bench))
            return RunOutput(
                sol.x, sol.num_steps, sol.status.name, {"grads": sol.stats["grads"]}
            )

    return run


def _gd_rate_run(bench: Bench, factory: Callable[..., Any]) -> RunOutput:
    """GD is memoryless: run to the fit window without a callback, then record."""
    p = bench.problem
    total = max(int(GD_STEPS_PER_KAPPA * bench.L / bench.mu), 2 * FIT_WINDOW)
    head = minimize(p, p.x0(), factory(bench, max_steps=total - FIT_WINDOW))
    dist = _Distances(bench, stop=False)
    tail = minimize(
        p, torch.as_tensor(head.x), factory(bench, max_steps=FIT_WINDOW), callback=dist
    )
    extras = {"fitted_rate": fit_rate(np.asarray(dist.errors))}
    return RunOutput(tail.x, head.num_steps + tail.num_steps, "MAX_STEPS", {}, extras)


def _tolerance(bench: Bench) -> dict[str, Any]:
    # Quadratic runs stop on distance (callback); this only bounds them.
    if bench.kind == "lessard":
        return {"rtol": 0.0, "atol": 1e-10, "max_steps": bench.max_steps}
    if bench.kind == "quadratic":
        return {"rtol": 0.0, "atol": 1e-14, "max_steps": 100_000}
    return {"rtol": 1e-8, "atol": 0.0, "max_steps": 100_000}


def _gd(bench: Bench, max_steps: int | None = None) -> GradientDescent:
    kw = _tolerance(bench)
    if max_steps is not None:
        kw["max_steps"] = max_steps
    return GradientDescent(L=bench.L, mu=bench.mu, **kw)


def _hb(bench: Bench) -> HeavyBall:
    return HeavyBall(L=bench.L, mu=bench.mu, **_tolerance(bench))


def _nesterov(bench: Bench) -> Nesterov:
    return Nesterov(L=bench.L, mu=bench.mu, **_tolerance(bench))


def _tmm(bench: Bench) -> TripleMomentum:
    return TripleMomentum(L=bench.L, mu=bench.mu, **_tolerance(bench))


# -- anchors -------------------------------------------------------------------


def _torch_sgd_nesterov(bench: Bench) -> RunOutput:
    """Full-batch torch.optim.SGD(nesterov=True) with the constant-momentum
    Nesterov parameters (lr = 1/L, momentum = beta)."""
    p = bench.problem
    s = math.sqrt(bench.L / bench.mu)
    params = torch_momentum_parameters(bench.L, (s - 1) / (s + 1))
    w = p.x0().requires_grad_(True)
    opt = torch.optim.SGD(
        [w],
        lr=params["lr"],
        momentum=params["momentum"],
        dampening=params["dampening"],
        nesterov=True,
    )
    tol = _tolerance(bench)
    g0 = float(torch.linalg.vector_norm(p.grad(w.detach())))
    limit = max(tol["rtol"] * g0, tol["atol"])
    steps, status = 0, "MAX_STEPS"
    while steps < int(tol["max_steps"]):
        g = p.grad(w.detach())
        if float(torch.linalg.vector_norm(g)) <= limit:
            status = "SUCCESS"
            break
        w.grad = g
        opt.step()
        steps += 1
        if bench.kind == "quadratic":
            err = float(torch.linalg.vector_norm(w.detach() - bench.x_star))
            if err <= TARGET * max(float(torch.linalg.vector_norm(bench.x_star)), 1):
                status = "SUCCESS"
                break
    return RunOutput(w.detach(), steps, status, {"grads": steps})


def _torch_lbfgs(bench: Bench) -> RunOutput:
    """Context only (no claim reads it): ``itersolve.bench.anchors.torch_lbfgs``."""
    p = bench.problem
    w, iterations, evaluations = torch_lbfgs(
        p.value_and_grad, p.x0(), gtol=1e-11, max_iter=20000
    )
    ok = float(p.grad(w).abs().max()) <= 1e-8
    return RunOutput(
        w, iterations, "SUCCESS" if ok else "MAX_STEPS", {"grads": float(evaluations)}
    )


def _scipy(method: str):
    def run(bench: Bench) -> RunOutput:
        p = bench.problem

        def fun(w: np.ndarray) -> tuple[float, np.ndarray]:
            f, g = p.value_and_grad(torch.from_numpy(w))
            return float(f), g.numpy()

        options = {"gtol": 1e-11, "maxiter": 100_000}
        if method == "L-BFGS-B":
            options["ftol"] = 0.0
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = so.minimize(
                fun, p.x0().numpy(), jac=True, method=method, options=options
            )
        return RunOutput(
            res.x,
            int(res.nit),
            "SUCCESS" if res.success else "MAX_STEPS",
            {"grads": float(res.njev or res.nfev)},
        )

    return run


# -- claims --------------------------------------------------------------------

_RATE_METHODS = {
    "itersolve-gd": "gd",
    "itersolve-heavy-ball": "heavy-ball",
    "itersolve-nesterov": "nesterov",
    "itersolve-triple-momentum": "triple-momentum",
}


def _rates_claim(which: dict[str, str]):
    def check(results: Results) -> ClaimOutcome:
        rows = results.select(QUADRATIC, "itersolve-gd")
        if not rows:
            return ClaimOutcome(None, None, f"no rows for {QUADRATIC}")
        # quadratic_logspaced: eigenvalues exactly in [1, kappa].
        theory = theoretical_rates(QUADRATIC_KAPPA, 1.0)
        worst, notes = 0.0, []
        for method, key in which.items():
            rho = results.median(QUADRATIC, method, "fitted_rate")
            if rho is None:
                return ClaimOutcome(None, None, f"no fitted rate for {method}")
            gap = abs((1 - rho) / (1 - theory[key]) - 1)
            notes.append(f"{key}: rho={rho:.6f} vs {theory[key]:.6f} ({gap:.1%})")
            worst = max(worst, gap)
        return ClaimOutcome(worst, worst <= 0.05, "; ".join(notes))

    return check


def _tmm_vs_nesterov(results: Results) -> ClaimOutcome:
    return _steps_ratio(results, "itersolve-triple-momentum", "itersolve-nesterov")


def _steps_ratio(results: Results, method: str, anchor: str) -> ClaimOutcome:
    a = results.median(QUADRATIC, method, "steps_to_target")
    b = results.median(QUADRATIC, anchor, "steps_to_target")
    if a is None or b is None:
        return ClaimOutcome(None, None, f"no rows for {QUADRATIC}")
    return ClaimOutcome(a / b, a / b <= 0.6, f"{a:.0f} vs {b:.0f} iterations")


def _lessard_claim(results: Results) -> ClaimOutcome:
    hb_rows = results.select("lessard", "itersolve-heavy-ball")
    if not hb_rows:
        return ClaimOutcome(None, None, "no rows for lessard")
    hb_tail = results.median("lessard", "itersolve-heavy-ball", "tail_max_distance")
    cycling = (
        hb_tail is not None
        and hb_tail > 1e-3
        and all(r["num_steps"] >= LESSARD_STEPS for r in hb_rows)
    )
    others = all(
        results.all_succeeded("lessard", m)
        for m in ("itersolve-nesterov", "itersolve-triple-momentum")
    )
    detail = (
        f"heavy ball: max |x_k - x*| over its last 100 of {LESSARD_STEPS} steps = "
        f"{hb_tail:.3g}; Nesterov and TMM converged: {others}"
    )
    return ClaimOutcome(hb_tail, cycling and others, detail)


SUITES = [
    Suite(
        name="optimize-acceleration",
        description=(
            "Accelerated first-order methods with known (L, mu) (spec 09): fitted "
            "contraction rates on a d=500, kappa=1e4 log-spaced quadratic "
            "(x0 = 0, to ||x - x*|| <= 1e-10 ||x*||), the Lessard-Recht-Packard "
            "counterexample (x0 = 3.3, 1e4 steps) and breast_cancer logistic "
            "regression (l2 = 1e-2, to ||grad|| <= 1e-8 ||grad_0||), vs "
            "torch.optim.SGD(nesterov=True), torch.optim.LBFGS and scipy CG / "
            "L-BFGS-B."
        ),
        objective_name="relative distance ||x - x*|| / max(||x*||, 1)",
        cases=cases,
        evaluate=evaluate,
        methods=[
            Method("itersolve-gd", _ours("gd", _gd)),
            Method("itersolve-heavy-ball", _ours("hb", _hb)),
            Method(
                "itersolve-nesterov",
                _ours("nesterov", _nesterov),
                anchor="torch-sgd-nesterov",
            ),
            Method(
                "itersolve-triple-momentum",
                _ours("tmm", _tmm),
                anchor="itersolve-nesterov",
            ),
            Method("torch-sgd-nesterov", _torch_sgd_nesterov),
            Method(
                "torch-lbfgs",
                _torch_lbfgs,
                applies=lambda c: not c.name.startswith("lessard"),
            ),
            Method("scipy-cg", _scipy("CG")),
            Method("scipy-lbfgsb", _scipy("L-BFGS-B")),
        ],
        claims=[
            Claim(
                "d=500 kappa=1e4 quadratic: fitted rates vs the spec's theoretical "
                "rates (GD, heavy ball, Nesterov sqrt(1-1/sqrt(kappa)), TMM), "
                "max relative gap in 1 - rho",
                "<= 0.05",
                _rates_claim(_RATE_METHODS),
            ),
            Claim(
                "same, Nesterov against its exact quadratic rate 1 - 1/sqrt(kappa)",
                "<= 0.05",
                _rates_claim({"itersolve-nesterov": "nesterov-quadratic"}),
            ),
            Claim(
                "TripleMomentum / Nesterov iterations to ||x - x*|| <= 1e-10 ||x*||",
                "<= 0.6",
                _tmm_vs_nesterov,
            ),
            Claim(
                "Lessard function: heavy ball still cycling after 1e4 steps (max "
                "distance over the last 100 steps) while Nesterov and TMM converge",
                "> 1e-3 and both converge",
                _lessard_claim,
            ),
        ],
        repeats={"smoke": 1, "quick": 1, "full": 3},
        estimate_seconds={"smoke": 10, "quick": 15, "full": 600},
    )
]
