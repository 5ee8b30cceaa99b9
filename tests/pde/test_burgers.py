"""BurgersProblem: the residual hook, the Cole--Hopf reference and noisy data."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from itersolve.pde import (
    PINN,
    AdamThenLBFGS,
    BurgersProblem,
    ConvectionProblem,
    LagrangianPINN,
    SensorData,
    train_pinn,
)
from itersolve.pde.pinn import burgers_cole_hopf

F64 = torch.float64


class ColeHopfPINN(PINN):
    """The network replaced by the Cole--Hopf formula, differentiable in
    ``(x, t)`` (the same Gauss--Hermite sum as :func:`burgers_cole_hopf`)."""

    def __init__(self, nu: float, n_nodes: int = 100) -> None:
        super().__init__(width=2, depth=1)
        nodes, weights = np.polynomial.hermite.hermgauss(n_nodes)
        self.nu = nu
        self.z = torch.as_tensor(nodes, dtype=F64)
        self.log_w = torch.as_tensor(np.log(weights), dtype=F64)

    def field(self, x, t, length):
        y = x[..., None] - torch.sqrt(4 * self.nu * t)[..., None] * self.z
        exponent = self.log_w - torch.cos(math.pi * y) / (2 * math.pi * self.nu)
        scaled = torch.exp(exponent - exponent.amax(-1, keepdim=True).detach())
        return -(torch.sin(math.pi * y) * scaled).sum(-1) / scaled.sum(-1)


@pytest.mark.parametrize("nu", [0.01 / math.pi, 0.05])
def test_cole_hopf_solution_has_zero_residual(nu):
    problem = BurgersProblem(nu, n_x=40, n_t=6)
    model = ColeHopfPINN(nu)
    x, t = problem.collocation(seed=2)
    # the differentiable formula is the reference's
    grid = model.predict(problem, x, t)
    assert torch.allclose(grid, burgers_cole_hopf(x, t, nu), atol=1e-13, rtol=0)
    res = model.residuals(problem, x, t)
    tt, xx = torch.meshgrid(t, x, indexing="ij")
    xx = xx.reshape(-1).requires_grad_(True)
    tt = tt.reshape(-1).requires_grad_(True)
    u = model.field(xx, tt, problem.length)
    (u_x,) = torch.autograd.grad(u.sum(), xx, create_graph=True)
    (u_xx,) = torch.autograd.grad(u_x.sum(), xx)
    # relative to the size of the largest term (u_xx ~ 1e4 near the shock)
    scale = float((nu * u_xx).abs().max() + (u * u_x).detach().abs().max())
    worst = float(res["pde"].detach().abs().max())
    assert worst <= 1e-9 * scale, (worst, scale)
    assert float(res["ic"].abs().max()) <= 1e-13
    assert float(res["bc"].abs().max()) <= 1e-12
    assert "data" not in res


def test_short_burgers_training_lowers_the_error():
    problem = BurgersProblem(n_x=32, n_t=8, eval_x=64, eval_t=20)
    torch.manual_seed(0)
    model = PINN(width=16, depth=2)
    sol = train_pinn(
        model, problem, AdamThenLBFGS(adam_steps=150, lr=1e-2), seed=0, record=True
    )
    errors = sol.trace.as_dict()["relative_l2"]
    assert sol.success
    assert errors[-1] < 0.5 * errors[0]
    assert {"loss_pde", "loss_ic", "loss_bc"} <= set(sol.trace.as_dict())


def test_data_term_and_noisy_data():
    base = BurgersProblem(n_x=8, n_t=3)
    problem = base.with_noisy_data(40, noise=0.1, seed=3)
    data = problem.observations
    assert isinstance(data, SensorData) and base.observations is None
    clean = problem.exact(data.x, data.t)
    assert data.noise_std == pytest.approx(0.1 * float(clean.std()))
    # seeded: the same sensors and noise again, other seeds differ
    again = base.with_noisy_data(40, noise=0.1, seed=3).observations
    assert torch.equal(again.u, data.u)
    assert not torch.equal(base.with_noisy_data(40, seed=4).observations.u, data.u)
    assert bool(data.x.min() >= -1) and bool(data.x.max() <= 1)
    torch.manual_seed(0)
    model = PINN(width=4, depth=1).double()
    res = model.residuals(problem, *problem.collocation())
    assert res["data"].shape == (40,)
    expected = model.field(data.x, data.t, 2.0) - data.u
    assert torch.allclose(res["data"], expected)
    assert sorted(model.losses(problem, *problem.collocation())) == [
        "bc",
        "data",
        "ic",
        "loss",
        "pde",
    ]


def test_convection_terms_unchanged():
    torch.manual_seed(0)
    model = PINN(width=4, depth=1).double()
    problem = ConvectionProblem(3.0, n_x=4, n_t=2)
    assert sorted(model.residuals(problem, *problem.collocation())) == ["ic", "pde"]


def test_reference_is_cached_and_copied():
    problem = BurgersProblem(eval_x=16, eval_t=4)
    ref = problem.reference()
    ref += 1.0
    assert not torch.equal(problem.reference(), ref)
    x0 = problem.eval_grid()[0]
    assert torch.allclose(problem.reference()[0], -torch.sin(math.pi * x0), atol=1e-15)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"nu": -0.01}, ValueError, r"nu must be > 0, got -0\.01"),
        ({"nu": 0.0}, ValueError, r"nu must be > 0, got 0\.0"),
        ({"nu": "a"}, TypeError, r"nu must be a real number"),
        ({"n_x": 1}, ValueError, r"n_x must be an int >= 2, got 1"),
        ({"t_final": 0.0}, ValueError, r"t_final must be > 0"),
        ({"observations": (1, 2)}, TypeError, r"observations must be a SensorData"),
    ],
)
def test_bad_input(kwargs, error, match):
    with pytest.raises(error, match=match):
        BurgersProblem(**kwargs)


def test_bad_data_and_models():
    t = torch.zeros(3, dtype=F64)
    bad = SensorData(t, t, torch.zeros(2, dtype=F64), 0.1)
    with pytest.raises(ValueError, match=r"equal length"):
        BurgersProblem(observations=bad)
    with pytest.raises(ValueError, match=r"noise must be >= 0, got -0\.1"):
        BurgersProblem().with_noisy_data(5, noise=-0.1)
    with pytest.raises(ValueError, match=r"n_sensors must be an int >= 1, got 0"):
        BurgersProblem().with_noisy_data(0)
    with pytest.raises(TypeError, match=r"LagrangianPINN trains on a Convection"):
        train_pinn(LagrangianPINN(width=4), BurgersProblem(n_x=4, n_t=2))
