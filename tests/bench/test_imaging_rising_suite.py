"""imaging-rising suite: evaluation, the FBP geometry, and the claims'
verdicts on given rows (the suite runs end to end in test_suites_smoke)."""

from __future__ import annotations

import numpy as np
import pytest

from itersolve.bench.results import Results
from itersolve.bench.suites import imaging_rising as ir


@pytest.fixture(scope="module")
def task() -> ir.Task:
    return ir._build(17, 10, 0.05, 0.3, 2, 2, 20, (4, 8), 1)


def test_evaluate_is_the_mean_relative_error(task):
    exact = np.stack(task.test_x)
    assert ir.evaluate(task, exact) == 0.0
    assert ir.evaluate(task, 1.1 * exact) == pytest.approx(0.1)


def test_fbp_and_converged_sgp_reconstruct(task):
    """FBP in the projector's geometry (odd side) and the converged solve are
    both far closer to the phantoms than the zero image."""
    assert ir.evaluate(task, ir.run_fbp(task).x) < 0.6
    assert ir.evaluate(task, ir.run_is(task).x) < 0.4
    assert ir.evaluate(task, ir.run_is(task).x) < ir.evaluate(task, ir.run_ris(task).x)


def _rows(values: dict[str, dict[str, float]]) -> Results:
    rows = []
    for method, columns in values.items():
        rows.append(
            {
                "dataset_name": "c",
                "solver_name": method,
                "status": "SUCCESS",
                **columns,
            }
        )
    return Results(rows)


OTHERS = {
    "sgp-converged": {"objective_value": 0.1, "time": 10.0},
    "sgp-early": {"objective_value": 0.3, "time": 0.4},
    "fbp-unet": {"degradation_2x": 1.4, "error_2x_noise": 0.15},
}


def test_claim_checks_on_given_rows():
    good = {
        "objective_value": 0.105,
        "time": 0.5,
        "ssim_to_converged": 0.96,
        "degradation_2x": 1.1,
        "error_2x_noise": 0.12,
    }
    outcomes = [c.check(_rows({"rising": good, **OTHERS})) for c in ir.SUITES[0].claims]
    assert [o.passed for o in outcomes] == [True, True, True, True, True]
    assert outcomes[0].measured == pytest.approx(1.05)
    bad = {
        "objective_value": 0.2,
        "time": 5.0,
        "ssim_to_converged": 0.9,
        "degradation_2x": 1.5,
        "error_2x_noise": 0.3,
    }
    worse = _rows({"rising": bad, **OTHERS})
    assert not any(claim.check(worse).passed for claim in ir.SUITES[0].claims)
