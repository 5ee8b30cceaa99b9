"""The linear-sequence, linear-newton-schulz, control-intrl and linear-krylov
claims on hand-made rows: each one fails when the measurement says so (a claim
that cannot fail is no claim)."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest

from itersolve.bench.results import Results
from itersolve.bench.suites import (
    control_intrl,
    linear_krylov,
    linear_newton_schulz,
    linear_sequence,
)


def row(case: str, method: str, **extra: Any) -> dict[str, Any]:
    base = {
        "dataset_name": case,
        "solver_name": method,
        "status": "SUCCESS",
        "objective_value": 0.0,
        "time": 1.0,
        "num_steps": 10,
    }
    return {**base, **extra}


def _claim(suite: Any, text: str) -> Any:
    (found,) = [c for c in suite.SUITES[0].claims if text in c.name]
    return found


# -- linear-sequence: heat claims ------------------------------------------------


def _heat_rows(tuned: float, chebcb: float, times: tuple[float, float]):
    rows = [
        row("heat2d-nx40", f"ssor-pcg-omega-{omega}", last_half_iterations=1000 + i)
        for i, omega in enumerate(linear_sequence.HEAT_OMEGAS)
    ]
    rows += [
        row("heat2d-nx40", "ssor-pcg-tsallis-inf", last_half_iterations=tuned),
        row("heat2d-nx40", "ssor-pcg-chebcb", last_half_iterations=chebcb),
        row("heat2d-nx40-timed", "ssor-pcg-chebcb", time=times[0]),
        row("heat2d-nx40-timed", "scipy-cg", time=times[1]),
        row("heat2d-nx40-timed", "scipy-spsolve", time=0.5),
    ]
    return Results(rows)


def test_heat_tuner_claims_compare_with_the_best_fixed_omega():
    tsallis = _claim(linear_sequence, "tuned by Tsallis-INF / best fixed")
    chebcb = _claim(linear_sequence, "tuned by ChebCB / best fixed")
    good = _heat_rows(1050, 990, (1.0, 2.0))
    assert tsallis.check(good).passed and chebcb.check(good).passed
    assert tsallis.check(good).measured == pytest.approx(1.05)
    bad = _heat_rows(1200, 1000, (1.0, 2.0))  # best fixed = omega 1.0, 1000
    assert tsallis.check(bad).passed is False
    assert chebcb.check(bad).passed is False  # strict: equal is not below


def test_heat_one_period_claims_read_the_250_step_case():
    """The pre-enlargement setting keeps its own tuner claims."""
    tsallis, chebcb = [
        c
        for c in linear_sequence.SUITES[0].claims
        if "one period (250 steps at quick" in c.name
    ]
    assert "Tsallis-INF" in tsallis.name and "ChebCB" in chebcb.name
    case = "heat2d-nx40-steps250"
    assert case in {c.name for c in linear_sequence.cases("quick")}
    assert linear_sequence.SUITES[0].headline is not None
    assert re.search(linear_sequence.SUITES[0].headline, case)
    rows = [
        row(case, f"ssor-pcg-omega-{omega}", last_half_iterations=1000 + i)
        for i, omega in enumerate(linear_sequence.HEAT_OMEGAS)
    ]
    rows += [
        row(case, "ssor-pcg-tsallis-inf", last_half_iterations=1340),
        row(case, "ssor-pcg-chebcb", last_half_iterations=1160),
    ]
    one = Results(rows)
    assert tsallis.check(one).measured == pytest.approx(1.34)
    assert tsallis.check(one).passed is False
    assert chebcb.check(one).passed is False
    # the four-period claims do not read the one-period case
    main = _claim(linear_sequence, "tuned by Tsallis-INF / best fixed")
    assert main.check(one).passed is None
    # and the one-period claims do not read the four-period case
    assert tsallis.check(_heat_rows(1050, 990, (1.0, 2.0))).passed is None


def test_heat_wall_time_claim_uses_the_timed_twin():
    claim = _claim(linear_sequence, "wall time of the whole simulation")
    assert claim.check(_heat_rows(1000, 1000, (1.0, 2.0))).passed
    slow = claim.check(_heat_rows(1000, 1000, (2.5, 1.0)))
    assert slow.passed is False and slow.measured == pytest.approx(2.5)
    assert "direct solve" in slow.detail


# -- linear-newton-schulz ---------------------------------------------------------


def _ns_rows(ours: float, gd: float, error: float = 1e-12):
    case = linear_newton_schulz._case(100)
    return Results(
        [
            row(case, "itersolve-newton-schulz", time=ours, objective_value=error),
            row(case, "gd-numpy-fixed-steps", time=gd, objective_value=1e-9),
            row(case, "gd-torch-fixed-steps", time=3 * gd, objective_value=1e-9),
        ]
    )


def test_newton_schulz_wall_time_claim_can_fail():
    claim = _claim(linear_newton_schulz, "kappa=100 (median of 5)")
    assert claim.check(_ns_rows(0.001, 0.03)).passed
    assert claim.check(_ns_rows(0.001, 0.03)).measured == pytest.approx(30)
    assert claim.check(_ns_rows(0.01, 0.005)).passed is False
    # faster but not as accurate: no pass
    assert claim.check(_ns_rows(0.001, 0.03, error=1e-6)).passed is False


@pytest.mark.parametrize(
    ("low", "high", "passed"),
    [(2000, 23000, True), (2000, 10000, False), (1000, 15000, False)],
)
def test_gd_growth_band_comes_from_the_spec_table(low, high, passed):
    lo, hi = linear_newton_schulz.GD_GROWTH_BAND
    assert (lo, hi) == pytest.approx(
        (23252 / 2024 * 0.9 / 1.1, 23252 / 2024 / 0.9 * 1.1)
    )
    gd = linear_newton_schulz.GD
    results = Results(
        [
            row(linear_newton_schulz._case(10), gd, num_steps=low),
            row(linear_newton_schulz._case(100), gd, num_steps=high),
        ]
    )
    claim = _claim(linear_newton_schulz, "gradient descent iterations grow")
    assert claim.check(results).passed is passed


# -- control-intrl ------------------------------------------------------------------


def _sweep_rows(status: str, floor: float, slope: float = -2.0):
    return Results(
        [
            row(
                control_intrl.EX1,
                "intrl-trapezoid",
                status=status,
                slope=slope,
                rounding_floor=floor,
                errors="",
                failed="" if status == "SUCCESS" else f"N=5: {status}",
            )
        ]
    )


def test_intrl_rate_claim_counts_only_success_above_the_floor():
    claim = _claim(control_intrl, "Ex. 1 (3rd-order linear)")
    assert claim.check(_sweep_rows("SUCCESS", 4e-8)).passed
    stalled = claim.check(_sweep_rows("STAGNATION", 4e-8))
    assert stalled.passed is False and "STAGNATION" in stalled.detail
    assert claim.check(_sweep_rows("SUCCESS", 1e-6)).passed is False
    assert claim.check(_sweep_rows("SUCCESS", 4e-8, slope=-3.0)).passed is False


def test_intrl_rounding_floor_of_example_one_is_below_the_tolerance():
    """The docstring's derivation, recomputed: eps cond(Phi) ||w|| on Ex. 1."""
    import warnings

    from itersolve import ConvergenceWarning, Status
    from itersolve.control import (
        IntegralPolicyIteration,
        policy_iteration,
        third_order_linear,
    )

    system = third_order_linear()
    method = IntegralPolicyIteration(
        quadrature="exact", n_points=2, tol=control_intrl.RATE_TOL
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        sol = policy_iteration(system, method, record=True)
    floor = control_intrl._rounding_floor(system, sol, method.ode_tol)
    assert 1e-8 < floor < control_intrl.RATE_TOL / control_intrl.FLOOR_MARGIN
    assert sol.status is Status.SUCCESS
    assert np.linalg.norm(np.asarray(sol.x) - system.w_star) < floor


# -- linear-krylov: true residual of every run of ours -----------------------------


def test_krylov_residual_claim_covers_the_unpaired_runs_of_ours():
    claim = _claim(linear_krylov, "true residual rule")
    paired = [
        row("poisson2d-64", name, objective_value=5e-7)
        for pair in linear_krylov._PAIRS
        for name in pair
    ]
    batch = "spd-batch-20x16"
    good = [*paired, row(batch, "itersolve-cg-batch", objective_value=9e-7)]
    assert claim.check(Results(good)).passed is True
    bad = [*paired, row(batch, "itersolve-cg-batch", objective_value=1e-3)]
    out = claim.check(Results(bad))
    assert out.passed is False and "itersolve-cg-batch" in out.detail
