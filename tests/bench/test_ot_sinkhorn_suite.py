"""ot-sinkhorn suite: the anchors' stopping rule, the capped warm-up, and the
claims' verdicts on given rows (the suite runs end to end in test_suites_smoke)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from itersolve.bench.results import Results
from itersolve.bench.suites import ot_sinkhorn as ots

pytest.importorskip("ot")


@pytest.fixture(scope="module")
def lap() -> ots.OTProblem:
    return ots._assignment(40, 0.02)


@pytest.mark.parametrize("run", [ots._pot_run, ots._sinkhorn_run])
def test_converged_runs_meet_the_l1_rule_after_a_capped_warmup(lap, run):
    runs = ots._prepare_runs(lap)
    warm = run(runs)
    assert warm.num_steps <= ots.WARMUP_SWEEPS + 1
    out = run(runs)
    assert out.status == "SUCCESS"
    assert ots.evaluate(lap, out.x) <= lap.tol
    assert out.num_steps > ots.WARMUP_SWEEPS


def test_pot_stop_threshold_is_scaled_to_the_l1_rule(lap):
    # stopThr = tol / sqrt(m): POT's L2 test then implies the L1 rule, so a
    # converged POT run is never reported above the tolerance.
    runs = ots._prepare_runs(lap)
    ots._pot_run(runs)
    out = ots._pot_run(runs)
    assert ots.evaluate(lap, np.asarray(out.x)) <= lap.tol


def test_sns_run_reports_keep_and_fallbacks(lap):
    out = ots._sns_run(lap)
    assert out.status == "SUCCESS"
    assert {"fallbacks", "keep_per_row", "newton_steps"} <= set(out.counters)


def test_every_case_kind_is_built_at_smoke():
    kinds = {c.params["kind"] for c in ots.cases("smoke")}
    assert kinds == {ots.SPEED, ots.SMALL, ots.PER_ITERATION, ots.EMD_GAP}
    quick = {c.name: c for c in ots.cases("quick")}
    assert quick["assignment-500"].params["reg"] == pytest.approx(1 / 1200)
    assert {"mnist-l2-20", "mnist-l1-16", "gmm2d-400-W2"} <= set(quick)


def _row(case: str, method: str, time: float, kind: str, **extra: Any) -> dict:
    return {
        "dataset_name": case,
        "solver_name": method,
        "status": "SUCCESS",
        "objective_value": 1e-11,
        "time": time,
        "num_steps": 30,
        "params": {"kind": kind},
        **extra,
    }


def _speed_rows(sns: float, pot: float, sinkhorn: float, **pot_extra: Any):
    return [
        _row("assignment-500", "itersolve-sns", sns, ots.SPEED),
        _row("assignment-500", "pot-sinkhorn-log", pot, ots.SPEED, **pot_extra),
        _row("assignment-500", "itersolve-sinkhorn", sinkhorn, ots.SPEED),
    ]


def test_within_best_claim_uses_the_faster_of_pot_and_ours():
    check = ots._sns_within_best(1.5)
    out = check(Results(_speed_rows(sns=1.4, pot=3.0, sinkhorn=1.0)))
    assert out.measured == pytest.approx(1.4) and out.passed
    out = check(Results(_speed_rows(sns=1.6, pot=3.0, sinkhorn=1.0)))
    assert out.passed is False and "itersolve-sinkhorn" in out.detail


def test_within_best_claim_fails_when_sns_did_not_converge():
    rows = _speed_rows(sns=0.1, pot=3.0, sinkhorn=1.0)
    rows[0]["status"] = "MAX_STEPS"
    out = ots._sns_within_best(1.5)(Results(rows))
    assert out.passed is False and "NOT converged" in out.detail


def test_pot_slowdown_needs_a_converged_pot():
    check = ots._pot_slowdown("assignment-", 10.0)
    assert check(Results(_speed_rows(sns=0.1, pot=3.0, sinkhorn=1.0))).passed
    rows = _speed_rows(sns=0.1, pot=3.0, sinkhorn=1.0, objective_value=1e-5)
    rows[1]["status"] = "MAX_STEPS"
    out = check(Results(rows))
    assert out.passed is False and "did NOT converge" in out.detail
    assert check(Results([])).passed is None


def test_small_reg_claim_counts_converged_cases_and_says_why_not():
    rows = [
        _row("a-reg0.0001", "itersolve-sns", 1.0, ots.SMALL, keep_per_row=16.0),
        _row(
            "b-reg0.0001",
            "itersolve-sns",
            1.0,
            ots.SMALL,
            sinkhorn_steps=900,
            newton_steps=12,
            fallbacks=3,
            keep_per_row=64.0,
        ),
    ]
    rows[1].update(status="MAX_STEPS", objective_value=2e-3)
    out = ots._small_reg_converges(Results(rows))
    assert out.measured == 1 and out.passed is False
    assert "Sinkhorn 900 / Newton 12 steps, 3 fallbacks" in out.detail


def test_continuation_run_reaches_the_tolerance_at_the_target_reg(lap):
    out = ots._sns_continuation_run(lap)
    assert out.status == "SUCCESS" and out.counters["stages"] == 5
    assert ots.evaluate(lap, out.x) <= lap.tol


def test_small_reg_detail_shows_the_continuation_run_unjudged():
    rows = [
        _row("a-reg0.0001", "itersolve-sns", 9.0, ots.SMALL, status="MAX_STEPS"),
        _row("a-reg0.0001", "itersolve-sns-continuation", 1.0, ots.SMALL),
    ]
    rows[0]["objective_value"] = 2e-2
    out = ots._small_reg_converges(Results(rows))
    assert out.passed is False and out.measured == 0
    assert "not judged: SNS down a reg ladder" in out.detail
    assert "1.00 s vs 9.00 s" in out.detail
