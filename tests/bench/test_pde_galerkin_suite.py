"""pde-galerkin: the claims read the rows they should, the warm-up run is
short, and the cases build the problem the claims name."""

from __future__ import annotations

import numpy as np
import pytest

from itersolve.bench.results import Results
from itersolve.bench.suites import pde_galerkin as suite


def _rows(forward=5e-3, source_error=4e-3, spsolve=1e-3, status="SUCCESS"):
    base = {"time": 100.0, "num_steps": 800}
    rows = [
        {
            **base,
            "dataset_name": suite.MAIN,
            "solver_name": "graph-galerkin",
            "status": status,
            "objective_value": forward,
        },
        {
            **base,
            "dataset_name": suite.MAIN,
            "solver_name": "graph-galerkin-inverse",
            "status": "SUCCESS",
            "objective_value": 7e-3,
            "source": 2.0 * (1 + source_error),
            "source_error": source_error,
        },
    ]
    rows += [
        {
            "dataset_name": suite.DIRECT,
            "solver_name": "spsolve",
            "status": "SUCCESS",
            "objective_value": 0.0,
            "time": spsolve,
            "idx_rep": k,
        }
        for k in range(5)
    ]
    return Results(rows)


def _verdicts(results: Results) -> list[bool | None]:
    return [claim.check(results).passed for claim in suite.CLAIMS]


def test_claims_pass_on_rows_that_meet_them():
    assert _verdicts(_rows()) == [True, True, True]
    detail = suite.CLAIMS[2].check(_rows()).detail
    assert "1e+05 x spsolve" in detail


def test_claims_fail_on_rows_that_miss_them():
    assert _verdicts(_rows(forward=2e-2))[0] is False
    assert _verdicts(_rows(status="NONFINITE"))[0] is False
    assert _verdicts(_rows(forward=float("nan")))[0] is False
    assert _verdicts(_rows(source_error=1.5e-2))[1] is False
    assert _verdicts(_rows(spsolve=0.2))[2] is False


def test_claims_without_rows_are_not_judged():
    assert all(c.check(Results([])).passed is None for c in suite.CLAIMS)


@pytest.mark.parametrize("scale", ["smoke", "quick", "full"])
def test_cases_and_sizes(scale):
    names = {case.name for case in suite.cases(scale)}
    assert names == {suite.MAIN, suite.DIRECT}
    n = suite.SIZES[scale][0]
    assert next(iter(suite.cases(scale))).params["dofs"] == (2 * n + 1) ** 2
    assert suite.SIZES["quick"][0] == 8  # the 289-dof P2 mesh


def test_instance_observations_and_warmup():
    inst = suite._build("smoke")
    assert inst.reference.shape == (inst.residual.n_dofs,)
    free = set(inst.residual.free_dofs.tolist())
    assert len(inst.obs_dofs) == suite.N_OBS and set(inst.obs_dofs) <= free
    noise = inst.obs_values / inst.reference[inst.obs_dofs] - 1
    assert 0 < np.abs(noise).max() < 5 * suite.NOISE
    runs = suite._prepare(inst)
    inverse = next(m for m in suite.METHODS if m.name == "graph-galerkin-inverse")
    warm = inverse.run(runs)
    full = inverse.run(runs)
    *_, adam, lbfgs = suite.SIZES["smoke"]
    assert warm.num_steps == suite.WARMUP_STEPS
    assert full.num_steps == adam + lbfgs and full.status == "SUCCESS"
    assert np.isfinite(full.extras["source_error"])
    assert np.isfinite(suite.evaluate(inst, full.x))
    direct = suite._spsolve(inst)
    assert suite.evaluate(inst, direct.x) == 0.0
