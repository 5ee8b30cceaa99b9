"""pde-pinn: the claims read the rows they should, the warm-up run is short,
and every case builds the problem the claims name."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from itersolve.bench.results import Results
from itersolve.bench.suites import pde_pinn


def _row(case: str, method: str, value: float, adam: float, status: str = "SUCCESS"):
    return {
        "dataset_name": case,
        "solver_name": method,
        "status": status,
        "objective_value": value,
        "relative_l2_after_adam": adam,
        "time": 1.0,
        "num_steps": 10,
    }


def _results(**over: Any) -> Results:
    lp = over.get("lpinn", (0.03, 0.005))
    rows = [
        _row(pde_pinn._name(30.0, 0.0), "pinn", over.get("pinn30", 0.9), 0.9),
        _row(pde_pinn._name(50.0, 0.0), "pinn", over.get("pinn50", 1.0), 1.0),
        _row(pde_pinn.C50, "lpinn", lp[1], lp[0], over.get("status", "SUCCESS")),
        _row(pde_pinn.DIFF, "lpinn", 0.004, 0.02),
    ]
    return Results(rows)


def _verdicts(results: Results) -> list[bool | None]:
    return [claim.check(results).passed for claim in pde_pinn.CLAIMS]


def test_claims_pass_on_rows_that_meet_them():
    assert _verdicts(_results()) == [True] * 5


def test_claims_fail_on_rows_that_miss_them():
    assert _verdicts(_results(pinn30=0.4))[0] is False
    verdicts = _verdicts(_results(lpinn=(0.06, 0.02)))
    assert verdicts[1:3] == [False, False]
    # a failed run fails its claims even with a good number
    assert _verdicts(_results(status="NONFINITE"))[1:3] == [False, False]
    nan = _verdicts(_results(lpinn=(float("nan"), 0.001)))
    assert nan[1] is False


def test_claims_without_rows_are_not_judged():
    outcomes = [claim.check(Results([])) for claim in pde_pinn.CLAIMS]
    assert all(o.passed is None for o in outcomes)


@pytest.mark.parametrize("scale", ["smoke", "quick", "full"])
def test_cases_name_the_claimed_problems(scale):
    names = {case.name for case in pde_pinn.cases(scale)}
    assert {pde_pinn.C50, pde_pinn.DIFF, pde_pinn._name(30.0, 0.0)} <= names


def test_warmup_is_short_and_the_timed_run_trains_the_full_budget():
    case = next(c for c in pde_pinn.cases("smoke") if c.name == pde_pinn.C50)
    runs = pde_pinn._prepare(case.build())
    lpinn = next(m for m in pde_pinn.METHODS if m.name == "lpinn")
    warm = lpinn.run(runs)
    full = lpinn.run(runs)
    *_, adam, lbfgs, ex, et = pde_pinn.SIZES["smoke"]
    assert warm.num_steps == pde_pinn.WARMUP_STEPS
    assert full.num_steps == adam + lbfgs and full.status == "SUCCESS"
    assert np.asarray(full.x).shape == (et, ex)
    assert np.isfinite(full.extras["relative_l2_after_adam"])
    value = pde_pinn.evaluate(runs.inst, full.x)
    assert np.isfinite(value) and value > 0


def test_deepxde_anchor_runs_on_c50_outside_quick():
    deepxde = next(m for m in pde_pinn.METHODS if m.name == "deepxde-pinn")
    for scale in ("smoke", "quick", "full"):
        ran = {c.name for c in pde_pinn.cases(scale) if deepxde.applies(c)}
        assert ran == (set() if scale == "quick" else {pde_pinn.C50})
