"""Phantoms and simulated sinograms."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from itersolve.imaging import ParallelBeamProjector
from itersolve.problems import EllipsePhantom, ellipse_phantoms, shepp_logan, simulate

ANGLES = np.linspace(0, np.pi, 20, endpoint=False)


def test_ellipse_phantoms_seeded_nonnegative_inside_the_disc():
    one, two = ellipse_phantoms(32, 3, seed=5), ellipse_phantoms(32, 3, seed=5)
    assert one == two and one != ellipse_phantoms(32, 3, seed=6)
    for p in one:
        image = p.image
        assert image.shape == (32, 32) and image.min() >= 0 and image.max() > 0
        c = (np.arange(32) + 0.5 - 16) / 16
        outside = c[None, :] ** 2 + c[:, None] ** 2 > 1.0
        assert not image[outside].any()


def test_shepp_logan_values():
    image = shepp_logan(64).image
    assert image.min() == 0.0 and image.max() == pytest.approx(1.0)
    assert image[32, 32] == pytest.approx(0.2)


def test_simulate_noise_level_is_exact():
    p = shepp_logan(24)
    clean = simulate(p, ANGLES, 0.0, seed=0)
    noisy = simulate(p, ANGLES, 0.05, seed=0)
    ratio = np.linalg.norm(noisy - clean) / np.linalg.norm(clean)
    assert ratio == pytest.approx(0.05, rel=1e-12)
    np.testing.assert_array_equal(noisy, simulate(p, ANGLES, 0.05, seed=0))
    assert not np.array_equal(noisy, simulate(p, ANGLES, 0.05, seed=1))


def test_simulation_is_not_the_reconstruction_projector():
    """No inverse crime: the analytic sinogram differs from K applied to the
    rasterised image by the discretisation, small but nonzero, and shrinking
    as the grid refines."""
    gaps = []
    for n in (24, 96):
        p = ellipse_phantoms(n, 1, seed=2)[0]
        y = simulate(p, ANGLES, 0.0, seed=0)
        Kx = ParallelBeamProjector(n, ANGLES).forward(torch.from_numpy(p.image))
        gaps.append(np.linalg.norm(y - Kx.numpy()) / np.linalg.norm(y))
    assert 0.005 < gaps[0] < 0.1 and gaps[1] < gaps[0], gaps


def test_single_ray_line_integral_is_the_chord():
    disc = EllipsePhantom(40, ((2.0, 0.5, 0.5, 0.0, 0.0, 0.0),))
    # radius 10 pixels; the ray at offset 6 crosses a chord of 2 * 8.
    value = disc.line_integrals(np.array([0.7]), np.array([6.0]))
    assert value[0, 0] == pytest.approx(2.0 * 16.0)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"noise": -0.01}, ValueError, "noise must be a finite number >= 0"),
        ({"noise": float("nan")}, ValueError, "noise must be"),
        ({"rays_per_bin": 0}, ValueError, "rays_per_bin must be a positive int"),
        ({"angles": []}, ValueError, "angles must be a non-empty"),
        ({"phantom": np.zeros((8, 8))}, TypeError, "phantom must be an EllipsePhantom"),
    ],
)
def test_simulate_bad_input(kwargs, error, match):
    args = {"phantom": shepp_logan(8), "angles": ANGLES, "noise": 0.0, "seed": 0}
    with pytest.raises(error, match=match):
        simulate(**{**args, **kwargs})


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n": 0}, "n must be a positive int"),
        ({"count": -1}, "count must be a positive int"),
        ({"seed": -1}, "seed must be a non-negative int"),
    ],
)
def test_ellipse_phantoms_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ellipse_phantoms(**{"n": 8, "count": 1, "seed": 0, **kwargs})
