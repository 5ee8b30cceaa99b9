"""ot.transport with Sinkhorn and SinkhornNewtonSparse: a case catalogue crossed
with a method registry (DESIGN.md section 6), checked against POT."""

from __future__ import annotations

import math
import re
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
import scipy.special
import torch

from itersolve import ConvergenceError, ConvergenceWarning, Status, ot
from itersolve.problems.transport import (
    gaussian_mixtures,
    mnist_like,
    point_clouds,
    random_assignment,
)

pot = pytest.importorskip("ot")


@dataclass(frozen=True)
class Case:
    name: str
    a: np.ndarray
    b: np.ndarray
    cost: np.ndarray
    reg: float


def _case(name: str, inst: Any, reg: float) -> Case:
    return Case(name, inst.a, inst.b, inst.cost, reg)


CASES = [
    _case("assignment-40", random_assignment(40, seed=3), 0.02),
    _case("clouds-30x20", point_clouds(30, 20, seed=1), 0.05),
    _case("gmm1d-40-W2", gaussian_mixtures(40, dim=1, power=2), 0.01),
    _case("gmm1d-40-W1", gaussian_mixtures(40, dim=1, power=1), 0.02),
]

METHODS = {
    "sinkhorn": lambda **kw: ot.Sinkhorn(**{"tol": 1e-11, **kw}),
    "sns": lambda **kw: ot.SinkhornNewtonSparse(**{"tol": 1e-11, **kw}),
}

ERROR_CONFIGS = [
    (ot.Sinkhorn, {"tol": 0.0}, "tol must be > 0, got 0.0"),
    (ot.Sinkhorn, {"patience": 0}, "patience must be a positive int, got 0"),
    (ot.Sinkhorn, {"max_steps": 0}, "max_steps must be a positive int, got 0"),
    (ot.SinkhornNewtonSparse, {"keep_per_row": 0}, "keep_per_row must be > 0"),
    (ot.SinkhornNewtonSparse, {"n_sinkhorn": -1}, "n_sinkhorn must be a non-neg"),
    (ot.SinkhornNewtonSparse, {"armijo": 0.7}, r"armijo must be in \(0, 0.5\)"),
    (ot.SinkhornNewtonSparse, {"max_halvings": -1}, "max_halvings must be a non"),
    (ot.SinkhornNewtonSparse, {"fallback": "newton"}, "fallback must be 'sinkhorn'"),
]


def _pot_plan(case: Case) -> np.ndarray:
    return pot.sinkhorn(
        case.a,
        case.b,
        case.cost,
        case.reg,
        method="sinkhorn_log",
        stopThr=1e-14,
        numItermax=100_000,
        warn=False,
    )


def _marginal_error(P: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(P.sum(1) - a).sum() + np.abs(P.sum(0) - b).sum())


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
@pytest.mark.parametrize("method", sorted(METHODS))
def test_converges_and_matches_pot(case: Case, method: str) -> None:
    sol = ot.transport(case.a, case.b, case.cost, METHODS[method](), reg=case.reg)
    assert sol.success, sol
    P = sol.x
    # POT's own test pattern (test_bregman.py), tightened to our tolerance.
    np.testing.assert_allclose(P.sum(1), case.a, atol=1e-11)
    np.testing.assert_allclose(P.sum(0), case.b, atol=1e-11)
    assert sol.extras["marginal_error"] <= 1e-11
    assert sol.extras["marginal_error"] == pytest.approx(
        _marginal_error(P, case.a, case.b), abs=1e-15
    )
    assert np.abs(P - _pot_plan(case)).sum() <= 1e-8
    assert sol.extras["transport_cost"] == pytest.approx(
        float((case.cost * P).sum()), rel=1e-12
    )
    f, g = sol.extras["potentials"]
    np.testing.assert_allclose(
        P, np.exp((f[:, None] + g[None, :] - case.cost) / case.reg), rtol=1e-12
    )


@pytest.mark.parametrize("method", sorted(METHODS))
def test_potentials_match_pot_log_scalings(method: str) -> None:
    case = CASES[1]
    sol = ot.transport(case.a, case.b, case.cost, METHODS[method](), reg=case.reg)
    _, log = pot.sinkhorn(
        case.a, case.b, case.cost, case.reg, method="sinkhorn_log",
        stopThr=1e-14, numItermax=100_000, log=True,
    )  # fmt: skip
    f, g = sol.extras["potentials"]
    # Potentials are unique up to (f + t, g - t).
    shift = np.mean(f / case.reg - log["log_u"])
    np.testing.assert_allclose(f / case.reg - shift, log["log_u"], atol=1e-7)
    np.testing.assert_allclose(g / case.reg + shift, log["log_v"], atol=1e-7)


@pytest.mark.parametrize("klass, kwargs, message", ERROR_CONFIGS)
def test_bad_hyperparameters_raise(klass: Any, kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        klass(**kwargs)


def test_linear_solver_must_be_a_solver() -> None:
    with pytest.raises(TypeError, match="linear_solver must be a linear solver"):
        ot.SinkhornNewtonSparse(linear_solver="cg")


def test_bad_inputs_raise() -> None:
    a = np.full(3, 1 / 3)
    C = np.zeros((3, 3))
    mass = r"equal total mass, got sum\(a\) = 1\.0 and sum\(b\) = 2\.0"
    with pytest.raises(ValueError, match=mass):
        ot.transport(a, 2 * a, C, reg=0.1)
    with pytest.raises(ValueError, match=r"a must be non-negative, got min -0\.5"):
        ot.transport([1.0, -0.5, 0.5], a, C, reg=0.1)
    with pytest.raises(ValueError, match=r"cost of shape \(3, 4\) needs a of length"):
        ot.transport(a, a, np.zeros((3, 4)), reg=0.1)
    with pytest.raises(ValueError, match=r"cost must have shape \(n, m\)"):
        ot.transport(a, a, np.zeros(3), reg=0.1)
    with pytest.raises(ValueError, match="reg must be a positive finite number"):
        ot.transport(a, a, C, reg=0.0)
    with pytest.raises(TypeError, match="reg must be a positive number"):
        ot.transport(a, a, C, reg="0.1")
    with pytest.raises(ValueError, match=r"x0 must be potentials of shapes"):
        ot.transport(a, a, C, reg=0.1, x0=(np.zeros(2), np.zeros(3)))
    with pytest.raises(ValueError, match=r"cost must not be empty"):
        ot.transport(np.zeros(0), a, np.zeros((0, 3)), reg=0.1)
    with pytest.raises(TypeError, match="method must be a method such as Sinkhorn"):
        ot.transport(a, a, C, object(), reg=0.1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="one problem at a time; got a batch of 2"):
        ot.transport(np.ones((2, 3)) / 3, np.ones((2, 3)) / 3, C,
                     ot.SinkhornNewtonSparse(), reg=0.1)  # fmt: skip


def _tiny_reg_case() -> tuple[Any, float]:
    # reg = 1e-4 * max(C): exp(-C / reg) underflows for almost every entry.
    case = random_assignment(30, seed=7)
    return case, 1e-4 * float(case.cost.max())


def test_sinkhorn_at_tiny_reg_takes_pots_iterates() -> None:
    """60 sweeps are far from converged at this reg (so MAX_STEPS), but each is
    exact: the plan is POT's log-domain iterate, not an overflowed one."""
    case, reg = _tiny_reg_case()
    with pytest.warns(ConvergenceWarning, match="MAX_STEPS"):
        sol = ot.transport(case.a, case.b, case.cost,
                           ot.Sinkhorn(tol=1e-10, max_steps=60), reg=reg)  # fmt: skip
    assert sol.status is Status.MAX_STEPS and sol.num_steps == 60
    assert np.isfinite(sol.extras["potentials"][0]).all()
    # POT's 60 sweeps update v then u; ours starts with a v half-step, so
    # ours after 60 sweeps is POT's after 60 plus that v half-step.
    with np.errstate(over="ignore"):
        _, log = pot.sinkhorn(case.a, case.b, case.cost, reg,
                              method="sinkhorn_log", stopThr=0.0,
                              numItermax=60, log=True, warn=False)  # fmt: skip
    logits = -case.cost / reg + log["log_u"][:, None]
    log_v = np.log(case.b) - scipy.special.logsumexp(logits, axis=0)
    ref = np.exp(logits + log_v[None, :])
    assert np.abs(sol.x - ref).sum() <= 1e-12
    # ... and reports that iterate's (large) marginal error, in float64
    assert sol.extras["marginal_error"] == pytest.approx(
        _marginal_error(ref, case.a, case.b), rel=1e-10
    )
    assert sol.extras["marginal_error"] > 0.1


def test_sns_at_tiny_reg_converges_to_pots_plan() -> None:
    case, reg = _tiny_reg_case()
    sol = ot.transport(case.a, case.b, case.cost,
                       ot.SinkhornNewtonSparse(tol=1e-10), reg=reg)  # fmt: skip
    assert sol.status is Status.SUCCESS
    assert sol.extras["marginal_error"] <= 1e-10
    # POT's epsilon-scaling Sinkhorn converges here (its plain log-domain
    # Sinkhorn does not within 2e5 iterations); we ask for the plan to within
    # 10x our marginal tolerance. Its inner stabilized loops warn at the larger
    # regs of the schedule; the final plan's marginals are checked instead.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Sinkhorn did not converge")
        ref = pot.sinkhorn(case.a, case.b, case.cost, reg,
                           method="sinkhorn_epsilon_scaling", stopThr=1e-14,
                           numItermax=100_000, warn=False)  # fmt: skip
    assert _marginal_error(ref, case.a, case.b) <= 1e-13
    assert np.abs(sol.x - ref).sum() <= 1e-9
    # the entropic cost is within reg * log(n m) of the exact transport cost
    gap = sol.extras["transport_cost"] - pot.emd2(case.a, case.b, case.cost)
    assert -1e-12 <= gap <= reg * math.log(case.a.size * case.b.size)


@pytest.mark.parametrize("method", sorted(METHODS))
def test_float32_says_it_cannot_reach_1e_10(method: str) -> None:
    case = CASES[0]
    a, b, C = (x.astype(np.float32) for x in (case.a, case.b, case.cost))
    config = METHODS[method](tol=1e-10)
    with pytest.warns(ConvergenceWarning, match="STAGNATION"):
        sol = ot.transport(a, b, C, config, reg=case.reg)
    assert sol.status is Status.STAGNATION
    # The driver's frozen-iterate check, not a flat error curve, ends it; its
    # check gaps double while x moves, so a run frozen at step f ends by ~4 f + 32.
    assert "stopped changing" in sol.message
    assert sol.num_steps <= 1000
    assert sol.x.dtype == np.float32
    assert np.isfinite(sol.x).all()
    assert 1e-10 < sol.extras["marginal_error"] < 1e-4
    # Where it stagnates, the plan is POT's float64 plan to float32 accuracy:
    # potentials of size C / reg ~ 50 carry a relative error of ~50 eps32 =
    # 3e-6 into every entry of the plan (total mass 1).
    ref = _pot_plan(case)
    assert np.abs(sol.x.astype(np.float64) - ref).sum() <= 1e-5
    # A float32-sized tolerance is reached, the plan within 10x that tolerance.
    loose = ot.transport(a, b, C, METHODS[method](tol=1e-5), reg=case.reg)
    assert loose.success and loose.x.dtype == np.float32
    assert loose.extras["marginal_error"] <= 1e-5
    assert np.abs(loose.x.astype(np.float64) - ref).sum() <= 1e-4


@pytest.mark.parametrize("method", sorted(METHODS))
def test_max_steps_one_gives_one_row_trace(method: str) -> None:
    case = CASES[0]
    with pytest.warns(ConvergenceWarning, match="MAX_STEPS"):
        sol = ot.transport(case.a, case.b, case.cost, METHODS[method](max_steps=1),
                           reg=case.reg, record=True)  # fmt: skip
    assert sol.status is Status.MAX_STEPS and sol.num_steps == 1
    assert sol.trace is not None and len(sol.trace) == 1
    assert "marginal_error" in sol.trace
    with pytest.raises(ConvergenceError):
        ot.transport(case.a, case.b, case.cost, METHODS[method](max_steps=1),
                     reg=case.reg, throw=True)  # fmt: skip


@pytest.mark.parametrize("method", sorted(METHODS))
def test_nan_input(method: str) -> None:
    case = CASES[0]
    C = case.cost.copy()
    C[1, 2] = np.nan
    with pytest.warns(ConvergenceWarning, match="NONFINITE_INPUT"):
        sol = ot.transport(case.a, case.b, C, METHODS[method](), reg=case.reg)
    assert sol.status is Status.NONFINITE_INPUT and sol.num_steps == 0
    assert sol.x.shape == C.shape


@pytest.mark.parametrize("method", sorted(METHODS))
def test_inputs_unmutated_torch_round_trip_and_reproducible(method: str) -> None:
    case = CASES[1]
    a, b, C = (torch.from_numpy(x.copy()) for x in (case.a, case.b, case.cost))
    copies = [t.clone() for t in (a, b, C)]
    sol = ot.transport(a, b, C, METHODS[method](), reg=case.reg)
    again = ot.transport(a, b, C, METHODS[method](), reg=case.reg)
    for t, c in zip((a, b, C), copies, strict=True):
        assert torch.equal(t, c)
    assert isinstance(sol.x, torch.Tensor) and sol.x.dtype == torch.float64
    assert isinstance(sol.extras["potentials"][0], torch.Tensor)
    assert torch.equal(sol.x, again.x)


def test_warm_start_from_potentials() -> None:
    case = CASES[0]
    first = ot.transport(case.a, case.b, case.cost, METHODS["sinkhorn"](),
                         reg=case.reg)  # fmt: skip
    warm = ot.transport(case.a, case.b, case.cost, METHODS["sinkhorn"](),
                        reg=case.reg, x0=first.extras["potentials"])  # fmt: skip
    assert warm.success and warm.num_steps <= 1
    np.testing.assert_allclose(warm.x, first.x, atol=1e-12)


def test_batched_sinkhorn_matches_single_solves() -> None:
    insts = [point_clouds(12, 9, seed=s) for s in range(3)]
    A = np.stack([p.a for p in insts])
    B = np.stack([p.b for p in insts])
    C = np.stack([p.cost for p in insts])
    sol = ot.transport(A, B, C, reg=0.05)  # default for a batch: Sinkhorn
    assert sol.success and sol.x.shape == (3, 12, 9)
    assert sol.extras["marginal_error"].shape == (3,)
    for k, p in enumerate(insts):
        single = ot.transport(p.a, p.b, p.cost, ot.Sinkhorn(), reg=0.05)
        np.testing.assert_allclose(sol.x[k], single.x, atol=1e-9)
    shared = ot.transport(A, B, C[0], ot.Sinkhorn(), reg=0.05)
    np.testing.assert_allclose(shared.x[0], sol.x[0], atol=1e-9)


def test_entropic_cost_approaches_emd2() -> None:
    inst = gaussian_mixtures(40, dim=1, power=2, seed=2)
    exact = pot.emd2(inst.a, inst.b, inst.cost)
    gaps = []
    for reg in (0.02, 0.005, 0.001):
        sol = ot.transport(inst.a, inst.b, inst.cost, reg=reg)
        assert sol.success
        gap = sol.extras["transport_cost"] - exact
        # <C, P_reg> - emd2 <= reg * (H(P_reg) - H(P*)) <= reg * log(n m)
        assert -1e-12 <= gap <= reg * math.log(inst.a.size * inst.b.size)
        gaps.append(gap)
    assert gaps[0] > gaps[1] > gaps[2]


def test_zero_weights() -> None:
    inst = point_clouds(10, 8, seed=4)
    a = inst.a.copy()
    a[[2, 5]] = 0.0
    a /= a.sum()
    sol = ot.transport(a, inst.b, inst.cost, ot.Sinkhorn(tol=1e-12), reg=0.05)
    assert sol.success
    assert (sol.x[[2, 5]] == 0).all()
    np.testing.assert_allclose(sol.x.sum(1), a, atol=1e-12)
    f, _ = sol.extras["potentials"]
    assert np.isneginf(f[[2, 5]]).all() and np.isfinite(np.delete(f, [2, 5])).all()
    keep = a > 0
    ref = pot.sinkhorn(a[keep], inst.b, inst.cost[keep], 0.05, method="sinkhorn_log",
                       stopThr=1e-14, numItermax=100_000)  # fmt: skip
    assert np.abs(sol.x[keep] - ref).sum() <= 1e-9


def test_sns_reaches_machine_precision_on_assignment() -> None:
    # eta / n = 2.4 as in the paper's n = 500, eta = 1200 setting; at larger
    # eta / n the plan is a near-permutation whose Hessian has ~n near-null
    # directions and CG needs far more iterations.
    inst = random_assignment(150, seed=0)
    reg = 1 / 360
    sol = ot.transport(inst.a, inst.b, inst.cost,
                       ot.SinkhornNewtonSparse(tol=1e-10), reg=reg,
                       record=True)  # fmt: skip
    assert sol.success and sol.extras["marginal_error"] <= 1e-10
    assert sol.num_steps <= 60
    stats = sol.stats
    assert sol.num_steps == stats["sinkhorn_steps"] + stats["newton_steps"]
    assert stats["sinkhorn_steps"] == 20 and stats["newton_steps"] >= 1
    trace = sol.trace
    assert trace is not None
    newton = trace["stage"] == 1.0
    assert newton.sum() == stats["newton_steps"]
    assert (trace["cg_steps"][newton] >= 1).all()
    assert np.all(trace["step_size"][newton] > 0)
    assert (trace["density"][newton] <= 16 / 150).all()
    # Plain Sinkhorn is far from 1e-10 after the same number of sweeps.
    with pytest.warns(ConvergenceWarning):
        slow = ot.transport(inst.a, inst.b, inst.cost,
                            ot.Sinkhorn(max_steps=sol.num_steps), reg=reg)  # fmt: skip
    assert slow.extras["marginal_error"] > 1e3 * sol.extras["marginal_error"]


def test_sns_on_mnist_like_l2() -> None:
    inst = mnist_like(0, 1, metric="l2", size=8)
    sol = ot.transport(inst.a, inst.b, inst.cost, reg=1e-3)
    assert sol.success and sol.extras["marginal_error"] <= 1e-10


def test_auto_keep_grows_where_four_per_row_is_linear() -> None:
    # MNIST-like L2, 16x16, reg 1e-3: with 4 kept entries per row Newton
    # converges linearly (52 steps); "auto" grows to 16 (12 steps).
    inst = mnist_like(0, 1, metric="l2", size=16)
    auto = ot.transport(inst.a, inst.b, inst.cost, ot.SinkhornNewtonSparse(),
                        reg=1e-3, record=True)  # fmt: skip
    fixed = ot.transport(inst.a, inst.b, inst.cost,
                         ot.SinkhornNewtonSparse(keep_per_row=4), reg=1e-3)  # fmt: skip
    assert auto.success and fixed.success
    assert fixed.stats["keep_per_row"] == 4.0
    assert auto.stats["keep_per_row"] > 4.0
    assert 3 * auto.stats["newton_steps"] < fixed.stats["newton_steps"]
    trace = auto.trace
    assert trace is not None
    newton = trace["stage"] == 1.0
    dropped = trace["dropped"][newton]
    assert np.isfinite(dropped).all() and (dropped >= 0).all()
    # The last steps keep all but a sliver of the plan's mass.
    assert dropped[-1] <= 1e-4


def test_sns_on_a_near_permutation_plan_at_small_n() -> None:
    # n = 100 at reg 1/1200 (eta / n = 12): the plan is a near-permutation
    # and the Hessian has many near-null directions. With CG capped at n + m
    # steps every direction was truncated and the error oscillated near 1e-6
    # until MAX_STEPS; the 10 (n + m) cap and the stall rule converge it.
    inst = random_assignment(100, seed=0)
    method = ot.SinkhornNewtonSparse(max_steps=300)
    sol = ot.transport(inst.a, inst.b, inst.cost, method, reg=1 / 1200)
    assert sol.success and sol.extras["marginal_error"] <= 1e-10
    assert sol.stats["newton_steps"] <= 60


@pytest.mark.parametrize(
    "keep, error", [("dense", ValueError), (True, TypeError), (-1.0, ValueError)]
)
def test_bad_keep_per_row_raises(keep: Any, error: type) -> None:
    with pytest.raises(error, match="keep_per_row must be"):
        ot.SinkhornNewtonSparse(keep_per_row=keep)


def test_tiny_epsilon_bins_keep_the_fused_sweep() -> None:
    # Empty bins filled with 1e-16 (as POT's examples do) put most plan
    # entries far below the underflow threshold; the exponent floor keeps
    # every sweep on the fused sum-exp path (the logsumexp fallback and exp's
    # slow subnormal path would make each sweep several times slower).
    from sklearn.datasets import load_digits

    images = load_digits().images.reshape(-1, 64)
    a, b = (im + 1e-16 * (im == 0) for im in (images[0], images[1]))
    a, b = a / a.sum(), b / b.sum()
    row, col = np.divmod(np.arange(64), 8)
    cost = np.abs(row[:, None] - row) + np.abs(col[:, None] - col)
    with pytest.warns(ConvergenceWarning):
        sol = ot.transport(a, b, cost / cost.max(),
                           ot.Sinkhorn(max_steps=300), reg=1e-3)  # fmt: skip
    assert sol.stats["logsumexp_fallbacks"] == 0
    assert np.isfinite(sol.x).all()


def test_callback_stops_and_sees_log_scalings() -> None:
    case = CASES[0]
    seen = []

    def callback(info: Any) -> bool:
        seen.append(info.x.shape)
        return info.step >= 3

    sol = ot.transport(case.a, case.b, case.cost, ot.Sinkhorn(), reg=case.reg,
                       callback=callback)  # fmt: skip
    assert sol.status is Status.STOPPED_BY_CALLBACK and sol.num_steps == 3
    assert seen[0] == (case.a.size + case.b.size,)


def test_lyapunov_potential_gradient_and_sinkhorn_ascent() -> None:
    inst = point_clouds(7, 5, seed=0)
    a, b, C = (torch.from_numpy(x) for x in (inst.a, inst.b, inst.cost))
    reg = 0.1
    f = torch.randn(7, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    g = torch.zeros(5, dtype=torch.float64, requires_grad=True)
    f.requires_grad_(True)
    value = ot.lyapunov_potential(a, b, C, reg, f, g)
    value.backward()
    P = torch.exp((f[:, None] + g[None, :] - C) / reg).detach()
    assert f.grad is not None and g.grad is not None
    torch.testing.assert_close(f.grad, a - P.sum(1))
    torch.testing.assert_close(g.grad, b - P.sum(0))
    values = []
    for steps in (1, 2, 4, 8):
        with pytest.warns(ConvergenceWarning):
            sol = ot.transport(a, b, C, ot.Sinkhorn(max_steps=steps), reg=reg)
        fs, gs = sol.extras["potentials"]
        values.append(float(ot.lyapunov_potential(a, b, C, reg, fs, gs)))
    assert values == sorted(values)


def test_sparsify_plan_keeps_the_largest_entries() -> None:
    P = torch.rand(6, 5, generator=torch.Generator().manual_seed(1))
    S = ot.sparsify_plan(P, 7).to_dense()
    assert int((S != 0).sum()) == 7
    threshold = torch.sort(P.reshape(-1), descending=True).values[6]
    assert torch.equal(S, torch.where(P >= threshold, P, torch.zeros(())))
    with pytest.raises(ValueError, match=re.escape("keep must be in [1, 30], got 0")):
        ot.sparsify_plan(P, 0)


DEFAULT_METHODS = {"sinkhorn": ot.Sinkhorn, "sns": ot.SinkhornNewtonSparse}


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
@pytest.mark.parametrize("method", sorted(DEFAULT_METHODS))
def test_float32_twin_succeeds_with_defaults(case: Case, method: str) -> None:
    """The float32 twin of the reference test: default settings end SUCCESS
    without a warning (the default tol is lifted to 100 eps32), at a plan
    within float32 accuracy of POT's float64 plan."""
    a, b, C = (x.astype(np.float32) for x in (case.a, case.b, case.cost))
    sol = ot.transport(a, b, C, DEFAULT_METHODS[method](), reg=case.reg)
    assert sol.success, sol
    assert sol.x.dtype == np.float32
    assert sol.extras["marginal_error"] <= 100 * np.finfo(np.float32).eps
    assert np.abs(sol.x.astype(np.float64) - _pot_plan(case)).sum() <= 1e-4


def _digits_l1() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Issue 14's plateau case: 8x8 load_digits images 0 and 1 as histograms
    restricted to their supports, L1 pixel-grid cost normalised to max 1."""
    from sklearn.datasets import load_digits

    images = load_digits().images.reshape(-1, 64)
    a, b = images[0] / images[0].sum(), images[1] / images[1].sum()
    row, col = np.divmod(np.arange(64), 8)
    cost = np.abs(row[:, None] - row) + np.abs(col[:, None] - col)
    cost = cost / cost.max()
    on_a, on_b = a > 0, b > 0
    return a[on_a], b[on_b], cost[np.ix_(on_a, on_b)]


@pytest.fixture(scope="module")
def digits_l1() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    a, b, cost = _digits_l1()
    ref = pot.sinkhorn(
        a,
        b,
        cost,
        1e-3,
        method="sinkhorn_log",
        stopThr=1e-10,
        numItermax=100_000,
        warn=False,
    )
    return a, b, cost, ref


def test_sinkhorn_leaves_the_l1_digits_plateau(digits_l1: tuple) -> None:
    # The marginal error sits at 1.27e-2 from sweep ~2 000 to ~4 000 while the
    # scalings still move; the old flat-error-curve rule called that STAGNATION.
    a, b, cost, ref = digits_l1
    sol = ot.transport(a, b, cost, ot.Sinkhorn(max_steps=100_000), reg=1e-3, record=100)
    assert sol.status is Status.SUCCESS
    assert sol.extras["marginal_error"] <= 1e-9
    assert sol.num_steps > 5_000
    # It did cross a plateau: 1 000 sweeps (10 trace rows) with the error flat
    # to 1 % far above the tolerance.
    error = sol.trace["marginal_error"]
    windows = np.lib.stride_tricks.sliding_window_view(error, 11)
    flat = (windows.max(1) < 1.01 * windows.min(1)) & (windows.min(1) > 1e-3)
    assert flat.any()
    assert _marginal_error(ref, a, b) <= 1e-9
    assert np.abs(sol.x - ref).sum() <= 1e-7


def test_sns_recovers_from_newton_stalls_on_the_l1_digits_plateau(
    digits_l1: tuple,
) -> None:
    # Sparse Newton steps stall on the plateau (line search down to alpha ~
    # 1e-10); the doubling Sinkhorn fallback carries the run across it.
    a, b, cost, ref = digits_l1
    sol = ot.transport(a, b, cost, ot.SinkhornNewtonSparse(tol=1e-9), reg=1e-3)
    assert sol.status is Status.SUCCESS
    assert sol.extras["marginal_error"] <= 1e-9
    assert sol.stats["fallbacks"] >= 1 and sol.stats["newton_steps"] >= 1
    stats = sol.stats
    assert sol.num_steps == stats["sinkhorn_steps"] + stats["newton_steps"]
    assert np.abs(sol.x - ref).sum() <= 1e-7


def test_patience_is_deprecated_and_ignored() -> None:
    case = CASES[0]
    with pytest.warns(DeprecationWarning, match="patience is deprecated"):
        method = ot.SinkhornNewtonSparse(tol=1e-11, patience=1)
    with pytest.warns(DeprecationWarning, match="patience is deprecated"):
        ot.Sinkhorn(patience=5)
    sol = ot.transport(case.a, case.b, case.cost, method, reg=case.reg)
    assert sol.success
