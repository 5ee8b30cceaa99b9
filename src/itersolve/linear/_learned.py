"""A neural network as a (nonlinear) preconditioner: the search directions of DCDM."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch


def rms(columns: torch.Tensor) -> torch.Tensor:
    """Root-mean-square of each row of ``(k, n)`` columns, shape ``(k, 1)``:
    the input scale the networks are trained on (unit norm times ``sqrt(n)``,
    the same per-cell magnitude at every grid resolution)."""
    return (
        torch.linalg.vector_norm(columns, dim=1, keepdim=True) / columns.shape[1] ** 0.5
    )


def _grid_shape(grid_shape: Any) -> tuple[int, ...] | None:
    if grid_shape is None:
        return None
    if isinstance(grid_shape, (int, np.integer)):
        grid_shape = (grid_shape,)
    try:
        shape = tuple(int(s) for s in grid_shape)
    except TypeError:
        raise TypeError(
            f"grid_shape must be a tuple of ints, got {grid_shape!r}"
        ) from None
    if not shape or any(s < 1 for s in shape):
        raise ValueError(f"grid_shape must be positive ints, got {grid_shape!r}")
    return shape


class LearnedPreconditioner:
    """A trained network ``f ~ A^{-1}`` (up to a scalar) as the ``M`` of
    :class:`~itersolve.linear.FlexibleCG`: ``r -> s f(r / s)``, ``s = ||r|| / sqrt(n)``.

    With ``FlexibleCG(truncation=2, M=LearnedPreconditioner(net))`` the shared
    Krylov engine runs the deep conjugate direction method (DCDM) of Kaneda et
    al.: each search direction is the network's image of the normalised
    residual, A-orthogonalised against the last two directions; the step length
    is re-solved every step, so the network only needs ``A^{-1}`` up to a
    constant. Compare with ``scipy.sparse.linalg.cg(A, b, M=...)``, which needs a
    fixed linear SPD ``M`` (a network is neither).

    The network is called in eval mode, without gradients, on a batch of
    shape ``(k, *grid_shape)`` from ``k`` residual columns (``(k, n)`` without
    a grid); with ``mask`` the residual fills the ``True`` cells of a zero
    grid, the network receives ``(k, 2, *grid_shape)`` (channel 0 the residual,
    channel 1 the mask as 0/1, so one network serves every obstacle layout) and
    its output is read back at the ``True`` cells. The input is cast to the
    network's parameter dtype and device, the output back to the residual's.

    Parameters
    ----------
    net
        A callable (usually a :class:`torch.nn.Module`, e.g.
        :class:`itersolve.nn.DCDMNet`) mapping the batch above to a tensor with
        one value per grid cell and column (an extra channel axis of size 1 is
        accepted).
    normalize
        Apply ``f`` to ``r / s`` (per column, ``s = ||r|| / sqrt(n)``: unit
        root-mean-square, the paper's unit norm times ``sqrt(n)`` so that a
        network trained at one resolution sees inputs of the same per-cell size
        at another) and scale the output by ``s``: the network is nonlinear, so
        the scale of its input matters. ``False`` calls ``f(r)``.
    grid_shape
        Shape of the grid the unknowns live on (``None``: the network takes
        the vectors as they are). Required with ``mask``.
    mask
        Boolean array of shape ``grid_shape``: the cells that are unknowns
        (e.g. the fluid cells of an obstacle problem), in row-major order.

    Raises
    ------
    ValueError
        When the network's output does not have one value per unknown (checked
        on every call, with both shapes in the message), or ``mask`` and
        ``grid_shape`` disagree.

    References
    ----------
    Kaneda, Akar, Chen, Kala, Hyde, Teran, *A Deep Conjugate Direction Method
    for Iteratively Solving Linear Systems*, ICML 2023.

    Examples
    --------
    An exact inverse as the "network" makes FlexibleCG converge in one step:

    >>> import torch, itersolve
    >>> from itersolve.linear import FlexibleCG, LearnedPreconditioner
    >>> A = torch.tensor([[4.0, 1.0], [1.0, 3.0]], dtype=torch.float64)
    >>> exact = lambda r: torch.linalg.solve(A, r.T).T  # (k, n) -> (k, n)
    >>> M = LearnedPreconditioner(exact)
    >>> sol = itersolve.linear_solve(
    ...     A, torch.ones(2, dtype=torch.float64), FlexibleCG(truncation=2, M=M)
    ... )
    >>> sol.success, sol.num_steps
    (True, 1)
    """

    def __init__(
        self,
        net: Any,
        *,
        normalize: bool = True,
        grid_shape: Sequence[int] | int | None = None,
        mask: Any = None,
    ) -> None:
        if not callable(net):
            raise TypeError(f"net must be callable, got {type(net).__name__}")
        if not isinstance(normalize, bool):
            raise TypeError(f"normalize must be a bool, got {normalize!r}")
        self.net = net
        self.normalize = normalize
        self.grid_shape = _grid_shape(grid_shape)
        self.mask: torch.Tensor | None = None
        if mask is not None:
            mask_t = torch.as_tensor(np.asarray(mask))
            if mask_t.dtype != torch.bool:
                raise TypeError(f"mask must be a boolean array, got {mask_t.dtype}")
            if self.grid_shape is None:
                self.grid_shape = tuple(mask_t.shape)
            if tuple(mask_t.shape) != self.grid_shape:
                raise ValueError(
                    f"mask has shape {tuple(mask_t.shape)}, expected grid_shape "
                    f"{self.grid_shape}"
                )
            self.mask = mask_t
        self.calls = 0
        """Network evaluations so far (one per preconditioner call)."""

    @property
    def size(self) -> int | None:
        """Number of unknowns the preconditioner expects (``None``: any)."""
        if self.mask is not None:
            return int(self.mask.sum())
        return None if self.grid_shape is None else int(np.prod(self.grid_shape))

    def _param(self) -> torch.Tensor | None:
        if isinstance(self.net, torch.nn.Module):
            return next(self.net.parameters(), None)
        return None

    def network(self, columns: torch.Tensor) -> torch.Tensor:
        """The network's image of residual columns ``(k, n)``, as ``(k, n)``.

        No normalisation, no casting, no mode change, gradients as the caller
        has them: the map that :func:`itersolve.nn.train_dcdm` trains and
        ``__call__`` applies. ``columns`` must have the network's dtype and
        device.
        """
        k, n = columns.shape
        size = self.size
        if size is not None and n != size:
            raise ValueError(
                f"residual has {n} unknowns, but the preconditioner expects {size} "
                f"(grid_shape={self.grid_shape})"
            )
        mask = None if self.mask is None else self.mask.to(columns.device)
        inputs = columns
        if mask is not None:
            grid = columns.new_zeros((k, *mask.shape))
            grid[:, mask] = columns
            inputs = torch.stack([grid, mask.to(grid.dtype).expand_as(grid)], dim=1)
        elif self.grid_shape is not None:
            inputs = columns.reshape(k, *self.grid_shape)
        out = self.net(inputs)
        if not isinstance(out, torch.Tensor):
            raise TypeError(f"net must return a tensor, got {type(out).__name__}")
        if self.grid_shape is None:
            expected: tuple[int, ...] = (k, n)
            ok = tuple(out.shape) in (expected, (k, 1, n))
        else:
            expected = (k, *self.grid_shape)
            ok = tuple(out.shape) in (expected, (k, 1, *self.grid_shape))
        if not ok:
            raise ValueError(
                f"net output has shape {tuple(out.shape)}, expected {expected} to "
                f"match the residual ({k} column(s) of {n} unknowns)"
            )
        if mask is None:
            return out.reshape(k, n)
        return out.reshape(k, *mask.shape)[:, mask]

    def __call__(self, r: torch.Tensor) -> torch.Tensor:
        columns = r.T if r.ndim == 2 else r[None]  # (k, n)
        scale = None
        if self.normalize:
            scale = rms(columns)
            columns = columns / torch.where(scale > 0, scale, 1.0)
        param = self._param()
        inputs = columns
        if param is not None:
            inputs = columns.to(dtype=param.dtype, device=param.device)
        training = getattr(self.net, "training", False)
        if training:
            self.net.eval()
        try:
            with torch.no_grad():
                out = self.network(inputs)
        finally:
            if training:
                self.net.train()
        self.calls += 1
        z = out.to(dtype=r.dtype, device=r.device)
        if scale is not None:
            z = z * scale
        return z.T if r.ndim == 2 else z[0]

    def __repr__(self) -> str:
        return (
            f"LearnedPreconditioner({type(self.net).__name__}, "
            f"normalize={self.normalize}, grid_shape={self.grid_shape})"
        )
