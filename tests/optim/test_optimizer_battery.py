"""torch's optimizer-test pattern: one battery over a registry of configs."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import torch
from torch import nn

from itersolve.optim import MFAC, Adahessian, ProxSGD


@dataclass(frozen=True)
class OptimizerInfo:
    cls: type[torch.optim.Optimizer]
    valid: list[dict[str, Any]]
    errors: list[tuple[dict[str, Any], type[Exception], str]]
    needs_hessian_closure: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


REGISTRY = [
    OptimizerInfo(
        Adahessian,
        valid=[
            {"lr": 0.05},
            {"lr": 0.05, "hessian_power": 0.5, "weight_decay": 1e-2},
            {"lr": 0.05, "n_samples": 3, "distribution": "gaussian"},
            {"lr": 0.05, "abs_mode": "block", "block_size": 3, "update_each": 2},
        ],
        errors=[
            ({"lr": -1.0}, ValueError, r"Invalid learning rate: -1\.0"),
            ({"eps": 0.0}, ValueError, r"Invalid epsilon value: 0\.0"),
            ({"betas": (1.0, 0.9)}, ValueError, "Invalid beta parameter at index 0"),
            ({"betas": (0.9, -0.1)}, ValueError, "Invalid beta parameter at index 1"),
            ({"hessian_power": 1.5}, ValueError, "Invalid Hessian power value: 1.5"),
            ({"weight_decay": -1.0}, ValueError, "Invalid weight_decay value"),
            ({"n_samples": 0}, ValueError, "Invalid n_samples value: 0"),
            ({"distribution": "uniform"}, ValueError, "Invalid distribution"),
            ({"abs_mode": "signed"}, ValueError, "Invalid abs_mode"),
            ({"block_size": 0}, ValueError, "Invalid block_size: 0"),
            ({"update_each": 0}, ValueError, "Invalid update_each value: 0"),
        ],
        needs_hessian_closure=True,
    ),
    OptimizerInfo(
        MFAC,
        valid=[
            {"lr": 1e-3, "damping": 1e-2, "ngrads": 4},
            {"lr": 1e-3, "damping": 1e-2, "ngrads": 4, "momentum": 0.9},
            {
                "lr": 1e-3,
                "damping": 1e-2,
                "ngrads": 3,
                "weight_decay": 1e-2,
                "weight_decay_mode": "decoupled",
            },
        ],
        errors=[
            ({"lr": -1.0}, ValueError, r"Invalid learning rate: -1\.0"),
            ({"damping": 0.0}, ValueError, r"Invalid damping value: 0\.0"),
            ({"damping": float("nan")}, ValueError, "Invalid damping value: nan"),
            ({"ngrads": 0}, ValueError, "Invalid ngrads value: 0"),
            ({"momentum": 1.0}, ValueError, r"Invalid momentum value: 1\.0"),
            ({"weight_decay": -1.0}, ValueError, "Invalid weight_decay value"),
            ({"weight_decay_mode": "l2"}, ValueError, "Invalid weight_decay_mode"),
        ],
    ),
    OptimizerInfo(
        ProxSGD,
        valid=[
            {"lr": 0.05},
            {"lr": 0.05, "l1": 1e-3, "average": True},
            {"lr": 0.05, "l1": 1e-3, "domain": "box", "lower": -1.0, "upper": 1.0},
        ],
        errors=[
            ({"lr": -1.0}, ValueError, r"Invalid learning rate: -1\.0"),
            ({"l1": -1.0}, ValueError, r"Invalid l1 value: -1\.0"),
        ],
    ),
]
IDS = [info.cls.__name__ for info in REGISTRY]
VALID = [(info, cfg) for info in REGISTRY for cfg in info.valid]
VALID_IDS = [
    f"{info.cls.__name__}-{i}" for info in REGISTRY for i in range(len(info.valid))
]
ERRORS = [(info, *err) for info in REGISTRY for err in info.errors]
ERROR_IDS = [
    f"{info.cls.__name__}-{err[2][:20]}" for info in REGISTRY for err in info.errors
]


def _model(dtype: torch.dtype = torch.float64, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(1, 2, 2), nn.Tanh(), nn.Flatten(), nn.Linear(8, 3)
    ).to(dtype)


def _data(dtype: torch.dtype = torch.float64):
    gen = torch.Generator().manual_seed(1)
    return torch.randn(10, 1, 3, 3, generator=gen).to(dtype), torch.randint(
        0, 3, (10,), generator=gen
    )


def _stepper(info: OptimizerInfo, model: nn.Module, opt, x, y) -> Callable[[], Any]:
    def loss() -> torch.Tensor:
        return nn.functional.cross_entropy(model(x).float(), y)

    if info.needs_hessian_closure:
        return lambda: opt.step(loss)

    def closure() -> torch.Tensor:
        opt.zero_grad()
        value = loss()
        value.backward()
        return value

    return lambda: opt.step(closure)


def _make(info: OptimizerInfo, cfg: dict[str, Any], model: nn.Module):
    cfg = dict(cfg)
    if info.cls is Adahessian:
        cfg.setdefault("seed", 0)
    return info.cls(model.parameters(), **cfg)


@pytest.mark.parametrize(("info", "cfg"), VALID, ids=VALID_IDS)
def test_valid_configs_decrease_the_loss(info: OptimizerInfo, cfg: dict) -> None:
    model = _model()
    x, y = _data()
    opt = _make(info, cfg, model)
    step = _stepper(info, model, opt, x, y)
    first = nn.functional.cross_entropy(model(x), y).item()
    for _ in range(25):
        step()
    assert nn.functional.cross_entropy(model(x), y).item() < first


@pytest.mark.parametrize(("info", "kwargs", "error", "match"), ERRORS, ids=ERROR_IDS)
def test_error_configs(
    info: OptimizerInfo, kwargs: dict, error: type, match: str
) -> None:
    with pytest.raises(error, match=match):
        info.cls(_model().parameters(), **kwargs)


@pytest.mark.parametrize(("info", "cfg"), VALID, ids=VALID_IDS)
def test_state_dict_round_trip(info: OptimizerInfo, cfg: dict) -> None:
    x, y = _data()
    model = _model()
    opt = _make(info, cfg, model)
    step = _stepper(info, model, opt, x, y)
    for _ in range(3):
        step()
    clone = copy.deepcopy(model)
    opt2 = _make(info, cfg, clone)
    opt2.load_state_dict(copy.deepcopy(opt.state_dict()))
    step2 = _stepper(info, clone, opt2, x, y)
    for _ in range(3):
        step()
        step2()
    for p, q in zip(model.parameters(), clone.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=0, atol=0)
    # a second state_dict has the same structure
    assert opt.state_dict()["param_groups"] == opt2.state_dict()["param_groups"]


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("info", REGISTRY, ids=IDS)
def test_low_precision_smoke_step(info: OptimizerInfo, dtype: torch.dtype) -> None:
    model = _model(dtype)
    x, y = _data(dtype)
    opt = _make(info, info.valid[0], model)
    before = [p.detach().clone() for p in model.parameters()]
    _stepper(info, model, opt, x, y)()
    for p in model.parameters():
        assert p.dtype == dtype
        assert torch.all(torch.isfinite(p.float()))
    assert any(
        not torch.equal(p, b) for p, b in zip(model.parameters(), before, strict=True)
    )


@pytest.mark.parametrize("info", REGISTRY, ids=IDS)
def test_seeded_runs_reproducible_and_param_groups(info: OptimizerInfo) -> None:
    x, y = _data()

    def run() -> list[torch.Tensor]:
        model = _model()
        cfg = dict(info.valid[0])
        if info.cls is Adahessian:
            cfg["seed"] = 0
        lr = cfg.pop("lr")
        groups = [
            {"params": list(model[0].parameters())},
            {"params": list(model[3].parameters()), "lr": lr / 2},
        ]
        opt = info.cls(groups, lr=lr, **cfg)
        step = _stepper(info, model, opt, x, y)
        for _ in range(4):
            step()
        return [p.detach().clone() for p in model.parameters()]

    for a, b in zip(run(), run(), strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize("info", REGISTRY, ids=IDS)
def test_zero_grad_and_repr_like_torch(info: OptimizerInfo) -> None:
    model = _model()
    x, y = _data()
    opt = _make(info, info.valid[0], model)
    _stepper(info, model, opt, x, y)()
    opt.zero_grad()
    assert all(p.grad is None for p in model.parameters())
    assert info.cls.__name__ in repr(opt)
