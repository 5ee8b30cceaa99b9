"""implicit_vjp and fixed_point_layer: gradients vs dense solves, finite
differences and unrolled autograd; phantom backward; failures reported."""

from __future__ import annotations

import pytest
import torch

from itersolve import ConvergenceError, ConvergenceWarning, Status
from itersolve.fixed_point import (
    Anderson,
    Broyden,
    FixedPointIteration,
    NewtonKrylov,
    fixed_point_layer,
    implicit_vjp,
)
from itersolve.linear import GMRES
from itersolve.optimize import GradientDescent

F64 = torch.float64
N, B = 8, 3

ADJOINT_METHODS = {
    "anderson": Anderson(rtol=1e-12),
    "iteration": FixedPointIteration(rtol=1e-12, max_steps=5000),
    "broyden": Broyden(rtol=1e-12),
    "newton-krylov": NewtonKrylov(rtol=1e-12),
    "gmres": GMRES(rtol=1e-12),
}
TIGHT = Anderson(rtol=1e-13)


class Cell(torch.nn.Module):
    """``f(z, x) = tanh(W z + x)`` with ``||W||_2 = rho``."""

    def __init__(self, n: int, rho: float, seed: int, dtype=F64) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        self.lin = torch.nn.Linear(n, n, bias=False, dtype=dtype)
        W = torch.randn(n, n, generator=gen, dtype=F64)
        W *= rho / torch.linalg.matrix_norm(W, ord=2)
        with torch.no_grad():
            self.lin.weight.copy_(W.to(dtype))

    def forward(self, z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.lin(z) + x)


def _inputs(seed: int = 1, dtype=F64) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(B, N, generator=gen, dtype=F64).to(dtype)
    c = torch.randn(B, N, generator=gen, dtype=F64).to(dtype)
    return x, c


def _loss(z: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    return (c * z).sum() + 0.5 * (z**2).sum()


def _layer_grads(cell, x, c, **kw):
    x = x.clone().requires_grad_()
    cell.zero_grad()
    z = fixed_point_layer(cell, x, forward=TIGHT, batch_dim=0, **kw)
    _loss(z, c).backward()
    return x.grad.clone(), cell.lin.weight.grad.clone()


def _unrolled_grads(cell, x, c, steps: int = 400):
    """Autograd through ``steps`` plain iterations (0.8^400 ~ 1e-39)."""
    x = x.clone().requires_grad_()
    cell.zero_grad()
    z = torch.zeros_like(x)
    for _ in range(steps):
        z = cell(z, x)
    _loss(z, c).backward()
    return x.grad.clone(), cell.lin.weight.grad.clone()


@pytest.fixture(scope="module")
def cell() -> Cell:
    return Cell(N, rho=0.8, seed=0)


@pytest.fixture(scope="module")
def unrolled(cell):
    x, c = _inputs()
    return _unrolled_grads(cell, x, c)


# -- implicit_vjp -------------------------------------------------------------


@pytest.mark.parametrize("name", list(ADJOINT_METHODS))
def test_implicit_vjp_matches_dense_adjoint(cell, name):
    x, _ = _inputs()
    x = x[0]
    with torch.no_grad():
        z = cell(torch.zeros(N, dtype=F64), x)
        for _ in range(400):
            z = cell(z, x)
    g = torch.linspace(-1.0, 2.0, N, dtype=F64)
    z_before, g_before = z.clone(), g.clone()
    J = torch.autograd.functional.jacobian(lambda v: cell(v, x), z)
    exact = torch.linalg.solve(torch.eye(N, dtype=F64) - J.T, g)
    u, sol = implicit_vjp(lambda v: cell(v, x), z, g, ADJOINT_METHODS[name])
    assert sol.success, sol.message
    assert sol.status is Status.SUCCESS
    torch.testing.assert_close(u, exact, rtol=1e-9, atol=1e-10)
    assert u.shape == z.shape and u.dtype == F64 and not u.requires_grad
    assert torch.equal(z, z_before) and torch.equal(g, g_before)
    assert sol.stats["adjoint_residual"] <= 1e-10 * float(exact.norm())
    if name != "gmres":
        assert sol.stats["fevals"] >= 2
    else:
        assert sol.stats["matvecs"] >= 2


def test_implicit_vjp_batch_is_per_sample(cell):
    x, c = _inputs()
    with torch.no_grad():
        z = torch.zeros_like(x)
        for _ in range(400):
            z = cell(z, x)
    batch_u, sol = implicit_vjp(
        lambda v: cell(v, x), z, c, Anderson(rtol=1e-12), batch_dim=0
    )
    assert sol.success and len(sol.stats["sample_fevals"]) == B
    for b in range(B):
        u_b, _ = implicit_vjp(
            lambda v, b=b: cell(v, x[b]), z[b], c[b], Anderson(rtol=1e-12)
        )
        torch.testing.assert_close(batch_u[b], u_b, rtol=1e-9, atol=1e-10)


def _noncontractive() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``f(z) = A z + b`` with eigenvalue 1.5: the fixed point exists
    (``I - A`` is invertible) but neither iteration converges."""
    A = torch.tensor([[1.5, 0.1, 0.0], [0.0, 0.5, 0.2], [0.0, 0.0, 0.2]], dtype=F64)
    b = torch.tensor([1.0, -1.0, 0.5], dtype=F64)
    z = torch.linalg.solve(torch.eye(3, dtype=F64) - A, b)
    return A, b, z


def test_implicit_vjp_reports_a_failed_adjoint_solve():
    A, b, z = _noncontractive()
    g = torch.ones(3, dtype=F64)
    with pytest.warns(ConvergenceWarning):
        u, sol = implicit_vjp(
            lambda v: A @ v + b, z, g, FixedPointIteration(max_steps=200)
        )
    assert not sol.success
    assert sol.status in (Status.DIVERGED, Status.MAX_STEPS)
    assert torch.isfinite(u).all()
    # The reported residual is the true one of the returned u, and it is large.
    true = torch.linalg.vector_norm(A.T @ u + g - u)
    assert sol.stats["adjoint_residual"] == pytest.approx(float(true))
    assert sol.stats["adjoint_residual"] > 1e-2
    with pytest.raises(ConvergenceError) as err:
        implicit_vjp(
            lambda v: A @ v + b, z, g, FixedPointIteration(max_steps=200), throw=True
        )
    assert not err.value.solution.success
    # The adjoint is well defined (I - A^T invertible): a linear solver finds it.
    u, sol = implicit_vjp(lambda v: A @ v + b, z, g, GMRES(rtol=1e-12))
    assert sol.success
    exact = torch.linalg.solve(torch.eye(3, dtype=F64) - A.T, g)
    torch.testing.assert_close(u, exact, rtol=1e-10, atol=1e-12)


def test_implicit_vjp_of_a_map_constant_in_z():
    z = torch.zeros(4, dtype=F64)
    g = torch.arange(4, dtype=F64)
    u, sol = implicit_vjp(lambda v: torch.ones(4, dtype=F64), z, g)
    assert sol.success
    torch.testing.assert_close(u, g)


def test_implicit_vjp_bad_input():
    z = torch.zeros(3, dtype=F64)
    f = torch.tanh
    with pytest.raises(TypeError, match="z_star must be a torch tensor"):
        implicit_vjp(f, [0.0, 0.0, 0.0], z)
    with pytest.raises(TypeError, match="grad_out must be a real floating"):
        implicit_vjp(f, z, torch.zeros(3, dtype=torch.int64))
    with pytest.raises(
        ValueError, match=r"grad_out must have the shape.*\(3,\).*\(2,\)"
    ):
        implicit_vjp(f, z, torch.zeros(2, dtype=F64))
    with pytest.raises(TypeError, match="method must be a method of itersolve"):
        implicit_vjp(f, z, z, GradientDescent())
    with pytest.raises(TypeError, match="f must be callable"):
        implicit_vjp(3, z, z)
    with pytest.raises(ValueError, match="f must keep the shape of z"):
        implicit_vjp(lambda v: v[:2], z, z)
    with pytest.raises(TypeError, match="f must return a torch tensor"):
        implicit_vjp(lambda v: 1.0, z, z)


# -- fixed_point_layer ---------------------------------------------------------


@pytest.mark.parametrize("name", list(ADJOINT_METHODS))
def test_layer_matches_unrolled_autograd(cell, unrolled, name):
    x, c = _inputs()
    gx, gW = _layer_grads(cell, x, c, backward_method=ADJOINT_METHODS[name])
    torch.testing.assert_close(gx, unrolled[0], rtol=1e-8, atol=1e-9)
    torch.testing.assert_close(gW, unrolled[1], rtol=1e-8, atol=1e-9)


def test_layer_matches_finite_differences(cell):
    x, c = _inputs()
    gx, gW = _layer_grads(cell, x, c)
    eps = 1e-5

    def loss_at(x_, W_):
        with torch.no_grad():
            saved = cell.lin.weight.clone()
            cell.lin.weight.copy_(W_)
            z = fixed_point_layer(cell, x_, forward=TIGHT, batch_dim=0)
            cell.lin.weight.copy_(saved)
        return float(_loss(z, c))

    W = cell.lin.weight.detach().clone()
    fd_x = torch.zeros_like(x)
    for idx in [(0, 0), (1, 3), (2, 7), (0, 5)]:
        e = torch.zeros_like(x)
        e[idx] = eps
        fd_x[idx] = (loss_at(x + e, W) - loss_at(x - e, W)) / (2 * eps)
        assert abs(fd_x[idx] - gx[idx]) <= 1e-6 * max(1.0, abs(float(gx[idx])))
    for idx in [(0, 0), (2, 5), (7, 1), (4, 4)]:
        e = torch.zeros_like(W)
        e[idx] = eps
        fd = (loss_at(x, W + e) - loss_at(x, W - e)) / (2 * eps)
        assert abs(fd - gW[idx]) <= 1e-6 * max(1.0, abs(float(gW[idx])))


def test_layer_gradcheck_tiny():
    gen = torch.Generator().manual_seed(3)
    W = (0.3 * torch.randn(3, 3, generator=gen, dtype=F64)).requires_grad_()
    x = torch.randn(3, generator=gen, dtype=F64).requires_grad_()

    def layer(x, W):
        return fixed_point_layer(
            lambda z, x: torch.tanh(W @ z + x),
            x,
            W,
            forward=TIGHT,
            backward_method=Anderson(rtol=1e-13),
        )

    assert torch.autograd.gradcheck(layer, (x, W), eps=1e-6, atol=1e-6)


def test_layer_info_and_input_untouched(cell):
    x, c = _inputs()
    x = x.clone().requires_grad_()
    x_before = x.detach().clone()
    z, info = fixed_point_layer(cell, x, batch_dim=0, return_info=True)
    assert info.forward is not None and info.forward.success
    assert info.backward is None
    torch.testing.assert_close(z, cell(z, x), rtol=0, atol=1e-7)
    _loss(z, c).backward()
    assert info.backward is not None and info.backward.success
    assert info.backward.stats["fevals"] >= 2
    assert torch.equal(x.detach(), x_before)


def test_phantom_close_to_implicit_when_strongly_contractive():
    cell = Cell(N, rho=0.2, seed=5)
    x, c = _inputs(seed=7)
    implicit = _layer_grads(cell, x, c, backward_method=Anderson(rtol=1e-13))
    phantom = _layer_grads(cell, x, c, backward="phantom", phantom_steps=12)
    jfb = _layer_grads(cell, x, c, backward="phantom", phantom_steps=0)
    for exact, approx, rough in zip(implicit, phantom, jfb, strict=True):
        scale = float(exact.abs().max())
        assert float((approx - exact).abs().max()) <= 1e-7 * scale
        # With no Neumann term the gradient is visibly off: the check can fail.
        assert float((rough - exact).abs().max()) >= 1e-3 * scale
    damped = _layer_grads(
        cell, x, c, backward="phantom", phantom_steps=30, phantom_damping=0.7
    )
    for exact, approx in zip(implicit, damped, strict=True):
        assert float((approx - exact).abs().max()) <= 1e-6 * float(exact.abs().max())


def test_phantom_reports_its_residual():
    cell = Cell(N, rho=0.5, seed=2)
    x, c = _inputs()
    x = x.clone().requires_grad_()
    residuals = []
    for steps in (2, 10):
        z, info = fixed_point_layer(
            cell, x, backward="phantom", phantom_steps=steps, return_info=True
        )
        _loss(z, c).backward()
        assert info.backward is None and info.phantom_residual is not None
        residuals.append(info.phantom_residual)
    assert residuals[1] < 1e-2 * residuals[0]


def test_layer_float32_twin(cell, unrolled):
    cell32 = Cell(N, rho=0.8, seed=0, dtype=torch.float32)
    x, c = _inputs(dtype=torch.float32)
    x = x.clone().requires_grad_()
    z = fixed_point_layer(cell32, x, batch_dim=0)
    assert z.dtype == torch.float32
    _loss(z, c).backward()
    torch.testing.assert_close(x.grad.double(), unrolled[0], rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(
        cell32.lin.weight.grad.double(), unrolled[1], rtol=1e-4, atol=1e-4
    )


def test_layer_forward_failure_is_visible():
    A, b, _ = _noncontractive()
    x = b.clone().requires_grad_()

    def f(z, x):
        return A @ z + x

    with pytest.warns(ConvergenceWarning):
        z, info = fixed_point_layer(
            f, x, forward=FixedPointIteration(max_steps=50), return_info=True
        )
    assert info.forward.status in (Status.DIVERGED, Status.MAX_STEPS)
    assert torch.isfinite(z).all()
    with pytest.raises(ConvergenceError):
        fixed_point_layer(f, x, forward=FixedPointIteration(max_steps=50), throw=True)


def test_layer_backward_failure_is_visible():
    A, b, _ = _noncontractive()
    x = b.clone().requires_grad_()

    def f(z, x):
        return A @ z + x

    # Newton-Krylov finds the forward fixed point; the adjoint by plain
    # iteration cannot converge (spectral radius 1.5).
    z, info = fixed_point_layer(
        f,
        x,
        forward=NewtonKrylov(rtol=1e-12),
        backward_method=FixedPointIteration(max_steps=100),
        return_info=True,
    )
    assert info.forward.success
    with pytest.warns(ConvergenceWarning):
        z.sum().backward()
    assert info.backward.status in (Status.DIVERGED, Status.MAX_STEPS)
    assert info.backward.stats["adjoint_residual"] > 1e-2
    z = fixed_point_layer(
        f,
        x,
        forward=NewtonKrylov(rtol=1e-12),
        backward_method=FixedPointIteration(max_steps=100),
        throw=True,
    )
    with pytest.raises(ConvergenceError):
        z.sum().backward()


def test_layer_bad_input(cell):
    x = torch.zeros(N, dtype=F64)
    with pytest.raises(ValueError, match="backward must be 'implicit' or 'phantom'"):
        fixed_point_layer(cell, x, backward="exact")
    for steps in (-1, 1.5, True):
        with pytest.raises(ValueError, match="phantom_steps must be an int >= 0"):
            fixed_point_layer(cell, x, phantom_steps=steps)
    for tau in (0.0, 1.5, float("nan")):
        with pytest.raises(ValueError, match=r"phantom_damping must be in \(0, 1\]"):
            fixed_point_layer(cell, x, phantom_damping=tau)
    with pytest.raises(TypeError, match="forward must be a method of itersolve"):
        fixed_point_layer(cell, x, forward=GMRES())
    with pytest.raises(TypeError, match="backward_method must be a method"):
        fixed_point_layer(cell, x, backward_method=GradientDescent())
    with pytest.raises(TypeError, match="x must be a torch tensor"):
        fixed_point_layer(cell, [0.0] * N)
    with pytest.raises(TypeError, match=r"params\[0\] must be a torch tensor"):
        fixed_point_layer(lambda z, x: z, x, 3.0)
    with pytest.raises(ValueError, match="f must keep the shape of z"):
        fixed_point_layer(lambda z, x: z[:2], x)
