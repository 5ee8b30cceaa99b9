"""optimize-dfo suite: the pass counter, the per-start runs, and the claims'
verdicts on given rows (the suite runs end to end in test_suites_smoke)."""

from __future__ import annotations

import json
import math

import pytest
import torch

from itersolve.bench.results import Results
from itersolve.bench.suites import optimize_dfo as dfo


@pytest.fixture(scope="module")
def valley() -> dfo.Instance:
    return dfo._build("valley", 2, 300, "smoke")


def test_counted_network_counts_forward_and_backward_passes():
    net = dfo.CountedNetwork(lambda x: 2.0 * x)
    x = torch.ones(3, dtype=torch.float64, requires_grad=True)
    net(x).sum().backward()
    with torch.no_grad():
        net(x)
    assert (net.forward, net.backward, net.passes) == (2, 1, 3)


def test_recorder_keeps_improvements_against_passes(valley):
    rec = dfo.Recorder(valley.problem)
    for x in ([1.0, -1.0], [0.0, 0.0], [2.0, -2.0], [0.5, 0.5]):
        rec(torch.tensor(x, dtype=torch.float64))
    assert [p for p, _ in rec.history] == [1, 2, 4]
    assert rec.history[-1][1] == 0.0 and rec.best == 0.0


def test_attacks_alone_stall_on_the_valley_where_the_covering_search_goes_on(valley):
    attacks = dfo._all_starts("a", dfo._attacks_only)(valley)
    cover = dfo._all_starts("c", dfo._ours(dfo._covering))(valley)
    d_attack = [s["distance"] for s in json.loads(attacks.extras["per_start"])["stats"]]
    stats = json.loads(cover.extras["per_start"])["stats"]
    assert all(s["passes"] <= valley.budget + 4 for s in stats)  # one step past
    assert min(d_attack) > 0.05  # stalled on the kinks, far from x*
    # the memo: a second call returns the same output without running again
    assert dfo._all_starts("c", dfo._ours(dfo._covering))(valley) is cover


def test_adam_and_scipy_respect_budget_and_box(valley):
    for solve in (dfo._adam, dfo._scipy("Powell"), dfo._scipy("Nelder-Mead")):
        rec = dfo.Recorder(valley.problem)
        x, status, _ = solve(valley, rec, valley.starts[0].clone())
        x = torch.as_tensor(x)
        assert rec.net.passes <= valley.budget + 2, solve
        assert bool(((x >= -2.0) & (x <= 2.0)).all())
        assert status in ("SUCCESS", "MAX_STEPS")


def test_passes_to_target():
    history = [[1, 5.0], [7, 2.0], [20, 1.0000005]]
    assert dfo._passes_to(history, 2.0) == 7
    assert dfo._passes_to(history, 1.0) == 20  # within 1e-6 relative
    assert dfo._passes_to(history, 0.5) == math.inf


def _row(method: str, finals: list[float], histories: list, **stats) -> dict:
    per_start = {
        "finals": finals,
        "stats": [
            {
                "passes": int(h[-1][0]),
                "history": h,
                **{k: v[i] for k, v in stats.items()},
            }
            for i, h in enumerate(histories)
        ],
    }
    case = dfo.VALLEY if "distance" in stats else dfo.MLP
    return {
        "dataset_name": case,
        "solver_name": method,
        "status": "SUCCESS",
        "per_start": json.dumps(per_start),
    }


def test_match_claim_counts_value_and_passes():
    nomad = _row(
        "nomad", [1.0, 1.0], [[[10, 2.0], [500, 1.0]], [[10, 2.0], [500, 1.0]]]
    )
    # start 0: matches with 50 passes (ratio 0.1); start 1: worse final value
    hybrid = _row("hybrid", [1.0, 1.1], [[[5, 3.0], [50, 1.0]], [[5, 1.1]]])
    outcome = dfo._matches_with_fewer_passes("nomad")(Results([nomad, hybrid]))
    assert outcome.measured == 0.5 and outcome.passed is False
    assert "1/2 starts pass" in outcome.detail
    hybrid_ok = _row("hybrid", [1.0, 0.9], [[[5, 1.0]], [[90, 0.9]]])
    outcome = dfo._matches_with_fewer_passes("nomad")(Results([nomad, hybrid_ok]))
    assert outcome.measured == 1.0 and outcome.passed is True


def test_valley_claim_needs_the_stopping_rule_and_the_distance_ratio():
    h = [[[1, 1.0]], [[1, 1.0]]]
    attacks = _row("attacks-only", [0.5, 0.5], h, distance=[0.5, 0.7], poll_size=[0, 0])
    near = _row(
        "covering", [1e-4, 1e-4], h, distance=[0.01, 0.03], poll_size=[8e-6] * 2
    )
    outcome = dfo._valley(Results([attacks, near]))
    assert outcome.passed is True and outcome.measured == pytest.approx(0.02 / 0.6)
    unstopped = _row(
        "covering", [1e-4] * 2, h, distance=[0.01, 0.03], poll_size=[1e-3] * 2
    )
    assert dfo._valley(Results([attacks, unstopped])).passed is False
