"""fixed-point-deq suite: the models' shapes and contraction, the counted
evaluations of a tiny training run, and the claims' verdicts on given rows
(the suite runs end to end in test_suites_smoke)."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from itersolve.bench.results import Results
from itersolve.bench.suites import fixed_point_deq as deq


@pytest.fixture(scope="module")
def task() -> deq.Task:
    return deq.cases("smoke")[0].build()


def test_split_is_fixed_and_standardised_on_the_training_set():
    X, _, Xt, yt = deq._split(None, None)
    assert X.shape == (1347, 64) and Xt.shape == (450, 64)
    assert torch.equal(deq._split(None, None)[3], yt)
    varying = X.std(dim=0) > 0
    assert float(X[:, varying].mean(dim=0).abs().max()) < 1e-5
    assert sorted(set(yt.tolist())) == list(range(10))


def test_explicit_network_has_the_deq_parameters_and_the_cell_contracts():
    sizes = {k: deq.Model(k, 16, 0) for k in deq.MODELS}
    count = {k: sum(p.numel() for p in m.parameters()) for k, m in sizes.items()}
    assert count["explicit"] == count["deq"] == count["neural-ode"]
    assert count["homoode"] == count["deq"] + 16  # the shared start point
    cell = deq.Cell(16)
    with torch.no_grad():
        cell.lin.weight.mul_(50.0)
        assert float(torch.linalg.matrix_norm(cell.weight(), ord=2)) <= deq.GAMMA
    with pytest.raises(ValueError, match="kind must be one of"):
        deq.Model("resnet", 16, 0)


@pytest.mark.parametrize("kind", deq.MODELS)
def test_training_and_classification_count_evaluations(task, kind):
    trained = deq.train(kind, task)
    out = deq.classify(trained)
    assert out.status == "SUCCESS"
    assert out.x.shape == (task.y_test.shape[0], 10)
    assert 0.0 <= deq.evaluate(task, out.x) == out.extras["accuracy"] <= 100.0
    evals = out.counters["fevals"]
    if kind == "explicit":
        assert evals == 1
    elif kind in ("homoode", "neural-ode"):
        # dopri5: 2 evaluations to choose the first step, 6 per step after.
        assert evals >= 8 and (evals - 2) % 6 == 0
    else:
        assert evals >= 2
    assert trained.train_failures == 0 and trained.train_fevals >= 1


def test_same_seed_same_model(task):
    a = deq.classify(deq.train("homoode", task))
    b = deq.classify(deq.train("homoode", task))
    assert torch.equal(a.x, b.x)


def _rows(acc: dict[str, list[float]], evals: dict[str, float], **status: str):
    rows: list[dict[str, Any]] = []
    for method, values in acc.items():
        for seed, value in enumerate(values):
            rows.append(
                {
                    "dataset_name": f"digits-h64-seed{seed}",
                    "solver_name": method,
                    "status": status.get(method, "SUCCESS"),
                    "objective_value": value,
                    "fevals": evals[method],
                    "train_seconds": 1.0,
                    "train_failures": 0,
                }
            )
    return rows


ACC = {
    "explicit": [97.0, 97.5, 96.0, 97.2, 96.8],
    "deq": [96.5, 96.2, 96.9, 95.1, 97.0],  # median 96.5 vs 97.0: -0.5
    "homoode": [96.0, 96.4, 95.0, 96.2, 96.1],  # median 96.1
    "neural-ode": [96.1, 95.0, 96.3, 96.0, 95.8],  # median 96.0
}
EVALS = {"explicit": 1.0, "deq": 12.0, "homoode": 8.0, "neural-ode": 14.0}


def _verdicts(rows: list[dict[str, Any]]) -> list[tuple[float | None, bool | None]]:
    suite = deq.SUITES[0]
    out = []
    for claim in suite.claims:
        o = claim.check(Results(rows))
        out.append((o.measured, o.passed))
    return out


def test_claims_pass_on_rows_that_meet_them():
    got = _verdicts(_rows(ACC, EVALS))
    assert [p for _, p in got] == [True, True, True, True, True]
    assert got[0][0] == pytest.approx(-0.5)
    assert got[1][0] == pytest.approx(0.1)
    assert got[2][0] == pytest.approx(-0.4)
    assert got[3][0] == pytest.approx(8 / 12)


def test_claims_fail_on_rows_that_miss_them():
    acc = dict(ACC, deq=[95.0, 95.9, 95.2, 96.0, 94.0], homoode=[95.0] * 5)
    evals = dict(EVALS, homoode=14.0)
    got = [p for _, p in _verdicts(_rows(acc, evals))]
    # DEQ 1.9 points behind; HomoODE behind the Neural ODE; HomoODE not
    # cheaper than the Neural ODE (equal counts are not fewer).
    assert got == [False, False, True, False, False]


def test_a_failed_run_fails_its_claims_and_missing_rows_are_not_run():
    got = _verdicts(_rows(ACC, EVALS, deq="MAX_STEPS"))
    assert [p for _, p in got] == [False, True, False, False, True]
    no_node = {k: v for k, v in ACC.items() if k != "neural-ode"}
    got = _verdicts(_rows(no_node, EVALS))
    assert got[1] == (None, None) and got[4] == (None, None)
