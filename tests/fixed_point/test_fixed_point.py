"""fixed_point and its methods: scipy agreement, acceleration, batches, failures."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.optimize as so
import torch

from itersolve import ConvergenceWarning, Status
from itersolve.fixed_point import (
    Anderson,
    Broyden,
    FixedPointIteration,
    NewtonKrylov,
    fixed_point,
)
from itersolve.problems import contractive_tanh

N = 64


@pytest.fixture(scope="module")
def tanh_map():
    return contractive_tanh(N, seed=0)


@pytest.fixture(scope="module")
def reference(tanh_map):
    """The fixed point by scipy's Newton-Krylov, to rounding level."""
    return so.newton_krylov(lambda z: tanh_map(z) - z, np.zeros(N), f_tol=1e-14)


METHODS = {
    "iteration": FixedPointIteration(rtol=1e-12, max_steps=5000),
    "anderson": Anderson(rtol=1e-12),
    "broyden": Broyden(rtol=1e-12),
    "broyden-bad": Broyden(rtol=1e-12, variant="bad"),
    "newton-krylov": NewtonKrylov(rtol=1e-12),
}


@pytest.mark.parametrize("name", list(METHODS))
def test_agrees_with_scipy_fixed_point(tanh_map, reference, name):
    sol = fixed_point(tanh_map, np.zeros(N), METHODS[name])
    assert sol.success
    np.testing.assert_allclose(sol.x, reference, rtol=0, atol=1e-8)
    gap = np.linalg.norm(tanh_map(sol.x) - sol.x)
    assert gap <= 1e-12 * np.linalg.norm(sol.x) * 1.0001


@pytest.mark.parametrize(
    ("scipy_solver", "method"),
    [(so.anderson, Anderson(rtol=1e-11)), (so.broyden1, Broyden(rtol=1e-11))],
)
def test_agrees_with_scipy_anderson_and_broyden1(tanh_map, scipy_solver, method):
    ref = scipy_solver(lambda z: tanh_map(z) - z, np.zeros(N), f_tol=1e-11)
    sol = fixed_point(tanh_map, np.zeros(N), method)
    np.testing.assert_allclose(sol.x, ref, rtol=0, atol=1e-8)


def test_acceleration_pays_on_the_symmetric_filled_spectrum():
    f = contractive_tanh(256, seed=0)
    z0 = np.zeros(256)
    plain = fixed_point(f, z0, FixedPointIteration(max_steps=5000))
    anderson = fixed_point(f, z0, Anderson())
    broyden = fixed_point(f, z0, Broyden())
    assert plain.success and anderson.success and broyden.success
    # Measured 236 / 68 / 64: the claim is <= 0.4x, asserted with margin.
    assert plain.stats["fevals"] >= 150
    assert anderson.stats["fevals"] <= 0.35 * plain.stats["fevals"]
    assert broyden.stats["fevals"] <= 0.35 * plain.stats["fevals"]


@pytest.mark.parametrize("method", [FixedPointIteration(), Anderson(), Broyden()])
def test_batch_samples_stop_on_their_own(method):
    f = contractive_tanh(32, batch=6, seed=2)
    z0 = np.zeros((6, 32))
    sol = fixed_point(f, z0, method, batch_dim=0)
    assert sol.success and sol.x.shape == (6, 32)
    counts = sol.stats["sample_fevals"]
    assert len(counts) == 6 and max(counts) == sol.stats["fevals"]
    assert len(set(counts)) > 1  # samples stopped at different steps
    for b in range(6):
        gap = np.linalg.norm(f(sol.x)[b] - sol.x[b])
        assert gap <= 1e-8 * np.linalg.norm(sol.x[b]) * 1.0001
        single = fixed_point(lambda z, b=b: np.tanh(f.W @ z + f.x[b]), z0[b], method)
        np.testing.assert_allclose(sol.x[b], single.x, atol=1e-7)


def test_batch_rejected_by_newton_krylov():
    f = contractive_tanh(8, batch=2, seed=0)
    with pytest.raises(ValueError, match="NewtonKrylov solves one fixed point"):
        fixed_point(f, np.zeros((2, 8)), NewtonKrylov(), batch_dim=0)


def test_failed_run_returns_lowest_residual_iterate():
    # z -> 2 z + 1 repels from its fixed point -1: residuals grow every step.
    f = lambda z: 2.0 * z + 1.0  # noqa: E731
    seen = []
    with pytest.warns(ConvergenceWarning, match="MAX_STEPS"):
        sol = fixed_point(
            f,
            np.array([0.0]),
            FixedPointIteration(max_steps=5),
            callback=lambda info: seen.append(info.x.clone()),
        )
    assert sol.status is Status.MAX_STEPS
    np.testing.assert_array_equal(sol.x, [0.0])  # z0 had the lowest residual
    assert float(seen[-1][0, 0]) != 0.0


def test_divergence_is_reported_with_best_iterate():
    f = lambda z: 10.0 * z + 1.0  # noqa: E731
    with pytest.warns(ConvergenceWarning, match="DIVERGED"):
        sol = fixed_point(f, np.array([0.0]), FixedPointIteration())
    assert sol.status is Status.DIVERGED and sol.num_steps <= 8
    np.testing.assert_array_equal(sol.x, [0.0])


def test_nan_in_map_gives_nonfinite_input():
    with pytest.warns(ConvergenceWarning, match="NONFINITE_INPUT"):
        sol = fixed_point(lambda z: z * np.nan, np.ones(3), Anderson())
    assert sol.status is Status.NONFINITE_INPUT and sol.num_steps == 0


def test_nan_later_gives_nonfinite_not_nan_success():
    def f(z):
        return np.full_like(z, np.nan) if abs(z[0]) < 0.5 else 0.5 * z

    with pytest.warns(ConvergenceWarning, match="NONFINITE"):
        sol = fixed_point(f, np.array([4.0]), FixedPointIteration())
    assert sol.status is Status.NONFINITE and np.isfinite(sol.x).all()


def test_shape_changing_map_raises():
    with pytest.raises(ValueError, match="f must keep the shape of z"):
        fixed_point(lambda z: z[:2], np.ones(3))


@pytest.mark.parametrize("method", [Anderson(), Broyden(), FixedPointIteration()])
def test_float32_twin(method):
    f = contractive_tanh(N, rho=0.9, seed=1)
    ref = fixed_point(f, np.zeros(N), Anderson(rtol=1e-12)).x
    z0 = torch.zeros(N, dtype=torch.float32)
    sol = fixed_point(f, z0, method)
    assert sol.success and sol.x.dtype == torch.float32
    assert np.linalg.norm(sol.x.numpy() - ref) <= 1e-4 * np.linalg.norm(ref)


def test_any_shape_torch_in_torch_out():
    W = torch.eye(4, dtype=torch.float64) * 0.5
    sol = fixed_point(lambda Z: Z @ W + 1.0, torch.zeros(3, 4, dtype=torch.float64))
    assert sol.success and sol.x.shape == (3, 4)
    torch.testing.assert_close(sol.x, torch.full((3, 4), 2.0, dtype=torch.float64))


def test_scalar_map_known_fixed_point():
    sol = fixed_point(np.cos, np.array(1.0), Anderson(rtol=1e-14))
    assert sol.success and sol.x.shape == ()
    assert abs(float(sol.x) - 0.7390851332151607) <= 1e-14


def test_linear_map_matches_numpy_solve():
    rng = np.random.default_rng(5)
    A = rng.standard_normal((20, 20))
    A *= 0.95 / np.linalg.norm(A, 2)
    b = rng.standard_normal(20)
    sol = fixed_point(lambda z: A @ z + b, np.zeros(20), Anderson(rtol=1e-13))
    expected = np.linalg.solve(np.eye(20) - A, b)
    np.testing.assert_allclose(sol.x, expected, rtol=0, atol=1e-11)


def test_anderson_guard_drops_columns_of_a_degenerate_history():
    # A linear map on 2 unknowns: past step 2 the differences are dependent.
    sol = fixed_point(
        lambda z: np.array([0.5 * z[0] + 1.0, 0.5 * z[1]]),
        np.array([0.0, 1.0]),
        Anderson(memory=5, rtol=1e-14, atol=1e-300),
    )
    assert sol.success
    np.testing.assert_allclose(sol.x, [2.0, 0.0], atol=1e-13)


def test_input_not_mutated():
    z0 = np.zeros(N)
    fixed_point(contractive_tanh(N, seed=0), z0)
    assert not z0.any()


def test_map_gets_a_read_only_numpy_array():
    def f(z):
        z[0] = 1.0
        return z

    with pytest.raises(ValueError, match="read-only"):
        fixed_point(f, np.zeros(3))


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: FixedPointIteration(damping=0.0), r"damping must be in \(0, 1\]"),
        (lambda: FixedPointIteration(damping=1.5), "damping"),
        (lambda: Anderson(memory=0), "memory must be an int >= 1, got 0"),
        (lambda: Anderson(memory=2.0), "memory must be an int"),
        (lambda: Anderson(regularization=float("nan")), "regularization"),
        (lambda: Anderson(mixing=0.0), "mixing"),
        (lambda: Broyden(memory=-1), "memory"),
        (lambda: Broyden(variant="middle"), "variant"),
        (lambda: Anderson(rtol=0.0, atol=0.0), "rtol and atol cannot both be 0"),
    ],
)
def test_bad_hyperparameters(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_bad_front_door_arguments():
    with pytest.raises(TypeError, match="f must be callable"):
        fixed_point(3.0, np.zeros(2))
    with pytest.raises(ValueError, match="batch_dim must be None or 0"):
        fixed_point(np.cos, np.zeros(2), batch_dim=1)
    with pytest.raises(TypeError, match="method must be a method"):
        fixed_point(np.cos, np.zeros(2), "anderson")


def test_pde_reexport_is_the_fixed_point_implementation():
    from itersolve.pde import NewtonKrylov as PDENewtonKrylov

    assert issubclass(PDENewtonKrylov, NewtonKrylov)
    assert PDENewtonKrylov.step is NewtonKrylov.step
