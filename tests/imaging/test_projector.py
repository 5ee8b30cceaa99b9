"""ParallelBeamProjector: adjoint pair, exact lengths, analytic discs, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from skimage.transform import radon

from itersolve.imaging import ParallelBeamProjector
from itersolve.imaging._projector import detector_offsets, siddon_matrix
from itersolve.problems import EllipsePhantom

GEOMETRIES = [
    (8, np.linspace(0, np.pi, 7, endpoint=False), None, 1.0),
    (9, np.radians([0.0, 45.0, 90.0, 135.0, 180.0]), 13, 1.0),
    (12, np.linspace(0, 2 * np.pi, 11), 30, 0.5),
    (5, np.array([0.3]), 3, 2.0),
]


def _rand(shape, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(*shape, generator=g, dtype=torch.float64)


@pytest.mark.parametrize(("n", "angles", "det", "spacing"), GEOMETRIES)
def test_dot_product_test_to_1e_12(n, angles, det, spacing):
    K = ParallelBeamProjector(n, angles, det, detector_spacing=spacing)
    for seed in range(3):
        x = _rand(K.image_shape, seed) - 0.5
        y = _rand(K.sinogram_shape, seed + 10) - 0.5
        lhs = float((K.forward(x) * y).sum())
        rhs = float((x * K.adjoint(y)).sum())
        assert abs(lhs - rhs) <= 1e-12 * abs(lhs), (lhs, rhs)


def test_adjoint_matrix_is_exactly_the_transpose():
    K = ParallelBeamProjector(10, np.linspace(0, np.pi, 9))
    A = K.matrix.to_dense()
    np.testing.assert_array_equal(K.matrix_t.to_dense().numpy(), A.T.numpy())


def _square_chord(theta, s, h):
    """Length of the line p . (cos t, sin t) = s inside [-h, h]^2 (slab method)."""
    c, sn = math.cos(theta), math.sin(theta)
    p, d = np.array([s * c, s * sn]), np.array([-sn, c])
    lo, hi = -math.inf, math.inf
    for k in range(2):
        if abs(d[k]) < 1e-15:
            if abs(p[k]) > h:
                return 0.0
            continue
        t1, t2 = (-h - p[k]) / d[k], (h - p[k]) / d[k]
        lo, hi = max(lo, min(t1, t2)), min(hi, max(t1, t2))
    return max(0.0, hi - lo)


@pytest.mark.parametrize(("n", "angles", "det", "spacing"), GEOMETRIES)
def test_ones_image_gives_the_exact_chord_lengths_of_the_square(
    n, angles, det, spacing
):
    K = ParallelBeamProjector(n, angles, det, detector_spacing=spacing)
    y = K.forward(torch.ones(n, n, dtype=torch.float64)).numpy()
    offsets = detector_offsets(K.n_detectors, spacing)
    expected = np.array([[_square_chord(t, s, n / 2) for s in offsets] for t in angles])
    np.testing.assert_allclose(y, expected, rtol=1e-12, atol=1e-12)


def test_centred_disc_matches_its_analytic_line_integrals():
    """A disc of radius 0.8 (in units of n/2), rasterised with partial volume
    (16x16 samples per pixel), against ``2 sqrt(R^2 - s^2)``: the gap is the
    pixelisation of the boundary, so it shrinks as n grows."""
    angles = np.linspace(0, np.pi, 13, endpoint=False)
    errors = []
    for n in (16, 64):
        disc = EllipsePhantom(n, ((1.0, 0.8, 0.8, 0.0, 0.0, 0.0),), supersample=16)
        K = ParallelBeamProjector(n, angles)
        y = K.forward(torch.from_numpy(disc.image)).numpy()
        R = 0.8 * n / 2
        s = detector_offsets(K.n_detectors, 1.0)
        exact = 2 * np.sqrt(np.clip(R**2 - s**2, 0, None))
        errors.append(np.linalg.norm(y - exact) / np.linalg.norm(exact + 0 * y))
    assert errors[0] < 0.08 and errors[1] < 0.015, errors
    assert errors[1] < errors[0] / 2, errors


def test_matches_skimage_radon_geometry():
    """skimage's radon (rotation + interpolation) in its own geometry: same
    angle and detector conventions, odd n, detectors = n, circle=True."""
    n = 33
    disc = EllipsePhantom(n, ((1.0, 0.15, 0.15, 0.4, 0.3, 0.0),))
    angles_deg = np.array([0.0, 30.0, 90.0, 150.0])
    sk = radon(disc.image, angles_deg, circle=True).T
    K = ParallelBeamProjector(n, np.radians(angles_deg), n)
    ours = K.forward(torch.from_numpy(disc.image)).numpy()
    s = np.arange(n)
    centre_ours = (ours * s).sum(axis=1) / ours.sum(axis=1)
    centre_sk = (sk * s).sum(axis=1) / sk.sum(axis=1)
    np.testing.assert_allclose(centre_ours, centre_sk, atol=0.1)
    assert np.linalg.norm(ours - sk) <= 0.1 * np.linalg.norm(sk)


def test_batch_forward_and_autograd_backward_is_the_adjoint():
    K = ParallelBeamProjector(6, np.linspace(0, np.pi, 5, endpoint=False))
    x = _rand((3, 6, 6), 0).requires_grad_(True)
    y = K.forward(x)
    assert y.shape == (3, *K.sinogram_shape)
    for b in range(3):
        torch.testing.assert_close(y[b], K.forward(x[b].detach()))
    w = _rand(y.shape, 1)
    (y * w).sum().backward()
    torch.testing.assert_close(x.grad, K.adjoint(w))
    assert torch.autograd.gradcheck(
        lambda v: K.forward(v), (_rand((6, 6), 2).requires_grad_(True),)
    )


def test_counts_projections():
    K = ParallelBeamProjector(4, [0.0, 1.0])
    K.forward(torch.zeros(2, 4, 4, dtype=torch.float64))
    K.adjoint(torch.zeros(K.sinogram_shape, dtype=torch.float64))
    assert (K.forward_count, K.adjoint_count) == (2, 1)


def test_float32_copy():
    K = ParallelBeamProjector(8, [0.0, 0.5]).to(dtype=torch.float32)
    y = K.forward(torch.ones(8, 8))
    assert y.dtype == torch.float32 and K.dtype == torch.float32


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"image_size": 0, "angles": [0.0]}, "image_size must be a positive int"),
        ({"image_size": 4.0, "angles": [0.0]}, "image_size must be a positive int"),
        ({"image_size": 4, "angles": []}, "angles must be a non-empty"),
        ({"image_size": 4, "angles": [np.nan]}, "angles must be a non-empty"),
        ({"image_size": 4, "angles": [0.0], "n_detectors": 0}, "n_detectors"),
        (
            {"image_size": 4, "angles": [0.0], "detector_spacing": -1.0},
            "detector_spacing must be positive",
        ),
    ],
)
def test_bad_construction_raises(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ParallelBeamProjector(**kwargs)


def test_image_of_the_wrong_size_raises_naming_it():
    K = ParallelBeamProjector(8, [0.0, 1.0])
    with pytest.raises(ValueError, match=r"image must have shape \(8, 8\).*\(7, 8\)"):
        K.forward(torch.zeros(7, 8, dtype=torch.float64))
    with pytest.raises(ValueError, match="sinogram must have shape"):
        K.adjoint(torch.zeros(8, 8, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"image must be torch\.float64"):
        K.forward(torch.zeros(8, 8, dtype=torch.float32))
    with pytest.raises(TypeError, match=r"image must be a torch\.Tensor"):
        K.forward(np.zeros((8, 8)))


@pytest.mark.gpu
def test_dot_product_test_on_cuda():
    K = ParallelBeamProjector(32, np.linspace(0, np.pi, 20), device="cuda")
    x = _rand(K.image_shape, 0).cuda() - 0.5
    y = _rand(K.sinogram_shape, 1).cuda() - 0.5
    lhs = float((K.forward(x) * y).sum())
    rhs = float((x * K.adjoint(y)).sum())
    assert abs(lhs - rhs) <= 1e-12 * abs(lhs)
    cpu = K.to("cpu")
    torch.testing.assert_close(K.forward(x).cpu(), cpu.forward(x.cpu()))


def test_blocks_of_angles_give_the_same_matrix():
    """The constructor builds the matrix in blocks of angles (memory); here 3
    blocks (190, 190, 20 angles) against one call over all 400."""
    angles = np.linspace(0, np.pi, 400, endpoint=False)
    K = ParallelBeamProjector(60, angles)
    rays, pixels, lengths = siddon_matrix(
        60, angles, detector_offsets(K.n_detectors, 1.0)
    )
    whole = sp.csr_array((lengths, (rays, pixels)), shape=K.matrix.shape)
    A = K.matrix
    built = sp.csr_array(
        (A.values().numpy(), A.col_indices().numpy(), A.crow_indices().numpy()),
        shape=A.shape,
    )
    assert abs(built - whole).max() == 0.0
