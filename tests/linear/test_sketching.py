"""Randomized Kaczmarz and sketch-and-project through ``linear_solve`` (issue 3, 4)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as spla
import torch

from itersolve import (
    ConvergenceWarning,
    Status,
    linear_solve,
)
from itersolve.linear import (
    RandomizedKaczmarz,
    SketchAndProject,
)
from itersolve.problems import poisson


def consistent_tall(m: int = 120, n: int = 15, seed: int = 0):
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((m, n)) * rng.uniform(0.2, 3.0, size=(m, 1))
    return A, A @ rng.standard_normal(n)


def spd(n: int, cond: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    Q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    return (Q * np.geomspace(1.0, cond, n)) @ Q.T


def kkt(seed: int = 0):
    """A small saddle-point (KKT) system [[B, G^T], [G, 0]], as in sketched SQP."""
    rng = np.random.default_rng(seed)
    B = spd(12, 10.0, seed)
    G = rng.standard_normal((4, 12))
    K = np.block([[B, G.T], [G, np.zeros((4, 4))]])
    return K, K @ rng.standard_normal(16)


def indefinite(seed: int = 0):
    A = np.diag(np.r_[np.linspace(1, 3, 10), -np.linspace(1, 3, 10)])
    return A, A @ np.random.default_rng(seed).standard_normal(20)


def inconsistent(seed: int = 0):
    A, b = consistent_tall(60, 8, seed)
    return A, b + np.random.default_rng(seed + 1).standard_normal(60)


# Catalogue: case -> (builder, {config name: why it is expected to fail}).
CASES = {
    "tall-consistent": (consistent_tall, {}),
    "square-spd": (lambda: (spd(20, 10.0), spd(20, 10.0) @ np.ones(20)), {}),
    # Kaczmarz-type rates scale with cond(A)^2: keep the Poisson matrix small.
    "poisson1d": (
        lambda: (poisson(6, dim=1).toarray(), poisson(6, dim=1) @ np.ones(6)),
        {},
    ),
    "kkt-saddle": (kkt, {}),
    "indefinite": (indefinite, {}),
    "inconsistent": (
        inconsistent,
        {
            name: "b is not in the range of A: Kaczmarz-type methods stall"
            for name in ("rk", "rk-uniform", "rk-incremental", "block", "gaussian")
        },
    ),
}

# Registry of valid configurations.
CONFIGS = {
    "rk": RandomizedKaczmarz(rtol=1e-9, max_steps=3000),
    "rk-uniform": RandomizedKaczmarz(rtol=1e-9, sampling="uniform", max_steps=3000),
    "rk-incremental": RandomizedKaczmarz(
        rtol=1e-9, residual="incremental", max_steps=3000
    ),
    "block": SketchAndProject(rtol=1e-9, sketch_size=6, max_steps=5000),
    "gaussian": SketchAndProject(
        rtol=1e-9, sketch="gaussian", sketch_size=6, max_steps=5000
    ),
}

ERROR_CONFIGS = [
    (RandomizedKaczmarz, dict(rtol=-1.0), "rtol must be >= 0, got -1.0"),
    (RandomizedKaczmarz, dict(rtol=0.0, atol=0.0), "cannot both be 0"),
    (RandomizedKaczmarz, dict(sampling="norm"), "sampling must be one of"),
    (RandomizedKaczmarz, dict(residual="exact"), "residual must be one of"),
    (RandomizedKaczmarz, dict(rows_per_step=0), "rows_per_step must be a positive"),
    (RandomizedKaczmarz, dict(seed=-3), "seed must be a non-negative int"),
    (RandomizedKaczmarz, dict(seed="a"), "seed must be a non-negative int"),
    (SketchAndProject, dict(atol=-1e-3), "atol must be >= 0"),
    (SketchAndProject, dict(sketch="srht"), "sketch must be one of"),
    (SketchAndProject, dict(sketch_size=0), "sketch_size must be a positive int"),
    (SketchAndProject, dict(sketch_size=2.5), "sketch_size must be a positive int"),
    (SketchAndProject, dict(sampling="leverage"), "sampling must be one of"),
    (SketchAndProject, dict(max_steps=-1), "max_steps must be a positive int"),
]


@pytest.mark.parametrize(("cls", "kwargs", "match"), ERROR_CONFIGS)
def test_bad_hyperparameters_raise(cls, kwargs, match):
    with pytest.raises(ValueError, match=match):
        cls(**kwargs)


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("config", list(CONFIGS))
def test_converges_and_agrees_with_lstsq_and_lsqr(case, config):
    build, expected_failures = CASES[case]
    A, b = build()
    method = CONFIGS[config]
    if config in expected_failures:
        with pytest.warns(ConvergenceWarning):
            sol = linear_solve(
                A, b, method.__class__(**{**_fields(method), "max_steps": 50})
            )
        assert not sol.success and np.isfinite(sol.x).all()
        return
    sol = linear_solve(A, b, method)
    assert sol.success, (case, config, sol)
    assert np.linalg.norm(b - A @ sol.x) <= 1e-9 * np.linalg.norm(b) * (1 + 1e-6)
    reference = np.linalg.lstsq(A, b, rcond=None)[0]
    scale = np.linalg.cond(A) * np.abs(reference).max()
    np.testing.assert_allclose(sol.x, reference, atol=1e-8 * scale)
    lsqr = spla.lsqr(A, b, atol=1e-12, btol=1e-12)[0]
    np.testing.assert_allclose(sol.x, lsqr, atol=1e-7 * scale)


def _fields(method):
    import dataclasses

    return {f.name: getattr(method, f.name) for f in dataclasses.fields(method)}


@pytest.mark.parametrize("config", list(CONFIGS))
def test_float32_loose_dtype_and_kind_preserved(config):
    A, b = consistent_tall()
    method = CONFIGS[config].__class__(**{**_fields(CONFIGS[config]), "rtol": 1e-4})
    sol = linear_solve(A.astype(np.float32), b.astype(np.float32), method)
    assert sol.success and sol.x.dtype == np.float32 and isinstance(sol.x, np.ndarray)
    assert np.linalg.norm(b - A @ sol.x) <= 2e-4 * np.linalg.norm(b)
    sol_t = linear_solve(torch.from_numpy(A), torch.from_numpy(b), CONFIGS[config])
    assert isinstance(sol_t.x, torch.Tensor) and sol_t.x.dtype == torch.float64


@pytest.mark.parametrize("config", list(CONFIGS))
@pytest.mark.parametrize("where", ["A", "b"])
def test_nan_input_gives_nonfinite_input(config, where):
    A, b = consistent_tall()
    (A if where == "A" else b)[3] = np.nan
    with pytest.warns(ConvergenceWarning, match="NONFINITE_INPUT"):
        sol = linear_solve(A, b, CONFIGS[config])
    assert sol.status is Status.NONFINITE_INPUT and sol.num_steps == 0


@pytest.mark.parametrize("config", list(CONFIGS))
@pytest.mark.filterwarnings("ignore::itersolve.ConvergenceWarning")
def test_seeded_runs_reproducible_and_seeds_differ(config):
    A, b = consistent_tall()
    fields = _fields(CONFIGS[config])
    one = linear_solve(
        A, b, CONFIGS[config].__class__(**{**fields, "max_steps": 3}), record=True
    )
    two = linear_solve(
        A, b, CONFIGS[config].__class__(**{**fields, "max_steps": 3}), record=True
    )
    other = linear_solve(
        A, b, CONFIGS[config].__class__(**{**fields, "max_steps": 3, "seed": 7})
    )
    np.testing.assert_array_equal(one.x, two.x)
    assert not np.array_equal(one.x, other.x)
    gen = torch.Generator().manual_seed(0)
    with_generator = linear_solve(
        A, b, CONFIGS[config].__class__(**{**fields, "max_steps": 3, "seed": gen})
    )
    np.testing.assert_array_equal(one.x, with_generator.x)


@pytest.mark.parametrize("config", list(CONFIGS))
def test_inputs_unmutated_and_batched_columns(config):
    A, b = consistent_tall()
    B = np.stack([b, -2 * b, np.zeros_like(b)], axis=1)
    A_copy, B_copy = A.copy(), B.copy()
    x0 = np.zeros((A.shape[1], 3))
    sol = linear_solve(A, B, CONFIGS[config], x0=x0)
    assert sol.success and sol.x.shape == (A.shape[1], 3)
    np.testing.assert_array_equal(A, A_copy)
    np.testing.assert_array_equal(B, B_copy)
    assert (x0 == 0).all()
    assert (sol.x[:, 2] == 0).all()
    ref = np.linalg.lstsq(A, B, rcond=None)[0]
    np.testing.assert_allclose(sol.x, ref, atol=1e-7 * np.abs(ref).max())


def test_incremental_residual_stops_inside_a_sweep_and_uses_fewer_rows():
    A, b = consistent_tall(400, 10)
    sweep = linear_solve(A, b, RandomizedKaczmarz(rtol=1e-6, rows_per_step=400))
    incremental = linear_solve(
        A, b, RandomizedKaczmarz(rtol=1e-6, residual="incremental")
    )
    assert sweep.success and incremental.success
    assert sweep.stats["row_operations"] % 400 == 0
    assert incremental.stats["row_operations"] < sweep.stats["row_operations"]
    assert incremental.stats["row_operations"] % 400 != 0


@pytest.mark.filterwarnings("ignore::itersolve.ConvergenceWarning")
def test_row_norm_sampling_meets_the_strohmer_vershynin_rate():
    """E||x_k - x*||^2 <= (1 - sigma_min^2 / ||A||_F^2)^k ||x*||^2 from x0 = 0."""
    rng = np.random.default_rng(1)
    A = rng.standard_normal((50, 5)) * rng.uniform(0.1, 5.0, size=(50, 1))
    x_true = rng.standard_normal(5)
    rate = 1 - np.linalg.svd(A, compute_uv=False)[-1] ** 2 / np.sum(A**2)
    rows = 30
    errors = [
        np.sum(
            (
                linear_solve(
                    A,
                    A @ x_true,
                    RandomizedKaczmarz(max_steps=1, rows_per_step=rows, seed=seed),
                ).x
                - x_true
            )
            ** 2
        )
        for seed in range(20)
    ]
    assert np.mean(errors) <= rate**rows * np.sum(x_true**2)


def test_inner_accuracy_rule_matches_its_formula():
    """The SQP inner rule ||r|| <= tol ||b||: loose tol stops early, tight later."""
    A, b = kkt(3)
    loose = linear_solve(A, b, SketchAndProject(rtol=1e-2, sketch_size=8))
    tight = linear_solve(A, b, SketchAndProject(rtol=1e-7, sketch_size=8))
    for sol, tol in ((loose, 1e-2), (tight, 1e-7)):
        assert sol.success
        assert np.linalg.norm(b - A @ sol.x) <= tol * np.linalg.norm(b)
    assert loose.num_steps < tight.num_steps


def test_sparse_and_rectangular_shapes_and_errors():
    A, b = consistent_tall()
    sol = linear_solve(sp.csr_array(A), b, RandomizedKaczmarz(rtol=1e-8))
    assert sol.success
    with pytest.raises(ValueError, match="b must have shape"):
        linear_solve(A, b[:-1], RandomizedKaczmarz())
    with pytest.raises(ValueError, match="x0 must have shape"):
        linear_solve(A, b, SketchAndProject(), x0=np.zeros(A.shape[0]))


def test_singular_consistent_square_system_converges_to_a_solution():
    A = np.array([[1.0, 1.0], [2.0, 2.0], [0.0, 1.0]])  # rank 2, tall
    A = np.vstack([A, A[0] + A[2]])
    b = A @ np.array([1.0, -1.0])
    for method in (
        RandomizedKaczmarz(rtol=1e-10),
        SketchAndProject(rtol=1e-10, sketch_size=2),
    ):
        sol = linear_solve(A, b, method)
        assert sol.success and np.allclose(sol.x, [1.0, -1.0])


def test_sketch_and_project_stagnates_honestly_on_inconsistent_systems():
    A, b = inconsistent()
    with pytest.warns(ConvergenceWarning):
        sol = linear_solve(
            A, b, SketchAndProject(rtol=1e-6, sketch_size=8, max_steps=400)
        )
    assert sol.status in (Status.MAX_STEPS, Status.STAGNATION)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("sketch", ["block", "gaussian"])
def test_sketch_and_project_on_cuda(sketch):
    A, b = consistent_tall()
    method = SketchAndProject(rtol=1e-9, sketch=sketch, sketch_size=6)
    sol = linear_solve(torch.from_numpy(A).cuda(), torch.from_numpy(b).cuda(), method)
    assert sol.success and sol.x.device.type == "cuda"
    np.testing.assert_allclose(
        sol.x.cpu().numpy(), np.linalg.lstsq(A, b, rcond=None)[0], atol=1e-7
    )
    rk = linear_solve(
        torch.from_numpy(A).cuda(),
        torch.from_numpy(b).cuda(),
        RandomizedKaczmarz(rtol=1e-9),
    )
    assert rk.success and rk.x.device.type == "cuda"
