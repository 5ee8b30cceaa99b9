"""Quadrature rules, including Bayesian quadrature with Matérn kernels."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.integrate as si
import torch

from itersolve.control import (
    bq_matern_weights,
    gauss_legendre_rule,
    integrate,
    matern_kernel,
    matern_kernel_mean,
    simpson_weights,
    trapezoid_weights,
)

T = 0.1


def test_rules_match_scipy():
    t = np.linspace(0, T, 9)
    f = np.exp(-3 * t) * np.sin(5 * t)
    assert float(integrate(f, trapezoid_weights(9, T))) == pytest.approx(
        si.trapezoid(f, t), rel=1e-14
    )
    assert float(integrate(f, simpson_weights(9, T))) == pytest.approx(
        si.simpson(f, x=t), rel=1e-14
    )
    x, w = gauss_legendre_rule(4, T)
    exact = si.quad(lambda s: s**7, 0, T)[0]
    assert float(w @ x**7) == pytest.approx(exact, rel=1e-13)


@pytest.mark.parametrize("nu", [0.5, 1.5, 2.5, 3.5])
def test_kernel_mean_closed_form(nu):
    nodes = torch.tensor([0.0, 0.03, 0.1], dtype=torch.float64)
    z = matern_kernel_mean(nodes, 0.0, T, nu, 0.3)
    for t, zi in zip(nodes.tolist(), z.tolist(), strict=True):
        # split at the node (a kink there for nu = 1/2); each piece is smooth,
        # so 40-point Gauss-Legendre is exact to rounding
        x, w = np.polynomial.legendre.leggauss(40)
        ref = 0.0
        for lo, hi in ((0.0, t), (t, T)):
            if hi > lo:
                s = torch.from_numpy(lo + (hi - lo) * (x + 1) / 2)
                k = matern_kernel(s - t, nu, 0.3).numpy()
                ref += (hi - lo) / 2 * float(w @ k)
        assert zi == pytest.approx(ref, rel=1e-11)


@pytest.mark.parametrize(("N", "tol"), [(5, 5e-4), (9, 2e-5), (15, 2e-6)])
def test_bq_weights_integrate_polynomials_and_exponentials(N, tol):
    t = torch.linspace(0, T, N, dtype=torch.float64)
    bq = bq_matern_weights(t, (0.0, T), nu=3.5, lengthscale=0.3)
    assert abs(bq.sum_error) < tol * T
    assert bq.condition > 1e5  # the ill-conditioning the spec warns about
    for f, F in [
        (lambda s: s**2, T**3 / 3),
        (lambda s: 1 + s - 4 * s**3, T + T**2 / 2 - T**4),
        (lambda s: torch.exp(-3 * s), (1 - math.exp(-3 * T)) / 3),
        (
            lambda s: torch.exp(2 * s) * torch.cos(7 * s),
            (math.exp(2 * T) * (2 * math.cos(7 * T) + 7 * math.sin(7 * T)) - 2) / 53,
        ),
    ]:
        scale = T * float(f(t).abs().max())
        assert abs(float(integrate(f(t), bq.weights)) - F) < tol * scale
    assert bq.variance >= -1e-12


def test_bq_beats_trapezoid_with_higher_rate():
    f = lambda s: np.exp(-3 * s) * np.sin(5 * s) + s**2  # noqa: E731
    exact = (
        math.exp(-3 * T) * (-3 * math.sin(5 * T) - 5 * math.cos(5 * T)) + 5
    ) / 34 + T**3 / 3
    Ns = np.array([5, 7, 9, 11, 13, 15])
    err_tr, err_bq = [], []
    for N in Ns:
        t = np.linspace(0, T, N)
        err_tr.append(abs(float(integrate(f(t), trapezoid_weights(int(N), T))) - exact))
        w = bq_matern_weights(t, (0, T)).weights
        err_bq.append(abs(float(integrate(f(t), w)) - exact))
    slope_tr = np.polyfit(np.log(Ns), np.log(err_tr), 1)[0]
    slope_bq = np.polyfit(np.log(Ns), np.log(err_bq), 1)[0]
    assert -2.4 < slope_tr < -1.9
    assert slope_bq < -4.0


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: trapezoid_weights(1, T), "n_points"),
        (lambda: simpson_weights(4, T), "odd"),
        (lambda: trapezoid_weights(5, -1.0), "positive"),
        (lambda: bq_matern_weights([0.0, 0.05], (0, T), nu=2.0), "half-integer"),
        (lambda: bq_matern_weights([0.0, 0.0], (0, T)), "distinct"),
        (lambda: bq_matern_weights([0.0, 0.5], (0, T)), "lie in"),
        (lambda: bq_matern_weights([0.0], (T, 0)), "b > a"),
        (lambda: integrate(np.ones(3), trapezoid_weights(4, T)), "nodes"),
    ],
)
def test_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()
