"""pde-moe: the claims read the rows they should, every case builds, and the
implicit-vs-unrolled check the claim rests on holds."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from itersolve.bench.results import Results
from itersolve.bench.suites import pde_moe


def _row(method: str, value: float, per_step: float, status: str = "SUCCESS"):
    return {
        "dataset_name": pde_moe.TRAINING,
        "solver_name": method,
        "status": status,
        "objective_value": value,
        "time_per_step": per_step,
        "time": 10.0,
        "num_steps": 10,
    }


def _results(**over: Any) -> Results:
    rows = [
        _row("pi-sc", over.get("sc", 0.3), 0.05),
        _row("pi-hc", over.get("hc", 0.01), over.get("hc_time", 0.4)),
        _row(
            "pi-hc-moe",
            over.get("moe", 0.005),
            over.get("moe_time", 0.3),
            over.get("status", "SUCCESS"),
        ),
        {
            "dataset_name": pde_moe.IFT,
            "solver_name": "implicit-vs-unrolled-lm",
            "status": "SUCCESS",
            "objective_value": over.get("ift", 1e-8),
            "time": 1.0,
        },
    ]
    return Results(rows)


def _verdicts(results: Results) -> list[bool | None]:
    return [claim.check(results).passed for claim in pde_moe.CLAIMS]


def test_claims_pass_on_rows_that_meet_them() -> None:
    assert _verdicts(_results()) == [True] * 4


def test_claims_fail_on_rows_that_miss_them() -> None:
    assert _verdicts(_results(moe=0.02)) == [False, True, True, True]
    assert _verdicts(_results(hc=0.5)) == [True, False, True, True]
    assert _verdicts(_results(moe_time=0.5)) == [True, True, False, True]
    assert _verdicts(_results(ift=1e-5)) == [True, True, True, False]
    # a failed run fails its claims even with good numbers
    assert _verdicts(_results(status="NONFINITE"))[0] is False
    assert _verdicts(_results(status="NONFINITE"))[2] is False
    assert _verdicts(_results(moe=float("nan")))[0] is False


def test_claims_without_rows_are_not_judged() -> None:
    assert all(v is None for v in _verdicts(Results([])))


def test_timing_claim_reads_the_wall_time_column() -> None:
    results = _results()
    pde_moe.CLAIMS[2].check(results)
    assert {r["solver_name"] for r in results.rows_touched("time")} == {
        "pi-hc",
        "pi-hc-moe",
    }


@pytest.mark.parametrize("scale", ["smoke", "quick", "full"])
def test_cases_and_sizes(scale: str) -> None:
    names = [case.name for case in pde_moe.cases(scale)]
    assert names == [pde_moe.TRAINING, pde_moe.IFT]
    n, n_basis, *_, experts = pde_moe.SIZES[scale]
    if scale == "full":
        assert (n, n_basis, experts) == (64, 16, (1, 4))  # the spec's setting


def test_warmup_is_short_and_the_timed_run_trains_the_budget() -> None:
    case = pde_moe.cases("smoke")[0]
    inst = case.build()
    moe = next(m for m in pde_moe.METHODS if m.name == "pi-hc-moe")
    warm = moe.run(inst)
    full = moe.run(inst)
    steps = pde_moe.SIZES["smoke"][4]
    assert warm.num_steps == pde_moe.WARMUP_STEPS
    assert full.num_steps == steps and full.status == "SUCCESS"
    assert np.asarray(full.x).shape == inst.problem.shape
    assert full.extras["experts"] == 2
    assert 0 < pde_moe.evaluate(inst, full.x) < np.inf


def test_implicit_backward_matches_unrolled_lm() -> None:
    inst = pde_moe._build_ift()
    out = pde_moe._ift_check(inst)
    assert out.status == "SUCCESS"
    assert pde_moe.evaluate(inst, out.x) <= 1e-6
    assert out.extras["output_difference"] <= 1e-8
