"""PINN training loop, the Lagrangian PINN and the convection references."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from itersolve import ConvergenceWarning, Status
from itersolve.pde import (
    PINN,
    AdamThenLBFGS,
    ConvectionDiffusionProblem,
    ConvectionProblem,
    LagrangianPINN,
    convection_diffusion_fft,
    convection_exact,
    relative_l2,
    train_pinn,
)

F64 = torch.float64


class ExactPINN(PINN):
    """The Eulerian network replaced by ``exp(-nu t) sin(x - c t)``."""

    def __init__(self, c: float, nu: float) -> None:
        super().__init__(width=2, depth=1)
        self.c, self.nu = c, nu

    def field(self, x, t, length):
        return torch.exp(-self.nu * t) * torch.sin(x - self.c * t)


class ExactLagrangian(LagrangianPINN):
    """Characteristics ``X = xi + c t`` carrying ``exp(-nu t) sin(xi)``."""

    def __init__(self, c: float, nu: float) -> None:
        super().__init__(width=2, depth_u=1, depth_x=1)
        self.c, self.nu = c, nu

    def characteristics(self, problem, xi, t):
        return xi + self.c * t, torch.exp(-self.nu * t) * torch.sin(xi)


def _grid(problem):
    return problem.collocation(seed=3, dtype=F64)


@pytest.mark.parametrize(("c", "nu"), [(30.0, 0.0), (50.0, 0.01), (5.0, 0.3)])
@pytest.mark.parametrize("model_cls", [ExactPINN, ExactLagrangian])
def test_exact_solutions_have_zero_residuals(model_cls, c, nu):
    problem = ConvectionDiffusionProblem(c, nu, n_x=16, n_t=7)
    residuals = model_cls(c, nu).residuals(problem, *_grid(problem))
    for name, r in residuals.items():
        assert r.dtype == F64
        assert float(r.detach().abs().max()) <= 1e-12 * max(1.0, c), name


def test_lagrangian_second_derivative_uses_the_chain_rule():
    # t-independent map X = xi + a sin(xi) carrying U = sin(X): at c = 0 the
    # Eulerian u_xx = -sin(X), so R_u = -nu u_xx = nu sin(X) (times X_xi^3 in
    # the loss); the raw xi-derivative U_xixi would differ.
    a, nu = 0.3, 0.1

    class Curved(LagrangianPINN):
        def characteristics(self, problem, xi, t):
            X = xi + a * torch.sin(xi) + 0 * t
            return X, torch.sin(X)

    problem = ConvectionDiffusionProblem(0.0, nu, n_x=12, n_t=3)
    xi, t = _grid(problem)
    ru = Curved(width=2, depth_u=1, depth_x=1).residuals(problem, xi, t)["ru"]
    _, xx = torch.meshgrid(t, xi, indexing="ij")
    x_xi = 1 + a * torch.cos(xx)  # the loss takes X_xi^3 R_u
    expected = (x_xi**3 * nu * torch.sin(xx + a * torch.sin(xx))).reshape(-1)
    torch.testing.assert_close(ru, expected, rtol=0, atol=1e-13)


def test_lagrangian_scatter_recovers_the_eulerian_field():
    # The exact characteristics scattered back by periodic interpolation:
    # only the linear-interpolation error h^2/8 ~ 1e-4 remains.
    problem = ConvectionProblem(50.0)
    model = ExactLagrangian(50.0, 0.0).double()
    assert relative_l2(model, problem) < 1e-3
    assert ExactLagrangian(50.0, 0.0).min_spacing(problem, *_grid(problem)) > 0


def test_fft_reference_equals_closed_form_at_zero_viscosity():
    for c in (1.0, 30.0, 50.0):
        fft = ConvectionDiffusionProblem(c, 0.0).reference()
        exact = ConvectionProblem(c).reference()
        torch.testing.assert_close(fft, exact, rtol=0, atol=1e-12)


def test_fft_reference_decays_each_mode():
    x = torch.arange(64, dtype=F64) * (2 * math.pi / 64)
    t = torch.linspace(0, 1, 5, dtype=F64)
    u0 = torch.sin(x) + 0.5 * torch.cos(3 * x)
    got = convection_diffusion_fft(u0, 7.0, 0.05, t)
    s = x[None, :] - 7.0 * t[:, None]
    want = torch.exp(-0.05 * t[:, None]) * torch.sin(s) + 0.5 * torch.exp(
        -0.45 * t[:, None]
    ) * torch.cos(3 * s)
    torch.testing.assert_close(got, want, rtol=0, atol=1e-12)
    torch.testing.assert_close(
        convection_exact(torch.sin, 7.0, x, t), torch.sin(s), rtol=0, atol=1e-12
    )


def _tiny(model_cls=LagrangianPINN, seed=0):
    torch.manual_seed(seed)
    if model_cls is LagrangianPINN:
        return LagrangianPINN(width=8, depth_u=2, depth_x=1)
    return PINN(width=8, depth=2)


@pytest.mark.parametrize("model_cls", [LagrangianPINN, PINN])
def test_seeded_training_is_reproducible_and_lowers_the_loss(model_cls):
    problem = ConvectionDiffusionProblem(5.0, 0.01, n_x=16, n_t=5, eval_x=32, eval_t=8)
    method = AdamThenLBFGS(adam_steps=20, lbfgs_steps=3, lr=1e-2)
    model = _tiny(model_cls)
    before = [p.detach().clone() for p in model.parameters()]
    one = train_pinn(model, problem, method, seed=1, dtype=F64, record=True)
    two = train_pinn(model, problem, method, seed=1, dtype=F64, record=True)
    assert one.status is Status.SUCCESS and one.num_steps == 23
    assert one.x.dtype == F64
    torch.testing.assert_close(one.x, two.x, rtol=0, atol=0)
    loss = one.trace["loss"]
    assert loss[-1] < 0.9 * loss[0]
    assert one.trace["phase"][0] == 0 and one.trace["phase"][-1] == 1
    assert all(s > 0 for s in one.trace["step_time"])
    assert np.isfinite(one.trace["relative_l2"]).all()
    if model_cls is LagrangianPINN:
        assert np.isfinite(one.trace["min_spacing"]).all()
    assert one.extras["relative_l2"] == pytest.approx(one.trace["relative_l2"][-1])
    for p, q in zip(model.parameters(), before, strict=True):
        assert p.dtype == torch.float32 and torch.equal(p, q)  # input untouched
    other = train_pinn(model, problem, method, seed=2, dtype=F64)
    assert not torch.equal(other.x, one.x)  # the seed moves the collocation


def test_lagrangian_pinn_solves_fast_convection_where_the_eulerian_fails():
    """The paper's point on a small case: at c = 30, 300 Adam steps, the
    Lagrangian PINN's relative L2 error against the exact u0(x - ct) is at
    most 0.15 (measured 0.055-0.064 over seeds 0-3) while the Eulerian PINN
    stays at the trivial solution (measured 1.0)."""
    problem = ConvectionProblem(30.0, n_x=32, n_t=10, eval_x=64, eval_t=16)
    method = AdamThenLBFGS(adam_steps=300, lr=1e-2)
    torch.manual_seed(0)
    lagrangian = LagrangianPINN(width=16, depth_u=2, depth_x=1)
    torch.manual_seed(0)
    eulerian = PINN(width=16, depth=2)
    ours = train_pinn(lagrangian, problem, method, seed=0, dtype=F64)
    plain = train_pinn(eulerian, problem, method, seed=0, dtype=F64)
    assert ours.extras["relative_l2"] <= 0.15
    assert plain.extras["relative_l2"] >= 0.5


def test_numpy_collocation_gives_numpy_parameters():
    x = np.linspace(0, 2 * np.pi, 10, endpoint=False)
    t = np.linspace(0.1, 1.0, 3)
    sol = train_pinn(
        _tiny(PINN),
        ConvectionProblem(2.0),
        AdamThenLBFGS(adam_steps=3),
        collocation=(x, t),
    )
    assert isinstance(sol.x, np.ndarray) and sol.x.dtype == np.float64
    assert sol.extras["model"].net[0].weight.dtype == F64


@pytest.mark.parametrize(
    ("collocation", "match"),
    [
        ((np.zeros((4, 2)), np.ones(3)), r"collocation x must be a non-empty 1-D"),
        ((np.zeros(4), np.ones((3, 1))), r"collocation t must be a non-empty 1-D"),
        ((np.zeros(4), np.ones(0)), r"collocation t .* got shape \(0,\)"),
        ((np.zeros(4),), r"collocation must be a pair"),
    ],
)
def test_wrong_collocation_shapes_raise(collocation, match):
    with pytest.raises(ValueError, match=match):
        train_pinn(_tiny(), ConvectionProblem(1.0), collocation=collocation)


def test_bad_arguments_raise_naming_them():
    with pytest.raises(ValueError, match=r"nu must be >= 0, got -0\.1"):
        ConvectionDiffusionProblem(1.0, -0.1)
    with pytest.raises(ValueError, match=r"nu must be >= 0"):
        convection_diffusion_fft(torch.zeros(4), 1.0, -1.0, torch.zeros(1))
    with pytest.raises(ValueError, match=r"c must be finite, got nan"):
        ConvectionProblem(float("nan"))
    with pytest.raises(ValueError, match=r"n_x must be an int >= 2, got 1"):
        ConvectionProblem(1.0, n_x=1)
    with pytest.raises(ValueError, match=r"lr must be finite and > 0, got -1"):
        AdamThenLBFGS(lr=-1)
    with pytest.raises(ValueError, match=r"adam_steps and lbfgs_steps cannot"):
        AdamThenLBFGS(adam_steps=0)
    with pytest.raises(ValueError, match=r"weights has unknown keys \['pde'\]"):
        LagrangianPINN(weights={"pde": 1.0})
    with pytest.raises(ValueError, match=r"width must be an int >= 1, got 0"):
        PINN(width=0)
    with pytest.raises(TypeError, match=r"model must be a PINNModel"):
        train_pinn(torch.nn.Linear(3, 1), ConvectionProblem(1.0))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"seed must be an int"):
        train_pinn(_tiny(), ConvectionProblem(1.0), seed=1.5)  # type: ignore[arg-type]


def _poisoned_after(calls: int):
    """``sin`` that returns NaN from its ``calls + 1``-th call on."""
    count = [0]

    def u0(x):
        count[0] += 1
        return torch.sin(x) * (math.nan if count[0] > calls else 1.0)

    return u0


def test_nan_residual_stops_with_nonfinite_keeping_the_last_finite_parameters():
    problem = ConvectionProblem(5.0, n_x=8, n_t=3, u0=_poisoned_after(4))
    method = AdamThenLBFGS(adam_steps=20, lr=1e-2)
    with pytest.warns(ConvergenceWarning, match="NONFINITE"):
        sol = train_pinn(_tiny(), problem, method, dtype=F64)
    # the fifth step met the NaN (and counts) but did not update
    assert sol.status is Status.NONFINITE and sol.num_steps == 5
    clean = ConvectionProblem(5.0, n_x=8, n_t=3)
    four = train_pinn(_tiny(), clean, AdamThenLBFGS(adam_steps=4, lr=1e-2), dtype=F64)
    torch.testing.assert_close(sol.x, four.x, rtol=0, atol=0)


def test_nan_during_lbfgs_line_search_is_undone():
    problem = ConvectionProblem(5.0, n_x=8, n_t=3, u0=_poisoned_after(5))
    method = AdamThenLBFGS(adam_steps=0, lbfgs_steps=10)
    with pytest.warns(ConvergenceWarning, match="NONFINITE"):
        sol = train_pinn(_tiny(), problem, method, dtype=F64)
    assert sol.status is Status.NONFINITE
    assert torch.isfinite(sol.x).all()
    model = sol.extras["model"]
    x, t = problem.eval_grid()
    assert torch.isfinite(model.predict(problem, x, t)).all()


def test_nan_collocation_is_nonfinite_input():
    x = np.linspace(0, 6, 5)
    x[2] = np.nan
    with pytest.warns(ConvergenceWarning, match="NONFINITE_INPUT"):
        sol = train_pinn(_tiny(), ConvectionProblem(1.0), collocation=(x, np.ones(2)))
    assert sol.status is Status.NONFINITE_INPUT and sol.num_steps == 0


def test_soft_initial_condition_form_has_the_ic_x_term():
    problem = ConvectionProblem(50.0, n_x=8, n_t=3)
    torch.manual_seed(0)
    soft = LagrangianPINN(width=4, depth_u=1, depth_x=1, hard_ic=False).double()
    terms = soft.losses(problem, *_grid(problem))
    assert set(terms) == {"rx", "ru", "ic_x", "ic_u", "loss"}
    assert float(terms["ic_x"].detach()) > 0
    hard = LagrangianPINN(width=4, depth_u=1, depth_x=1).double()
    xi = torch.ones(3, dtype=F64)
    X0, _ = hard.characteristics(problem, xi, torch.zeros(3, dtype=F64))
    torch.testing.assert_close(X0.detach(), xi, rtol=0, atol=0)


def test_throw_raises_on_nonfinite():
    from itersolve import ConvergenceError

    problem = ConvectionProblem(5.0, n_x=8, n_t=3, u0=_poisoned_after(0))
    with pytest.raises(ConvergenceError, match="NONFINITE"):
        train_pinn(_tiny(), problem, AdamThenLBFGS(adam_steps=3), throw=True)
