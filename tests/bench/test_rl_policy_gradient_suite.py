"""rl-policy-gradient suite: its helpers and the claims' verdicts on given rows
(the suite itself runs end to end at smoke scale in test_suites_smoke)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from itersolve.bench.results import Results
from itersolve.bench.suites import rl_policy_gradient as rl


def _row(case: str, method: str, scale: str = "quick", **extra):
    return {
        "dataset_name": case,
        "solver_name": method,
        "status": "SUCCESS",
        "objective_value": 0.1,
        "scale": scale,
        **extra,
    }


def test_steps_to_threshold_uses_the_last_window_mean():
    returns = [10.0] * 50 + [500.0] * 150
    steps = rl._steps_to_threshold(returns, returns)
    # the window mean first reaches 475 once 95 of the last 100 are 500 and
    # 5 are 10: 0.95 * 500 + 0.05 * 10 = 475.5 at episode index 144
    assert steps == pytest.approx(50 * 10 + 95 * 500)
    assert rl._steps_to_threshold([500.0] * 99, [500.0] * 99) == math.inf


def test_slope_recovers_a_power_law_over_the_last_decade():
    t = np.arange(10, 1001, 10, dtype=float)
    gap = 3.0 * t**-0.5
    gap[:5] = 100.0  # outside the last decade: ignored
    assert rl._slope(t, gap, 1000) == pytest.approx(-0.5)
    assert math.isnan(rl._slope(t, -gap, 1000))


def test_gap_evaluation_is_zero_at_the_optimum():
    case = rl.GapCase(rl._lqr(), 10, (0,), False)
    assert abs(rl.evaluate(case, case.problem.optimal_theta().numpy())) < 1e-10
    assert rl.evaluate(case, np.zeros(10)) > 1.0


def test_hvp_method_reports_z_scores_against_the_closed_form():
    small = rl.LinearGaussianLQR(state_dim=2, action_dim=1, horizon=4)
    memo = rl._prepare(rl.HvpCase(small, 20, 20))
    out = rl._hvp_run(False)(memo)
    assert out is rl._hvp_run(False)(memo)  # memoised: the timed call is free
    assert out.extras["samples"] == 400 and out.extras["max_abs_z"] < 4


def _gaps(harpg: float, igt: float, reinforce: float) -> Results:
    return Results(
        [
            _row(rl.LQR_GAP, "n-harpg", median_gap=harpg, gaps="", step_size=0.1),
            _row(rl.LQR_GAP, "n-pg-igt", median_gap=igt, gaps="", step_size=0.1),
            _row(rl.LQR_GAP, "reinforce", median_gap=reinforce, gaps="", step_size=0.1),
        ]
    )


def test_ordering_claim_needs_both_inequalities():
    assert rl._ordering(_gaps(0.1, 0.2, 0.3)).passed is True
    assert rl._ordering(_gaps(0.3, 0.2, 0.4)).passed is False
    assert rl._ordering(_gaps(0.1, 0.5, 0.4)).passed is False
    assert rl._ordering(Results([])).passed is None


def test_slope_and_hvp_claims_on_given_rows():
    rows = Results([_row(rl.LQR_GAP, "n-harpg", slope=-0.52)])
    assert rl._harpg_slope(rows).passed is True
    rows = Results([_row(rl.LQR_GAP, "n-harpg", slope=-0.2)])
    assert rl._harpg_slope(rows).passed is False
    hvp = _row(rl.LQR_HVP, "harpg-hvp-estimator", max_abs_z=3.2, samples=2000, z="")
    assert rl._hvp_claim(Results([hvp])).passed is False


def _cartpole(scale: str, harpg: float, reinforce: float, ppo: float) -> Results:
    return Results(
        [
            _row(rl.CARTPOLE, name, scale, median_steps_to_475=v, final_returns="")
            for name, v in (
                ("n-harpg", harpg),
                ("reinforce", reinforce),
                ("sb3-ppo", ppo),
            )
        ]
    )


def test_cartpole_claim_is_judged_at_full_scale_only():
    quick = rl._cartpole_claim(_cartpole("quick", 1e4, 2e4, 1e4))
    assert quick.passed is None and "full scale only" in quick.detail
    assert rl._cartpole_claim(_cartpole("full", 1e4, 2e4, 6e3)).passed is True
    assert rl._cartpole_claim(_cartpole("full", 1e4, 2e4, 4e3)).passed is False
    assert (
        rl._cartpole_claim(_cartpole("full", math.inf, math.inf, 4e3)).passed is False
    )
