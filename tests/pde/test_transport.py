"""S_N slab transport: sweeps, DSA, GMRES, direct reference, spectral radii."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from itersolve import ConvergenceWarning, Status
from itersolve.linear import CG, GMRES
from itersolve.pde.transport import (
    SlabProblem,
    SourceIteration,
    TransportGMRES,
    direct_transport_solve,
    dsa_operator,
    gauss_legendre_sn,
    homogeneous_slab,
    reed_problem,
    spectral_radius,
    sweep,
    transport_matrix,
    transport_solve,
)

# -- catalogue of cases: (name, builder, methods expected to fail and why) -------

CASES = {
    "thick-c0.99": (lambda: homogeneous_slab(40.0, 80, c=0.99), {}),
    "thin-cells": (lambda: homogeneous_slab(2.0, 40, c=0.9, order=4), {}),
    "reflective-left": (
        lambda: SlabProblem(
            np.linspace(0, 5, 41),
            1.0,
            0.8,
            1.0,
            order=8,
            boundary=("reflective", "vacuum"),
        ),
        {},
    ),
    "both-reflective": (
        lambda: SlabProblem(
            np.linspace(0, 3, 31),
            np.linspace(1, 2, 30),
            0.5,
            1.0,
            order=6,
            boundary="reflective",
        ),
        {},
    ),
    "reed": (lambda: reed_problem(4), {}),
    "thick-cells-c0.999": (
        lambda: homogeneous_slab(200.0, 40, c=0.999),
        # cells of 5 mfp: the inconsistent cell-centred DSA diverges (Reed 1971)
        {"inconsistent-dsa": Status.DIVERGED},
    ),
}

METHODS = {
    "si": SourceIteration(tol=1e-10, max_steps=20_000),
    "dsa": SourceIteration(acceleration="dsa", tol=1e-10),
    "inconsistent-dsa": SourceIteration(acceleration="inconsistent_dsa", tol=1e-10),
    "gmres-dsa": TransportGMRES(linear_solver=GMRES(rtol=1e-12, restart=30)),
    "gmres": TransportGMRES(
        linear_solver=GMRES(rtol=1e-12, restart=30), preconditioner=None
    ),
}


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("name", METHODS)
def test_agrees_with_direct_solve(case, name):
    build, failures = CASES[case]
    problem = build()
    if name == "si" and case.startswith("thick"):
        pytest.skip("plain SI needs ~1/(1-c) sweeps here; covered by the benchmark")
    expected = failures.get(name)
    if expected is not None:
        with pytest.warns(ConvergenceWarning):
            sol = transport_solve(problem, METHODS[name])
        assert sol.status is expected
        return
    sol = transport_solve(problem, METHODS[name])
    assert sol.success, sol
    ref = direct_transport_solve(problem)
    assert np.max(np.abs(sol.x - ref)) <= 1e-8 * np.max(np.abs(ref))


def test_quadrature_matches_numpy_and_integrates_moments():
    for order in (2, 8, 32):
        mu, w = gauss_legendre_sn(order)
        assert w.sum() == pytest.approx(2.0, abs=1e-14)
        assert np.allclose(mu, -mu[::-1])
        assert np.sum(w * np.abs(mu)) == pytest.approx(1.0, abs=0.16)
        assert np.sum(w * mu**2) == pytest.approx(2 / 3, abs=1e-14)


@pytest.mark.parametrize("order", [0, 3, -2])
def test_bad_order(order):
    with pytest.raises(ValueError, match="even integer"):
        gauss_legendre_sn(order)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"sigma_t": -1.0}, "sigma_t must be >= 0"),
        ({"sigma_s": -0.1}, "sigma_s must be >= 0"),
        ({"order": 5}, "even integer"),
        ({"boundary": "periodic"}, "boundary must be"),
        ({"sigma_s": 1.2, "boundary": "reflective"}, "no solution"),
        ({"sigma_s": 1.0, "boundary": "reflective"}, "singular"),
        ({"edges": [0.0]}, "at least 2"),
        ({"edges": [0.0, 1.0, 0.5]}, "increasing"),
        ({"q": [1.0, 2.0]}, "one value per cell"),
    ],
)
def test_bad_problems(kwargs, match):
    args = {"edges": np.linspace(0, 1, 5), "sigma_t": 1.0, "sigma_s": 0.5, "q": 1.0}
    args.update(kwargs)
    order = args.pop("order", 4)
    with pytest.raises(ValueError, match=match):
        SlabProblem(order=order, **args)


def test_scattering_ratio_above_one_allowed_with_leakage():
    # subcritical thin multiplying slab: leakage keeps a solution
    p = homogeneous_slab(1.0, 20, c=1.2, order=8)
    sol = transport_solve(p, SourceIteration(acceleration="dsa", tol=1e-10))
    assert sol.success
    assert np.allclose(sol.x, direct_transport_solve(p), rtol=1e-8)


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: SourceIteration(tol=0.0), "tol must be in"),
        (lambda: SourceIteration(acceleration="dsa2"), "acceleration must be"),
        (lambda: TransportGMRES(preconditioner="ilu"), "preconditioner must be"),
        (
            lambda: TransportGMRES(linear_solver=GMRES(M="jacobi")),
            "must not carry M",
        ),
        (lambda: SourceIteration(max_steps=0), "max_steps"),
    ],
)
def test_bad_hyperparameters(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_linear_solver_must_be_gmres():
    with pytest.raises(TypeError, match="linear_solver must be a GMRES"):
        TransportGMRES(linear_solver=CG())


@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_sweep_particle_balance(backend):
    """DD is conservative: absorption + net leakage = total source, per sweep."""
    rng = np.random.default_rng(0)
    for boundary in ["vacuum", ("reflective", "vacuum"), ("vacuum", "reflective")]:
        p = SlabProblem(
            np.cumsum(rng.uniform(0.1, 2.0, 31)) - 0.1,
            rng.uniform(0.2, 3.0, 30),
            0.0,
            0.0,
            order=8,
            boundary=boundary,
        )
        source = rng.uniform(0.0, 2.0, 30)
        r = sweep(p, source, backend=backend)
        lost = np.sum(p.sigma_t * p.widths * r.phi) + sum(r.leakage)
        assert lost == pytest.approx(np.sum(source * p.widths), rel=1e-12)


def test_sweep_backends_agree():
    p = reed_problem(3)
    source = p.sigma_s * np.linspace(1, 2, p.n_cells) + p.q
    a, b = sweep(p, source, backend="numba"), sweep(p, source, backend="numpy")
    np.testing.assert_allclose(a.phi, b.phi, rtol=1e-13)
    np.testing.assert_allclose(a.phi_edge, b.phi_edge, rtol=1e-13)


def test_converged_flux_balance():
    p = SlabProblem(
        np.linspace(0, 5, 51),
        1.0,
        0.7,
        1.0,
        order=16,
        boundary=("reflective", "vacuum"),
    )
    sol = transport_solve(p, SourceIteration(acceleration="dsa", tol=1e-13))
    r = sweep(p, p.sigma_s * sol.x + p.q)
    assert r.leakage[0] == pytest.approx(0.0, abs=1e-12)
    absorbed = np.sum(p.sigma_a * p.widths * r.phi)
    assert absorbed + sum(r.leakage) == pytest.approx(5.0, rel=1e-12)


def test_direct_matrix_shape_and_vacuum_decay():
    p = homogeneous_slab(40.0, 100, c=0.0, order=4)
    A, b = transport_matrix(p)
    assert A.shape == (4 * 101, 4 * 101) and b.shape == (4 * 101,)
    phi = direct_transport_solve(p)
    # pure absorber with q = sigma_t: interior flux -> q / sigma_t = 1
    assert phi[50] == pytest.approx(1.0, abs=1e-6)
    assert phi[0] < phi[50]


def test_dsa_consistency_in_thin_limit():
    """For optically thin cells both diffusion operators discretise the same
    equation: corrections of a smooth residual agree to O(h^2) and so do the
    spectral radii."""
    errors = []
    for n in (50, 100, 200):
        p = homogeneous_slab(1.0, n, sigma_t=1.0, c=0.9)
        x = (np.arange(n) + 0.5) / n
        R = np.sin(np.pi * x)
        cons = dsa_operator(p, True).apply(R)
        inc = dsa_operator(p, False).apply(R)
        errors.append(np.max(np.abs(cons - inc)) / np.max(np.abs(cons)))
    assert errors[-1] < 2e-3
    assert errors[0] / errors[-1] > 10  # second order: 16x expected
    a = spectral_radius(1.0, 0.99, 0.01, 200, 8, "dsa")
    b = spectral_radius(1.0, 0.99, 0.01, 200, 8, "inconsistent_dsa")
    assert a == pytest.approx(b, rel=0.02)


def test_s2_consistent_dsa_is_exact():
    """S2 diamond difference is itself a diffusion discretisation, so the
    consistent correction removes the whole error: rho = 0."""
    assert spectral_radius(1.0, 0.9999, 1.0, 20, 2, "dsa") < 1e-8
    assert spectral_radius(1.0, 0.9999, 1.0, 20, 2, "inconsistent_dsa") > 0.1


def test_consistent_operator_is_symmetric_positive_definite():
    p = reed_problem(2)
    D = dsa_operator(p, True).dense()
    assert np.allclose(D, D.T)
    assert np.linalg.eigvalsh(D).min() > 0


@pytest.mark.parametrize("sigma_h", [0.1, 1.0, 10.0])
def test_spectral_radius_fourier_bounds(sigma_h):
    c = 0.99
    dsa = spectral_radius(1.0, c, sigma_h, 100, 8, "dsa")
    assert 0.1 * c < dsa <= 0.2247 * c * 1.01
    bad = spectral_radius(1.0, c, sigma_h, 100, 8, "inconsistent_dsa")
    assert (bad > 1) == (sigma_h >= 2)


def test_spectral_radius_si_equals_c_for_thick_slab():
    rho = spectral_radius(1.0, 0.9, 1.0, 200, 4, "source_iteration")
    assert rho == pytest.approx(0.9, abs=0.01)


def test_spectral_radius_bad_input():
    with pytest.raises(ValueError, match="method must be"):
        spectral_radius(1.0, 0.9, 1.0, 10, 4, "jacobi")
    with pytest.raises(ValueError, match="sigma_t must be positive"):
        spectral_radius(0.0, 0.9, 1.0, 10, 4, "dsa")


# -- the common battery -----------------------------------------------------------


@pytest.mark.parametrize("name", METHODS)
def test_max_steps_one(name):
    method = METHODS[name]
    extra = (
        {"linear_solver": GMRES(rtol=1e-12, restart=1)}
        if isinstance(method, TransportGMRES)
        else {}
    )
    cfg = type(method)(**{**method.__dict__, "max_steps": 1, **extra})
    p = homogeneous_slab(10.0, 20, c=0.9)
    with pytest.warns(ConvergenceWarning):
        sol = transport_solve(p, cfg, record=True)
    assert sol.status is Status.MAX_STEPS
    assert sol.num_steps == 1 and len(sol.trace) == 1


def test_nonfinite_input():
    p = homogeneous_slab(10.0, 20, c=0.9, q=float("nan"))
    with pytest.warns(ConvergenceWarning):
        sol = transport_solve(p)
    assert sol.status is Status.NONFINITE_INPUT
    x0 = np.full(20, np.nan)
    with pytest.warns(ConvergenceWarning):
        sol = transport_solve(homogeneous_slab(10.0, 20), x0=x0)
    assert sol.status is Status.NONFINITE_INPUT


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_dtype_and_kind_preserved(dtype):
    sigma_t = torch.ones(20, dtype=dtype)
    p = SlabProblem(np.linspace(0, 10, 21), sigma_t, 0.5, 1.0, order=4)
    sol = transport_solve(p)
    assert isinstance(sol.x, torch.Tensor) and sol.x.dtype == dtype
    ref = direct_transport_solve(p)
    tol = 1e-6 if dtype == torch.float32 else 1e-9
    assert torch.allclose(sol.x, ref, rtol=tol)
    p_np = SlabProblem(np.linspace(0, 10, 21), np.ones(20), 0.5, 1.0, order=4)
    assert isinstance(transport_solve(p_np).x, np.ndarray)


def test_inputs_unmutated_and_reproducible():
    sigma_t = np.linspace(1, 2, 20)
    keep = sigma_t.copy()
    p = SlabProblem(np.linspace(0, 10, 21), sigma_t, 0.5, 1.0, order=4)
    x0 = np.ones(20)
    a = transport_solve(p, TransportGMRES(), x0=x0)
    b = transport_solve(p, TransportGMRES(), x0=x0)
    assert np.array_equal(sigma_t, keep) and np.array_equal(x0, np.ones(20))
    assert np.array_equal(a.x, b.x)
    assert spectral_radius(1, 0.9, 1, 50, 4, "dsa", seed=3) == spectral_radius(
        1, 0.9, 1, 50, 4, "dsa", seed=3
    )


def test_successive_difference_alone_would_stop_too_early():
    """The (1 - rho) factor matters: with rho ~ 0.999 the flux is still far off
    when ||phi^{l+1} - phi^l|| / ||phi|| first drops below tol."""
    p = homogeneous_slab(100.0, 100, c=0.999, order=4)
    ref = direct_transport_solve(p)
    naive: list = []

    def watch(info):
        if not naive and info.metrics["relative_difference"] <= 1e-6:
            naive.append(info.x.numpy().copy())

    sol = transport_solve(
        p, SourceIteration(tol=1e-6, max_steps=50_000), callback=watch
    )
    assert sol.success
    scale = np.max(np.abs(ref))
    assert np.max(np.abs(sol.x - ref)) <= 2e-6 * scale
    assert np.max(np.abs(naive[0] - ref)) >= 1e-4 * scale


def test_bad_front_door_arguments():
    p = homogeneous_slab(1.0, 5)
    with pytest.raises(TypeError, match="SlabProblem"):
        transport_solve("slab")
    with pytest.raises(TypeError, match="method must be"):
        transport_solve(p, "dsa")
    with pytest.raises(ValueError, match="x0 must have shape"):
        transport_solve(p, x0=np.ones(3))
