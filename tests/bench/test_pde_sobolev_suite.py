"""pde-sobolev: the scipy newton_krylov anchor converges under the suite's stopping
rule, a capped run is a MAX_STEPS row (never an ERROR), and the mesh and time
claims follow the rows they are given."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from itersolve.bench.results import Results
from itersolve.bench.suites import pde_sobolev


@pytest.fixture(scope="module")
def inst32() -> Any:
    return pde_sobolev._build(32)


def test_scipy_anchor_meets_the_suite_rule(inst32):
    out = pde_sobolev._scipy_newton_krylov(inst32)
    assert out.status == "SUCCESS"
    assert 0 < out.num_steps < 50
    assert pde_sobolev.evaluate(inst32, out.x) <= pde_sobolev.RTOL
    assert out.counters["poisson_solves"] > 0
    assert out.counters["residuals"] > out.num_steps


def test_scipy_anchor_cap_is_max_steps_with_last_iterate(inst32):
    out = pde_sobolev._scipy_newton_krylov(inst32, maxiter=1)
    assert out.status == "MAX_STEPS"
    assert np.isfinite(np.asarray(out.x)).all()
    # One Newton step from zero already cuts the residual: the iterate is real.
    assert pde_sobolev.evaluate(inst32, out.x) < 1.0


def test_quick_scale_runs_every_mesh_size_the_claims_need():
    sizes = {c.params["N"] for c in pde_sobolev.cases("quick")}
    assert set(pde_sobolev.MESH) <= sizes
    methods = {m.name: m for m in pde_sobolev.METHODS}
    for case in pde_sobolev.cases("quick"):
        if case.params["N"] in (256, 512):
            assert methods["sobolev-gd"].applies(case)
            assert methods["scipy-newton-krylov"].applies(case)


def _rows(steps: dict[int, int], status: str = "SUCCESS") -> list[dict[str, Any]]:
    return [
        {
            "dataset_name": f"log-gradient-2d-{n}",
            "solver_name": "sobolev-gd",
            "status": status,
            "objective_value": 1e-9,
            "time": 1.0,
            "num_steps": s,
        }
        for n, s in steps.items()
    ]


def _claim(text: str) -> Any:
    (found,) = [c for c in pde_sobolev.SUITES[0].claims if text in c.name]
    return found


def test_mesh_claim_passes_flat_and_fails_growing_or_missing():
    check = _claim("across N = 32..512").check
    flat = check(Results(_rows(dict.fromkeys(pde_sobolev.MESH, 19))))
    assert flat.passed is True and flat.measured == 0
    growing = dict(zip(pde_sobolev.MESH, (19, 20, 22, 25, 30), strict=True))
    assert check(Results(_rows(growing))).passed is False
    capped = _rows(dict.fromkeys(pde_sobolev.MESH, 19), "MAX_STEPS")
    assert check(Results(capped)).passed is False
    partial = check(Results(_rows(dict.fromkeys(pde_sobolev.MESH[:-1], 19))))
    assert partial.passed is None


def test_time_claim_needs_a_successful_anchor():
    check = _claim("N = 256: time").check
    case = "log-gradient-2d-256"

    def rows(anchor_time: float, anchor_status: str) -> Results:
        base = {"dataset_name": case, "objective_value": 1e-9, "num_steps": 5}
        return Results(
            [
                {**base, "solver_name": "sobolev-gd", "status": "SUCCESS", "time": 1.0},
                {
                    **base,
                    "solver_name": "scipy-newton-krylov",
                    "status": anchor_status,
                    "time": anchor_time,
                },
            ]
        )

    assert check(rows(2.0, "SUCCESS")).passed is True
    assert check(rows(0.5, "SUCCESS")).passed is False
    assert check(rows(2.0, "MAX_STEPS")).passed is False
