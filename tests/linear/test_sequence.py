"""SequenceSolver and the sequence problems (shifted Laplacians, 2-D heat equation)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from itersolve import ConvergenceWarning, Status, linear_solve
from itersolve.linear import CG, SOR, SSORPCG, SequenceSolver, optimal_sor_omega
from itersolve.linear._relaxation_kernels import HAVE_NUMBA, sor_count
from itersolve.linear.tuning import DEFAULT_GRID, ChebCB, TsallisINF, replay
from itersolve.problems import HeatEquation2D, shifted_laplacian_sequence


def test_online_play_equals_table_replay():
    """Solving online and replaying the cost table give the same game (same seed)."""
    if not HAVE_NUMBA:
        pytest.skip("the cost table uses the compiled count")
    seq = shifted_laplacian_sequence(12, distribution="low-variance", seed=3)
    online = SequenceSolver(SOR(rtol=1e-8), TsallisINF(seed=5), warm_start=False)
    for A, b, _ in seq:
        assert online.solve(A, b).success
    table = np.array([sor_count(A, b, DEFAULT_GRID) for A, b, _ in seq])
    costs, arms = replay(TsallisINF(seed=5), table)
    np.testing.assert_array_equal(online.history.costs, costs)
    np.testing.assert_array_equal(online.history.omegas, DEFAULT_GRID[arms])


def test_contextual_tuner_sees_the_context():
    seq = shifted_laplacian_sequence(6, seed=1)
    solver = SequenceSolver(
        SOR(rtol=1e-6), ChebCB(context_range=seq.context_range, seed=0)
    )
    for A, b, c in seq:
        sol = solver.solve(A, b, context=c)
        assert sol.success and sol.extras["omega"] in DEFAULT_GRID
    assert solver.history.contexts == list(seq.shifts)
    with pytest.raises(ValueError, match="needs a context"):
        solver.solve(seq.matrix(0), seq.rhs[0])


def test_heat_simulation_through_the_sequence_solver_matches_direct_solves():
    heat = HeatEquation2D(12, steps=40, stoptime=1.0)
    solver = SequenceSolver(SSORPCG(omega=1.5, rtol=1e-10))
    u = reference = heat.initial
    for k in range(40):
        A, b, _ = heat.system(k, u)
        u = solver.solve(A, b, x0=u).x
        A, b, _ = heat.system(k, reference)
        reference = spla.spsolve(sp.csc_array(A), b)
    assert np.linalg.norm(u - reference) <= 1e-8 * np.linalg.norm(reference)


def test_warm_start_saves_iterations_on_slowly_varying_systems():
    base = shifted_laplacian_sequence(1, seed=0)
    b = base.rhs[0]
    totals = {}
    for warm in (False, True):
        solver = SequenceSolver(SOR(omega=1.5, rtol=1e-8), warm_start=warm)
        for t in range(10):
            A = base.A + (0.1 + 0.002 * t) * sp.eye_array(100)
            assert solver.solve(A, b).success
        totals[warm] = solver.history.total_cost
    assert totals[True] < 0.8 * totals[False]


def test_failed_solve_costs_the_cap_and_is_recorded():
    A = sp.csr_array(shifted_laplacian_sequence(1).matrix(0))
    b = np.ones(100)
    tuner = TsallisINF([1.0, 1.9], seed=0)
    solver = SequenceSolver(SOR(rtol=1e-12, max_steps=3), tuner)
    with pytest.warns(ConvergenceWarning, match="MAX_STEPS"):
        sol = solver.solve(A, b)
    assert sol.status is Status.MAX_STEPS
    assert solver.history.costs == [3] and solver.history.cap_hits == 1
    assert tuner.costs == [3.0]


def test_exception_inside_a_solve_keeps_the_protocol():
    tuner = TsallisINF(seed=0)
    solver = SequenceSolver(SOR(), tuner)
    with pytest.raises(ValueError, match="b must have shape"):
        solver.solve(np.eye(3) * 2, np.ones(4))
    assert tuner.arm is None and tuner.costs == [10_000.0]


def test_fixed_omega_without_tuner_and_bad_arguments():
    solver = SequenceSolver(SOR(omega=1.3))
    sol = solver.solve(np.array([[4.0, 1.0], [1.0, 3.0]]), np.ones(2))
    assert sol.success and solver.history.omegas == [1.3]
    with pytest.raises(TypeError, match="omega field"):
        SequenceSolver(CG())
    with pytest.raises(TypeError, match="tuner must be a Tuner"):
        SequenceSolver(SOR(), tuner="tsallis")  # type: ignore[arg-type]


def test_shifted_laplacian_sequence_matches_the_paper_setup():
    seq = shifted_laplacian_sequence(400, distribution="high-variance", seed=0)
    assert seq.A.shape == (100, 100) and np.all(seq.A.diagonal() == 4.0)
    assert np.all((seq.shifts >= -0.15) & (seq.shifts <= 0.45))
    # Beta(0.5, 1.5) has mean 1/4: c has mean -0.15 + 0.6 / 4 = 0.
    assert abs(seq.shifts.mean()) < 0.03
    assert np.all(np.linalg.norm(seq.rhs, axis=1) <= 10.0)
    low = shifted_laplacian_sequence(400, distribution="low-variance", seed=0)
    assert low.shifts.std() < seq.shifts.std()
    again = shifted_laplacian_sequence(400, distribution="high-variance", seed=0)
    np.testing.assert_array_equal(seq.rhs, again.rhs)
    # Every instance is SPD, so omega* exists; the spec's sanity numbers hold.
    A0 = seq.A
    assert optimal_sor_omega(A0) == pytest.approx(1.5604, abs=1e-3)
    with pytest.raises(ValueError, match="distribution must be one of"):
        shifted_laplacian_sequence(3, distribution="wide")
    with pytest.raises(ValueError, match="n = 12"):
        shifted_laplacian_sequence(3, n=12)


def test_heat_equation_step_is_crank_nicolson():
    heat = HeatEquation2D(10, steps=50, stoptime=1.0)
    u = heat.initial
    A, b, kappa = heat.system(30, u)
    half = 30.5 * heat.dt
    assert kappa == pytest.approx(
        max(0.1 * np.sin(2 * np.pi * half), -10 * np.sin(2 * np.pi * half))
    )
    dense = A.toarray()
    np.testing.assert_allclose(dense, dense.T)
    assert (
        np.linalg.eigvalsh(dense).min() >= 1.0 - 1e-12
    )  # I - (kappa dt / 2) L, L <= 0
    CL = 0.5 * kappa * heat.dt * heat.L.toarray()
    np.testing.assert_allclose(b, u + CL @ u + heat.dt * heat.forcing(half))
    lo, hi = heat.context_range()
    assert lo == pytest.approx(0.0, abs=1e-2) and hi == pytest.approx(10.0, rel=1e-2)
    with pytest.raises(ValueError, match="nx must be an int >= 3"):
        HeatEquation2D(2)


def test_sequence_solver_agrees_with_plain_linear_solve():
    seq = shifted_laplacian_sequence(3, seed=4)
    solver = SequenceSolver(SOR(omega=1.6, rtol=1e-9), warm_start=False)
    for A, b, _ in seq:
        ours = solver.solve(A, b)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            plain = linear_solve(A, b, SOR(omega=1.6, rtol=1e-9))
        np.testing.assert_array_equal(ours.x, plain.x)
        assert ours.num_steps == plain.num_steps
