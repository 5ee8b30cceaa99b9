"""Convergent graph solvers: :class:`ContractiveGraphFixedPoint` (alias
:data:`CGS`)."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np
import torch
from torch import nn

from itersolve._core.iterate import IterativeMethod
from itersolve.fixed_point._implicit import (
    FixedPointLayerInfo,
    check_layer_options,
    fixed_point_layer,
)
from itersolve.fixed_point._iteration import FixedPointIteration
from itersolve.fixed_point._newton_krylov import NewtonKrylov

NORMALIZATIONS = ("in-degree", "out-degree", "softmax")


def _default_method() -> FixedPointIteration:
    return FixedPointIteration(rtol=1e-6, max_steps=50)


def _check_edge_index(edge_index: Any, num_nodes: int) -> torch.Tensor:
    if isinstance(edge_index, np.ndarray):
        edge_index = torch.from_numpy(edge_index)
    if not isinstance(edge_index, torch.Tensor):
        raise TypeError(
            f"edge_index must be a torch tensor or numpy array, got "
            f"{type(edge_index).__name__}"
        )
    if edge_index.is_floating_point() or edge_index.is_complex():
        raise TypeError(f"edge_index must hold integers, got {edge_index.dtype}")
    if edge_index.ndim != 2 or edge_index.shape[0] != 2:
        raise ValueError(
            f"edge_index must have shape (2, E), got {tuple(edge_index.shape)}"
        )
    if edge_index.numel() and (
        int(edge_index.min()) < 0 or int(edge_index.max()) >= num_nodes
    ):
        raise ValueError(
            f"edge_index entries must be in [0, {num_nodes}) (the rows of bias), "
            f"got range [{int(edge_index.min())}, {int(edge_index.max())}]"
        )
    return edge_index.long()


def _segment_sum(values: torch.Tensor, index: torch.Tensor, n: int) -> torch.Tensor:
    """``out[:, i] = sum of values[:, e]`` over the edges ``e`` with
    ``index[e] = i`` (values ``(h, E)``)."""
    out = values.new_zeros(values.shape[0], n)
    return out.index_add(1, index, values)


class ContractiveGraphFixedPoint(nn.Module):
    """The contractive linear fixed point of a convergent graph solver (CGS).

    For ``h`` heads and a directed graph with edges ``e = (src_e, dst_e)``,
    each head ``k`` solves ::

        z_k = gamma A_k z_k + b_k,   (A_k z)_i = sum_{e: dst_e = i} A_ke z_{src_e}

    where ``b_k`` (node biases) and the edge logits ``a_ke`` come from a
    parameter-generating encoder. ``A_k`` keeps the graph's sparsity (messages
    are gathered and summed with ``index_add``; no ``n x n`` matrix exists) and
    is normalised so that the map is a contraction **by construction** with
    factor ``gamma`` (Banach: a unique fixed point, and plain iteration from 0
    reaches it with error ``<= gamma^k ||z*||``):

    * ``"in-degree"`` (default): ``A_ke = sigmoid(a_ke) / indeg(dst_e)``; every
      row sum is below 1, so ``||gamma A_k||_inf < gamma``;
    * ``"out-degree"`` (the paper's degree normalisation):
      ``A_ke = sigmoid(a_ke) / outdeg(src_e)``; column sums below 1,
      ``||gamma A_k||_1 < gamma``;
    * ``"softmax"``: ``A_ke`` a softmax of the logits over the edges entering
      ``dst_e``; row sums 1, ``||gamma A_k||_inf = gamma``.

    In each case the spectral radius of the Jacobian ``gamma A_k`` is at most
    ``gamma`` (:meth:`contraction_factor` returns the induced norm). ``sigmoid``
    rather than the paper's ``clip(a, 0, 1)``, whose gradient vanishes outside
    ``[0, 1]``.

    The forward solve runs :func:`~itersolve.fixed_point.fixed_point` through
    :func:`~itersolve.fixed_point.fixed_point_layer` with the heads as a batch
    (each head stops on its own rule ``||f(z_k) - z_k||_2 <= max(rtol
    ||z_k||_2, atol)``, default ``rtol = 1e-6``, at most 50 steps, as in the
    paper); the backward pass solves the adjoint ``u_k = gamma A_k^T u_k + g_k``
    (implicit function theorem; ``A_k^T`` contracts in the dual norm, so the
    same iteration converges) and returns gradients for ``bias`` and
    ``edge_logits``. ``layer.info`` keeps the last call's solves: iterations in
    ``info.forward.num_steps``, map evaluations in ``info.forward.stats``.

    Compare with: the reference implementation ``Junyoungpark/CGS`` (dense
    ``h x n x n`` operator) and torch_geometric's ``APPNP`` (a fixed
    personalised-PageRank propagation unrolled ``K`` times).

    Parameters
    ----------
    heads
        Number of independent fixed points ``h >= 1``.
    gamma
        Contraction factor in ``(0, 1)`` (paper default 0.5).
    normalization
        ``"in-degree"``, ``"out-degree"`` or ``"softmax"``.
    forward
        A batch-capable method of :mod:`itersolve.fixed_point`
        (``FixedPointIteration``, ``Anderson``, ``Broyden``); ``None``:
        ``FixedPointIteration(rtol=1e-6, max_steps=50)``.
    backward
        ``"implicit"`` or ``"phantom"`` (see
        :func:`~itersolve.fixed_point.fixed_point_layer`).
    backward_method
        The adjoint solver (any method :func:`~itersolve.fixed_point.\
implicit_vjp` accepts); ``None``: ``FixedPointIteration(rtol=1e-6,
        max_steps=50)``.
    phantom_steps, phantom_damping, throw
        As for :func:`~itersolve.fixed_point.fixed_point_layer`.

    Raises
    ------
    ValueError
        ``heads < 1``, ``gamma`` outside ``(0, 1)`` (no contraction), an unknown
        ``normalization``, a ``NewtonKrylov`` forward or bad backward settings;
        at the call, ``edge_index`` entries outside ``[0, n)`` or shapes that
        do not match.
    TypeError
        A method of the wrong family; non-integer ``edge_index``, non-floating
        ``edge_logits`` or ``bias``.

    References
    ----------
    J. Park, J. Choo, J. Park, "Convergent graph solvers", ICLR 2022
    (arXiv:2106.01680).

    Examples
    --------
    >>> import torch
    >>> from itersolve.nn import ContractiveGraphFixedPoint
    >>> edge_index = torch.tensor([[0, 1, 2, 2], [1, 2, 0, 1]])
    >>> layer = ContractiveGraphFixedPoint(heads=2, gamma=0.5)
    >>> logits = torch.zeros(4, 2, dtype=torch.float64, requires_grad=True)
    >>> bias = torch.ones(3, 2, dtype=torch.float64, requires_grad=True)
    >>> z = layer(edge_index, logits, bias)
    >>> z.sum().backward()
    >>> z.shape, layer.info.forward.success, bias.grad.shape
    (torch.Size([3, 2]), True, torch.Size([3, 2]))
    >>> layer.contraction_factor(edge_index, logits, 3) <= 0.5
    True
    """

    info: FixedPointLayerInfo | None

    def __init__(
        self,
        heads: int,
        gamma: float = 0.5,
        normalization: str = "in-degree",
        *,
        forward: IterativeMethod | None = None,
        backward: str = "implicit",
        backward_method: IterativeMethod | None = None,
        phantom_steps: int = 5,
        phantom_damping: float = 1.0,
        throw: bool = False,
    ) -> None:
        super().__init__()
        if isinstance(heads, bool) or not isinstance(heads, int) or heads < 1:
            raise ValueError(f"heads must be an int >= 1, got {heads!r}")
        if (
            isinstance(gamma, bool)
            or not isinstance(gamma, int | float)
            or not 0 < gamma < 1
        ):
            raise ValueError(
                f"gamma must be in (0, 1) for the map to be a contraction, got "
                f"{gamma!r}"
            )
        if normalization not in NORMALIZATIONS:
            raise ValueError(
                f"normalization must be one of {NORMALIZATIONS}, got {normalization!r}"
            )
        forward = _default_method() if forward is None else forward
        if isinstance(forward, NewtonKrylov):
            raise ValueError(
                "forward must solve the heads as a batch (FixedPointIteration, "
                "Anderson or Broyden); NewtonKrylov solves one fixed point at a "
                "time (it may be the backward_method)"
            )
        backward_method = (
            _default_method() if backward_method is None else backward_method
        )
        check_layer_options(
            forward, backward, backward_method, phantom_steps, phantom_damping
        )
        self.heads = heads
        self.gamma = float(gamma)
        self.normalization = normalization
        self.backward = backward
        # Heads lead (batch_dim=0), so each head stops on its own rule.
        self._solve = partial(
            fixed_point_layer,
            forward=forward,
            backward=backward,
            backward_method=backward_method,
            phantom_steps=phantom_steps,
            phantom_damping=phantom_damping,
            throw=throw,
            batch_dim=0,
            return_info=True,
        )
        self.info = None

    def _check(
        self, edge_index: Any, edge_logits: Any, num_nodes: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if not isinstance(edge_logits, torch.Tensor):
            raise TypeError(
                f"edge_logits must be a torch tensor, got {type(edge_logits).__name__}"
            )
        if not edge_logits.is_floating_point():
            raise TypeError(
                f"edge_logits must be a floating tensor, got {edge_logits.dtype}"
            )
        index = _check_edge_index(edge_index, num_nodes).to(edge_logits.device)
        expected = (index.shape[1], self.heads)
        if tuple(edge_logits.shape) != expected:
            raise ValueError(
                f"edge_logits must have shape (E, heads) = {expected}, got "
                f"{tuple(edge_logits.shape)}"
            )
        return index, edge_logits

    def edge_weights(
        self, edge_index: Any, edge_logits: torch.Tensor, num_nodes: int
    ) -> torch.Tensor:
        """The normalised entries ``A_ke``, shape ``(E, heads)`` (``gamma`` not
        included), differentiable in ``edge_logits``."""
        index, logits = self._check(edge_index, edge_logits, num_nodes)
        return self._weights(index, logits, num_nodes).T

    def _weights(
        self, index: torch.Tensor, logits: torch.Tensor, n: int
    ) -> torch.Tensor:
        src, dst = index
        a = logits.T  # (h, E)
        if self.normalization == "softmax":
            # Shift by each destination's largest logit so exp cannot overflow.
            top = a.new_full((a.shape[0], n), -torch.inf)
            top = top.scatter_reduce(
                1, dst.expand_as(a), a.detach(), "amax", include_self=True
            )
            e = torch.exp(a - top[:, dst])
            return e / _segment_sum(e, dst, n)[:, dst]
        ends = dst if self.normalization == "in-degree" else src
        degree = torch.bincount(ends, minlength=n).to(a.dtype)
        return torch.sigmoid(a) / degree[ends]

    def contraction_factor(
        self, edge_index: Any, edge_logits: torch.Tensor, num_nodes: int
    ) -> float:
        """``max_k ||gamma A_k||``, in the norm the normalisation bounds (the
        infinity norm, largest row sum, for ``"in-degree"`` and ``"softmax"``;
        the 1-norm, largest column sum, for ``"out-degree"``); at most
        ``gamma``, and an upper bound on every head's spectral radius."""
        index, logits = self._check(edge_index, edge_logits, num_nodes)
        with torch.no_grad():
            w = self._weights(index, logits, num_nodes)
            ends = index[0] if self.normalization == "out-degree" else index[1]
            sums = _segment_sum(w, ends, num_nodes)
        return self.gamma * float(sums.max()) if sums.numel() else 0.0

    def _inputs(
        self, edge_index: Any, edge_logits: torch.Tensor, bias: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, int]:
        """Checked ``(edge_index, gamma A as (h, E) weights, n)``."""
        if not isinstance(bias, torch.Tensor) or not bias.is_floating_point():
            raise TypeError(
                f"bias must be a floating torch tensor, got "
                f"{getattr(bias, 'dtype', type(bias).__name__)}"
            )
        if bias.ndim != 2 or bias.shape[1] != self.heads:
            raise ValueError(
                f"bias must have shape (n, heads={self.heads}), got {tuple(bias.shape)}"
            )
        n = int(bias.shape[0])
        index, logits = self._check(edge_index, edge_logits, n)
        if logits.dtype != bias.dtype:
            raise TypeError(
                f"edge_logits and bias must share a dtype, got {logits.dtype} and "
                f"{bias.dtype}"
            )
        return index, self.gamma * self._weights(index, logits, n), n

    def fixed_point_map(
        self, edge_index: Any, edge_logits: torch.Tensor, bias: torch.Tensor
    ) -> Callable[[torch.Tensor], torch.Tensor]:
        """The map ``T(z) = gamma A z + bias`` on ``z`` of shape ``(n, heads)``
        whose fixed point :meth:`forward` returns (to check residuals
        ``||T(z) - z||`` or the contraction of a trained layer)."""
        (src, dst), weights, n = self._inputs(edge_index, edge_logits, bias)

        def T(z: torch.Tensor) -> torch.Tensor:
            return (_segment_sum(weights * z.T[:, src], dst, n) + bias.T).T

        return T

    def forward(
        self, edge_index: Any, edge_logits: torch.Tensor, bias: torch.Tensor
    ) -> torch.Tensor:
        """The fixed point ``z*``, shape ``(n, heads)``, of ``z = gamma A z +
        bias`` for edges ``edge_index`` ``(2, E)`` (row 0 sources, row 1
        destinations, entries in ``[0, n)``), ``edge_logits`` ``(E, heads)``
        and ``bias`` ``(n, heads)``; differentiable in ``edge_logits`` and
        ``bias``."""
        (src, dst), weights, n = self._inputs(edge_index, edge_logits, bias)

        def f(z: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
            return _segment_sum(weights * z[:, src], dst, n) + b

        z, self.info = self._solve(f, bias.T, weights)
        return z.T

    def extra_repr(self) -> str:
        return (
            f"heads={self.heads}, gamma={self.gamma}, "
            f"normalization={self.normalization!r}, "
            f"backward={self.backward!r}"
        )


CGS = ContractiveGraphFixedPoint
"""Short name of :class:`ContractiveGraphFixedPoint`."""
