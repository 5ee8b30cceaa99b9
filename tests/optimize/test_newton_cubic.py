"""CubicRegularizedNewton and its exact cubic subproblem."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.optimize as so
import torch

from itersolve import ConvergenceWarning, Status
from itersolve.optimize import (
    CubicRegularizedNewton,
    Newton,
    cubic_subproblem,
    minimize,
)
from itersolve.problems import Rosenbrock

F64 = torch.float64


def _saddle(z):
    """``x^2/2 + y^4/4 - y^2/2``: a strict saddle at 0, minimizers (0, +-1)."""
    return 0.5 * z[0] ** 2 + 0.25 * z[1] ** 4 - 0.5 * z[1] ** 2


def _model(g, H, M):
    return lambda v: g @ v + 0.5 * v @ H @ v + M / 6 * np.linalg.norm(v) ** 3


def _check_optimality(H, g, M, step) -> None:
    """Nesterov-Polyak's global optimality conditions, to 1e-10."""
    n = g.numel()
    r = float(step.h.norm())
    residual = (H + 0.5 * M * r * torch.eye(n, dtype=F64)) @ step.h + g
    assert float(residual.norm()) <= 1e-10 * max(1.0, float(g.norm()))
    assert abs(step.mu - 0.5 * M * r) <= 1e-10 * max(1.0, step.mu)
    assert float(torch.linalg.eigvalsh(H)[0]) + step.mu >= -1e-10


@pytest.mark.parametrize("seed", range(8))
def test_subproblem_is_the_global_minimizer(seed):
    rng = np.random.default_rng(seed)
    n = 2 + seed % 4
    A = rng.standard_normal((n, n))
    H = torch.tensor(A + A.T, dtype=F64) / 2
    g = torch.tensor(rng.standard_normal(n), dtype=F64)
    M = float(rng.uniform(0.2, 5.0))
    step = cubic_subproblem(H, g, M)
    _check_optimality(H, g, M, step)
    model = _model(g.numpy(), H.numpy(), M)
    ours = model(step.h.numpy())
    assert ours == pytest.approx(-step.model_decrease, abs=1e-12)
    starts = [rng.standard_normal(n) for _ in range(6)]
    best = min(
        (so.minimize(model, s, method="BFGS", options={"gtol": 1e-12}) for s in starts),
        key=lambda r: r.fun,
    )
    # The global minimum: no local search from any start does better.
    assert ours <= best.fun + 1e-12
    np.testing.assert_allclose(step.h.numpy(), best.x, atol=1e-6)


def test_subproblem_hard_case():
    # g has no component on the negative eigenvector: mu = -lambda_1 exactly.
    H = torch.diag(torch.tensor([2.0, -1.0, 3.0], dtype=F64))
    g = torch.tensor([1.0, 0.0, 1.0], dtype=F64)
    step = cubic_subproblem(H, g, 0.5)
    assert step.hard_case and step.mu == 1.0
    assert abs(float(step.h[1])) > 1.0
    _check_optimality(H, g, 0.5, step)
    model = _model(g.numpy(), H.numpy(), 0.5)
    best = min(
        (
            so.minimize(model, s, method="BFGS", options={"gtol": 1e-12})
            for s in np.eye(3) * 3
        ),
        key=lambda r: r.fun,
    )
    assert model(step.h.numpy()) <= best.fun + 1e-12


def test_subproblem_at_a_stationary_point():
    H = torch.diag(torch.tensor([1.0, 2.0], dtype=F64))
    step = cubic_subproblem(H, torch.zeros(2, dtype=F64), 1.0)
    assert float(step.h.abs().max()) == 0.0 and step.model_decrease == 0.0
    H = torch.diag(torch.tensor([1.0, -2.0], dtype=F64))
    step = cubic_subproblem(H, torch.zeros(2, dtype=F64), 1.0)
    # Pure negative curvature: ||h|| = 2 mu / M = 4 along e_2.
    assert step.hard_case and float(step.h[1].abs()) == pytest.approx(4.0)


def test_subproblem_rejects_bad_M():
    with pytest.raises(ValueError, match="M must be positive"):
        cubic_subproblem(torch.eye(2, dtype=F64), torch.ones(2, dtype=F64), 0.0)


def test_escapes_the_saddle_newton_converges_to():
    x0 = torch.tensor([1.0, 0.0], dtype=F64)
    newton = minimize(_saddle, x0, Newton(atol=1e-10))
    # Newton stays on the saddle's stable manifold y = 0 and reports success there.
    assert newton.success and float(newton.x.abs().max()) < 1e-6
    cubic = minimize(_saddle, x0, CubicRegularizedNewton(atol=1e-10))
    assert cubic.success and cubic.stats["hard_cases"] >= 1
    np.testing.assert_allclose(cubic.x.abs().numpy(), [0.0, 1.0], atol=1e-9)
    # Started exactly at the saddle (zero gradient): the second-order test does
    # not accept it, the step follows the negative curvature.
    at_saddle = minimize(_saddle, torch.zeros(2, dtype=F64), CubicRegularizedNewton())
    assert at_saddle.success and at_saddle.num_steps >= 1
    np.testing.assert_allclose(at_saddle.x.abs().numpy(), [0.0, 1.0], atol=1e-9)


@pytest.mark.parametrize("n", [2, 3, 4])
def test_rosenbrock(n):
    p = Rosenbrock(n)
    sol = minimize(p, p.x0(), CubicRegularizedNewton(atol=1e-10), record=True)
    assert sol.success and sol.num_steps < 100
    np.testing.assert_allclose(sol.x.numpy(), np.ones(n), atol=1e-8)
    f = np.asarray(sol.trace["objective"])
    assert np.all(np.diff(f) <= 1e-12)  # accepted steps never increase f
    assert sol.stats["factorizations"] >= sol.num_steps


def test_float32_twin():
    p = Rosenbrock(4)
    x0 = p.x0().to(torch.float32)
    sol = minimize(p, x0, CubicRegularizedNewton())
    assert sol.success and sol.x.dtype == torch.float32
    np.testing.assert_allclose(sol.x.numpy(), np.ones(4), atol=2e-3)
    saddle = minimize(_saddle, torch.tensor([1.0, 0.0]), CubicRegularizedNewton())
    assert saddle.success and abs(abs(float(saddle.x[1])) - 1.0) < 1e-3


def test_fixed_M_converges_with_M_above_the_hessian_lipschitz_constant():
    sol = minimize(
        _saddle,
        torch.tensor([1.0, 0.5], dtype=F64),
        CubicRegularizedNewton(adaptive=False, M0=10.0, atol=1e-10),
    )
    assert sol.success
    np.testing.assert_allclose(sol.x.numpy(), [0.0, 1.0], atol=1e-9)


def test_f_star_stops_early():
    p = Rosenbrock(4)
    tight = minimize(p, p.x0(), CubicRegularizedNewton(atol=1e-12))
    loose = minimize(
        p, p.x0(), CubicRegularizedNewton(atol=1e-12, f_star=0.0, atol_f=1e-4)
    )
    assert loose.success and loose.num_steps < tight.num_steps
    assert 0 <= float(p.value(loose.x)) <= 1e-4


def test_max_inner_exhausted_is_stagnation():
    # Along the step (to the left) f rises above any cubic model with tiny M,
    # and one trial leaves no room to double M.
    def steep(z):
        return (z**2).sum() + torch.exp(-10 * z).sum()

    x0 = torch.tensor([1.0], dtype=F64)
    with pytest.warns(ConvergenceWarning):
        sol = minimize(steep, x0, CubicRegularizedNewton(M0=1e-6, max_inner=1))
    assert sol.status is Status.STAGNATION
