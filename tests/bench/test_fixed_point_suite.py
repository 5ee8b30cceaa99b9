"""fixed-point suite: the reference fixed points, the anchors' stopping rule and
evaluation counts, and the claims' verdicts on given rows (the suite itself
runs end to end in test_suites_smoke)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from itersolve.bench.results import Results
from itersolve.bench.suites import fixed_point as fp


@pytest.fixture(scope="module")
def small() -> fp.Instance:
    return fp._build(32, 3, "symmetric-filled", 1e-8, 2000)


def test_reference_is_the_fixed_point_to_rounding(small):
    z = small.z_star
    assert np.abs(small.f(z) - z).max() < 1e-14
    assert fp.evaluate(small, z) < 1e-14


@pytest.mark.parametrize("name", ["scipy-anderson", "scipy-broyden1", "iteration"])
def test_methods_meet_the_suite_rule_and_count_evaluations(small, name):
    out = fp.METHODS[[m.name for m in fp.METHODS].index(name)].run(small)
    assert out.status == "SUCCESS"
    assert fp.evaluate(small, out.x) <= 1.01 * small.rtol
    assert out.counters["fevals"] >= out.counters["sample_fevals_mean"] >= 2
    assert out.extras["error_vs_reference"] < 1e-5


def test_scipy_cap_is_max_steps_not_an_error(small):
    capped = fp.Instance(small.f, small.rtol, 3, small.z_star)
    z, steps, status, evals = fp._scipy_one(fp.so.anderson, {"alpha": 1.0})(capped, 0)
    assert status == "MAX_STEPS"
    assert np.isfinite(z).all() and evals >= steps >= 3


def test_torchdeq_anchor_counts_every_evaluation(small):
    pytest.importorskip("torchdeq")
    out = fp._torchdeq("anderson")(small)
    assert out.status in ("SUCCESS", "MAX_STEPS")
    # torchdeq evaluates twice before its first mixing step.
    assert out.counters["fevals"] >= out.num_steps >= 2
    if out.status == "SUCCESS":
        assert fp.evaluate(small, out.x) <= 1.5 * small.rtol


def _row(case: str, method: str, fevals: float, status: str = "SUCCESS", **extra):
    return {
        "dataset_name": case,
        "solver_name": method,
        "status": status,
        "objective_value": 1e-9,
        "fevals": fevals,
        **extra,
    }


def _claim(text: str) -> Any:
    (found,) = [c for c in fp.SUITES[0].claims if text in c.name]
    return found.check


def test_acceleration_claim_threshold_and_status():
    check = _claim("Anderson evaluations / plain")
    good = check(
        Results([_row(fp.MAIN, "iteration", 200), _row(fp.MAIN, "anderson", 80)])
    )
    assert good.passed is True and good.measured == pytest.approx(0.4)
    slow = check(
        Results([_row(fp.MAIN, "iteration", 200), _row(fp.MAIN, "anderson", 81)])
    )
    assert slow.passed is False
    failed = check(
        Results(
            [
                _row(fp.MAIN, "iteration", 200),
                _row(fp.MAIN, "anderson", 50, "MAX_STEPS"),
            ]
        )
    )
    assert failed.passed is False
    assert check(Results([_row(fp.MAIN, "iteration", 200)])).passed is None


def test_torchdeq_claim_needs_our_success_and_no_more_evaluations():
    check = _claim("torchdeq Anderson")
    rows = [_row(fp.MAIN, "anderson", 70), _row(fp.MAIN, "torchdeq-anderson", 600)]
    assert check(Results(rows)).passed is True
    rows[0] = _row(fp.MAIN, "anderson", 601)
    assert check(Results(rows)).passed is False
    rows[0] = _row(fp.MAIN, "anderson", 70, "MAX_STEPS")
    assert check(Results(rows)).passed is False
    # torchdeq missing: its rows are skipped, the claim is not run.
    assert check(Results(rows[:1])).passed is None


def test_agreement_claim_bounds_every_pair():
    check = _claim("ours vs scipy")
    methods = (
        "iteration",
        "anderson",
        "broyden-good",
        "broyden-bad",
        "newton-krylov",
        "scipy-anderson",
        "scipy-broyden1",
        "scipy-newton-krylov",
    )

    def rows(err: dict[str, float]) -> Results:
        return Results(
            [
                _row(fp.TIGHT, m, 10, error_vs_reference=err.get(m, 1e-12))
                for m in methods
            ]
        )

    ok = check(rows({"anderson": 4e-9, "scipy-broyden1": 5e-9}))
    assert ok.passed is True and ok.measured == pytest.approx(9e-9)
    assert check(rows({"anderson": 6e-9, "scipy-broyden1": 5e-9})).passed is False
    assert check(Results([])).passed is None


def test_control_counts_are_shown_without_a_verdict():
    check = _claim("Anderson evaluations / plain")
    rows = [_row(fp.MAIN, "iteration", 100), _row(fp.MAIN, "anderson", 30)]
    rows += [
        _row(fp.CONTROL, m, v)
        for m, v in (
            ("iteration", 24),
            ("anderson", 22),
            ("broyden-good", 21),
            ("broyden-bad", 23),
        )
    ]
    out = check(Results(rows))
    assert out.passed is True and out.measured == pytest.approx(0.3)
    assert "control" in out.detail and "plain 24" in out.detail
    assert not any("control" in c.name for c in fp.SUITES[0].claims)


def test_quick_scale_has_every_case_the_claims_need():
    names = {c.name for c in fp.cases("quick")}
    assert {fp.MAIN, fp.CONTROL, fp.TIGHT} <= names
    main = next(c for c in fp.cases("quick") if c.name == fp.MAIN)
    assert main.params == {
        "n": 256,
        "batch": 64,
        "spectrum": "symmetric-filled",
        "rtol": 1e-8,
    }
