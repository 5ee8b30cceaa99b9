"""ContractiveGraphFixedPoint (CGS): fixed point vs a dense solve, contraction
factor by power iteration, implicit gradients vs unrolled autograd, iteration
counts on MDP graphs, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from itersolve import ConvergenceError, ConvergenceWarning
from itersolve.fixed_point import Anderson, FixedPointIteration, NewtonKrylov
from itersolve.nn import CGS, ContractiveGraphFixedPoint
from itersolve.problems import random_mdp

F64 = torch.float64
HEADS = 3
NORMS = ("in-degree", "out-degree", "softmax")
TIGHT = FixedPointIteration(rtol=1e-14, max_steps=500)


def _graph(n: int = 12, m: int = 3, seed: int = 0) -> tuple[torch.Tensor, int]:
    """Message edges of a random MDP (successor -> state): strongly connected
    with high probability, every state receiving ``m`` messages."""
    mdp = random_mdp(n, m, seed=seed)
    return torch.from_numpy(mdp.edge_index[::-1].copy()), n


def _inputs(
    n: int, e: int, seed: int = 1, dtype: torch.dtype = F64
) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(e, HEADS, generator=gen, dtype=dtype)
    bias = torch.randn(n, HEADS, generator=gen, dtype=dtype)
    return logits, bias


def _dense(layer, edge_index, logits, n) -> np.ndarray:
    """``gamma A_k`` as dense ``(h, n, n)`` (test reference only)."""
    w = layer.edge_weights(edge_index, logits, n).detach().numpy()
    A = np.zeros((HEADS, n, n))
    src, dst = edge_index.numpy()
    for k in range(HEADS):
        np.add.at(A[k], (dst, src), w[:, k])
    return layer.gamma * A


@pytest.mark.parametrize("normalization", NORMS)
def test_fixed_point_equals_the_dense_solve(normalization: str) -> None:
    edge_index, n = _graph()
    logits, bias = _inputs(n, edge_index.shape[1])
    layer = CGS(HEADS, 0.5, normalization, forward=TIGHT)
    z = layer(edge_index, logits, bias)
    A = _dense(layer, edge_index, logits, n)
    for k in range(HEADS):
        exact = np.linalg.solve(np.eye(n) - A[k], bias[:, k].numpy())
        np.testing.assert_allclose(z[:, k].detach().numpy(), exact, rtol=0, atol=1e-10)
    assert layer.info.forward.success
    T = layer.fixed_point_map(edge_index, logits, bias)
    assert float((T(z) - z).abs().max()) < 1e-12


@pytest.mark.parametrize("normalization", NORMS)
def test_contraction_factor_bounds_the_jacobian(normalization: str) -> None:
    edge_index, n = _graph(20, 4)
    logits, bias = _inputs(n, edge_index.shape[1], seed=3)
    logits = 4 * logits  # saturate some sigmoids: rows near the bound
    layer = ContractiveGraphFixedPoint(HEADS, 0.5, normalization)
    factor = layer.contraction_factor(edge_index, logits, n)
    assert factor <= 0.5 * (1 + 1e-12)
    T = layer.fixed_point_map(edge_index, logits, bias)
    zero = torch.zeros(n, HEADS, dtype=F64)

    def J(v: torch.Tensor) -> torch.Tensor:  # the map is affine: J v = T(v) - T(0)
        return T(v) - T(zero)

    # The Jacobian from autograd is the same linear map.
    v = torch.randn(n, HEADS, dtype=F64, generator=torch.Generator().manual_seed(4))
    _, jv = torch.autograd.functional.jvp(T, zero, v)
    torch.testing.assert_close(jv, J(v), rtol=1e-14, atol=1e-14)
    # Power iteration: ||J^k v||^(1/k) -> the spectral radius (Gelfand), per head.
    k = 300
    log_growth = torch.zeros(HEADS, dtype=F64)
    w = v / torch.linalg.vector_norm(v, dim=0)
    for _ in range(k):
        w = J(w)
        norms = torch.linalg.vector_norm(w, dim=0)
        log_growth += torch.log(norms)
        w = w / norms
    radius = torch.exp(log_growth / k)
    assert float(radius.max()) <= factor * (1 + 1e-3)
    if normalization == "softmax":
        # Row sums are exactly 1 on a graph where every node receives messages,
        # so the bound is attained: rho(gamma A) = gamma.
        assert factor == pytest.approx(0.5, rel=1e-12)
        np.testing.assert_allclose(radius.numpy(), 0.5, rtol=2e-2)


@pytest.mark.parametrize("normalization", NORMS)
def test_implicit_gradient_equals_unrolled_autograd(normalization: str) -> None:
    edge_index, n = _graph(15, 4, seed=2)
    logits, bias = _inputs(n, edge_index.shape[1], seed=5)
    layer = CGS(
        HEADS,
        0.5,
        normalization,
        forward=TIGHT,
        backward_method=FixedPointIteration(rtol=1e-14, max_steps=500),
    )
    target = torch.randn(
        n, HEADS, dtype=F64, generator=torch.Generator().manual_seed(6)
    )

    def grads(unrolled: bool) -> tuple[torch.Tensor, torch.Tensor]:
        lg = logits.clone().requires_grad_()
        b = bias.clone().requires_grad_()
        if unrolled:
            T = layer.fixed_point_map(edge_index, lg, b)
            z = torch.zeros_like(b)
            for _ in range(120):  # 0.5^120 is far below rounding
                z = T(z)
        else:
            z = layer(edge_index, lg, b)
        loss = ((z - target) ** 2).sum()
        g_logits, g_bias = torch.autograd.grad(loss, (lg, b))
        return g_logits, g_bias

    implicit, unrolled = grads(False), grads(True)
    assert layer.info.backward is not None and layer.info.backward.success
    for a, b in zip(implicit, unrolled, strict=True):
        err = float(torch.linalg.vector_norm(a - b) / torch.linalg.vector_norm(b))
        assert err <= 1e-8


def test_phantom_backward_is_close_and_inputs_unmutated() -> None:
    edge_index, n = _graph()
    logits, bias = _inputs(n, edge_index.shape[1])
    saved = (edge_index.clone(), logits.clone(), bias.clone())
    out = []
    for backward in ("implicit", "phantom"):
        lg = logits.clone().requires_grad_()
        layer = CGS(HEADS, backward=backward, phantom_steps=30)
        layer(edge_index, lg, bias).sum().backward()
        out.append(lg.grad)
    torch.testing.assert_close(out[0], out[1], rtol=1e-5, atol=1e-6)
    for a, b in zip(saved, (edge_index, logits, bias), strict=True):
        assert torch.equal(a, b)


def test_iterations_on_mdp_graphs_up_to_100_states() -> None:
    """Default solver (plain iteration, rtol 1e-6): per head,
    ``||z_{k+1} - z_k||_2 <= sqrt(n) gamma^k ||b||_inf`` and ``||z_k||_2 >=
    ||b||_inf / (1 + gamma)``, so k = 24 steps suffice at n = 100."""
    layer = CGS(16)
    worst = 0
    for seed, n in enumerate((20, 50, 100)):
        edge_index, _ = _graph(n, 9, seed=seed)
        logits, bias = _inputs(n, edge_index.shape[1], seed=seed)
        logits = torch.randn(edge_index.shape[1], 16, dtype=F64)
        bias = torch.randn(n, 16, dtype=F64)
        layer(edge_index, logits, bias)
        assert layer.info.forward.success
        assert len(layer.info.forward.stats["sample_fevals"]) == 16
        worst = max(worst, layer.info.forward.num_steps)
    assert 5 < worst <= 25


def test_anderson_forward_and_float32_and_numpy_edges() -> None:
    edge_index, n = _graph()
    logits, bias = _inputs(n, edge_index.shape[1], dtype=torch.float32)
    plain = CGS(HEADS)(edge_index.numpy(), logits, bias)
    accelerated = CGS(HEADS, forward=Anderson(rtol=1e-6))(edge_index, logits, bias)
    assert plain.dtype == torch.float32
    torch.testing.assert_close(plain, accelerated, rtol=1e-4, atol=1e-5)


def test_fitting_a_target_lowers_the_loss() -> None:
    edge_index, n = _graph()
    logits, bias = _inputs(n, edge_index.shape[1])
    logits.requires_grad_()
    bias.requires_grad_()
    layer = CGS(HEADS)
    target = torch.linspace(-1, 1, n, dtype=F64)[:, None].expand(n, HEADS)
    opt = torch.optim.Adam([logits, bias], lr=0.05)
    losses = []
    for _ in range(40):
        opt.zero_grad()
        loss = ((layer(edge_index, logits, bias) - target) ** 2).mean()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.05 * losses[0]


def test_max_steps_warns_or_raises() -> None:
    edge_index, n = _graph()
    logits, bias = _inputs(n, edge_index.shape[1])
    short = FixedPointIteration(rtol=1e-12, max_steps=2)
    with pytest.warns(ConvergenceWarning):
        CGS(HEADS, forward=short)(edge_index, logits, bias)
    with pytest.raises(ConvergenceError):
        CGS(HEADS, forward=short, throw=True)(edge_index, logits, bias)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"heads": 0}, ValueError, "heads must be an int >= 1"),
        ({"heads": 2, "gamma": 1.0}, ValueError, r"gamma must be in \(0, 1\)"),
        ({"heads": 2, "gamma": 1.5}, ValueError, "gamma"),
        ({"heads": 2, "gamma": 0.0}, ValueError, "gamma"),
        ({"heads": 2, "normalization": "sym"}, ValueError, "normalization"),
        ({"heads": 2, "backward": "unrolled"}, ValueError, "backward"),
        ({"heads": 2, "forward": "anderson"}, TypeError, "forward"),
        ({"heads": 2, "forward": NewtonKrylov()}, ValueError, "as a batch"),
    ],
)
def test_bad_settings(kwargs, error, match) -> None:
    with pytest.raises(error, match=match):
        ContractiveGraphFixedPoint(**kwargs)


def test_bad_inputs() -> None:
    edge_index, n = _graph()
    e = edge_index.shape[1]
    logits, bias = _inputs(n, e)
    layer = CGS(HEADS)
    bad = edge_index.clone()
    bad[0, 3] = n
    with pytest.raises(ValueError, match=r"edge_index entries must be in \[0, 12\)"):
        layer(bad, logits, bias)
    bad[0, 3] = -1
    with pytest.raises(ValueError, match="edge_index entries"):
        layer(bad, logits, bias)
    with pytest.raises(ValueError, match=r"shape \(2, E\)"):
        layer(edge_index[:1], logits, bias)
    with pytest.raises(TypeError, match="integers"):
        layer(edge_index.double(), logits, bias)
    with pytest.raises(ValueError, match="edge_logits must have shape"):
        layer(edge_index, logits[:-1], bias)
    with pytest.raises(ValueError, match="edge_logits must have shape"):
        layer(edge_index, logits[:, :2], bias)
    with pytest.raises(ValueError, match="bias must have shape"):
        layer(edge_index, logits, bias[:, :2])
    with pytest.raises(TypeError, match="share a dtype"):
        layer(edge_index, logits.float(), bias)
    with pytest.raises(TypeError, match="bias must be a floating"):
        layer(edge_index, logits, bias.numpy())
    with pytest.raises(TypeError, match="edge_logits must be a torch tensor"):
        layer(edge_index, logits.numpy(), bias)


def test_nonfinite_bias_is_an_honest_status() -> None:
    edge_index, n = _graph()
    logits, bias = _inputs(n, edge_index.shape[1])
    bias[2, 1] = float("nan")
    layer = CGS(HEADS)
    with pytest.warns(ConvergenceWarning, match="NONFINITE"):
        layer(edge_index, logits, bias)
    assert not layer.info.forward.success
    with pytest.raises(ConvergenceError):
        CGS(HEADS, throw=True)(edge_index, logits, bias)


@pytest.mark.gpu
def test_cuda_keeps_the_device_and_matches_cpu() -> None:
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    edge_index, n = _graph()
    logits, bias = _inputs(n, edge_index.shape[1])
    layer = CGS(HEADS, forward=TIGHT)
    lg = logits.cuda().requires_grad_()
    z = layer(edge_index, lg, bias.cuda())
    z.sum().backward()
    assert z.device.type == "cuda" and lg.grad.device.type == "cuda"
    torch.testing.assert_close(z.cpu(), layer(edge_index, logits, bias))
