"""optimize-convex-relu suite: the Clarabel conic form against cvxpy, the Adam
baseline's objective, and the claims' verdicts on given rows (the suite itself
runs end to end in test_suites_smoke)."""

from __future__ import annotations

from typing import Any

import cvxpy as cp
import numpy as np
import pytest
import torch

from itersolve.bench.results import Results
from itersolve.bench.suites import optimize_convex_relu as suite
from itersolve.optimize.convex_relu import ConvexReLUProblem, network_objective


@pytest.fixture(scope="module")
def tiny() -> suite.Instance:
    rng = np.random.default_rng(0)
    X = rng.standard_normal((15, 2))
    y = np.sign(X[:, 0] * X[:, 1])
    problem = ConvexReLUProblem(X, y, beta=0.3, arrangements=4, seed=0)
    return suite.Instance(problem, X, y, adam_steps=30)


def test_clarabel_conic_form_solves_the_program(tiny):
    out = suite._clarabel(suite._clarabel_prepare(tiny))
    assert out.status == "SUCCESS"
    X, y, D = tiny.problem.X.numpy(), tiny.y, tiny.problem.D.numpy()
    V, W = cp.Variable((4, 3)), cp.Variable((4, 3))
    pred = cp.sum(cp.multiply(D, X @ (V - W).T), axis=1)
    reg = cp.sum(cp.norm(V, 2, axis=1)) + cp.sum(cp.norm(W, 2, axis=1))
    S = 2 * D - 1
    program = cp.Problem(
        cp.Minimize(0.5 * cp.sum_squares(pred - y) + 0.3 * reg),
        [cp.multiply(S, X @ V.T) >= 0, cp.multiply(S, X @ W.T) >= 0],
    )
    program.solve(solver=cp.CLARABEL)
    assert suite.evaluate(tiny, out.x) == pytest.approx(program.value, rel=1e-6)
    assert out.extras["constraint_violation"] < 1e-7
    assert out.extras["recovery_error"] < 1e-8


def test_adam_trains_the_network_objective(tiny):
    start = suite._network(tiny, 0)
    before = network_objective(start, tiny.X, tiny.y, 0.3).item()
    trained = suite.train_adam(tiny, 0, 1e-2)
    after = suite.evaluate(tiny, trained)
    assert after < before
    assert trained[0].out_features == 2 * tiny.problem.P
    trained = suite._adam_prepare(tiny)
    assert trained.lr in suite.ADAM_LRS and len(trained.nets) == 5
    out = suite._adam(trained)
    assert suite.evaluate(tiny, out.x) == min(trained.losses)
    assert out.extras["train_seconds"] > 0


def test_admm_row_reports_violation_and_recovery(tiny):
    out = suite._admm(tiny)
    assert out.status in ("SUCCESS", "MAX_STEPS")
    assert (
        out.extras["constraint_violation"] >= 0 and out.counters["factorizations"] >= 1
    )
    curve = suite._admm_trace(tiny)
    assert len(curve["step"]) == len(curve["objective"]) == out.num_steps
    assert np.all(np.diff(curve["time"]) >= 0)


def test_gap_step_is_where_the_gap_holds_for_good():
    curve = {"step": [1, 2, 3, 4], "objective": [2.0, 1.0005, 1.1, 1.0002]}
    assert suite._gap_step(curve, 1.0) == 3
    assert suite._gap_step({"step": [1], "objective": [1.5]}, 1.0) is None
    assert suite._gap_step({"step": [1, 2], "objective": [1.0, 0.9999]}, 1.0) == 0


def _rows(step_value: float, clarabel_time: float, adam: float) -> list[dict[str, Any]]:
    curve = {
        "step": [1.0, 2.0, 3.0],
        "time": [0.1, 0.2, 0.3],
        "objective": [3.0, step_value, step_value],
    }
    base = {"dataset_name": "c", "status": "SUCCESS"}
    return [
        {
            **base,
            "solver_name": "admm",
            "objective_value": step_value,
            "time": 0.5,
            "curve": curve,
            "constraint_violation": 1e-6,
            "recovery_error": 1e-6,
        },
        {
            **base,
            "solver_name": "clarabel",
            "objective_value": 1.0,
            "time": clarabel_time,
            "recovery_error": 1e-10,
        },
        {
            **base,
            "solver_name": "adam",
            "objective_value": adam,
            "adam_losses": f"{adam} 2.0",
            "adam_lr": 0.01,
        },
    ]


def _claim(text: str) -> Any:
    (found,) = [c for c in suite.SUITES[0].claims if text in c.name]
    return found.check


def test_count_and_timing_claims():
    good = Results(_rows(1.0005, clarabel_time=1.0, adam=1.5))
    count = _claim("ADMM steps")(good)
    assert count.passed is True and count.measured == 2
    timing = _claim("step time")(good)
    assert timing.passed is True and timing.measured == pytest.approx(0.2)
    slow = _claim("step time")(Results(_rows(1.0005, clarabel_time=0.1, adam=1.5)))
    assert slow.passed is False and slow.measured == pytest.approx(2.0)
    missed = Results(_rows(1.01, clarabel_time=1.0, adam=1.5))
    assert _claim("ADMM steps")(missed).passed is False
    assert _claim("step time")(missed).passed is False


def test_recovery_and_adam_claims():
    rows = _rows(1.0005, clarabel_time=1.0, adam=1.5)
    assert _claim("recovered network")(Results(rows)).passed is True
    assert _claim("Adam")(Results(rows)).measured == pytest.approx(1 / 1.5)
    beaten = _claim("Adam")(Results(_rows(1.0005, clarabel_time=1.0, adam=0.9)))
    assert beaten.passed is False
    rows[1]["recovery_error"] = 1e-6
    assert _claim("recovered network")(Results(rows)).passed is False
    empty = _claim("Adam")(Results([]))
    assert empty.passed is None


def test_torch_threads_restored(tiny):
    before = torch.get_num_threads()
    suite.train_adam(tiny, 1, 1e-2)
    assert torch.get_num_threads() == before
