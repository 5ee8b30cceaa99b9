"""bilevel-bsvrb suite: claim logic on hand-made rows, the torchopt anchor and
the target rule (the suite itself runs at smoke scale in test_suites_smoke)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from itersolve.bench.results import Results
from itersolve.bench.suites import bilevel_bsvrb as suite
from itersolve.bilevel import exact_hypergradient
from itersolve.problems import quadratic_bilevel


def _row(case, method, status="SUCCESS", **extras):
    return {
        "dataset_name": case,
        "solver_name": method,
        "status": status,
        "idx_rep": 0,
        **extras,
    }


def test_exact_claim_takes_the_worst_error():
    rows = [
        _row(suite.EXACT, "v1-estimate", objective_value=1e-11, errors="a"),
        _row(suite.EXACT, "v2-estimate", objective_value=2e-6, errors="b"),
    ]
    outcome = suite._exact_claim(Results(rows))
    assert outcome.measured == 2e-6 and outcome.passed is False
    assert suite._exact_claim(Results([])).passed is None


def test_compare_claim_needs_both_versions_below_rsvrb():
    def rows(v1, v2, r):
        return Results(
            [
                _row(suite.COMPARE, name, median_final_loss=value, eta=1.0)
                for name, value in (("bsvrb-v1", v1), ("bsvrb-v2", v2), ("rsvrb", r))
            ]
        )

    assert suite._compare_claim(rows(0.2, 0.21, 0.22)).passed is True
    assert suite._compare_claim(rows(0.2, 0.23, 0.22)).passed is False
    assert suite._compare_claim(Results([])).passed is None


def test_blocks_claim_needs_fewer_epochs_with_more_blocks_for_both():
    def rows(v1, v2):
        out = []
        for version, (small, large) in (("bsvrb-v1", v1), ("bsvrb-v2", v2)):
            for blocks, value in ((2, small), (10, large)):
                out.append(
                    _row(
                        suite.BLOCKS,
                        f"{version}-I{blocks}",
                        median_epochs_to_target=value,
                        epochs_to_target="x",
                        target=0.4,
                    )
                )
        return Results(out)

    assert suite._blocks_claim(rows((3.0, 1.0), (2.0, 1.5))).passed is True
    assert suite._blocks_claim(rows((3.0, 1.0), (2.0, 2.0))).passed is False
    never = suite._blocks_claim(rows((math.inf, math.inf), (2.0, 1.0)))
    assert never.passed is False and never.measured == math.inf


def test_epochs_to_target_is_the_first_crossing():
    epochs = np.array([0.0, 0.5, 1.0, 1.5])
    losses = np.array([0.7, 0.5, 0.39, 0.41])
    assert suite._epochs_to(0.4, epochs, losses) == 1.0
    assert suite._epochs_to(0.3, epochs, losses) == math.inf


def test_torchopt_implicit_gradient_agrees_with_ours():
    p = quadratic_bilevel(m=3, dim_x=2, dim_y=4, n=16, seed=1)
    x = torch.tensor([0.3, -0.7], dtype=torch.float64)
    theirs = suite.torchopt_hypergradient(p, x)
    ours = exact_hypergradient(p, x).grad
    assert float((theirs - ours).abs().max()) <= suite.TORCHOPT_GOAL
    assert float((theirs - p.hypergradient(x)).abs().max()) <= 1e-12


def test_target_lies_between_the_start_and_the_exact_hyperobjective():
    p = suite._ho(3)
    target = suite._target(p)
    start = exact_hypergradient(p, torch.zeros(p.dim_x, dtype=torch.float64)).value
    assert start < target < math.log(2.0)
    assert target == start + suite.TARGET_FRACTION * (math.log(2.0) - start)


def test_compare_claim_covers_every_dataset_run():
    rows = [
        _row(case, name, median_final_loss=value, eta=1.0)
        for case, values in (
            (suite.COMPARE, (0.2, 0.21, 0.22)),
            (suite.COMPARE_DIGITS, (0.3, 0.36, 0.35)),
        )
        for name, value in zip(("bsvrb-v1", "bsvrb-v2", "rsvrb"), values, strict=True)
    ]
    outcome = suite._compare_claim(Results(rows))
    assert outcome.passed is False and outcome.measured == pytest.approx(0.01)
    assert suite.COMPARE_DIGITS in outcome.detail


def test_digits_comparison_runs_and_reports_its_curve():
    case = suite.HOCase(suite._ho(3, "digits"), 0.25, (0,), False, (2,), 16)
    out = suite._compare_compute("bsvrb-v2", case)
    assert out.status == "SUCCESS" and out.x.shape == (case.problem.dim_x,)
    losses = [float(v) for v in out.extras["curve_loss"].split(",")]
    assert (
        losses[0] == pytest.approx(math.log(2.0), abs=1e-4) and losses[-1] < losses[0]
    )
