"""Newton–Schulz inverse / pseudo-inverse / least squares (issue 3, item 3)."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from itersolve import (
    ConvergenceError,
    ConvergenceWarning,
    Status,
)
from itersolve.linear import (
    NewtonSchulz,
    newton_schulz_inverse,
    newton_schulz_lstsq,
)


def spd(n: int, cond: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    Q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    return (Q * np.geomspace(1.0, cond, n)) @ Q.T


def nonsymmetric(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.eye(n) * 3 + rng.standard_normal((n, n)) / np.sqrt(n)


def low_rank(m: int, d: int, rank: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.standard_normal((m, rank)) @ rng.standard_normal((rank, d))


def regression(kappa: float, d: int = 20, n: int = 40, seed: int = 0):
    """The spec's ill-conditioned sampler: covariance eigenvalues half kappa, half 1."""
    rng = np.random.default_rng(seed)
    Q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    eig = np.r_[np.full(d // 2, kappa), np.ones(d - d // 2)]
    cov = (Q * eig) @ Q.T
    cov /= np.trace(cov) / d
    X = rng.standard_normal((n, d)) @ np.linalg.cholesky(cov).T
    return X, X @ rng.standard_normal(d)


# Catalogue: (name, matrix builder, methods expected to fail and why).
CASES = {
    "spd-cond10": (lambda: spd(12, 10.0), {}),
    "spd-cond1e3": (lambda: spd(12, 1e3), {}),
    # Eigenvalues near 3 with positive real parts: even the identity start works.
    "nonsymmetric": (lambda: nonsymmetric(10), {}),
    "rotation": (
        lambda: np.array([[0.0, 1.0], [-1.0, 0.0]]),
        {"identity": "eigenvalues +-i lie outside the disc |1 - z| < 1"},
    ),
    "indefinite": (
        lambda: np.diag([3.0, -2.0, 1.0, -0.5]),
        {"identity": "negative eigenvalues: diverges"},
    ),
}

# Registry of valid configurations (by start).
CONFIGS = {
    "frobenius": NewtonSchulz(tol=1e-11),
    "spectral": NewtonSchulz(tol=1e-11, start="spectral"),
    "identity": NewtonSchulz(tol=1e-11, start="identity"),
}

ERROR_CONFIGS = [
    (dict(tol=0.0), ValueError, "tol must be positive"),
    (dict(tol=-1e-3), ValueError, "tol must be positive"),
    (dict(start="eye"), ValueError, "start must be one of"),
    (dict(start=-0.5), ValueError, r"start \(alpha\) must be positive, got -0.5"),
    (dict(start=[1.0]), TypeError, "start must be a string or a positive float"),
    (dict(target="inv"), ValueError, "target must be one of"),
    (
        dict(target="pseudoinverse", start="identity"),
        ValueError,
        "cannot converge to the pseudo-inverse",
    ),
    (dict(max_steps=0), ValueError, "max_steps must be a positive int"),
]


@pytest.mark.parametrize(("kwargs", "error", "match"), ERROR_CONFIGS)
def test_bad_hyperparameters_raise(kwargs, error, match):
    with pytest.raises(error, match=match):
        NewtonSchulz(**kwargs)


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("config", list(CONFIGS))
def test_inverse_agrees_with_torch(case, config):
    build, expected_failures = CASES[case]
    S = build()
    method = CONFIGS[config]
    if config in expected_failures:
        with pytest.warns(ConvergenceWarning):
            sol = newton_schulz_inverse(S, method)
        assert not sol.success
        return
    sol = newton_schulz_inverse(S, method)
    assert sol.success, sol
    reference = torch.linalg.inv(torch.from_numpy(S)).numpy()
    cond = np.linalg.cond(S)
    np.testing.assert_allclose(
        sol.x, reference, atol=1e-11 * cond * np.abs(reference).max()
    )
    assert np.linalg.norm(np.eye(len(S)) - S @ sol.x) <= 1e-11 * (1 + 1e-6)
    assert sol.stats["matmuls"] == 2 * sol.num_steps + 1


def test_float32_loose_and_dtype_kind_preserved():
    S = spd(10, 50.0).astype(np.float32)
    sol = newton_schulz_inverse(S)
    assert sol.success and sol.x.dtype == np.float32 and isinstance(sol.x, np.ndarray)
    np.testing.assert_allclose(sol.x @ S, np.eye(10), atol=1e-3)
    St = torch.from_numpy(S)
    sol_t = newton_schulz_inverse(St)
    assert isinstance(sol_t.x, torch.Tensor) and sol_t.x.dtype == torch.float32
    # np.testing: torch.testing's first import costs seconds.
    np.testing.assert_array_equal(sol_t.x.numpy(), sol.x)


def test_iterations_match_log_cond_and_quadratic_convergence_in_trace():
    steps = {}
    for cond in (10.0, 1e3):
        sol = newton_schulz_inverse(spd(16, cond), NewtonSchulz(tol=1e-12), record=True)
        assert sol.success
        r = sol.trace["residual"]
        assert len(r) == sol.num_steps
        # E_{k+1} = E_k^2, so ||E_{k+1}||_F <= ||E_k||_F^2 (up to rounding).
        assert np.all(r[1:] <= r[:-1] ** 2 * (1 + 1e-8) + 1e-13)
        # From ||E|| < 1/2 to 1e-12 takes at most log2(log(1e-12)/log(1/2)) + 1.
        assert np.sum((r < 0.5) & (r > 1e-12)) <= 6
        steps[cond] = sol.num_steps
    # Frobenius start: about 2 log2 cond(S) steps to reach the quadratic regime.
    assert 2 * np.log2(100) - 3 <= steps[1e3] - steps[10.0] <= 2 * np.log2(100) + 3


def test_batched_matches_unbatched_each_matrix_stops_on_its_own():
    mats = np.stack([spd(8, c, seed=i) for i, c in enumerate([1.0, 10.0, 1e4])])
    batch = newton_schulz_inverse(torch.from_numpy(mats), NewtonSchulz(tol=1e-11))
    assert batch.success and batch.x.shape == (3, 8, 8)
    for i in range(3):
        single = newton_schulz_inverse(mats[i], NewtonSchulz(tol=1e-11))
        assert single.num_steps <= batch.num_steps
        np.testing.assert_allclose(
            batch.x[i].numpy(), single.x, rtol=0, atol=1e-12 * 1e4
        )
    assert batch.extras["residual"].shape == (3,)
    assert bool((batch.extras["residual"] <= 1e-11).all())


@pytest.mark.parametrize(
    "S",
    [
        np.diag([2.0, 1.0, 0.0]),
        low_rank(12, 12, 5),
        low_rank(15, 9, 4, seed=1),  # rectangular, rank deficient
        np.random.default_rng(2).standard_normal((7, 11)),  # wide, full rank
    ],
    ids=["diagonal-singular", "square-rank5", "tall-rank4", "wide"],
)
def test_range_start_converges_to_pseudoinverse(S):
    sol = newton_schulz_inverse(S, NewtonSchulz(target="pseudoinverse", tol=1e-13))
    assert sol.success, sol
    reference = torch.linalg.pinv(torch.from_numpy(S)).numpy()
    np.testing.assert_allclose(sol.x, reference, atol=1e-9 * np.abs(reference).max())


def test_singular_with_target_inverse_is_honest_stagnation():
    S = low_rank(8, 8, 3)
    with pytest.warns(ConvergenceWarning, match="STAGNATION"):
        sol = newton_schulz_inverse(S)
    assert sol.status is Status.STAGNATION and np.isfinite(sol.x).all()


def test_unsafe_start_reports_divergence():
    S = spd(6, 10.0)
    alpha = 5.0 / np.linalg.norm(S, 2) ** 2  # > 2 / sigma_max^2
    with pytest.warns(ConvergenceWarning):
        sol = newton_schulz_inverse(S, NewtonSchulz(start=alpha))
    assert sol.status in (Status.DIVERGED, Status.NONFINITE)


def test_float32_beyond_resolution_is_not_reported_as_success():
    S = spd(12, 1e5).astype(np.float32)
    with pytest.warns(ConvergenceWarning):
        sol = newton_schulz_inverse(S, NewtonSchulz(tol=1e-6))
    assert sol.status is Status.STAGNATION


def test_max_steps_one_gives_one_row_trace():
    with pytest.warns(ConvergenceWarning, match="MAX_STEPS"):
        sol = newton_schulz_inverse(
            spd(6, 10.0), NewtonSchulz(max_steps=1), record=True
        )
    assert sol.status is Status.MAX_STEPS and sol.num_steps == 1
    assert sol.trace is not None and len(sol.trace) == 1
    assert set(sol.trace.columns) >= {"step", "time", "residual", "identity_residual"}


def test_nan_input_gives_nonfinite_input():
    S = spd(5, 10.0)
    S[1, 2] = np.nan
    with pytest.warns(ConvergenceWarning, match="NONFINITE_INPUT"):
        sol = newton_schulz_inverse(S)
    assert sol.status is Status.NONFINITE_INPUT and sol.num_steps == 0
    X, y = regression(1.0)
    y[3] = np.inf
    with pytest.warns(ConvergenceWarning, match="NONFINITE_INPUT"):
        assert newton_schulz_lstsq(X, y).status is Status.NONFINITE_INPUT


def test_throw_raises_convergence_error():
    with pytest.raises(ConvergenceError):
        newton_schulz_inverse(spd(6, 10.0), NewtonSchulz(max_steps=1), throw=True)


def test_inputs_are_not_mutated():
    S = torch.from_numpy(spd(6, 10.0))
    X, y = (torch.from_numpy(a) for a in regression(10.0))
    copies = [t.clone() for t in (S, X, y)]
    newton_schulz_inverse(S)
    newton_schulz_lstsq(X, y)
    for original, copy in zip((S, X, y), copies, strict=True):
        assert torch.equal(original, copy)


def test_warm_start_takes_fewer_steps():
    S = spd(10, 100.0)
    cold = newton_schulz_inverse(S, NewtonSchulz(tol=1e-12))
    nearby = newton_schulz_inverse(S + 1e-3 * np.eye(10), NewtonSchulz(tol=1e-12))
    warm = newton_schulz_inverse(S, NewtonSchulz(tol=1e-12), x0=nearby.x)
    assert warm.success and warm.num_steps <= 4 < cold.num_steps
    np.testing.assert_allclose(warm.x, cold.x, atol=1e-9)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: newton_schulz_inverse(np.ones(3)), "at least 2 dimensions"),
        (lambda: newton_schulz_inverse(np.ones((3, 4))), "needs a square S"),
        (
            lambda: newton_schulz_inverse(
                np.ones((3, 4)), NewtonSchulz(start="identity")
            ),
            "needs a square S",
        ),
        (
            lambda: newton_schulz_inverse(np.eye(3), x0=np.eye(2)),
            re.escape("starting inverse must have shape (3, 3)"),
        ),
        (lambda: newton_schulz_lstsq(np.ones((5, 3)), np.ones(4)), "y must have shape"),
        (lambda: newton_schulz_lstsq(np.ones(5), np.ones(5)), "X must have shape"),
        (lambda: newton_schulz_inverse(np.eye(2), CONFIGS and "cg"), "method must be"),
    ],
)
def test_bad_shapes_raise(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call()


# -- least squares ---------------------------------------------------------------


@pytest.mark.parametrize(("dtype", "tol"), [(np.float64, 1e-9), (np.float32, 1e-3)])
def test_lstsq_agrees_with_numpy(dtype, tol):
    X, y = regression(10.0)
    y = y + 0.1 * np.random.default_rng(5).standard_normal(y.shape)  # inconsistent
    X, y = X.astype(dtype), y.astype(dtype)
    sol = newton_schulz_lstsq(X, y)
    assert sol.success and sol.x.dtype == dtype and sol.x.shape == (20,)
    ref = np.linalg.lstsq(X.astype(np.float64), y.astype(np.float64), rcond=None)[0]
    assert np.linalg.norm(sol.x - ref) <= tol * np.linalg.norm(ref)
    assert sol.extras["inverse"].shape == (20, 20)


def test_lstsq_underdetermined_gives_minimum_norm_solution():
    rng = np.random.default_rng(3)
    X, y = rng.standard_normal((8, 20)), rng.standard_normal(8)
    sol = newton_schulz_lstsq(X, y, NewtonSchulz(tol=1e-12))
    assert sol.success and sol.extras["inverse"].shape == (8, 8)  # the n x n Gram
    np.testing.assert_allclose(sol.x, np.linalg.pinv(X) @ y, atol=1e-10)


def test_lstsq_rank_deficient_matches_numpy_minimum_norm():
    X = low_rank(30, 10, 4, seed=4)
    y = np.random.default_rng(4).standard_normal(30)
    sol = newton_schulz_lstsq(X, y, NewtonSchulz(target="pseudoinverse", tol=1e-13))
    assert sol.success
    ref = np.linalg.lstsq(X, y, rcond=None)[0]
    np.testing.assert_allclose(sol.x, ref, atol=1e-8 * np.abs(ref).max())


def test_lstsq_batched_and_multiple_targets_match_torch():
    g = torch.Generator().manual_seed(0)
    X = torch.randn(16, 40, 20, generator=g, dtype=torch.float64)
    Y = torch.randn(16, 40, 3, generator=g, dtype=torch.float64)
    sol = newton_schulz_lstsq(X, Y, NewtonSchulz(tol=1e-12))
    assert sol.success and sol.x.shape == (16, 20, 3)
    reference = torch.linalg.lstsq(X, Y).solution
    np.testing.assert_allclose(sol.x.numpy(), reference.numpy(), rtol=0, atol=1e-10)
    one = newton_schulz_lstsq(X[5], Y[5, :, 1], NewtonSchulz(tol=1e-12))
    np.testing.assert_allclose(
        sol.x[5, :, 1].numpy(), one.x.numpy(), rtol=0, atol=1e-12
    )


@pytest.mark.parametrize(("kappa", "low", "high"), [(1.0, 13, 16), (100.0, 23, 28)])
def test_iterations_to_1e_8_relative_error_follow_the_spec(kappa, low, high):
    """Spec 01 quick check: 15 (kappa=1) and 26 (kappa=100) Newton iterations."""
    X, y = regression(kappa)
    ref = np.linalg.lstsq(X, y, rcond=None)[0]
    path = []

    def stop(info):
        path.append(info.x.clone())
        return float(np.linalg.norm(info.x.numpy() - ref)) <= 1e-8 * np.linalg.norm(ref)

    sol = newton_schulz_lstsq(X, y, NewtonSchulz(tol=1e-14), callback=stop)
    assert sol.status is Status.STOPPED_BY_CALLBACK
    assert low <= sol.num_steps <= high and len(path) == sol.num_steps
    np.testing.assert_allclose(path[-1].numpy(), sol.x)


def test_no_warning_on_success():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        newton_schulz_lstsq(*regression(1.0))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_batched_inverse_on_cuda_matches_cpu():
    mats = torch.from_numpy(np.stack([spd(32, 10.0**i, seed=i) for i in range(4)]))
    cpu = newton_schulz_inverse(mats, NewtonSchulz(tol=1e-11))
    gpu = newton_schulz_inverse(mats.cuda(), NewtonSchulz(tol=1e-11))
    assert gpu.success and gpu.x.device.type == "cuda" and gpu.x.dtype == torch.float64
    assert gpu.num_steps == cpu.num_steps
    np.testing.assert_allclose(gpu.x.cpu().numpy(), cpu.x.numpy(), rtol=1e-8, atol=1e-8)


@given(
    n=st.integers(1, 8),
    log_cond=st.floats(0.0, 4.0),
    seed=st.integers(0, 2**16),
    batch=st.integers(1, 3),
)
def test_property_inverse_of_random_spd_batches(n, log_cond, seed, batch):
    mats = np.stack([spd(n, 10.0**log_cond, seed + i) for i in range(batch)])
    sol = newton_schulz_inverse(mats, NewtonSchulz(tol=1e-10))
    assert sol.success
    assert sol.num_steps <= 2 * np.log2(10.0**log_cond * n) + 10
    eye = np.broadcast_to(np.eye(n), mats.shape)
    assert np.all(np.linalg.norm(eye - mats @ sol.x, axis=(-2, -1)) <= 1e-10)


def test_identity_start_halves_the_steps_on_spd_and_spectral_saves_some():
    S = spd(12, 1e3)
    steps = {
        start: newton_schulz_inverse(S, NewtonSchulz(tol=1e-11, start=start)).num_steps
        for start in ("frobenius", "spectral", "identity")
    }
    assert steps["spectral"] <= steps["frobenius"]
    # Identity: e_min = 1 - lambda_min / ||S||_F instead of 1 - lambda_min^2 / ...
    assert steps["identity"] <= 0.7 * steps["frobenius"]
