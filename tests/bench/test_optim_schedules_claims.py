"""optim-schedules' claims name runs whose LR was chosen on the grid's edge."""

from __future__ import annotations

import itertools

from itersolve.bench.results import Results
from itersolve.bench.suites import optim_schedules


def _row(name: str, value: float, edge: bool) -> dict:
    return {
        "dataset_name": "digits/sgd",
        "solver_name": name,
        "status": "SUCCESS",
        "objective_value": value,
        "finite": True,
        "params": {},
        "best_lr": 7.29 if edge else 0.81,
        "lr_at_grid_edge": edge,
    }


def test_claims_name_runs_tuned_on_a_grid_edge() -> None:
    values = {"linear": 0.1, "cosine": 0.2, "inverse-sqrt": 0.3, "constant": 0.4}
    rows = [_row(n, v, n == "inverse-sqrt") for n, v in values.items()]
    rows.append(_row("refined", 0.05, False))
    ranking = optim_schedules._ranking(Results(rows))
    assert ranking.passed is True
    assert "digits/sgd/inverse-sqrt: best LR 7.29 at the grid's edge" in ranking.detail
    refined = optim_schedules._refined(Results(rows))
    assert refined.passed is True and "grid's edge" not in refined.detail


def test_grids_have_eight_values_a_factor_three_apart() -> None:
    for grid in optim_schedules.LR_GRIDS.values():
        assert len(grid) == 8
        assert all(abs(b / a - 3) < 1e-12 for a, b in itertools.pairwise(grid))
