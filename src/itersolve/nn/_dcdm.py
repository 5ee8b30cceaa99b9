"""The deep conjugate direction method's network and its unsupervised training.

Kaneda, Akar, Chen, Kala, Hyde, Teran, *A Deep Conjugate Direction Method for
Iteratively Solving Linear Systems*, ICML 2023. The network ``f`` learns
``A^{-1}`` up to a scalar from right-hand sides alone (no solutions): for a
right-hand side ``b`` and ``y = f(b)`` the best multiple ``s y`` leaves the
residual ``b - s A y`` with ``s = y^T b / y^T A y``, and the loss is its
squared 2-norm. The solver side is :class:`itersolve.linear.LearnedPreconditioner`
inside :class:`itersolve.linear.FlexibleCG` (``truncation=2``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import nn

from itersolve._core.operators import _torch_csr_from_scipy
from itersolve.linear._learned import LearnedPreconditioner, rms


def _positive_int(value: Any, name: str, minimum: int = 1) -> int:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, np.integer))
        or value < minimum
    ):
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return int(value)


class _ResBlock(nn.Module):
    """``x + conv(act(conv(act(x))))`` at one resolution."""

    def __init__(self, channels: int, conv: Any, act: nn.Module) -> None:
        super().__init__()
        self.conv1 = conv(channels, channels, 3, padding=1)
        self.conv2 = conv(channels, channels, 3, padding=1)
        self.act = act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(self.act(self.conv1(self.act(x))))


class DCDMNet(nn.Module):
    """A small fully convolutional U-Net with residual blocks, ``f ~ A^{-1}``.

    The shape of the paper's network, shrunk: a linear 3x3 convolution to
    ``channels`` features, a residual block per level then a 2x average pool
    (``levels`` times), a residual block at the coarsest level, then per level
    a 2x upsampling, the skip concatenated and merged by a 1x1 convolution,
    a residual block; a final linear 1x1 convolution to one channel. ReLU only
    inside the blocks. Fully convolutional: a network trained on ``64^2``
    grids applies to ``128^2`` ones (inputs are zero-padded to a multiple of
    ``2**levels`` and the output cropped back).

    Parameters
    ----------
    channels
        Feature channels at every level (16: about 35k parameters in 2-D with
        ``levels=4``).
    levels
        Number of 2x coarsenings, each with its own weights; ``None``
        shares one set of weights between all levels and coarsens
        until the coarsest grid has 4 cells per side, like a multigrid V-cycle:
        the receptive field then covers the whole grid at every resolution,
        which is what the smooth modes need when a ``64^2``-trained network is
        applied at ``128^2`` (in our runs it trained less well than per-level
        weights).
    dim
        2 (``Conv2d``, grids ``(H, W)``) or 3 (``Conv3d``, the paper's ``N^3``).
    in_channels
        2 for the residual plus the geometry mask
        (:class:`~itersolve.linear.LearnedPreconditioner` with ``mask``), 1 for
        the residual alone.
    activation
        ``"relu"`` (the paper) or ``None``: a linear network, i.e. a learned
        linear preconditioner (then DCDM is flexible PCG with a fixed ``M``).
    bias
        ``False`` drops every bias: with ``in_channels=1`` the network is then
        positively homogeneous, ``f(c r) = c f(r)`` for ``c > 0``.
    seed
        Seed of the weight initialisation (``None``: torch's global generator).

    Examples
    --------
    >>> import torch
    >>> from itersolve.nn import DCDMNet
    >>> net = DCDMNet(channels=4, levels=None, seed=0)
    >>> net(torch.zeros(3, 2, 10, 12)).shape, net.depth((10, 12))
    (torch.Size([3, 1, 10, 12]), 1)
    """

    def __init__(
        self,
        channels: int = 16,
        levels: int | None = 4,
        *,
        dim: int = 2,
        in_channels: int = 2,
        activation: str | None = "relu",
        bias: bool = True,
        seed: int | None = None,
    ) -> None:
        super().__init__()
        self.channels = _positive_int(channels, "channels")
        self.levels = None if levels is None else _positive_int(levels, "levels", 0)
        self.in_channels = _positive_int(in_channels, "in_channels")
        if dim not in (2, 3):
            raise ValueError(f"dim must be 2 or 3, got {dim!r}")
        self.dim = dim
        if activation not in ("relu", None):
            raise ValueError(f"activation must be 'relu' or None, got {activation!r}")
        if not isinstance(bias, bool):
            raise TypeError(f"bias must be a bool, got {bias!r}")
        self.activation = activation
        act = nn.ReLU() if activation == "relu" else nn.Identity()
        conv = partial(nn.Conv2d if dim == 2 else nn.Conv3d, bias=bias)
        with torch.random.fork_rng(devices=[]):
            if seed is not None:
                torch.manual_seed(seed)
            c = self.channels
            self.inp = conv(self.in_channels, c, 3, padding=1)
            sets = 1 if self.levels is None else self.levels
            self.down = nn.ModuleList(_ResBlock(c, conv, act) for _ in range(sets))
            self.bottom = _ResBlock(c, conv, act)
            self.merge = nn.ModuleList(conv(2 * c, c, 1) for _ in range(sets))
            self.up = nn.ModuleList(_ResBlock(c, conv, act) for _ in range(sets))
            self.out = conv(c, 1, 1)

    def depth(self, size: Sequence[int]) -> int:
        """Number of coarsenings applied to a grid of this size: ``levels``, or
        with shared weights as many as keep the coarsest grid >= 4 cells."""
        if self.levels is not None:
            return self.levels
        return max(0, (min(size) // 4).bit_length() - 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim == self.dim + 1 and self.in_channels == 1:
            x = x.unsqueeze(1)
        if x.ndim != self.dim + 2 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"DCDMNet expects input of shape (batch, {self.in_channels}, "
                f"{'D, ' if self.dim == 3 else ''}H, W), got {tuple(x.shape)}"
            )
        size = x.shape[2:]
        depth = self.depth(size)
        unit = 2**depth
        pad: list[int] = []
        for s in reversed(size):
            pad += [0, -s % unit]
        h = self.inp(F.pad(x, pad) if any(pad) else x)
        pool = F.avg_pool2d if self.dim == 2 else F.avg_pool3d
        shared = self.levels is None
        skips = []
        for level in range(depth):
            h = self.down[0 if shared else level](h)
            skips.append(h)
            h = pool(h, 2)
        h = self.bottom(h)
        for level in reversed(range(depth)):
            h = F.interpolate(h, scale_factor=2.0, mode="nearest")
            h = torch.cat([h, skips[level]], dim=1)
            level = 0 if shared else level
            h = self.up[level](self.merge[level](h))
        out = self.out(h)
        crop = (slice(None), slice(None), *(slice(0, s) for s in size))
        return out[crop]


# -- training data -------------------------------------------------------------


def _as_scipy(A: Any, name: str = "A") -> sp.csr_array:
    if isinstance(A, torch.Tensor):
        A = (
            A.to_dense().detach().cpu().numpy()
            if A.is_sparse or A.is_sparse_csr
            else (A.detach().cpu().numpy())
        )
    if sp.issparse(A):
        out = sp.csr_array(A, dtype=np.float64)
    else:
        arr = np.asarray(A, dtype=np.float64)
        if arr.ndim != 2:
            raise ValueError(f"{name} must be a matrix, got shape {arr.shape}")
        out = sp.csr_array(arr)
    if out.shape[0] != out.shape[1]:
        raise ValueError(f"{name} must be square, got shape {out.shape}")
    return out


def lanczos_ritz(
    A: Any, n_lanczos: int, *, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Ritz values (ascending) and Ritz vectors ``(n, m)`` of ``m`` Lanczos steps.

    Lanczos with full reorthogonalisation (twice, classical Gram-Schmidt) from
    the start vector ``A g``, ``g`` standard normal (as the reference code, so
    the start has no null-space component); stops early on an invariant
    subspace. Compare with ``scipy.sparse.linalg.eigsh``, which converges a few
    extreme pairs instead of spreading ``m`` Ritz pairs over the spectrum.

    Examples
    --------
    >>> from itersolve.problems import poisson
    >>> values, vectors = lanczos_ritz(poisson(30, dim=1), 30, seed=0)
    >>> bool(abs(values[0] - 4 * np.sin(np.pi / 62) ** 2) < 1e-10)
    True
    """
    A = _as_scipy(A)
    n = A.shape[0]
    m = min(_positive_int(n_lanczos, "n_lanczos"), n)
    rng = np.random.default_rng(seed)
    q = A @ rng.standard_normal(n)
    Q = np.zeros((n, m))
    alpha, beta = np.zeros(m), np.zeros(m)
    q /= np.linalg.norm(q)
    k = m
    for j in range(m):
        Q[:, j] = q
        w = A @ q
        alpha[j] = q @ w
        for _ in range(2):  # twice is enough (Kahan-Parlett)
            w -= Q[:, : j + 1] @ (Q[:, : j + 1].T @ w)
        beta[j] = np.linalg.norm(w)
        if j + 1 == m or beta[j] <= 1e-12 * abs(alpha[j]):
            k = j + 1
            break
        q = w / beta[j]
    T = np.diag(alpha[:k]) + np.diag(beta[: k - 1], 1) + np.diag(beta[: k - 1], -1)
    values, S = np.linalg.eigh(T)
    return values, Q[:, :k] @ S


def ritz_rhs_dataset(
    A: Any,
    *,
    n_lanczos: int,
    n_samples: int,
    boost_low: float = 9.0,
    theta: int | None = None,
    drop_null: bool = True,
    seed: int = 0,
    energies: bool = False,
) -> Any:
    """Training right-hand sides: random mixtures of Ritz vectors of ``A``.

    ``m = n_lanczos`` Ritz pairs (:func:`lanczos_ritz`); Ritz values below
    ``1e-10`` times the largest are dropped (``drop_null``: null-space
    vectors of a singular ``A`` cannot be right-hand sides); coefficients are
    standard normal, those of the lowest ``m/2 + theta`` pairs multiplied by
    ``boost_low`` (the smooth modes plain CG is slow on); each mixture is
    normalised to unit 2-norm. The paper uses ``m = 10000``, ``theta = 500``;
    ``theta=None`` keeps that proportion, ``m // 20``.

    Returns
    -------
    numpy.ndarray
        ``(n_samples, n)`` float64 rows; with ``energies=True`` also each
        row's ``b^T A^{-1} b`` through the Ritz pairs (the Galerkin value, a
        lower bound), as a pair.

    Examples
    --------
    >>> from itersolve.problems import poisson
    >>> B = ritz_rhs_dataset(poisson(8, dim=2), n_lanczos=20, n_samples=5, seed=0)
    >>> B.shape, bool(np.allclose(np.linalg.norm(B, axis=1), 1.0))
    ((5, 64), True)
    """
    n_samples = _positive_int(n_samples, "n_samples")
    if not (isinstance(boost_low, (int, float)) and boost_low > 0):
        raise ValueError(f"boost_low must be a positive number, got {boost_low!r}")
    values, vectors = lanczos_ritz(A, n_lanczos, seed=seed)
    if drop_null:
        keep = values > 1e-10 * max(float(np.abs(values).max()), 1e-300)
        values, vectors = values[keep], vectors[:, keep]
    m = values.size
    if m == 0:
        raise ValueError("A has no Ritz value above the null-space threshold")
    theta = m // 20 if theta is None else _positive_int(theta, "theta", 0)
    rng = np.random.default_rng(None if seed is None else seed + 1)
    coef = rng.standard_normal((n_samples, m))
    coef[:, : min(m, m // 2 + theta)] *= boost_low
    B = coef @ vectors.T
    norms = np.linalg.norm(B, axis=1)
    if energies:
        # b^T A^{-1} b of each unit row through the Ritz pairs: the Galerkin
        # value, a lower bound of the true one (exact for eigenvectors).
        return B / norms[:, None], (coef**2 / values).sum(1) / norms**2
    return B / norms[:, None]


# -- loss and training ---------------------------------------------------------


def dcdm_loss(
    A: Any, b: torch.Tensor, y: torch.Tensor, energy: torch.Tensor | None = None
) -> torch.Tensor:
    """The scale-invariant unsupervised loss of DCDM, averaged over a batch.

    For rows ``b_i`` and network outputs ``y_i``, the paper's (``energy=None``)::

        s_i = y_i^T b_i / y_i^T A y_i,   loss = mean_i ||b_i - s_i A y_i||^2

    i.e. the residual of the best multiple of ``y_i``, so ``f`` needs
    ``A^{-1}`` only up to a scalar (the conjugate-direction step re-solves the
    scale). With ``energy`` (``e_i = b_i^T A^{-1} b_i``) the same residual in
    the ``A^{-1}``-norm, relative::

        loss = mean_i ||b_i - s_i A y_i||_{A^{-1}}^2 / e_i
             = mean_i 1 - (y_i^T b_i)^2 / (y_i^T A y_i e_i)

    the fraction of the energy error one conjugate-direction step along
    ``y_i`` leaves (it weighs smooth modes as the solver does; the 2-norm
    loss is dominated by the rough modes CG handles anyway). ``A``: a torch
    matrix (dense or sparse) or anything with ``@`` acting on columns
    ``(n, k)``.

    Examples
    --------
    >>> import torch
    >>> A = torch.diag(torch.tensor([1.0, 4.0]))
    >>> b = torch.tensor([[1.0, 1.0]])
    >>> float(dcdm_loss(A, b, 3.0 * torch.linalg.solve(A, b.T).T))
    0.0
    """
    Ay = (A @ y.T).T
    yb = (y * b).sum(1, keepdim=True)
    yAy = (y * Ay).sum(1, keepdim=True)
    if energy is not None:
        return (1.0 - yb[:, 0] ** 2 / (yAy[:, 0] * energy)).mean()
    return ((b - (yb / yAy) * Ay) ** 2).sum(1).mean()


@dataclass
class DCDMTraining:
    """What :func:`train_dcdm` did: the trained network and its loss curve.

    Attributes
    ----------
    net
        The network (the object passed in, trained in place, left in eval
        mode with the weights of ``best_epoch``).
    losses
        Mean training loss of each epoch.
    best_epoch, best_loss
        The epoch whose weights were kept (lowest mean loss; 0-based).
    n_samples
        Right-hand sides generated (over all systems).
    seconds
        Wall time of data generation plus training.
    data_seconds
        Of which data generation (Lanczos and mixtures).

    Examples
    --------
    >>> from itersolve.nn import DCDMNet, DCDMTraining
    >>> report = DCDMTraining(DCDMNet(channels=2, levels=1), losses=[0.9, 0.5])
    >>> report.best_epoch, len(report.losses)
    (-1, 2)
    """

    net: nn.Module
    losses: list[float] = field(default_factory=list)
    best_epoch: int = -1
    best_loss: float = math.inf
    n_samples: int = 0
    seconds: float = 0.0
    data_seconds: float = 0.0


def train_dcdm(
    net: nn.Module,
    A: Any,
    *,
    n_samples: int,
    epochs: int,
    lr: float = 1e-4,
    seed: int = 0,
    mask: Any = None,
    grid_shape: Sequence[int] | None = None,
    batch: int = 10,
    n_lanczos: int = 300,
    boost_low: float = 9.0,
    theta: int | None = None,
    loss: str = "l2",
) -> DCDMTraining:
    """Train ``net`` unsupervised to act as ``A^{-1}`` up to a scalar (DCDM).

    Right-hand sides come from :func:`ritz_rhs_dataset` (Ritz-vector
    mixtures biased to low modes); the loss is :func:`dcdm_loss` on the
    network's image of each right-hand side, which is presented exactly as
    :class:`~itersolve.linear.LearnedPreconditioner` presents a residual
    (unit root-mean-square, masked grid plus mask channel). Adam, mini-batches
    of ``batch`` from one system, the order shuffled every epoch; the weights
    of the epoch with the lowest mean loss are kept (the paper's
    ``checkpoint="best"``). Seeded: the same arguments give the same weights
    bit for bit (same machine, same thread count).

    Compare with the reference code's ``src/train.py`` (TensorFlow/Keras).

    Parameters
    ----------
    net
        A :class:`DCDMNet` or any module the preconditioner can call.
    A
        The matrix (scipy.sparse, numpy or torch), or a sequence of matrices
        to train one network on several systems (e.g. obstacle layouts; then
        ``mask`` is the matching sequence of masks).
    n_samples
        Right-hand sides in all (split evenly over the systems).
    epochs
        Passes over the data.
    lr
        Adam learning rate (the paper's 1e-4).
    seed
        Seeds the Lanczos start, the mixtures and the shuffling.
    mask, grid_shape
        As for :class:`~itersolve.linear.LearnedPreconditioner` (per system).
    batch
        Right-hand sides per step (the paper's 10).
    n_lanczos, boost_low, theta
        Of :func:`ritz_rhs_dataset`.
    loss
        ``"l2"`` (the paper's) or ``"energy"`` (the ``A^{-1}``-norm form, with
        ``b^T A^{-1} b`` from the Ritz pairs; a lower bound, so the reported
        loss can dip below zero), see :func:`dcdm_loss`.

    Returns
    -------
    DCDMTraining

    Examples
    --------
    >>> from itersolve.nn import DCDMNet, train_dcdm
    >>> from itersolve.problems import obstacle_poisson
    >>> p = obstacle_poisson(16, "disks", seed=0)
    >>> net = DCDMNet(channels=4, levels=2, seed=0)
    >>> report = train_dcdm(net, p.A, mask=p.fluid, n_samples=20, epochs=2,
    ...                     lr=1e-3, n_lanczos=30)
    >>> len(report.losses), report.losses[1] <= report.losses[0]
    (2, True)
    """
    if not isinstance(net, nn.Module):
        raise TypeError(f"net must be a torch.nn.Module, got {type(net).__name__}")
    n_samples = _positive_int(n_samples, "n_samples")
    epochs = _positive_int(epochs, "epochs")
    batch = _positive_int(batch, "batch")
    if loss not in ("l2", "energy"):
        raise ValueError(f"loss must be 'l2' or 'energy', got {loss!r}")
    if not (isinstance(lr, (int, float)) and lr > 0 and math.isfinite(lr)):
        raise ValueError(f"lr must be a positive number, got {lr!r}")
    systems = list(A) if isinstance(A, (list, tuple)) else [A]
    if not systems:
        raise ValueError("A must be a matrix or a non-empty sequence of matrices")
    if len(systems) > 1:
        masks = list(mask) if mask is not None else [None] * len(systems)
        if len(masks) != len(systems):
            raise ValueError(
                f"mask must have one entry per system ({len(systems)}), got "
                f"{len(masks)}"
            )
    else:
        masks = [mask]
    param = next(net.parameters(), None)
    if param is None:
        raise ValueError("net has no parameters to train")
    dtype, device = param.dtype, param.device
    start = time.perf_counter()
    per_system = [
        n_samples // len(systems) + (i < n_samples % len(systems))
        for i in range(len(systems))
    ]
    mats, precs, data, energy = [], [], [], []
    for i, (Ai, mi) in enumerate(zip(systems, masks, strict=True)):
        Asp = _as_scipy(Ai, f"A[{i}]" if len(systems) > 1 else "A")
        prec = LearnedPreconditioner(net, grid_shape=grid_shape, mask=mi)
        if prec.size is not None and prec.size != Asp.shape[0]:
            raise ValueError(
                f"A{f'[{i}]' if len(systems) > 1 else ''} has {Asp.shape[0]} rows "
                f"but the mask/grid_shape has {prec.size} unknowns"
            )
        if per_system[i] == 0:
            continue
        B, E = ritz_rhs_dataset(
            Asp,
            n_lanczos=n_lanczos,
            n_samples=per_system[i],
            boost_low=boost_low,
            theta=theta,
            seed=seed + 1000 * i,
            energies=True,
        )
        mats.append(_torch_csr_from_scipy(Asp, dtype, device))
        precs.append(prec)
        data.append(torch.as_tensor(B, dtype=dtype, device=device))
        energy.append(torch.as_tensor(E, dtype=dtype, device=device))
    data_seconds = time.perf_counter() - start
    batches = [(s, j) for s, B in enumerate(data) for j in range(0, B.shape[0], batch)]
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(net.parameters(), lr=lr)
    report = DCDMTraining(net, n_samples=n_samples, data_seconds=data_seconds)
    best_state = None
    net.train()
    for epoch in range(epochs):
        total = 0.0
        for index in torch.randperm(len(batches), generator=generator).tolist():
            s, j = batches[index]
            b = data[s][j : j + batch]
            y = precs[s].network(b / rms(b))
            e = energy[s][j : j + batch] if loss == "energy" else None
            value = dcdm_loss(mats[s], b, y, e)
            optimizer.zero_grad(set_to_none=True)
            value.backward()
            optimizer.step()
            total += float(value.detach()) * b.shape[0]
        mean = total / sum(B.shape[0] for B in data)
        report.losses.append(mean)
        if mean < report.best_loss:
            report.best_loss, report.best_epoch = mean, epoch
            best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
    if best_state is not None:
        net.load_state_dict(best_state)
    net.eval()
    report.seconds = time.perf_counter() - start
    return report
