"""HomoODE: the exact Newton homotopy ends at the DEQ fixed point, the learned
field's gradients are backprop through the Runge-Kutta steps, bad input is
rejected."""

from __future__ import annotations

import pytest
import torch
from torchdiffeq import odeint

from itersolve import ConvergenceError, ConvergenceWarning
from itersolve.fixed_point import Anderson, fixed_point
from itersolve.linear import CG
from itersolve.nn import DEQLayer, HomoODE, SharedStart

D, BATCH = 6, 3


class Cell(torch.nn.Module):
    """``tanh(W z + x + b)`` with ``||W||_2 = gain`` (a contraction for gain < 1)."""

    def __init__(self, d: int = D, gain: float = 0.7, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.lin = torch.nn.Linear(d, d)
        torch.nn.init.orthogonal_(self.lin.weight, gain=gain)

    def forward(self, z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.lin(z) + x)


def _data(seed: int = 1) -> tuple[Cell, torch.Tensor]:
    cell = Cell().double()
    x = torch.randn(
        BATCH, D, dtype=torch.float64, generator=torch.Generator().manual_seed(seed)
    )
    return cell, x


def _fixed_point(cell: Cell, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        sol = fixed_point(
            lambda z: cell(z, x), torch.zeros_like(x), Anderson(rtol=1e-14), batch_dim=0
        )
    assert sol.success
    return sol.x


# -- the exact homotopy ends at the fixed point ------------------------------


@pytest.mark.parametrize(
    ("method", "options", "tol"),
    [
        # dopri5's local error control at 1e-9 over ~10 steps: global error
        # well under 1e-6 on this smooth, contractive path.
        ("dopri5", {"rtol": 1e-9, "atol": 1e-9}, 1e-6),
        # RK4's global error is O(h^4): (1/8)^4 = 2.4e-4 times a constant of
        # order ||dz/dlam||, which is O(1) here.
        ("rk4", {"steps": 8}, 1e-3),
    ],
)
def test_newton_endpoint_is_the_anderson_fixed_point(method, options, tol):
    cell, x = _data()
    layer = HomoODE(cell, field="newton", method=method, **options)
    z = layer(x).detach()
    z_star = _fixed_point(cell, x)
    assert layer.info.success
    assert float((z - z_star).abs().max()) <= tol * float(z_star.abs().max())
    stats = layer.info.stats
    assert stats["fevals"] == stats["field_evals"] + 1  # one more for f(z0)
    assert stats["jvps"] >= stats["field_evals"]


def test_newton_starts_from_any_point():
    cell, x = _data()
    layer = HomoODE(cell, "newton", rtol=1e-9, atol=1e-9, z_init=lambda x: 3 * x)
    z = layer(x).detach()
    assert float((z - _fixed_point(cell, x)).abs().max()) < 1e-6
    assert layer.init_loss is not None and layer.init_loss.ndim == 0


def test_newton_gradients_match_finite_differences_of_the_fixed_point():
    cell, x = _data()
    x = x.clone().requires_grad_()
    weight = torch.randn(BATCH, D, dtype=torch.float64)
    layer = HomoODE(cell, "newton", rtol=1e-9, atol=1e-9)
    (layer(x) * weight).sum().backward()
    assert layer.info.extras["adjoint"].success
    eps = 1e-6

    def loss() -> float:
        return float((_fixed_point(cell, x.detach()) * weight).sum())

    W = cell.lin.weight
    for i, j in [(0, 0), (2, 5), (4, 1)]:
        with torch.no_grad():
            W[i, j] += eps
            up = loss()
            W[i, j] -= 2 * eps
            down = loss()
            W[i, j] += eps
        assert abs((up - down) / (2 * eps) - float(W.grad[i, j])) < 1e-6
    # The gradient in x equals the DEQ layer's implicit one on the same cell.
    x2 = x.detach().clone().requires_grad_()
    (DEQLayer(cell, Anderson(rtol=1e-13), batch_dim=0)(x2) * weight).sum().backward()
    torch.testing.assert_close(x.grad, x2.grad, atol=1e-7, rtol=0)


def test_newton_with_a_cell_that_ignores_z():
    # J = 0: dz/dlam = f(z0) - z0 is constant and z(1) = f(z0), the fixed point.
    x = torch.randn(BATCH, D, dtype=torch.float64, requires_grad=True)
    layer = HomoODE(_Functional(lambda z, x: torch.tanh(x)), "newton", "rk4", steps=1)
    z = layer(x)
    torch.testing.assert_close(z, torch.tanh(x))
    assert layer.info.stats["jvps"] == 0
    z.sum().backward()
    torch.testing.assert_close(x.grad, 1 - torch.tanh(x.detach()) ** 2)


def test_newton_inner_solver_failure_is_reported():
    cell, x = _data()
    layer = HomoODE(cell, "newton", "rk4", steps=1, linear_method=CG(max_steps=1))
    with pytest.warns(ConvergenceWarning):
        layer(x)
    assert layer.info.status.name == "MAX_STEPS"


# -- the learned field --------------------------------------------------------


def test_learned_rk4_gradients_match_finite_differences():
    cell, x = _data()
    x = x.clone().requires_grad_()
    layer = HomoODE(cell, method="rk4", steps=3, z_init="input")
    params = (x, cell.lin.weight, cell.lin.bias)

    def endpoint(x, W, b):
        def field(z, x):
            return torch.tanh(z @ W.T + b + x)

        local = HomoODE(_Functional(field), method="rk4", steps=3, z_init="input")
        return local(x)

    assert torch.autograd.gradcheck(endpoint, params, eps=1e-6, atol=1e-7)
    out = layer(x)
    assert layer.info.stats["fevals"] == 12 and layer.info.num_steps == 3
    torch.testing.assert_close(out, endpoint(*params))


class _Functional(torch.nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, z, x):
        return self.fn(z, x)


def test_learned_dopri5_matches_torchdiffeq_and_counts_alike():
    cell, x = _data()
    layer = HomoODE(cell, rtol=1e-9, atol=1e-9)
    z = layer(x).detach()
    calls = []

    def field(t, z):
        calls.append(1)
        return cell(z, x)

    with torch.no_grad():
        ref = odeint(
            field,
            torch.zeros_like(x),
            torch.tensor([0.0, 1.0]).double(),
            method="dopri5",
            rtol=1e-9,
            atol=1e-9,
        )[-1]
    assert float((z.detach() - ref).abs().max()) < 1e-8
    # Same tableau, same controller: the evaluation counts agree closely.
    assert abs(layer.info.stats["fevals"] - len(calls)) <= 0.2 * len(calls)


def test_learned_init_is_trained_by_init_loss_only():
    cell, x = _data()
    init = torch.nn.Linear(D, D).double()
    layer = HomoODE(cell, method="rk4", steps=2, z_init=init)
    assert any(p is init.weight for p in layer.parameters())
    layer(x).sum().backward()
    assert init.weight.grad is None and cell.lin.weight.grad is not None
    layer.init_loss.backward()
    assert init.weight.grad is not None
    attached = HomoODE(cell, method="rk4", steps=2, z_init=init, detach_init=False)
    init.weight.grad = None
    attached(x).sum().backward()
    assert init.weight.grad is not None


def test_float32_input_unmutated_and_failure_statuses():
    cell, x = _data()
    cell = cell.float()
    x32 = x.float()
    before = x32.clone()
    z = HomoODE(cell)(x32)
    assert z.dtype == torch.float32 and torch.equal(x32, before)
    with pytest.warns(ConvergenceWarning):
        layer = HomoODE(cell, rtol=1e-9, atol=1e-9, max_steps=2)
        layer(x32)
    assert layer.info.status.name == "MAX_STEPS"
    with pytest.raises(ConvergenceError):
        HomoODE(cell, rtol=1e-9, atol=1e-9, max_steps=2, throw=True)(x32)


# -- bad input ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"cell": lambda z, x: z}, TypeError, "cell must be a torch.nn.Module"),
        ({"field": "exact"}, ValueError, "field must be"),
        ({"method": "euler"}, ValueError, "method must be one of"),
        ({"steps": 0}, ValueError, "steps must be an int >= 1, got 0"),
        ({"steps": 2.0}, ValueError, "steps must be an int"),
        ({"max_steps": 0}, ValueError, "max_steps must be an int >= 1"),
        ({"rtol": -1.0}, ValueError, "rtol must be >= 0"),
        ({"rtol": 0.0, "atol": 0.0}, ValueError, "rtol and atol cannot both be 0"),
        ({"z_init": "ones"}, ValueError, "z_init must be"),
        ({"z_init": 3}, TypeError, "z_init must be"),
        ({"linear_method": Anderson()}, TypeError, "linear_method must be"),
    ],
)
def test_bad_arguments(kwargs, error, match):
    options = {"cell": Cell()} | kwargs
    with pytest.raises(error, match=match):
        HomoODE(**options)


def test_bad_calls():
    with pytest.raises(TypeError, match="x must be a floating torch tensor"):
        HomoODE(Cell())(torch.ones(2, D, dtype=torch.int64))
    with pytest.raises(ValueError, match="must return a tensor of z's shape"):
        HomoODE(_Functional(lambda z, x: z[:, :2]))(torch.ones(2, D))


def test_shared_start_is_one_point_for_every_sample_and_learns_the_endpoint():
    cell, x = _data()
    start = SharedStart(D)
    layer = HomoODE(cell, method="rk4", steps=2, z_init=start)
    opt = torch.optim.SGD(start.parameters(), lr=1.0)
    layer(x)
    target = layer.info.x  # the detached endpoint init_loss pulls towards
    before = (start(x) - target).norm().item()
    opt.zero_grad()
    layer.init_loss.backward()
    opt.step()
    assert (start(x) - target).norm().item() < before
    out = start(x)
    assert out.dtype == torch.float64 and torch.equal(out[0], out[1])
    with pytest.raises(ValueError, match="shape must name at least one"):
        SharedStart()
    with pytest.raises(ValueError, match=r"shape\[1\] must be an int >= 1, got 0"):
        SharedStart(3, 0)
