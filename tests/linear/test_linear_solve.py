"""``linear_solve`` with CG: the front-door contract (issue 2's battery)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as spla
import torch

from itersolve import ConvergenceError, ConvergenceWarning, Status, linear_solve
from itersolve.linear import CG
from itersolve.problems import poisson


def spd(n: int, seed: int = 0, cond: float = 100.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    Q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    return (Q * np.geomspace(1.0, cond, n)) @ Q.T


CASES = {
    "poisson1d": lambda: poisson(30, dim=1),
    "poisson2d": lambda: poisson(12, dim=2),
    "random_spd": lambda: spd(40),
}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize(
    ("dtype", "rtol", "tol"), [(np.float64, 1e-10, 1e-8), (np.float32, 1e-5, 1e-3)]
)
def test_cg_agrees_with_numpy_and_scipy(case, dtype, rtol, tol):
    A = CASES[case]()
    dense = A.toarray() if sp.issparse(A) else A
    b = np.random.default_rng(1).standard_normal(dense.shape[0]).astype(dtype)
    A = A.astype(dtype)
    sol = linear_solve(A, b, CG(rtol=rtol))
    assert sol.success and sol.x.dtype == dtype and isinstance(sol.x, np.ndarray)
    exact = np.linalg.solve(dense, b.astype(np.float64))
    np.testing.assert_allclose(sol.x, exact, rtol=tol, atol=tol * np.abs(exact).max())
    ref, info = spla.cg(A, b, rtol=rtol, atol=0.0)
    assert info == 0
    np.testing.assert_allclose(sol.x, ref, rtol=tol, atol=tol * np.abs(exact).max())
    assert np.linalg.norm(b - A @ sol.x) <= rtol * np.linalg.norm(b) * (1 + 10 * tol)


def test_iteration_count_equals_scipy():
    A = poisson(20, dim=2)
    b = np.random.default_rng(2).standard_normal(A.shape[0])
    count = [0]
    spla.cg(A, b, rtol=1e-8, callback=lambda xk: count.__setitem__(0, count[0] + 1))
    sol = linear_solve(A, b, CG(rtol=1e-8))
    assert sol.num_steps == count[0]
    assert sol.stats["matvecs"] >= sol.num_steps


def test_batched_columns_match_separate_solves():
    A = poisson(10, dim=2)
    B = np.random.default_rng(3).standard_normal((A.shape[0], 4))
    B[:, 2] = 0.0  # a zero column is solved at once and must not produce NaN
    sol = linear_solve(A, B, CG(rtol=1e-10))
    assert sol.success and sol.x.shape == B.shape
    for j in range(4):
        single = linear_solve(A, B[:, j], CG(rtol=1e-10)).x
        np.testing.assert_allclose(sol.x[:, j], single, atol=1e-9)
    assert (sol.x[:, 2] == 0).all()


def test_preconditioners_agree():
    A = sp.diags_array(np.linspace(1, 1000, 50)) + poisson(50, dim=1)
    b = np.ones(50)
    plain = linear_solve(A, b, CG(rtol=1e-10))
    jacobi = linear_solve(A, b, CG(rtol=1e-10, M="jacobi"))
    explicit = linear_solve(A, b, CG(rtol=1e-10, M=sp.diags_array(1 / A.diagonal())))
    assert jacobi.num_steps < plain.num_steps
    assert explicit.num_steps == jacobi.num_steps
    np.testing.assert_allclose(jacobi.x, plain.x, rtol=1e-8)


def test_torch_in_torch_out_float32_preserved():
    A = torch.from_numpy(spd(10)).float()
    b = torch.ones(10)
    sol = linear_solve(A, b, CG(rtol=1e-5))
    assert isinstance(sol.x, torch.Tensor) and sol.x.dtype == torch.float32
    assert sol.success


def test_inputs_are_not_mutated():
    A = spd(8)
    b = np.ones(8)
    x0 = np.full(8, 0.5)
    copies = A.copy(), b.copy(), x0.copy()
    linear_solve(A, b, CG(rtol=1e-10), x0=x0)
    for original, copy in zip((A, b, x0), copies, strict=True):
        np.testing.assert_array_equal(original, copy)


def test_warm_start_at_solution_takes_no_step():
    A = spd(8)
    b = np.ones(8)
    x = np.linalg.solve(A, b)
    sol = linear_solve(A, b, CG(rtol=1e-8), x0=x)
    assert sol.success and sol.num_steps == 0


def test_indefinite_matrix_is_reported():
    A = np.diag([1.0, -1.0, 2.0])
    with pytest.warns(ConvergenceWarning, match="NOT_POSITIVE_DEFINITE"):
        sol = linear_solve(A, np.ones(3), CG())
    assert sol.status is Status.NOT_POSITIVE_DEFINITE and not sol.success


def test_nan_input_gives_nonfinite_input():
    b = np.array([1.0, np.nan])
    with pytest.warns(ConvergenceWarning):
        sol = linear_solve(np.eye(2), b)
    assert sol.status is Status.NONFINITE_INPUT and sol.num_steps == 0


def test_max_steps_one_trace_and_throw():
    A, b = poisson(10, dim=2), np.ones(100)
    with pytest.warns(ConvergenceWarning):
        sol = linear_solve(A, b, CG(max_steps=1), record=True)
    assert sol.status is Status.MAX_STEPS and sol.trace is not None
    assert len(sol.trace) == 1 and "relative_residual" in sol.trace
    with pytest.raises(ConvergenceError):
        linear_solve(A, b, CG(max_steps=1), throw=True)


def test_trace_relative_residual_decreases_to_tolerance():
    A, b = poisson(10, dim=2), np.ones(100)
    sol = linear_solve(A, b, CG(rtol=1e-8), record=True)
    assert sol.trace is not None
    rel = sol.trace["relative_residual"]
    assert rel[-1] <= 1e-8 and rel[0] > 1e-8


@pytest.mark.parametrize(
    ("A", "b", "x0", "message"),
    [
        (np.eye(3), np.ones(4), None, r"b must have shape \(3,\) or \(3, k\).*\(4,\)"),
        (np.eye(3), np.ones(3), np.ones(2), r"x0 must have shape \(3,\), got \(2,\)"),
        (np.ones((3, 2)), np.ones(3), None, r"square operator, got shape \(3, 2\)"),
    ],
)
def test_shape_errors_name_both_shapes(A, b, x0, message):
    with pytest.raises(ValueError, match=message):
        linear_solve(A, b, CG(), x0=x0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"rtol": -1.0}, "rtol must be >= 0, got -1.0"),
        ({"atol": -1e-3}, "atol must be >= 0"),
        ({"rtol": 0.0, "atol": 0.0}, "cannot both be 0"),
        ({"residual_replacement": 0}, "residual_replacement must be >= 1"),
        ({"max_steps": -2}, "max_steps must be a positive int, got -2"),
    ],
)
def test_bad_hyperparameters(kwargs, message):
    with pytest.raises(ValueError, match=message):
        CG(**kwargs)


def test_bad_preconditioner_and_method():
    with pytest.raises(ValueError, match="M must be None, 'jacobi'"):
        linear_solve(np.eye(2), np.ones(2), CG(M="ilu"))
    with pytest.raises(TypeError, match="method must be a method such as CG"):
        linear_solve(np.eye(2), np.ones(2), "cg")


def test_residual_replacement_keeps_answer():
    A = spd(30, cond=1e6)
    b = np.ones(30)
    sol = linear_solve(A, b, CG(rtol=1e-10, residual_replacement=5))
    assert sol.status is Status.SUCCESS
    assert sol.stats["residual_replacements"] >= 1
    # the true residual meets the rule (replacement keeps the recursive one honest)
    relative = np.linalg.norm(b - A @ sol.x) / np.linalg.norm(b)
    assert relative <= 1e-10 * 1.01
    # ||x - x*|| / ||x*|| <= cond(A) ||r|| / ||b||, with cond(A) = 1e6 here
    exact = np.linalg.solve(A, b)
    error = np.linalg.norm(sol.x - exact) / np.linalg.norm(exact)
    assert error <= 1e6 * relative * (1 + 1e-6)
    # and scipy's CG on the same rule: both lie within that bound of x*
    ref, info = spla.cg(A, b, rtol=1e-10, atol=0.0, maxiter=1000)
    assert info == 0
    distance = np.linalg.norm(sol.x - ref) / np.linalg.norm(exact)
    assert distance <= 2 * 1e6 * 1e-10 * 1.01


# -- structure tags and setup once, solve many -----------------------------------


def test_declared_structure_picks_the_method_without_probing(monkeypatch):
    from itersolve import aslinearoperator
    from itersolve.linear import GMRES, _problem
    from itersolve.linear._solve import default_method

    probes = []
    original = _problem._probe_spd
    monkeypatch.setattr(
        _problem, "_probe_spd", lambda *a, **k: probes.append(1) or original(*a, **k)
    )
    A = poisson(6, dim=2)
    assert isinstance(default_method(aslinearoperator(A, positive_definite=True)), CG)
    assert isinstance(default_method(aslinearoperator(A, symmetric=False)), GMRES)
    free = aslinearoperator(lambda x: 2 * x, shape=(3, 3), positive_definite=True)
    assert isinstance(default_method(free), CG)
    assert probes == []
    # undeclared: probed once, the verdict cached on the operator ...
    op = aslinearoperator(A.copy())  # shares memory with its input
    assert isinstance(default_method(op), CG) and isinstance(default_method(op), CG)
    assert len(probes) == 1
    # ... until the matrix changes in place (torch version counter)
    op.matrix.values().mul_(-1.0)
    assert isinstance(default_method(op), GMRES) and len(probes) == 2
    # declared symmetric: only the diagonal is looked at
    assert isinstance(default_method(aslinearoperator(-A, symmetric=True)), GMRES)


@pytest.mark.parametrize("M", [None, "jacobi"])
@pytest.mark.parametrize("shape", [(144,), (144, 3)])
def test_prepared_setup_gives_identical_answers(M, shape):
    from itersolve.linear import LinearSetup, prepare

    A = poisson(12, dim=2) + sp.diags_array(np.linspace(0, 1, 144))
    setup = prepare(A, CG(rtol=1e-10, M=M), positive_definite=True)
    assert isinstance(setup, LinearSetup) and setup.operator.positive_definite
    rng = np.random.default_rng(9)
    for _ in range(3):
        b = rng.standard_normal(shape)
        fresh = linear_solve(A, b, CG(rtol=1e-10, M=M))
        reused = linear_solve(A, b, state=setup)
        assert reused.success and reused.num_steps == fresh.num_steps
        assert reused.stats["matvecs"] == fresh.stats["matvecs"]
        np.testing.assert_array_equal(reused.x, fresh.x)
        assert isinstance(reused.x, np.ndarray)
    # torch right-hand sides and the operator itself work with the same setup
    b_t = torch.from_numpy(rng.standard_normal(shape))
    via_op = linear_solve(setup.operator, b_t, state=setup)
    torch.testing.assert_close(via_op.x, linear_solve(A, b_t, CG(rtol=1e-10, M=M)).x)


def test_prepare_default_method_batches_and_errors():
    from itersolve.linear import GMRES, prepare

    A = poisson(5, dim=2)
    assert isinstance(prepare(A).method, CG)
    assert isinstance(prepare(A, symmetric=False).method, GMRES)
    rng = np.random.default_rng(10)
    Q, _ = np.linalg.qr(rng.standard_normal((3, 6, 6)))
    batch = Q @ (np.linspace(1, 10, 6)[:, None] * Q.transpose(0, 2, 1))
    setup = prepare(batch, CG(rtol=1e-12))
    b = rng.standard_normal((3, 6))
    sol = linear_solve(batch, b, state=setup)
    np.testing.assert_allclose(np.einsum("bij,bj->bi", batch, sol.x), b, atol=1e-10)
    with pytest.raises(ValueError, match="prepared for another A"):
        linear_solve(poisson(5, dim=2), np.ones(25), state=prepare(A))
    with pytest.raises(TypeError, match="state must come from prepare"):
        linear_solve(A, np.ones(25), state={"A": A})
    with pytest.raises(ValueError, match="structure tags apply to one matrix"):
        prepare(batch, positive_definite=True)


def test_nonfinite_matrix_is_caught_on_a_prepared_operator():
    from itersolve import Status, aslinearoperator

    A = sp.csr_array(poisson(4, dim=2))
    A.data[3] = np.nan
    op = aslinearoperator(A, positive_definite=True)
    for _ in range(2):  # the verdict is cached, not forgotten
        with pytest.warns(ConvergenceWarning, match="NONFINITE_INPUT"):
            sol = linear_solve(op, np.ones(16), CG())
        assert sol.status is Status.NONFINITE_INPUT


def test_tagged_copies_count_their_own_matvecs_and_keep_verdicts_apart():
    from itersolve import aslinearoperator
    from itersolve.linear import GMRES
    from itersolve.linear._solve import default_method

    A = poisson(5, dim=2).tolil()
    A[0, 1] = 0.5  # not symmetric, positive diagonal
    op = aslinearoperator(A.tocsr())
    b = np.ones(25)
    first = linear_solve(op, b, GMRES(rtol=1e-10))
    tagged = op.with_tags(symmetric=True)  # a (false) declaration the user owns
    assert isinstance(default_method(tagged), CG)
    assert isinstance(default_method(op), GMRES)  # the probe, not the declaration
    again = linear_solve(tagged, b, GMRES(rtol=1e-10))
    assert again.stats["matvecs"] == first.stats["matvecs"] > 0
    assert tagged.matvecs == again.stats["matvecs"]
    assert op.matvecs == first.stats["matvecs"]
