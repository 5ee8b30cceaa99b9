"""Objective oracles against closed forms; line searches on known 1-D functions."""

from __future__ import annotations

import math

import pytest
import torch

from itersolve import Objective
from itersolve._core.linesearch import armijo, armijo_rows, strong_wolfe
from itersolve._core.objective import as_objective

Q = torch.tensor([[3.0, 1.0], [1.0, 2.0]], dtype=torch.float64)
C = torch.tensor([1.0, -1.0], dtype=torch.float64)


def quadratic(x):
    return 0.5 * x @ Q @ x - C @ x + torch.exp(x).sum()


def test_autograd_oracles_match_closed_form():
    f = Objective(quadratic)
    x = torch.tensor([0.3, -0.7], dtype=torch.float64)
    v = torch.tensor([1.0, 2.0], dtype=torch.float64)
    grad = Q @ x - C + torch.exp(x)
    hess = Q + torch.diag(torch.exp(x))
    value, g = f.value_and_grad(x)
    torch.testing.assert_close(g, grad)
    torch.testing.assert_close(f.grad(x), grad)
    torch.testing.assert_close(value, quadratic(x))
    torch.testing.assert_close(f.hvp(x, v), hess @ v)
    torch.testing.assert_close(f.hessian(x), hess)
    assert f.counts == {"values": 1, "grads": 2, "hvps": 1, "hessians": 1}


def test_closed_forms_are_used_and_counted():
    calls = []
    f = Objective(
        lambda x: (x**2).sum(),
        grad=lambda x: (calls.append("g"), 2 * x)[1],
        hessian=lambda x: 2 * torch.eye(x.numel(), dtype=x.dtype),
    )
    x = torch.ones(2, dtype=torch.float64)
    torch.testing.assert_close(f.hvp(x, x), 2 * x)
    f.value_and_grad(x)
    assert calls == ["g"] and f.counts["hvps"] == 1


def test_matrix_shaped_x_keeps_its_shape():
    f = Objective(lambda W: (W**2).sum())
    W = torch.ones(2, 3, dtype=torch.float64)
    assert f.grad(W).shape == (2, 3)
    assert f.hessian(W).shape == (6, 6)


def test_non_scalar_objective_is_rejected():
    with pytest.raises(ValueError, match="must return a scalar"):
        Objective(lambda x: x).grad(torch.ones(2))


def test_as_objective():
    f = Objective(quadratic)
    assert as_objective(f) is f
    assert isinstance(as_objective(quadratic), Objective)
    with pytest.raises(TypeError, match="objective must be"):
        as_objective(3)


def test_armijo_backtracks_to_sufficient_decrease():
    result = armijo(lambda t: (1 - t) ** 2, 1.0, -2.0, step=8.0)
    assert result.success and result.step == 1.0 and result.evaluations == 4


def test_armijo_reports_ascent_direction_as_failure():
    assert not armijo(lambda t: t, 0.0, 1.0).success


def test_armijo_survives_nonfinite_values():
    result = armijo(lambda t: math.inf if t > 1 else (1 - t) ** 2, 1.0, -2.0, step=4.0)
    assert result.success and result.step == 1.0


@pytest.mark.parametrize("start", [0.01, 1.0, 100.0])
def test_strong_wolfe_conditions_hold(start):
    def phi(t):
        return math.exp(t) - 3 * t, math.exp(t) - 3

    f0, slope = phi(0.0)
    result = strong_wolfe(phi, f0, slope, step=start, c1=1e-4, c2=0.5)
    assert result.success
    assert result.value <= f0 + 1e-4 * result.step * slope
    assert abs(result.slope) <= 0.5 * abs(slope)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"c1": 0.0}, "c1 must be in"), ({"shrink": 1.0}, "shrink must be in")],
)
def test_armijo_bad_parameters(kwargs, message):
    with pytest.raises(ValueError, match=message):
        armijo(lambda t: t, 0.0, -1.0, **kwargs)


def test_strong_wolfe_bad_parameters():
    with pytest.raises(ValueError, match="0 < c1 < c2 < 1"):
        strong_wolfe(lambda t: (t, 1.0), 0.0, -1.0, c1=0.5, c2=0.1)


def test_numpy_objective_derivatives_match_scipy_closed_forms():
    import numpy as np
    import scipy.optimize as so

    from itersolve._core.objective import NumpyObjective

    x = torch.tensor([0.3, -0.7, 1.1, 0.5], dtype=torch.float64)
    v = torch.tensor([1.0, 2.0, -1.0, 0.5], dtype=torch.float64)
    hess = torch.from_numpy(so.rosen_hess(x.numpy()))
    grad = torch.from_numpy(so.rosen_der(x.numpy()))
    exact = NumpyObjective(so.rosen, jac=so.rosen_der)
    torch.testing.assert_close(exact.grad(x), grad)
    torch.testing.assert_close(exact.hvp(x, v), hess @ v, rtol=1e-8, atol=1e-8)
    torch.testing.assert_close(exact.hessian(x), hess, rtol=1e-8, atol=1e-8)
    # finite differences of finite differences: about sqrt(eps)
    fd = NumpyObjective(so.rosen)
    torch.testing.assert_close(fd.grad(x), grad, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(fd.hessian(x), hess, rtol=1e-5, atol=1e-5)
    assert fd.counts["fevals"] == 2 * 4 + 2 * 4 * (2 * 4)
    # the caller's iterate never reaches fun as a view it could mutate
    seen = []
    NumpyObjective(lambda z: seen.append(z) or float(np.sum(z))).value(x)
    seen[0][:] = 99.0
    assert float(x[0]) == 0.3
    with pytest.raises(ValueError, match="must return a scalar"):
        NumpyObjective(lambda z: z).value(x)


def test_armijo_rows_matches_scalar_armijo_row_by_row():
    # phi_b(t) = (1 - a_b t)^2: rows needing different numbers of halvings, a
    # row whose trial points are non-finite until t < 0.3, and an ascent row
    a = torch.tensor([1.0, 0.25, 8.0, 40.0, 1.0])
    f0 = torch.ones(5)
    slope = torch.tensor([-2.0, -0.5, -16.0, -80.0, 2.0])

    def trial(t, rows):
        values = (1 - a * t) ** 2
        return torch.where(
            (a == 1.0) & (t > 0.3) & (torch.arange(5) == 0), torch.nan, values
        ), (t.clone(),)

    t, ok, (seen,) = armijo_rows(
        trial, f0, slope, torch.ones(5, dtype=torch.bool), (torch.zeros(5),)
    )
    for b in range(4):

        def phi(s, b=b):
            return float("nan") if b == 0 and s > 0.3 else (1 - float(a[b]) * s) ** 2

        ref = armijo(phi, 1.0, float(slope[b]))
        assert bool(ok[b]) and float(t[b]) == ref.step and float(seen[b]) == ref.step
    assert not bool(ok[4]) and float(seen[4]) == 0.0  # ascent: never accepted
