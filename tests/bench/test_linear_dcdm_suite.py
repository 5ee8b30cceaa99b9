"""linear-dcdm suite: the IC(0) anchor, evaluation, and the claims' verdicts on
given rows (the suite itself runs end to end in test_suites_smoke)."""

from __future__ import annotations

import numpy as np
import pytest

from itersolve.bench.results import Results
from itersolve.bench.suites import linear_dcdm as ld
from itersolve.problems import obstacle_poisson


def test_ic0_is_exact_on_the_pattern_and_preconditions_cg():
    p = obstacle_poisson(20, "mixed", seed=1)
    L = ld.ic0(p.A)
    assert abs((L @ L.T - p.A).multiply(p.A != 0)).max() < 1e-12
    inst = ld.Instance("smoke", 20, [(p, p.rhs(0))])
    plain = ld._scipy_pcg(ld._no_preconditioner, inst)
    ic = ld._scipy_pcg(ld._ic0, inst)
    assert plain.status == ic.status == "SUCCESS"
    assert ic.counters["mean_iterations"] < plain.counters["mean_iterations"] / 2
    assert ld.evaluate(inst, ic.x) <= ld.RTOL


def test_evaluate_is_the_worst_true_residual():
    p = obstacle_poisson(8, "disks", seed=0)
    b = p.rhs(0)
    inst = ld.Instance("smoke", 8, [(p, b), (p, b)])
    exact = np.linalg.solve(p.A.toarray(), b)
    assert ld.evaluate(inst, [exact, exact]) < 1e-12
    assert ld.evaluate(inst, [exact, np.zeros_like(b)]) == pytest.approx(1.0)


def _rows(its: dict[tuple[str, str], float], failed=()):
    roles = {"obstacles-32": "small", "obstacles-64": "train", "obstacles-128": "large"}
    return Results(
        [
            {
                "dataset_name": case,
                "solver_name": method,
                "status": "MAX_STEPS" if (case, method) in failed else "SUCCESS",
                "mean_iterations": value,
                "seconds_per_solve": 0.01 * value,
                "params": {"role": roles[case]},
            }
            for (case, method), value in its.items()
        ]
    )


ITS = {
    ("obstacles-32", "scipy-cg"): 140.0,
    ("obstacles-64", "scipy-cg"): 280.0,
    ("obstacles-128", "scipy-cg"): 560.0,
    ("obstacles-32", "dcdm"): 20.0,
    ("obstacles-64", "dcdm"): 20.0,
    ("obstacles-128", "dcdm"): 40.0,
    ("obstacles-128", "pyamg-sa-pcg"): 8.0,
}


def test_iteration_claims_pass_and_fail_on_the_stated_thresholds():
    good = _rows(ITS)
    train = ld._fraction_of_cg("train")(good)
    assert train.passed and train.measured == pytest.approx(20 / 280)
    growth = ld._growth(good)
    assert growth.passed and growth.measured == pytest.approx((40 / 20) / 4.0)
    slow = _rows({**ITS, ("obstacles-128", "dcdm"): 160.0})
    assert not ld._fraction_of_cg("large")(slow).passed  # 160/560 > 1/4
    assert not ld._growth(slow).passed  # 8 / 4 > 1/2
    capped = _rows(ITS, failed={("obstacles-128", "dcdm")})
    outcome = ld._growth(capped)
    assert outcome.passed is False and "cap" in outcome.detail


def test_timing_row_is_reported_without_verdict():
    outcome = ld._time_vs_amg(_rows(ITS))
    assert outcome.passed is None
    assert outcome.measured == pytest.approx(40 / 8)
    assert "reported" in outcome.detail
    assert ld._fraction_of_cg("train")(Results([])).passed is None
