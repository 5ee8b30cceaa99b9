"""Chebyshev spectral graph convolution (Defferrard et al.), plain torch."""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from itersolve._core.operators import _torch_csr_from_scipy


def _edge_index(edge_index: Any, num_nodes: int) -> np.ndarray:
    if isinstance(edge_index, torch.Tensor):
        edge_index = edge_index.detach().cpu().numpy()
    edges = np.asarray(edge_index)
    if not np.issubdtype(edges.dtype, np.integer):
        raise TypeError(f"edge_index must hold integers, got {edges.dtype}")
    if edges.ndim != 2 or edges.shape[0] != 2:
        raise ValueError(f"edge_index must have shape (2, E), got {edges.shape}")
    if edges.size and (edges.min() < 0 or edges.max() >= num_nodes):
        raise ValueError(
            f"edge_index entries must be in [0, {num_nodes}) (num_nodes), got "
            f"range [{edges.min()}, {edges.max()}]"
        )
    return edges.astype(np.int64)


def chebyshev_laplacian(
    edge_index: Any,
    num_nodes: int,
    *,
    edge_weight: Any = None,
    lambda_max: float | str = 2.0,
) -> torch.Tensor:
    """The scaled normalised Laplacian ``2 L / lambda_max - I`` of a graph.

    ``L = I - D^{-1/2} A D^{-1/2}`` with ``A[j, i] = w`` for an edge
    ``i -> j`` (row ``edge_index[0]`` the source, as in torch_geometric's
    message passing), degrees summed over the sources, self loops dropped
    and isolated nodes given ``L_ii = 1``: the operator torch_geometric's
    ``ChebConv(normalization="sym")`` applies. The spectrum of ``L`` lies in
    ``[0, 2]``, so ``lambda_max = 2`` is always safe; ``"estimate"``
    computes the largest eigenvalue of ``L`` (symmetrised) instead, which
    spreads the spectrum of the scaled operator over all of ``[-1, 1]``.

    Parameters
    ----------
    edge_index
        ``(2, E)`` integer array of directed edges (list both directions for
        an undirected graph).
    num_nodes
        Number of nodes ``N``.
    edge_weight
        ``(E,)`` positive weights (default 1).
    lambda_max
        A positive number, or ``"estimate"``.

    Returns
    -------
    torch.Tensor
        ``(N, N)`` float64 sparse CSR tensor (self loops on the diagonal).

    Examples
    --------
    >>> import torch
    >>> path = torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]])
    >>> chebyshev_laplacian(path, 3).to_dense()[0].tolist()
    [0.0, -0.7071067811865475, 0.0]
    """
    if (
        isinstance(num_nodes, bool)
        or not isinstance(num_nodes, int | np.integer)
        or num_nodes < 1
    ):
        raise ValueError(f"num_nodes must be an int >= 1, got {num_nodes!r}")
    num_nodes = int(num_nodes)
    edges = _edge_index(edge_index, num_nodes)
    if edge_weight is None:
        weights = np.ones(edges.shape[1])
    else:
        weights = np.asarray(
            edge_weight.detach().cpu().numpy()
            if isinstance(edge_weight, torch.Tensor)
            else edge_weight,
            dtype=np.float64,
        )
        if weights.shape != (edges.shape[1],):
            raise ValueError(
                f"edge_weight must have shape ({edges.shape[1]},), got {weights.shape}"
            )
        if not np.all(np.isfinite(weights) & (weights > 0)):
            raise ValueError("edge_weight must be finite and > 0")
    keep = edges[0] != edges[1]
    source, target, weights = edges[0][keep], edges[1][keep], weights[keep]
    degree = np.bincount(source, weights, minlength=num_nodes)
    with np.errstate(divide="ignore"):
        scale = np.where(degree > 0, 1.0 / np.sqrt(degree), 0.0)
    adjacency = sp.coo_matrix(
        (scale[source] * weights * scale[target], (target, source)),
        shape=(num_nodes, num_nodes),
    ).tocsr()
    laplacian = sp.identity(num_nodes, format="csr") - adjacency
    if lambda_max == "estimate":
        lam = _largest_eigenvalue(laplacian)
    elif (
        isinstance(lambda_max, bool)
        or not isinstance(lambda_max, int | float)
        or not (math.isfinite(lambda_max) and lambda_max > 0)
    ):
        raise ValueError(
            f"lambda_max must be a finite number > 0 or 'estimate', got {lambda_max!r}"
        )
    else:
        lam = float(lambda_max)
    scaled = (2.0 / lam) * laplacian - sp.identity(num_nodes, format="csr")
    return _torch_csr_from_scipy(scaled, torch.float64, None)


def _largest_eigenvalue(laplacian: sp.csr_matrix) -> float:
    symmetric = 0.5 * (laplacian + laplacian.T)
    n = symmetric.shape[0]
    if n <= 500:
        return float(np.linalg.eigvalsh(symmetric.toarray())[-1])
    from scipy.sparse.linalg import eigsh

    # a fixed start vector keeps the estimate reproducible
    start = np.ones(n) + np.linspace(0.0, 1.0, n)
    value = eigsh(symmetric, k=1, which="LA", v0=start, tol=1e-10)[0]
    return float(value[0])


class ChebConv(nn.Module):
    """Chebyshev spectral graph convolution ``sum_k T_k(L_hat) X Theta_k + b``.

    ``T_0 = X``, ``T_1 = L_hat X``, ``T_k = 2 L_hat T_{k-1} - T_{k-2}`` for
    ``k < K`` (``K`` terms, a polynomial filter of degree ``K - 1``, so
    ``K - 1``-hop receptive field), ``L_hat`` the scaled normalised Laplacian
    from :func:`chebyshev_laplacian`. Equivalent to torch_geometric's
    ``ChebConv(in_channels, out_channels, K)`` (same weights layout, Glorot
    initialisation and zero bias) without needing torch_geometric. Reference:
    Defferrard, Bresson & Vandergheynst, "Convolutional neural networks on
    graphs with fast localized spectral filtering", NeurIPS 2016.

    Parameters
    ----------
    in_channels, out_channels
        Feature sizes.
    K
        Number of Chebyshev terms, ``>= 1``.
    bias
        Learn an additive bias.

    Examples
    --------
    >>> import torch
    >>> _ = torch.manual_seed(0)
    >>> conv = ChebConv(2, 4, K=3).double()
    >>> ring = torch.tensor([[0, 1, 2, 1, 2, 0], [1, 2, 0, 0, 1, 2]])
    >>> lap = chebyshev_laplacian(ring, 3)
    >>> conv(torch.ones(3, 2, dtype=torch.float64), lap).shape
    torch.Size([3, 4])
    """

    def __init__(
        self, in_channels: int, out_channels: int, K: int, *, bias: bool = True
    ) -> None:
        super().__init__()
        for name, value in (
            ("in_channels", in_channels),
            ("out_channels", out_channels),
            ("K", K),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.K = K
        self.weight = nn.Parameter(torch.empty(K, in_channels, out_channels))
        self.bias = nn.Parameter(torch.empty(out_channels)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Glorot-uniform weights for each ``Theta_k``, zero bias."""
        bound = math.sqrt(6.0 / (self.in_channels + self.out_channels))
        with torch.no_grad():
            self.weight.uniform_(-bound, bound)
            if self.bias is not None:
                self.bias.zero_()

    def forward(self, x: torch.Tensor, laplacian: torch.Tensor) -> torch.Tensor:
        """``x`` of shape ``(N, in_channels)``; ``laplacian`` the ``(N, N)``
        scaled Laplacian (sparse or dense; cast to ``x``'s dtype) or a
        ``(2, E)`` integer edge list (then ``lambda_max = 2``)."""
        if x.ndim != 2 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"x must have shape (N, {self.in_channels}), got {tuple(x.shape)}"
            )
        n = x.shape[0]
        if not laplacian.is_floating_point():
            laplacian = chebyshev_laplacian(laplacian, n)
        if laplacian.shape != (n, n):
            raise ValueError(
                f"laplacian must have shape ({n}, {n}), got {tuple(laplacian.shape)}"
            )
        if laplacian.dtype != x.dtype or laplacian.device != x.device:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", "Sparse CSR tensor support")
                laplacian = laplacian.to(dtype=x.dtype, device=x.device)
        previous, current = x, x
        out = x @ self.weight[0]
        for k in range(1, self.K):
            following = laplacian @ current
            if k > 1:
                following = 2.0 * following - previous
            out = out + following @ self.weight[k]
            previous, current = current, following
        if self.bias is not None:
            out = out + self.bias
        return out

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, K={self.K}"
