"""Linear test problems: spectra in closed form, structure, seeds, bad arguments."""

from __future__ import annotations

import numpy as np
import pytest

import itersolve.problems as problems
from itersolve.problems import (
    convection_diffusion,
    poisson,
    poisson_eigenvalues,
    random_spd,
    spectrum,
    symmetric_indefinite,
)
from itersolve.problems.poisson import poisson as poisson_from_old_module


@pytest.mark.parametrize("bc", ["dirichlet", "neumann"])
@pytest.mark.parametrize("dim", [1, 2, 3])
def test_poisson_spectrum_matches_closed_form(dim, bc):
    n = {1: 9, 2: 5, 3: 3}[dim]
    A = poisson(n, dim, bc=bc)
    assert A.shape == (n**dim, n**dim)
    dense = A.toarray()
    np.testing.assert_array_equal(dense, dense.T)
    np.testing.assert_allclose(
        np.linalg.eigvalsh(dense), poisson_eigenvalues(n, dim, bc=bc), atol=1e-12
    )


def test_neumann_null_space_is_the_constants():
    A = poisson(6, 2, bc="neumann")
    np.testing.assert_allclose(A @ np.ones(36), 0.0, atol=1e-14)
    assert np.linalg.matrix_rank(A.toarray()) == 35


def test_poisson_agrees_with_pyamg_gallery():
    gallery = pytest.importorskip("pyamg.gallery")
    for dim, grid in ((1, (7,)), (2, (5, 5)), (3, (3, 3, 3))):
        ref = gallery.poisson(grid, format="csr")
        np.testing.assert_array_equal(poisson(grid[0], dim).toarray(), ref.toarray())


def test_old_module_path_still_works():
    assert poisson_from_old_module is poisson
    assert problems.poisson is poisson


def test_random_spd_has_the_requested_spectrum_and_batches():
    lam = np.array([0.5, 1.0, 7.0, 20.0])
    A = random_spd(4, eigenvalues=lam, seed=3)
    np.testing.assert_allclose(np.linalg.eigvalsh(A), lam, rtol=1e-12)
    np.testing.assert_array_equal(A, A.T)
    batch = random_spd(6, condition_number=30.0, batch=5, seed=1)
    assert batch.shape == (5, 6, 6)
    w = np.linalg.eigvalsh(batch)
    np.testing.assert_allclose(w, np.broadcast_to(spectrum(6, 30.0), w.shape))
    assert not np.allclose(batch[0], batch[1])
    np.testing.assert_array_equal(
        batch, random_spd(6, condition_number=30.0, batch=5, seed=1)
    )


def test_symmetric_indefinite_signs_and_conditioning():
    A = symmetric_indefinite(20, negative_fraction=0.25, condition_number=50.0, seed=2)
    w = np.linalg.eigvalsh(A)
    assert (w < 0).sum() == 5 and (w > 0).sum() == 15
    np.testing.assert_allclose(np.sort(np.abs(w)), spectrum(20, 50.0), rtol=1e-10)


def test_convection_diffusion_is_a_nonsymmetric_m_matrix():
    A = convection_diffusion(6, dim=2, peclet=80.0).toarray()
    assert not np.allclose(A, A.T)
    off = A - np.diag(np.diag(A))
    assert (np.diag(A) > 0).all() and (off <= 0).all()
    assert (A.sum(axis=1) >= -1e-12).all()  # weakly diagonally dominant rows
    assert np.linalg.eigvals(A).real.min() > 0
    np.testing.assert_array_equal(
        convection_diffusion(6, dim=2, peclet=0.0).toarray(), poisson(6, 2).toarray()
    )
    flipped = convection_diffusion(6, dim=1, wind=(-1.0,), peclet=5.0).toarray()
    assert flipped[0, 1] < flipped[1, 0]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: poisson(0), r"n must be a positive int, got 0"),
        (lambda: poisson(4, dim=4), r"dim must be 1, 2 or 3, got 4"),
        (lambda: poisson(4, bc="robin"), r"bc must be one of .*'robin'"),
        (lambda: random_spd(3, eigenvalues=[1.0, -1.0, 2.0]), r"must all be > 0"),
        (lambda: random_spd(3, eigenvalues=[1.0, 2.0]), r"shape \(3,\), got \(2,\)"),
        (lambda: spectrum(3, 0.5), r"condition_number must be >= 1, got 0.5"),
        (lambda: spectrum(3, 2.0, kind="cubic"), r"kind must be .*'cubic'"),
        (lambda: symmetric_indefinite(1), r"n must be >= 2"),
        (
            lambda: symmetric_indefinite(4, negative_fraction=1.0),
            r"negative_fraction must be in \(0, 1\), got 1.0",
        ),
        (lambda: convection_diffusion(4, peclet=-1.0), r"peclet must be >= 0"),
        (lambda: convection_diffusion(4, wind=(1.0,)), r"wind must have 2 components"),
    ],
)
def test_bad_arguments(call, message):
    with pytest.raises(ValueError, match=message):
        call()
