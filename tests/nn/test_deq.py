"""DEQLayer: training, gradients vs an unrolled reference, dropout masks fixed
across solver iterations, info and failure policy, bad input."""

from __future__ import annotations

import pytest
import torch

from itersolve import ConvergenceError, ConvergenceWarning, Status
from itersolve.fixed_point import Anderson, FixedPointIteration
from itersolve.nn import DEQLayer, VariationalDropout

F64 = torch.float64
N, B = 6, 5


class Cell(torch.nn.Module):
    """``f(z, x) = tanh(W z + U x + b)`` with ``||W||_2 = rho`` at the start."""

    def __init__(self, rho: float = 0.5, seed: int = 0, p: float = 0.0) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        self.W = torch.nn.Parameter(torch.randn(N, N, generator=gen, dtype=F64))
        with torch.no_grad():
            self.W.mul_(rho / torch.linalg.matrix_norm(self.W, ord=2))
        self.U = torch.nn.Parameter(torch.randn(N, N, generator=gen, dtype=F64))
        self.b = torch.nn.Parameter(0.1 * torch.randn(N, generator=gen, dtype=F64))
        self.drop = VariationalDropout(p)

    def forward(self, z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.drop(z @ self.W.T) + x @ self.U.T + self.b)


def _data(seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(B, N, generator=gen, dtype=F64)
    return x, torch.sin(x.sum(1, keepdim=True)).expand(B, N).clone()


def test_training_decreases_the_loss() -> None:
    torch.manual_seed(0)
    layer = DEQLayer(Cell(rho=0.5), batch_dim=0)
    head = torch.nn.Linear(N, N, dtype=F64)
    x, y = _data()
    params = [*layer.parameters(), *head.parameters()]
    opt = torch.optim.Adam(params, lr=1e-2)
    losses = []
    for _ in range(15):
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(head(layer(x)), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
        assert layer.info is not None and layer.info.forward is not None
        assert layer.info.forward.success
        assert layer.info.backward is not None and layer.info.backward.success
    assert losses[-1] < 0.8 * losses[0], losses


@pytest.mark.parametrize("batch_dim", [None, 0])
def test_gradients_match_unrolled_reference(batch_dim: int | None) -> None:
    cell = Cell(rho=0.5)
    layer = DEQLayer(
        cell,
        Anderson(rtol=1e-13),
        backward_method=Anderson(rtol=1e-13),
        batch_dim=batch_dim,
    )
    x, _ = _data()
    x = x.requires_grad_()
    weights = torch.linspace(-1, 1, B * N, dtype=F64).reshape(B, N)
    (layer(x) * weights).sum().backward()
    got = [x.grad.clone(), *(p.grad.clone() for p in cell.parameters())]

    # Reference: autograd through 150 plain iterations (error 0.5^150).
    x.grad = None
    cell.zero_grad()
    z = torch.zeros(B, N, dtype=F64)
    for _ in range(150):
        z = cell(z, x)
    (z * weights).sum().backward()
    want = [x.grad, *(p.grad for p in cell.parameters())]
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(g, w, rtol=1e-6, atol=1e-10)


def test_phantom_backward_approximates_implicit() -> None:
    x, _ = _data()
    grads = {}
    for backward in ("implicit", "phantom"):
        cell = Cell(rho=0.3)
        DEQLayer(cell, backward=backward, phantom_steps=20)(x).sum().backward()
        grads[backward] = cell.W.grad
    torch.testing.assert_close(grads["phantom"], grads["implicit"], rtol=1e-6, atol=0)
    assert not torch.equal(grads["phantom"], grads["implicit"])


def _record_masks(layer: DEQLayer, x: torch.Tensor) -> list[torch.Tensor]:
    """The mask applied at each cell evaluation of one forward and backward
    (all ones where the dropout passed its input through)."""
    seen: list[torch.Tensor] = []

    def hook(module, args, out):
        if out is args[0]:
            seen.append(torch.ones_like(out))
        else:
            mask = module.mask.clone()
            torch.testing.assert_close(out, args[0] * mask, rtol=0, atol=0)
            seen.append(mask)

    handle = layer.cell.drop.register_forward_hook(hook)
    try:
        layer(x).sum().backward()
    finally:
        handle.remove()
    return seen


def test_dropout_mask_fixed_within_a_forward_new_between_forwards() -> None:
    torch.manual_seed(0)
    layer = DEQLayer(Cell(rho=0.5, p=0.3), batch_dim=0)
    x, _ = _data()
    first = _record_masks(layer, x)
    assert len(first) > 5  # many solver iterations plus the backward's evaluation
    for mask in first[1:]:
        assert torch.equal(mask, first[0])
    assert set(first[0].unique().tolist()) == {0.0, 1 / 0.7}
    assert layer.info.forward.success  # the masked map has a fixed point
    second = _record_masks(layer, x)
    assert all(torch.equal(m, second[0]) for m in second)
    assert not torch.equal(first[0], second[0])


def test_backward_after_another_forward_uses_its_own_mask() -> None:
    torch.manual_seed(0)
    cell = Cell(rho=0.5, p=0.3)
    layer = DEQLayer(cell, batch_dim=0)
    x, _ = _data()
    z1 = layer(x)
    mask1 = cell.drop.mask.clone()
    z2 = layer(x)  # draws a new mask
    assert not torch.equal(mask1, cell.drop.mask)
    (g1,) = torch.autograd.grad(z1.sum(), cell.W)
    (g2,) = torch.autograd.grad(z2.sum(), cell.W)
    assert not torch.allclose(g1, g2)
    # g1 is the gradient of the fixed point of the map with mask1.
    cell.drop.mask = mask1
    z = torch.zeros_like(x)
    for _ in range(150):
        z = cell(z, x)
    (want,) = torch.autograd.grad(z.sum(), cell.W)
    torch.testing.assert_close(g1, want, rtol=1e-6, atol=1e-10)


def test_eval_mode_turns_dropout_off() -> None:
    x, _ = _data()
    layer = DEQLayer(Cell(rho=0.5, p=0.3), batch_dim=0).eval()
    plain = DEQLayer(Cell(rho=0.5, p=0.0), batch_dim=0)
    assert not layer.cell.drop.training
    with torch.no_grad():
        torch.testing.assert_close(layer(x), plain(x))
    assert all(torch.equal(m, torch.ones_like(m)) for m in _record_masks(layer, x))
    assert layer.train().cell.drop.training


def test_z_init_callable_and_other_shape() -> None:
    class Proj(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.A = torch.nn.Parameter(0.1 * torch.ones(3, N, dtype=F64))

        def forward(self, z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
            return torch.tanh(0.5 * z + x @ self.A.T)

    x, _ = _data()
    layer = DEQLayer(Proj(), z_init=lambda x: x.new_zeros(x.shape[0], 3))
    z = layer(x)
    assert z.shape == (B, 3)
    torch.testing.assert_close(z, layer.cell(z, x))


def test_non_convergence_warns_or_raises() -> None:
    x, _ = _data()
    cell = Cell(rho=0.5)
    layer = DEQLayer(cell, FixedPointIteration(max_steps=3))
    with pytest.warns(ConvergenceWarning):
        z = layer(x)
    assert layer.info.forward.status is Status.MAX_STEPS
    assert torch.isfinite(z).all()
    strict = DEQLayer(cell, FixedPointIteration(max_steps=3), throw=True)
    with pytest.raises(ConvergenceError):
        strict(x)


def test_inputs_not_mutated() -> None:
    x, _ = _data()
    before = x.clone()
    DEQLayer(Cell(p=0.2), batch_dim=0)(x)
    assert torch.equal(x, before)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"cell": lambda z, x: z}, TypeError, "cell must be a torch.nn.Module"),
        ({"backward": "unrolled"}, ValueError, "backward must be"),
        ({"z_init": "ones"}, ValueError, "z_init must be 'zeros'"),
        ({"z_init": 3}, TypeError, "z_init must be 'zeros'"),
        ({"forward": torch.optim.SGD}, TypeError, "forward must be a method"),
        ({"phantom_steps": -1}, ValueError, "phantom_steps"),
    ],
)
def test_bad_arguments(kwargs: dict, error: type, match: str) -> None:
    args = {"cell": Cell(), **kwargs}
    with pytest.raises(error, match=match):
        DEQLayer(**args)


def test_bad_input_and_dropout_rate() -> None:
    with pytest.raises(TypeError, match="x must be a torch tensor"):
        DEQLayer(Cell())([1.0] * N)
    with pytest.raises(ValueError, match=r"p must be a number in \[0, 1\), got 1"):
        VariationalDropout(1)
