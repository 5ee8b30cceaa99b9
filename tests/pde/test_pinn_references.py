"""Exact references of the Burgers (Cole--Hopf) and Poisson (scikit-fem) problems."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from itersolve.pde.pinn import PoissonReference, burgers_cole_hopf, poisson_reference

NU_PINN = 0.01 / math.pi  # the classic PINN benchmark viscosity
F64 = torch.float64


def _burgers_residual(x: torch.Tensor, t: torch.Tensor, nu: float, h: float):
    """Central-difference residual ``u_t + u u_x - nu u_xx`` and the size of
    ``u u_x`` on the grid ``t x x`` (step ``h`` in both ``x`` and ``t``)."""
    u = burgers_cole_hopf(x, t, nu)
    u_xp = burgers_cole_hopf(x + h, t, nu)
    u_xm = burgers_cole_hopf(x - h, t, nu)
    u_t = (burgers_cole_hopf(x, t + h, nu) - burgers_cole_hopf(x, t - h, nu)) / (2 * h)
    u_x = (u_xp - u_xm) / (2 * h)
    u_xx = (u_xp - 2 * u + u_xm) / h**2
    return u_t + u * u_x - nu * u_xx, u * u_x, u_xx


@pytest.mark.parametrize(
    ("nu", "times"),
    [(0.1, (0.1, 0.5, 0.9)), (NU_PINN, (0.1, 0.2))],
)
def test_burgers_satisfies_the_pde(nu, times):
    # Away from the shock (it forms at t = 1/pi for nu -> 0), central
    # differences with h = 1e-4 have truncation error ~ h^2 |u u_xxx| / 6, at
    # most ~1e-6 for the derivative scale (1 - pi t) / pi >= 0.12 of t <= 0.2,
    # i.e. ~1e-7 of max |u u_x| ~ 8: the bound 1e-5 leaves a factor 100.
    x = torch.linspace(-0.99, 0.99, 199, dtype=F64)
    t = torch.tensor(times, dtype=F64)
    residual, convection, u_xx = _burgers_residual(x, t, nu, 1e-4)
    scale = float(convection.abs().max())
    assert float(residual.abs().max()) <= 1e-5 * scale
    # The same check fails for the wrong viscosity: it can tell.
    wrong = residual - nu * u_xx  # residual of u_t + u u_x = 2 nu u_xx
    assert float(wrong.abs().max()) > 1e-3 * scale


def test_burgers_initial_and_boundary_conditions():
    x = torch.linspace(-1, 1, 101, dtype=F64)
    t = torch.linspace(0, 1, 21, dtype=F64)
    u = burgers_cole_hopf(x, t, NU_PINN)
    assert torch.allclose(u[0], -torch.sin(math.pi * x), rtol=0, atol=1e-15)
    assert float(u[:, 0].abs().max()) <= 1e-12
    assert float(u[:, -1].abs().max()) <= 1e-12
    assert bool(torch.isfinite(u).all())
    assert float(u.abs().max()) <= 1 + 1e-12  # maximum principle


def test_burgers_quadrature_matches_a_dense_trapezoid_rule():
    # The docstring's accuracy statement: 100 Gauss-Hermite nodes agree with
    # a 200001-point trapezoid rule on z in [-40, 40] (log-sum-exp form) at
    # t = 1, after the shock has formed.
    x = np.linspace(-1, 1, 65)
    z = np.linspace(-40, 40, 200001)
    y = x[:, None] - math.sqrt(4 * NU_PINN * 1.0) * z[None, :]
    g = -(z**2) - np.cos(np.pi * y) / (2 * np.pi * NU_PINN)
    e = np.exp(g - g.max(axis=1, keepdims=True))
    trapezoid = -(np.sin(np.pi * y) * e).sum(1) / e.sum(1)
    u = burgers_cole_hopf(torch.as_tensor(x), torch.tensor([1.0], dtype=F64), NU_PINN)
    assert np.abs(u[0].numpy() - trapezoid).max() <= 1e-14


def test_burgers_shock_slope_matches_basdevant():
    # Basdevant et al. (1986), Comput. Fluids 14: at nu = 0.01/pi the largest
    # |u_x(0, t)| is 152.00516, reached at t = 1.6037/pi.
    h = 1e-6
    x = torch.tensor([-h, h], dtype=F64)
    t = torch.linspace(1.59 / math.pi, 1.62 / math.pi, 61, dtype=F64)
    u = burgers_cole_hopf(x, t, NU_PINN)
    slope = ((u[:, 1] - u[:, 0]) / (2 * h)).abs()
    assert abs(float(slope.max()) - 152.00516) <= 1e-4
    assert abs(float(t[int(slope.argmax())]) * math.pi - 1.6037) <= 1e-3


def _heat_gap(nu: float) -> tuple[float, float]:
    """``max |u - u_heat|`` and ``max |u - u_heat - g1|`` (see below)."""
    a = 1 / (2 * math.pi * nu)
    x = torch.linspace(-1, 1, 81, dtype=F64)
    s = torch.tensor([0.0, 0.1, math.log(2) / 2, 1.0], dtype=F64)
    u = burgers_cole_hopf(x, s / (nu * math.pi**2), nu)
    heat = -torch.exp(-s)[:, None] * torch.sin(math.pi * x)[None, :]
    decay = torch.exp(-2 * s) * (torch.exp(-2 * s) - 1)
    g1 = (a / 2) * decay[:, None] * torch.sin(2 * math.pi * x)[None, :]
    return float((u - heat).abs().max()), float((u - heat - g1).abs().max())


def test_burgers_tends_to_the_heat_solution_for_large_nu():
    # With a = 1/(2 pi nu) and s = nu pi^2 t, the Bessel series of
    # exp(-a cos(pi y)) gives phi ~ I0(a) + 2 sum_k (-1)^k I_k(a) exp(-k^2 s)
    # cos(k pi x), and with I1 ~ a/2, I2 ~ a^2/8:
    #   u = u_heat + g1 + O(a^2),  u_heat = -exp(-s) sin(pi x),
    #   g1 = (a/2) exp(-2s) (exp(-2s) - 1) sin(2 pi x),  |g1| <= a/8
    # (the maximum at exp(-2s) = 1/2, one of the times sampled).
    for nu in (10.0, 100.0):
        a = 1 / (2 * math.pi * nu)
        gap, remainder = _heat_gap(nu)
        assert gap <= a / 8 + a**2
        assert gap >= a / 8 - a**2  # the O(a) gap is real and predicted
        assert remainder <= a**2
    # The remainder is second order: a ten times larger nu shrinks it ~100x.
    assert _heat_gap(10.0)[1] / _heat_gap(100.0)[1] >= 50


def test_burgers_keeps_dtype_and_does_not_touch_inputs():
    x = torch.linspace(-1, 1, 5, dtype=torch.float32)
    t = torch.tensor([0.0, 0.5])
    x0, t0 = x.clone(), t.clone()
    u = burgers_cole_hopf(x, t, NU_PINN)
    assert u.dtype == torch.float32 and u.shape == (2, 5)
    assert torch.equal(x, x0) and torch.equal(t, t0)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"nu": 0.0}, ValueError, "nu"),
        ({"nu": -0.1}, ValueError, "nu"),
        ({"nu": math.nan}, ValueError, "nu"),
        ({"nu": "0.1"}, TypeError, "nu"),
        ({"nu": 0.1, "u0": "step"}, ValueError, "u0"),
        ({"nu": 0.1, "n_nodes": 1}, ValueError, "n_nodes"),
        ({"nu": 0.1, "n_nodes": 400}, ValueError, "n_nodes"),
    ],
)
def test_burgers_bad_input(kwargs, error, match):
    x = torch.linspace(-1, 1, 5, dtype=F64)
    t = torch.tensor([0.5], dtype=F64)
    with pytest.raises(error, match=match):
        burgers_cole_hopf(x, t, **kwargs)


def test_burgers_bad_grids():
    x = torch.linspace(-1, 1, 5, dtype=F64)
    with pytest.raises(ValueError, match="1-D"):
        burgers_cole_hopf(x[None, :], torch.tensor([0.5], dtype=F64), 0.1)
    with pytest.raises(ValueError, match="t must be >= 0"):
        burgers_cole_hopf(x, torch.tensor([-0.5], dtype=F64), 0.1)


def _source(x, y):
    return 2 * np.pi**2 * np.sin(np.pi * x) * np.sin(np.pi * y)


def _exact(x, y):
    return np.sin(np.pi * x) * np.sin(np.pi * y)


@pytest.mark.parametrize(("element", "order"), [("P1", 2), ("P2", 3)])
def test_poisson_converges_at_the_fem_rate(element, order):
    # L2 error ~ h^(p+1) for P_p elements and a smooth solution. Measured on
    # n = 4, 8, 16, 32: P1 orders 1.90, 1.97, 1.99; P2 3.00, 3.00, 3.00.
    errors = [
        poisson_reference(n, _source, element=element).l2_error(_exact)
        for n in (4, 8, 16, 32)
    ]
    orders = np.log2(np.array(errors[:-1]) / np.array(errors[1:]))
    assert orders[-1] >= order - 0.1
    assert np.all(orders >= order - 0.2)


def test_poisson_boundary_and_nodal_values():
    ref = poisson_reference(16, _source, element="P2")
    assert isinstance(ref, PoissonReference)
    x, y = ref.points
    on_boundary = (np.isclose(x, 0) | np.isclose(x, 1)) | (
        np.isclose(y, 0) | np.isclose(y, 1)
    )
    assert np.all(ref.u[on_boundary] == 0.0)
    assert np.abs(ref.u - _exact(x, y)).max() <= 1e-3


@pytest.mark.parametrize(
    ("n", "f", "element", "error", "match"),
    [
        (0, _source, "P2", ValueError, "n must"),
        (2.0, _source, "P2", ValueError, "n must"),
        (4, 1.0, "P2", TypeError, "f must"),
        (4, _source, "P3", ValueError, "element"),
    ],
)
def test_poisson_bad_input(n, f, element, error, match):
    with pytest.raises(error, match=match):
        poisson_reference(n, f, element=element)
