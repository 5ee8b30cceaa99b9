"""pde-enkf: the claims read the rows they should; the cases build what they name."""

from __future__ import annotations

import math

import numpy as np
import pytest

from itersolve.bench.results import Results
from itersolve.bench.suites import pde_enkf


def _kalman_rows(rate: float, scale: float = 1.0):
    return [
        {
            "dataset_name": pde_enkf.KALMAN,
            "solver_name": f"enkf-E{n}",
            "status": "SUCCESS",
            "objective_value": scale * n**rate,
            "E": n,
        }
        for n in (50, 200, 800, 3200)
    ]


def _burgers_rows(ours: float, adam: float, status: str = "SUCCESS"):
    rows = []
    for name, value in (("ipinner", ours), ("enkf-pinn-parameters", ours)):
        rows.append(
            {
                "dataset_name": pde_enkf.BURGERS,
                "solver_name": name,
                "status": status,
                "objective_value": value,
            }
        )
    rows.append(
        {
            "dataset_name": pde_enkf.BURGERS,
            "solver_name": "adam-pinn",
            "status": "SUCCESS",
            "objective_value": adam,
        }
    )
    return rows


def _verdicts(rows):
    return [c.check(Results(rows)).passed for c in pde_enkf.CLAIMS]


def test_claims_pass_and_fail_on_the_numbers():
    assert _verdicts(_kalman_rows(-0.5) + _burgers_rows(0.1, 0.2)) == [True] * 3
    assert _verdicts(_kalman_rows(-0.3) + _burgers_rows(0.19, 0.2)) == [False] * 3
    outcome = pde_enkf.CLAIMS[0].check(Results(_kalman_rows(-0.5, 2.0)))
    assert outcome.measured == pytest.approx(-0.5)
    # a failed run fails its claim whatever its number
    assert _verdicts(_burgers_rows(0.01, 0.2, "NONFINITE"))[1:] == [False, False]
    nan = pde_enkf.CLAIMS[1].check(Results(_burgers_rows(math.nan, 0.2)))
    assert nan.passed is False


def test_claims_without_rows_are_not_judged():
    assert all(c.check(Results([])).passed is None for c in pde_enkf.CLAIMS)


def test_kalman_evaluation_is_exact_on_the_kalman_mean():
    case = next(c for c in pde_enkf.cases("smoke") if c.name == pde_enkf.KALMAN)
    lg = case.build()
    exact = np.tile(lg.mean.numpy(), (3, 1))
    assert pde_enkf.evaluate(lg, exact) == 0.0
    out = pde_enkf._enkf(20)(lg)
    assert out.x.shape == (lg.seeds, 4)
    assert 0 < pde_enkf.evaluate(lg, out.x) < 2


def test_burgers_case_seeds_differ_and_evaluate_recomputes():
    case = next(c for c in pde_enkf.cases("smoke") if c.name == pde_enkf.BURGERS)
    inst = case.build()
    assert len(inst.problems) == 3
    us = [p.observations.u for p in inst.problems]
    assert not np.allclose(us[0].numpy(), us[1].numpy())
    refs = np.stack([p.reference().numpy() for p in inst.problems])
    assert pde_enkf.evaluate(inst, refs) == 0.0
    assert pde_enkf.evaluate(inst, 0 * refs) == pytest.approx(1.0)
