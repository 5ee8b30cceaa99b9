"""optim-training's recipe (the official script's weight decay and step decay)
and the standard error its accuracy claims print."""

from __future__ import annotations

import math
import statistics

import pytest
import torch

from itersolve.bench.results import Results
from itersolve.bench.suites import optim_training
from itersolve.bench.suites.optim_common import cnn


def test_step_decay_multiplies_lr_at_half_and_three_quarters() -> None:
    model = torch.nn.Linear(2, 1)
    inner = torch.optim.SGD(model.parameters(), lr=0.1)
    opt = optim_training._StepDecay(inner, total=8)
    seen = []
    for _ in range(8):
        opt.zero_grad()
        model(torch.ones(1, 2)).sum().backward()
        opt.step()
        seen.append(inner.param_groups[0]["lr"])
    assert seen == pytest.approx([0.1] * 3 + [0.01] * 2 + [0.001] * 3)


def test_every_optimizer_shrinks_weights_by_the_same_decay_per_step() -> None:
    """Coupled decay (SGD, Adam) adds wd * w to the gradient; decoupled
    (AdamW, AdaHessian) subtracts lr * wd * w: the official script divides
    wd by lr for the latter, so lr * wd is 5e-4 for both."""
    model = cnn(0)
    coupled = {"torch-sgd", "torch-adam"}
    decoupled = {"torch-adamw", optim_training.OURS}
    assert set(optim_training.FACTORIES) == coupled | decoupled
    for name, factory in optim_training.FACTORIES.items():
        group = factory(model).param_groups[0]
        if name in coupled:
            assert group["weight_decay"] == pytest.approx(optim_training.WEIGHT_DECAY)
        else:
            assert group["lr"] * group["weight_decay"] == pytest.approx(
                optim_training.WEIGHT_DECAY
            )


def _row(case: str, method: str, value: float) -> dict:
    return {
        "dataset_name": case,
        "solver_name": method,
        "status": "SUCCESS",
        "objective_value": value,
        "finite": True,
        "params": {},
        "time": 1.0,
        "num_steps": 10,
    }


def test_accuracy_claim_prints_the_standard_error_of_the_difference() -> None:
    ours, sgd = [0.98, 0.99, 0.97], [0.99, 0.99, 0.98]
    rows = [
        _row(f"digits-cnn/seed{s}", name, v)
        for name, values in ((optim_training.OURS, ours), ("torch-sgd", sgd))
        for s, v in enumerate(values)
    ]
    out = optim_training._accuracy_vs("torch-sgd", within_std=True)(Results(rows))
    sem = math.sqrt(statistics.variance(ours) / 3 + statistics.variance(sgd) / 3)
    assert f"standard error of the difference {sem:.4f}" in out.detail
    margin = statistics.fmean(ours) - statistics.fmean(sgd)
    assert out.measured == pytest.approx(margin)
    assert out.passed is (margin >= -statistics.stdev(sgd))
