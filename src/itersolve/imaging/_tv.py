"""Total variation on images: differences, the smoothed TV and its gradient
split, and Chambolle's dual iterations for the prox of isotropic TV."""

from __future__ import annotations

import torch

Tensor = torch.Tensor


def gradient(x: Tensor) -> tuple[Tensor, Tensor]:
    """Forward differences down the rows and along the columns, zero on the
    last row / column (Neumann boundary)."""
    dr = torch.zeros_like(x)
    dc = torch.zeros_like(x)
    dr[..., :-1, :] = x[..., 1:, :] - x[..., :-1, :]
    dc[..., :, :-1] = x[..., :, 1:] - x[..., :, :-1]
    return dr, dc


def divergence(pr: Tensor, pc: Tensor) -> Tensor:
    """``-gradient^T``: ``<gradient(x), p> = -<x, divergence(p)>``."""
    out = torch.zeros_like(pr)
    out[..., :-1, :] += pr[..., :-1, :]
    out[..., 1:, :] -= pr[..., :-1, :]
    out[..., :, :-1] += pc[..., :, :-1]
    out[..., :, 1:] -= pc[..., :, :-1]
    return out


def tv_isotropic(x: Tensor) -> Tensor:
    """``sum_ij |(grad x)_ij|`` (Euclidean norm of the two forward differences,
    zero across the last row and column).

    Examples
    --------
    >>> import torch
    >>> from itersolve.imaging import tv_isotropic
    >>> step = torch.tensor([[0.0, 1.0], [0.0, 1.0]])
    >>> float(tv_isotropic(step))  # a unit jump along two rows
    2.0
    """
    dr, dc = gradient(x)
    return torch.sqrt(dr * dr + dc * dc).sum()


def tv_smoothed(x: Tensor, beta: float) -> Tensor:
    """``TV_beta(x) = sum_ij sqrt(|(grad x)_ij|^2 + beta^2)``, the smoothed TV
    that :class:`~itersolve.imaging.SGP` minimises (differentiable everywhere).

    Examples
    --------
    >>> import torch
    >>> from itersolve.imaging import tv_smoothed
    >>> float(tv_smoothed(torch.zeros(2, 2), beta=0.5))  # 4 pixels of beta
    2.0
    """
    dr, dc = gradient(x)
    return torch.sqrt(dr * dr + dc * dc + beta * beta).sum()


def tv_smoothed_split(x: Tensor, beta: float) -> tuple[Tensor, Tensor, Tensor]:
    """``TV_beta(x)`` and the split ``grad TV_beta = V - U`` with ``V, U >= 0``
    for ``x >= 0`` (Zanella et al. 2009, the scaling of SGP).

    With ``D_ij = sqrt(|(grad x)_ij|^2 + beta^2)`` the derivative in ``x_ij``
    is ``(2 x_ij - x_{i+1,j} - x_{i,j+1}) / D_ij + (x_ij - x_{i-1,j}) /
    D_{i-1,j} + (x_ij - x_{i,j-1}) / D_{i,j-1}``; ``V`` collects the terms in
    ``x_ij``, ``U`` those in its neighbours. Differences that the boundary
    sets to zero carry no neighbour term.
    """
    dr, dc = gradient(x)
    d = torch.sqrt(dr * dr + dc * dc + beta * beta)
    w = 1.0 / d
    wr = torch.zeros_like(x)  # rows that have a neighbour below
    wc = torch.zeros_like(x)
    wr[..., :-1, :] = w[..., :-1, :]
    wc[..., :, :-1] = w[..., :, :-1]
    coeff = wr + wc
    coeff[..., 1:, :] += wr[..., :-1, :]
    coeff[..., :, 1:] += wc[..., :, :-1]
    u = torch.zeros_like(x)
    u[..., :-1, :] += wr[..., :-1, :] * x[..., 1:, :]
    u[..., :, :-1] += wc[..., :, :-1] * x[..., :, 1:]
    u[..., 1:, :] += wr[..., :-1, :] * x[..., :-1, :]
    u[..., :, 1:] += wc[..., :, :-1] * x[..., :, :-1]
    return d.sum(), coeff * x, u


def tv_prox(
    b: Tensor,
    weight: float,
    pr: Tensor,
    pc: Tensor,
    iterations: int,
    nonnegative: bool,
) -> tuple[Tensor, Tensor, Tensor]:
    """``argmin_{x (>= 0)} 1/2 ||x - b||^2 + weight TV(x)`` by ``iterations``
    projected gradient steps on the dual (Chambolle 2005; Beck & Teboulle 2009,
    with the projection onto ``x >= 0`` inside).

    The primal point is ``x = P(b + weight div p)``; the dual step is
    ``p <- p + grad x / (8 weight)`` projected onto ``|p_ij| <= 1``
    (``||div||^2 <= 8``, so the step is safe). ``(pr, pc)`` warm-start the
    dual and are returned updated, for the next call.
    """
    if weight <= 0:
        x = b.clamp(min=0) if nonnegative else b
        return x, pr, pc
    step = 1.0 / (8.0 * weight)
    for _ in range(iterations):
        x = b + weight * divergence(pr, pc)
        if nonnegative:
            x = x.clamp(min=0)
        gr, gc = gradient(x)
        pr = pr + step * gr
        pc = pc + step * gc
        scale = torch.clamp(torch.sqrt(pr * pr + pc * pc), min=1.0)
        pr, pc = pr / scale, pc / scale
    x = b + weight * divergence(pr, pc)
    if nonnegative:
        x = x.clamp(min=0)
    return x, pr, pc
