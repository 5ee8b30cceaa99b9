"""The control-intrl suite's python-control anchors and its batched CARE claim."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg as sla

from itersolve.bench.results import Results
from itersolve.bench.suites import control_intrl


def _rows(residual: float, scipy_time: float = 10.0) -> Results:
    def row(method: str, time: float, value: float) -> dict:
        return {
            "dataset_name": control_intrl.CARE_CASE,
            "solver_name": method,
            "status": "SUCCESS",
            "objective_value": value,
            "time": time,
            "num_steps": 1,
        }

    return Results(
        [
            row("scipy-care-loop", scipy_time, 5e-9),
            row("python-control-care-loop", scipy_time, 5e-9),
            row("itersolve-care-batched", 1.0, residual),
        ]
    )


def test_care_claim_gates_on_speed_and_residual_and_quotes_the_anchors():
    (claim,) = [
        c
        for c in control_intrl.SUITES[0].claims
        if c.name.startswith("batched torch CARE")
    ]
    good = claim.check(_rows(2.4e-11))
    assert good.passed and good.measured == pytest.approx(10.0)
    assert "python-control-care-loop 5.00e-09" in good.detail
    inaccurate = claim.check(_rows(1.5e-9))
    assert inaccurate.passed is False and "goal <= 1e-09" in inaccurate.detail
    assert claim.check(_rows(2.4e-11, scipy_time=4.0)).passed is False


def test_python_control_rows_compute_the_scipy_riccati_solution():
    pytest.importorskip("control")
    batch = control_intrl._care_batch(5, 4, 2)
    out = control_intrl._care_control(batch)
    for i in range(5):
        ref = sla.solve_continuous_are(batch.A[i], batch.B[i], batch.Q[i], batch.R)
        np.testing.assert_allclose(out.x[i], ref, rtol=1e-10, atol=1e-12)
    assert out.extras["backend"] in ("slycot", "scipy")
    lqr = control_intrl._lqr()
    row = control_intrl._lqr_control(lqr)
    assert control_intrl.evaluate(lqr, row.x) < 1e-12
    ours = control_intrl._care_torch(control_intrl._to_torch(batch))
    assert control_intrl.evaluate(batch, ours.x) < 1e-11
