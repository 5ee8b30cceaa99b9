"""Relaxation solvers (Jacobi, Gauss–Seidel, SOR, SSOR, SSOR-PCG): the battery.

A catalogue of cases (each listing the configs expected to fail on it, and why)
crossed with a registry of valid and error configs, as DESIGN.md section 6 asks.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as spla
import torch

import itersolve
from itersolve import (
    ConvergenceWarning,
    Status,
    linear_solve,
)
from itersolve.linear import (
    SOR,
    SSOR,
    SSORPCG,
    GaussSeidel,
    Jacobi,
    SSORPreconditioner,
)
from itersolve.linear._problem import LinearProblem
from itersolve.linear._relaxation_kernels import HAVE_NUMBA, sor_count
from itersolve.problems import (
    convection_diffusion,
    poisson,
    random_spd,
    symmetric_indefinite,
)

RTOL64, RTOL32 = 1e-9, 1e-4


@dataclass(frozen=True)
class Case:
    name: str
    A: Any
    expected_fail: dict[str, str] = field(default_factory=dict)
    dtype: Any = np.float64

    def b(self) -> np.ndarray:
        rng = np.random.default_rng(len(self.name))
        return rng.standard_normal(self.A.shape[0]).astype(self.dtype)


def _diag_dominant(n: int) -> np.ndarray:
    rng = np.random.default_rng(1)
    M = rng.standard_normal((n, n))
    M = (M + M.T) / 2
    return M + np.diag(np.abs(M).sum(axis=1) + 1.0)


_INDEFINITE = "symmetric indefinite: stationary iterations diverge"
CASES = [
    Case("poisson1d", poisson(8, dim=1)),
    Case("poisson2d", poisson(6, dim=2)),
    Case("dominant", _diag_dominant(20)),
    Case(
        "random-spd",
        random_spd(16, condition_number=20.0, seed=3),
        {"jacobi": "Jacobi needs omega < 2 / lambda_max(D^-1 A); not given here"},
    ),
    Case("convection", convection_diffusion(5, dim=2, peclet=2.0)),
    Case(
        "indefinite",
        symmetric_indefinite(12, seed=2),
        {
            name: _INDEFINITE
            for name in ("jacobi", "gauss-seidel", "sor", "ssor", "sor-torch")
        }
        | {"ssor-pcg": "CG on an indefinite matrix"},
    ),
]
# float32 twins: same matrices, loose tolerance.
CASES32 = [Case(c.name + "-f32", c.A, c.expected_fail, np.float32) for c in CASES[:3]]

VALID = {
    "jacobi": lambda rtol: Jacobi(rtol=rtol),
    "gauss-seidel": lambda rtol: GaussSeidel(rtol=rtol),
    "sor": lambda rtol: SOR(omega=1.3, rtol=rtol),
    "ssor": lambda rtol: SSOR(omega=1.2, rtol=rtol),
    "sor-torch": lambda rtol: SOR(omega=1.3, rtol=rtol, backend="torch"),
    "ssor-pcg": lambda rtol: SSORPCG(omega=1.2, rtol=rtol),
}
NONSYMMETRIC_OK = {"jacobi", "gauss-seidel", "sor", "sor-torch"}

ERRORS = [
    (lambda: SOR(omega=2.5), ValueError, r"omega must be in \(0, 2\), got 2\.5"),
    (lambda: SOR(omega=0.0), ValueError, r"omega must be in \(0, 2\), got 0\.0"),
    (lambda: SSOR(omega=-1.0), ValueError, r"omega must be in \(0, 2\), got -1\.0"),
    (lambda: Jacobi(omega=2.0), ValueError, r"omega must be in \(0, 2\), got 2\.0"),
    (lambda: SSORPCG(omega=2.0), ValueError, r"omega must be in \(0, 2\)"),
    (lambda: SOR(omega="1.5"), TypeError, r"omega must be a float"),
    (lambda: SOR(rtol=-1.0), ValueError, r"rtol must be >= 0, got -1\.0"),
    (lambda: SOR(rtol=0.0), ValueError, r"rtol and atol cannot both be 0"),
    (lambda: SOR(norm_ref="x"), ValueError, r"norm_ref must be 'b' or 'r0'"),
    (lambda: SOR(check_every=0), ValueError, r"check_every must be a positive int"),
    (lambda: SOR(backend="gpu"), ValueError, r"backend must be one of"),
    (lambda: SOR(max_steps=0), ValueError, r"max_steps must be a positive int"),
    (lambda: GaussSeidel(omega=1.2), TypeError, r"omega"),
    (lambda: SSORPreconditioner(poisson(3, 1), 2.0), ValueError, r"got 2\.0"),
]


def _solve(A, b, method, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return linear_solve(A, b, method, **kwargs)


def _applies(case: Case, name: str) -> bool:
    symmetric = abs(sp.csr_array(case.A) - sp.csr_array(case.A).T).max() == 0
    return symmetric or name in NONSYMMETRIC_OK


@pytest.mark.parametrize("case", CASES + CASES32, ids=lambda c: c.name)
@pytest.mark.parametrize("name", VALID)
def test_converges_or_fails_as_catalogued(case: Case, name: str):
    if not _applies(case, name):
        pytest.skip("SSOR / SSOR-PCG assume a symmetric matrix")
    rtol = RTOL32 if case.dtype == np.float32 else RTOL64
    A = case.A.astype(case.dtype)
    b = case.b()
    sol = _solve(A, b, VALID[name](rtol), x0=None)
    if name in case.expected_fail:
        assert not sol.success, case.expected_fail[name]
        assert sol.status in (
            Status.DIVERGED,
            Status.MAX_STEPS,
            Status.NONFINITE,
            Status.NOT_POSITIVE_DEFINITE,
        )
        return
    assert sol.success, sol
    assert sol.x.dtype == case.dtype
    dense = sp.csr_array(case.A).toarray()
    r = b.astype(np.float64) - dense @ sol.x.astype(np.float64)
    assert np.linalg.norm(r) <= 1.5 * rtol * np.linalg.norm(b)
    # Agreement with the reference direct solve (scipy) on the final answer.
    ref = spla.spsolve(sp.csc_array(dense), b.astype(np.float64))
    err = np.linalg.norm(sol.x - ref) / np.linalg.norm(ref)
    assert err <= (1e-3 if case.dtype == np.float32 else 1e-6)


@pytest.mark.parametrize("make, exc, message", ERRORS)
def test_bad_hyperparameters_raise(make, exc, message):
    with pytest.raises(exc, match=message):
        make()


@pytest.mark.parametrize("name", VALID)
def test_nan_input(name: str):
    A, b = poisson(5, dim=1).toarray(), np.ones(5)
    b_nan = b.copy()
    b_nan[2] = np.nan
    assert _solve(A, b_nan, VALID[name](1e-8)).status is Status.NONFINITE_INPUT
    A_nan = A.copy()
    A_nan[1, 2] = np.nan
    sol = _solve(A_nan, b, VALID[name](1e-8))
    assert sol.status in (Status.NONFINITE_INPUT, Status.NONFINITE)
    assert sol.status is Status.NONFINITE_INPUT or name == "ssor-pcg"


@pytest.mark.parametrize("name", VALID)
def test_inputs_unmutated_and_torch_kind_preserved(name: str):
    A = poisson(6, dim=2).toarray()
    b = np.arange(36, dtype=np.float64)
    x0 = np.full(36, 0.5)
    copies = A.copy(), b.copy(), x0.copy()
    sol = _solve(A, b, VALID[name](1e-8), x0=x0)
    assert sol.success
    for before, after in zip(copies, (A, b, x0), strict=True):
        np.testing.assert_array_equal(before, after)
    bt = torch.from_numpy(b).float()
    out = _solve(torch.from_numpy(A).float(), bt, VALID[name](1e-4)).x
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float32
    assert torch.equal(bt, torch.from_numpy(b).float())


@pytest.mark.parametrize("name", ["jacobi", "sor", "ssor", "ssor-pcg"])
def test_batched_rhs_equals_column_solves(name: str):
    A = poisson(5, dim=2)
    B = np.random.default_rng(0).standard_normal((25, 3))
    block = _solve(A, B, VALID[name](1e-10))
    assert block.success and block.x.shape == (25, 3)
    for j in range(3):
        col = _solve(A, B[:, j], VALID[name](1e-10))
        np.testing.assert_allclose(block.x[:, j], col.x, rtol=1e-8, atol=1e-10)


def test_pyamg_issue_410_wikipedia_example():
    """pyamg#410: SOR gave wrong iterates on the Wikipedia 4x4 example."""
    A = np.array([[4, -1, -6, 0], [-5, -4, 10, 8], [0, 9, 4, -2], [1, 0, -7, 5.0]])
    b = np.array([2, 21, -12, -6.0])
    first = [0.25, -2.78125, 1.6289062, 0.5152344]  # Wikipedia / the issue
    backends = ["torch", "scipy"] + (["numba"] if HAVE_NUMBA else [])
    for backend in backends:
        one = _solve(A, b, SOR(omega=0.5, max_steps=1, backend=backend))
        np.testing.assert_allclose(one.x, first, atol=5e-8)
        sol = linear_solve(A, b, SOR(omega=0.5, rtol=1e-12, backend=backend))
        assert sol.success
        np.testing.assert_allclose(sol.x, [3.0, -2.0, 2.0, 1.0], atol=1e-10)
    pyamg = pytest.importorskip("pyamg")
    x = np.zeros(4)
    pyamg.relaxation.relaxation.sor(sp.csr_matrix(A), x, b, 0.5, iterations=1)
    if not np.allclose(x, first, atol=5e-8):
        pytest.skip(f"installed pyamg {pyamg.__version__} still has bug #410")


@pytest.mark.parametrize("cls", [SOR, SSOR])
def test_iterates_match_pyamg(cls):
    pyamg = pytest.importorskip("pyamg")
    sor = pyamg.relaxation.relaxation.sor
    A = poisson(7, dim=2)
    b = np.random.default_rng(5).standard_normal(49)
    x = np.zeros(49)
    for _ in range(5):
        sor(sp.csr_matrix(A), x, b, 1.4, iterations=1, sweep="forward")
        if cls is SSOR:
            # Explicit backward sweep: pyamg's sweep="symmetric" drops omega.
            sor(sp.csr_matrix(A), x, b, 1.4, iterations=1, sweep="backward")
    ours = _solve(A, b, cls(omega=1.4, max_steps=5))
    np.testing.assert_allclose(ours.x, x, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kind", [SOR, SSOR])
def test_backends_agree(kind):
    A = random_spd(30, condition_number=10.0, seed=4)
    b = np.random.default_rng(1).standard_normal((30, 2))
    runs = [
        _solve(A, b, kind(omega=1.1, max_steps=7, backend=be)).x
        for be in ["torch", "scipy"] + (["numba"] if HAVE_NUMBA else [])
    ]
    for x in runs[1:]:
        np.testing.assert_allclose(x, runs[0], rtol=1e-11, atol=1e-12)


@pytest.mark.parametrize("backend", ["torch", "scipy", "numba"])
def test_ssor_preconditioner_matches_dense_formula(backend):
    if backend == "numba" and not HAVE_NUMBA:
        pytest.skip("numba not installed")
    A = random_spd(12, condition_number=5.0, seed=7)
    omega = 1.3
    D = np.diag(np.diag(A))
    L = np.tril(A, -1)
    M = (D + omega * L) @ np.linalg.inv(D) @ (D + omega * L).T / (omega * (2 - omega))
    P = SSORPreconditioner(A, omega, backend=backend)
    np.testing.assert_allclose(P.to_dense().numpy(), np.linalg.inv(M), rtol=1e-10)
    r = torch.from_numpy(np.random.default_rng(0).standard_normal((12, 3)))
    np.testing.assert_allclose(
        P(r).numpy(), np.linalg.solve(M, r.numpy()), rtol=1e-10, atol=1e-12
    )


def test_ssor_pcg_agrees_with_scipy_cg_with_same_preconditioner():
    A = poisson(12, dim=2)
    b = np.random.default_rng(2).standard_normal(144)
    P = SSORPreconditioner(A, 1.5)

    def apply(r: np.ndarray) -> np.ndarray:
        return P(torch.from_numpy(np.ascontiguousarray(r))).numpy()

    count = [0]
    M = spla.LinearOperator(A.shape, matvec=apply, dtype=np.float64)
    x_ref, info = spla.cg(
        A,
        b,
        rtol=1e-10,
        atol=0.0,
        M=M,
        callback=lambda _: count.__setitem__(0, count[0] + 1),
    )
    ours = linear_solve(A, b, SSORPCG(omega=1.5, rtol=1e-10))
    assert info == 0 and ours.success
    assert abs(ours.num_steps - count[0]) <= 1
    np.testing.assert_allclose(ours.x, x_ref, rtol=1e-7, atol=1e-9)
    plain = linear_solve(A, b, itersolve.linear.CG(rtol=1e-10))
    assert ours.num_steps < plain.num_steps


def test_optimal_omega_beats_gauss_seidel_fivefold():
    A = poisson(32, dim=2)
    b = np.random.default_rng(0).standard_normal(32 * 32)
    omega = itersolve.linear.optimal_sor_omega(A)
    assert omega == pytest.approx(2 / (1 + np.sin(np.pi / 33)), rel=1e-10)
    gs = linear_solve(A, b, GaussSeidel(rtol=1e-8))
    sor = linear_solve(A, b, SOR(omega=omega, rtol=1e-8))
    assert gs.success and sor.success
    assert gs.num_steps >= 5 * sor.num_steps


def test_sanity_numbers_of_the_spec():
    """n = 100 Laplacian, c = 0: omega = 1 -> ~201 sweeps, omega* ~ 1.56 -> ~39."""
    A = poisson(10, dim=2)
    b = np.random.default_rng(0).standard_normal(100)
    gs = linear_solve(A, b, GaussSeidel(rtol=1e-8)).num_steps
    omega = itersolve.linear.optimal_sor_omega(A)
    best = linear_solve(A, b, SOR(omega=omega, rtol=1e-8)).num_steps
    assert omega == pytest.approx(1.56, abs=0.01)
    assert 170 <= gs <= 230 and 30 <= best <= 50


def test_indefinite_reports_divergence_not_nan_success():
    A = symmetric_indefinite(12, seed=2)
    sol = _solve(A, np.ones(12), SOR(omega=1.0))
    assert sol.status in (Status.DIVERGED, Status.NONFINITE, Status.MAX_STEPS)
    assert not sol.success


def test_bad_matrices_raise():
    with pytest.raises(ValueError, match=r"diagonal without zeros.*A\[0, 0\] = 0"):
        linear_solve(np.array([[0.0, 1.0], [1.0, 0.0]]), np.ones(2), SOR())
    with pytest.raises(ValueError, match="square"):
        linear_solve(np.ones((3, 2)), np.ones(3), SOR())
    free = itersolve.aslinearoperator(lambda x: 2 * x, shape=(3, 3))
    with pytest.raises(ValueError, match="explicit matrix"):
        linear_solve(free, np.ones(3), SOR())
    with pytest.raises(ValueError, match="b must have shape"):
        linear_solve(poisson(3, 1), np.ones(4), SOR())


@pytest.mark.skipif(not HAVE_NUMBA, reason="numba not installed")
def test_compiled_count_equals_driver_steps():
    A = poisson(10, dim=2) + 0.1 * sp.eye_array(100)
    b = np.random.default_rng(3).standard_normal(100)
    for omega in (1.0, 1.45, 1.9):
        steps = linear_solve(A, b, SOR(omega=omega, rtol=1e-8)).num_steps
        assert sor_count(A, b, omega, rtol=1e-8) == steps
    assert sor_count(A, b, 1.0, rtol=1e-8, max_steps=5) == 6


def test_check_every_stops_on_a_multiple():
    A, b = poisson(8, dim=2), np.ones(64)
    every = linear_solve(A, b, SOR(omega=1.5))
    fifth = linear_solve(A, b, SOR(omega=1.5, check_every=5))
    assert fifth.num_steps % 5 == 0
    assert every.num_steps <= fifth.num_steps < every.num_steps + 5


def test_norm_ref_r0_with_warm_start():
    A, b = poisson(8, dim=2), np.ones(64)
    x0 = spla.spsolve(sp.csc_array(A), b) + 1e-3
    by_b = linear_solve(A, b, SOR(omega=1.5, rtol=1e-8), x0=x0)
    by_r0 = linear_solve(A, b, SOR(omega=1.5, rtol=1e-8, norm_ref="r0"), x0=x0)
    assert by_r0.num_steps > by_b.num_steps


# -- the fused residual, its norm and sum(x) ---------------------------------------

FUSED = {
    "sor": lambda **kw: SOR(omega=1.4, **kw),
    "gauss-seidel": lambda **kw: GaussSeidel(**kw),
    "ssor": lambda **kw: SSOR(omega=1.2, **kw),
    "jacobi": lambda **kw: Jacobi(omega=0.8, **kw),
    "sor-torch": lambda **kw: SOR(omega=1.4, backend="torch", **kw),
}
# Backends whose residual is the torch operator's matvec (others: CSR order, as scipy).
TORCH_RESIDUAL = {"jacobi", "sor-torch"}


@pytest.mark.parametrize("columns", [None, 3], ids=["vector", "block"])
@pytest.mark.parametrize("name", FUSED)
def test_fused_residual_and_sum_equal_a_fresh_computation(name: str, columns):
    if name not in TORCH_RESIDUAL and not HAVE_NUMBA:
        pytest.skip("numba not installed")
    A = sp.csr_array(poisson(7, dim=2))
    shape = (49,) if columns is None else (49, columns)
    # Positive b: x > 0, so sum(x) has no cancellation and 1e-12 is meaningful.
    b = np.random.default_rng(4).uniform(0.5, 1.5, size=shape)
    op = itersolve.aslinearoperator(A)
    seen = []

    def record(info):
        state = info.state
        seen.append((info.x.numpy().copy(), state.residual.copy(), state.x_sum))

    sol = _solve(A, b, FUSED[name](rtol=1e-10), callback=record)
    assert sol.success and len(seen) == sol.num_steps > 3
    for x, residual, x_sum in seen:
        if name in TORCH_RESIDUAL:
            r = (torch.from_numpy(b) - op.matvec(torch.from_numpy(x))).numpy()
        else:
            r = b - A @ x
        fresh = np.linalg.norm(r.reshape(49, -1), axis=0)
        np.testing.assert_allclose(residual, fresh, rtol=1e-12, atol=0)
        assert x_sum == pytest.approx(float(x.sum()), rel=1e-12, abs=0)


def test_unchecked_sweeps_leave_no_stale_certificate():
    A, b = poisson(8, dim=2), np.ones(64)
    method = SOR(omega=1.5, check_every=4)
    problem = LinearProblem(itersolve.aslinearoperator(A), torch.from_numpy(b))
    state = method.init(problem, torch.zeros(64, dtype=torch.float64))
    for k in range(1, 9):
        state = method.step(problem, state)
        if k % 4:
            assert state.x_sum is None and not state.fresh
        else:
            assert state.x_sum == pytest.approx(float(state.x.sum()), rel=1e-12)
    # Off a check point the stopping test evaluates a fresh residual first.
    state = method.step(problem, state)
    method.terminate(problem, state)
    fresh = np.linalg.norm(b - A @ state.x.numpy())
    assert state.fresh and state.residual[0] == pytest.approx(fresh, rel=1e-12)


@pytest.mark.parametrize("name", FUSED)
def test_nan_put_in_by_a_callback_mid_run_gives_nonfinite(name: str):
    A, b = poisson(6, dim=2), np.ones(36)

    def poison(info):
        if info.step == 3:
            info.x[5] = float("nan")

    sol = _solve(A, b, FUSED[name](rtol=1e-12), callback=poison)
    assert sol.status is Status.NONFINITE and sol.num_steps == 4


@pytest.mark.parametrize("dtype, scale", [(np.float64, 1e300), (np.float32, 1e37)])
def test_iterates_that_overflow_end_nonfinite(dtype, scale):
    A = symmetric_indefinite(12, seed=2).astype(dtype)
    b = np.full(12, scale, dtype=dtype)
    for method in (SOR(omega=1.0), SOR(omega=1.0, check_every=7)):
        sol = _solve(A, b, method)
        assert sol.status is Status.NONFINITE, sol.status


def test_huge_right_hand_side_converges_without_overflowing_the_norms():
    A = poisson(6, dim=2)
    b = np.random.default_rng(0).uniform(0.5, 1.5, 36) * 1e200
    sol = linear_solve(A, b, SOR(omega=1.3, rtol=1e-10))
    ref = spla.spsolve(sp.csc_array(A), b)
    assert sol.success
    np.testing.assert_allclose(sol.x, ref, rtol=1e-8)
