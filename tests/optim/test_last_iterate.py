"""ProxSGD / stochastic mirror descent: prox operators and convergence vs references."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from itersolve.optim import ProxSGD, project_simplex, schedules, soft_threshold


def test_soft_threshold_is_the_l1_prox() -> None:
    x = torch.linspace(-3, 3, 13, dtype=torch.float64)
    got = soft_threshold(x, 1.0)
    grid = torch.linspace(-4, 4, 8001, dtype=torch.float64)
    # brute force argmin_u 0.5 (u - x)^2 + |u|
    objective = 0.5 * (grid[None, :] - x[:, None]) ** 2 + grid.abs()[None, :]
    torch.testing.assert_close(got, grid[objective.argmin(dim=1)], atol=1e-3, rtol=0)


def test_project_simplex_against_bisection_reference() -> None:
    gen = torch.Generator().manual_seed(0)
    x = 3 * torch.randn(50, 7, generator=gen, dtype=torch.float64)
    got = project_simplex(x)
    lo, hi = x.min(dim=1).values - 1, x.max(dim=1).values
    for _ in range(200):  # theta with sum(max(x - theta, 0)) = 1
        mid = (lo + hi) / 2
        too_big = torch.clamp(x - mid[:, None], min=0).sum(dim=1) < 1
        hi = torch.where(too_big, mid, hi)
        lo = torch.where(too_big, lo, mid)
    expected = torch.clamp(x - lo[:, None], min=0)
    torch.testing.assert_close(got, expected, atol=1e-10, rtol=0)
    torch.testing.assert_close(
        project_simplex(x.T, dim=0), expected.T, atol=1e-10, rtol=0
    )


def _lasso(n: int = 80, d: int = 20, seed: int = 0):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((n, d))
    x_true = np.where(rng.random(d) < 0.3, rng.standard_normal(d), 0.0)
    b = a @ x_true + 0.1 * rng.standard_normal(n)
    return a, b


def test_full_batch_prox_sgd_reaches_sklearn_lasso() -> None:
    from sklearn.linear_model import Lasso

    a, b = _lasso()
    n, alpha = a.shape[0], 0.05
    ref = Lasso(alpha=alpha, fit_intercept=False, tol=1e-12, max_iter=100000).fit(a, b)
    A, B = torch.from_numpy(a), torch.from_numpy(b)
    x = torch.nn.Parameter(torch.zeros(a.shape[1], dtype=torch.float64))
    lipschitz = float(np.linalg.eigvalsh(a.T @ a / n).max())
    opt = ProxSGD([x], lr=1 / lipschitz, l1=alpha)
    for _ in range(1500):
        with torch.no_grad():
            x.grad = A.T @ (A @ x - B) / n
        opt.step()
    np.testing.assert_allclose(x.detach().numpy(), ref.coef_, atol=1e-8)
    assert np.array_equal(x.detach().numpy() == 0, ref.coef_ == 0)


def test_box_constrained_lasso_matches_scipy_lbfgsb_without_l1() -> None:
    from scipy.optimize import minimize

    a, b = _lasso(seed=1)
    n = a.shape[0]
    res = minimize(
        lambda z: (0.5 * np.mean((a @ z - b) ** 2), a.T @ (a @ z - b) / n),
        np.zeros(a.shape[1]),
        jac=True,
        bounds=[(-0.2, 0.3)] * a.shape[1],
        method="L-BFGS-B",
        options={"ftol": 1e-15, "gtol": 1e-12, "maxiter": 10000},
    )
    A, B = torch.from_numpy(a), torch.from_numpy(b)
    x = torch.nn.Parameter(torch.zeros(a.shape[1], dtype=torch.float64))
    lipschitz = float(np.linalg.eigvalsh(a.T @ a / n).max())
    opt = ProxSGD([x], lr=1 / lipschitz, domain="box", lower=-0.2, upper=0.3)
    for _ in range(1500):
        with torch.no_grad():
            x.grad = A.T @ (A @ x - B) / n
        opt.step()
    np.testing.assert_allclose(x.detach().numpy(), res.x, atol=1e-6)


@pytest.mark.parametrize("mirror", ["euclidean", "entropy"])
def test_simplex_minimisation_both_mirror_maps(mirror: str) -> None:
    c = torch.tensor([0.3, 0.1, 0.5, 0.2], dtype=torch.float64)
    x = torch.nn.Parameter(torch.full((4,), 0.25, dtype=torch.float64))
    opt = ProxSGD([x], lr=0.5, domain="simplex", mirror=mirror)
    for _ in range(1000):
        x.grad = x.detach() - c
        opt.step()
        assert torch.all(x >= 0)
        assert float(x.detach().sum()) == pytest.approx(1.0, abs=1e-12)
    expected = project_simplex(c)  # the minimiser of ||x - c|| over the simplex
    torch.testing.assert_close(x.detach(), expected, atol=1e-4, rtol=0)


def test_running_average_and_last_iterate_both_reported() -> None:
    x = torch.nn.Parameter(torch.tensor([2.0], dtype=torch.float64))
    opt = ProxSGD([x], lr=0.1, average=True)
    seen = []
    for _ in range(10):
        opt.zero_grad()
        x.square().sum().backward()
        opt.step()
        seen.append(x.detach().clone())
    torch.testing.assert_close(opt.state[x]["average"], torch.stack(seen).mean(dim=0))


def test_strongly_convex_rule_with_lambda_lr_gives_unit_rate() -> None:
    """Noisy quadratic, eta_t = 1/(mu t): E||x_T||^2 ~ sigma^2 / (mu^2 T)."""
    gen = torch.Generator().manual_seed(0)
    errors = {}
    for horizon in (100, 1600):
        x = torch.nn.Parameter(torch.ones(2000, dtype=torch.float64))
        opt = ProxSGD([x], lr=1.0)
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, schedules.strongly_convex(1.0, 1.0)
        )
        for _ in range(horizon):
            x.grad = x.detach() + torch.randn(2000, generator=gen, dtype=torch.float64)
            opt.step()
            sched.step()
        errors[horizon] = float(x.detach().square().mean())
    slope = np.log(errors[1600] / errors[100]) / np.log(16)
    assert -1.15 < slope < -0.85


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"lr": -1.0}, "Invalid learning rate: -1.0"),
        ({"l1": -0.1}, "Invalid l1 value: -0.1"),
        ({"domain": "ball"}, "Invalid domain: 'ball'"),
        ({"mirror": "entropy"}, "mirror='entropy' needs domain='simplex'"),
        ({"domain": "box"}, "needs lower and/or upper"),
        ({"domain": "box", "lower": 1.0, "upper": 0.0}, "lower=1.0 > upper=0.0"),
        ({"lower": 0.0}, "only used with domain='box'"),
        ({"mirror": "kl"}, "Invalid mirror: 'kl'"),
    ],
)
def test_error_configs(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        ProxSGD([torch.nn.Parameter(torch.ones(2))], **kwargs)


def test_heavy_tailed_suite_case_runs_on_a_box_that_contains_x_star() -> None:
    """The heavy-tailed bound needs a compact X; the box must not move F*."""
    from sklearn.linear_model import Lasso

    from itersolve.bench.suites import optim_last_iterate as suite

    problem = suite._build(suite.HEAVY, 100)
    assert problem.box == suite.BOX_RADIUS
    ref = Lasso(alpha=suite.L1, fit_intercept=False, tol=1e-14, max_iter=200000)
    x_star = ref.fit(problem.a.numpy(), problem.b.numpy()).coef_
    assert np.abs(x_star).max() < problem.box  # interior: F* is the box optimum
    out = suite._ours(problem)
    last = torch.as_tensor(out.x)
    assert torch.all(last.abs() <= problem.box)
    gap = suite.evaluate(problem, last)
    assert out.status == "SUCCESS" and 0 < gap < float("inf")
    # The other regimes stay unconstrained.
    assert suite._build("convex-gaussian", 100).box is None
