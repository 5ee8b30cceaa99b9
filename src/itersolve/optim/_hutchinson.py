"""Hutchinson estimate of a Hessian diagonal; AdaHessian's spatial averaging."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

DISTRIBUTIONS = ("rademacher", "gaussian")
ABS_MODES = ("elementwise", "block")


def draw_probe(
    like: torch.Tensor, distribution: str, generator: torch.Generator | None
) -> torch.Tensor:
    """A random probe shaped like ``like``: entries +-1 (Rademacher) or N(0, 1)."""
    if distribution == "rademacher":
        bits = torch.randint(
            0, 2, like.shape, generator=generator, dtype=like.dtype, device=like.device
        )
        return bits.mul_(2).sub_(1)
    return torch.randn(
        like.shape, generator=generator, dtype=like.dtype, device=like.device
    )


def _check_distribution(distribution: str) -> None:
    if distribution not in DISTRIBUTIONS:
        raise ValueError(
            f"distribution must be one of {DISTRIBUTIONS}, got {distribution!r}"
        )


def gradients_and_diagonal(
    loss: torch.Tensor,
    params: Sequence[torch.Tensor],
    *,
    n_samples: int,
    distribution: str,
    generator: torch.Generator | None,
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Gradients (detached) and the signed Hutchinson diagonal ``mean_s z_s * H z_s``.

    The gradient graph is built with ``torch.autograd.grad(create_graph=True)`` and
    released before returning: nothing keeps a reference to it, so repeated calls
    do not grow memory (unlike ``loss.backward(create_graph=True)``, which stores a
    graph-carrying ``.grad`` on each parameter and creates a reference cycle).
    """
    if loss.dim() != 0:
        raise ValueError(f"the loss must be a scalar, got shape {tuple(loss.shape)}")
    if not loss.requires_grad:
        raise ValueError(
            "the loss does not depend on the parameters through autograd "
            "(loss.requires_grad is False); return the loss tensor itself, "
            "not loss.item() or a detached copy"
        )
    try:
        grads = torch.autograd.grad(
            loss, params, create_graph=True, allow_unused=True, materialize_grads=True
        )
    except RuntimeError as exc:
        raise RuntimeError(
            "could not differentiate the loss: if the closure called "
            "loss.backward() itself, remove that call (the optimizer computes the "
            f"gradients); original error: {exc}"
        ) from exc
    curved = [i for i, g in enumerate(grads) if g.requires_grad]
    diagonal = [torch.zeros_like(p) for p in params]
    for sample in range(n_samples):
        probes = [draw_probe(p, distribution, generator) for p in params]
        if not curved:
            continue
        try:
            hvps = torch.autograd.grad(
                [grads[i] for i in curved],
                [params[i] for i in curved],
                grad_outputs=[probes[i] for i in curved],
                retain_graph=sample < n_samples - 1,
                allow_unused=True,
                materialize_grads=True,
            )
        except RuntimeError as exc:
            raise RuntimeError(
                "a Hessian-vector product failed: some operation in the model does "
                "not support double backward (in-place ops on saved tensors, fused "
                "or compiled kernels, flash attention); original error: "
                f"{exc}"
            ) from exc
        for i, hz in zip(curved, hvps, strict=True):
            diagonal[i].add_(probes[i] * hz.detach())
    if n_samples > 1:
        for d in diagonal:
            d.div_(n_samples)
    return [g.detach() for g in grads], diagonal


def hutchinson_diagonal(
    loss_fn: Callable[[], torch.Tensor] | torch.Tensor,
    params: Sequence[torch.Tensor],
    n_samples: int = 1,
    generator: torch.Generator | None = None,
    *,
    distribution: str = "rademacher",
) -> list[torch.Tensor]:
    """Unbiased estimate of the Hessian diagonal, one tensor per parameter tensor.

    ``D = (1/S) sum_s z_s * (H z_s)`` with probes ``z_s`` (Rademacher: entries
    +-1; Gaussian: N(0, 1)), so ``E[D] = diag(H)``; each ``H z`` is one
    Hessian-vector product of ``torch.autograd.grad`` on a ``create_graph``
    gradient. Rademacher probes have the lower variance (for a diagonal H the
    estimate is exact).

    Compare with ``pyhessian.hessian.trace`` / the ``get_trace`` of the official
    AdaHessian code, which return ``|H z|`` rather than the signed estimate.

    Parameters
    ----------
    loss_fn
        A callable returning the scalar loss (evaluated once, with grad enabled),
        or a scalar loss tensor whose graph reaches ``params``.
    params
        Tensors with ``requires_grad=True``.
    n_samples
        Number of probes ``S >= 1`` averaged.
    generator
        Source of the probes (seed it for reproducible estimates).
    distribution
        ``"rademacher"`` or ``"gaussian"``.

    References
    ----------
    Hutchinson (1990); Bekas, Kokiopoulou & Saad (2007), diagonal estimator;
    Yao et al., ADAHESSIAN, AAAI 2021 (arXiv 2006.00719), eq. (9).

    Examples
    --------
    >>> import torch
    >>> w = torch.tensor([1.0, 2.0], requires_grad=True)
    >>> diag = hutchinson_diagonal(lambda: 3 * w[0] ** 2 + w[1] ** 2, [w])
    >>> diag[0]  # a diagonal Hessian is recovered exactly by Rademacher probes
    tensor([6., 2.])
    """
    if isinstance(n_samples, bool) or not isinstance(n_samples, int) or n_samples < 1:
        raise ValueError(f"n_samples must be an integer >= 1, got {n_samples!r}")
    _check_distribution(distribution)
    params = list(params)
    if not params:
        raise ValueError("params is empty")
    for i, p in enumerate(params):
        if not isinstance(p, torch.Tensor) or not p.requires_grad:
            raise ValueError(f"params[{i}] must be a tensor with requires_grad=True")
    if callable(loss_fn):
        with torch.enable_grad():
            loss = loss_fn()
    else:
        loss = loss_fn
    if not isinstance(loss, torch.Tensor):
        raise TypeError(f"the loss must be a torch.Tensor, got {type(loss).__name__}")
    _, diagonal = gradients_and_diagonal(
        loss,
        params,
        n_samples=n_samples,
        distribution=distribution,
        generator=generator,
    )
    return diagonal


def _block_mean(x: torch.Tensor, block_size: int) -> torch.Tensor:
    """Mean over consecutive blocks of ``block_size`` entries along the last dim.

    A trailing partial block is averaged over its own length.
    """
    cols = x.shape[-1]
    if block_size == -1 or block_size >= cols:
        return x.mean(dim=-1, keepdim=True).expand_as(x)
    full = cols // block_size * block_size
    head = x[..., :full].unflatten(-1, (cols // block_size, block_size))
    parts = [head.mean(dim=-1, keepdim=True).expand_as(head).flatten(-2)]
    if full < cols:
        tail = x[..., full:]
        parts.append(tail.mean(dim=-1, keepdim=True).expand_as(tail))
    return torch.cat(parts, dim=-1)


def spatial_average(
    diagonal: torch.Tensor,
    *,
    abs_mode: str = "elementwise",
    block_size: int | None = None,
) -> torch.Tensor:
    """AdaHessian's spatially averaged, nonnegative Hessian diagonal ``D^(s)``.

    Averaging domain by tensor rank (every rank handled explicitly):

    * 0-D and 1-D (biases, norm scales): no averaging;
    * 2-D (linear weights): none, or blocks of ``block_size`` consecutive entries
      of each row (``-1``: the whole row);
    * 3-D / 4-D / 5-D (Conv1d / Conv2d / Conv3d kernels ``(out, in, *k)``): the
      spatial kernel dimensions.

    ``abs_mode="elementwise"`` averages ``|D|`` over the block (the official
    image-classification code; ``|z * Hz| = |Hz|`` for Rademacher ``z``);
    ``abs_mode="block"`` takes ``|mean(D)|`` (the paper's formula and the official
    fairseq code). The result has ``diagonal``'s shape.

    Examples
    --------
    >>> import torch
    >>> d = torch.tensor([[[1.0, -3.0]]])  # a Conv1d kernel (1, 1, 2)
    >>> spatial_average(d), spatial_average(d, abs_mode="block")
    (tensor([[[2., 2.]]]), tensor([[[1., 1.]]]))
    """
    if abs_mode not in ABS_MODES:
        raise ValueError(f"abs_mode must be one of {ABS_MODES}, got {abs_mode!r}")
    values = diagonal.abs() if abs_mode == "elementwise" else diagonal
    rank = diagonal.dim()
    if rank <= 1:
        averaged = values
    elif rank == 2:
        averaged = values if block_size is None else _block_mean(values, block_size)
    elif rank in (3, 4, 5):
        dims = tuple(range(2, rank))
        averaged = values.mean(dim=dims, keepdim=True).expand_as(values)
    else:
        raise ValueError(
            f"spatial averaging supports tensors of rank 0 to 5, got rank {rank}"
        )
    return averaged if abs_mode == "elementwise" else averaged.abs()
