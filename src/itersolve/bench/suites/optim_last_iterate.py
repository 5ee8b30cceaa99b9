"""optim-last-iterate: rates of the last iterate of proximal SGD (Liu & Zhou 2023)
on a Lasso with Gaussian and heavy-tailed (Student-t) gradient noise.

Each row runs the 20 seeds together; its objective is the mean gap over all 20.
A seed whose final gap is not finite has diverged: the row counts them
(``diverged_seeds``), is marked ``DIVERGED`` and its mean is non-finite, and
every claim reading that row FAILs and says how many seeds diverged. A horizon
whose row is missing or crashed, or whose mean gap is not positive (below the
accuracy of F*), also FAILs the claim instead of being left out of the fit.

Heavy-tailed case: what the theorem gives, and what the claim compares
----------------------------------------------------------------------
The paper (arXiv 2312.08531) is theory only; it has no experiment to copy, so
the reproduction is of its heavy-tailed in-expectation result as spec 19
states it (the theorem's text and constants could not be checked here):

* Assumptions: F = f + h on a closed convex X, f convex with
  ``||g(x) - g(y)|| <= L ||x - y|| + M``, h prox-friendly, unbiased oracle
  ``g + xi`` with ``E[||xi||^p | past] <= sigma^p`` for one p in (1, 2].
* Step rule: ``eta_t = min(1/(2L), eta T^(-1/p))`` (known horizon T).
* Bound: ``E[F(x_{T+1})] - F* = O(T^(1/p - 1))`` up to log T, an *upper*
  bound over the whole class (worst case), stated as ``O(.)`` in the spec.

Its T-dependence is that of the usual two terms of a mirror-descent bound with
a constant step ``eta_T``: a distance term ``D^2 / (eta_T T)`` and a noise term
``eta_T^(p-1) sigma^p D^(2-p)``. With ``eta_T = eta T^(-1/p)`` both are
``T^(1/p - 1)``: slope -0.2 for p = 1.25. Student-t(1.5) noise has a finite
p'-th moment for every p' < 1.5, so the bound holds for each such p'; with the
step fixed by p = 1.25 the noise term becomes ``T^(-(p'-1)/p)`` (down to
``T^(-0.4)`` as p' -> 1.5) while the distance term stays ``T^(-0.2)``: the
best bound this step rule admits is ``O(T^(-0.2))``, set by the distance term.

Two consequences for the claim:

1. *The domain must be compact.* On X = R^n with a quadratic f the expectation
   is infinite for every T when the noise has infinite variance:
   ``F(x) - F* >= (x - x*)^T H (x - x*) / 2`` (optimality of x*), and the
   last step adds ``-eta xi_T`` with independent Student-t(1.5) coordinates,
   so ``E[F(x_{T+1})] - F* = inf`` whenever ``H != 0``. A finite bound can
   only hold under a hypothesis that excludes this case, i.e. a bounded X (the
   ``D`` in the noise term). The earlier runs on R^n (slope -0.363) fitted the
   sample mean of 20 draws of an infinite-mean variable (one seed carried 4-7x
   the mean). This case therefore runs on the box X = [-R, R]^d with
   R = ``BOX_RADIUS``, which contains the unconstrained Lasso solution (so F*
   is unchanged), with the exact joint prox of ``h + indicator(X)``.
2. *The rate is an upper bound, so the claim is one-sided.* The spec gives it
   as ``O(T^(1/p-1))``; the matching lower bound is minimax (over the class,
   attained by problems chosen for each T), not a statement about this Lasso.
   On a fixed problem both terms can fall faster: the distance term is
   ``F`` along the deterministic prox-gradient path at time
   ``sum eta_t = eta T^(1 - 1/p) = T^0.2`` (exponential in curved
   directions), and the noise in a direction of curvature lambda settles at
   the Student-t stable scale ``eta^(2 - 2/nu) = T^(-0.533)``. In the quick
   range (T = 1e3..3e4) the noise dominates (noise-free path: gap 0.23 ->
   0.15; with noise 7 -> 3) and the 50 flat directions of A (n = 50 < d), where
   only the l1 pull acts, are not yet settled, so no single exponent is
   predicted for this problem there. A slope steeper than -0.2 is consistent
   with the theorem; the claim is ``slope <= 1/p - 1 + 0.05`` (the spec's
   tolerance), not a two-sided window around -0.2.
"""

from __future__ import annotations

import functools
import math
import statistics
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import torch

from itersolve.bench.results import Results
from itersolve.bench.suite import Case, Claim, ClaimOutcome, Method, RunOutput, Suite
from itersolve.bench.suites.optim_common import no_rows
from itersolve.optim import ProxSGD, schedules

SEEDS = 20
D = 100
L1 = 0.05
NU = 1.5  # Student-t degrees of freedom: finite p-th moment for p < 1.5
P_MOMENT = 1.25
# Radius of the heavy-tailed case's box X = [-R, R]^D; the unconstrained
# solution has max |x*_i| = 2.63, so x* is interior and F* is unchanged.
BOX_RADIUS = 4.0
CHUNK = 500
HORIZONS = {
    "smoke": [100, 300, 1000],
    "quick": [1000, 3000, 10000, 30000],
    "full": [1000, 3000, 10000, 30000, 100000],
}
HEAVY = "convex-student-t-box"
REGIMES = ("convex-gaussian", "strongly-convex-gaussian", HEAVY)


@dataclass(frozen=True)
class LassoProblem:
    """F(x) = (1/2n)||Ax - b||^2 + L1 ||x||_1 with oracle grad f(x) + noise."""

    a: torch.Tensor  # (n, D) float64
    b: torch.Tensor
    f_star: float
    smoothness: float
    mu: float
    regime: str
    horizon: int
    box: float | None = None  # X = [-box, box]^D, or R^D when None

    def objective(self, x: torch.Tensor) -> torch.Tensor:
        """F at each row of ``x`` (seeds, D), float64."""
        r = x.to(torch.float64) @ self.a.T - self.b
        return 0.5 * r.square().mean(dim=1) + L1 * x.to(torch.float64).abs().sum(dim=1)


@functools.lru_cache(maxsize=4)
def _instance(
    strongly_convex: bool,
) -> tuple[torch.Tensor, torch.Tensor, float, float, float]:
    from sklearn.linear_model import Lasso

    n = 200 if strongly_convex else 50
    rng = np.random.default_rng(2023 + n)
    a = rng.standard_normal((n, D))
    x_true = np.where(rng.random(D) < 0.1, rng.standard_normal(D), 0.0)
    b = a @ x_true + 0.1 * rng.standard_normal(n)
    ref = Lasso(alpha=L1, fit_intercept=False, tol=1e-14, max_iter=200000).fit(a, b)
    x_star = ref.coef_
    f_star = 0.5 * np.mean((a @ x_star - b) ** 2) + L1 * np.abs(x_star).sum()
    eig = np.linalg.eigvalsh(a.T @ a / n)
    return torch.from_numpy(a), torch.from_numpy(b), float(f_star), eig[-1], eig[0]


def _build(regime: str, horizon: int) -> LassoProblem:
    a, b, f_star, smooth, mu = _instance(regime.startswith("strongly"))
    box = BOX_RADIUS if regime == HEAVY else None
    return LassoProblem(a, b, f_star, smooth, max(mu, 0.0), regime, horizon, box)


def cases(scale: str) -> list[Case]:
    return [
        Case(f"{regime}/T{T}", partial(_build, regime, T), {"T": T, "regime": regime})
        for regime in REGIMES
        for T in HORIZONS[scale]
    ]


def evaluate(problem: LassoProblem, x: Any) -> float:
    """Mean over the 20 seeds of F(x_T) - F* (float64)."""
    gaps = problem.objective(torch.as_tensor(x)) - problem.f_star
    return float(gaps.mean())


def _rule(p: LassoProblem) -> schedules.Schedule:
    if p.regime == "strongly-convex-gaussian":
        return schedules.strongly_convex(p.smoothness, p.mu)
    if p.regime == HEAVY:
        return schedules.heavy_tailed(P_MOMENT, 1.0, p.horizon, L=p.smoothness)
    return schedules.convex_known_horizon(p.smoothness, 1.0, p.horizon)


def _noise(p: LassoProblem):
    """Identical noise realisations for every method (seeded, chunked)."""
    rng = np.random.default_rng(p.horizon)
    for start in range(0, p.horizon, CHUNK):
        size = (min(CHUNK, p.horizon - start), SEEDS, D)
        if p.regime == HEAVY:
            block = rng.standard_t(NU, size=size)
        else:
            block = rng.standard_normal(size)
        yield from torch.from_numpy(block)


def _solve(p: LassoProblem, *, prox: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
    x = torch.nn.Parameter(torch.zeros(SEEDS, D, dtype=torch.float64))
    opt: torch.optim.Optimizer
    if prox:
        domain: dict[str, Any] = {}
        if p.box is not None:
            domain = {"domain": "box", "lower": -p.box, "upper": p.box}
        opt = ProxSGD([x], lr=1.0, l1=L1, average=True, **domain)
    else:
        opt = torch.optim.SGD([x], lr=1.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _rule(p))
    ata = p.a.T @ p.a / len(p.b)
    atb = p.a.T @ p.b / len(p.b)
    with torch.no_grad():
        for xi in _noise(p):
            g = x @ ata - atb + xi
            if not prox:  # subgradient of the l1 term, as a torch.optim user would
                g += L1 * torch.sign(x)
            x.grad = g
            opt.step()
            sched.step()
    average = opt.state[x]["average"] if prox else None
    return x.detach().clone(), average


def _output(p: LassoProblem, last: torch.Tensor, extras: dict[str, Any]) -> RunOutput:
    gaps = (p.objective(last) - p.f_star).numpy()
    n_diverged = int(np.sum(~np.isfinite(gaps)))
    extras = {**extras, "median_gap": float(np.median(gaps))}
    extras["diverged_seeds"] = n_diverged
    status = "DIVERGED" if n_diverged else "SUCCESS"
    return RunOutput(last, p.horizon, status, {"grads": p.horizon * SEEDS}, extras)


def _ours(p: LassoProblem) -> RunOutput:
    last, average = _solve(p, prox=True)
    assert average is not None
    avg_gap = float((p.objective(average) - p.f_star).mean())
    return _output(p, last, {"average_iterate_gap": avg_gap})


def _anchor(p: LassoProblem) -> RunOutput:
    last, _ = _solve(p, prox=False)
    return _output(p, last, {})


OURS = "itersolve-prox-sgd"
METHODS = [
    Method(OURS, _ours),
    Method(
        "torch-sgd-subgradient",
        _anchor,
        applies=lambda c: c.params["regime"] == "convex-gaussian",
    ),
]


# -- claims ---------------------------------------------------------------------


def _failure(row: dict[str, Any], column: str) -> str | None:
    """Why a row cannot enter a fit (``None`` if it can)."""
    T = int(row["params"]["T"])
    if row.get("status") == "ERROR":
        return f"T={T}: error {row.get('note', '')}"
    value = row.get(column)
    n = row.get("diverged_seeds") or 0
    if n or row.get("finite") is False or value is None:
        return f"T={T}: {n}/{SEEDS} seeds diverged ({column} = {value})"
    if not math.isfinite(float(value)):
        return f"T={T}: {column} = {value}"
    if float(value) <= 0:
        return f"T={T}: {column} = {float(value):.3g} <= 0 (below F*'s accuracy)"
    return None


def _series(
    results: Results, regime: str, column: str
) -> tuple[list[float], list[float], list[str]]:
    """Horizons, values and failures of our rows of ``regime`` (by T).

    Every case of the regime is looked up through ``Results`` (so an ERROR row
    FAILs the claim in the report too); a failed row is listed, not dropped.
    """
    pts, failures = [], []
    cases = sorted(
        {r["dataset_name"] for r in results.rows if r["params"].get("regime") == regime}
    )
    for case in cases:
        for r in results.select(case, OURS):
            why = _failure(r, column)
            if why is None:
                pts.append((float(r["params"]["T"]), float(r[column])))
            else:
                failures.append(why)
    pts.sort()
    return [t for t, _ in pts], [v for _, v in pts], failures


def _slope(regime: str, low: float, high: float, theory: str):
    def check(results: Results) -> ClaimOutcome:
        ts, gaps, failed = _series(results, regime, "objective_value")
        if failed:
            return ClaimOutcome(None, False, "; ".join(failed))
        if len(ts) < 3:
            return no_rows(f"{regime} (need >= 3 horizons)")
        slope = float(np.polyfit(np.log(ts), np.log(gaps), 1)[0])
        _, medians, _ = _series(results, regime, "median_gap")
        med = (
            f", median-based slope {np.polyfit(np.log(ts), np.log(medians), 1)[0]:.3f}"
            if len(medians) == len(ts)
            else ""
        )
        detail = (
            f"mean gap over {SEEDS} seeds at T={[int(t) for t in ts]}: "
            + ", ".join(f"{g:.3g}" for g in gaps)
            + f"; theory {theory}{med}"
        )
        return ClaimOutcome(slope, low <= slope <= high, detail)

    return check


def _last_vs_average(results: Results) -> ClaimOutcome:
    ts, last, failed = _series(results, "convex-gaussian", "objective_value")
    _, avg, failed_avg = _series(results, "convex-gaussian", "average_iterate_gap")
    if failed or failed_avg:
        return ClaimOutcome(None, False, "; ".join(failed + failed_avg))
    if not ts or len(avg) != len(ts):
        return no_rows("convex-gaussian averages")
    ratios = [x / y for x, y in zip(last, avg, strict=True)]
    worst = max(r / math.log(t) for r, t in zip(ratios, ts, strict=True))
    detail = "last/average gap: " + ", ".join(
        f"T={int(t)} {r:.3g}" for t, r in zip(ts, ratios, strict=True)
    )
    return ClaimOutcome(worst, worst <= 1.0, detail + " (max of ratio / log T shown)")


def _prox_vs_subgradient(results: Results) -> ClaimOutcome:
    ratios, notes = [], []
    cases = sorted(
        {
            r["dataset_name"]
            for r in results.rows
            if r["dataset_name"].startswith("convex-gaussian")
        }
    )
    for case in cases:
        ours = results.select(case, OURS)
        theirs = results.select(case, "torch-sgd-subgradient")
        if not ours or not theirs:
            continue
        why = _failure(ours[0], "objective_value")
        if why is not None:
            return ClaimOutcome(None, False, f"ours: {why}")
        why_theirs = _failure(theirs[0], "objective_value")
        if why_theirs is not None:
            # The anchor's failure counts against it: any finite gap of ours beats it.
            notes.append(f"subgradient SGD failed at {why_theirs}")
            ratios.append(0.0)
            continue
        ratio = results.ratio(case, OURS, "torch-sgd-subgradient", "objective_value")
        if ratio is not None:
            ratios.append(ratio)
    if not ratios:
        return no_rows("convex-gaussian")
    median = statistics.median(ratios)
    detail = f"median over {len(ratios)} horizons, {SEEDS} seeds each"
    return ClaimOutcome(median, median <= 1.0, "; ".join([detail, *notes]))


SUITES = [
    Suite(
        name="optim-last-iterate",
        description=(
            f"Lasso F(x) = (1/2n)||Ax - b||^2 + {L1}||x||_1, d = {D} (n = 50: convex; "
            "n = 200: strongly convex, mu = lambda_min(A^T A / n)), stochastic "
            "gradients grad f(x) + noise (N(0, I), or Student-t with nu = 1.5: "
            "infinite variance, finite p-th moment for p < 1.5), x0 = 0, "
            f"{SEEDS} seeds, F* from scikit-learn Lasso (tol 1e-14). ProxSGD last "
            "iterate with the paper's rules: convex eta = min(1/2L, 1/sqrt(T)); "
            "strongly convex eta_t = min(1/2L, 1/(mu t)); heavy-tailed "
            "eta = min(1/2L, T^(-1/p)), p = 1.25, on the box X = "
            f"[-{BOX_RADIUS:g}, {BOX_RADIUS:g}]^d (the bound needs a compact "
            "domain: on R^d the expected gap is infinite). Anchor: "
            "torch.optim.SGD on the l1 subgradient, same noise. "
            "Objective: mean F(x_T) - F*."
        ),
        objective_name="E[F(x_T)] - F*",
        cases=cases,
        evaluate=evaluate,
        methods=METHODS,
        claims=[
            Claim(
                "convex, Gaussian noise: log-log slope of E[F(x_T)] - F* vs T",
                "in [-0.55, -0.45]",
                _slope("convex-gaussian", -0.55, -0.45, "-1/2 (up to log T)"),
            ),
            Claim(
                "strongly convex, eta_t = 1/(mu t): slope",
                "in [-1.15, -0.85]",
                _slope("strongly-convex-gaussian", -1.15, -0.85, "-1 (up to log T)"),
            ),
            Claim(
                "heavy-tailed (Student-t 1.5, p = 1.25, box X): slope at most "
                "the theorem's upper bound 1/p - 1 = -0.2 (+0.05)",
                "<= -0.15",
                _slope(
                    HEAVY,
                    -math.inf,
                    -0.15,
                    "O(T^(1/p - 1)) = T^-0.2 upper bound (worst case over the "
                    "class; see the module docstring)",
                ),
            ),
            Claim(
                "last iterate within a log factor of the averaged iterate",
                "last/avg <= log T",
                _last_vs_average,
            ),
            Claim(
                "exact prox vs torch.optim.SGD on the l1 subgradient (gap ratio)",
                "<= 1",
                _prox_vs_subgradient,
            ),
        ],
        repeats={"smoke": 1, "quick": 1, "full": 1},
        estimate_seconds={"smoke": 10, "quick": 50, "full": 500},
    )
]
