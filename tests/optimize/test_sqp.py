"""AdaSketchSQP and EqualityConstraints: KKT conditions on problems with closed
forms, agreement with SciPy's SLSQP, honest statuses, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.optimize
import torch

from itersolve import ConvergenceWarning, Status
from itersolve.linear import SketchAndProject
from itersolve.optimize import AdaSketchSQP, EqualityConstraints, Newton, minimize

F64 = torch.float64


def _plane(seed: int = 0, m: int = 3, n: int = 7):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((m, n)), rng.standard_normal(m)


SOLVERS = {
    "kaczmarz": {},
    "direct": {"linear_solver": "direct"},
    "gaussian": {"linear_solver": SketchAndProject(sketch="gaussian", sketch_size=4)},
}


@pytest.mark.parametrize("config", SOLVERS, ids=str)
def test_min_norm_point_on_affine_set_matches_closed_form(config):
    A, b = _plane()
    At, bt = torch.as_tensor(A), torch.as_tensor(b)
    con = EqualityConstraints(lambda x: At @ x - bt)
    method = AdaSketchSQP(atol=1e-10, **SOLVERS[config])
    sol = minimize(lambda x: (x**2).sum(), np.zeros(7), method, constraints=con)
    x_star = A.T @ np.linalg.solve(A @ A.T, b)
    assert sol.success, sol.message
    np.testing.assert_allclose(sol.x, x_star, atol=1e-9)
    # KKT on a fresh evaluation: 2 x + A^T lam = 0 has a solution, A x = b
    lam = np.linalg.lstsq(A.T, -2 * sol.x, rcond=None)[0]
    assert np.linalg.norm(2 * sol.x + A.T @ lam) <= 1e-9
    # the returned multipliers are these, in the array kind of x0
    multipliers = sol.extras["multipliers"]
    assert isinstance(multipliers, np.ndarray) and multipliers.shape == b.shape
    np.testing.assert_allclose(multipliers, lam, atol=1e-8)
    assert np.linalg.norm(A @ sol.x - b) <= 1e-10
    assert sol.stats["kkt_residual"] <= 1e-10
    assert sol.stats["constraint_violation"] <= 1e-10
    if config != "direct":
        assert sol.stats["kkt_row_ops"] > 0


def _hs7():
    f = lambda x: torch.log1p(x[0] ** 2) - x[1]  # noqa: E731
    c = lambda x: ((1 + x[0] ** 2) ** 2 + x[1] ** 2 - 4.0).reshape(1)  # noqa: E731
    return f, c


def test_nonlinear_problem_agrees_with_slsqp_and_closed_form():
    f, c = _hs7()
    x0 = torch.tensor([2.0, 2.0], dtype=F64)
    sol = minimize(f, x0, AdaSketchSQP(atol=1e-9), constraints=EqualityConstraints(c))
    assert sol.success, sol.message
    # HS7: x* = (0, sqrt 3), f* = -sqrt 3
    np.testing.assert_allclose(sol.x.numpy(), [0.0, math.sqrt(3.0)], atol=1e-8)
    ref = scipy.optimize.minimize(
        lambda x: float(f(torch.as_tensor(x))),
        x0.numpy(),
        method="SLSQP",
        constraints={"type": "eq", "fun": lambda x: c(torch.as_tensor(x)).numpy()},
        options={"ftol": 1e-12},
    )
    np.testing.assert_allclose(sol.x.numpy(), ref.x, atol=1e-5)


def test_unit_steps_and_superlinear_decay_near_the_solution():
    f, c = _hs7()
    sol = minimize(
        f,
        torch.tensor([2.0, 2.0], dtype=F64),
        AdaSketchSQP(atol=1e-12, linear_solver="direct"),
        constraints=EqualityConstraints(c),
        record=True,
    )
    trace = sol.trace.as_dict()
    kkt, steps = trace["kkt_residual"], trace["step_size"]
    assert sol.success
    assert all(s == 1.0 for s in steps[-3:])
    ratios = kkt[-3:] / kkt[-4:-1]
    assert ratios[-1] < 0.1 and ratios[-1] < ratios[0], ratios


def test_numpy_constraints_with_difference_jacobian():
    def c(x):
        return np.array([x[0] + x[1] - 1.0, x[0] * x[2]])

    sol = minimize(
        lambda x: (x**2).sum(),
        torch.tensor([1.0, 1.0, 1.0], dtype=F64),
        AdaSketchSQP(atol=1e-7, linear_solver="direct"),
        constraints=EqualityConstraints(c),
    )
    assert sol.success, sol.message
    np.testing.assert_allclose(sol.x.numpy(), [0.5, 0.5, 0.0], atol=1e-6)


def test_feasibility_problem_with_zero_objective():
    # circle x^2 + y^2 = 2 meets the line x = y at (1, 1) and (-1, -1)
    con = EqualityConstraints(lambda x: torch.stack([x @ x - 2.0, x[0] - x[1]]))
    sol = minimize(
        lambda x: 0.0 * x.sum(),
        torch.tensor([2.0, 0.5], dtype=F64),
        AdaSketchSQP(atol=1e-10),
        constraints=con,
    )
    assert sol.success, sol.message
    np.testing.assert_allclose(sol.x.numpy(), [1.0, 1.0], atol=1e-9)


def test_redundant_constraints_rank_deficient_jacobian_still_converge():
    # the same plane twice: G G^T singular at every point
    con = EqualityConstraints(lambda x: torch.stack([x.sum() - 1.0, 2 * x.sum() - 2.0]))
    for solver in ("direct", SketchAndProject()):
        sol = minimize(
            lambda x: (x**2).sum(),
            torch.zeros(3, dtype=F64),
            AdaSketchSQP(atol=1e-8, linear_solver=solver),
            constraints=con,
        )
        assert sol.success, sol.message
        assert sol.stats["rank_deficient_steps"] >= 1
        np.testing.assert_allclose(sol.x.numpy(), np.full(3, 1 / 3), atol=1e-7)


@pytest.mark.parametrize("solver", ["direct", None], ids=["direct", "kaczmarz"])
def test_infeasible_constraints_give_an_honest_status(solver):
    con = EqualityConstraints(lambda x: (x[0] ** 2 + 1.0).reshape(1))
    options = {"linear_solver": solver} if solver else {}
    with pytest.warns(ConvergenceWarning, match="no feasible point nearby"):
        sol = minimize(
            lambda x: (x**2).sum(),
            torch.tensor([1.0, 1.0], dtype=F64),
            AdaSketchSQP(max_steps=200, **options),
            constraints=con,
        )
    assert sol.status is Status.STAGNATION
    assert bool(torch.isfinite(sol.x).all())
    assert sol.stats["constraint_violation"] >= 1.0 - 1e-9


def test_jacobian_of_wrong_shape_is_rejected():
    con = EqualityConstraints(
        lambda x: x[:1] - 1.0, jac=lambda x: torch.ones(2, 3, dtype=F64)
    )
    with pytest.raises(ValueError, match=r"Jacobian jac\(x\) must have shape"):
        minimize(lambda x: (x**2).sum(), torch.zeros(3, dtype=F64),
                 AdaSketchSQP(), constraints=con)  # fmt: skip


def test_x0_of_wrong_shape_is_rejected():
    A = torch.ones(1, 3, dtype=F64)
    con = EqualityConstraints(lambda x: A @ x - 1.0)
    with pytest.raises(ValueError, match=r"x0 of shape \(4,\)"):
        minimize(lambda x: (x**2).sum(), torch.zeros(4, dtype=F64),
                 AdaSketchSQP(), constraints=con)  # fmt: skip


def test_nonfinite_constraint_value_at_x0_is_rejected():
    con = EqualityConstraints(lambda x: torch.log(x[:1]))
    with pytest.raises(ValueError, match=r"c\(x0\) are not finite"):
        minimize(lambda x: (x**2).sum(), torch.zeros(2, dtype=F64),
                 AdaSketchSQP(), constraints=con)  # fmt: skip


def test_constraint_value_must_be_a_vector():
    con = EqualityConstraints(lambda x: x.sum() - 1.0)
    with pytest.raises(ValueError, match=r"1-D vector of shape \(m,\)"):
        minimize(lambda x: (x**2).sum(), torch.zeros(2, dtype=F64),
                 AdaSketchSQP(), constraints=con)  # fmt: skip


def test_missing_constraints_and_wrong_types():
    with pytest.raises(ValueError, match="needs constraints=EqualityConstraints"):
        minimize(lambda x: (x**2).sum(), torch.zeros(2, dtype=F64), AdaSketchSQP())
    with pytest.raises(TypeError, match="constraints must be an"):
        minimize(lambda x: (x**2).sum(), torch.zeros(2, dtype=F64),
                 AdaSketchSQP(), constraints=[lambda x: x])  # fmt: skip
    with pytest.raises(ValueError, match="does not accept constraints"):
        minimize(lambda x: (x**2).sum(), torch.zeros(2, dtype=F64), Newton(),
                 constraints=EqualityConstraints(lambda x: x[:1]))  # fmt: skip
    with pytest.raises(TypeError, match="jac must be callable"):
        EqualityConstraints(lambda x: x, jac=3)


def test_adaptive_inner_accuracy_uses_fewer_rows_than_fixed_tight():
    f, c = _hs7()
    runs = {}
    for rtol in (None, 1e-6):
        sol = minimize(
            f,
            torch.tensor([2.0, 2.0], dtype=F64),
            AdaSketchSQP(atol=1e-8, inner_rtol=rtol),
            constraints=EqualityConstraints(c),
        )
        assert sol.success
        runs[rtol] = sol.stats["kkt_row_ops"]
    assert runs[None] < runs[1e-6], runs


def test_constraint_derivatives_closed_form_autograd_and_differences_agree():
    def c_torch(x):
        return torch.stack([x[0] ** 2 * x[1] - 1.0, torch.sin(x[2]) + x[0]])

    def jac(x):
        return torch.tensor(
            [[2 * x[0] * x[1], x[0] ** 2, 0.0], [1.0, 0.0, math.cos(x[2])]], dtype=F64
        )

    def hess(x, lam):
        H = torch.zeros(3, 3, dtype=F64)
        H[0, 0], H[0, 1], H[1, 0] = (
            2 * x[1] * lam[0],
            2 * x[0] * lam[0],
            2 * x[0] * lam[0],
        )
        H[2, 2] = -math.sin(x[2]) * lam[1]
        return H

    x = torch.tensor([0.7, -1.3, 0.4], dtype=F64)
    lam = torch.tensor([1.5, -0.5], dtype=F64)
    closed = EqualityConstraints(c_torch, jac=jac, hess=hess).bind(x)
    auto = EqualityConstraints(c_torch).bind(x)
    numeric = EqualityConstraints(lambda v: c_torch(torch.as_tensor(v)).numpy()).bind(x)
    for other, tol in ((auto, 1e-12), (numeric, 1e-6)):
        torch.testing.assert_close(
            other.jacobian(x), closed.jacobian(x), atol=tol, rtol=0
        )
        torch.testing.assert_close(
            other.hessian(x, lam), closed.hessian(x, lam), atol=100 * tol, rtol=0
        )
    assert numeric.numpy_mode and not auto.numpy_mode
    assert closed.counts["constraint_jacobians"] == 2
