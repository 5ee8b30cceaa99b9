"""Block soft-thresholding, the prox of ``t sum_g ||x_g||`` over the last axis."""

from __future__ import annotations

import torch


def group_soft_threshold(x: torch.Tensor, t: float) -> torch.Tensor:
    """``x_g max(0, 1 - t / ||x_g||)`` for every group ``x_g = x[..., :]``.

    >>> import torch
    >>> group_soft_threshold(torch.tensor([[3.0, 4.0], [0.3, 0.4]]), 1.0)
    tensor([[2.4000, 3.2000],
            [0.0000, 0.0000]])
    """
    norms = torch.linalg.vector_norm(x, dim=-1, keepdim=True)
    scale = torch.clamp(1.0 - t / torch.clamp(norms, min=torch.finfo(x.dtype).tiny), 0)
    return x * scale
