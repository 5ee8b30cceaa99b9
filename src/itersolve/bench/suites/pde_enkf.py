"""pde-enkf: the EnKF analysis step vs the exact Kalman update, and iPINNER on Burgers.

**iPINNER is a reconstruction** (Lu, Mou & Lin, "iPINNER: an iterative
physics-informed neural network with ensemble Kalman filter", arXiv
2506.00731): no official code exists; the algorithm follows the abstract and
secondary summaries as written down in the project's spec 17.

Case ``kalman-linear-gaussian``: a fixed linear-Gaussian problem (``d = 4``
parameters, ``k = 3`` observations, prior ``N(m0, P0)``, noise 0.7). Each
method ``enkf-E<n>`` runs :func:`itersolve.pde.enkf_update` with ``n``
members on every seed; :func:`evaluate` recomputes the mean (over seeds) of
``||mean_a - mean_Kalman|| / sqrt(trace P_Kalman)`` against the exact
Kalman posterior in float64. The analysis mean is an average of ``E`` iid
terms plus an ``O(1 / E)`` bias, so the error decays like ``E^-1/2``.

Case ``burgers-noise10``: viscous Burgers (``nu = 0.01 / pi``, ``u0 = -sin
pi x``, Cole--Hopf reference), 100 sensors with 10% Gaussian noise (standard
deviation 0.1 x the std of the exact values), 3 seeds; a seed fixes the
sensors, the noise, the collocation grid and the network initialisation.
Methods (one ``tanh`` PINN architecture for all, 3 hidden layers of 20 as
in the spec):

* ``adam-pinn`` -- one PINN trained by Adam (:func:`train_pinn`) for
  ``E x adam_steps x iterations`` steps: the same total number of gradient
  steps as the ensemble (the spec's matched budget);
* ``ipinner`` -- :class:`EnsembleKalmanPINN` with ``update="outputs"``: the
  spec's pipeline (Adam phase on every member, EnKF analysis of the
  members' predictions at the sensors, the analysis mean replaces the data
  in the next phase), 5% inflation; the predictor is the ensemble mean
  field;
* ``enkf-pinn-parameters`` -- the same ensemble with the Kalman update on the
  parameters, the PDE, initial and boundary residuals as zero-target
  pseudo-observations (ES-MDA noise scaling);
* ``adam-pinn-member-steps`` -- context, no claim: one PINN with the steps of
  one member (``adam_steps x iterations``), what each member trains.

The NSGA-III architecture search of the pipeline is not run here (fixed
architecture; ``examples/ipinner_burgers.py`` runs it). The objective is the
mean over seeds of the relative L2 error of the returned field(s) on the
evaluation grid, recomputed by :func:`evaluate` against the Cole--Hopf
reference. Adam's learning rate 3e-3 was chosen on seed 100 (1200 steps:
relative L2 0.39 at 3e-3, 0.40 at 1e-2), which no claim uses.

Sizes. ``quick``: ``E = 8`` members, 3 outer iterations of 60 Adam steps
(1440 member steps, so ``adam-pinn`` trains 1440 steps), a 40 x 10
collocation grid, a 128 x 50 evaluation grid, float32 -- the spec's
CPU-small run (``E = 20``, 200 steps, 2000 points) is ``full``: quick
shrinks it to fit 3 seeds x 3 methods in the 5-minute budget on 2 cores.
EnKF vs Kalman: ``E`` in 50, 200, 800, 3200 on 10 seeds (``smoke``: 20 and
80 on 3 seeds; ``full``: up to 12800 on 20 seeds).

Claims (thresholds fixed before the first run; none is a timing claim):

* slope of log(mean error) vs log(E) of the EnKF mean against the exact
  Kalman mean in [-0.6, -0.4] (the Monte Carlo rate -1/2);
* iPINNER's mean relative L2 <= 0.8 x the Adam-PINN's (spec 17's
  reproduction criterion at 10% noise, over 3 seeds);
* the parameter-space variant, the same bound (issue 19's EnKF training).

Measured at quick (283 s on 2 busy cores, float32): slope -0.507 (PASS);
mean relative L2 over seeds 0-2: adam-pinn 0.237 (0.120, 0.134, 0.457),
ipinner 0.534 (ratio 2.25, FAIL), enkf-pinn-parameters 0.558 (2.35, FAIL);
context: one PINN with one member's 180 steps 0.452. At this budget each
member trains 180 steps against the baseline's 1440, and the ensemble (5%
perturbations of one initialisation) is narrow: its spread at the sensors is
far below the noise, so the Kalman gain trusts the forecast and the refined
data stay close to the members' own predictions.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import torch

from itersolve import ConvergenceWarning
from itersolve.bench.results import Results
from itersolve.bench.suite import (
    Case,
    Claim,
    ClaimOutcome,
    Memo,
    Method,
    RunOutput,
    Suite,
    memoised,
)
from itersolve.pde import (
    PINN,
    AdamThenLBFGS,
    BurgersProblem,
    EnsembleKalmanPINN,
    enkf_update,
    ensemble_mean_field,
    train_enkf_pinn,
    train_pinn,
)

KALMAN = "kalman-linear-gaussian"
BURGERS = "burgers-noise10"

ENSEMBLE_SIZES = {
    "smoke": ([20, 80], 3),
    "quick": ([50, 200, 800, 3200], 10),
    "full": ([50, 200, 800, 3200, 12800], 20),
}

# members, iterations, adam steps per member, n_x, n_t, eval_x, eval_t,
# width, depth, sensors
BURGERS_SIZES = {
    "smoke": (3, 2, 3, 12, 4, 32, 8, 6, 2, 20),
    "quick": (8, 3, 60, 40, 10, 128, 50, 20, 3, 100),
    "full": (20, 3, 200, 100, 20, 256, 100, 20, 3, 100),
}
SEEDS = (0, 1, 2)
NOISE = 0.1
LR = 3e-3
INFLATION = 1.05


# -- EnKF vs exact Kalman ------------------------------------------------------


@dataclass
class LinearGaussian:
    """Prior ``N(m0, P0)``, operator ``H``, noise std, data ``y`` and the exact
    Kalman posterior mean and covariance."""

    m0: torch.Tensor
    p0: torch.Tensor
    h: torch.Tensor
    std: torch.Tensor
    y: torch.Tensor
    mean: torch.Tensor
    cov: torch.Tensor
    seeds: int


def _linear_gaussian(seeds: int, d: int = 4, k: int = 3) -> LinearGaussian:
    g = torch.Generator().manual_seed(1234)
    dt = torch.float64
    m0 = torch.randn(d, generator=g, dtype=dt)
    low = torch.randn(d, d, generator=g, dtype=dt) / math.sqrt(d)
    p0 = low @ low.mT + 0.5 * torch.eye(d, dtype=dt)
    h = torch.randn(k, d, generator=g, dtype=dt)
    std = torch.full((k,), 0.7, dtype=dt)
    y = h @ m0 + torch.randn(k, generator=g, dtype=dt) * 2.0
    s = h @ p0 @ h.mT + torch.diag(std**2)
    gain = torch.linalg.solve(s, h @ p0).mT
    mean = m0 + gain @ (y - h @ m0)
    cov = p0 - gain @ h @ p0
    return LinearGaussian(m0, p0, h, std, y, mean, cov, seeds)


def _enkf(members: int):
    def run(lg: LinearGaussian) -> RunOutput:
        means = []
        chol = torch.linalg.cholesky(lg.p0)
        for s in range(lg.seeds):
            g = torch.Generator().manual_seed(100 * s)
            z = torch.randn(members, lg.m0.shape[0], generator=g, dtype=torch.float64)
            prior = lg.m0 + z @ chol.mT
            res = enkf_update(
                prior, lg.y, lambda x: x @ lg.h.mT, lg.std, seed=100 * s + 7
            )
            means.append(res.mean)
        return RunOutput(
            torch.stack(means).numpy(), 1, "SUCCESS", extras={"E": members}
        )

    return run


# -- Burgers -------------------------------------------------------------------


@dataclass
class BurgersCase:
    problems: list[BurgersProblem]
    members: int
    iterations: int
    adam_steps: int
    width: int
    depth: int
    dtype: torch.dtype = torch.float32
    seeds: tuple[int, ...] = SEEDS


def _burgers(scale: str) -> BurgersCase:
    e, k, a, nx, nt, ex, et, width, depth, sensors = BURGERS_SIZES[scale]
    base = BurgersProblem(n_x=nx, n_t=nt, eval_x=ex, eval_t=et)
    problems = [base.with_noisy_data(sensors, noise=NOISE, seed=s) for s in SEEDS]
    return BurgersCase(problems, e, k, a, width, depth)


def _model(case: BurgersCase, seed: int) -> PINN:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return PINN(width=case.width, depth=case.depth).to(case.dtype)


def _adam(case: BurgersCase, per_member: bool = False) -> RunOutput:
    steps = case.iterations * case.adam_steps
    if not per_member:
        steps *= case.members
    fields, errors = [], []
    for seed, problem in zip(case.seeds, case.problems, strict=True):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            sol = train_pinn(
                _model(case, seed),
                problem,
                AdamThenLBFGS(adam_steps=steps, lr=LR),
                seed=seed,
            )
        model = sol.extras.get("model")
        if model is None:
            return RunOutput(None, 0, sol.status.name)
        x, t = problem.eval_grid(case.dtype)
        fields.append(model.predict(problem, x, t).double().numpy())
        errors.append(float(sol.extras["relative_l2"]))
    return _field_output(fields, errors, steps, "SUCCESS")


def _ensemble(update: str):
    def run(case: BurgersCase) -> RunOutput:
        method = EnsembleKalmanPINN(
            ensemble_size=case.members,
            iterations=case.iterations,
            adam_steps=case.adam_steps,
            lr=LR,
            inflation=INFLATION,
            update=update,
        )
        fields, errors, statuses = [], [], []
        for seed, problem in zip(case.seeds, case.problems, strict=True):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                sol = train_enkf_pinn(_model(case, seed), problem, method, seed=seed)
            statuses.append(sol.status.name)
            models = sol.extras.get("models")
            if models is None:
                return RunOutput(None, 0, sol.status.name)
            x, t = problem.eval_grid(case.dtype)
            mean = ensemble_mean_field(models, problem, x, t)
            fields.append(mean.double().numpy())
            errors.append(float(sol.extras["relative_l2"]))
        status = next((s for s in statuses if s != "SUCCESS"), "SUCCESS")
        steps = case.members * case.iterations * case.adam_steps
        return _field_output(fields, errors, steps, status)

    return run


def _field_output(
    fields: list[np.ndarray], errors: list[float], steps: int, status: str
) -> RunOutput:
    extras: dict[str, Any] = {f"relative_l2_seed{i}": e for i, e in enumerate(errors)}
    return RunOutput(np.stack(fields), steps, status, {"gradient_steps": steps}, extras)


# -- suite plumbing ----------------------------------------------------------------


def cases(scale: str) -> list[Case]:
    sizes, seeds = ENSEMBLE_SIZES[scale]
    return [
        Case(KALMAN, partial(_linear_gaussian, seeds), {"sizes": sizes}),
        Case(BURGERS, partial(_burgers, scale), {"scale": scale}),
    ]


def evaluate(instance: Any, x: Any) -> float:
    """Kalman case: mean over seeds of the normalised error of the analysis
    mean; Burgers: mean over seeds of the relative L2 error of the fields."""
    if x is None:
        return math.nan
    arr = torch.as_tensor(np.asarray(x), dtype=torch.float64)
    if isinstance(instance, LinearGaussian):
        scale = math.sqrt(float(instance.cov.trace()))
        errs = torch.linalg.vector_norm(arr - instance.mean, dim=1) / scale
        return float(errs.mean())
    if isinstance(instance, Memo):
        instance = instance.case
    return float(
        np.mean([p.relative_l2(f) for p, f in zip(instance.problems, arr, strict=True)])
    )


def _prepare(case: Any) -> Memo:
    return Memo(case)


def _sized(n: int):
    def applies(case: Case) -> bool:
        return case.name == KALMAN and n in case.params["sizes"]

    return applies


def _kalman_methods() -> list[Method]:
    sizes = sorted({n for s, _ in ENSEMBLE_SIZES.values() for n in s})
    return [Method(f"enkf-E{n}", _enkf(n), applies=_sized(n)) for n in sizes]


def _is_burgers(case: Case) -> bool:
    return case.name == BURGERS


METHODS = [
    *_kalman_methods(),
    Method("adam-pinn", memoised(_adam, "adam"), prepare=_prepare, applies=_is_burgers),
    Method(
        "adam-pinn-member-steps",
        memoised(partial(_adam, per_member=True), "adam-member"),
        prepare=_prepare,
        applies=_is_burgers,
    ),
    Method(
        "ipinner",
        memoised(_ensemble("outputs"), "outputs"),
        prepare=_prepare,
        applies=_is_burgers,
        anchor="adam-pinn",
    ),
    Method(
        "enkf-pinn-parameters",
        memoised(_ensemble("parameters"), "parameters"),
        prepare=_prepare,
        applies=_is_burgers,
        anchor="adam-pinn",
    ),
]


def _slope(results: Results) -> ClaimOutcome:
    points = []
    for method in METHODS:
        if not method.name.startswith("enkf-E"):
            continue
        rows = results.select(KALMAN, method.name)
        if rows:
            points.append((float(rows[0]["E"]), float(rows[0]["objective_value"])))
    if len(points) < 2:
        return ClaimOutcome(None, None, "fewer than two ensemble sizes")
    sizes, errors = np.array(sorted(points)).T
    if not np.all(np.isfinite(errors)) or np.any(errors <= 0):
        return ClaimOutcome(math.nan, False, f"errors {errors.tolist()}")
    slope = float(np.polyfit(np.log(sizes), np.log(errors), 1)[0])
    detail = ", ".join(
        f"E={int(n)}: {e:.3g}" for n, e in zip(sizes, errors, strict=True)
    )
    return ClaimOutcome(slope, bool(-0.6 <= slope <= -0.4), detail)


def _ratio(method: str):
    def check(results: Results) -> ClaimOutcome:
        ours = results.select(BURGERS, method)
        base = results.select(BURGERS, "adam-pinn")
        if not ours or not base:
            return ClaimOutcome(None, None, f"no rows for {method} / adam-pinn")
        a = float(ours[0]["objective_value"])
        b = float(base[0]["objective_value"])
        failed = [r["status"] for r in ours + base if r["status"] != "SUCCESS"]
        ratio = a / b if b > 0 else math.nan
        ok = math.isfinite(ratio) and not failed and ratio <= 0.8
        detail = f"{method} {a:.3g} vs adam-pinn {b:.3g} (mean rel-L2 over 3 seeds"
        seeds = [
            f"{ours[0].get(f'relative_l2_seed{i}', math.nan):.3g}/"
            f"{base[0].get(f'relative_l2_seed{i}', math.nan):.3g}"
            for i in range(len(SEEDS))
        ]
        detail += f"; per seed {', '.join(seeds)}); reconstruction from the abstract"
        if failed:
            detail += f"; status {failed[0]}"
        return ClaimOutcome(ratio, bool(ok), detail)

    return check


CLAIMS = [
    Claim(
        "EnKF analysis mean vs exact Kalman mean: slope of log error vs log E",
        "in [-0.6, -0.4]",
        _slope,
    ),
    Claim(
        "iPINNER (outputs EnKF, refined data) rel-L2 / Adam-PINN rel-L2, Burgers "
        "10% noise, 3 seeds, same gradient steps (reconstruction)",
        "<= 0.8",
        _ratio("ipinner"),
    ),
    Claim(
        "parameter-space EnKF PINN rel-L2 / Adam-PINN rel-L2, Burgers 10% noise, "
        "3 seeds, same gradient steps (reconstruction)",
        "<= 0.8",
        _ratio("enkf-pinn-parameters"),
    ),
]

SUITES = [
    Suite(
        name="pde-enkf",
        description=(
            "EnKF analysis step vs the exact Kalman update (E^-1/2 rate), and "
            "iPINNER (reconstructed from the abstract: ensemble of PINNs, EnKF "
            "refinement of noisy data) vs an Adam-trained PINN on viscous "
            "Burgers with 10% noisy data, 3 seeds, equal gradient-step budget."
        ),
        objective_name=(
            "EnKF: normalised mean error vs Kalman; Burgers: relative L2 vs Cole-Hopf"
        ),
        cases=cases,
        methods=METHODS,
        evaluate=evaluate,
        claims=CLAIMS,
        repeats={"smoke": 1, "quick": 1, "full": 1},
        estimate_seconds={"smoke": 10, "quick": 40, "full": 1800},
    )
]
