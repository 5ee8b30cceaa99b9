"""The optional ``f_star`` stopping rule of the Newton methods, and the
rank-one empirical Fisher model built without a user callable."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from itersolve import Objective, Status
from itersolve.optimize import (
    CubicRegularizedNewton,
    Newton,
    RegularizedNewton,
    SmoothProblem,
    minimize,
)
from itersolve.optimize._second_order import fisher_rank_one_of
from itersolve.problems import (
    Logistic,
    Rosenbrock,
    Softmax,
    synthetic_classification,
)

F64 = torch.float64


def _logistic(dtype=F64):
    X, y = synthetic_classification(120, 5, condition_number=10.0, seed=1)
    return Logistic(X.to(dtype), y, l2=1e-2)


def _softmax():
    X, y = synthetic_classification(90, 4, n_classes=3, condition_number=10.0, seed=2)
    return Softmax(X, y, l2=1e-2)


def _sample_losses(problem, x):
    """The per-sample data losses ``f_i`` (no ridge term) in plain torch."""
    Z = problem.X @ x
    if problem.loss == "logistic":
        return torch.nn.functional.softplus(-problem.y * Z)
    return torch.logsumexp(Z, dim=1) - Z.gather(1, problem.y[:, None])[:, 0]


def _dense_model(problem, x):
    """``diag(diag F - gbar^2) + gbar gbar^T + l2 I`` from autograd per-sample
    gradients (the empirical Fisher ``F = 1/m sum g_i g_i^T``)."""
    jac = torch.autograd.functional.jacobian(lambda w: _sample_losses(problem, w), x)
    G = jac.reshape(jac.shape[0], -1)
    F = G.T @ G / G.shape[0]
    gbar = G.mean(0)
    diag = F.diagonal() - gbar**2 + problem.l2
    return torch.diag(diag) + torch.outer(gbar, gbar), F


# -- f_star ----------------------------------------------------------------------


def _f_min(problem):
    return float(problem.value(minimize(problem, problem.x0(), Newton(rtol=1e-13)).x))


@pytest.mark.parametrize(
    "make",
    [
        lambda **kw: RegularizedNewton(atol=1e-13, **kw),
        lambda **kw: Newton(rtol=1e-14, **kw),
        lambda **kw: CubicRegularizedNewton(rtol=1e-14, **kw),
    ],
    ids=["regularized", "newton", "cubic"],
)
def test_f_star_stops_when_the_gap_is_within_tolerance(make):
    p = _logistic()
    f_star = _f_min(p)
    full = minimize(p, p.x0(), make(), record=True)
    early = minimize(p, p.x0(), make(f_star=f_star, atol_f=1e-3, rtol_f=0.0))
    assert early.success and early.num_steps < full.num_steps
    gap = float(p.value(early.x)) - f_star
    assert 0 <= gap <= 1e-3
    # It stopped at the first step whose (fresh) value met the rule.
    values = np.asarray(full.trace["objective"])
    first = int(np.argmax(values - f_star <= 1e-3))
    assert early.num_steps == int(full.trace["step"][first])


def test_f_star_relative_tolerance_and_start_already_there():
    p = _logistic()
    f_star = _f_min(p)
    rel = minimize(p, p.x0(), RegularizedNewton(f_star=f_star, rtol_f=1e-2))
    assert rel.success
    assert float(p.value(rel.x)) - f_star <= 1e-2 * abs(f_star)
    # A target above f(x0) is met at x0: no step taken.
    at_start = minimize(p, p.x0(), RegularizedNewton(f_star=10.0))
    assert at_start.status is Status.SUCCESS and at_start.num_steps == 0


@pytest.mark.parametrize("cls", [Newton, RegularizedNewton, CubicRegularizedNewton])
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"f_star": float("inf")}, r"f_star must be a finite number or None, got inf"),
        ({"f_star": "0"}, r"f_star must be a finite number"),
        ({"rtol_f": -1.0}, r"rtol_f must be >= 0 and finite, got -1\.0"),
        ({"atol_f": float("nan")}, r"atol_f must be >= 0 and finite"),
        ({"f_star": 0.0, "rtol_f": 0.0, "atol_f": 0.0}, r"cannot both be 0"),
    ],
)
def test_f_star_bad_values(cls, kwargs, message):
    with pytest.raises(ValueError, match=message):
        cls(**kwargs)


# -- rank-one Fisher without a callable -----------------------------------------


@pytest.mark.parametrize("make", [_logistic, _softmax], ids=["logistic", "softmax"])
def test_fisher_rank_one_matches_the_empirical_fisher(make):
    p = make()
    g = torch.Generator().manual_seed(0)
    x = 0.3 * torch.randn(p.shape, generator=g, dtype=F64)
    model = fisher_rank_one_of(p.objective())(x)
    expected, F = _dense_model(p, x)
    torch.testing.assert_close(model.dense(), expected, rtol=1e-12, atol=1e-12)
    # Exact on the diagonal of the empirical Fisher (plus the ridge).
    torch.testing.assert_close(
        model.dense().diagonal(), F.diagonal() + p.l2, rtol=1e-12, atol=1e-12
    )


class _PerSampleLeastSquares(SmoothProblem):
    """``1/m sum_i (a_i^T x - b_i)^2 / 2 + l2/2 ||x||^2`` with per-sample grads."""

    def __init__(self, A, b, l2):
        self.A, self.b, self.l2 = A, b, l2
        self.shape, self.dtype, self.device = (A.shape[1],), A.dtype, A.device

    def value(self, x):
        r = self.A @ x - self.b
        return 0.5 * (r @ r) / len(self.b) + 0.5 * self.l2 * (x @ x)

    def grad(self, x):
        return self.A.T @ (self.A @ x - self.b) / len(self.b) + self.l2 * x

    def per_sample_grads(self, x):
        return self.A * (self.A @ x - self.b)[:, None]


def test_fisher_rank_one_from_per_sample_grads():
    g = torch.Generator().manual_seed(4)
    A = torch.randn(40, 6, generator=g, dtype=F64)
    p = _PerSampleLeastSquares(A, torch.randn(40, generator=g, dtype=F64), 0.1)
    x = torch.randn(6, generator=g, dtype=F64)
    G = p.per_sample_grads(x)
    gbar = G.mean(0)
    expected = torch.diag((G * G).mean(0) - gbar**2 + 0.1) + torch.outer(gbar, gbar)
    model = fisher_rank_one_of(p.objective())(x)
    torch.testing.assert_close(model.dense(), expected, rtol=1e-12, atol=1e-12)
    # The model converges linearly; 1e-6 stays clear of the rounding of f that
    # limits the acceptance test of the last steps.
    method = RegularizedNewton(hessian="fisher_rank_one", atol=1e-6)
    sol = minimize(p, p.x0(), method)
    x_star = torch.linalg.solve(
        A.T @ A / 40 + 0.1 * torch.eye(6, dtype=F64), A.T @ p.b / 40
    )
    assert sol.success
    torch.testing.assert_close(sol.x, x_star, rtol=0, atol=1e-5)


def test_regularized_newton_with_fisher_rank_one_on_logistic():
    p = _logistic()
    sol = minimize(p, p.x0(), RegularizedNewton(hessian="fisher_rank_one"))
    exact = minimize(p, p.x0(), Newton(rtol=1e-13))
    assert sol.success and sol.stats["hessians"] >= sol.num_steps
    # Sherman-Morrison: no factorization at all.
    assert sol.stats["factorizations"] == 0
    torch.testing.assert_close(sol.x, exact.x, rtol=0, atol=1e-6)


def test_fisher_rank_one_float32_twin():
    p32, p64 = _logistic(torch.float32), _logistic()
    x = torch.linspace(-0.5, 0.5, 5, dtype=F64)
    model32 = fisher_rank_one_of(p32.objective())(x.float())
    model64 = fisher_rank_one_of(p64.objective())(x)
    assert model32.diagonal.dtype == torch.float32
    torch.testing.assert_close(
        model32.dense().double(), model64.dense(), rtol=1e-5, atol=1e-6
    )
    # A linear-rate model in float32: the acceptance test's decrease
    # ||g||^2 / (8 lambda) falls below the rounding of f near ||g|| ~ 1e-4, so
    # the twin asks for 1e-3.
    sol = minimize(
        p32, p32.x0(), RegularizedNewton(hessian="fisher_rank_one", atol=1e-3)
    )
    assert sol.success and sol.x.dtype == torch.float32
    exact = minimize(p64, p64.x0(), Newton(rtol=1e-13))
    # mu-strong convexity (mu = l2): ||x - x*|| <= ||grad f(x)|| / mu.
    error = np.linalg.norm(sol.x.double().numpy() - exact.x.numpy())
    assert error <= 1e-3 / p64.l2


@pytest.mark.parametrize(
    ("objective", "name"),
    [
        (Rosenbrock(3), "Rosenbrock"),
        (Objective(lambda x: (x**2).sum()), "Objective"),
    ],
)
def test_fisher_rank_one_without_per_sample_gradients_is_a_clear_error(objective, name):
    x0 = torch.ones(3, dtype=F64)
    with pytest.raises(ValueError, match=rf"needs per-sample gradients.*got {name}"):
        minimize(objective, x0, RegularizedNewton(hessian="fisher_rank_one"))
