"""Multi-block bilevel: oracles, exact hypergradient, estimators, methods, errors."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch

from itersolve import ConvergenceWarning, Status
from itersolve.bilevel import (
    BSVRB,
    RSVRB,
    BilevelProblem,
    StochasticHypergradient,
    exact_hypergradient,
    hypergradient_estimate,
    solve,
)
from itersolve.linear import CG
from itersolve.problems import hyperparameter_learning, quadratic_bilevel

F64 = torch.float64


@functools.cache
def _ho():
    return hyperparameter_learning("breast_cancer", m=4, seed=0)


@functools.cache
def _quad():
    return quadratic_bilevel(m=4, dim_x=3, dim_y=5, n=32, seed=0)


def _autograd_twin_ho(p):
    """The same HO problem from per-sample terms (autograd oracles)."""

    def lower(x, w, i, s):
        margin = p.labels[s] * (p.X[s] @ w)
        data = torch.sigmoid(x[s]) * torch.nn.functional.softplus(-margin)
        return data + 0.5 * p.lambdas[i] * (w @ w)

    def upper(x, w, i, s):
        return torch.nn.functional.softplus(-p.labels_val[s] * (p.X_val[s] @ w))

    return BilevelProblem(
        upper,
        lower,
        m=p.m,
        dim_x=p.dim_x,
        dim_y=p.dim_y,
        n_upper=p.n_upper,
        n_lower=p.n_lower,
        mu=p.mu,
        L=p.L,
    )


def _autograd_twin_quad(p):
    def lower(x, y, i, s):
        a = p.a[i, s]
        shift = p.B[i] @ x + p.c[i]
        return 0.5 * (a @ y) ** 2 + 0.5 * p.mu_value * (y @ y) - y @ shift

    def upper(x, y, i, s):
        value = 0.5 * ((y - p.t[i]) ** 2).sum() + 0.5 * p.rho * (x @ x)
        return value.expand(len(s))

    return BilevelProblem(
        upper,
        lower,
        m=p.m,
        dim_x=p.dim_x,
        dim_y=p.dim_y,
        n_upper=1,
        n_lower=p.n_lower,
        mu=p.mu,
        L=p.L,
    )


@pytest.mark.parametrize("name", ["ho", "quad"])
def test_closed_form_oracles_match_autograd(name):
    p = _ho() if name == "ho" else _quad()
    twin = _autograd_twin_ho(p) if name == "ho" else _autograd_twin_quad(p)
    gen = torch.Generator().manual_seed(0)
    blocks = torch.tensor([2, 0])
    x = torch.randn(p.dim_x, generator=gen, dtype=F64)
    y = torch.randn(2, p.dim_y, generator=gen, dtype=F64)
    v = torch.randn(2, p.dim_y, generator=gen, dtype=F64)
    lower = torch.rand(2, p.n_lower, generator=gen).argsort(1)[:, :7]
    upper = torch.zeros(2, 1, dtype=torch.long)
    if name == "ho":
        upper = torch.rand(2, p.n_upper, generator=gen).argsort(1)[:, :5]
    for samples in (lower, None):
        for fn in (
            "lower_value",
            "lower_grad",
            "lower_hessian",
            "lower_cross_jacobian",
        ):
            ours = getattr(p, fn)(blocks, x, y, samples)
            theirs = getattr(twin, fn)(blocks, x, y, samples)
            torch.testing.assert_close(ours, theirs, rtol=1e-10, atol=1e-12, msg=fn)
        for fn in ("lower_hvp", "lower_cross"):
            ours = getattr(p, fn)(blocks, x, y, v, samples)
            theirs = getattr(twin, fn)(blocks, x, y, v, samples)
            torch.testing.assert_close(ours, theirs, rtol=1e-10, atol=1e-12, msg=fn)
    for samples in (upper, None):
        for a, b in zip(
            p.upper_grads(blocks, x, y, samples),
            twin.upper_grads(blocks, x, y, samples),
            strict=True,
        ):
            torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(
            p.upper_value(blocks, x, y, samples),
            twin.upper_value(blocks, x, y, samples),
        )


def test_exact_hypergradient_matches_closed_form_and_finite_differences():
    q = _quad()
    x = torch.linspace(-1.0, 1.0, 3, dtype=F64)
    hg = exact_hypergradient(q, x)
    assert hg.success
    torch.testing.assert_close(hg.grad, q.hypergradient(x), rtol=0, atol=1e-10)
    assert hg.value == pytest.approx(q.hyperobjective(x), abs=1e-12)
    p = _ho()
    x = 0.3 * torch.randn(
        p.dim_x, generator=torch.Generator().manual_seed(1), dtype=F64
    )
    hg = exact_hypergradient(p, x)
    direction = torch.randn(
        p.dim_x, generator=torch.Generator().manual_seed(2), dtype=F64
    )
    h = 1e-4
    up = exact_hypergradient(p, x + h * direction, y0=hg.y).value
    down = exact_hypergradient(p, x - h * direction, y0=hg.y).value
    assert float(hg.grad @ direction) == pytest.approx((up - down) / (2 * h), rel=1e-6)


@pytest.mark.parametrize(
    "method",
    [
        BSVRB(version="v1", batch_size=None),
        BSVRB(version="v2", batch_size=None),
        RSVRB(batch_size=None),
        StochasticHypergradient(batch_size=None, linear_solver=CG(rtol=1e-12)),
    ],
    ids=["v1", "v2", "rsvrb", "stochastic-cg"],
)
@pytest.mark.parametrize("name", ["ho", "quad"])
def test_all_blocks_exact_inner_estimate_equals_exact_hypergradient(method, name):
    p = _ho() if name == "ho" else _quad()
    x = torch.full((p.dim_x,), 0.2, dtype=F64)
    exact = exact_hypergradient(p, x)
    G = hypergradient_estimate(p, x, method, y=exact.y)
    scale = float(exact.grad.norm())
    assert float((G - exact.grad).norm()) <= 1e-6 * scale


@pytest.mark.parametrize(
    "method",
    [
        BSVRB(blocks_per_iter=2, batch_size=8, eta=0.1, tau=0.3),
        BSVRB(
            version="v2", blocks_per_iter=2, batch_size=8, eta=0.1, tau=0.3, tau_v=0.3
        ),
        RSVRB(blocks_per_iter=2, batch_size=8, eta=0.1, tau=0.3),
        StochasticHypergradient(blocks_per_iter=2, batch_size=8, eta=0.1, tau=0.3),
    ],
    ids=["v1", "v2", "rsvrb", "stochastic-cg"],
)
def test_stochastic_methods_approach_the_minimiser(method):
    q = _quad()
    x0 = torch.zeros(3, dtype=F64)
    best = q.hyperobjective(q.solution())
    sol = solve(q, x0, method, epochs=20, seed=3)
    assert sol.success and sol.status is Status.SUCCESS
    assert q.hyperobjective(sol.x) - best <= 0.1 * (q.hyperobjective(x0) - best)


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_deterministic_bsvrb_converges_to_the_closed_form_minimiser(version):
    q = _quad()
    method = BSVRB(version=version, batch_size=None, eta=0.3, tau=0.3, tau_v=0.3)
    sol = solve(q, np.zeros(3), method, max_steps=600)
    assert isinstance(sol.x, np.ndarray)
    assert np.linalg.norm(sol.x - q.solution().numpy()) <= 1e-6


def test_v2_uses_no_hessians_and_delay_counts():
    q = _quad()
    seen = []

    def watch(info):
        seen.append(info.state.delay.clone())

    method = BSVRB(version="v2", blocks_per_iter=1, batch_size=4, tau=0.3, tau_v=0.3)
    sol = solve(q, torch.zeros(3, dtype=F64), method, max_steps=6, callback=watch)
    assert sol.stats["hessians"] == 0 and sol.stats["hvps"] > 0
    # Upper gradients: every block at the start, then the sampled block at the
    # new and the old iterate per step (each evaluated once).
    assert sol.stats["upper_grads"] == q.m + 2 * 6
    for delay in seen:  # one block just sampled, the others count up
        assert int((delay == 0).sum()) == 1
    assert int(seen[-1].sum()) >= 3
    v1 = solve(
        q,
        torch.zeros(3, dtype=F64),
        BSVRB(blocks_per_iter=1, batch_size=4),
        max_steps=2,
    )
    assert v1.stats["hessians"] > 0


def test_epochs_set_the_budget_and_max_steps_is_the_hard_limit():
    q = _quad()
    method = BSVRB(blocks_per_iter=2, batch_size=8, tau=0.3)
    assert method.steps_per_epoch(q) == 4 * 32 // 16
    sol = solve(q, torch.zeros(3, dtype=F64), method, epochs=2, record=True)
    assert sol.success and sol.num_steps == 16
    assert sol.trace["epoch"][-1] == pytest.approx(2.0)
    assert np.all(np.isfinite(sol.trace["upper_loss"]))
    assert np.all(np.isfinite(sol.trace["lower_loss"]))
    capped = BSVRB(blocks_per_iter=2, batch_size=8, tau=0.3, max_steps=3)
    with pytest.warns(ConvergenceWarning, match="MAX_STEPS"):
        short = solve(q, torch.zeros(3, dtype=F64), capped, epochs=2)
    assert short.status is Status.MAX_STEPS and short.num_steps == 3


def test_seeded_runs_are_reproducible_and_seeds_differ():
    p = _ho()
    x0 = torch.zeros(p.dim_x, dtype=F64)
    method = BSVRB(version="v2", blocks_per_iter=2, batch_size=8, eta=10.0)
    one = solve(p, x0, method, max_steps=5, seed=1)
    two = solve(p, x0, method, max_steps=5, seed=1)
    three = solve(p, x0, method, max_steps=5, seed=2)
    assert torch.equal(one.x, two.x) and not torch.equal(one.x, three.x)
    assert torch.equal(x0, torch.zeros_like(x0))


def _concave_lower():
    """Declares mu = 1 but g_i = -|y|^2 / 2 + y^T x: not convex at all."""
    return BilevelProblem(
        upper=lambda x, y, i, s: (0.5 * (y @ y)).expand(len(s)),
        lower=lambda x, y, i, s: (-0.5 * (y @ y) + y @ x).expand(len(s)),
        m=3,
        dim_x=2,
        dim_y=2,
        n_upper=1,
        n_lower=4,
        mu=1.0,
        L=2.0,
    )


@pytest.mark.parametrize(
    "method",
    [
        BSVRB(batch_size=2),
        BSVRB(version="v2", batch_size=2),
        RSVRB(batch_size=2),
        StochasticHypergradient(batch_size=2, inner_steps=1),
    ],
    ids=["v1", "v2", "rsvrb", "stochastic-cg"],
)
def test_lower_level_not_strongly_convex_is_reported(method):
    p = _concave_lower()
    y0 = torch.ones(3, 2, dtype=F64)
    with pytest.warns(ConvergenceWarning, match="NOT_POSITIVE_DEFINITE"):
        sol = solve(p, [0.5, 0.5], method, y0=y0, max_steps=5)
    assert sol.status is Status.NOT_POSITIVE_DEFINITE and not sol.success
    assert np.all(np.isfinite(sol.x))


def test_exact_hypergradient_reports_a_failed_lower_solve():
    with pytest.warns(ConvergenceWarning):
        hg = exact_hypergradient(_concave_lower(), torch.ones(2, dtype=F64))
    assert not hg.success and hg.status is not Status.SUCCESS
    assert bool(torch.isnan(hg.grad).all())


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: BSVRB(batch_size=0), r"batch_size must be a positive int, got 0"),
        (lambda: BSVRB(blocks_per_iter=0), r"blocks_per_iter must be a positive int"),
        (lambda: BSVRB(eta=-1.0), r"eta must be a finite number > 0, got -1\.0"),
        (lambda: BSVRB(tau=-0.5), r"tau must be a finite number > 0"),
        (lambda: BSVRB(tau_v=0.0), r"tau_v must be a finite number > 0"),
        (lambda: BSVRB(version="v3"), r"version must be 'v1' or 'v2'"),
        (lambda: BSVRB(alpha=1.5), r"alpha must be in \(0, 1\]"),
        (lambda: BSVRB(hessian_projection="trace"), r"hessian_projection must be one"),
        (lambda: BSVRB(upper_batch_size=0), r"upper_batch_size must be a positive int"),
        (lambda: RSVRB(beta=0.0), r"beta must be in \(0, 1\]"),
        (
            lambda: StochasticHypergradient(inner_steps=0),
            r"inner_steps must be a positive",
        ),
    ],
)
def test_bad_hyperparameters_raise(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_bad_run_arguments_raise():
    q = _quad()
    x0 = torch.zeros(3, dtype=F64)
    with pytest.raises(ValueError, match=r"blocks_per_iter must be <= the problem's 4"):
        solve(q, x0, BSVRB(blocks_per_iter=5))
    with pytest.raises(ValueError, match=r"batch_size must be <= the 32 lower-level"):
        solve(q, x0, BSVRB(batch_size=33))
    with pytest.raises(ValueError, match="not both"):
        solve(q, x0, BSVRB(), epochs=1, max_steps=1)
    with pytest.raises(ValueError, match="epochs must be a positive number"):
        solve(q, x0, BSVRB(), epochs=0)
    with pytest.raises(ValueError, match=r"y0 must have shape \(4, 5\)"):
        solve(q, x0, BSVRB(), y0=torch.zeros(4, dtype=F64))
    with pytest.raises(ValueError, match="x0 must have 3 entries"):
        solve(q, torch.zeros(2, dtype=F64), BSVRB())
    with pytest.raises(TypeError, match="problem must be a MultiBlockBilevelProblem"):
        solve(object(), x0, BSVRB())
    with pytest.raises(TypeError, match="method must be a bilevel method"):
        solve(q, x0, CG())
    with pytest.raises(TypeError, match="linear_solver must be a CG"):
        BSVRB(linear_solver="cholesky")
    with pytest.raises(ValueError, match="mu must be positive"):
        BilevelProblem(
            lambda *a: a[0],
            lambda *a: a[0],
            m=1,
            dim_x=1,
            dim_y=1,
            n_upper=1,
            n_lower=1,
            mu=0.0,
            L=1.0,
        )
    with pytest.raises(ValueError, match="m must be a positive int"):
        quadratic_bilevel(m=0)
    with pytest.raises(ValueError, match="dataset must be"):
        hyperparameter_learning("iris")


def test_nan_lower_start_gives_nonfinite_input():
    q = _quad()
    y0 = torch.zeros(4, 5, dtype=F64)
    y0[1, 2] = float("nan")
    with pytest.warns(ConvergenceWarning, match="NONFINITE_INPUT"):
        sol = solve(q, torch.zeros(3, dtype=F64), BSVRB(), y0=y0)
    assert sol.status is Status.NONFINITE_INPUT and sol.num_steps == 0


def test_float32_run_keeps_dtype():
    q = quadratic_bilevel(m=4, dim_x=3, dim_y=5, n=32, seed=0, dtype=torch.float32)
    method = BSVRB(blocks_per_iter=2, batch_size=8, eta=0.1, tau=0.3)
    sol = solve(q, torch.zeros(3, dtype=torch.float32), method, epochs=2)
    assert sol.success and sol.x.dtype == torch.float32
    hg = exact_hypergradient(q, sol.x)
    assert hg.success and hg.grad.dtype == torch.float32


def test_hessian_projections():
    from itersolve.bilevel._base import project_hessians

    gen = torch.Generator().manual_seed(4)
    Q, _ = torch.linalg.qr(torch.randn(2, 3, 3, generator=gen, dtype=F64))
    values = torch.tensor([[-1.0, 0.5, 9.0], [0.01, 0.02, 0.03]], dtype=F64)
    H = Q @ torch.diag_embed(values) @ Q.transpose(1, 2)
    mu, L = torch.tensor([0.1, 0.1], dtype=F64), torch.tensor([2.0, 2.0], dtype=F64)
    eig = torch.linalg.eigvalsh(project_hessians(H, mu, L, "eig", 10.0))
    expected = torch.tensor([[0.1, 0.5, 2.0], [0.1, 0.1, 0.1]], dtype=F64)
    torch.testing.assert_close(eig, expected)
    frob = project_hessians(H, mu, L, "frobenius", 1.0)
    torch.testing.assert_close(frob[0], H[0])  # norm above the bound: kept
    assert float(torch.linalg.matrix_norm(frob[1])) == pytest.approx(1.0)


def test_frobenius_projection_and_v_ball_run():
    q = _quad()
    x0 = torch.zeros(3, dtype=F64)
    frob = BSVRB(
        blocks_per_iter=2, batch_size=8, tau=0.3, hessian_projection="frobenius"
    )
    assert solve(q, x0, frob, epochs=1).success
    seen = []
    small = BSVRB(
        version="v2", blocks_per_iter=2, batch_size=8, tau=0.3, tau_v=0.3, v_bound=0.5
    )

    # The initial v is the exact CG solve; a block's v is projected when the
    # block is sampled (delay count 0 after the step).
    def keep(info):
        seen.append((info.state.v.clone(), info.state.delay.clone()))

    solve(q, x0, small, epochs=1, callback=keep)
    moved = [float(v[delay == 0].norm(dim=1).max()) for v, delay in seen]
    assert max(moved) <= 0.5 + 1e-12
    assert max(float(v.norm(dim=1).max()) for v, _ in seen[:1]) > 0.5
