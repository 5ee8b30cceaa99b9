"""HardConstraintLayer: the constrained output, the implicit gradient (against
unrolled Gauss-Newton and finite differences), experts, statuses, bad input."""

from __future__ import annotations

import math

import pytest
import torch

from itersolve import ConvergenceError, ConvergenceWarning
from itersolve.optimize import GaussNewton, LevenbergMarquardt
from itersolve.pde import HardConstraintLayer, partition_domain

F64 = torch.float64
P = 24
X = torch.linspace(0.0, 1.0, P, dtype=F64)
H = 1.0 / (P - 1)
#: Why not tighter: LM accepts a step on a decrease of ``1/2 ||F||^2``, and the
#: finite-difference residual rounds at ``eps |u''| ~ eps 0.05 / H^2 ~ 1e-14``
#: per entry, which caps the reachable gradient near ``1e-10`` of the first one
#: on these problems; ``1e-9`` stays clear of that floor.
TIGHT = LevenbergMarquardt(rtol=1e-9)


def _basis(batch: int, n_basis: int, seed: int) -> torch.Tensor:
    """Smooth random basis functions: random combinations of sine modes."""
    g = torch.Generator().manual_seed(seed)
    coef = torch.randn(batch, n_basis, 6, dtype=F64, generator=g)
    modes = torch.stack([torch.sin((k + 1) * math.pi * X / 2) for k in range(6)])
    psi = torch.einsum("bnk,kp->bpn", coef, modes)
    return psi + 0.3 * torch.randn(batch, 1, n_basis, dtype=F64, generator=g)


def _nonlinear(theta: torch.Tensor):
    """u'' - 0.5 u^3 + theta sin(pi x) = 0 inside, u(0) = 0.2, u(1) = -0.1:
    the basis cannot satisfy it exactly (nonzero residual at w*)."""

    def residual(u: torch.Tensor, block: tuple[slice, ...]) -> torch.Tensor:
        s = torch.sin(math.pi * X.to(u.device))[1:-1]
        pde = (u[:, 2:] - 2 * u[:, 1:-1] + u[:, :-2]) / H**2 - 0.5 * u[:, 1:-1] ** 3
        pde = 0.05 * (pde + theta * s)
        return torch.cat([pde, u[:, :1] - 0.2, u[:, -1:] + 0.1], dim=1)

    return residual


def _unrolled_w(psi: torch.Tensor, theta: torch.Tensor, steps: int = 60):
    """Plain Gauss-Newton on w, recorded by autograd (the reference)."""
    residual = _nonlinear(theta)
    batch, _, n = psi.shape
    w = torch.zeros(batch, n, dtype=F64)

    def rows(w: torch.Tensor) -> torch.Tensor:
        return residual(torch.einsum("bpn,bn->bp", psi, w), ())

    for _ in range(steps):
        r = rows(w)
        full = torch.autograd.functional.jacobian(rows, w, create_graph=True)
        J = torch.stack([full[b, :, b, :] for b in range(batch)])
        A = J.transpose(1, 2) @ J
        g = (J.transpose(1, 2) @ r[..., None])[..., 0]
        w = w - torch.linalg.solve(A, g)
    return w


def test_exact_solution_in_the_basis_is_recovered() -> None:
    # u'' = -1, u(0) = u(1) = 0: u = x (1 - x) / 2 lies in span{1, x, x^2}
    def residual(u: torch.Tensor, block: tuple[slice, ...]) -> torch.Tensor:
        pde = (u[:, 2:] - 2 * u[:, 1:-1] + u[:, :-2]) / H**2 + 1.0
        return torch.cat([pde, u[:, :1], u[:, -1:]], dim=1)

    psi = torch.stack([X**k for k in range(4)], dim=-1).expand(2, P, 4)
    u = HardConstraintLayer(residual, 4, method=TIGHT)(psi)
    torch.testing.assert_close(u, (X * (1 - X) / 2).expand(2, P), atol=1e-9, rtol=0)
    # the constraint's residual at the output is zero to rounding
    assert float(residual(u, ()).abs().max()) <= 1e-8


@pytest.mark.parametrize("method", [TIGHT, GaussNewton(rtol=1e-9)], ids=str)
def test_implicit_gradient_equals_unrolled(method: object) -> None:
    psi0 = _basis(3, 4, seed=1)
    weights = torch.randn(3, P, dtype=F64, generator=torch.Generator().manual_seed(2))
    grads = []
    for mode in ("implicit", "unrolled"):
        psi = psi0.clone().requires_grad_()
        theta = torch.tensor(3.0, dtype=F64, requires_grad=True)
        if mode == "implicit":
            layer = HardConstraintLayer(_nonlinear(theta), 4, method=method)
            u = layer(psi, theta)
            assert layer.info.all_converged
        else:
            u = torch.einsum("bpn,bn->bp", psi, _unrolled_w(psi, theta))
        (u * weights).sum().backward()
        grads.append((u.detach(), psi.grad, theta.grad))
    (u1, gpsi1, gth1), (u2, gpsi2, gth2) = grads
    torch.testing.assert_close(u1, u2, rtol=0, atol=1e-8)
    scale = float(gpsi2.abs().max())
    assert float((gpsi1 - gpsi2).abs().max()) <= 1e-6 * scale
    assert abs(float(gth1 - gth2)) <= 1e-6 * abs(float(gth2))
    # the implicit part is not negligible: w* treated as constant differs
    psi = psi0.clone().requires_grad_()
    frozen = HardConstraintLayer(
        _nonlinear(torch.tensor(3.0, dtype=F64)), 4, method=method, backward="zero"
    )
    (frozen(psi) * weights).sum().backward()
    assert float((psi.grad - gpsi2).abs().max()) >= 1e-2 * scale


def test_implicit_gradient_matches_finite_differences() -> None:
    psi0 = _basis(2, 3, seed=4)
    theta = torch.tensor(2.0, dtype=F64)
    layer = HardConstraintLayer(_nonlinear(theta), 3, method=TIGHT)

    def loss(psi: torch.Tensor) -> torch.Tensor:
        return (layer(psi) ** 2).sum()

    psi = psi0.clone().requires_grad_()
    loss(psi).backward()
    eps = 1e-6
    for index in [(0, 3, 0), (1, 10, 2), (0, 23, 1)]:
        up, down = psi0.clone(), psi0.clone()
        up[index] += eps
        down[index] -= eps
        fd = (loss(up) - loss(down)) / (2 * eps)
        assert abs(float(psi.grad[index] - fd)) <= 1e-6 * max(1.0, abs(float(fd)))


def test_experts_solve_their_own_blocks() -> None:
    # u = sin(3x) on each block: the block ends carry its values (Dirichlet
    # data), the interior the ODE u'' = -9 u; the basis holds sin and cos
    exact = torch.sin(3 * X)

    def residual(u: torch.Tensor, block: tuple[slice, ...]) -> torch.Tensor:
        (s,) = block
        ends = exact[s][[0, -1]]
        pde = (u[:, 2:] - 2 * u[:, 1:-1] + u[:, :-2]) / H**2 + 9 * u[:, 1:-1]
        # the FD operator is exact for e^{ikx} up to its own symbol: compare
        # with the exact discrete eigenvalue so sin(3x) is an exact solution
        lam = (2 - 2 * math.cos(3 * H)) / H**2
        pde = pde - (9 - lam) * u[:, 1:-1]
        return torch.cat([0.01 * pde, u[:, [0, -1]] - ends], dim=1)

    psi = torch.stack([torch.sin(3 * X), torch.cos(3 * X), X], dim=-1)[None]
    layer = HardConstraintLayer(residual, 3, method=TIGHT, experts=4)
    u = layer(psi.clone().requires_grad_())
    torch.testing.assert_close(u[0], exact, atol=1e-7, rtol=0)
    assert len(layer.info.solutions) == 4
    assert layer.info.status == [["SUCCESS"]] * 4
    assert partition_domain((P,), 4)[1] == (slice(6, 12),)


def test_batched_2d_grid_with_expert_tuple() -> None:
    # a (t, x) grid split (1, 2): every expert sees the whole t axis
    def residual(u: torch.Tensor, block: tuple[slice, ...]) -> torch.Tensor:
        return (u - 1.0).reshape(u.shape[0], -1)

    psi = torch.randn(2, 4, 6, 3, dtype=F64, generator=torch.Generator().manual_seed(0))
    layer = HardConstraintLayer(residual, 3, experts=(1, 2))
    u = layer(psi)
    assert u.shape == (2, 4, 6) and len(layer.info.status) == 2
    assert layer.info.converged is not None and layer.info.converged.shape == (2, 2)


def test_unconverged_solve_is_flagged_and_falls_back() -> None:
    psi0 = _basis(2, 4, seed=6)
    theta = torch.tensor(3.0, dtype=F64)
    layer = HardConstraintLayer(
        _nonlinear(theta), 4, method=LevenbergMarquardt(max_steps=1)
    )
    psi = psi0.clone().requires_grad_()
    with pytest.warns(ConvergenceWarning, match="MAX_STEPS"):
        u = layer(psi)
    assert layer.info.status == [["MAX_STEPS", "MAX_STEPS"]]
    assert not layer.info.all_converged
    u.sum().backward()
    assert layer.info.fallback is not None and bool(layer.info.fallback.all())
    # the fallback is the zero gradient through w*: u's dependence on psi only
    w = layer.info.solutions[0].x
    torch.testing.assert_close(psi.grad, w[:, None, :].expand_as(psi))
    strict = HardConstraintLayer(
        _nonlinear(theta), 4, method=LevenbergMarquardt(max_steps=1), throw=True
    )
    with pytest.raises(ConvergenceError):
        strict(psi0)


def test_float32_warns() -> None:
    psi = _basis(1, 3, seed=0).float()
    layer = HardConstraintLayer(lambda u, b: u - 1.0, 3)
    with pytest.warns(ConvergenceWarning, match="float64"):
        layer(psi)


def test_bad_input() -> None:
    r = lambda u, b: u  # noqa: E731
    with pytest.raises(ValueError, match="n_basis must be a positive int, got 0"):
        HardConstraintLayer(r, 0)
    with pytest.raises(ValueError, match="backward must be 'implicit' or 'zero'"):
        HardConstraintLayer(r, 2, backward="unrolled")
    with pytest.raises(ValueError, match="ridge must be >= 0"):
        HardConstraintLayer(r, 2, ridge=-1.0)
    with pytest.raises(ValueError, match="experts must be >= 1, got 0"):
        HardConstraintLayer(r, 2, experts=0)
    with pytest.raises(TypeError, match="least-squares method"):
        HardConstraintLayer(r, 2, method="lm")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="residual_fn must be callable"):
        HardConstraintLayer(3, 2)  # type: ignore[arg-type]
    layer = HardConstraintLayer(r, 2)
    with pytest.raises(ValueError, match=r"psi must have shape \(batch, \*grid"):
        layer(torch.zeros(3, 5, dtype=F64))
    with pytest.raises(ValueError, match="one count per grid axis"):
        HardConstraintLayer(r, 2, experts=(1, 2))(torch.zeros(1, 5, 2, dtype=F64))
    with pytest.raises(ValueError, match="ints in"):
        partition_domain((4,), (5,))
    drop = HardConstraintLayer(lambda u, b: u.sum(), 2)
    with pytest.raises(ValueError, match="batch dimension first"):
        drop(torch.ones(2, 5, 2, dtype=F64))


@pytest.mark.gpu
def test_cuda_layer_and_implicit_gradient() -> None:
    psi = _basis(2, 4, seed=1).cuda().requires_grad_()
    theta = torch.tensor(3.0, dtype=F64)
    residual = _nonlinear(theta)
    layer = HardConstraintLayer(residual, 4, method=TIGHT)
    u = layer(psi)
    u.sum().backward()
    assert u.is_cuda and psi.grad is not None and psi.grad.is_cuda
    cpu = _basis(2, 4, seed=1).requires_grad_()
    HardConstraintLayer(residual, 4, method=TIGHT)(cpu).sum().backward()
    torch.testing.assert_close(psi.grad.cpu(), cpu.grad, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize(
    ("grid", "experts"),
    [((7,), 3), ((5, 9), (2, 4)), ((4, 6), 1), ((3, 3, 5), (1, 3, 2))],
)
def test_partition_domain_tiles_the_grid(
    grid: tuple[int, ...], experts: object
) -> None:
    count = torch.zeros(grid, dtype=torch.int64)
    blocks = partition_domain(grid, experts)  # type: ignore[arg-type]
    for block in blocks:
        count[block] += 1
    assert bool((count == 1).all())
    k = experts if isinstance(experts, int) else math.prod(experts)  # type: ignore[arg-type]
    assert len(blocks) == k
