"""M-FAC: static inverse Fisher vs dense solves, sliding window vs rebuild, OBS."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from itersolve.optim import MFAC, InverseFisher, obs_prune
from itersolve.optim._inverse_fisher import full_precision_matmul


def _grads(m: int, d: int, seed: int = 0, dtype=torch.float64) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    scales = torch.logspace(-2, 1, d, dtype=torch.float64)
    return (torch.randn(m, d, generator=gen, dtype=torch.float64) * scales).to(dtype)


def _dense(grads: torch.Tensor, damping: float) -> torch.Tensor:
    g = grads.to(torch.float64)
    m, d = g.shape
    return damping * torch.eye(d, dtype=torch.float64) + g.T @ g / m


@pytest.mark.parametrize("damping", [1e-4, 1e-2, 1.0])
def test_matvec_matches_dense_woodbury_solve(damping: float) -> None:
    grads = _grads(32, 1000)
    x = torch.randn(
        1000, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1)
    )
    fisher = InverseFisher(grads, damping)
    expected = torch.linalg.solve(_dense(grads, damping), x)
    got = fisher.matvec(x)
    rel = torch.linalg.norm(got - expected) / torch.linalg.norm(expected)
    assert rel < 1e-8
    torch.testing.assert_close(fisher.matvec(x[:, 0]), got[:, 0])


def test_diagonal_matches_dense_inverse() -> None:
    grads = _grads(16, 300)
    inverse = torch.linalg.inv(_dense(grads, 1e-3))
    diag = InverseFisher(grads, 1e-3).diagonal()
    rel = (diag - inverse.diagonal()).abs().max() / inverse.diagonal().abs().max()
    assert rel < 1e-8


@pytest.mark.parametrize("blocksize", [1, 7, 50, 64])
def test_blocked_variant_matches_block_diagonal_solve(blocksize: int) -> None:
    grads = _grads(8, 130, seed=3)
    x = torch.randn(
        130, dtype=torch.float64, generator=torch.Generator().manual_seed(2)
    )
    fisher = InverseFisher(grads, 1e-2, blocksize=blocksize)
    expected = torch.empty_like(x)
    diag = torch.empty_like(x)
    for start in range(0, 130, blocksize):
        sl = slice(start, min(start + blocksize, 130))
        block = _dense(grads[:, sl], 1e-2)
        expected[sl] = torch.linalg.solve(block, x[sl])
        diag[sl] = torch.linalg.inv(block).diagonal()
    torch.testing.assert_close(fisher.matvec(x), expected, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(fisher.diagonal(), diag, rtol=1e-9, atol=1e-9)
    blocks = fisher.block_inverses()
    assert blocks.shape == (fisher.num_blocks, fisher.blocksize, fisher.blocksize)


def test_float32_grads_keep_dtype_and_accuracy() -> None:
    grads = _grads(16, 200, dtype=torch.float32)
    x = torch.randn(200, generator=torch.Generator().manual_seed(0))
    got = InverseFisher(grads, 1e-2).matvec(x)
    assert got.dtype == torch.float32
    expected = torch.linalg.solve(_dense(grads, 1e-2), x.double())
    assert (
        torch.linalg.norm(got.double() - expected) / torch.linalg.norm(expected) < 1e-5
    )


def test_inputs_not_mutated_and_errors() -> None:
    grads = _grads(4, 10)
    before = grads.clone()
    InverseFisher(grads, 0.1, blocksize=3).matvec(torch.ones(10, dtype=torch.float64))
    assert torch.equal(grads, before)
    with pytest.raises(ValueError, match="damping must be a finite number > 0, got 0"):
        InverseFisher(grads, 0.0)
    with pytest.raises(ValueError, match=r"m x d matrix.*got shape \(10,\)"):
        InverseFisher(grads[0], 0.1)
    with pytest.raises(ValueError, match="NaN"):
        InverseFisher(grads * float("nan"), 0.1)
    with pytest.raises(ValueError, match="blocksize must be >= 1, got 0"):
        InverseFisher(grads, 0.1, blocksize=0)
    with pytest.raises(ValueError, match=r"x must have shape \(10,\)"):
        InverseFisher(grads, 0.1).matvec(torch.ones(9))


def test_tf32_disabled_inside_and_restored() -> None:
    matmul = torch.backends.cuda.matmul
    before = matmul.fp32_precision
    matmul.fp32_precision = "tf32"
    try:
        with full_precision_matmul():
            assert matmul.fp32_precision == "ieee"
            assert torch.backends.cudnn.fp32_precision == "ieee"
            assert not matmul.allow_tf32
        assert matmul.fp32_precision == "tf32"
    finally:
        matmul.fp32_precision = before


# -- dynamic optimizer ------------------------------------------------------------


def _linear_problem(seed: int = 0):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(6, 5), nn.Tanh(), nn.Linear(5, 2)).double()
    gen = torch.Generator().manual_seed(seed + 1)
    x = torch.randn(40, 6, generator=gen, dtype=torch.float64)
    y = torch.randn(40, 2, generator=gen, dtype=torch.float64)
    return model, x, y


def _flat(model: nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


def test_ring_buffer_equals_rebuild_from_scratch() -> None:
    model, x, y = _linear_problem()
    m, lam = 4, 1e-3
    opt = MFAC(model.parameters(), lr=1e-3, damping=lam, ngrads=m)
    history = []
    for step in range(11):  # wraps around the window twice
        opt.zero_grad()
        idx = slice(4 * step % 40, 4 * step % 40 + 8)
        nn.functional.mse_loss(model(x[idx]), y[idx]).backward()
        g = torch.cat([p.grad.reshape(-1) for p in model.parameters()])
        history.append(g.clone())
        before = _flat(model)
        opt.step()
        window = torch.zeros(m, g.numel(), dtype=torch.float64)
        recent = history[-m:]
        for i, row in enumerate(recent):  # slot of gradient k is k mod m
            window[(len(history) - len(recent) + i) % m] = row
        expected = InverseFisher(window, lam).matvec(g)
        torch.testing.assert_close((before - _flat(model)) / 1e-3, expected)
        state = opt.state["mfac"]
        torch.testing.assert_close(state["grad_buffer"], window)
        torch.testing.assert_close(state["gram"], window @ window.T)


def test_weight_decay_modes_and_momentum() -> None:
    model, x, y = _linear_problem()
    lam, lr, wd, mu = 1e-2, 1e-2, 0.1, 0.5
    coupled = copy.deepcopy(model)
    decoupled = copy.deepcopy(model)
    a = MFAC(
        coupled.parameters(), lr=lr, damping=lam, ngrads=3, weight_decay=wd, momentum=mu
    )
    b = MFAC(
        decoupled.parameters(),
        lr=lr,
        damping=lam,
        ngrads=3,
        weight_decay=wd,
        weight_decay_mode="decoupled",
    )
    w0 = _flat(model)
    for net, opt in ((coupled, a), (decoupled, b)):
        opt.zero_grad()
        nn.functional.mse_loss(net(x), y).backward()
    g = torch.cat([p.grad.reshape(-1) for p in coupled.parameters()])
    a.step()
    b.step()
    gc = (g + wd * w0).unsqueeze(0)
    expected_a = w0 - lr * (1 - mu) * InverseFisher(
        torch.cat([gc, torch.zeros(2, g.numel(), dtype=torch.float64)]), lam
    ).matvec(gc[0])
    torch.testing.assert_close(_flat(coupled), expected_a)
    window = torch.cat([g.unsqueeze(0), torch.zeros(2, g.numel(), dtype=torch.float64)])
    expected_b = w0 * (1 - lr * wd) - lr * InverseFisher(window, lam).matvec(g)
    torch.testing.assert_close(_flat(decoupled), expected_b)


def test_state_dict_round_trip_saves_ring_buffer() -> None:
    model, x, y = _linear_problem()
    opt = MFAC(model.parameters(), lr=1e-2, damping=1e-2, ngrads=3, momentum=0.3)

    def closure(net):
        def run():
            opt_ = optimizers[net]
            opt_.zero_grad()
            loss = nn.functional.mse_loss(net(x), y)
            loss.backward()
            return loss

        return run

    optimizers = {model: opt}
    for _ in range(4):
        opt.step(closure(model))
    clone = copy.deepcopy(model)
    saved = copy.deepcopy(opt.state_dict())
    opt2 = MFAC(clone.parameters(), lr=1e-2, damping=1e-2, ngrads=3, momentum=0.3)
    opt2.load_state_dict(saved)
    optimizers[clone] = opt2
    assert (
        opt2.state["mfac"]["grad_buffer"] is not saved["state"]["mfac"]["grad_buffer"]
    )
    assert opt2.state["mfac"]["gram"].dtype == torch.float64
    for _ in range(3):
        opt.step(closure(model))
        opt2.step(closure(clone))
    torch.testing.assert_close(_flat(model), _flat(clone), rtol=0, atol=0)
    with pytest.raises(ValueError, match="saved M-FAC window has shape"):
        MFAC(clone.parameters(), ngrads=5).load_state_dict(saved)


def test_mixed_dtypes_rejected() -> None:
    a = nn.Parameter(torch.ones(2))
    b = nn.Parameter(torch.ones(2, dtype=torch.float64))
    a.grad, b.grad = torch.ones(2), torch.ones(2, dtype=torch.float64)
    with pytest.raises(TypeError, match="one device with one dtype"):
        MFAC([a, b]).step()


# -- OBS pruning --------------------------------------------------------------------


def test_single_weight_obs_matches_closed_form() -> None:
    grads = _grads(6, 5, seed=4)
    w = torch.tensor([0.5, -2.0, 0.05, 1.0, 3.0], dtype=torch.float64)
    inverse = torch.linalg.inv(_dense(grads, 0.1))
    scores = w**2 / (2 * inverse.diagonal())
    q = int(scores.argmin())
    expected = w - w[q] / inverse[q, q] * inverse[:, q]
    pruned, mask = obs_prune(w, grads, 0.2, blocksize=5, damping=0.1)
    assert mask.tolist() == [i != q for i in range(5)]
    torch.testing.assert_close(pruned, expected.masked_fill(~mask, 0.0))
    assert pruned[q] == 0


def test_sequential_obs_is_optimal_for_the_quadratic_model() -> None:
    """Removing k weights by OBS gives the minimiser of the quadratic model
    0.5 dw^T F dw subject to the removed entries being zero, when the removed set
    is the one OBS chose (checked against an equality-constrained solve)."""
    grads = _grads(10, 12, seed=5)
    w = torch.randn(12, dtype=torch.float64, generator=torch.Generator().manual_seed(6))
    fisher = _dense(grads, 0.05)
    pruned, mask = obs_prune(w, grads, 0.5, blocksize=12, damping=0.05)
    removed = (~mask).nonzero().squeeze(1)
    keep = mask.nonzero().squeeze(1)
    # minimise (w' - w)^T F (w' - w) with w'[removed] = 0: w'[keep] solves
    # F_kk (w'_k - w_k) = F_kr w_r
    rhs = fisher[keep][:, removed] @ w[removed]
    expected_keep = w[keep] + torch.linalg.solve(fisher[keep][:, keep], rhs)
    torch.testing.assert_close(pruned[keep], expected_keep, rtol=1e-8, atol=1e-10)
    assert int((~mask).sum()) == 6


def test_prune_sparsity_and_errors() -> None:
    grads = _grads(8, 300, seed=7)
    w = torch.randn(
        300, dtype=torch.float64, generator=torch.Generator().manual_seed(8)
    )
    for sparsity in (0.0, 0.7, 1.0):
        pruned, mask = obs_prune(w, grads, sparsity, blocksize=64, damping=1e-3)
        assert int((~mask).sum()) == round(sparsity * 300)
        assert torch.all(pruned[~mask] == 0)
    with pytest.raises(ValueError, match="sparsity must be in"):
        obs_prune(w, grads, 1.5)
    with pytest.raises(ValueError, match="grads has 300 columns but weights has 299"):
        obs_prune(w[:-1], grads, 0.5)


# -- paged window -------------------------------------------------------------------


def _train_mfac(opt: MFAC, model: nn.Module, x, y, steps: int) -> None:
    for step in range(steps):
        opt.zero_grad()
        idx = slice(4 * step % 40, 4 * step % 40 + 8)
        nn.functional.mse_loss(model(x[idx]), y[idx]).backward()
        opt.step()


@pytest.mark.parametrize(
    ("page_size", "offload"),
    [(7, None), (7, "cpu"), (7, "file"), (1, "file"), (100, "file"), (4, "cpu")],
)
def test_paged_window_equals_dense_window(page_size, offload, tmp_path) -> None:
    model, x, y = _linear_problem()  # d = 47: page 7 leaves a short last page
    paged_model = copy.deepcopy(model)
    kwargs = dict(lr=1e-2, damping=1e-3, ngrads=4, momentum=0.3)
    dense = MFAC(model.parameters(), **kwargs)
    paged = MFAC(
        paged_model.parameters(),
        **kwargs,
        page_size=page_size,
        offload=offload,
        offload_dir=tmp_path if offload == "file" else None,
    )
    _train_mfac(dense, model, x, y, 11)  # wraps around the window twice
    _train_mfac(paged, paged_model, x, y, 11)
    torch.testing.assert_close(_flat(paged_model), _flat(model), rtol=0, atol=1e-10)
    saved = paged.state_dict()["state"]["mfac"]
    torch.testing.assert_close(
        saved["grad_buffer"], dense.state["mfac"]["grad_buffer"], rtol=0, atol=1e-12
    )
    assert "grad_pages" not in saved
    assert "grad_buffer" not in paged.state["mfac"]
    if offload == "file":
        assert list(tmp_path.iterdir()) == []  # anonymous file: nothing left behind


def test_paged_and_dense_checkpoints_load_into_each_other() -> None:
    model, x, y = _linear_problem()
    kwargs = dict(lr=1e-2, damping=1e-3, ngrads=3)
    dense = MFAC(model.parameters(), **kwargs)
    _train_mfac(dense, model, x, y, 5)
    saved = copy.deepcopy(dense.state_dict())
    paged_model = copy.deepcopy(model)
    paged = MFAC(paged_model.parameters(), **kwargs, page_size=10, offload="file")
    paged.load_state_dict(saved)
    _train_mfac(dense, model, x, y, 4)
    _train_mfac(paged, paged_model, x, y, 4)
    torch.testing.assert_close(_flat(paged_model), _flat(model), rtol=0, atol=1e-10)
    # and back: the paged checkpoint restores a dense optimizer
    back_model = copy.deepcopy(paged_model)
    back = MFAC(back_model.parameters(), **kwargs)
    back.load_state_dict(copy.deepcopy(paged.state_dict()))
    _train_mfac(back, back_model, x, y, 2)
    _train_mfac(paged, paged_model, x, y, 2)
    torch.testing.assert_close(
        _flat(back_model), _flat(paged_model), rtol=0, atol=1e-10
    )


def test_paging_arguments_checked() -> None:
    params = [nn.Parameter(torch.zeros(3))]
    with pytest.raises(ValueError, match="page_size"):
        MFAC(params, page_size=0)
    with pytest.raises(TypeError, match="page_size"):
        MFAC(params, page_size=2.0)
    with pytest.raises(ValueError, match="offload"):
        MFAC(params, page_size=2, offload="disk")
    with pytest.raises(ValueError, match="needs a page_size"):
        MFAC(params, offload="cpu")
    with pytest.raises(ValueError, match="offload_dir"):
        MFAC(params, page_size=2, offload="cpu", offload_dir="/tmp")


@pytest.mark.gpu
@pytest.mark.parametrize("offload", ["cpu", "file"])
def test_offloaded_window_on_cuda_holds_one_page(offload) -> None:
    device, dtype, s = torch.device("cuda"), torch.float64, 8
    d, m, page = 1 << 20, 16, 1 << 14
    gen = torch.Generator(device=device).manual_seed(0)
    dense_p = nn.Parameter(torch.zeros(d, device=device, dtype=dtype))
    paged_p = nn.Parameter(torch.zeros(d, device=device, dtype=dtype))
    kwargs = dict(lr=1e-3, damping=1e-2, ngrads=m)
    dense = MFAC([dense_p], **kwargs)
    paged = MFAC([paged_p], **kwargs, page_size=page, offload=offload)
    grads = [
        torch.randn(d, device=device, dtype=dtype, generator=gen) for _ in range(3)
    ]
    for g in grads:
        dense_p.grad = g.clone()
        dense.step()
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    before = torch.cuda.memory_allocated()
    for g in grads:
        paged_p.grad = g.clone()
        paged.step()
    peak = torch.cuda.max_memory_allocated() - before
    torch.testing.assert_close(paged_p, dense_p, rtol=0, atol=1e-10)
    # on the device: one staged page and a few d-vectors, never the m x d window
    assert peak < 6 * s * d + 2 * m * page * s
    assert peak < m * d * s / 2
