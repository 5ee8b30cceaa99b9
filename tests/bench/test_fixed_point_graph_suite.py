"""fixed-point-graph suite: the GVI data (targets, batching, metrics), the
gradient check's evaluation, and the claims' verdicts on given rows (the suite
itself runs end to end in test_suites_smoke)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from itersolve.bench.results import Results
from itersolve.bench.suites import fixed_point_graph as fg


def test_graph_targets_are_the_optimal_values() -> None:
    g = fg.make_graph(25, 6, seed=3)
    q = g.rewards + fg.DISCOUNT * g.values[g.next_state]
    np.testing.assert_allclose(g.values, q.max(1), atol=1e-10)
    # Message edges run from the successor to the state.
    src, dst = g.edge_index.numpy()
    np.testing.assert_array_equal(src, g.next_state.reshape(-1))
    np.testing.assert_array_equal(dst, np.repeat(np.arange(25), 6))
    assert fg.greedy_accuracy(g, g.values) == 1.0
    assert fg.mape(g.values, g.values) == 0.0
    assert fg.mape(1.1 * g.values, g.values) == pytest.approx(10.0)


def test_collate_offsets_the_graphs() -> None:
    graphs = [fg.make_graph(20, 5, 0), fg.make_graph(30, 7, 1)]
    b = fg.collate(graphs)
    assert b.x.shape == (50, 4) and b.edge_index.shape == (2, 100 + 210)
    np.testing.assert_array_equal(
        b.edge_index[:, 100:].numpy() - 20, graphs[1].edge_index.numpy()
    )
    np.testing.assert_array_equal(
        b.y.numpy(), np.concatenate([g.values for g in graphs])
    )


def test_models_train_and_predict_on_a_tiny_problem() -> None:
    problem = fg._gvi("smoke", 0)
    trained = fg.train("cgs", problem)
    out = fg._predict(trained)
    assert out.status == "SUCCESS"
    assert out.extras["iterations_max_large"] <= fg.ITERATION_LIMIT
    assert np.isfinite(fg.evaluate(problem, out.x))
    assert out.x.shape == problem.targets.shape


def test_vjp_error_is_small_for_the_implicit_gradient_and_not_otherwise() -> None:
    p = fg._build_vjp(20, 3)
    out = fg._implicit_gradients(p)
    assert out.status == "SUCCESS"
    assert fg.evaluate(p, out.x) <= fg.VJP_LIMIT
    wrong = out.x.clone()
    wrong[0] += 1e-3 * torch.linalg.vector_norm(out.x)
    assert fg.evaluate(p, wrong) > 1e-4


def _row(case: str, method: str, status: str = "SUCCESS", **extra: Any) -> dict:
    return {"dataset_name": case, "solver_name": method, "status": status, **extra}


def _gvi_rows(cgs: float, gcn: float, iterations: int, status: str = "SUCCESS"):
    common = {
        "mape_small": 1.0,
        "mape_large": 2.0,
        "greedy_accuracy": 0.9,
        "n_params": 10,
    }
    rows = []
    for seed in (0, 1):
        case = fg._gvi_name(seed)
        rows += [
            _row(
                case,
                "cgs",
                status,
                objective_value=cgs,
                iterations_max_small=iterations - 1,
                iterations_max_large=iterations,
                **common,
            ),
            _row(case, "gcn", objective_value=gcn, **common),
            _row(case, "appnp", objective_value=gcn, **common),
        ]
    return Results(rows)


def test_iteration_claim() -> None:
    assert fg._iterations(_gvi_rows(2.0, 3.0, 12)).passed is True
    outcome = fg._iterations(_gvi_rows(2.0, 3.0, 26))
    assert outcome.passed is False and outcome.measured == 26
    assert fg._iterations(_gvi_rows(2.0, 3.0, 12, "MAX_STEPS")).passed is False
    assert fg._iterations(Results([])).passed is None


def test_versus_gcn_claim() -> None:
    outcome = fg._versus_gcn(_gvi_rows(2.0, 3.0, 12))
    assert outcome.passed is True and outcome.measured == pytest.approx(2 / 3)
    assert "appnp" in outcome.detail
    assert fg._versus_gcn(_gvi_rows(3.0, 3.0, 12)).passed is False
    only_cgs = Results(
        [r for r in _gvi_rows(2.0, 3.0, 12).rows if r["solver_name"] == "cgs"]
    )
    assert fg._versus_gcn(only_cgs).passed is None


def test_greedy_accuracy_claim() -> None:
    rows = _gvi_rows(2.0, 3.0, 12).rows
    assert fg._greedy_vs_gcn(Results(rows)).passed is True  # equal accuracy
    for r in rows:
        if r["solver_name"] == "gcn":
            r["greedy_accuracy"] = 0.95
    outcome = fg._greedy_vs_gcn(Results(rows))
    assert outcome.passed is False and outcome.measured == pytest.approx(0.9 / 0.95)


def test_vjp_claim() -> None:
    ok = Results([_row(fg.VJP_CASE, "cgs-implicit-vjp", objective_value=1e-12)])
    bad = Results([_row(fg.VJP_CASE, "cgs-implicit-vjp", objective_value=1e-7)])
    assert fg._vjp(ok).passed is True
    assert fg._vjp(bad).passed is False
