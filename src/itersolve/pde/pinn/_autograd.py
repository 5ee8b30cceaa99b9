"""Pointwise input derivatives shared by the models and the problems' residuals."""

from __future__ import annotations

import torch


def _grad(y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``dy/dx`` pointwise; zero where ``y`` does not depend on ``x`` (an
    exact branch linear in ``x`` has a constant first derivative).

    Pointwise means ``y[k]`` depends on ``x[k]`` only, for any shape (a
    batch of ensemble members included): the gradient of ``y.sum()`` then
    holds every ``dy[k]/dx[k]``.
    """
    if not y.requires_grad:
        return torch.zeros_like(x)
    (g,) = torch.autograd.grad(y.sum(), x, create_graph=True, allow_unused=True)
    return torch.zeros_like(x) if g is None else g
