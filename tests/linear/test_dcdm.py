"""LearnedPreconditioner inside FlexibleCG, and the obstacle Poisson problems."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from itersolve import ConvergenceWarning, Status
from itersolve.linear import FlexibleCG, LearnedPreconditioner, linear_solve
from itersolve.problems import obstacle_poisson, poisson
from itersolve.problems.obstacles import assemble, random_layout


def _system(n=12, seed=1):
    p = obstacle_poisson(n, "mixed", seed=seed)
    return p, p.rhs(seed)


class ExactInverse(torch.nn.Module):
    """A "network" that applies A^{-1} on the masked grid (float64)."""

    def __init__(self, p):
        super().__init__()
        self.inv = torch.from_numpy(np.linalg.inv(p.A.toarray()))
        self.fluid = torch.from_numpy(p.fluid)
        self.scale = torch.nn.Parameter(torch.ones((), dtype=torch.float64))

    def forward(self, x):
        assert x.shape[1] == 2  # residual and mask channels
        r = x[:, 0][:, self.fluid]
        out = torch.zeros_like(x[:, :1])
        out[:, 0][:, self.fluid] = 3.0 * self.scale * (r @ self.inv.T)
        return out


def test_exact_inverse_converges_in_one_step():
    p, b = _system()
    M = LearnedPreconditioner(ExactInverse(p), mask=p.fluid)
    sol = linear_solve(p.A, b, FlexibleCG(rtol=1e-10, truncation=2, M=M))
    assert sol.status is Status.SUCCESS
    assert sol.num_steps == 1
    assert M.calls == 1
    assert np.linalg.norm(b - p.A @ sol.x) <= 1e-10 * np.linalg.norm(b)


def test_exact_inverse_on_columns_and_torch_float32():
    p, b = _system()
    B = np.stack([b, p.rhs(7)], axis=1)
    M = LearnedPreconditioner(ExactInverse(p), mask=p.fluid)
    sol = linear_solve(p.A, B, FlexibleCG(rtol=1e-10, truncation=2, M=M))
    assert sol.success and sol.num_steps == 1
    b32 = torch.tensor(b, dtype=torch.float32)
    A32 = p.A.astype(np.float32)
    sol32 = linear_solve(A32, b32, FlexibleCG(rtol=1e-4, truncation=2, M=M))
    assert sol32.success and sol32.x.dtype == torch.float32


def test_identity_network_on_plain_vectors_is_cg():
    A = poisson(10, dim=1)
    b = np.arange(1.0, 11.0)
    M = LearnedPreconditioner(torch.nn.Identity())
    ours = linear_solve(A, b, FlexibleCG(rtol=1e-10, truncation=2, M=M))
    plain = linear_solve(A, b, FlexibleCG(rtol=1e-10, truncation=2))
    assert ours.num_steps == plain.num_steps
    np.testing.assert_allclose(ours.x, plain.x, rtol=1e-10)


@pytest.mark.parametrize("kind", ["random", "zero"])
def test_garbage_network_is_never_success(kind):
    p, b = _system()
    gen = torch.Generator().manual_seed(0)

    def garbage(x):
        if kind == "zero":
            return torch.zeros_like(x[:, :1])
        return torch.randn(x[:, :1].shape, generator=gen, dtype=x.dtype)

    M = LearnedPreconditioner(garbage, mask=p.fluid)
    with pytest.warns(ConvergenceWarning):
        sol = linear_solve(
            p.A, b, FlexibleCG(rtol=1e-8, truncation=2, M=M, max_steps=15)
        )
    assert sol.status is not Status.SUCCESS
    assert np.all(np.isfinite(sol.x))
    if kind == "zero":
        assert sol.status is Status.BREAKDOWN
        assert "no new direction" in sol.detail


def test_nan_network_gives_nonfinite_status():
    p, b = _system()
    M = LearnedPreconditioner(lambda x: torch.full_like(x[:, :1], np.nan), mask=p.fluid)
    with pytest.warns(ConvergenceWarning):
        sol = linear_solve(p.A, b, FlexibleCG(truncation=2, M=M))
    assert not sol.success


def test_output_shape_mismatch_raises():
    p, b = _system()
    M = LearnedPreconditioner(lambda x: x[..., :-1], mask=p.fluid)
    with pytest.raises(ValueError, match="net output has shape"):
        linear_solve(p.A, b, FlexibleCG(truncation=2, M=M))
    flat = LearnedPreconditioner(lambda x: x[:, :-1])
    with pytest.raises(ValueError, match="net output has shape"):
        flat(torch.ones(5, dtype=torch.float64))


def test_bad_arguments():
    p, _ = _system()
    with pytest.raises(TypeError, match="net must be callable"):
        LearnedPreconditioner(3)
    with pytest.raises(TypeError, match="normalize must be a bool"):
        LearnedPreconditioner(torch.nn.Identity(), normalize=1)
    with pytest.raises(ValueError, match="mask has shape"):
        LearnedPreconditioner(torch.nn.Identity(), grid_shape=(3, 3), mask=p.fluid)
    with pytest.raises(TypeError, match="mask must be a boolean"):
        LearnedPreconditioner(torch.nn.Identity(), mask=np.ones((3, 3)))
    with pytest.raises(ValueError, match="grid_shape must be positive"):
        LearnedPreconditioner(torch.nn.Identity(), grid_shape=(0, 3))
    M = LearnedPreconditioner(torch.nn.Identity(), grid_shape=(3, 3))
    with pytest.raises(ValueError, match="residual has 8 unknowns"):
        M(torch.ones(8))


def test_normalisation_scale_and_mode_restored():
    seen = []

    class Probe(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.ones((), dtype=torch.float32))

        def forward(self, x):
            seen.append((x.dtype, self.training, float(x.pow(2).mean())))
            return x * self.w

    net = Probe().train()
    M = LearnedPreconditioner(net)
    r = torch.tensor([3.0, 4.0], dtype=torch.float64)
    z = M(r)
    assert z.dtype == torch.float64
    torch.testing.assert_close(z, r)  # rescaled back: a linear net is exact
    assert seen == [(torch.float32, False, pytest.approx(1.0))]
    assert net.training  # left as it was
    r_in = r.clone()
    M(r)
    assert torch.equal(r, r_in)


# -- obstacle_poisson ------------------------------------------------------------


def _reference_assembly(solid, boundary):
    """Independent scipy.sparse assembly: A = P G^T W G P^T on the full grid,
    G the face-difference operator (kron of 1-D differences), W the open
    faces (fluid-fluid interior faces and open-wall faces next to fluid)."""
    n = solid.shape[0]
    fluid = (~solid).ravel().astype(float)
    eye = sp.eye(n)
    # 1-D differences with one face beyond each end: (n+1) x n.
    D = sp.diags([np.ones(n), -np.ones(n)], [0, -1], shape=(n + 1, n))
    Gy, Gx = sp.kron(D, eye), sp.kron(eye, D)
    blocks, weights = [], []
    for G, axis in ((Gy, 0), (Gx, 1)):
        faces = np.abs(G) @ fluid  # fluid cells touching each face
        touched = np.abs(G) @ np.ones(n * n)
        f = faces.reshape((n + 1, n) if axis == 0 else (n, n + 1))
        t = touched.reshape(f.shape)
        interior = (t == 2) & (f == 2)
        wall = (t == 1) & (f == 1)
        open_wall = np.zeros_like(wall)
        if axis == 0:
            open_wall[0] = wall[0]
            if boundary == "all":
                open_wall[-1] = wall[-1]
        elif boundary == "all":
            open_wall[:, 0], open_wall[:, -1] = wall[:, 0], wall[:, -1]
        blocks.append(G)
        weights.append((interior | open_wall).ravel().astype(float))
    G = sp.vstack(blocks)
    W = sp.diags(np.concatenate(weights))
    P = sp.eye(n * n).tocsr()[np.flatnonzero(fluid)]
    return (P @ (G.T @ W @ G) @ P.T).tocsr()


@pytest.mark.parametrize("boundary", ["top", "all"])
@pytest.mark.parametrize("layout", ["disks", "boxes", "mixed", "empty"])
def test_obstacle_matrix_matches_reference_assembly(layout, boundary):
    p = obstacle_poisson(20, layout, seed=4, boundary=boundary)
    ref = _reference_assembly(p.solid, boundary)
    assert abs(p.A - ref).max() == 0
    assert (p.A != p.A.T).nnz == 0
    assert np.linalg.eigvalsh(p.A.toarray()).min() > 0  # SPD: pockets sealed


def test_stencil_and_empty_dirichlet_is_poisson():
    p = obstacle_poisson(9, "empty", boundary="all")
    assert abs(p.A - poisson(9, dim=2)).max() == 0
    solid = np.zeros((3, 3), dtype=bool)
    solid[1, 1] = True
    A = assemble(solid, "top").toarray()
    # Corner cell (0, 0): open top face, fluid right and below -> diag 3.
    assert A[0, 0] == 3 and A[0, 1] == -1 and A[0, 3] == -1
    # Cell (1, 0) is next to the solid centre: only up and down neighbours.
    assert A[3, 3] == 2 and A[3].sum() == 0
    assert A.shape == (8, 8)


def test_sealed_pocket_becomes_solid():
    solid = np.zeros((7, 7), dtype=bool)
    solid[2:7, 2] = solid[2:7, 4] = solid[2, 2:5] = True  # a closed cup at (3..6, 3)
    p = obstacle_poisson(7, solid)
    assert p.solid[3:7, 3].all() and not solid[3:7, 3].any()
    assert p.A.shape[0] == int((~p.solid).sum())


def test_layout_is_seeded_and_resolution_consistent():
    a = random_layout(64, "mixed", seed=5)
    assert np.array_equal(a, random_layout(64, "mixed", seed=5))
    assert not np.array_equal(a, random_layout(64, "mixed", seed=6))
    coarse = random_layout(32, "mixed", seed=5)
    agree = (a.reshape(32, 2, 32, 2).mean(axis=(1, 3)) > 0.5) == coarse
    assert agree.mean() > 0.95


def test_rhs_and_grid_helpers():
    p = obstacle_poisson(16, "disks", seed=2)
    b = p.rhs(0)
    assert b.shape == (p.A.shape[0],) and np.isclose(np.linalg.norm(b), 1.0)
    assert np.array_equal(b, p.rhs(0))
    grid = p.to_grid(b)
    assert grid.shape == (16, 16) and np.all(grid[p.solid] == 0)
    assert np.array_equal(grid[p.fluid], b)


def test_obstacle_bad_input():
    with pytest.raises(ValueError, match="n must be an int >= 2"):
        obstacle_poisson(1)
    with pytest.raises(ValueError, match="layout must be one of"):
        obstacle_poisson(8, "stars")
    with pytest.raises(ValueError, match="boundary must be one of"):
        obstacle_poisson(8, boundary="left")
    with pytest.raises(ValueError, match="boolean array of shape"):
        obstacle_poisson(8, np.zeros((7, 7), dtype=bool))
    with pytest.raises(ValueError, match="no fluid cell"):
        obstacle_poisson(4, np.ones((4, 4), dtype=bool))


@pytest.mark.gpu
def test_network_on_cuda_serves_cpu_and_cuda_residuals():
    p, b = _system()
    net = ExactInverse(p).cuda()
    net.inv, net.fluid = net.inv.cuda(), net.fluid.cuda()
    M = LearnedPreconditioner(net, mask=p.fluid)
    z = M(torch.from_numpy(b))
    assert z.device.type == "cpu" and z.dtype == torch.float64
    sol = linear_solve(
        p.A, torch.from_numpy(b).cuda(), FlexibleCG(rtol=1e-10, truncation=2, M=M)
    )
    assert sol.success and sol.num_steps == 1 and sol.x.is_cuda
