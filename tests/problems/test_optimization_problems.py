"""Closed-form oracles of the optimization problems vs autograd, finite differences
and scipy/sklearn; constructors' error messages; loaders; float32 twins."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.optimize as so
import torch

from itersolve.problems import (
    LeastSquares,
    LessardCounterexample,
    Logistic,
    LogSumExp,
    Quadratic,
    Rosenbrock,
    Softmax,
    breast_cancer_data,
    digits_data,
    lessard_counterexample,
    quadratic_logspaced,
    synthetic_classification,
)

F64 = torch.float64


def _data(n=40, d=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g, dtype=F64)


def _problems():
    X = _data()
    g = torch.Generator().manual_seed(1)
    return {
        "quadratic": quadratic_logspaced(6, 10.0),
        "least_squares": LeastSquares(
            X, torch.randn(40, generator=g, dtype=F64), l2=0.1
        ),
        "logistic": Logistic(X, (X[:, 0] > 0).long(), l2=0.1),
        "softmax": Softmax(X, torch.randint(0, 3, (40,), generator=g), l2=0.1),
        "logsumexp": LogSumExp.random(30, 5, mu=0.5, l2=0.01),
        "rosenbrock": Rosenbrock(5),
        "lessard": lessard_counterexample(),
    }


PROBLEMS = _problems()


def _point(p, seed=3):
    g = torch.Generator().manual_seed(seed)
    return 0.5 * torch.randn(p.shape, generator=g, dtype=F64)


@pytest.mark.parametrize("name", list(PROBLEMS))
def test_gradient_hessian_hvp_match_autograd(name):
    p = PROBLEMS[name]
    x = _point(p)
    xg = x.clone().requires_grad_(True)
    (g_ad,) = torch.autograd.grad(p.value(xg), xg)
    H_ad = torch.autograd.functional.hessian(
        lambda z: p.value(z.reshape(p.shape)), x.reshape(-1)
    )
    v = _point(p, seed=4)
    f, g = p.value_and_grad(x)
    torch.testing.assert_close(g, g_ad, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(p.grad(x), g_ad, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(f, p.value(x))
    torch.testing.assert_close(p.hessian(x), H_ad, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(
        p.hvp(x, v).reshape(-1), H_ad @ v.reshape(-1), rtol=1e-9, atol=1e-9
    )


@pytest.mark.parametrize("name", list(PROBLEMS))
def test_gradient_matches_central_differences(name):
    p = PROBLEMS[name]
    x = _point(p).reshape(-1)
    h = 1e-6
    eye = torch.eye(x.numel(), dtype=F64)
    fd = torch.stack(
        [
            (
                p.value((x + h * e).reshape(p.shape))
                - p.value((x - h * e).reshape(p.shape))
            )
            / (2 * h)
            for e in eye
        ]
    )
    torch.testing.assert_close(
        p.grad(x.reshape(p.shape)).reshape(-1), fd, rtol=1e-5, atol=1e-6
    )
    Hfd = torch.stack(
        [
            (
                p.grad((x + h * e).reshape(p.shape))
                - p.grad((x - h * e).reshape(p.shape))
            ).reshape(-1)
            / (2 * h)
            for e in eye
        ]
    )
    torch.testing.assert_close(p.hessian(x.reshape(p.shape)), Hfd, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", ["least_squares", "logistic", "softmax", "logsumexp"])
def test_gauss_newton_is_psd_and_dominates_exact(name):
    p = PROBLEMS[name]
    x = _point(p)
    GN, H = p.gauss_newton(x), p.hessian(x)
    assert torch.linalg.eigvalsh(GN).min() > 0
    # Dropping -p p^T (or using an upper bound) over-estimates the curvature.
    assert torch.linalg.eigvalsh(GN - H).min() > -1e-10


def test_logistic_fisher_is_bohning_bound():
    p = PROBLEMS["logistic"]
    x = _point(p)
    F = p.fisher(x)
    expected = p.X.T @ p.X / (4 * p.X.shape[0]) + p.l2 * torch.eye(5, dtype=F64)
    torch.testing.assert_close(F, expected)
    assert torch.linalg.eigvalsh(F - p.hessian(x)).min() > -1e-12


def test_rosenbrock_matches_scipy():
    p = Rosenbrock(6)
    x = np.linspace(-1.0, 1.5, 6)
    t = torch.from_numpy(x)
    assert float(p.value(t)) == pytest.approx(so.rosen(x), rel=1e-14)
    np.testing.assert_allclose(p.grad(t).numpy(), so.rosen_der(x), rtol=1e-13)
    np.testing.assert_allclose(p.hessian(t).numpy(), so.rosen_hess(x), rtol=1e-13)
    assert float(p.value(p.x_star)) == 0.0


def test_quadratic_spectrum_and_solution():
    q = quadratic_logspaced(30, 1e3, seed=2)
    ev = torch.linalg.eigvalsh(q.A)
    assert float(ev[0]) == pytest.approx(1.0, rel=1e-10)
    assert float(ev[-1]) == pytest.approx(1e3, rel=1e-10)
    assert (q.L, q.mu) == pytest.approx((1e3, 1.0))
    torch.testing.assert_close(q.A @ q.x_star, q.b)
    torch.testing.assert_close(quadratic_logspaced(30, 1e3, seed=2).A, q.A)


def test_least_squares_solution_matches_numpy():
    p = PROBLEMS["least_squares"]
    A, b = p.A.numpy(), p.b.numpy()
    ref = np.linalg.solve(A.T @ A + 0.1 * np.eye(5), A.T @ b)
    np.testing.assert_allclose(p.x_star.numpy(), ref, rtol=1e-10)
    plain = LeastSquares(A, b)
    np.testing.assert_allclose(
        plain.x_star.numpy(), np.linalg.lstsq(A, b, rcond=None)[0], rtol=1e-10
    )
    assert p.mu == pytest.approx(np.linalg.eigvalsh(A.T @ A).min() + 0.1)


def test_lessard_piecewise_definition():
    p = LessardCounterexample()
    xs = torch.tensor([-1.0, 0.5, 1.0, 1.5, 2.0, 3.0], dtype=F64)
    grads = torch.cat([p.grad(x.reshape(1)) for x in xs])
    torch.testing.assert_close(
        grads, torch.tensor([-25.0, 12.5, 25.0, 25.5, 26.0, 51.0], dtype=F64)
    )
    # f is continuous and C^1 at the break points.
    for c in (1.0, 2.0):
        lo, hi = torch.tensor([c - 1e-9], dtype=F64), torch.tensor([c], dtype=F64)
        assert float(p.value(lo)) == pytest.approx(float(p.value(hi)), abs=1e-6)
    assert (p.L, p.mu) == (25.0, 1.0)


def test_logistic_scaling_matches_sklearn():
    from sklearn.linear_model import LogisticRegression

    X, y = synthetic_classification(300, 6, seed=5)
    p = Logistic(X, y, l2=1e-2)
    model = LogisticRegression(C=p.C, fit_intercept=False, tol=1e-12, max_iter=1000)
    model.fit(X.numpy(), y.numpy())
    w = torch.from_numpy(model.coef_[0])
    assert float(torch.linalg.vector_norm(p.grad(w))) < 1e-7
    assert p.C == pytest.approx(1.0 / (300 * 1e-2))


def test_softmax_scaling_matches_sklearn():
    from sklearn.linear_model import LogisticRegression

    X, y = synthetic_classification(300, 5, n_classes=3, seed=6)
    p = Softmax(X, y, l2=1e-2)
    model = LogisticRegression(C=p.C, fit_intercept=False, tol=1e-12, max_iter=1000)
    model.fit(X.numpy(), y.numpy())
    W = torch.from_numpy(model.coef_.T.copy())
    assert float(torch.linalg.vector_norm(p.grad(W))) < 1e-7


def test_loaders_and_synthetic_data():
    X, y = breast_cancer_data()
    assert X.shape == (569, 30) and set(y.unique().tolist()) == {0.0, 1.0}
    assert float(X.mean(0).abs().max()) < 1e-10
    Xd, yd = digits_data()
    assert Xd.shape == (1797, 64) and yd.dtype == torch.int64 and int(yd.max()) == 9
    A1, b1 = synthetic_classification(500, 20, condition_number=1e3, seed=3)
    A2, b2 = synthetic_classification(500, 20, condition_number=1e3, seed=3)
    torch.testing.assert_close(A1, A2)
    assert torch.equal(b1, b2)
    s = torch.linalg.svdvals(A1 / 500**0.5)
    assert 1e2 < float(s[0] / s[-1]) < 1e4


@pytest.mark.parametrize("name", list(PROBLEMS))
def test_float32_twin(name):
    p = PROBLEMS[name]
    p32 = p.to(torch.float32)
    assert p32.dtype == torch.float32
    x = _point(p)
    g32 = p32.grad(x.float())
    assert g32.dtype == torch.float32
    torch.testing.assert_close(g32.double(), p.grad(x), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", list(PROBLEMS))
def test_to_rebuilds_from_constructor_arguments(name):
    p = PROBLEMS[name]
    p32 = p.to(dtype=torch.float32)
    assert type(p32) is type(p)
    for key, value in p.arguments().items():
        moved = p32.arguments()[key]
        if isinstance(value, torch.Tensor):
            # floating data follows dtype; integer labels keep theirs
            expected = torch.float32 if value.is_floating_point() else value.dtype
            assert moved.dtype == expected
            torch.testing.assert_close(moved.double(), value.double())
        elif key != "dtype":
            assert moved == value
    assert repr(p32) == repr(p).replace("float64", "float32")
    assert repr(p32.to(dtype=F64)) == repr(p)


def test_repr_shows_array_shapes_not_data():
    assert repr(PROBLEMS["softmax"]) == (
        "Softmax(X=(40, 5), y=(40,), l2=0.1, n_classes=3, dtype=torch.float64)"
    )
    assert repr(Rosenbrock(3)) == "Rosenbrock(n=3, dtype=torch.float64, device=cpu)"


@pytest.mark.parametrize(
    ("build", "match"),
    [
        (lambda: Logistic(_data(), torch.arange(40) % 3), "binary labels"),
        (lambda: Logistic(_data(), torch.zeros(39)), r"y must have shape \(40,\)"),
        (lambda: Logistic(_data(), torch.zeros(40), l2=-1.0), "l2 must be"),
        (lambda: Softmax(_data(), -torch.ones(40, dtype=torch.int64)), "non-negative"),
        (lambda: LeastSquares(_data(), torch.zeros(3)), r"b must have shape \(40,\)"),
        (lambda: Quadratic(torch.ones(2, 3), torch.ones(2)), "square"),
        (lambda: Quadratic.with_spectrum([1.0, -1.0]), "positive"),
        (lambda: quadratic_logspaced(5, 0.5), "kappa must be >= 1"),
        (lambda: Rosenbrock(1), "n must be an int >= 2"),
        (lambda: LogSumExp(_data(), torch.zeros(40), mu=0.0), "mu must be > 0"),
        (lambda: synthetic_classification(10, 3, n_classes=1), "n_classes"),
    ],
)
def test_bad_input_raises(build, match):
    with pytest.raises(ValueError, match=match):
        build()


def test_wrong_shape_is_rejected_by_check():
    p = PROBLEMS["softmax"]
    with pytest.raises(ValueError, match=r"x must have shape \(5, 3\)"):
        p._check(torch.zeros(15, dtype=F64))


def test_objective_counts_and_approximation_lookup():
    p = PROBLEMS["logistic"]
    obj = p.objective()
    x = _point(p)
    obj.value_and_grad(x)
    obj.hvp(x, x)
    obj.approximation("gauss_newton")(x)
    assert obj.counts == {"values": 1, "grads": 1, "hvps": 1, "hessians": 1}
    with pytest.raises(ValueError, match="no Hessian approximation 'kfac'"):
        obj.approximation("kfac")
