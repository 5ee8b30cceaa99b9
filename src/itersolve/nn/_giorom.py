"""Learned particle simulators: GIOROM (reduced-order graph neural operator
with a learned kernel upsampler) and the full-graph GNS baseline.

Both predict the next-frame acceleration of a particle cloud from a window of
past positions and are rolled out with semi-implicit Euler in frame units
(``v_{t+1} = x_t - x_{t-1} + a_t``, ``x_{t+1} = x_t + v_{t+1}``), as in GNS.
Training (:func:`train_gns`, :func:`train_giorom`) is seeded one-step
regression on normalised accelerations with GNS-style random-walk noise on the
input positions.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

# -- neighbourhoods -------------------------------------------------------------


def _check_points(x: Any, name: str) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch tensor, got {type(x).__name__}")
    if x.ndim != 2 or x.shape[1] != 2:
        raise ValueError(f"{name} must have shape (n, 2), got {tuple(x.shape)}")
    if not torch.isfinite(x).all():
        raise ValueError(f"{name} contains NaN or infinite entries")
    return x


def radius_neighbors(
    query: torch.Tensor, source: torch.Tensor, radius: float
) -> torch.Tensor:
    """All pairs ``(i, j)`` with ``||query_i - source_j|| <= radius`` (2-D).

    A cell list with cells of side ``radius``: sources are sorted by cell and
    each query gathers the 3 x 3 cells around its own, so time and memory are
    ``O(n + pairs)``, never ``O(n_query n_source)``.

    Compare with ``torch_geometric.nn.radius`` (needs ``torch_cluster``).

    Parameters
    ----------
    query, source
        ``(m, 2)`` and ``(n, 2)`` point sets.
    radius
        Positive search radius.

    Returns
    -------
    torch.Tensor
        ``(2, E)`` long tensor: row 0 query indices, row 1 source indices.

    Examples
    --------
    >>> import torch
    >>> from itersolve.nn import radius_neighbors
    >>> x = torch.tensor([[0.0, 0.0], [0.05, 0.0], [0.5, 0.5]])
    >>> radius_neighbors(x[:1], x, 0.1).tolist()
    [[0, 0], [0, 1]]
    """
    query = _check_points(query, "query")
    source = _check_points(source, "source")
    if not (isinstance(radius, (int, float)) and math.isfinite(radius) and radius > 0):
        raise ValueError(f"radius must be positive and finite, got {radius!r}")
    device = source.device
    lo = torch.minimum(query.min(0).values, source.min(0).values)
    qc = torch.floor((query - lo) / radius).long()
    sc = torch.floor((source - lo) / radius).long()
    ny = int(max(int(qc[:, 1].max()), int(sc[:, 1].max()))) + 3
    nx = int(max(int(qc[:, 0].max()), int(sc[:, 0].max()))) + 3
    # Shift by one so that neighbour cells of edge cells have valid ids.
    sid = (sc[:, 0] + 1) * ny + (sc[:, 1] + 1)
    order = torch.argsort(sid)
    counts = torch.bincount(sid, minlength=nx * ny)
    starts = torch.cumsum(counts, 0) - counts
    shift = torch.tensor([-1, 0, 1], device=device)
    cx = (qc[:, 0, None, None] + 1 + shift[:, None]).expand(-1, 3, 3)
    cy = (qc[:, 1, None, None] + 1 + shift[None, :]).expand(-1, 3, 3)
    cid = (cx * ny + cy).reshape(-1)
    c = counts[cid]
    total = int(c.sum())
    if total == 0:
        return torch.zeros(2, 0, dtype=torch.long, device=device)
    owner = torch.arange(len(query), device=device).repeat_interleave(9)
    row = torch.repeat_interleave(owner, c, output_size=total)
    first = torch.repeat_interleave(
        starts[cid] - (torch.cumsum(c, 0) - c), c, output_size=total
    )
    col = order[torch.arange(total, device=device) + first]
    keep = (query[row] - source[col]).square().sum(1) <= radius * radius
    return torch.stack([row[keep], col[keep]])


def radius_graph(x: torch.Tensor, radius: float) -> torch.Tensor:
    """Directed edges ``(src, dst)`` between distinct points closer than
    ``radius`` (both directions), by :func:`radius_neighbors`.

    Examples
    --------
    >>> import torch
    >>> from itersolve.nn import radius_graph
    >>> radius_graph(torch.tensor([[0.0, 0.0], [0.05, 0.0], [0.5, 0.5]]), 0.1)
    tensor([[1, 0],
            [0, 1]])
    """
    pairs = radius_neighbors(x, x, radius)
    pairs = pairs[:, pairs[0] != pairs[1]]
    return torch.stack([pairs[1], pairs[0]])


def farthest_point_sample(x: torch.Tensor, k: int, *, start: int = 0) -> torch.Tensor:
    """Indices of ``k`` points of ``x`` chosen greedily, each the farthest from
    those already chosen (``k`` passes over the cloud).

    Examples
    --------
    >>> import torch
    >>> from itersolve.nn import farthest_point_sample
    >>> x = torch.tensor([[0.0, 0.0], [0.1, 0.0], [1.0, 0.0], [0.5, 0.0]])
    >>> farthest_point_sample(x, 3).tolist()
    [0, 2, 3]
    """
    x = _check_points(x, "x")
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= len(x):
        raise ValueError(f"k must be an int in [1, {len(x)}], got {k!r}")
    chosen = torch.empty(k, dtype=torch.long, device=x.device)
    chosen[0] = start
    dist = (x - x[start]).square().sum(1)
    for i in range(1, k):
        nxt = torch.argmax(dist)
        chosen[i] = nxt
        dist = torch.minimum(dist, (x - x[nxt]).square().sum(1))
    return chosen


def lattice_neighbors(x: torch.Tensor, grid: int) -> torch.Tensor:
    """Pairs ``(node, point)`` of the ``grid x grid`` lattice of cell centres
    ``((i + 0.5) / grid, (j + 0.5) / grid)`` and the points ``x`` within
    ``1.5 / grid`` of each other (node index ``i grid + j``).

    The lattice is regular, so each point's candidates are the 4 x 4 nodes
    around it, found by arithmetic: no sort, no cell list.

    Examples
    --------
    >>> import torch
    >>> from itersolve.nn import lattice_neighbors
    >>> lattice_neighbors(torch.tensor([[0.5, 0.5]]), 4).shape
    torch.Size([2, 4])
    """
    x = _check_points(x, "x")
    if isinstance(grid, bool) or not isinstance(grid, int) or grid < 1:
        raise ValueError(f"grid must be a positive int, got {grid!r}")
    base = torch.floor(x * grid - 0.5).long() - 1
    offsets = torch.arange(4, device=x.device)
    ix = (base[:, 0, None, None] + offsets[:, None]).expand(-1, 4, 4).reshape(-1)
    iy = (base[:, 1, None, None] + offsets[None, :]).expand(-1, 4, 4).reshape(-1)
    point = torch.arange(len(x), device=x.device).repeat_interleave(16)
    centre = torch.stack([ix, iy], 1).to(x.dtype).add_(0.5).div_(grid)
    radius = 1.5 / grid
    keep = (ix >= 0) & (ix < grid) & (iy >= 0) & (iy < grid)
    keep &= (centre - x[point]).square().sum(1) <= radius * radius
    return torch.stack([(ix * grid + iy)[keep], point[keep]])


# -- building blocks -------------------------------------------------------------


def _mlp(sizes: Sequence[int], *, last_norm: bool = False) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(nn.SiLU())
    if last_norm:
        layers.append(nn.LayerNorm(sizes[-1]))
    return nn.Sequential(*layers)


@torch.no_grad()
def _reinitialise(module: nn.Module, generator: torch.Generator) -> None:
    """Draw every weight again from ``generator`` (torch's default scales), so
    a seed fixes the network without touching the global random state."""
    for sub in module.modules():
        if isinstance(sub, (nn.Linear, nn.Conv2d)):
            bound = 1.0 / math.sqrt(sub.weight[0].numel())
            sub.weight.uniform_(-bound, bound, generator=generator)
            if sub.bias is not None:
                sub.bias.uniform_(-bound, bound, generator=generator)
        elif isinstance(sub, _SpectralConv):
            shape = sub.weight.shape
            draw = torch.randn(shape, dtype=sub.weight.dtype, generator=generator)
            sub.weight.copy_(draw / shape[1])


def _segment_mean(values: torch.Tensor, index: torch.Tensor, n: int) -> torch.Tensor:
    out = values.new_zeros(n, values.shape[1]).index_add(0, index, values)
    count = values.new_zeros(n).index_add(0, index, values.new_ones(len(index)))
    return out / count.clamp_min(1.0)[:, None]


def _check_history(history: Any, window: int) -> torch.Tensor:
    if not isinstance(history, torch.Tensor):
        raise TypeError(f"history must be a torch tensor, got {type(history).__name__}")
    if history.ndim != 3 or history.shape[2] != 2 or history.shape[0] != window + 1:
        raise ValueError(
            f"history must have shape ({window + 1}, n_particles, 2) (window + 1 "
            f"past positions), got {tuple(history.shape)}"
        )
    if not torch.isfinite(history).all():
        raise ValueError("history contains NaN or infinite particle positions")
    return history


class _Simulator(nn.Module):
    """Shared feature encoding, normalisation and rollout of both models."""

    vel_mean: torch.Tensor
    vel_std: torch.Tensor
    acc_mean: torch.Tensor
    acc_std: torch.Tensor

    def __init__(
        self,
        window: int,
        radius: float,
        bounds: tuple[float, float],
        latent: int,
        wall_radius: float | None = None,
    ) -> None:
        super().__init__()
        if isinstance(window, bool) or not isinstance(window, int) or window < 1:
            raise ValueError(f"window must be a positive int, got {window!r}")
        if not (isinstance(radius, (int, float)) and radius > 0):
            raise ValueError(f"radius must be positive, got {radius!r}")
        if not bounds[0] < bounds[1]:
            raise ValueError(f"bounds must satisfy lo < hi, got {bounds!r}")
        if isinstance(latent, bool) or not isinstance(latent, int) or latent < 1:
            raise ValueError(f"latent must be a positive int, got {latent!r}")
        self.window = window
        self.radius = float(radius)
        if wall_radius is None:
            wall_radius = radius
        if not (isinstance(wall_radius, (int, float)) and wall_radius > 0):
            raise ValueError(f"wall_radius must be positive, got {wall_radius!r}")
        self.wall_radius = float(wall_radius)
        self.bounds = (float(bounds[0]), float(bounds[1]))
        self.register_buffer("vel_mean", torch.zeros(2))
        self.register_buffer("vel_std", torch.ones(2))
        self.register_buffer("acc_mean", torch.zeros(2))
        self.register_buffer("acc_std", torch.ones(2))
        self.node_encoder = _mlp([2 * window + 4, latent, latent], last_norm=True)

    def fit_normalizer(
        self, trajectories: Sequence[torch.Tensor], noise_std: float = 0.0
    ) -> None:
        """Velocity and acceleration mean / std over the training frames.

        As in GNS, the training noise's variance is added to both (otherwise a
        nearly uniform acceleration, free fall, has a std far below the noise
        and the normalised targets are noise)."""
        vel = torch.cat([(p[1:] - p[:-1]).reshape(-1, 2) for p in trajectories])
        acc = torch.cat(
            [(p[2:] - 2 * p[1:-1] + p[:-2]).reshape(-1, 2) for p in trajectories]
        )
        self.vel_mean.copy_(vel.mean(0))
        noise = noise_std**2
        self.vel_std.copy_((vel.var(0) + noise).sqrt().clamp_min(1e-8))
        self.acc_mean.copy_(acc.mean(0))
        self.acc_std.copy_((acc.var(0) + noise).sqrt().clamp_min(1e-8))

    def _node_features(self, history: torch.Tensor) -> torch.Tensor:
        vel = (history[1:] - history[:-1] - self.vel_mean) / self.vel_std
        x = history[-1]
        lo, hi = self.bounds
        wall = torch.cat([x - lo, hi - x], 1) / self.wall_radius
        feats = torch.cat(
            [vel.permute(1, 0, 2).reshape(len(x), -1), wall.clamp(-1, 1)], 1
        )
        return self.node_encoder(feats)

    def acceleration(self, history: torch.Tensor) -> torch.Tensor:
        """Next-frame acceleration ``x_{t+1} - 2 x_t + x_{t-1}`` in position
        units, from ``history`` of shape ``(window + 1, n, 2)``."""
        return self._acceleration(_check_history(history, self.window))

    def _acceleration(self, history: torch.Tensor) -> torch.Tensor:
        out = self(history.to(self.acc_std.dtype))
        return (out * self.acc_std + self.acc_mean).to(history.dtype)

    def _advance(self, history: torch.Tensor, step: int) -> torch.Tensor:
        nxt = 2 * history[-1] - history[-2] + self._acceleration(history)
        # Checked before the clamp, which would turn an overflow into the wall.
        if not torch.isfinite(nxt.sum()):
            raise FloatingPointError(
                f"the rollout became non-finite at frame {step + 1} (the "
                "network's output overflowed)"
            )
        return nxt.clamp(self.bounds[0], self.bounds[1])

    @torch.no_grad()
    def rollout(self, history: torch.Tensor, steps: int) -> torch.Tensor:
        """``steps`` predicted frames ``(steps, n, 2)`` after ``history``
        (``FloatingPointError`` if a frame is non-finite)."""
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
            raise ValueError(f"steps must be a positive int, got {steps!r}")
        history = _check_history(history, self.window)
        frames = []
        for step in range(steps):
            nxt = self._advance(history, step)
            frames.append(nxt)
            history = torch.cat([history[1:], nxt[None]])
        return torch.stack(frames)


class _Interaction(nn.Module):
    """One interaction-network step with residual updates (GNS processor)."""

    def __init__(self, latent: int) -> None:
        super().__init__()
        self.edge = _mlp([3 * latent, latent, latent], last_norm=True)
        self.node = _mlp([2 * latent, latent, latent], last_norm=True)

    def forward(
        self, h: torch.Tensor, e: torch.Tensor, src: torch.Tensor, dst: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        e = e + self.edge(torch.cat([e, h[src], h[dst]], 1))
        agg = h.new_zeros(h.shape).index_add(0, dst, e)
        return h + self.node(torch.cat([h, agg], 1)), e


class GNS(_Simulator):
    """Graph network simulator on the full particle graph (baseline).

    Encode-process-decode (Sanchez-Gonzalez et al. 2020): node features are
    the ``window`` last normalised velocities and the clipped distances to the
    walls, edge features the displacement and distance over ``radius``, then
    ``message_steps`` interaction-network steps with residuals (sum
    aggregation through ``index_add``) and an MLP decoder to the normalised
    acceleration. The radius graph is rebuilt every frame on all particles.

    Compare with: DeepMind's ``learning_to_simulate`` (TensorFlow) and the
    ``torch_geometric`` re-implementations; paper 13's dense-graph baseline.

    Parameters
    ----------
    window
        Past velocities per node (``history`` holds ``window + 1`` frames).
    radius
        Connectivity radius.
    bounds
        ``(lo, hi)``: the walls of the square box (distance features, and the
        rollout clamps positions to the box).
    latent, message_steps
        Width and number of message-passing steps.
    wall_radius
        Range of the wall-distance features (clipped to ``[-1, 1]`` after
        division by it; default ``radius``). Set it to the walls' range of
        action when that exceeds the connectivity radius (MPM walls act
        through grid nodes, cells away), or the network sees an impact only
        when it has happened.
    seed
        Seed of the weight initialisation.

    Examples
    --------
    >>> import torch
    >>> from itersolve.nn import GNS
    >>> model = GNS(window=2, radius=0.1, latent=8, message_steps=1, seed=0)
    >>> history = torch.rand(3, 20, 2) * 0.5 + 0.25
    >>> tuple(model.rollout(history, steps=2).shape)
    (2, 20, 2)
    """

    def __init__(
        self,
        *,
        window: int = 5,
        radius: float = 0.015,
        bounds: tuple[float, float] = (0.09, 0.91),
        latent: int = 64,
        message_steps: int = 3,
        wall_radius: float | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__(window, radius, bounds, latent, wall_radius)
        generator = torch.Generator().manual_seed(seed)
        if isinstance(message_steps, bool) or not isinstance(message_steps, int):
            raise ValueError(f"message_steps must be an int, got {message_steps!r}")
        if message_steps < 1:
            raise ValueError(f"message_steps must be >= 1, got {message_steps!r}")
        self.edge_encoder = _mlp([3, latent, latent], last_norm=True)
        self.processor = nn.ModuleList(
            _Interaction(latent) for _ in range(message_steps)
        )
        self.decoder = _mlp([latent, latent, 2])
        _reinitialise(self, generator)

    def forward(self, history: torch.Tensor) -> torch.Tensor:
        """Normalised acceleration ``(n, 2)``."""
        x = history[-1]
        src, dst = radius_graph(x, self.radius)
        rel = (x[src] - x[dst]) / self.radius
        e = self.edge_encoder(torch.cat([rel, rel.norm(dim=1, keepdim=True)], 1))
        h = self._node_features(history)
        for layer in self.processor:
            h, e = layer(h, e, src, dst)
        return self.decoder(h)


class _SpectralConv(nn.Module):
    """FNO layer: a learned multiplier on the lowest ``modes`` Fourier modes."""

    def __init__(self, channels: int, modes: int) -> None:
        super().__init__()
        scale = 1.0 / channels
        self.modes = modes
        shape = (2, channels, channels, modes, modes)
        self.weight = nn.Parameter(scale * torch.randn(*shape, dtype=torch.cfloat))
        self.local = nn.Conv2d(channels, channels, 1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        n = z.shape[-1]
        m = self.modes
        spec = torch.fft.rfft2(z)
        out = torch.zeros_like(spec)
        out[:, :, :m, :m] = torch.einsum(
            "bixy,ioxy->boxy", spec[:, :, :m, :m], self.weight[0]
        )
        out[:, :, -m:, :m] = torch.einsum(
            "bixy,ioxy->boxy", spec[:, :, -m:, :m], self.weight[1]
        )
        return torch.tanh(torch.fft.irfft2(out, s=(n, n)) + self.local(z))


class GraphOperator(_Simulator):
    """GIOROM's time stepper on a reduced point cloud.

    Node encoder as in :class:`GNS`; one kernel-integral (graph neural
    operator) layer on the reduced cloud's radius graph, ``h_i += mean_{j:
    |x_j - x_i| <= r} k([(x_j - x_i)/r, h_j])``; a GNO encoder onto a latent
    ``grid x grid`` lattice over the box (kernel integral over the particles
    within ``1.5`` lattice spacings of each node, :func:`lattice_neighbors`);
    ``fno_layers`` Fourier layers (``modes`` modes, tanh); a GNO decoder back
    to the particles; an MLP to the normalised acceleration. Every kernel ``k``
    is an MLP.

    Parameters
    ----------
    window, radius, bounds, latent, wall_radius, seed
        As for :class:`GNS` (``radius``: the reduced cloud's, larger).
    grid, modes, fno_layers
        Latent lattice size, Fourier modes kept, Fourier layers.

    Examples
    --------
    >>> import torch
    >>> from itersolve.nn import GraphOperator
    >>> model = GraphOperator(window=2, radius=0.2, latent=8, grid=8, modes=3)
    >>> tuple(model.acceleration(torch.rand(3, 10, 2) * 0.5 + 0.25).shape)
    (10, 2)
    """

    def __init__(
        self,
        *,
        window: int = 5,
        radius: float = 0.05,
        bounds: tuple[float, float] = (0.09, 0.91),
        latent: int = 32,
        grid: int = 16,
        modes: int = 6,
        fno_layers: int = 2,
        wall_radius: float | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__(window, radius, bounds, latent, wall_radius)
        generator = torch.Generator().manual_seed(seed)
        if isinstance(grid, bool) or not isinstance(grid, int) or grid < 4:
            raise ValueError(f"grid must be an int >= 4, got {grid!r}")
        if (
            isinstance(modes, bool)
            or not isinstance(modes, int)
            or not 1 <= modes <= grid // 2
        ):
            raise ValueError(f"modes must be an int in [1, grid // 2], got {modes!r}")
        self.grid = grid
        self.latent = latent
        centres = (torch.arange(grid, dtype=torch.float32) + 0.5) / grid
        gx, gy = torch.meshgrid(centres, centres, indexing="ij")
        self.register_buffer("nodes", torch.stack([gx, gy], -1).reshape(-1, 2))
        self.grid_radius = 1.5 / grid
        self.local_kernel = _mlp([latent + 3, latent, latent])
        self.encode_kernel = _mlp([latent + 2, latent, latent])
        self.fno = nn.Sequential(
            *[_SpectralConv(latent, modes) for _ in range(fno_layers)]
        )
        self.decode_kernel = _mlp([latent + 2, latent, latent])
        self.decoder = _mlp([2 * latent, latent, 2])
        _reinitialise(self, generator)

    nodes: torch.Tensor

    def forward(self, history: torch.Tensor) -> torch.Tensor:
        x = history[-1]
        n = len(x)
        h = self._node_features(history)
        src, dst = radius_graph(x, self.radius)
        rel = (x[src] - x[dst]) / self.radius
        msg = self.local_kernel(
            torch.cat([rel, rel.norm(dim=1, keepdim=True), h[src]], 1)
        )
        h = h + _segment_mean(msg, dst, n)
        nodes = self.nodes.to(x.dtype)
        g, p = lattice_neighbors(x, self.grid)
        rel_g = (x[p] - nodes[g]) / self.grid_radius
        z = _segment_mean(
            self.encode_kernel(torch.cat([rel_g, h[p]], 1)), g, len(nodes)
        )
        z = z.T.reshape(1, self.latent, self.grid, self.grid)
        z = self.fno(z).reshape(self.latent, -1).T
        u = _segment_mean(self.decode_kernel(torch.cat([-rel_g, z[g]], 1)), p, n)
        return self.decoder(torch.cat([h, u], 1))


class KernelInterpolator(nn.Module):
    """Learned kernel interpolation from a sparse cloud to arbitrary points.

    For each query point ``q`` and its ``k`` nearest sparse points ``s_j`` (in
    the reference configuration), ``u(q) = sum_j w_qj u(s_j)`` with
    ``w_qj = softmax_j(kappa((s_j - q) / h_q))``, ``h_q`` the distance to the
    ``k``-th neighbour and ``kappa`` an MLP: a discretisation-agnostic
    integral operator whose weights are learned (trained by
    :func:`train_giorom` on displacement fields). After :meth:`bind` the
    weights are fixed, so each evaluation is one gather of ``k`` values per
    query point.

    Parameters
    ----------
    k
        Neighbours per query point.
    hidden
        Width of the kernel MLP.
    seed
        Seed of the weight initialisation.

    Examples
    --------
    >>> import torch
    >>> from itersolve.nn import KernelInterpolator
    >>> up = KernelInterpolator(k=3)
    >>> sparse, dense = torch.rand(10, 2), torch.rand(50, 2)
    >>> up.bind(dense, sparse)
    >>> tuple(up(torch.ones(10, 2)).shape)
    (50, 2)
    """

    def __init__(self, *, k: int = 8, hidden: int = 32, seed: int = 0) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(seed)
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"k must be a positive int, got {k!r}")
        self.k = k
        self.kernel = _mlp([3, hidden, hidden, 1])
        self._index: torch.Tensor | None = None
        self._features: torch.Tensor | None = None
        self._weights: torch.Tensor | None = None
        _reinitialise(self, generator)

    def bind(self, query: torch.Tensor, sparse: torch.Tensor) -> None:
        """Fix the query and sparse reference points (``k``-nearest search in
        chunks of 4096 query rows: memory ``O(4096 n_sparse)``)."""
        query = _check_points(query, "query")
        sparse = _check_points(sparse, "sparse")
        k = min(self.k, len(sparse))
        dist, index = [], []
        for chunk in query.split(4096):
            d, i = torch.cdist(chunk, sparse).topk(k, dim=1, largest=False)
            dist.append(d)
            index.append(i)
        d, i = torch.cat(dist), torch.cat(index)
        scale = d[:, -1:].clamp_min(1e-12)
        rel = (sparse[i] - query[:, None, :]) / scale[..., None]
        self._index = i
        self._features = torch.cat([rel, (d / scale)[..., None]], -1)
        self._weights = None

    def _dtype(self) -> torch.dtype:
        return next(self.parameters()).dtype

    def weights(self) -> torch.Tensor:
        if self._features is None:
            raise RuntimeError("call bind(query, sparse) before evaluating")
        logits = self.kernel(self._features.to(self._dtype()))[..., 0]
        return torch.softmax(logits, dim=1)

    def forward(self, values: torch.Tensor) -> torch.Tensor:
        """Interpolate ``values`` ``(n_sparse, d)`` to the bound query points."""
        if self._index is None:
            raise RuntimeError("call bind(query, sparse) before evaluating")
        if self.training or self._weights is None:
            w = self.weights()
            if not self.training:
                self._weights = w.detach()
        else:
            w = self._weights
        return (w.to(values.dtype)[..., None] * values[self._index]).sum(1)


class GIOROM(nn.Module):
    """Reduced-order learned simulator: a :class:`GraphOperator` on
    ``n_reduced`` farthest-point-sampled particles plus a
    :class:`KernelInterpolator` back to the full cloud.

    A rollout samples the reduced cloud once (farthest points of the last
    history frame), steps only the reduced cloud, and reconstructs every full
    frame as ``x(t) = X + u(X)``, where ``u`` is the reduced particles'
    displacement since the last history frame interpolated to the full cloud's
    positions ``X`` in that frame (Lagrangian: the kernel weights are computed
    once per rollout). Cost per frame: the reduced graph, the operator on
    ``n_reduced`` points and a fixed lattice, and one ``k``-term gather per full
    particle.

    Compare with: the reference ``HrishikeshVish/GIOROM`` (offline
    ``giorom2d`` time stepper and online kernel ROM; GNO encoder, transformer
    or FNO processor, GNO decoder).

    Parameters
    ----------
    operator
        The reduced-cloud time stepper.
    upsampler
        The learned kernel interpolator.
    n_reduced
        Reduced cloud size (clipped to the full cloud's).

    References
    ----------
    H. Viswanath et al., "Reduced-order neural operators: learning Lagrangian
    dynamics on highly sparse graphs", arXiv:2407.03925 (2024).

    Examples
    --------
    >>> import torch
    >>> from itersolve.nn import GIOROM, GraphOperator, KernelInterpolator
    >>> op = GraphOperator(window=2, radius=0.2, latent=8, grid=8, modes=3)
    >>> model = GIOROM(op, KernelInterpolator(k=3), n_reduced=10)
    >>> history = torch.rand(3, 40, 2) * 0.5 + 0.25
    >>> tuple(model.rollout(history, steps=2).shape)
    (2, 40, 2)
    """

    def __init__(
        self, operator: GraphOperator, upsampler: KernelInterpolator, n_reduced: int
    ) -> None:
        super().__init__()
        if not isinstance(operator, GraphOperator):
            raise TypeError(
                f"operator must be a GraphOperator, got {type(operator).__name__}"
            )
        if not isinstance(upsampler, KernelInterpolator):
            raise TypeError(
                "upsampler must be a KernelInterpolator, got "
                f"{type(upsampler).__name__}"
            )
        if (
            isinstance(n_reduced, bool)
            or not isinstance(n_reduced, int)
            or n_reduced < 2
        ):
            raise ValueError(f"n_reduced must be an int >= 2, got {n_reduced!r}")
        self.operator = operator
        self.upsampler = upsampler
        self.n_reduced = n_reduced

    @property
    def window(self) -> int:
        return self.operator.window

    def reduce(self, positions: torch.Tensor) -> torch.Tensor:
        """Indices of the reduced cloud for a ``(n, 2)`` frame."""
        return farthest_point_sample(positions, min(self.n_reduced, len(positions)))

    @torch.no_grad()
    def rollout(self, history: torch.Tensor, steps: int) -> torch.Tensor:
        """``steps`` predicted full-cloud frames ``(steps, n, 2)``."""
        history = _check_history(history, self.window)
        index = self.reduce(history[-1])
        reference = history[-1]
        self.upsampler.eval()
        self.upsampler.bind(reference, reference[index])
        reduced = self.operator.rollout(history[:, index], steps)
        disp = reduced - reference[index]
        return torch.stack([reference + self.upsampler(d) for d in disp])


# -- training ----------------------------------------------------------------------


def _check_trajectories(trajectories: Any) -> list[torch.Tensor]:
    if isinstance(trajectories, torch.Tensor):
        trajectories = [trajectories]
    out = []
    for i, p in enumerate(trajectories):
        p = getattr(p, "positions", p)
        if not isinstance(p, torch.Tensor) or p.ndim != 3 or p.shape[2] != 2:
            shape = tuple(p.shape) if isinstance(p, torch.Tensor) else type(p).__name__
            raise ValueError(
                f"trajectories[{i}] must be positions of shape (frames, n, 2), "
                f"got {shape}"
            )
        if not torch.isfinite(p).all():
            raise ValueError(f"trajectories[{i}] contains NaN or infinite positions")
        out.append(p)
    if not out:
        raise ValueError("trajectories must not be empty")
    return out


def _noisy_sample_loss(
    model: _Simulator,
    trajectories: list[torch.Tensor],
    noise_std: float,
    generator: torch.Generator,
) -> torch.Tensor:
    """Normalised acceleration MSE on one random (trajectory, frame) pair."""
    window, dtype = model.window, model.acc_std.dtype
    k = int(torch.randint(len(trajectories), (1,), generator=generator))
    p = trajectories[k]
    t = int(torch.randint(window, len(p) - 1, (1,), generator=generator))
    hist = p[t - window : t + 1]
    # Random-walk noise on the input velocities (GNS). The target's next
    # position moves with the last noise offset, so the model learns to
    # undo the last velocity error (observable), not the offset (not).
    steps_noise = (
        noise_std
        / math.sqrt(window)
        * torch.randn(window, *hist.shape[1:], generator=generator, dtype=dtype)
    )
    walk = torch.cat([torch.zeros_like(hist[:1]), steps_noise.cumsum(0)])
    noisy = hist + walk
    target = p[t + 1] + walk[-1] - 2 * noisy[-1] + noisy[-2]
    pred = model(noisy)
    return ((pred - (target - model.acc_mean) / model.acc_std) ** 2).mean()


def _train_stepper(
    model: _Simulator,
    trajectories: list[torch.Tensor],
    *,
    steps: int,
    lr: float,
    noise_std: float,
    seed: int,
    batch: int = 1,
) -> dict[str, Any]:
    window = model.window
    for i, p in enumerate(trajectories):
        if len(p) < window + 2:
            raise ValueError(
                f"trajectories[{i}] has {len(p)} frames; need at least window + 2 = "
                f"{window + 2}"
            )
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive int, got {steps!r}")
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise ValueError(f"batch must be a positive int, got {batch!r}")
    if not (lr > 0):
        raise ValueError(f"lr must be positive, got {lr!r}")
    if not (noise_std >= 0):
        raise ValueError(f"noise_std must be >= 0, got {noise_std!r}")
    dtype = model.acc_std.dtype
    trajectories = [p.to(dtype) for p in trajectories]
    model.fit_normalizer(trajectories, noise_std)
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    decay = 0.1 ** (1.0 / max(steps, 1))
    schedule = torch.optim.lr_scheduler.ExponentialLR(optimizer, decay)
    losses = []
    start = time.perf_counter()
    model.train()
    for _ in range(steps):
        loss = (
            sum(
                (
                    _noisy_sample_loss(model, trajectories, noise_std, generator)
                    for _ in range(batch)
                ),
                torch.zeros((), dtype=dtype),
            )
            / batch
        )
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        losses.append(float(loss.detach()))
    model.eval()
    if not math.isfinite(losses[-1]):
        raise FloatingPointError(
            f"training diverged (loss {losses[-1]}); lower lr ({lr})"
        )
    return {"loss": losses, "seconds": time.perf_counter() - start}


def train_gns(
    model: GNS,
    trajectories: Sequence[Any],
    *,
    steps: int = 300,
    lr: float = 1e-3,
    noise_std: float = 3e-4,
    seed: int = 0,
    batch: int = 1,
) -> dict[str, Any]:
    """Train a :class:`GNS` on one-step accelerations of full trajectories.

    Each Adam step averages the loss of ``batch`` random (trajectory, frame)
    pairs; learning rate
    decays exponentially to ``lr / 10`` over ``steps``. Velocity and
    acceleration statistics are fitted on the trajectories first.

    Parameters
    ----------
    model
        The network (trained in place).
    trajectories
        Position tensors ``(frames, n, 2)`` or :class:`~itersolve.problems.
        MPMTrajectory` objects.
    steps, lr, noise_std, seed
        Adam steps, initial learning rate, std of the random-walk input noise
        accumulated over the window (position units), sampling seed.
    batch
        Frames per Adam step (GNS: 2). Rare large accelerations (wall
        impacts) dominate a one-frame gradient; averaging frames tames them.

    Returns
    -------
    dict
        ``{"loss": [...], "seconds": float}``.

    Examples
    --------
    >>> import torch
    >>> from itersolve.nn import GNS, train_gns
    >>> p = torch.rand(1, 30, 2) * 0.5 + 0.25 + 0.01 * torch.arange(8.0)[:, None, None]
    >>> model = GNS(window=2, radius=0.1, latent=8, message_steps=1)
    >>> len(train_gns(model, [p], steps=3)["loss"])
    3
    """
    if not isinstance(model, GNS):
        raise TypeError(f"model must be a GNS, got {type(model).__name__}")
    trajs = _check_trajectories(trajectories)
    return _train_stepper(
        model, trajs, steps=steps, lr=lr, noise_std=noise_std, seed=seed, batch=batch
    )


def train_giorom(
    model: GIOROM,
    trajectories: Sequence[Any],
    *,
    steps: int = 300,
    upsampler_steps: int = 200,
    lr: float = 1e-3,
    noise_std: float = 3e-4,
    seed: int = 0,
    batch: int = 1,
) -> dict[str, Any]:
    """Train a :class:`GIOROM`: the operator on the reduced clouds, then the
    kernel upsampler on displacement fields.

    Each trajectory is reduced once (farthest points of its first frame; the
    reduced particles are real particles, so their accelerations are exact
    targets) and the operator is trained like :func:`train_gns` (``batch``
    frames per Adam step). The
    upsampler is then fitted by Adam on ``||X + u(X) - x(t)||^2``: for random
    (trajectory, start frame, horizon up to 20 frames) triples, the true
    reduced displacements interpolated to the full cloud against its true
    positions.

    Returns
    -------
    dict
        ``{"loss": [...], "upsampler_loss": [...], "seconds": float}``.

    Examples
    --------
    >>> import torch
    >>> from itersolve.nn import GIOROM, GraphOperator, KernelInterpolator, train_giorom
    >>> p = torch.rand(1, 30, 2) * 0.5 + 0.25 + 0.01 * torch.arange(8.0)[:, None, None]
    >>> op = GraphOperator(window=2, radius=0.2, latent=8, grid=8, modes=3)
    >>> model = GIOROM(op, KernelInterpolator(k=3), n_reduced=10)
    >>> out = train_giorom(model, [p], steps=2, upsampler_steps=2)
    >>> len(out["loss"]), len(out["upsampler_loss"])
    (2, 2)
    """
    if not isinstance(model, GIOROM):
        raise TypeError(f"model must be a GIOROM, got {type(model).__name__}")
    trajs = _check_trajectories(trajectories)
    if isinstance(upsampler_steps, bool) or not isinstance(upsampler_steps, int):
        raise ValueError(f"upsampler_steps must be an int, got {upsampler_steps!r}")
    start = time.perf_counter()
    indices = [model.reduce(p[0]) for p in trajs]
    out = _train_stepper(
        model.operator,
        [p[:, i] for p, i in zip(trajs, indices, strict=True)],
        steps=steps,
        lr=lr,
        noise_std=noise_std,
        seed=seed,
        batch=batch,
    )
    generator = torch.Generator().manual_seed(seed + 1)
    up = model.upsampler
    optimizer = torch.optim.Adam(up.parameters(), lr=lr)
    up.train()
    up_losses = []
    for _ in range(upsampler_steps):
        k = int(torch.randint(len(trajs), (1,), generator=generator))
        p = trajs[k].to(up._dtype())
        t0 = int(torch.randint(len(p) - 1, (1,), generator=generator))
        t1 = min(len(p) - 1, t0 + 1 + int(torch.randint(20, (1,), generator=generator)))
        index = model.reduce(p[t0]) if t0 else indices[k]
        up.bind(p[t0], p[t0, index])
        pred = up(p[t1, index] - p[t0, index])
        truth = p[t1] - p[t0]
        scale = truth.square().mean().clamp_min(1e-12)
        loss = (pred - truth).square().mean() / scale
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        up_losses.append(float(loss.detach()))
    up.eval()
    up._weights = None
    return {
        "loss": out["loss"],
        "upsampler_loss": up_losses,
        "seconds": time.perf_counter() - start,
    }


def rollout_error(
    predicted: torch.Tensor, truth: torch.Tensor, start: torch.Tensor
) -> float:
    """Relative position error of a rollout: ``||X_pred - X_true|| / ||X_true
    - x_start||`` over all predicted frames and particles (Frobenius norms).

    ``0`` is exact; ``1`` is what standing still (predicting ``x_start``)
    scores.

    Examples
    --------
    >>> import torch
    >>> from itersolve.nn import rollout_error
    >>> start = torch.zeros(5, 2)
    >>> truth = torch.ones(3, 5, 2)
    >>> rollout_error(start.expand(3, 5, 2), truth, start)
    1.0
    """
    if predicted.shape != truth.shape:
        raise ValueError(
            f"predicted and truth must have the same shape, got "
            f"{tuple(predicted.shape)} and {tuple(truth.shape)}"
        )
    den = float((truth - start).norm())
    return float((predicted - truth).norm()) / max(den, 1e-300)
