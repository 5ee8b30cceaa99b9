"""Status messages carry advice that fits the method (issue: a user's first hour).

Each row runs a real solver into a real failure and checks the message says what
to change for that method, and does not repeat advice that does not apply (a
preconditioner for Newton or Kleinman, a step size for Kleinman).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import itersolve
from itersolve import ConvergenceWarning, Status
from itersolve.control import Kleinman, solve_lqr
from itersolve.linear import CG, GMRES, MINRES, GaussSeidel
from itersolve.optimize import Newton, RegularizedNewton
from itersolve.ot import Sinkhorn, transport
from itersolve.problems import poisson


def _poisson_rhs():
    A = poisson(8, dim=2)
    return A, np.random.default_rng(0).standard_normal(A.shape[0])


def _linear(method):
    A, b = _poisson_rhs()
    return itersolve.linear_solve(A, b, method)


def _rosenbrock(method):
    def f(x):
        return (1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2

    return itersolve.minimize(f, torch.tensor([-1.2, 1.0], dtype=torch.float64), method)


def _lqr(method):
    A = np.array([[0.0, 1.0], [-1.0, -0.1]])
    B = np.array([[0.0], [1.0]])
    return solve_lqr(A, B, np.eye(2), np.eye(1), method)


def _sinkhorn(method):
    rng = np.random.default_rng(0)
    a, b = np.full(5, 0.2), np.full(4, 0.25)
    return transport(a, b, rng.random((5, 4)), method, reg=1e-2)


CASES = [
    # (run, method, status, must contain, must not contain)
    (_linear, CG(max_steps=2), Status.MAX_STEPS, ["precondition", "GMRES"], []),
    (_linear, MINRES(max_steps=2), Status.MAX_STEPS, ["symmetric"], []),
    (_linear, GMRES(max_steps=2), Status.MAX_STEPS, ["restart"], []),
    (
        _rosenbrock,
        Newton(max_steps=2),
        Status.MAX_STEPS,
        ["start closer", "RegularizedNewton"],
        ["preconditioner"],
    ),
    (
        _rosenbrock,
        RegularizedNewton(max_steps=2),
        Status.MAX_STEPS,
        ["max_steps"],
        ["preconditioner"],
    ),
    (
        _lqr,
        Kleinman(max_steps=1),
        Status.MAX_STEPS,
        ["stabiliz", "quadratically"],
        ["preconditioner", "step size"],
    ),
    (_sinkhorn, Sinkhorn(max_steps=2), Status.MAX_STEPS, ["SinkhornNewtonSparse"], []),
]


@pytest.mark.parametrize(
    ("run", "method", "status", "present", "absent"),
    CASES,
    ids=[type(c[1]).__name__ for c in CASES],
)
def test_message_fits_the_method(run, method, status, present, absent):
    with pytest.warns(ConvergenceWarning) as caught:
        sol = run(method)
    assert sol.status is status
    assert sol.advice is not None
    assert sol.message.startswith(status.outcome)
    for word in present:
        assert word in sol.message
    for word in absent:
        assert word not in sol.message
    assert sol.message in str(caught[0].message)


def test_method_without_advice_keeps_the_generic_sentence():
    with pytest.warns(ConvergenceWarning):
        sol = _linear(GaussSeidel(max_steps=2))
    assert sol.status is Status.MAX_STEPS and sol.advice is None
    assert sol.message == Status.MAX_STEPS.value


def test_success_has_no_advice():
    sol = _linear(CG(rtol=1e-8))
    assert sol.success and sol.advice is None
    assert sol.message == Status.SUCCESS.value


def test_every_failure_status_has_an_outcome_without_advice():
    for status in Status:
        if status in (
            Status.SUCCESS,
            Status.NONFINITE_INPUT,
            Status.STOPPED_BY_CALLBACK,
        ):
            continue
        outcome = status.outcome
        assert outcome != status.value and status.value.startswith(outcome)
