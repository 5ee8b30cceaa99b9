"""nn-icl-probe: the claim checks on given rows (full scale judged, other
scales reported without a verdict) and the lstsq anchor's optimality."""

from __future__ import annotations

import math

import numpy as np
import pytest

from itersolve.bench.results import Results
from itersolve.bench.suites import nn_icl_probe as suite


def test_newton_linear_rule() -> None:
    # the paper's picture: flat first layer, ~3 per middle layer, saturating end
    ratio, ok, _ = suite.newton_linear([1, 3, 6, 9, 11, 14, 17, 17])
    assert ok and ratio == pytest.approx(3 / 2)
    ratio, ok, _ = suite.newton_linear([1, 2, 3, 6, 7, 8])  # increments 1, 3, 1
    assert not ok and ratio == 3
    ratio, ok, why = suite.newton_linear([2, 4, 3, 5, 7, 9])  # not monotone
    assert not ok and "monotone over all layers: False" in why
    ratio, ok, _ = suite.newton_linear([1, 4, 4, 6])  # a flat middle step
    assert not ok and ratio == math.inf
    ratio, ok, _ = suite.newton_linear([1, 2])
    assert not ok and math.isnan(ratio)


def test_gd_doubling_rule() -> None:
    value, ok, _ = suite.gd_doubling([1, 2, 8, 16, 64, 64], 4096)
    assert ok and value == 2
    value, ok, _ = suite.gd_doubling([1, 2, 4, 4, 8, 64], 4096)
    assert not ok and value == 1
    _, _, why = suite.gd_doubling([1, 1024, 2048, 4096, 4096], 4096)
    assert "censored" in why


def test_newton_beats_gd_rule() -> None:
    value, ok, _ = suite.newton_beats_gd([0.5, 0.9, 0.95, 0.9], [0.6, 0.8, 0.94, 0.99])
    assert ok and value == pytest.approx(0.01)
    value, ok, _ = suite.newton_beats_gd([0.5, 0.9, 0.9, 0.9], [0.6, 0.8, 0.9, 0.99])
    assert not ok and value == pytest.approx(0.0)


def _rows(scale: str, newton: str, gd: str) -> list[dict]:
    return [
        {
            "dataset_name": "icl-case",
            "solver_name": "transformer",
            "scale": scale,
            "status": "SUCCESS",
            "objective_value": 0.01,
            "newton_best": newton,
            "gd_best": gd,
            "newton_best_similarity": "0.5,0.9,0.95,0.9",
            "gd_best_similarity": "0.6,0.8,0.9,0.99",
            "layer_error": "0.9,0.5,0.1,0.01",
            "train_loss_first": 1.0,
            "train_loss_last": 0.01,
            "gd_grid_max": 4096,
        }
    ]


@pytest.mark.parametrize("claim_index", [0, 1, 2])
def test_claims_judged_at_full_scale_only(claim_index: int) -> None:
    claim = suite.SUITES[0].claims[claim_index]
    good = _rows("full", "1,3,6,8", "1,4,16,32")
    outcome = claim.check(Results(good))
    assert outcome.passed is True
    quick = claim.check(Results(_rows("quick", "1,3,6,8", "1,4,16,32")))
    assert quick.passed is None and "full scale only" in quick.detail
    assert quick.measured == outcome.measured  # the figure is still reported
    assert "would read PASS" in quick.detail
    assert claim.check(Results([])).passed is None


def test_newton_vs_gd_claim_needs_a_model_that_learned() -> None:
    rows = _rows("full", "1,3,6,8", "1,4,16,32")
    rows[0]["objective_value"] = 0.9  # about the zero predictor's error
    outcome = suite.SUITES[0].claims[2].check(Results(rows))
    assert outcome.passed is False and "not learned" in outcome.detail


def test_claims_fail_at_full_scale_on_bad_curves() -> None:
    newton, gd, _ = suite.SUITES[0].claims
    bad = Results(_rows("full", "1,5,5,8", "1,4,4,32"))
    assert newton.check(bad).passed is False
    assert gd.check(Results(_rows("full", "1,5,5,8", "1,4,4,32"))).passed is False


def test_lstsq_anchor_is_the_minimum_norm_prediction() -> None:
    task = suite._build("smoke")
    out = suite.run_lstsq(task)
    x, y = task.x.double().numpy(), task.y.double().numpy()
    d = x.shape[-1]
    # from d points on, the noiseless least squares interpolates (up to the
    # float32 rounding of the stored prompts, amplified by cond(X))
    np.testing.assert_allclose(out.x[:, d:], y[:, d:], atol=1e-3)
    assert np.abs(out.x[:, d - 1] - y[:, d - 1]).mean() > 0.1  # too few points
    assert (out.x[:, 0] == 0).all()
    assert suite.evaluate(task, out.x) < suite.evaluate(task, np.zeros_like(y))
