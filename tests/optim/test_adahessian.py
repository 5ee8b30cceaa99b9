"""AdaHessian: formula reference, torch_optimizer parity, memory, resume, options."""

from __future__ import annotations

import copy
import importlib.util
import os
import subprocess
import sys
import warnings

import pytest
import torch
from torch import nn

from itersolve.optim import Adahessian, hutchinson_diagonal, spatial_average

F = nn.functional


def _conv_net(seed: int = 0, dtype: torch.dtype = torch.float64) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(1, 3, 3),
        nn.Tanh(),
        nn.Flatten(),
        nn.Linear(3 * 4 * 4, 4),
    ).to(dtype)


def _all_ranks_net(seed: int = 0) -> nn.Module:
    """Conv1d (3-D), Conv2d (4-D), Conv3d (5-D) kernels, 2-D and 1-D tensors."""

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.c1 = nn.Conv1d(1, 2, 2)
            self.c2 = nn.Conv2d(1, 2, 2)
            self.c3 = nn.Conv3d(1, 2, 2)
            self.fc = nn.Linear(2 * 2 + 2 * 1 + 2 * 1, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            a = torch.tanh(self.c1(x[:, :, 0, 0, :3])).flatten(1)
            b = torch.tanh(self.c2(x[:, :, 0, :2, :2])).flatten(1)
            c = torch.tanh(self.c3(x[:, :, :2, :2, :2])).flatten(1)
            return self.fc(torch.cat([a, b, c], dim=1))

    torch.manual_seed(seed)
    return Net().double()


def _data(n: int = 12, shape: tuple[int, ...] = (1, 6, 6)) -> tuple:
    gen = torch.Generator().manual_seed(11)
    x = torch.randn(n, *shape, generator=gen, dtype=torch.float64)
    y = torch.randint(0, 2, (n,), generator=gen)
    return x, y


def _reference_run(model: nn.Module, closure_of, steps: int, seed: int, **hp) -> None:
    """The spec's update written out with hutchinson_diagonal + spatial_average."""
    lr, (b1, b2), eps = hp["lr"], hp["betas"], hp["eps"]
    k, wd = hp["hessian_power"], hp["weight_decay"]
    params = list(model.parameters())
    gen = torch.Generator().manual_seed(seed)
    m = [torch.zeros_like(p) for p in params]
    v = [torch.zeros_like(p) for p in params]
    for t in range(1, steps + 1):
        loss = closure_of(model)()
        grads = torch.autograd.grad(loss, params, retain_graph=True)
        diag = hutchinson_diagonal(loss, params, generator=gen)
        with torch.no_grad():
            for i, p in enumerate(params):
                d = spatial_average(diag[i])
                m[i].mul_(b1).add_(grads[i], alpha=1 - b1)
                v[i].mul_(b2).add_(d * d, alpha=1 - b2)
                denom = (v[i] / (1 - b2**t)).sqrt() ** k + eps
                p.sub_(lr * (m[i] / (1 - b1**t) / denom + wd * p))


def _closure_of(x: torch.Tensor, y: torch.Tensor):
    def make(model: nn.Module):
        return lambda: F.cross_entropy(model(x), y)

    return make


@pytest.mark.parametrize("k", [1.0, 0.5])
def test_matches_formula_on_every_tensor_rank(k: float) -> None:
    x, y = _data(n=6, shape=(1, 2, 3, 3))
    hp = dict(lr=0.05, betas=(0.9, 0.99), eps=1e-4, hessian_power=k, weight_decay=1e-3)
    ours, ref = _all_ranks_net(), _all_ranks_net()
    opt = Adahessian(ours.parameters(), seed=5, **hp)
    closure_of = _closure_of(x, y)
    for _ in range(6):
        opt.step(closure_of(ours))
    _reference_run(ref, closure_of, 6, seed=5, **hp)
    for p, q in zip(ours.parameters(), ref.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-10, atol=1e-12)


@pytest.mark.skipif(
    importlib.util.find_spec("torch_optimizer") is None,
    reason="torch_optimizer not installed",
)
def test_parity_with_torch_optimizer_hessian_power_half() -> None:
    import torch_optimizer

    x, y = _data()
    ours, theirs = _conv_net(), _conv_net()
    opt = Adahessian(ours.parameters(), lr=0.1, hessian_power=0.5, seed=9)
    torch.manual_seed(9)  # torch_optimizer draws its probes from the global RNG
    ref = torch_optimizer.Adahessian(theirs.parameters(), lr=0.1, hessian_power=0.5)
    for _ in range(15):
        opt.step(lambda: F.cross_entropy(ours(x), y))
        ref.zero_grad()
        with warnings.catch_warnings():  # their API needs backward(create_graph)
            warnings.simplefilter("ignore", UserWarning)
            F.cross_entropy(theirs(x), y).backward(create_graph=True)
        ref.step()
        for p in theirs.parameters():  # break their reference cycle
            p.grad = None
    for p, q in zip(ours.parameters(), theirs.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=0, atol=1e-12)


def _legacy_step(opt: torch.optim.Optimizer, model: nn.Module, x, y) -> None:
    """One step of an optimizer whose API is backward(create_graph) + step()."""
    opt.zero_grad()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        F.cross_entropy(model(x), y).backward(create_graph=True)
    opt.step()
    for p in model.parameters():  # break their parameter/.grad reference cycle
        p.grad = None


@pytest.mark.skipif(
    importlib.util.find_spec("torch_optimizer") is None,
    reason="torch_optimizer not installed",
)
def test_parity_with_torch_optimizer_paper_power_and_weight_decay() -> None:
    """k = 1 with decoupled weight decay: the official algorithm, conv averaging
    included, step for step."""
    import torch_optimizer

    x, y = _data()
    ours, theirs = _conv_net(), _conv_net()
    hp = dict(lr=0.1, hessian_power=1.0, weight_decay=3e-3)
    opt = Adahessian(ours.parameters(), seed=4, **hp)
    torch.manual_seed(4)
    ref = torch_optimizer.Adahessian(theirs.parameters(), **hp)
    for _ in range(15):
        opt.step(lambda: F.cross_entropy(ours(x), y))
        _legacy_step(ref, theirs, x, y)
    for p, q in zip(ours.parameters(), theirs.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=0, atol=1e-10)


def _mlp(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Flatten(), nn.Linear(36, 8), nn.Tanh(), nn.Linear(8, 4)
    ).double()


@pytest.mark.skipif(
    importlib.util.find_spec("pytorch_optimizer") is None,
    reason="pytorch_optimizer not installed",
)
@pytest.mark.parametrize("k", [1.0, 0.5])
def test_parity_with_pytorch_optimizer_without_conv_kernels(k: float) -> None:
    """pytorch_optimizer's AdaHessian never averages conv kernels and defaults
    to eps 1e-16; on 1-D / 2-D tensors with the same eps, k and decoupled
    weight decay it is the same algorithm."""
    import pytorch_optimizer

    x, y = _data()
    ours, theirs = _mlp(), _mlp()
    hp = dict(lr=0.05, eps=1e-4, hessian_power=k, weight_decay=2e-3)
    opt = Adahessian(ours.parameters(), seed=6, **hp)
    torch.manual_seed(6)
    ref = pytorch_optimizer.AdaHessian(theirs.parameters(), **hp)
    for _ in range(15):
        opt.step(lambda: F.cross_entropy(ours(x), y))
        _legacy_step(ref, theirs, x, y)
    for p, q in zip(ours.parameters(), theirs.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=0, atol=1e-10)


@pytest.mark.skipif(
    importlib.util.find_spec("pytorch_optimizer") is None,
    reason="pytorch_optimizer not installed",
)
def test_pytorch_optimizer_differs_on_conv_kernels() -> None:
    """The one algorithmic difference: without spatial averaging of the conv
    kernel the two runs part after the first step (the comparison above is
    not vacuous)."""
    import pytorch_optimizer

    x, y = _data()
    ours, theirs = _conv_net(), _conv_net()
    hp = dict(lr=0.05, eps=1e-4, hessian_power=1.0)
    opt = Adahessian(ours.parameters(), seed=6, **hp)
    torch.manual_seed(6)
    ref = pytorch_optimizer.AdaHessian(theirs.parameters(), **hp)
    opt.step(lambda: F.cross_entropy(ours(x), y))
    _legacy_step(ref, theirs, x, y)
    conv_ours, conv_theirs = ours[0].weight.detach(), theirs[0].weight.detach()
    assert float((conv_ours - conv_theirs).abs().max()) > 1e-6
    torch.testing.assert_close(ours[3].bias, theirs[3].bias, rtol=0, atol=1e-10)


# Memory is measured in a fresh interpreter: inside a long pytest process the
# allocator reuses pages freed by earlier tests, so RSS growth would hide a leak.
_MEMORY_PROBE = """
import gc, sys, warnings
import torch
import torch.nn.functional as F
from torch import nn
from itersolve.optim import Adahessian

def rss():
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * 4096

def live_tensors():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return sum(1 for o in gc.get_objects() if isinstance(o, torch.Tensor))

torch.manual_seed(0)
model = nn.Sequential(nn.Linear(32, 32), nn.Tanh(), nn.Linear(32, 4)).double()
x = torch.randn(128, 32, dtype=torch.float64)
y = torch.randint(0, 4, (128,))
opt = Adahessian(model.parameters(), lr=0.01, seed=0)
kept = []

def step():
    if sys.argv[1] == "leak":  # positive control: retain a graph per step
        kept.append(model(x).sum())
    else:
        opt.step(lambda: F.cross_entropy(model(x), y))

for _ in range(100):
    step()
gc.collect()
tensors, before = live_tensors(), rss()
for _ in range(400):
    step()
gc.collect()
grads_detached = all(
    p.grad is None or p.grad.grad_fn is None for p in model.parameters()
)
print(rss() - before, live_tensors() - tensors, grads_detached)
"""


def _memory_growth(mode: str) -> tuple[int, int, bool]:
    out = subprocess.run(
        [sys.executable, "-c", _MEMORY_PROBE, mode],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return int(out[0]), int(out[1]), out[2] == "True"


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs /proc")
def test_memory_flat_over_500_steps() -> None:
    rss_growth, tensor_growth, detached = _memory_growth("adahessian")
    # a retained graph keeps >= 2 activations of 128 x 32 doubles (64 kB) alive
    # per step: > 25 MB over 400 steps (see test_rss_probe_detects_a_leak)
    assert rss_growth < 8 * 2**20
    assert tensor_growth == 0
    assert detached


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs /proc")
def test_rss_probe_detects_a_leak() -> None:
    """Positive control for the memory test: retained graphs do show up."""
    rss_growth, _, _ = _memory_growth("leak")
    assert rss_growth > 8 * 2**20


def test_closure_required_and_must_return_tensor() -> None:
    model = _conv_net()
    opt = Adahessian(model.parameters())
    with pytest.raises(RuntimeError, match="needs a closure"):
        opt.step()
    with pytest.raises(TypeError, match="must return the loss tensor"):
        opt.step(lambda: 1.0)  # type: ignore[arg-type, return-value]


def test_closure_that_calls_backward_gets_clear_error() -> None:
    x, y = _data()
    model = _conv_net()
    opt = Adahessian(model.parameters())

    def closure() -> torch.Tensor:
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        return loss

    with pytest.raises(RuntimeError, match="remove that call"):
        opt.step(closure)


def test_double_backward_unsupported_gets_clear_error() -> None:
    class Derivative(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):  # type: ignore[override]
            return 2 * x

        @staticmethod
        def backward(ctx, grad):  # type: ignore[override]
            raise RuntimeError("derivative of this fused kernel is not implemented")

    class NoDoubleBackward(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):  # type: ignore[override]
            ctx.save_for_backward(x)
            return x**2

        @staticmethod
        def backward(ctx, grad):  # type: ignore[override]
            (x,) = ctx.saved_tensors
            return Derivative.apply(x) * grad

    w = nn.Parameter(torch.ones(3, dtype=torch.float64))
    opt = Adahessian([w])
    with pytest.raises(RuntimeError, match="double backward"):
        opt.step(lambda: NoDoubleBackward.apply(w).sum())


def test_state_dict_round_trip_resumes_identically() -> None:
    x, y = _data()
    model = _conv_net()
    opt = Adahessian(model.parameters(), lr=0.05, seed=4, update_each=2)
    for _ in range(3):
        opt.step(lambda: F.cross_entropy(model(x), y))
    saved_model = copy.deepcopy(model.state_dict())
    saved_opt = copy.deepcopy(opt.state_dict())
    for _ in range(4):
        opt.step(lambda: F.cross_entropy(model(x), y))

    clone = _conv_net(seed=99)
    clone.load_state_dict(saved_model)
    opt2 = Adahessian(clone.parameters(), lr=0.05, seed=4, update_each=2)
    keys = set(saved_opt["state"])
    opt2.load_state_dict(saved_opt)
    assert set(saved_opt["state"]) == keys  # input not mutated
    for _ in range(4):
        opt2.step(lambda: F.cross_entropy(clone(x), y))
    for p, q in zip(model.parameters(), clone.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=0, atol=0)


def test_update_each_reuses_the_estimate() -> None:
    x, y = _data()
    model = _conv_net()
    opt = Adahessian(model.parameters(), update_each=3, seed=0)
    diags = []
    for _ in range(4):
        opt.step(lambda: F.cross_entropy(model(x), y))
        first = next(iter(model.parameters()))
        diags.append(opt.state[first]["hessian_diag"].clone())
    assert torch.equal(diags[0], diags[1]) and torch.equal(diags[1], diags[2])
    assert not torch.equal(diags[2], diags[3])


# -- the probe and averaging options against exact quantities ------------------


def _dense_hessian(n: int = 12) -> torch.Tensor:
    """A fixed symmetric indefinite H: a large mixed-sign diagonal, small
    off-diagonal couplings (so Gaussian and Rademacher variances differ ~10x)."""
    gen = torch.Generator().manual_seed(3)
    off = 0.3 * torch.randn(n, n, generator=gen, dtype=torch.float64)
    off = (off + off.T) / 2
    off.fill_diagonal_(0.0)
    sign = torch.tensor([1.0, -1.0, 1.0, 1.0] * (n // 4), dtype=torch.float64)
    return off + torch.diag(sign * torch.linspace(2.0, 4.0, n, dtype=torch.float64))


def _quadratic_loss(H: torch.Tensor, W: torch.Tensor):
    q = torch.linspace(-1.0, 1.0, H.shape[0], dtype=torch.float64)

    def loss() -> torch.Tensor:
        w = W.reshape(-1)
        return 0.5 * w @ H @ w + q @ w

    return loss


def _probe_variance(H: torch.Tensor, distribution: str) -> torch.Tensor:
    """Var(z_i (Hz)_i): sum_{j != i} H_ij^2, plus 2 H_ii^2 for Gaussian z
    (E z^4 = 3 against 1 for +-1 entries)."""
    diag = torch.diagonal(H)
    off = (H * H).sum(1) - diag**2
    return off + 2 * diag**2 if distribution == "gaussian" else off


@pytest.mark.parametrize("distribution", ["rademacher", "gaussian"])
def test_hutchinson_mean_and_variance_match_the_exact_hessian(
    distribution: str,
) -> None:
    H = _dense_hessian()
    W = torch.zeros(2, 6, dtype=torch.float64, requires_grad=True)
    loss = _quadratic_loss(H, W)
    gen = torch.Generator().manual_seed(0)
    batches, per_batch = 200, 50
    means = torch.stack([
        hutchinson_diagonal(loss, [W], n_samples=per_batch, generator=gen,
                            distribution=distribution)[0].reshape(-1)
        for _ in range(batches)
    ])  # fmt: skip
    variance = _probe_variance(H, distribution)
    total = batches * per_batch
    # unbiased: within 5 standard errors of the exact diagonal, per entry
    error = (means.mean(0) - torch.diagonal(H)).abs()
    assert bool((error <= 5 * (variance / total).sqrt()).all())
    # and the probes have the distribution's variance (+-40% is ~4 standard
    # deviations of a variance estimated from 200 batch means)
    ratio = means.var(0) * per_batch / variance
    assert bool(((ratio > 0.6) & (ratio < 1.4)).all()), ratio


@pytest.mark.parametrize("abs_mode", ["elementwise", "block"])
def test_block_averaging_equals_exact_block_means(abs_mode: str) -> None:
    """A separable loss has a diagonal Hessian, which Rademacher probes recover
    exactly: the optimizer's averaged diagonal and first step are exact."""
    rows = [[3.0, -1.0, 2.0, -6.0, 5.0, 1.0], [-2.0, -2.0, 4.0, 8.0, -3.0, 7.0]]
    c = torch.tensor(rows, dtype=torch.float64)
    d = torch.tensor([-1.5, 2.5], dtype=torch.float64)
    W = nn.Parameter(torch.ones(2, 6, dtype=torch.float64))
    bias = nn.Parameter(torch.ones(2, dtype=torch.float64))
    W0, b0 = W.detach().clone(), bias.detach().clone()
    opt = Adahessian([W, bias], lr=0.1, abs_mode=abs_mode, block_size=4, seed=2)
    opt.step(lambda: 0.5 * (c * W**2).sum() + 0.5 * (d * bias**2).sum())
    # blocks of 4 along each row, the trailing 2 entries a block of their own
    blocks = (slice(0, 4), slice(4, 6))
    expected = torch.empty_like(c)
    for cols in blocks:
        part = c[:, cols]
        mean = part.abs().mean(1) if abs_mode == "elementwise" else part.mean(1).abs()
        expected[:, cols] = mean[:, None]
    torch.testing.assert_close(opt.state[W]["hessian_diag"], expected, rtol=0, atol=0)
    torch.testing.assert_close(opt.state[bias]["hessian_diag"], d.abs(), rtol=0, atol=0)
    # step 1 with k = 1: m_hat = g and sqrt(v_hat) = D, so w <- w - lr g / (D + eps)
    for p, p0, g, D in ((W, W0, c * W0, expected), (bias, b0, d * b0, d.abs())):
        torch.testing.assert_close(p.detach(), p0 - 0.1 * g / (D + 1e-4))


def test_gaussian_probes_in_the_optimizer_average_to_the_block_means() -> None:
    """With many Gaussian probes the optimizer's block-mode diagonal is
    |block mean of diag(H)| of a dense H, within the Monte-Carlo error."""
    H = _dense_hessian()
    W = nn.Parameter(torch.zeros(2, 6, dtype=torch.float64))
    samples = 16000
    opt = Adahessian([W], abs_mode="block", block_size=3, distribution="gaussian",
                     n_samples=samples, seed=7)  # fmt: skip
    opt.step(_quadratic_loss(H, W))
    diag = torch.diagonal(H).reshape(2, 6)
    exact = diag.unflatten(1, (2, 3)).mean(2).abs().repeat_interleave(3, dim=1)
    # a block mean's standard error is at most the largest entry's
    bound = 5 * (_probe_variance(H, "gaussian").max() / samples).sqrt()
    assert float((opt.state[W]["hessian_diag"] - exact).abs().max()) <= float(bound)
    # the tolerance is below half the smallest block mean: a zero, halved or
    # doubled diagonal fails
    assert float(bound) < 0.5 * float(exact.min())
