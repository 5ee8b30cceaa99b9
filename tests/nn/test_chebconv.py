"""ChebConv: equals torch_geometric's ChebConv with copied weights (float64),
the scaled Laplacian's spectrum, gradients, bad input."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from itersolve.nn import ChebConv, chebyshev_laplacian

with warnings.catch_warnings():
    # torch_geometric's import runs torch.jit.script, which torch 2.9+ deprecates
    warnings.simplefilter("ignore", DeprecationWarning)
    from torch_geometric.nn import ChebConv as PygChebConv

F64 = torch.float64


def _graph(n: int = 25, e: int = 60, seed: int = 0, directed: bool = False):
    gen = torch.Generator().manual_seed(seed)
    edges = torch.randint(0, n, (2, e), generator=gen)
    return edges if directed else torch.cat([edges, edges.flip(0)], 1)


def _pair(in_ch: int, out_ch: int, K: int, seed: int = 0):
    torch.manual_seed(seed)
    theirs = PygChebConv(in_ch, out_ch, K).double()
    ours = ChebConv(in_ch, out_ch, K).double()
    with torch.no_grad():
        for k, lin in enumerate(theirs.lins):
            ours.weight[k].copy_(lin.weight.T)
        theirs.bias.copy_(torch.randn(out_ch, dtype=F64))
        ours.bias.copy_(theirs.bias)
    return ours, theirs


@pytest.mark.parametrize("K", [1, 2, 3, 10])
def test_matches_torch_geometric_with_copied_weights(K):
    n = 25
    edges = _graph(n)
    ours, theirs = _pair(3, 5, K)
    x = torch.randn(n, 3, dtype=F64, generator=torch.Generator().manual_seed(1))
    expected = theirs(x, edges)
    torch.testing.assert_close(
        ours(x, chebyshev_laplacian(edges, n)), expected, rtol=0, atol=1e-10
    )
    # an edge list is turned into the lambda_max = 2 Laplacian
    torch.testing.assert_close(ours(x, edges), expected, rtol=0, atol=1e-10)


def test_matches_torch_geometric_on_weighted_directed_graph_and_lambda():
    n = 20
    edges = _graph(n, 50, seed=2, directed=True)
    weight = torch.rand(50, generator=torch.Generator().manual_seed(3)) + 0.1
    ours, theirs = _pair(2, 4, 4, seed=5)
    x = torch.randn(n, 2, dtype=F64, generator=torch.Generator().manual_seed(4))
    lap = chebyshev_laplacian(edges, n, edge_weight=weight, lambda_max=1.5)
    expected = theirs(x, edges, weight.double(), lambda_max=1.5)
    torch.testing.assert_close(ours(x, lap), expected, rtol=0, atol=1e-10)


def test_estimated_lambda_puts_the_spectrum_on_minus_one_one():
    n = 30
    edges = _graph(n, 80, seed=6)
    scaled = chebyshev_laplacian(edges, n, lambda_max="estimate").to_dense()
    eig = np.linalg.eigvalsh(scaled.numpy())
    assert eig[-1] == pytest.approx(1.0, abs=1e-10)
    assert eig[0] >= -1.0 - 1e-10
    safe = np.linalg.eigvalsh(chebyshev_laplacian(edges, n).to_dense().numpy())
    assert safe[0] >= -1.0 - 1e-12 and safe[-1] <= 1.0 + 1e-12
    # the sparse eigensolver path agrees with the dense one
    big = 700
    path = np.stack([np.arange(big - 1), np.arange(1, big)])
    path = np.concatenate([path, path[::-1]], 1)
    top = chebyshev_laplacian(path, big, lambda_max="estimate").to_dense()
    assert float(torch.linalg.eigvalsh(top)[-1]) == pytest.approx(1.0, abs=1e-8)


def test_gradients_reach_weights_and_inputs():
    n = 12
    edges = _graph(n, 30, seed=7)
    conv = ChebConv(2, 3, K=4).double()
    x = torch.randn(n, 2, dtype=F64, requires_grad=True)
    conv(x, chebyshev_laplacian(edges, n)).square().sum().backward()
    assert x.grad is not None and conv.weight.grad is not None
    assert conv.bias is not None and conv.bias.grad is not None
    assert float(conv.weight.grad[3].abs().sum()) > 0
    assert ChebConv(2, 3, K=2, bias=False).bias is None
    # float32 input: the Laplacian is cast to it
    assert conv.float()(x.detach().float(), chebyshev_laplacian(edges, n)).dtype == (
        torch.float32
    )


def test_bad_input():
    with pytest.raises(ValueError, match="K must"):
        ChebConv(2, 3, K=0)
    with pytest.raises(ValueError, match="in_channels"):
        ChebConv(0, 3, K=2)
    conv = ChebConv(2, 3, K=2).double()
    edges = _graph(5, 6)
    with pytest.raises(ValueError, match=r"x must have shape \(N, 2\)"):
        conv(torch.zeros(5, 3, dtype=F64), edges)
    with pytest.raises(ValueError, match="laplacian must have shape"):
        conv(torch.zeros(4, 2, dtype=F64), chebyshev_laplacian(edges, 5))
    with pytest.raises(ValueError, match="edge_index entries"):
        chebyshev_laplacian(edges, 3)
    with pytest.raises(ValueError, match=r"shape \(2, E\)"):
        chebyshev_laplacian(torch.zeros(3, 4, dtype=torch.long), 5)
    with pytest.raises(TypeError, match="integers"):
        chebyshev_laplacian(torch.zeros(2, 4), 5)
    with pytest.raises(ValueError, match="lambda_max"):
        chebyshev_laplacian(edges, 5, lambda_max=-1.0)
    with pytest.raises(ValueError, match="edge_weight"):
        chebyshev_laplacian(edges, 5, edge_weight=np.zeros(edges.shape[1]))
    with pytest.raises(ValueError, match="num_nodes"):
        chebyshev_laplacian(edges, 0)
