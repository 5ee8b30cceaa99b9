"""The shared stochastic estimators against closed forms.

On a quadratic ``f(x) = x'Ax/2 + b'x`` the gradient is affine, so every tracker
must reproduce ``grad f(x_t)`` exactly when fed exact gradients: STORM with the
exact difference, MSVR with ``gamma = 1 - a``, IGT with the gradient at the
extrapolated point. With noisy samples, their expectations are checked against
the same closed forms (within 4 standard errors over many draws).
"""

from __future__ import annotations

import itertools

import pytest
import torch

from itersolve._core.estimators import (
    check_weight,
    igt_extrapolate,
    interpolation_point,
    moving_average,
    msvr_update,
    normalized_step,
    recursive_momentum,
)

DT = torch.float64


def _quadratic(n: int = 5, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    m = torch.randn(n, n, generator=g, dtype=DT)
    return m @ m.T + torch.eye(n, dtype=DT), torch.randn(n, generator=g, dtype=DT)


def _path(n: int, steps: int, seed: int = 1) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(n, generator=g, dtype=DT) for _ in range(steps)]


@pytest.mark.parametrize("a", [1.0, 0.5, 0.1])
def test_storm_with_exact_differences_tracks_the_gradient(a):
    A, b = _quadratic()
    xs = _path(5, 8)
    d = recursive_momentum(None, A @ xs[0] + b, None, a)
    for x_prev, x in itertools.pairwise(xs):
        grad = A @ x + b
        d = recursive_momentum(d, grad, A @ (x - x_prev), a)
        torch.testing.assert_close(d, grad)


def test_storm_is_unbiased_under_noise():
    # d_0 = g_0 + noise, then corrections with independent zero-mean noise:
    # E[d_t] = grad f(x_t).
    A, b = _quadratic(3)
    xs = _path(3, 4)
    g = torch.Generator().manual_seed(5)
    runs = 4000
    noise = torch.randn(len(xs) * 2, runs, 3, generator=g, dtype=DT)
    d = None
    for t, x in enumerate(xs):
        grad = (A @ x + b).expand(runs, 3) + noise[2 * t]
        corr = None if t == 0 else (A @ (x - xs[t - 1])).expand(runs, 3)
        if corr is not None:
            corr = corr + noise[2 * t + 1]
        d = recursive_momentum(d, grad, corr, 0.3)
    assert d is not None
    mean, se = d.mean(0), d.std(0) / runs**0.5
    assert ((mean - (A @ xs[-1] + b)).abs() <= 4 * se).all()


@pytest.mark.parametrize("a", [1.0, 0.4, 0.05])
def test_msvr_default_gamma_tracks_an_affine_inner_function(a):
    A, b = _quadratic()
    xs = _path(5, 8)
    u = msvr_update(None, A @ xs[0] + b, None, a)
    for x_prev, x in itertools.pairwise(xs):
        u = msvr_update(u, A @ x + b, A @ x_prev + b, a)
        torch.testing.assert_close(u, A @ x + b)


def test_msvr_closed_form_with_explicit_gamma():
    u, h1, h0 = torch.tensor([2.0]), torch.tensor([5.0]), torch.tensor([1.0])
    # 0.75 * 2 + 0.25 * 5 + 3 * (5 - 1) = 14.75
    assert msvr_update(u, h1, h0, 0.25, gamma=3.0).item() == pytest.approx(14.75)
    # gamma = 1 - a equals STORM on h with correction h1 - h0
    torch.testing.assert_close(
        msvr_update(u, h1, h0, 0.25), recursive_momentum(u, h1, h1 - h0, 0.25)
    )


@pytest.mark.parametrize("a", [1.0, 0.5, 0.02])
def test_igt_average_equals_gradient_at_current_point_on_a_quadratic(a):
    A, b = _quadratic()
    xs = _path(5, 8)
    d = moving_average(None, A @ igt_extrapolate(xs[0], None, a) + b, a)
    for x_prev, x in itertools.pairwise(xs):
        d = moving_average(d, A @ igt_extrapolate(x, x_prev, a) + b, a)
        torch.testing.assert_close(d, A @ x + b)


def test_plain_moving_average_lags_behind_on_a_quadratic():
    # The comparison the transport exists for: without extrapolation the
    # average is biased toward the old gradient.
    A, b = _quadratic()
    x0, x1 = _path(5, 2)
    d = moving_average(A @ x0 + b, A @ x1 + b, 0.1)
    assert not torch.allclose(d, A @ x1 + b)


def test_interpolation_point_gives_unbiased_gradient_difference():
    # f(x) = sum(x^4)/4: grad = x^3, H = diag(3 x^2); E_q[H(x_q)](x1 - x0)
    # = x1^3 - x0^3 exactly (fundamental theorem of calculus).
    x0 = torch.tensor([0.5, -1.0, 2.0], dtype=DT)
    x1 = torch.tensor([1.5, 0.2, 1.0], dtype=DT)
    g = torch.Generator().manual_seed(3)
    samples = []
    for _ in range(4000):
        point, q = interpolation_point(x1, x0, g)
        assert 0.0 <= q <= 1.0
        samples.append(3 * point**2 * (x1 - x0))
    s = torch.stack(samples)
    mean, se = s.mean(0), s.std(0) / len(samples) ** 0.5
    assert ((mean - (x1**3 - x0**3)).abs() <= 4 * se).all()


def test_interpolation_point_is_seeded_and_accepts_fixed_q():
    x0, x1 = torch.zeros(2, dtype=DT), torch.ones(2, dtype=DT)
    p1, q1 = interpolation_point(x1, x0, torch.Generator().manual_seed(7))
    p2, q2 = interpolation_point(x1, x0, torch.Generator().manual_seed(7))
    assert q1 == q2 and torch.equal(p1, p2)
    point, q = interpolation_point(x1, x0, q=1.0)
    assert q == 1.0 and torch.equal(point, x1)


def test_normalized_step_moves_exactly_step_and_guards_zero():
    x = torch.zeros(3, dtype=DT)
    d = torch.tensor([1.0, -2.0, 2.0], dtype=DT)
    moved = normalized_step(x, d, 0.3)
    assert torch.linalg.vector_norm(moved - x).item() == pytest.approx(0.3)
    assert torch.equal(normalized_step(x, torch.zeros(3, dtype=DT), 0.3), x)


def test_inputs_are_not_mutated():
    d, g, c = torch.ones(3), torch.full((3,), 2.0), torch.full((3,), 0.5)
    copies = [t.clone() for t in (d, g, c)]
    recursive_momentum(d, g, c, 0.5)
    msvr_update(d, g, c, 0.5)
    moving_average(d, g, 0.5)
    igt_extrapolate(d, g, 0.5)
    normalized_step(d, g, 1.0)
    for t, copy in zip((d, g, c), copies, strict=True):
        assert torch.equal(t, copy)
    assert recursive_momentum(None, g, None, 0.5) is not g


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: check_weight(0.0), r"a must be in \(0, 1\], got 0.0"),
        (lambda: check_weight(1.5, "eta"), r"eta must be in \(0, 1\], got 1.5"),
        (lambda: moving_average(torch.ones(2), torch.ones(3), 0.5), "shapes"),
        (
            lambda: recursive_momentum(torch.ones(2), torch.ones(2), None, 0.5),
            "correction is required",
        ),
        (
            lambda: msvr_update(torch.ones(1), torch.ones(1), torch.ones(1), 0.5, -1.0),
            "gamma must be",
        ),
        (
            lambda: interpolation_point(torch.ones(1), torch.ones(1), q=2.0),
            r"q must be in \[0, 1\]",
        ),
        (lambda: normalized_step(torch.ones(1), torch.ones(1), 1.0, 0.0), "eps"),
        (lambda: normalized_step(torch.ones(1), torch.ones(1), float("nan")), "step"),
    ],
)
def test_bad_input_raises_value_error(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_non_numeric_weight_raises_type_error():
    with pytest.raises(TypeError, match="a must be a real number"):
        check_weight("0.5")  # type: ignore[arg-type]
