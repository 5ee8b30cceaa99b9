"""The reference notebook's LogSumExp case of the optimize-newton suite and its
figure claim (Semenov, Jaggi & Doikov, ``epfml/grad-norm-smooth``)."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from itersolve.bench.results import Results
from itersolve.bench.suite import RunOutput
from itersolve.bench.suites import optimize_newton as on


def _row(method: str, steps: int, status: str = "SUCCESS") -> dict[str, Any]:
    return {
        "dataset_name": on.LSE_CASE,
        "solver_name": method,
        "status": status,
        "objective_value": 0.0,
        "finite": True,
        "params": {},
        "time": 1.0,
        "num_steps": steps,
    }


def test_paper_lse_case_has_its_optimum_at_zero_and_the_f_rule() -> None:
    fit = on._build("lse", 60)
    zero = torch.zeros(60, dtype=torch.float64)
    assert float(fit.problem.grad(zero).norm()) < 1e-12
    assert fit.f_rule and fit.B is not None
    near = on.judged(fit, RunOutput(zero + 1e-6, 1, "SUCCESS"))
    far = on.judged(fit, RunOutput(fit.start(), 1, "SUCCESS"))
    assert near.status == "SUCCESS"
    assert far.status == "STAGNATION"


def test_paper_lse_case_runs_both_hessians_to_the_f_rule() -> None:
    fit = on._build("lse", 80)
    for hessian in ("exact", "gauss_newton"):
        out = on._ours(on._regnewton(hessian))(fit)
        assert out.status == "SUCCESS"
        assert out.extras["inner_per_step"] <= 2.5


@pytest.mark.parametrize(
    ("exact", "gn", "passed"), [(35, 94, True), (35, 120, False), (20, 95, False)]
)
def test_paper_figure_claim(exact: int, gn: int, passed: bool) -> None:
    rows = [
        _row("itersolve-regnewton-exact", exact),
        _row("itersolve-regnewton-gn", gn),
    ]
    out = on._paper_figure(Results(rows))
    assert out.passed is passed


def test_paper_figure_claim_fails_on_a_failed_run() -> None:
    rows = [
        _row("itersolve-regnewton-exact", 35),
        _row("itersolve-regnewton-gn", 95, status="MAX_STEPS"),
    ]
    assert on._paper_figure(Results(rows)).passed is False


def test_gauss_newton_floor_on_logistic_is_below_one() -> None:
    fit = on._build("synthetic", 200)
    assert fit.gn_floor is not None and 0.0 < fit.gn_floor < 1.0
