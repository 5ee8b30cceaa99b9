"""Tests of the ensemble Kalman analysis step against the exact Kalman update."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from itersolve.pde import (
    EnKFResult,
    enkf_update,
    flatten_ensemble,
    load_ensemble,
    model_observer,
)

DT = torch.float64


def _linear_gaussian(d: int = 4, k: int = 3):
    """Fixed prior N(m0, P0), operator H, noise R = diag(std^2) and data y."""
    g = torch.Generator().manual_seed(1234)
    m0 = torch.randn(d, generator=g, dtype=DT)
    low = torch.randn(d, d, generator=g, dtype=DT) / math.sqrt(d)
    p0 = low @ low.mT + 0.5 * torch.eye(d, dtype=DT)
    h = torch.randn(k, d, generator=g, dtype=DT)
    std = torch.full((k,), 0.7, dtype=DT)
    y = h @ m0 + torch.randn(k, generator=g, dtype=DT) * 2.0
    return m0, p0, h, std, y


def _kalman(m0, p0, h, std, y):
    s = h @ p0 @ h.mT + torch.diag(std**2)
    gain = torch.linalg.solve(s, h @ p0).mT
    return m0 + gain @ (y - h @ m0), p0 - gain @ h @ p0, gain


def _prior_ensemble(m0, p0, n, seed):
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, m0.shape[0], generator=g, dtype=DT)
    return m0 + z @ torch.linalg.cholesky(p0).mT


def _errors(m0, p0, h, std, y, n, seed):
    mean, cov, _ = _kalman(m0, p0, h, std, y)
    res = enkf_update(
        _prior_ensemble(m0, p0, n, seed), y, lambda x: x @ h.mT, std, seed=seed + 7
    )
    cov_a = torch.cov(res.ensemble.mT)
    err_mean = float(torch.linalg.norm(res.mean - mean)) / math.sqrt(float(cov.trace()))
    err_cov = float(torch.linalg.norm(cov_a - cov) / torch.linalg.norm(cov))
    return err_mean, err_cov


def test_monte_carlo_rate_against_exact_kalman() -> None:
    # mean and covariance errors are sums of averages of E iid terms, so both
    # shrink like E^-1/2; the O(1/E) bias of the stochastic EnKF is smaller
    problem = _linear_gaussian()
    sizes = [50, 200, 800, 3200]
    seeds = range(10)
    mean_err, cov_err = [], []
    for n in sizes:
        errs = [_errors(*problem, n, 100 * s) for s in seeds]
        mean_err.append(np.mean([e[0] for e in errs]))
        cov_err.append(np.mean([e[1] for e in errs]))
    slope_mean = np.polyfit(np.log(sizes), np.log(mean_err), 1)[0]
    slope_cov = np.polyfit(np.log(sizes), np.log(cov_err), 1)[0]
    assert -0.7 <= slope_mean <= -0.3, (slope_mean, mean_err)
    assert -0.7 <= slope_cov <= -0.3, (slope_cov, cov_err)
    assert cov_err[-1] < 0.1 and mean_err[-1] < 0.1


def test_large_ensemble_mean_matches_kalman_mean() -> None:
    m0, p0, h, std, y = _linear_gaussian()
    mean, _, gain = _kalman(m0, p0, h, std, y)
    n = 50000
    res = enkf_update(_prior_ensemble(m0, p0, n, 5), y, lambda x: x @ h.mT, std, seed=6)
    # the analysis-mean error collects the prior-sample mean error (cov P0 / E),
    # the perturbation mean (K R K^T / E) and the gain's sampling error times the
    # innovation (norm about |K| |y - H m0| / sqrt(E)); 5 standard deviations of
    # their sum bound it with overwhelming probability
    var = (
        p0.trace()
        + (gain @ torch.diag(std**2) @ gain.mT).trace()
        + torch.linalg.matrix_norm(gain, 2) ** 2 * (y - h @ m0).square().sum()
    )
    tol = 5 * math.sqrt(float(var) / n)
    # the tolerance must be far below the update itself, or the test says nothing
    assert tol < 0.1 * float(torch.linalg.norm(mean - m0))
    assert float(torch.linalg.norm(res.mean - mean)) <= tol
    assert torch.allclose(res.gain, gain, atol=10 * tol)


def test_identity_observation_tiny_noise_moves_mean_to_data() -> None:
    x0 = _prior_ensemble(torch.zeros(3, dtype=DT), torch.eye(3, dtype=DT), 50, 0)
    y = torch.tensor([3.0, -1.0, 2.0], dtype=DT)
    res = enkf_update(x0, y, lambda x: x, 1e-6, seed=1)
    assert float((res.mean - y).abs().max()) < 1e-4
    assert float((x0.mean(0) - y).abs().max()) > 1.0
    assert res.spread_after < 1e-4 * res.spread_before


def test_inflation_scales_spread_without_information() -> None:
    x0 = _prior_ensemble(torch.zeros(3, dtype=DT), torch.eye(3, dtype=DT), 40, 3)
    y = torch.zeros(1, dtype=DT)
    base = enkf_update(x0, y, lambda x: x[:, :1], 1.0, seed=0)
    infl = enkf_update(x0, y, lambda x: x[:, :1], 1.0, seed=0, inflation=1.5)
    assert infl.spread_before == pytest.approx(1.5 * base.spread_before, rel=1e-12)
    # an uninformative observation (huge noise) leaves the inflated ensemble
    far = enkf_update(x0, y, lambda x: x[:, :1], 1e8, seed=0, inflation=1.5)
    expected = x0.mean(0) + 1.5 * (x0 - x0.mean(0))
    assert torch.allclose(far.ensemble, expected, atol=1e-6)


def test_zero_localization_taper_freezes_ensemble() -> None:
    x0 = _prior_ensemble(torch.zeros(3, dtype=DT), torch.eye(3, dtype=DT), 30, 4)
    y = torch.ones(2, dtype=DT)
    taper = torch.ones(3, 2, dtype=DT)
    taper[2] = 0.0  # parameter 2 must not respond to either sensor
    res = enkf_update(x0, y, lambda x: x[:, :2], 0.1, seed=0, localization=taper)
    assert torch.equal(res.ensemble[:, 2], x0[:, 2])
    assert not torch.allclose(res.ensemble[:, :2], x0[:, :2])
    assert torch.all(res.gain[2] == 0)


def test_noise_cov_equals_diagonal_noise_std() -> None:
    m0, p0, h, std, y = _linear_gaussian()
    x0 = _prior_ensemble(m0, p0, 100, 0)
    a = enkf_update(x0, y, lambda x: x @ h.mT, std, seed=3)
    b = enkf_update(x0, y, lambda x: x @ h.mT, noise_cov=torch.diag(std**2), seed=3)
    assert torch.allclose(a.ensemble, b.ensemble, atol=1e-12)


def test_seeded_reproducibility_and_no_mutation() -> None:
    m0, p0, h, std, y = _linear_gaussian()
    x0 = _prior_ensemble(m0, p0, 64, 0)
    copy = x0.clone()
    a = enkf_update(x0, y, lambda x: x @ h.mT, std, seed=11)
    b = enkf_update(x0, y, lambda x: x @ h.mT, std, seed=11)
    c = enkf_update(x0, y, lambda x: x @ h.mT, std, seed=12)
    assert isinstance(a, EnKFResult)
    assert torch.equal(a.ensemble, b.ensemble)
    assert not torch.allclose(a.ensemble, c.ensemble)
    assert torch.equal(x0, copy)


def test_torch_models_round_trip_and_vmap_observer() -> None:
    torch.manual_seed(0)
    models = [
        torch.nn.Sequential(
            torch.nn.Linear(1, 4), torch.nn.Tanh(), torch.nn.Linear(4, 1)
        )
        for _ in range(6)
    ]
    flat = flatten_ensemble(models)
    assert flat.shape == (6, 13)
    inputs = torch.linspace(-1, 1, 5).unsqueeze(1)
    observe = model_observer(models[0], inputs)
    looped = torch.stack([m(inputs).reshape(-1) for m in models]).detach()
    assert torch.allclose(observe(flat), looped, atol=1e-6)
    load_ensemble(models, flat + 1.0)
    assert torch.allclose(flatten_ensemble(models), flat + 1.0)
    with pytest.raises(ValueError, match="shape"):
        load_ensemble(models, flat[:3])
    with pytest.raises(ValueError, match="identical parameter counts"):
        flatten_ensemble([torch.nn.Linear(1, 1), torch.nn.Linear(2, 1)])
    with pytest.raises(TypeError, match="sequence"):
        flatten_ensemble(models[0])  # type: ignore[arg-type]


def _ok():
    x0 = torch.randn(5, 3, dtype=DT)
    return x0, torch.zeros(2, dtype=DT), (lambda x: x[:, :2])


@pytest.mark.parametrize(
    ("change", "exc", "match"),
    [
        ({"ensemble": torch.zeros(1, 3, dtype=DT)}, ValueError, "E must be >= 2"),
        ({"ensemble": torch.zeros(4, dtype=DT)}, ValueError, r"shape \(E, d\)"),
        ({"ensemble": torch.zeros(5, 3, dtype=torch.int64)}, TypeError, "ensemble"),
        ({"observations": torch.zeros(2, 1, dtype=DT)}, ValueError, "observations"),
        ({"observations": torch.zeros(3, dtype=DT)}, ValueError, "observe must"),
        ({"observe": lambda x: x}, ValueError, "observe must return"),
        ({"observe": lambda x: x[:, :2] * math.nan}, ValueError, "non-finite"),
        ({"noise_std": 0.0}, ValueError, "noise_std"),
        ({"noise_std": -1.0}, ValueError, "noise_std"),
        ({"noise_std": torch.ones(3)}, ValueError, "noise_std"),
        ({"noise_std": None}, ValueError, "exactly one"),
        ({"noise_cov": torch.eye(2, dtype=DT)}, ValueError, "exactly one"),
        ({"inflation": 0.9}, ValueError, "inflation"),
        ({"inflation": math.inf}, ValueError, "inflation"),
        ({"localization": torch.ones(2, 3)}, ValueError, "localization"),
    ],
)
def test_bad_input(change, exc, match) -> None:
    x0, y, obs = _ok()
    args = {"ensemble": x0, "observations": y, "observe": obs, "noise_std": 0.5}
    args.update(change)
    kw = {
        k: args.pop(k) for k in ("noise_cov", "inflation", "localization") if k in args
    }
    with pytest.raises(exc, match=match):
        enkf_update(
            args["ensemble"],
            args["observations"],
            args["observe"],
            args["noise_std"],
            seed=0,
            **kw,
        )


def test_bad_noise_cov() -> None:
    x0, y, obs = _ok()
    with pytest.raises(ValueError, match="positive definite"):
        enkf_update(x0, y, obs, noise_cov=-torch.eye(2, dtype=DT), seed=0)
    with pytest.raises(ValueError, match="symmetric"):
        enkf_update(
            x0, y, obs, noise_cov=torch.tensor([[1.0, 0.5], [0.0, 1.0]]), seed=0
        )
    with pytest.raises(ValueError, match="shape"):
        enkf_update(x0, y, obs, noise_cov=torch.eye(3, dtype=DT), seed=0)
