"""MLS-MPM simulator: conservation laws, free fall, reproducibility, bad input."""

from __future__ import annotations

import pytest
import torch

from itersolve.problems import MPMTrajectory, mpm_p2g, mpm_simulate


def _cloud(n: int = 300, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = 0.4 + 0.2 * torch.rand(n, 2, generator=g, dtype=torch.float64)
    v = torch.randn(n, 2, generator=g, dtype=torch.float64)
    return x, v


def test_p2g_conserves_mass_and_momentum_with_affine_terms():
    x, v = _cloud()
    m = 0.5 + torch.rand(len(x), generator=torch.Generator().manual_seed(1))
    m = m.double()
    affine = torch.randn(len(x), 2, 2, dtype=torch.float64)
    g_mass, g_mom = mpm_p2g(x, v, m, grid=32, affine=affine)
    assert float(g_mass.sum()) == pytest.approx(float(m.sum()), rel=1e-14)
    torch.testing.assert_close(
        g_mom.sum((0, 1)), (m[:, None] * v).sum(0), rtol=1e-13, atol=1e-13
    )
    assert bool((g_mass >= 0).all())


@pytest.mark.parametrize("material", ["elastic", "sand"])
def test_momentum_conserved_in_free_flight(material):
    """No gravity, no walls: the transfers and the internal stresses (which
    sum to zero over the stencil) keep the total momentum to rounding."""
    x, _ = _cloud(200)
    # A spinning, stretching body so that the stresses are far from zero.
    centre = x.mean(0)
    v = 0.3 * torch.stack([-(x[:, 1] - centre[1]), x[:, 0] - centre[0]], 1)
    v = v + 0.5 * (x - centre) + torch.tensor([0.2, -0.1], dtype=torch.float64)
    traj = mpm_simulate(
        material, positions=x, velocities=v, n_frames=4, gravity=0.0, boundary=False
    )
    momentum = traj.velocities.sum(1) * traj.particle_mass
    torch.testing.assert_close(
        momentum, momentum[0].expand_as(momentum), rtol=0, atol=1e-12
    )
    # the body did deform (the test is not vacuous)
    assert float((traj.positions[-1] - traj.positions[0]).abs().max()) > 1e-3


def test_falling_block_accelerates_at_g_before_contact():
    traj = mpm_simulate("elastic", n_particles=300, n_frames=6, seed=3, gravity=9.8)
    assert float(traj.positions[:, :, 1].min()) > 0.15  # far from the floor walls
    t = traj.frame_dt * torch.arange(traj.n_frames + 1, dtype=torch.float64)
    mean_vy = traj.velocities[:, :, 1].mean(1)
    torch.testing.assert_close(mean_vy, mean_vy[0] - 9.8 * t, rtol=0, atol=1e-11)


def test_block_lands_and_stops_on_the_floor():
    x, _ = _cloud(150)
    x[:, 1] = 0.11 + 0.25 * (x[:, 1] - 0.4)  # a 0.05-thick layer on the wall
    v = torch.zeros_like(x)
    v[:, 1] = -1.0
    traj = mpm_simulate("sand", positions=x, velocities=v, n_frames=12)
    assert float(traj.positions[:, :, 1].min()) > 1 / 32  # stays in the box
    # the floor stopped the sand: it no longer moves at -1 (+ -g t)
    assert float(traj.velocities[-1, :, 1].mean()) > -0.3


def test_seeded_runs_are_reproducible():
    a = mpm_simulate("sand", n_particles=100, n_frames=3, seed=7)
    b = mpm_simulate("sand", n_particles=100, n_frames=3, seed=7)
    c = mpm_simulate("sand", n_particles=100, n_frames=3, seed=8)
    assert isinstance(a, MPMTrajectory)
    assert torch.equal(a.positions, b.positions)
    assert torch.equal(a.velocities, b.velocities)
    assert not torch.equal(a.positions, c.positions)
    assert a.positions.shape == (4, 100, 2) and a.n_frames == 3


def test_bad_input():
    x, v = _cloud(10)
    bad = x.clone()
    bad[3, 1] = float("nan")
    with pytest.raises(ValueError, match="positions contains NaN"):
        mpm_simulate(positions=bad, n_frames=1)
    v_bad = v.clone()
    v_bad[0, 0] = float("inf")
    with pytest.raises(ValueError, match="velocities contains NaN"):
        mpm_simulate(positions=x, velocities=v_bad, n_frames=1)
    with pytest.raises(ValueError, match=r"velocities must have shape \(10, 2\)"):
        mpm_simulate(positions=x, velocities=v[:5], n_frames=1)
    with pytest.raises(ValueError, match=r"positions must have shape"):
        mpm_p2g(torch.zeros(4, 3), torch.zeros(4, 3), 1.0)
    with pytest.raises(ValueError, match="material must be one of"):
        mpm_simulate("water")
    with pytest.raises(ValueError, match="dt must be positive"):
        mpm_simulate(dt=-1e-3)
    with pytest.raises(ValueError, match="inside"):
        mpm_simulate(positions=torch.zeros(3, 2, dtype=torch.float64))
    with pytest.raises(FloatingPointError, match=r"non-finite|left the grid"):
        mpm_simulate(n_particles=50, n_frames=5, dt=0.05, substeps=2)
