"""Deep equilibrium layers: :class:`DEQLayer` and :class:`VariationalDropout`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from itersolve._core.iterate import IterativeMethod
from itersolve.fixed_point._implicit import (
    FixedPointLayerInfo,
    check_layer_options,
    fixed_point_layer,
)

ZInit = str | Callable[[torch.Tensor], torch.Tensor]


class VariationalDropout(nn.Module):
    """Dropout whose mask is drawn once and reused until :meth:`reset_mask`.

    An :class:`torch.nn.Dropout` inside a DEQ cell draws a new mask at every
    evaluation, so the solver iterates a different map each step and the
    fixed point it reports is the fixed point of none of them. This module
    draws its mask (Bernoulli ``1 - p``, scaled by ``1 / (1 - p)``) on its
    first call after :meth:`reset_mask` and applies that same mask on every
    later call; :class:`DEQLayer` resets it once per forward call, so every
    cell evaluation of one forward pass (and of its backward pass) shares one
    mask. In eval mode, or with ``p = 0``, it is the identity.

    Parameters
    ----------
    p
        Drop probability in ``[0, 1)``.

    Raises
    ------
    ValueError
        ``p`` outside ``[0, 1)``.

    Examples
    --------
    >>> import torch
    >>> from itersolve.nn import VariationalDropout
    >>> drop = VariationalDropout(0.5)
    >>> v = torch.ones(8)
    >>> bool(torch.equal(drop(v), drop(2 * v) / 2))  # the same mask twice
    True
    >>> bool(torch.equal(drop.eval()(v), v))
    True
    """

    mask: torch.Tensor | None

    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        if isinstance(p, bool) or not isinstance(p, int | float) or not 0 <= p < 1:
            raise ValueError(f"p must be a number in [0, 1), got {p!r}")
        self.p = float(p)
        self.mask = None

    def reset_mask(self) -> None:
        """Forget the mask; the next call in train mode draws a new one."""
        self.mask = None

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return input
        mask = self.mask
        if mask is None or mask.shape != input.shape or mask.device != input.device:
            keep = torch.full_like(input, 1 - self.p)
            mask = torch.bernoulli(keep).div_(1 - self.p)
            self.mask = mask
        return input * mask.to(input.dtype)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class DEQLayer(nn.Module):
    """A deep equilibrium layer: ``forward(x)`` returns ``z* = cell(z*, x)``.

    The forward pass solves the fixed point with ``forward`` (no graph is
    recorded, memory does not grow with the iterations); gradients reach ``x``
    and the cell's parameters through :func:`~itersolve.fixed_point.\
fixed_point_layer`: the implicit backward solves the adjoint
    ``u = J^T u + g`` (the exact gradient of the fixed point), the phantom
    backward takes ``phantom_steps`` steps of it (cheaper, approximate).

    Dropout: put :class:`VariationalDropout` modules in the cell, not
    :class:`torch.nn.Dropout` (which draws a new mask at each solver
    iteration, so there is no fixed point to find). The layer draws each
    :class:`VariationalDropout` mask once per forward call and reuses it in
    every cell evaluation of that call, its backward pass included; a new
    forward call draws new masks. In eval mode (``layer.eval()``, which
    reaches the cell's modules) they are the identity.

    Failure policy: when the forward or the adjoint solve fails, the layer
    emits a :class:`~itersolve.ConvergenceWarning` and returns the
    lowest-residual iterate (``throw=True``: raises
    :class:`~itersolve.ConvergenceError`); ``layer.info`` keeps the statuses.

    Parameters
    ----------
    cell
        An :class:`torch.nn.Module` called as ``cell(z, x)`` and returning a
        tensor of ``z``'s shape; its parameters that require grad receive
        gradients.
    forward
        A method of :mod:`itersolve.fixed_point` (``None``: ``Anderson()``).
    backward
        ``"implicit"`` or ``"phantom"``.
    z_init
        ``"zeros"``: the solve starts at zeros of ``x``'s shape; a callable
        ``z_init(x)`` returns the starting point (for a ``z`` of another
        shape than ``x``).
    backward_method, phantom_steps, phantom_damping, batch_dim, throw
        As for :func:`~itersolve.fixed_point.fixed_point_layer`.

    Attributes
    ----------
    info : FixedPointLayerInfo or None
        The last forward call's: ``info.forward`` is the forward solve's
        Solution, ``info.backward`` the adjoint solve's once its backward ran.

    Raises
    ------
    TypeError
        ``cell`` not an :class:`torch.nn.Module`, ``z_init`` neither
        ``"zeros"`` nor callable, a method of the wrong family (at
        construction); ``x`` not a floating tensor (at the call).
    ValueError
        An unknown ``backward`` or ``z_init`` string, bad phantom settings.

    Examples
    --------
    >>> import torch
    >>> from itersolve.nn import DEQLayer
    >>> class Cell(torch.nn.Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.lin = torch.nn.Linear(4, 4, bias=False)
    ...         torch.nn.init.orthogonal_(self.lin.weight, gain=0.5)
    ...     def forward(self, z, x):
    ...         return torch.tanh(self.lin(z) + x)
    >>> layer = DEQLayer(Cell(), batch_dim=0)
    >>> z = layer(torch.randn(3, 4))
    >>> z.sum().backward()
    >>> layer.info.forward.success, layer.cell.lin.weight.grad.shape
    (True, torch.Size([4, 4]))
    """

    info: FixedPointLayerInfo | None

    def __init__(
        self,
        cell: nn.Module,
        forward: IterativeMethod | None = None,
        backward: str = "implicit",
        z_init: ZInit = "zeros",
        *,
        backward_method: IterativeMethod | None = None,
        phantom_steps: int = 5,
        phantom_damping: float = 1.0,
        batch_dim: int | None = None,
        throw: bool = False,
    ) -> None:
        super().__init__()
        if not isinstance(cell, nn.Module):
            raise TypeError(
                f"cell must be a torch.nn.Module called as cell(z, x), got "
                f"{type(cell).__name__}"
            )
        if isinstance(z_init, str):
            if z_init != "zeros":
                raise ValueError(
                    f"z_init must be 'zeros' or a callable z_init(x), got {z_init!r}"
                )
        elif not callable(z_init):
            raise TypeError(
                f"z_init must be 'zeros' or a callable z_init(x), got "
                f"{type(z_init).__name__}"
            )
        self.cell = cell
        self.z_init = z_init
        self._options: dict[str, Any] = {
            "forward": forward,
            "backward": backward,
            "backward_method": backward_method,
            "phantom_steps": phantom_steps,
            "phantom_damping": phantom_damping,
            "batch_dim": batch_dim,
            "throw": throw,
        }
        self.info = None
        # Validate the methods and settings now rather than at the first call.
        check_layer_options(
            forward, backward, backward_method, phantom_steps, phantom_damping
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``z*`` with ``z* = cell(z*, x)``, differentiable in ``x`` and the
        cell's parameters."""
        drops = [m for m in self.cell.modules() if isinstance(m, VariationalDropout)]
        masks: list[torch.Tensor | None] = [None] * len(drops)

        def f(z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
            # Restore this call's masks, so that a backward run after another
            # forward call still evaluates the map this call solved.
            for i, drop in enumerate(drops):
                drop.mask = masks[i]
            out = self.cell(z, x)
            for i, drop in enumerate(drops):
                masks[i] = drop.mask
            return out

        if not isinstance(x, torch.Tensor):
            raise TypeError(f"x must be a torch tensor, got {type(x).__name__}")
        z0 = None if isinstance(self.z_init, str) else self.z_init(x.detach())
        params = tuple(p for p in self.cell.parameters() if p.requires_grad)
        z, self.info = fixed_point_layer(
            f, x, *params, z0=z0, return_info=True, **self._options
        )
        return z

    def extra_repr(self) -> str:
        opts = self._options
        return f"backward={opts['backward']!r}, batch_dim={opts['batch_dim']!r}"
