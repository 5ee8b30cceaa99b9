"""CoveringDirectSearch and DirectionalAttackSearch under Box constraints:
known minima, the box at every evaluation, bad input, reproducibility, and the
attack primitive against a hand-computed step."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from itersolve import ConvergenceWarning, Status
from itersolve.optimize import (
    Box,
    CoveringDirectSearch,
    DirectionalAttackSearch,
    directional_attack,
    minimize,
)
from itersolve.problems.surrogates import mlp_surrogate, nonsmooth_valley

F64 = torch.float64


def _methods(**kw):
    """Both methods; the hybrid attacks the objective itself (no surrogate)."""
    return [CoveringDirectSearch(**kw), DirectionalAttackSearch(**kw)]


def _ids(methods):
    return [type(m).__name__ for m in methods]


@pytest.mark.parametrize("method", _methods(), ids=_ids(_methods()))
def test_quadratic_in_a_box_interior_minimum(method):
    c = torch.tensor([0.3, -0.2, 0.5], dtype=F64)
    sol = minimize(
        lambda x: ((x - c) ** 2 * torch.tensor([1.0, 4.0, 9.0], dtype=F64)).sum(),
        torch.zeros(3, dtype=F64),
        method,
        constraints=Box(-1.0, 1.0),
    )
    assert sol.success and sol.stats["poll_size"] <= 1e-5
    assert torch.allclose(sol.x, c, atol=1e-3)


@pytest.mark.parametrize("method", _methods(), ids=_ids(_methods()))
def test_box_active_minimum(method):
    # unconstrained minimiser (2, -3, 0.5); the box clips the first two
    c = torch.tensor([2.0, -3.0, 0.5], dtype=F64)
    box = Box([-1.0, -1.0, -1.0], [1.0, 1.0, 1.0])
    sol = minimize(
        lambda x: ((x - c) ** 2).sum(),
        torch.zeros(3, dtype=F64),
        method,
        constraints=box,
    )
    assert sol.success
    assert torch.allclose(sol.x, torch.tensor([1.0, -1.0, 0.5], dtype=F64), atol=1e-3)
    assert box.contains(sol.x)


def test_nonsmooth_abs_reaches_kink_minimum():
    target = np.array([0.25, -0.4])
    sol = minimize(
        lambda x: float(np.abs(x - target).sum()),  # a NumPy black box
        np.array([1.0, 1.0]),
        CoveringDirectSearch(),
        constraints=Box(-2.0, 2.0),
    )
    assert sol.success and isinstance(sol.x, np.ndarray)
    np.testing.assert_allclose(sol.x, target, atol=1e-4)
    assert sol.stats["poll_size"] <= 1e-5


def test_nonsmooth_valley_covering_search_gets_near_the_minimiser():
    # On the sharp valley the descent cone at distance e from x* has half-angle
    # about e / w, so random polls stopped at poll size 1e-5 end a few 1e-2 away
    # at most (about w pi / K after K directions); a start 1.5 away must get
    # that close, with the stopping rule met.
    p = nonsmooth_valley(2)
    x0 = torch.tensor([-1.5, 1.0], dtype=F64)
    sol = minimize(p, x0, CoveringDirectSearch(), constraints=Box(p.lo, p.hi))
    assert sol.success and sol.stats["poll_size"] <= 1e-5
    assert p.x_star is not None
    assert float((sol.x - p.x_star).abs().max()) <= 0.05


@pytest.mark.parametrize("hybrid", [False, True])
def test_box_respected_at_every_evaluation(hybrid):
    seen = []
    lo = torch.tensor([0.0, -0.5, 0.1], dtype=F64)
    hi = torch.tensor([0.2, 0.5, 3.0], dtype=F64)

    def spy(x):
        seen.append(x.detach().clone())
        return ((x + 1.0) ** 2).sum() + torch.sin(3 * x).sum()

    method = DirectionalAttackSearch() if hybrid else CoveringDirectSearch()
    sol = minimize(
        spy,
        torch.tensor([0.1, 0.0, 1.0], dtype=F64),
        method,
        constraints=Box(lo, hi),
    )
    assert sol.success and len(seen) > 20
    for x in seen:
        assert bool(((x >= lo) & (x <= hi)).all()), x


def test_hybrid_counts_surrogate_passes_and_reaches_the_minimum():
    p = mlp_surrogate(4, hidden=8, train_steps=30)
    x0 = p.starts(1, seed=3)[0]
    box = Box(p.lo, p.hi)
    hybrid = minimize(
        p,
        x0,
        DirectionalAttackSearch(surrogate=p.network, outer=p.outer),
        constraints=box,
    )
    plain = minimize(p, x0, CoveringDirectSearch(), constraints=box)
    assert hybrid.success and plain.success
    s = hybrid.stats
    # FGSM: one forward and one backward pass per attack
    assert s["surrogate_forward"] == s["surrogate_backward"] == s["attacks"] > 0
    assert s["grads"] == 0  # the black box was never differentiated
    assert s["values"] >= s["attack_successes"]
    assert "surrogate_forward" not in plain.stats


def test_hybrid_with_pgd_attack():
    p = nonsmooth_valley(3)
    method = DirectionalAttackSearch(
        surrogate=p.network, outer=p.outer, attack="pgd", attack_steps=4
    )
    sol = minimize(p, torch.full((3,), 1.5, dtype=F64), method, constraints=Box(-2, 2))
    assert sol.success
    assert sol.stats["surrogate_forward"] == 4 * sol.stats["attacks"]


def test_attack_step_matches_the_signed_gradient():
    W = torch.tensor([[1.0, -2.0, 0.5], [0.0, 1.0, -1.0]], dtype=F64)
    phi = lambda x: W @ x  # noqa: E731
    outer = lambda y: (y**2).sum() / 2  # noqa: E731
    x = torch.tensor([1.0, 0.5, -1.0], dtype=F64)
    a = directional_attack(phi, outer, x, 0.1, method="fgsm")
    # grad of <v, W (x + r d)> in d is r W^T v with v = W x
    expected = -torch.sign(W.T @ (W @ x))
    assert torch.equal(a.d, expected) and (a.forward, a.backward) == (1, 1)
    # the box clips the step: x + r d stays within [lo, hi]
    lo = torch.tensor([0.95, -1.0, -1.0], dtype=F64)
    clipped = directional_attack(phi, outer, x, 0.1, method="fgsm", lo=lo)
    assert bool((x + 0.1 * clipped.d >= lo - 1e-15).all())
    with pytest.raises(ValueError, match="method must be one of"):
        directional_attack(phi, outer, x, 0.1, method="cw")


# -- bad input ---------------------------------------------------------------


def test_empty_box_raises():
    with pytest.raises(ValueError, match=r"lo must be <= hi, got lo\[1\] = 2\.0"):
        Box([0.0, 2.0], [1.0, 1.0])
    with pytest.raises(ValueError, match="lo must not contain NaN"):
        Box([float("nan")], [1.0])
    with pytest.raises(ValueError, match="lo and hi must have the same shape"):
        Box([0.0, 0.0], [1.0, 1.0, 1.0])


def test_x0_outside_the_box_raises():
    with pytest.raises(ValueError, match=r"x0 must lie in the box: x0\[1\] = 3\.0 >"):
        minimize(
            lambda x: (x**2).sum(),
            torch.tensor([0.0, 3.0], dtype=F64),
            CoveringDirectSearch(),
            constraints=Box(-1.0, 1.0),
        )


def test_box_shape_mismatch_raises():
    with pytest.raises(ValueError, match=r"Box has shape \(3,\) but x0 has shape"):
        minimize(
            lambda x: (x**2).sum(),
            torch.zeros(2, dtype=F64),
            CoveringDirectSearch(),
            constraints=Box([-1.0] * 3, [1.0] * 3),
        )


def test_constraints_not_a_box_raise():
    with pytest.raises(TypeError, match="constraints must be a Box"):
        minimize(
            lambda x: (x**2).sum(),
            torch.zeros(2, dtype=F64),
            CoveringDirectSearch(),
            constraints=[(-1, 1), (-1, 1)],
        )


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"min_poll_size": 0.0}, r"min_poll_size must be positive"),
        ({"initial_poll_size": -1.0}, r"initial_poll_size must be a positive"),
        ({"covering_candidates": 0}, r"covering_candidates must be a positive int"),
        ({"initial_poll_size": 1.0, "max_poll_size": 0.5}, r"max_poll_size must be >="),
        ({"seed": -1}, r"seed must be a non-negative int"),
    ],
)
def test_bad_hyperparameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        CoveringDirectSearch(**kwargs)


def test_bad_attack_hyperparameters():
    with pytest.raises(ValueError, match="attack must be one of"):
        DirectionalAttackSearch(attack="cw")
    with pytest.raises(ValueError, match="shrink must be a finite number > 1"):
        DirectionalAttackSearch(shrink=1.0)
    with pytest.raises(ValueError, match="surrogate must be callable"):
        DirectionalAttackSearch(surrogate=3)


# -- honest outcomes and reproducibility ----------------------------------------


def test_nonfinite_start_value_is_reported():
    with pytest.warns(ConvergenceWarning, match="NONFINITE"):
        sol = minimize(
            lambda x: float("inf") if x[0] == 0 else float((x**2).sum()),
            np.zeros(2),
            CoveringDirectSearch(),
        )
    assert sol.status is Status.NONFINITE


def test_unconstrained_run_without_box():
    sol = minimize(
        lambda x: ((x - 3.0) ** 2).sum(),
        torch.zeros(2, dtype=F64),
        CoveringDirectSearch(),
    )
    assert sol.success and torch.allclose(
        sol.x, torch.full((2,), 3.0, dtype=F64), atol=1e-3
    )


@pytest.mark.parametrize("cls", [CoveringDirectSearch, DirectionalAttackSearch])
def test_seeded_runs_reproducible(cls):
    p = nonsmooth_valley(4)
    x0 = p.starts(1, seed=0)[0]

    def run(seed):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            return minimize(p, x0, cls(seed=seed, max_steps=40), constraints=Box(-2, 2))

    one, two, other = run(1), run(1), run(2)
    assert torch.equal(one.x, two.x) and one.stats == {
        **two.stats,
        "time": one.stats["time"],
    }
    assert not torch.equal(one.x, other.x)


def test_speculative_line_search_does_not_crawl_along_the_valley():
    # Repeating a tiny accepted step crawled here for thousands of steps; the
    # line search doubles it after each success.
    p = nonsmooth_valley(2)
    x0 = p.starts(5, seed=1)[2]
    method = DirectionalAttackSearch(surrogate=p.network, outer=p.outer, max_steps=500)
    sol = minimize(p, x0, method, constraints=Box(p.lo, p.hi))
    assert sol.success and sol.num_steps < 200
    assert sol.stats["speculative_successes"] < 50
