"""Hutchinson diagonal vs the exact Hessian diagonal; spatial averaging by rank."""

from __future__ import annotations

import pytest
import torch

from itersolve.optim import hutchinson_diagonal, spatial_average


def _quadratic(n: int = 5, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    a = torch.randn(n, n, generator=gen, dtype=torch.float64)
    hessian = a @ a.T + torch.diag(torch.arange(1.0, n + 1, dtype=torch.float64))
    x = torch.randn(n, generator=gen, dtype=torch.float64, requires_grad=True)
    return hessian, x


@pytest.mark.parametrize("distribution", ["rademacher", "gaussian"])
def test_mean_of_many_probes_matches_exact_diagonal(distribution: str) -> None:
    hessian, x = _quadratic()
    gen = torch.Generator().manual_seed(1)
    n_samples = 4000
    (estimate,) = hutchinson_diagonal(
        lambda: 0.5 * x @ hessian @ x + torch.sin(x).sum() * 0,
        [x],
        n_samples=n_samples,
        generator=gen,
        distribution=distribution,
    )
    exact = torch.diagonal(hessian)
    # per-probe variance of z_i (Hz)_i: sum_{j != i} H_ij^2 (Rademacher),
    # H_ii^2 + sum_j H_ij^2 (Gaussian); 5 standard errors.
    off = hessian.square().sum(dim=1) - exact.square()
    var = off if distribution == "rademacher" else off + 2 * exact.square()
    tolerance = 5 * torch.sqrt(var / n_samples)
    assert torch.all((estimate - exact).abs() <= tolerance), (estimate, exact)
    # a constant-sign probe (all +1) would return the row sums instead:
    row_sums = hessian.sum(dim=1)
    assert torch.any((row_sums - exact).abs() > 3 * tolerance)


def test_rademacher_exact_for_diagonal_hessian_and_nonquadratic() -> None:
    x = torch.tensor([0.3, -1.2, 2.0], dtype=torch.float64, requires_grad=True)
    (estimate,) = hutchinson_diagonal(lambda: torch.exp(x).sum() + (x**4).sum(), [x])
    exact = torch.exp(x.detach()) + 12 * x.detach() ** 2
    torch.testing.assert_close(estimate, exact)


def test_several_parameter_tensors_and_unused_parameter() -> None:
    w = torch.tensor([1.0, 2.0], requires_grad=True)
    b = torch.tensor(0.5, requires_grad=True)
    unused = torch.ones(3, requires_grad=True)
    dw, db, du = hutchinson_diagonal(
        lambda: (w**3).sum() + 4 * b**2, [w, b, unused], generator=None
    )
    torch.testing.assert_close(dw, 6 * w.detach())
    torch.testing.assert_close(db, torch.tensor(8.0))
    torch.testing.assert_close(du, torch.zeros(3))


def test_seeded_generator_reproducible_and_graph_released() -> None:
    hessian, x = _quadratic()

    def run(seed: int) -> torch.Tensor:
        gen = torch.Generator().manual_seed(seed)
        return hutchinson_diagonal(lambda: 0.5 * x @ hessian @ x, [x], 3, gen)[0]

    torch.testing.assert_close(run(7), run(7))
    assert not torch.equal(run(7), run(8))
    assert x.grad is None


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"n_samples": 0}, ValueError, "n_samples must be an integer >= 1, got 0"),
        ({"n_samples": 1.5}, ValueError, "n_samples"),
        ({"distribution": "uniform"}, ValueError, "distribution must be one of"),
    ],
)
def test_bad_arguments(kwargs: dict, error: type, match: str) -> None:
    x = torch.ones(2, requires_grad=True)
    with pytest.raises(error, match=match):
        hutchinson_diagonal(lambda: (x**2).sum(), [x], **kwargs)


def test_bad_loss_and_params() -> None:
    x = torch.ones(2, requires_grad=True)
    with pytest.raises(ValueError, match="scalar"):
        hutchinson_diagonal(lambda: x**2, [x])
    with pytest.raises(ValueError, match="requires_grad is False"):
        hutchinson_diagonal(lambda: (x**2).sum().detach(), [x])
    with pytest.raises(ValueError, match=r"params\[0\]"):
        hutchinson_diagonal(lambda: (x**2).sum(), [torch.ones(2)])
    with pytest.raises(TypeError, match=r"torch\.Tensor"):
        hutchinson_diagonal(lambda: 1.0, [x])  # type: ignore[arg-type, return-value]


# -- spatial averaging ----------------------------------------------------------


def test_rank0_rank1_untouched_up_to_abs() -> None:
    for d in (torch.tensor(-2.0), torch.tensor([1.0, -3.0, 2.0])):
        torch.testing.assert_close(spatial_average(d), d.abs())
        torch.testing.assert_close(spatial_average(d, abs_mode="block"), d.abs())


@pytest.mark.parametrize("rank", [3, 4, 5])
def test_conv_kernels_average_over_spatial_dims(rank: int) -> None:
    gen = torch.Generator().manual_seed(rank)
    shape = (3, 2, *([3] * (rank - 2)))
    d = torch.randn(shape, generator=gen, dtype=torch.float64)
    spatial = tuple(range(2, rank))
    elementwise = spatial_average(d)
    block = spatial_average(d, abs_mode="block")
    assert elementwise.shape == block.shape == d.shape
    expected_e = d.abs().mean(dim=spatial, keepdim=True).expand(shape)
    expected_b = d.mean(dim=spatial, keepdim=True).abs().expand(shape)
    torch.testing.assert_close(elementwise, expected_e)
    torch.testing.assert_close(block, expected_b)
    assert torch.all(elementwise >= block - 1e-15)


def test_matrix_blocks_with_partial_tail_and_whole_row() -> None:
    d = torch.tensor([[1.0, -1.0, 2.0, 4.0, -6.0]])
    torch.testing.assert_close(spatial_average(d), d.abs())
    torch.testing.assert_close(
        spatial_average(d, block_size=2), torch.tensor([[1.0, 1.0, 3.0, 3.0, 6.0]])
    )
    torch.testing.assert_close(
        spatial_average(d, abs_mode="block", block_size=2),
        torch.tensor([[0.0, 0.0, 3.0, 3.0, 6.0]]),
    )
    torch.testing.assert_close(
        spatial_average(d, block_size=-1), torch.full((1, 5), 14.0 / 5)
    )


def test_rank6_and_bad_mode_rejected() -> None:
    with pytest.raises(ValueError, match="rank 0 to 5, got rank 6"):
        spatial_average(torch.ones((1,) * 6))
    with pytest.raises(ValueError, match="abs_mode must be one of"):
        spatial_average(torch.ones(2), abs_mode="signed")
