"""itersolve.nn.icl: sampler, Newton / GD baselines against closed forms,
SimE, read-outs, seeded training, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from itersolve.linear import NewtonSchulz
from itersolve.nn import icl

F64 = torch.float64


def _prompts(B: int = 6, n: int = 7, d: int = 3, seed: int = 0):
    return icl.GaussianRegressionSampler(d, n).sample(B, seed=seed, dtype=F64)


# -- sampler ------------------------------------------------------------------------


def test_sampler_shapes_seeds_and_linearity() -> None:
    sampler = icl.GaussianRegressionSampler(d=4, n_points=9)
    x, y = sampler.sample(5, seed=3)
    assert x.shape == (5, 9, 4) and y.shape == (5, 9) and x.dtype == torch.float32
    x2, y2 = sampler.sample(5, seed=3)
    assert torch.equal(x, x2) and torch.equal(y, y2)
    x3, _ = sampler.sample(5, seed=4)
    assert not torch.equal(x, x3)
    # y = w^T x with one w per prompt: 4 points determine w, the rest follow
    x64, y64 = sampler.sample(5, seed=3, dtype=F64)
    for b in range(5):
        w = torch.linalg.solve(x64[b, :4], y64[b, :4])
        torch.testing.assert_close(x64[b] @ w, y64[b], rtol=1e-10, atol=1e-10)


def test_sampler_generator_is_consumed_and_dims_zero_the_rest() -> None:
    sampler = icl.GaussianRegressionSampler(d=4, n_points=3)
    gen = torch.Generator().manual_seed(0)
    a, _ = sampler.sample(2, seed=gen)
    b, _ = sampler.sample(2, seed=gen)
    assert not torch.equal(a, b)
    x, _ = sampler.sample(2, seed=0, dims=2)
    assert (x[..., 2:] == 0).all() and (x[..., :2] != 0).all()


def test_ill_conditioned_sampler_covariance() -> None:
    sampler = icl.GaussianRegressionSampler(d=6, n_points=2, kappa=100.0)
    root = sampler.covariance_root()
    eig = torch.linalg.eigvalsh(root @ root.T)
    assert float(eig.sum()) == pytest.approx(6.0)
    assert float(eig.max() / eig.min()) == pytest.approx(100.0)
    assert torch.allclose(eig[3:], eig[-1].expand(3))


def test_interleave_layout() -> None:
    x, y = _prompts(B=2, n=3, d=2)
    tokens = icl.interleave(x, y)
    assert tokens.shape == (2, 6, 2)
    assert torch.equal(tokens[:, ::2], x)
    assert torch.equal(tokens[:, 1::2, 0], y) and (tokens[:, 1::2, 1] == 0).all()


# -- the algorithms against closed forms --------------------------------------------


def _numpy_newton(X: np.ndarray, y: np.ndarray, k: int) -> np.ndarray:
    """k Newton–Schulz steps on S = X^T X from M_0 = S / ||S S||_F."""
    S = X.T @ X
    scale = np.linalg.norm(S @ S)
    M = S / scale if scale > 0 else np.zeros_like(S)
    for _ in range(k):
        M = 2 * M - M @ S @ M
    return M @ X.T @ y


def _numpy_gd(X: np.ndarray, y: np.ndarray, k: int, lr: float | None) -> np.ndarray:
    S = X.T @ X
    top = np.linalg.eigvalsh(S)[-1]
    eta = (1.0 / top if top > 0 else 1.0) if lr is None else lr
    w = np.zeros(X.shape[1])
    for _ in range(k):
        w = w - eta * X.T @ (X @ w - y)
    return w


@pytest.mark.parametrize("steps", [1, 3, 6])
def test_newton_predictions_equal_numpy_newton_schulz(steps: int) -> None:
    x, y = _prompts(B=3, n=7, d=3)
    out = icl.newton_predictions(x, y, steps)
    assert out.shape == (steps, 3, 7) and out.dtype == F64
    X, Y = x.numpy(), y.numpy()
    for k in range(1, steps + 1):
        for b in range(3):
            for i in range(7):
                w = _numpy_newton(X[b, :i], Y[b, :i], k)
                assert out[k - 1, b, i].item() == pytest.approx(
                    X[b, i] @ w, rel=1e-9, abs=1e-10
                )


def test_newton_predictions_converge_to_min_norm_least_squares() -> None:
    x, y = _prompts(B=4, n=6, d=4)
    tight = NewtonSchulz(target="pseudoinverse", tol=1e-13, max_steps=80)
    out = icl.newton_predictions(x, y, 80, method=tight)
    X, Y = x.numpy(), y.numpy()
    for b in range(4):
        for i in range(1, 6):  # i < d: underdetermined, minimum-norm solution
            w = np.linalg.pinv(X[b, :i]) @ Y[b, :i]
            assert out[-1, b, i].item() == pytest.approx(X[b, i] @ w, abs=1e-9)
    assert (out[:, :, 0] == 0).all()  # no points: predict 0


@pytest.mark.parametrize("lr", [None, 0.05])
def test_gd_predictions_equal_k_gradient_steps(lr: float | None) -> None:
    x, y = _prompts(B=3, n=6, d=3, seed=5)
    ks = [0, 1, 2, 7, 40]
    out = icl.gd_predictions(x, y, ks, lr=lr)
    assert out.shape == (len(ks), 3, 6)
    X, Y = x.numpy(), y.numpy()
    for j, k in enumerate(ks):
        for b in range(3):
            for i in range(6):
                w = _numpy_gd(X[b, :i], Y[b, :i], k, lr)
                assert out[j, b, i].item() == pytest.approx(
                    X[b, i] @ w, rel=1e-9, abs=1e-11
                )


def test_gd_with_too_large_step_diverges_honestly() -> None:
    x, y = _prompts(B=2, n=6, d=3)
    out = icl.gd_predictions(x, y, [200], lr=10.0)
    tail = out[0, :, 3:]
    # no silent clipping: overflow shows as inf / nan, as the loop itself would
    assert ((tail.abs() > 1e10) | ~torch.isfinite(tail)).all()


# -- similarity ---------------------------------------------------------------------


def test_similarity_of_errors_identity_sign_and_broadcast() -> None:
    _, y = _prompts()
    p = torch.randn(y.shape, generator=torch.Generator().manual_seed(1), dtype=F64)
    assert float(icl.similarity_of_errors(p, p, y)) == pytest.approx(1.0)
    assert float(icl.similarity_of_errors(p, 2 * y - p, y)) == pytest.approx(-1.0)
    # positive scaling of the residual does not change the cosine
    assert float(icl.similarity_of_errors(p, y + 3 * (p - y), y)) == pytest.approx(1.0)
    assert float(icl.similarity_of_errors(y, y, y)) == 1.0  # both residuals zero
    table = icl.similarity_of_errors(torch.stack([p, y])[:, None], p[None, None], y)
    assert table.shape == (2, 1)
    assert table[0, 0] == pytest.approx(1.0) and table[1, 0] == 0.0


def test_best_matching_and_compare_layers_recover_planted_steps() -> None:
    x, y = _prompts(B=16, n=8, d=4, seed=2)
    newton = icl.newton_predictions(x, y, 12)
    gd = icl.gd_predictions(x, y, icl.GD_STEPS)
    fake_layers = torch.stack([newton[1], newton[4], newton[8], gd[5]])
    result = icl.compare_layers(fake_layers, x, y, newton_steps=12)
    assert result.newton_best[:3] == [2, 5, 9]
    assert result.gd_best[3] == icl.GD_STEPS[5]
    assert result.newton_similarity.shape == (4, 12)
    assert result.gd_similarity.shape == (4, len(icl.GD_STEPS))
    assert result.newton_best_similarity[0] == pytest.approx(1.0)
    assert len(result.layer_error) == 4


# -- read-outs ----------------------------------------------------------------------


def test_fit_linear_readout_recovers_a_linear_map() -> None:
    gen = torch.Generator().manual_seed(0)
    H = torch.randn(400, 10, generator=gen, dtype=F64)
    w = torch.randn(10, generator=gen, dtype=F64)
    weight, bias = icl.fit_linear_readout(H, H @ w - 1.5)
    torch.testing.assert_close(weight, w, rtol=1e-10, atol=1e-10)
    assert float(bias) == pytest.approx(-1.5)
    # collinear features (a duplicated column): the minimum-norm split
    H2 = torch.cat([H, H[:, :1]], dim=1)
    weight2, _ = icl.fit_linear_readout(H2, H @ w)
    assert float(weight2[0]) == pytest.approx(float(w[0]) / 2)
    ridged, _ = icl.fit_linear_readout(H, H @ w, ridge=1e3)
    assert torch.linalg.vector_norm(ridged) < torch.linalg.vector_norm(w)


def test_layer_readouts_on_a_model() -> None:
    sampler = icl.GaussianRegressionSampler(3, 5)
    model = icl.ICLTransformer(3, 5, layers=2, heads=2, width=8, seed=0)
    readouts = icl.fit_layer_readouts(model, sampler, 64, seed=1, batch_size=20)
    x, y = sampler.sample(4, seed=2)
    preds = readouts.predict(model, x, y)
    assert preds.shape == (2, 4, 5) and preds.dtype == F64
    # the read-out of layer l is the least-squares fit on that layer's states
    h = model.hidden_states(x, y)[1].detach().to(F64)
    torch.testing.assert_close(preds[1], h @ readouts.weights[1] + readouts.biases[1])


# -- model and training -------------------------------------------------------------


def test_model_is_causal() -> None:
    model = icl.ICLTransformer(2, 6, layers=2, heads=2, width=8, seed=1)
    x, y = icl.GaussianRegressionSampler(2, 6).sample(3, seed=0)
    base = model(x, y)
    x2, y2 = x.clone(), y.clone()
    x2[:, 4:] += 1.0
    y2[:, 3:] -= 2.0  # y_3 is seen only from x_4 on
    moved = model(x2, y2)
    torch.testing.assert_close(moved[:, :4], base[:, :4])
    assert not torch.allclose(moved[:, 4:], base[:, 4:])


def test_seeded_training_is_reproducible() -> None:
    sampler = icl.GaussianRegressionSampler(2, 4)

    def run(seed: int) -> tuple[list[float], torch.Tensor]:
        model = icl.ICLTransformer(2, 4, layers=1, heads=1, width=8, seed=0)
        history = icl.train_icl(model, sampler, 8, batch_size=8, lr=1e-2, seed=seed)
        return history["loss"], model.read_out.weight.detach().clone()

    loss_a, w_a = run(0)
    loss_b, w_b = run(0)
    loss_c, _ = run(1)
    assert loss_a == loss_b and torch.equal(w_a, w_b)
    assert loss_a != loss_c


def test_curriculum_schedule_and_training() -> None:
    c = icl.Curriculum(2, 4, 1, 3, 6, 2, interval=5)
    assert [c.at(t) for t in (0, 4, 5, 12, 99)] == [
        (2, 3),
        (2, 3),
        (3, 5),
        (4, 6),
        (4, 6),
    ]
    model = icl.ICLTransformer(4, 6, layers=1, heads=1, width=8)
    fast = icl.Curriculum(2, 4, 1, 3, 6, 2, interval=2)
    history = icl.train_icl(
        model, icl.GaussianRegressionSampler(4, 6), 6, batch_size=4, curriculum=fast
    )
    assert len(history["loss"]) == 6 and all(np.isfinite(history["loss"]))


# -- bad input ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("build", "error", "match"),
    [
        (lambda: icl.GaussianRegressionSampler(0, 3), ValueError, "d must be"),
        (lambda: icl.GaussianRegressionSampler(2, 2.5), TypeError, "n_points"),
        (lambda: icl.GaussianRegressionSampler(2, 3, kappa=0.5), ValueError, "kappa"),
        (
            lambda: icl.GaussianRegressionSampler(2, 3).sample(2, dims=3),
            ValueError,
            "dims",
        ),
        (
            lambda: icl.GaussianRegressionSampler(2, 3).sample(2, seed=1.5),
            TypeError,
            "seed",
        ),
        (lambda: icl.ICLTransformer(2, 3, heads=3, width=8), ValueError, "multiple"),
        (lambda: icl.ICLTransformer(2, 3, layers=0), ValueError, "layers"),
        (lambda: icl.Curriculum(3, 2, 1, 2, 3, 1, 10), ValueError, "grow"),
        (lambda: icl.Curriculum(1, 2, -1, 2, 3, 1, 10), ValueError, "dims_inc"),
        (lambda: icl.newton_predictions(*_prompts(), 0), ValueError, "steps"),
        (
            lambda: icl.newton_predictions(*_prompts(), 3, method="newton"),
            TypeError,
            "NewtonSchulz",
        ),
        (lambda: icl.gd_predictions(*_prompts(), []), ValueError, "steps"),
        (lambda: icl.gd_predictions(*_prompts(), [-1]), ValueError, "steps"),
        (lambda: icl.gd_predictions(*_prompts(), [1], lr=0.0), ValueError, "lr"),
        (
            lambda: icl.similarity_of_errors(
                torch.zeros(2, 3), torch.zeros(2, 4), torch.zeros(2, 3)
            ),
            ValueError,
            "reference",
        ),
        (
            lambda: icl.fit_linear_readout(torch.zeros(4, 2), torch.zeros(3)),
            ValueError,
            "targets",
        ),
        (
            lambda: icl.fit_linear_readout(torch.zeros(4, 2), torch.zeros(4), ridge=-1),
            ValueError,
            "ridge",
        ),
        (
            lambda: icl.best_matching_steps(torch.zeros(2, 3), [1, 2]),
            ValueError,
            "similarity",
        ),
    ],
)
def test_bad_input(build, error, match) -> None:
    with pytest.raises(error, match=match):
        build()


def test_bad_prompts_and_mismatched_models() -> None:
    x, y = _prompts(B=2, n=3, d=2)
    with pytest.raises(ValueError, match="shape"):
        icl.interleave(x, y[:, :2])
    with pytest.raises(TypeError, match="torch tensors"):
        icl.interleave(x.numpy(), y)
    bad = x.clone()
    bad[0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="finite"):
        icl.newton_predictions(bad, y, 3)
    model = icl.ICLTransformer(2, 2, layers=1, heads=1, width=4)
    with pytest.raises(ValueError, match="points <= 2"):
        model(x, y)
    with pytest.raises(ValueError, match="does not fit"):
        icl.train_icl(model, icl.GaussianRegressionSampler(2, 3), 1)
    with pytest.raises(TypeError, match="ICLTransformer"):
        icl.train_icl("model", icl.GaussianRegressionSampler(2, 3), 1)
    with pytest.raises(ValueError, match="lr"):
        icl.train_icl(model, icl.GaussianRegressionSampler(2, 2), 1, lr=-1.0)
    with pytest.raises(ValueError, match="curriculum"):
        icl.train_icl(
            model,
            icl.GaussianRegressionSampler(2, 2),
            1,
            curriculum=icl.Curriculum(1, 3, 1, 1, 2, 1, 10),
        )
    with pytest.raises(ValueError, match="layer_predictions"):
        icl.compare_layers(torch.zeros(2, 2), x, y)


def test_inputs_not_mutated() -> None:
    x, y = _prompts(B=2, n=5, d=2)
    x0, y0 = x.clone(), y.clone()
    icl.newton_predictions(x, y, 3)
    icl.gd_predictions(x, y, [1, 4])
    icl.similarity_of_errors(y + 1, y - 1, y)
    assert torch.equal(x, x0) and torch.equal(y, y0)
