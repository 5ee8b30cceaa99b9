"""nn-giorom suite: the rollout objective, the scaling clouds, and the claims'
verdicts on given rows (the suite runs end to end in test_suites_smoke)."""

from __future__ import annotations

import pytest

from itersolve.bench.results import Results
from itersolve.bench.suites import nn_giorom as ng

CONFIG = ng.Config(60, 1, 1, 10, 6, 3, 8, 1, 8, 10, 8, 2, 2, 2, (60,))


@pytest.fixture(scope="module")
def task() -> ng.Task:
    return ng._build(CONFIG)


def test_evaluate_is_the_relative_rollout_error(task):
    windows = task.windows()
    truth = [t for _, t, _ in windows]
    still = [s.expand_as(t) for _, t, s in windows]
    assert ng.evaluate(task, truth) == 0.0
    assert ng.evaluate(task, still) == pytest.approx(1.0)
    nan = [t.clone() for t in truth]
    nan[0][0, 0, 0] = float("nan")
    assert ng.evaluate(task, nan) != ng.evaluate(task, nan)  # NaN, not success
    # the constant-velocity reference is far better than standing still
    out = ng.run_constant_velocity(task)
    assert ng.evaluate(task, out.x) < 0.5


def test_scaling_cloud_has_the_training_density():
    small, large = ng._scaling_cloud(CONFIG, 60), ng._scaling_cloud(CONFIG, 240)
    assert small.test[0].shape == (ng.WINDOW + ng.K_SCALING + 1, 60, 2)
    assert large.radius == small.radius
    ratio = ng._spacing(large.test[0][0]) / ng._spacing(small.test[0][0])
    assert 0.7 < ratio < 1.4


def _rows(table: dict[tuple[str, str], dict[str, float]]) -> Results:
    return Results(
        [
            {"dataset_name": case, "solver_name": method, "status": "SUCCESS", **cols}
            for (case, method), cols in table.items()
        ]
    )


def test_claim_checks_on_given_rows():
    main = "elastic-1000p-train4"
    table = {
        (main, "gns"): {"time": 10.0, "objective_value": 0.2, "frames": 50.0},
        (main, "giorom"): {"time": 1.0, "objective_value": 0.3, "frames": 50.0},
        (main, "constant-velocity"): {"time": 0.01, "objective_value": 0.9},
        ("scaling-N1000", "gns"): {"time": 0.3},
        ("scaling-N1000", "giorom"): {"time": 0.1},
        ("scaling-N8000", "gns"): {"time": 2.4},
        ("scaling-N8000", "giorom"): {"time": 0.12},
    }
    speed = ng._speedup(_rows(table))
    assert speed.passed is True and speed.measured == pytest.approx(10.0)
    assert "gns 200 ms" in speed.detail
    error = ng._error_ratio(_rows(table))
    assert error.passed is True and error.measured == pytest.approx(1.5)
    assert "giorom / constant velocity 0.333" in error.detail
    learned = ng._gns_beats_cv(_rows(table))
    assert learned.passed is True and learned.measured == pytest.approx(0.2 / 0.9)
    scaling = ng._scaling(_rows(table))
    assert scaling.passed is None and scaling.measured == pytest.approx(20.0)
    assert scaling.detail.index("N=1000") < scaling.detail.index("N=8000")

    table[(main, "giorom")] = {"time": 4.0, "objective_value": 0.5, "frames": 50.0}
    assert ng._speedup(_rows(table)).passed is False
    assert ng._error_ratio(_rows(table)).passed is False
    # a baseline worse than ballistic extrapolation voids the comparison
    table[(main, "gns")] = {"time": 10.0, "objective_value": 1.2, "frames": 50.0}
    assert ng._gns_beats_cv(_rows(table)).passed is False
    assert ng._gns_beats_cv(Results([])).passed is None
    assert ng._speedup(Results([])).passed is None
