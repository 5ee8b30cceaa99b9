"""CARE / Lyapunov / Kleinman against scipy (and python-control when installed)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg as sla
import torch

from itersolve import ConvergenceError, ConvergenceWarning, Solution, Status
from itersolve.control import Kleinman, care, care_residual, lyapunov, solve_lqr


def _random_systems(batch, n, m, seed=0):
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((batch, n, n))
    B = rng.standard_normal((batch, n, m))
    C = rng.standard_normal((batch, n, n))
    Q = C @ C.transpose(0, 2, 1) / n + 0.1 * np.eye(n)
    R = np.eye(m) * 0.5
    return A, B, Q, R


@pytest.mark.parametrize(("n", "m"), [(2, 1), (5, 2), (10, 3)])
def test_care_matches_scipy_batched(n, m):
    A, B, Q, R = _random_systems(20, n, m, seed=n)
    P = care(*(torch.from_numpy(M) for M in (A, B, Q, R))).numpy()
    for i in range(20):
        ref = sla.solve_continuous_are(A[i], B[i], Q[i], R)
        np.testing.assert_allclose(P[i], ref, rtol=1e-10, atol=1e-10)
    res = care_residual(
        *(torch.from_numpy(M) for M in (A, B, Q, R)), torch.from_numpy(P)
    )
    assert float(res.max()) < 1e-10


def test_care_matches_python_control():
    ct = pytest.importorskip("control")
    A, B, Q, R = _random_systems(3, 4, 2, seed=7)
    for i in range(3):
        K_ref, S_ref, _ = ct.lqr(A[i], B[i], Q[i], R)
        X_ref = ct.care(A[i], B[i], Q[i], R)[0]
        P = care(A[i], B[i], Q[i], R)  # numpy in, numpy out
        assert isinstance(P, np.ndarray)
        np.testing.assert_allclose(P, S_ref, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(P, X_ref, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(
            np.linalg.solve(R, B[i].T @ P), K_ref, rtol=1e-10, atol=1e-12
        )


def _benchmark_batch():
    """The control-intrl suite's batch: 1000 random 10 x 10 systems, 3 inputs."""
    rng = np.random.default_rng(0)
    A = rng.standard_normal((1000, 10, 10))
    B = rng.standard_normal((1000, 10, 3))
    Q = np.broadcast_to(np.eye(10), (1000, 10, 10)).copy()
    return A, B, Q, np.eye(3)


def test_batched_care_reaches_1e9_on_the_benchmark_batch():
    A, B, Q, R = _benchmark_batch()
    tensors = [torch.from_numpy(M) for M in (A, B, Q, R)]
    sol = care(*tensors, full_output=True)
    assert sol.success
    # the sign iteration alone leaves 6.8e-9 on system 350 (||P||_F = 5.2e3)
    assert sol.stats["lyapunov_solves"] >= 1
    res = care_residual(*tensors, sol.x)
    assert float(res.max()) <= 1e-9
    assert sol.stats["care_residual"] == pytest.approx(float(res.max()))
    for i in range(1000):
        ref = sla.solve_continuous_are(A[i], B[i], Q[i], R)
        error = np.linalg.norm(sol.x[i].numpy() - ref) / np.linalg.norm(ref)
        assert error <= 1e-8, (i, error)
    unrefined = care(*tensors, refine=0, full_output=True)
    assert unrefined.stats["lyapunov_solves"] == 0
    assert unrefined.stats["care_residual"] > 1e-9  # what the refinement fixes


def _exact_residual(A, B, Q, P):
    """``||A^T P + P A - P B B^T P + Q||_F`` in exact rational arithmetic."""
    from fractions import Fraction

    def exact(M):
        return [[Fraction(float(v)) for v in row] for row in M]

    def mul(X, Y):
        return [
            [sum(X[i][k] * Y[k][j] for k in range(len(Y))) for j in range(len(Y[0]))]
            for i in range(len(X))
        ]

    Ae, Be, Qe, Pe = (exact(M) for M in (A, B, Q, P))
    At = [list(col) for col in zip(*Ae, strict=True)]
    BtP = mul([list(col) for col in zip(*Be, strict=True)], Pe)
    Pb = [list(col) for col in zip(*BtP, strict=True)]
    ATP, PA, PGP = mul(At, Pe), mul(Pe, Ae), mul(Pb, BtP)
    n = len(P)
    square = sum(
        (ATP[i][j] + PA[i][j] - PGP[i][j] + Qe[i][j]) ** 2
        for i in range(n)
        for j in range(n)
    )
    return float(square) ** 0.5


def test_care_residual_is_evaluated_beyond_working_precision():
    A, B, Q, R = _benchmark_batch()
    i = 350  # ||P||_F = 5.2e3: plain float64 evaluation errs by ~1e-9 here
    ref = sla.solve_continuous_are(A[i], B[i], Q[i], R)
    G = B[i] @ B[i].T
    exact = _exact_residual(A[i], B[i], Q[i], ref) / np.linalg.norm(Q[i])
    args = [torch.from_numpy(M) for M in (A[i], B[i], Q[i], R, ref)]
    measured = float(care_residual(*args))
    assert measured == pytest.approx(exact, rel=1e-6)
    plain = np.linalg.norm(A[i].T @ ref + ref @ A[i] - ref @ G @ ref + Q[i])
    plain /= np.linalg.norm(Q[i])
    # the plain evaluation misses by far more than the compensated one
    assert abs(plain - exact) > 1e3 * abs(measured - exact)


def test_care_rejects_bad_refine():
    A = torch.tensor([[0.0, 1.0], [0.0, 0.0]], dtype=torch.float64)
    B = torch.tensor([[0.0], [1.0]], dtype=torch.float64)
    I2, I1 = torch.eye(2, dtype=torch.float64), torch.eye(1, dtype=torch.float64)
    for bad in (-1, 1.5, True):
        with pytest.raises(ValueError, match="refine must be"):
            care(A, B, I2, I1, refine=bad)


def test_care_keeps_float32_and_rejects_bad_input():
    A = torch.tensor([[0.0, 1.0], [0.0, 0.0]])
    B = torch.tensor([[0.0], [1.0]])
    P = care(A, B, torch.eye(2), torch.eye(1))
    assert P.dtype == torch.float32
    assert torch.allclose(P, torch.tensor([[3**0.5, 1.0], [1.0, 3**0.5]]), atol=1e-5)
    with pytest.raises(ValueError, match="R must be positive definite"):
        care(A, B, torch.eye(2), -torch.eye(1))
    with pytest.raises(ValueError, match="B must be"):
        care(A, torch.ones(3, 1), torch.eye(2), torch.eye(1))
    with pytest.raises(ValueError, match="Q must be symmetric"):
        care(A, B, torch.tensor([[1.0, 2.0], [0.0, 1.0]]), torch.eye(1))
    # (A, B) not stabilisable: an uncontrollable unstable mode
    with pytest.raises(ValueError, match="no stabilising solution"):
        care(
            torch.eye(2, dtype=torch.float64),
            torch.tensor([[1.0], [0.0]]).double(),
            torch.eye(2).double(),
            torch.eye(1).double(),
        )


@pytest.mark.parametrize("method", ["kron", "sign"])
def test_lyapunov_matches_scipy(method):
    rng = np.random.default_rng(1)
    A = rng.standard_normal((5, 6, 6)) - 4 * np.eye(6)
    Q = np.eye(6)
    X = lyapunov(torch.from_numpy(A), torch.from_numpy(Q), method=method).numpy()
    for i in range(5):
        ref = sla.solve_continuous_lyapunov(A[i].T, -Q)
        np.testing.assert_allclose(X[i], ref, rtol=1e-10, atol=1e-12)
    with pytest.raises(ValueError, match="method must be"):
        lyapunov(A[0], Q, method="schur")


def test_care_sign_iteration_runs_through_the_driver():
    A, B, Q, R = (torch.from_numpy(M) for M in _random_systems(4, 5, 2, seed=3))
    sol = care(A, B, Q, R, full_output=True)
    assert isinstance(sol, Solution) and sol.success
    # Newton steps stop at the rounding floor: here after one
    assert 1 < sol.num_steps < 100 and sol.stats["lyapunov_solves"] == 1
    assert sol.stats["care_residual"] < 1e-12
    torch.testing.assert_close(sol.x, care(A, B, Q, R), rtol=1e-10, atol=1e-10)
    for i in range(4):
        ref = sla.solve_continuous_are(
            A[i].numpy(), B[i].numpy(), Q[i].numpy(), R.numpy()
        )
        np.testing.assert_allclose(sol.x[i].numpy(), ref, rtol=1e-10, atol=1e-10)
    # unconverged: never an answer without saying so
    with pytest.raises(ConvergenceError, match="MAX_STEPS") as info:
        care(A, B, Q, R, max_steps=1)
    assert info.value.solution.status is Status.MAX_STEPS
    assert info.value.solution.num_steps == 1
    one = care(A, B, Q, R, max_steps=1, full_output=True)
    assert one.status is Status.MAX_STEPS and one.stats["lyapunov_solves"] == 0
    # Hamiltonian eigenvalues on the imaginary axis (undamped oscillator, no
    # input, no cost): the first sign iterate is singular.
    osc = torch.tensor([[0.0, 1.0], [-1.0, 0.0]], dtype=torch.float64)
    with pytest.raises(ConvergenceError) as info:
        care(
            osc,
            torch.zeros(2, 1).double(),
            torch.zeros(2, 2).double(),
            torch.eye(1).double(),
        )
    assert info.value.solution.status is Status.BREAKDOWN
    A_nan = A.clone()
    A_nan[0, 0, 0] = torch.nan
    bad = care(A_nan, B, Q, R, full_output=True)
    assert bad.status is Status.NONFINITE_INPUT and bad.num_steps == 0
    assert torch.isnan(A_nan[0, 0, 0])  # unmutated


def test_lyapunov_sign_reports_failures():
    rng = np.random.default_rng(4)
    A = torch.from_numpy(rng.standard_normal((3, 20, 20)) - 6 * np.eye(20))
    Q = torch.eye(20, dtype=torch.float64)
    sol = lyapunov(A, Q, full_output=True)  # n > 16: the sign iteration
    assert sol.success and sol.num_steps > 1
    for i in range(3):
        ref = sla.solve_continuous_lyapunov(A[i].T.numpy(), -Q.numpy())
        np.testing.assert_allclose(sol.x[i].numpy(), ref, rtol=1e-10, atol=1e-12)
    with pytest.raises(ConvergenceError, match="MAX_STEPS") as info:
        lyapunov(A, Q, method="sign", max_steps=2)
    assert info.value.solution.num_steps == 2
    # an eigenvalue at 0 makes the iterate singular; an unstable A is refused
    singular = torch.zeros(2, 2, dtype=torch.float64)
    failed = lyapunov(singular, torch.eye(2).double(), method="sign", full_output=True)
    assert failed.status is Status.BREAKDOWN
    unstable = torch.diag(torch.tensor([1.0, -2.0], dtype=torch.float64))
    with pytest.raises(ValueError, match="Hurwitz"):
        lyapunov(unstable, torch.eye(2).double(), method="sign")
    kron = lyapunov(A[0, :4, :4], Q[:4, :4], full_output=True)
    assert kron.success and kron.num_steps == 0


def test_kleinman_converges_quadratically_to_care():
    A = np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [-0.1, -0.5, -0.7]])
    B = np.array([[0.0], [0.0], [1.0]])
    sol = solve_lqr(A, B, np.eye(3), np.eye(1), Kleinman(tol=1e-14), record=True)
    assert sol.success
    ref = sla.solve_continuous_are(A, B, np.eye(3), np.eye(1))
    np.testing.assert_allclose(sol.x, ref, rtol=1e-11)
    np.testing.assert_allclose(
        sol.extras["K"], [[0.90499, 1.89310, 1.59700]], atol=1e-5
    )
    change = np.asarray(sol.trace["change"])
    # quadratic: once small, each change is at most ~ C * previous^2
    k = int(np.argmax(change < 1e-2))
    assert change[k + 1] < 10 * change[k] ** 2 + 1e-13


def test_kleinman_rejects_destabilising_gain_and_battery():
    A = np.array([[1.0, 0.0], [0.0, -1.0]])
    B = np.array([[1.0], [1.0]])
    with pytest.raises(ValueError, match="does not stabilise"):
        solve_lqr(A, B, np.eye(2), np.eye(1))
    K0 = np.array([[3.0, 0.0]])
    sol = solve_lqr(A, B, np.eye(2), np.eye(1), K0=K0)
    assert sol.success and isinstance(sol.x, np.ndarray)
    np.testing.assert_allclose(
        sol.x, sla.solve_continuous_are(A, B, np.eye(2), np.eye(1))
    )
    with pytest.warns(ConvergenceWarning):
        one = solve_lqr(
            A, B, np.eye(2), np.eye(1), Kleinman(max_steps=1), K0=K0, record=True
        )
    assert one.status is Status.MAX_STEPS and len(one.trace) == 1
    A_nan = A.copy()
    A_nan[0, 0] = np.nan
    with pytest.warns(ConvergenceWarning):
        bad = solve_lqr(A_nan, B, np.eye(2), np.eye(1), K0=K0)
    assert bad.status is Status.NONFINITE_INPUT
    assert np.isnan(A_nan[0, 0]) and K0[0, 0] == 3.0  # unmutated
    with pytest.raises(ValueError, match="tol must be"):
        Kleinman(tol=0)
    At = torch.from_numpy(A)
    out = solve_lqr(At, B, np.eye(2), np.eye(1), K0=K0)
    assert isinstance(out.x, torch.Tensor) and out.x.dtype == torch.float64


def test_care_above_16_states_refines_with_sign_lyapunov_solves():
    A, B, Q, R = _random_systems(2, 18, 3, seed=5)
    sol = care(*(torch.from_numpy(M) for M in (A, B, Q, R)), full_output=True)
    # one correction step (a sign-function Lyapunov solve) reaches the floor
    assert sol.success and sol.stats["lyapunov_solves"] == 1
    assert sol.stats["care_residual"] < 1e-10
    for i in range(2):
        ref = sla.solve_continuous_are(A[i], B[i], Q[i], R)
        np.testing.assert_allclose(sol.x[i].numpy(), ref, rtol=1e-10, atol=1e-10)
    # an uncontrollable unstable mode: no stabilising solution, said plainly
    A_bad = -np.eye(18)
    A_bad[0, 0] = 1.0
    B_bad = B[0].copy()
    B_bad[0] = 0.0
    with pytest.raises(ValueError, match="no stabilising solution"):
        care(*(torch.from_numpy(M) for M in (A_bad, B_bad, Q[0], R)))


def _double_integrator():
    A = np.array([[0.0, 1.0], [-1.0, -1.0]])
    B = np.array([[0.0], [1.0]])
    return A, B


FRONT_DOORS = {
    "care": lambda A, B, Q, R: care(A, B, Q, R),
    "solve_lqr": lambda A, B, Q, R: solve_lqr(A, B, Q, R),
}
ASYMMETRIC_Q = np.array([[1.0, 0.1], [0.0, 1.0]])
ASYMMETRIC_R = np.array([[1.0, 0.1], [0.0, 1.0]])


@pytest.mark.parametrize("front_door", sorted(FRONT_DOORS))
@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("asymmetric Q", "Q must be symmetric"),
        ("asymmetric R", "R must be symmetric"),
        ("R = -I", "R must be positive definite"),
        ("R singular", "R must be positive definite"),
        ("empty A", "A must have a state"),
        ("empty B", "B must have an input"),
    ],
)
def test_validation_is_as_strict_as_scipy(front_door, case, message):
    A, B = _double_integrator()
    Q, R = np.eye(2), np.eye(1)
    if case == "asymmetric Q":
        Q = ASYMMETRIC_Q
    elif case == "asymmetric R":
        B, R = np.hstack([B, B]), ASYMMETRIC_R
    elif case == "R = -I":
        R = -np.eye(1)
    elif case == "R singular":
        B, R = np.hstack([B, B]), np.diag([1.0, 0.0])
    elif case == "empty A":
        A, B, Q = np.zeros((0, 0)), np.zeros((0, 1)), np.zeros((0, 0))
    else:
        B, R = np.zeros((2, 0)), np.zeros((0, 0))
    if case.startswith("asymmetric"):  # SciPy rejects the same input
        with pytest.raises(ValueError, match="symmetric"):
            sla.solve_continuous_are(A, B, Q, R)
    with pytest.raises(ValueError, match=message):
        FRONT_DOORS[front_door](A, B, Q, R)


@pytest.mark.parametrize("front_door", sorted(FRONT_DOORS))
def test_rounding_level_asymmetry_is_accepted_as_by_scipy(front_door):
    A, B = _double_integrator()
    Q = np.array([[2.0, 0.3], [0.3, 1.0]])
    Q[0, 1] = np.nextafter(Q[0, 1], 1.0)  # one ulp off: within SciPy's 100 ulp
    ref = sla.solve_continuous_are(A, B, Q, np.eye(1))
    out = FRONT_DOORS[front_door](A, B, Q, np.eye(1))
    P = out if isinstance(out, np.ndarray) else out.x
    np.testing.assert_allclose(P, ref, rtol=1e-10)


def test_care_returns_the_input_array_kind():
    A, B = _double_integrator()
    P = care(A, B, np.eye(2), np.eye(1))
    assert isinstance(P, np.ndarray) and P.dtype == np.float64
    sol = care(A, B, np.eye(2), np.eye(1), full_output=True)
    assert isinstance(sol.x, np.ndarray)
    np.testing.assert_allclose(P, sla.solve_continuous_are(A, B, np.eye(2), np.eye(1)))
    P32 = care(
        A.astype(np.float32),
        B.astype(np.float32),
        np.eye(2, dtype=np.float32),
        np.eye(1, dtype=np.float32),
    )
    assert isinstance(P32, np.ndarray) and P32.dtype == np.float32
    Pt = care(torch.from_numpy(A), B, np.eye(2), np.eye(1))
    assert isinstance(Pt, torch.Tensor)
    X = lyapunov(A, np.eye(2))
    assert isinstance(X, np.ndarray)


def test_float32_twins_succeed_with_defaults():
    """solve_lqr in float32 used to end MAX_STEPS with P equal to SciPy's to
    1.6e-8: the default tol is now lifted to 100 eps32 (1.2e-5)."""
    A = np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [-0.1, -0.5, -0.7]])
    B = np.array([[0.0], [0.0], [1.0]])
    ref = sla.solve_continuous_are(A, B, np.eye(3), np.eye(1))
    f32 = [M.astype(np.float32) for M in (A, B, np.eye(3), np.eye(1))]
    sol = solve_lqr(*f32)
    assert sol.success and sol.x.dtype == np.float32
    assert np.abs(sol.x - ref).max() <= 1e-5 * np.abs(ref).max()
    P = care(*f32)
    assert P.dtype == np.float32
    assert np.abs(P - ref).max() <= 1e-5 * np.abs(ref).max()


def test_split_products_are_as_accurate_as_twice_the_precision():
    from fractions import Fraction

    from itersolve.control._riccati import _dot2

    rng = np.random.default_rng(3)
    # rows and columns over ten orders of magnitude: the splitting grid is
    # set per row of X and per column of Y
    X = rng.standard_normal((6, 9)) * 10.0 ** rng.integers(-5, 5, (6, 1))
    Y = rng.standard_normal((9, 4)) * 10.0 ** rng.integers(-5, 5, (1, 4))
    hi, lo = (M.numpy() for M in _dot2(torch.from_numpy(X), torch.from_numpy(Y)))
    for i in range(6):
        for j in range(4):
            exact = sum(Fraction(X[i, k]) * Fraction(Y[k, j]) for k in range(9))
            size = sum(abs(Fraction(X[i, k]) * Fraction(Y[k, j])) for k in range(9))
            error = abs(Fraction(hi[i, j]) + Fraction(lo[i, j]) - exact)
            assert error <= 2.0**-70 * size  # u 2^-t k, t = 24 bits, k = 9


def test_correction_falls_back_to_the_sign_solve_for_defective_closed_loops(
    monkeypatch,
):
    from itersolve.control import _riccati
    from itersolve.control._riccati import CORRECTION_ACCURACY, _correction

    sizes = []
    sign_solve = _riccati._lyapunov_solution

    def spy(A, Q, *args):
        sizes.append(A.shape[0])
        return sign_solve(A, Q, *args)

    monkeypatch.setattr(_riccati, "_lyapunov_solution", spy)

    # a Jordan block, perturbed: eigenvectors nearly parallel (cond ~ 1e8)
    closed = torch.tensor(
        [[[-1.0, 1.0], [1e-16, -1.0]], [[-2.0, 0.3], [0.1, -1.0]]],
        dtype=torch.float64,
    )
    residual = torch.tensor([[1.0, 0.2], [0.2, 0.5]], dtype=torch.float64)
    residual = residual.expand(2, 2, 2)
    step = _correction(closed, residual, 1e-13)
    assert step.success
    assert sizes == [1]  # only the defective system went through the sign solve
    check = closed.mT @ step.x + step.x @ closed + residual
    size = torch.linalg.matrix_norm(residual)
    assert bool((torch.linalg.matrix_norm(check) <= CORRECTION_ACCURACY * size).all())
    # the stabilising certificate cannot vouch for the defective system
    assert float(step.stats["eig_condition"][0]) > 1e6


def test_stabilising_certificate_is_bauer_fike_and_says_no_when_unsure():
    from itersolve.control._riccati import _correction, _stable_after

    closed = torch.diag(torch.tensor([-1.0, -1e-12], dtype=torch.float64))[None]
    residual = torch.eye(2, dtype=torch.float64)[None]
    step = _correction(closed, residual, 1e-13)
    tiny = 1e-10 * torch.eye(2, dtype=torch.float64)[None]
    # an eigenvalue 1e-12 from the axis: a 1e-10 change could cross it
    assert not _stable_after(step, tiny)
    far = torch.diag(torch.tensor([-1.0, -0.5], dtype=torch.float64))[None]
    step = _correction(far, residual, 1e-13)
    assert _stable_after(step, tiny)
    # a change as large as the margin is not certified either
    assert not _stable_after(step, 0.6 * torch.eye(2, dtype=torch.float64)[None])
