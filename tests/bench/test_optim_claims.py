"""The optimize-newton and optim-* claims on hand-made rows: equal stopping rules,
every anchor in the "best anchor" pool, and diverged seeds counted as failures."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from itersolve.bench.results import Results
from itersolve.bench.suite import RunOutput
from itersolve.bench.suites import (
    optim_last_iterate,
    optim_mfac,
    optim_schedules,
    optim_training,
    optimize_newton,
)
from itersolve.bench.suites.optim_common import per_seed


def row(case: str, method: str, value: float | None, **extra: Any) -> dict[str, Any]:
    base = {
        "dataset_name": case,
        "solver_name": method,
        "status": "SUCCESS",
        "objective_value": value,
        "finite": value is None or math.isfinite(value),
        "params": {},
        "time": 1.0,
        "num_steps": 10,
    }
    return {**base, **extra}


def test_per_seed_counts_diverged_and_crashed_seeds() -> None:
    rows = [
        row("digits-mlp/seed0", "m", 0.1),
        row("digits-mlp/seed1", "m", math.nan, status="DIVERGED"),
        row("digits-mlp/seed2", "m", None, status="ERROR"),
    ]
    seeds = per_seed(Results(rows), "digits-mlp/", "m", "objective_value", math.inf)
    assert (seeds.diverged, seeds.errors, seeds.failed) == (1, 1, 2)
    assert seeds.values == [0.1, math.inf, math.inf]
    assert "1 diverged" in seeds.describe() and "1 crashed" in seeds.describe()


def _mfac_rows(mfac_seed1: float) -> list[dict[str, Any]]:
    rows = []
    for s, value in enumerate([0.01, mfac_seed1]):
        case = f"digits-mlp/seed{s}"
        rows.append(row(case, "itersolve-mfac", value, lr=3e-3, test_accuracy=0.9))
        rows.append(row(case, "torch-adam", 0.05, lr=1e-3, test_accuracy=0.9))
        rows.append(row(case, "torch-sgd", 0.05, lr=0.1, test_accuracy=0.9))
    return rows


def test_mfac_training_claim_fails_on_a_diverged_seed() -> None:
    assert optim_mfac._training_loss(Results(_mfac_rows(0.02))).passed is True
    out = optim_mfac._training_loss(Results(_mfac_rows(math.nan)))
    assert out.passed is False
    assert "1 diverged" in out.detail


def test_mfac_tuning_seeds_are_never_evaluated() -> None:
    for scale in ("smoke", "quick", "full"):
        evaluated = {
            c.params["seed"]
            for c in optim_mfac.cases(scale)
            if c.name.startswith("digits-mlp/")
        }
        assert evaluated and not evaluated & set(optim_mfac.TUNE_SEEDS[scale])
    sizes = {
        len(grid) * len(optim_mfac.SECOND[name][1])
        for name, grid in optim_mfac.LR_GRIDS.items()
    }
    assert sizes == {12}  # the same tuning budget for every optimizer


def _lasso_rows(gap_at_3000: float, diverged: int = 0) -> list[dict[str, Any]]:
    rows = []
    for T, gap in ((1000, 3e-2), (3000, gap_at_3000), (10000, 1e-2)):
        rows.append(
            row(
                f"convex-gaussian/T{T}",
                optim_last_iterate.OURS,
                gap,
                params={"T": T, "regime": "convex-gaussian"},
                median_gap=gap,
                diverged_seeds=diverged if T == 3000 else 0,
            )
        )
    return rows


def test_last_iterate_slope_fails_on_diverged_seeds() -> None:
    check = optim_last_iterate._slope("convex-gaussian", -0.55, -0.45, "-1/2")
    good = check(Results(_lasso_rows(3e-2 / math.sqrt(3))))
    assert good.passed is True
    bad = check(Results(_lasso_rows(math.inf, diverged=2)))
    assert bad.passed is False
    assert "2/20 seeds diverged" in bad.detail


def test_training_accuracy_claim_fails_when_ours_diverged() -> None:
    check = optim_training._accuracy_vs("torch-adam", within_std=False)
    rows = [
        row("digits-cnn/seed0", optim_training.OURS, 0.99),
        row("digits-cnn/seed1", optim_training.OURS, math.nan, status="DIVERGED"),
        row("digits-cnn/seed0", "torch-adam", 0.3),
        row("digits-cnn/seed1", "torch-adam", 0.3),
    ]
    out = check(Results(rows))
    assert out.passed is False  # the mean (0.495) beats Adam's, but a seed diverged
    assert "1 diverged" in out.detail


def test_newton_best_anchor_is_chosen_from_every_anchor() -> None:
    rows = []
    for case in optimize_newton.TIMING_CASES:
        rows.append(row(case, "itersolve-newton", 0.0, time=1.0))
        for anchor in optimize_newton.ANCHORS:
            rows.append(row(case, anchor, 0.0, time=2.0, grad_norm=1e-9))
        # torch LBFGS was left out of the pool before: here it is the fastest.
        rows[-1]["time"] = 0.5
    out = optimize_newton._time_ratio(Results(rows))
    assert out.measured == pytest.approx(2.0)
    assert out.passed is False
    assert "torch-lbfgs" in out.detail


def test_newton_anchor_missing_our_rule_is_not_a_success() -> None:
    fit = optimize_newton._build("synthetic", 200)
    x = fit.problem.x0()
    out = optimize_newton.judged(fit, RunOutput(x, 1, "SUCCESS"))
    assert out.status == "STAGNATION"
    assert out.extras["grad_norm"] > optimize_newton.GTOL


@pytest.mark.parametrize("method", ["L-BFGS-B", "Newton-CG", "trust-exact"])
def test_newton_scipy_anchors_stop_on_our_rule(method: str) -> None:
    fit = optimize_newton._build("synthetic", 200)
    out = optimize_newton._scipy(method)(fit)
    gnorm = optimize_newton.grad_norm(fit, out.x)
    assert out.extras["grad_norm"] == pytest.approx(gnorm)
    # The status is ours, whatever scipy said (its Newton-CG stalls near 1e-7 here).
    assert (out.status == "SUCCESS") == (gnorm <= optimize_newton.GTOL)
    if method != "Newton-CG":
        assert out.status == "SUCCESS"


def test_schedules_lr_is_chosen_on_the_tuning_seeds_only() -> None:
    problem = optim_schedules._build("breast_cancer", "sgd", 1, seeds=2, tune=1)
    losses = np.full((len(problem.lrs), 3), 1.0)
    losses[0] = [0.1, 0.9, 0.9]  # best on the tuning seed
    losses[1] = [0.5, 0.2, 0.2]  # best on the evaluated seeds: not to be picked
    assert optim_schedules._chosen(problem, losses) == 0


def test_schedules_claims_name_diverged_runs() -> None:
    rows = [
        row("digits/sgd", name, 0.3 - 0.01 * i)
        for i, name in enumerate(optim_schedules.SCHEDULES)
    ]
    rows[-1].update(objective_value=math.inf, finite=False, diverged_seeds=3)
    out = optim_schedules._refined(Results(rows))
    assert out.passed is False  # refined diverged: it loses to linear
    assert "refined: 3 seeds diverged" in out.detail


def test_newton_time_claim_counts_native_convergence_as_a_lower_bound() -> None:
    rows = []
    for case in optimize_newton.TIMING_CASES:
        rows.append(row(case, "itersolve-newton", 0.0, time=1.0))
        rows.append(row(case, "scipy-trust-exact", 0.0, time=2.0, grad_norm=1e-9))
        # Gave up (not converged by any rule): never the best anchor.
        rows.append(
            row(case, "scipy-trust-krylov", 0.0, time=0.1, status="STAGNATION")
            | {"native_status": "STAGNATION", "grad_norm": 6e-8}
        )
        # Converged by its inf-norm rule, short of ours: a lower bound, counted.
        rows.append(
            row(case, "sklearn-lbfgs", 0.0, time=0.8, status="STAGNATION")
            | {"native_status": "SUCCESS", "grad_norm": 3e-8}
        )
    out = optimize_newton._time_ratio(Results(rows))
    assert out.measured == pytest.approx(1.0 / 0.8)
    assert out.passed is False
    assert "sklearn-lbfgs (lower bound)" in out.detail
    assert "scipy-trust-krylov (STAGNATION" in out.detail
