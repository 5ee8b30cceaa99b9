"""In-context linear regression: does a transformer's depth track Iterative Newton?

The probe of Fu, Chen, Jia & Sharan (arXiv:2310.17086): train a GPT-2-style
transformer on prompts ``x_1, y_1, ..., x_n, y_n`` of noiseless linear
regression (Garg et al. 2022), read a prediction out of every layer with a fresh
linear read-out, and compare each layer's predictions with ``k`` steps of
Iterative Newton (Newton–Schulz on ``X^T X``, :func:`itersolve.linear.
newton_schulz_lstsq`) and of gradient descent on the in-context least squares.
The paper finds that the best-matching Newton step grows linearly with depth
(about 3 steps per middle layer) while the best-matching GD step count grows
exponentially.

* :class:`GaussianRegressionSampler` — ``x ~ N(0, Sigma)``, ``w ~ N(0, I)``,
  ``y = w^T x`` (``Sigma = I``, or the paper's ill-conditioned covariance);
* :class:`ICLTransformer` — GPT-2 blocks (pre-LayerNorm, causal SDPA attention,
  GELU MLP, learned positions), read-in ``Linear(d -> width)``, read-out
  ``Linear(width -> 1)``; :func:`train_icl` (seeded, optional
  :class:`Curriculum`);
* :func:`fit_layer_readouts` — one linear read-out per layer on frozen hidden
  states (:func:`fit_linear_readout`, the least-squares optimum in closed form);
* :func:`newton_predictions`, :func:`gd_predictions` — the algorithms' predictions
  at every prompt position from the preceding points;
* :func:`similarity_of_errors` (SimE), :func:`best_matching_steps`,
  :func:`compare_layers` — the similarity curves and best-matching steps per
  layer.

The backbone is written in plain torch rather than taken from HF
``transformers.GPT2Model``: the same architecture (pre-LN GPT-2 blocks) with no
optional dependency, ``scaled_dot_product_attention`` throughout (HF's eager
attention is about 40x slower on CPU), and direct access to every layer's
hidden state.

Examples
--------
>>> import torch
>>> from itersolve.nn import icl
>>> sampler = icl.GaussianRegressionSampler(d=3, n_points=6)
>>> x, y = sampler.sample(4, seed=0)
>>> x.shape, y.shape
(torch.Size([4, 6, 3]), torch.Size([4, 6]))
>>> newton = icl.newton_predictions(x, y, steps=40)  # (steps, prompts, points)
>>> newton.shape
torch.Size([40, 4, 6])
>>> bool(torch.allclose(newton[-1, :, 4:], y[:, 4:].double(), atol=1e-5))
True
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from itersolve._core.errors import ConvergenceWarning
from itersolve.linear._newton_schulz import NewtonSchulz, newton_schulz_lstsq

__all__ = [
    "Curriculum",
    "GaussianRegressionSampler",
    "ICLTransformer",
    "LayerComparison",
    "LayerReadouts",
    "best_matching_steps",
    "compare_layers",
    "fit_layer_readouts",
    "fit_linear_readout",
    "gd_predictions",
    "interleave",
    "newton_predictions",
    "similarity_of_errors",
    "train_icl",
]

F64 = torch.float64
GD_STEPS = tuple(2**j for j in range(13))
"""The paper's grid of gradient-descent step counts, ``2^0 .. 2^12``."""


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return value


def _generator(seed: int | torch.Generator) -> torch.Generator:
    if isinstance(seed, torch.Generator):
        return seed
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an int or a torch.Generator, got {seed!r}")
    return torch.Generator().manual_seed(seed)


# -- data ------------------------------------------------------------------------


@dataclass(frozen=True)
class GaussianRegressionSampler:
    """Prompts of noiseless linear regression, the setup of Garg et al. (2022).

    Each prompt draws ``w ~ N(0, I_d)`` and ``n_points`` inputs
    ``x_i ~ N(0, Sigma)``, with ``y_i = w^T x_i``. ``kappa = 1`` gives
    ``Sigma = I``; ``kappa > 1`` is the paper's ill-conditioned variant: half the
    eigenvalues of ``Sigma`` equal ``kappa`` and half 1, rotated by a random
    orthogonal matrix (drawn from ``rotation_seed``) and scaled to trace ``d``.

    Parameters
    ----------
    d
        Input dimension.
    n_points
        Number of ``(x, y)`` pairs per prompt.
    kappa
        Condition number of ``Sigma`` (>= 1).
    rotation_seed
        Seed of the rotation of ``Sigma`` (used only when ``kappa > 1``).

    Examples
    --------
    >>> from itersolve.nn.icl import GaussianRegressionSampler
    >>> x, y = GaussianRegressionSampler(d=2, n_points=5).sample(3, seed=1)
    >>> tuple(x.shape), tuple(y.shape), x.dtype
    ((3, 5, 2), (3, 5), torch.float32)
    """

    d: int
    n_points: int
    kappa: float = 1.0
    rotation_seed: int = 0

    def __post_init__(self) -> None:
        _positive_int("d", self.d)
        _positive_int("n_points", self.n_points)
        if not (isinstance(self.kappa, (int, float)) and self.kappa >= 1):
            raise ValueError(f"kappa must be a number >= 1, got {self.kappa!r}")

    def covariance_root(self) -> torch.Tensor:
        """``Sigma^{1/2}`` (float64, ``(d, d)``); ``x = Sigma^{1/2} z``."""
        if self.kappa == 1:
            return torch.eye(self.d, dtype=F64)
        gen = torch.Generator().manual_seed(self.rotation_seed)
        Q, _ = torch.linalg.qr(torch.randn(self.d, self.d, generator=gen, dtype=F64))
        half = self.d // 2
        eig = torch.cat(
            [torch.full((half,), float(self.kappa)), torch.ones(self.d - half)]
        )
        eig = eig.to(F64) * self.d / eig.sum()
        return (Q * eig.sqrt()) @ Q.T

    def sample(
        self,
        batch: int,
        *,
        seed: int | torch.Generator = 0,
        dims: int | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``batch`` prompts: ``x`` of shape ``(batch, n_points, d)``, ``y``
        of shape ``(batch, n_points)``.

        ``dims`` (curriculum): only the first ``dims`` coordinates of ``x`` are
        drawn, the others are zero, as in Garg et al.'s dimension curriculum.
        """
        _positive_int("batch", batch)
        gen = _generator(seed)
        if dims is not None and not 1 <= _positive_int("dims", dims) <= self.d:
            raise ValueError(f"dims must be in [1, {self.d}], got {dims!r}")
        z = torch.randn(batch, self.n_points, self.d, generator=gen, dtype=F64)
        w = torch.randn(batch, self.d, generator=gen, dtype=F64)
        x = z @ self.covariance_root().T
        if dims is not None and dims < self.d:
            x[..., dims:] = 0.0
        y = torch.einsum("bnd,bd->bn", x, w)
        return x.to(dtype), y.to(dtype)


def interleave(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The prompt tokens ``x_1, (y_1, 0, ..., 0), x_2, ...``: ``(B, 2n, d)``.

    Examples
    --------
    >>> import torch
    >>> from itersolve.nn.icl import interleave
    >>> interleave(torch.ones(1, 2, 2), torch.tensor([[5.0, 6.0]]))[0]
    tensor([[1., 1.],
            [5., 0.],
            [1., 1.],
            [6., 0.]])
    """
    _check_prompts(x, y)
    tokens = torch.zeros(
        x.shape[0], 2 * x.shape[1], x.shape[2], dtype=x.dtype, device=x.device
    )
    tokens[:, ::2] = x
    tokens[:, 1::2, 0] = y
    return tokens


def _check_prompts(x: torch.Tensor, y: torch.Tensor) -> None:
    if not isinstance(x, torch.Tensor) or not isinstance(y, torch.Tensor):
        raise TypeError(
            f"x and y must be torch tensors, got {type(x).__name__} and "
            f"{type(y).__name__}"
        )
    if x.ndim != 3 or y.shape != x.shape[:2]:
        raise ValueError(
            f"x must have shape (prompts, points, d) and y (prompts, points), got "
            f"{tuple(x.shape)} and {tuple(y.shape)}"
        )
    if not (torch.isfinite(x).all() and torch.isfinite(y).all()):
        raise ValueError("x and y must be finite")


# -- model -----------------------------------------------------------------------


class _Block(nn.Module):
    """One GPT-2 block: pre-LN causal self-attention and a 4x GELU MLP."""

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.ln_1 = nn.LayerNorm(width)
        self.attn = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)
        self.ln_2 = nn.LayerNorm(width)
        self.mlp_in = nn.Linear(width, 4 * width)
        self.mlp_out = nn.Linear(4 * width, width)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        B, T, W = h.shape
        q, k, v = self.attn(self.ln_1(h)).split(W, dim=-1)
        q, k, v = (
            t.view(B, T, self.heads, W // self.heads).transpose(1, 2) for t in (q, k, v)
        )
        a = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        h = h + self.proj(a.transpose(1, 2).reshape(B, T, W))
        return h + self.mlp_out(F.gelu(self.mlp_in(self.ln_2(h)), approximate="tanh"))


class ICLTransformer(nn.Module):
    """GPT-2-style transformer for in-context regression (Garg et al. 2022).

    Read-in ``Linear(d -> width)`` on the interleaved tokens, learned position
    embeddings, ``layers`` pre-LN blocks, a final LayerNorm and the read-out
    ``Linear(width -> 1)``; the prediction of ``y_i`` is read at the token of
    ``x_i`` (causal attention: it sees ``x_1, y_1, ..., x_i`` only). Dropout 0.
    GPT-2 initialisation inside the backbone: weights ``N(0, 0.02)``, output
    projections of the residual branches ``N(0, 0.02 / sqrt(2 layers))``,
    biases 0; the read-in and read-out keep ``torch.nn.Linear``'s default
    ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))`` (Garg et al.'s model puts plain
    ``nn.Linear`` layers around the HF backbone), drawn from ``seed``.

    Parameters
    ----------
    d
        Input dimension of the regression.
    max_points
        Longest prompt (in ``(x, y)`` pairs) the position table covers.
    layers, heads, width
        Depth, attention heads, embedding width (``width % heads == 0``).
        The paper: 12, 8, 256; its CPU-small setting: 4, 4, 64-128.
    seed
        Seed of the initialisation.

    Examples
    --------
    >>> import torch
    >>> from itersolve.nn.icl import ICLTransformer
    >>> model = ICLTransformer(d=3, max_points=5, layers=2, heads=2, width=8)
    >>> x, y = torch.randn(4, 5, 3), torch.randn(4, 5)
    >>> model(x, y).shape, len(model.hidden_states(x, y))
    (torch.Size([4, 5]), 2)
    """

    def __init__(
        self,
        d: int,
        max_points: int,
        *,
        layers: int = 4,
        heads: int = 4,
        width: int = 64,
        seed: int = 0,
    ) -> None:
        super().__init__()
        for name, value in (
            ("d", d),
            ("max_points", max_points),
            ("layers", layers),
            ("heads", heads),
            ("width", width),
        ):
            _positive_int(name, value)
        if width % heads:
            raise ValueError(
                f"width must be a multiple of heads, got width={width}, heads={heads}"
            )
        self.d, self.max_points, self.width = d, max_points, width
        self.read_in = nn.Linear(d, width)
        self.positions = nn.Embedding(2 * max_points, width)
        self.blocks = nn.ModuleList(_Block(width, heads) for _ in range(layers))
        self.ln_f = nn.LayerNorm(width)
        self.read_out = nn.Linear(width, 1)
        gen = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for name, p in self.named_parameters():
                if name.startswith(("read_in.", "read_out.")):
                    fan_in = self.read_in.in_features if "read_in" in name else width
                    bound = 1.0 / math.sqrt(fan_in)
                    p.copy_((torch.rand(p.shape, generator=gen) * 2 - 1) * bound)
                elif name.endswith("bias"):
                    p.zero_()
                elif p.ndim == 1:  # LayerNorm gains
                    p.fill_(1.0)
                else:
                    std = 0.02
                    if name.endswith(("proj.weight", "mlp_out.weight")):
                        std /= math.sqrt(2 * layers)
                    p.copy_(torch.randn(p.shape, generator=gen) * std)

    @property
    def layers(self) -> int:
        return len(self.blocks)

    def _check(self, x: torch.Tensor, y: torch.Tensor) -> None:
        _check_prompts(x, y)
        if x.shape[2] != self.d or x.shape[1] > self.max_points:
            raise ValueError(
                f"x must have shape (prompts, points <= {self.max_points}, "
                f"{self.d}) for this model, got {tuple(x.shape)}"
            )

    def _run(self, x: torch.Tensor, y: torch.Tensor) -> list[torch.Tensor]:
        self._check(x, y)
        tokens = interleave(
            x.to(self.read_in.weight.dtype), y.to(x.dtype).to(self.read_in.weight.dtype)
        )
        h = self.read_in(tokens) + self.positions.weight[: tokens.shape[1]]
        states = []
        for block in self.blocks:
            h = block(h)
            states.append(h)
        states[-1] = self.ln_f(states[-1])
        return states

    def hidden_states(self, x: torch.Tensor, y: torch.Tensor) -> list[torch.Tensor]:
        """Every layer's output at the ``x`` tokens: ``layers`` tensors of shape
        ``(prompts, points, width)``; the last has the final LayerNorm applied
        (HF's ``output_hidden_states`` convention)."""
        return [h[:, ::2] for h in self._run(x, y)]

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Predictions of ``y_i`` from ``x_1, y_1, ..., x_i``: ``(prompts, points)``."""
        return self.read_out(self._run(x, y)[-1][:, ::2])[..., 0]


# -- training --------------------------------------------------------------------


@dataclass(frozen=True)
class Curriculum:
    """Garg et al.'s curriculum: start with few dimensions and short prompts.

    At training step ``t`` the prompts use ``min(dims_end, dims_start + dims_inc
    * (t // interval))`` input dimensions (the rest of ``x`` is zero) and as
    many points, by the same rule, from ``points_*``. The paper: dimensions
    5 -> 20 (+1), points 11 -> 41 (+2), every 2000 steps.

    Examples
    --------
    >>> from itersolve.nn.icl import Curriculum
    >>> c = Curriculum(2, 5, 1, 4, 10, 2, interval=100)
    >>> c.at(0), c.at(250), c.at(10_000)
    ((2, 4), (4, 8), (5, 10))
    """

    dims_start: int
    dims_end: int
    dims_inc: int
    points_start: int
    points_end: int
    points_inc: int
    interval: int

    def __post_init__(self) -> None:
        for name in (
            "dims_start",
            "dims_end",
            "points_start",
            "points_end",
            "interval",
        ):
            _positive_int(name, getattr(self, name))
        for name in ("dims_inc", "points_inc"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be a non-negative int, got {value!r}")
        if self.dims_start > self.dims_end or self.points_start > self.points_end:
            raise ValueError(
                "the curriculum must grow: dims_start <= dims_end and "
                f"points_start <= points_end, got {self}"
            )

    def at(self, step: int) -> tuple[int, int]:
        """``(dims, points)`` at training step ``step``."""
        stage = step // self.interval
        return (
            min(self.dims_end, self.dims_start + self.dims_inc * stage),
            min(self.points_end, self.points_start + self.points_inc * stage),
        )


def train_icl(
    model: ICLTransformer,
    sampler: GaussianRegressionSampler,
    steps: int,
    *,
    batch_size: int = 64,
    lr: float = 1e-4,
    seed: int = 0,
    curriculum: Curriculum | None = None,
) -> dict[str, list[float]]:
    """Train ``model`` in place with Adam on the squared error at every position.

    The loss is ``mean_i (f(prompt)_i - y_i)^2`` over the prompt's points (the
    paper's objective), on fresh prompts every step drawn from ``seed``; the
    same seed and initialisation give the same model (on one device and thread
    count).

    Parameters
    ----------
    model
        An :class:`ICLTransformer` with ``model.d == sampler.d``.
    sampler
        The prompt distribution; its ``n_points`` is the prompt length unless
        ``curriculum`` shortens it.
    steps, batch_size, lr
        Adam steps, prompts per step, learning rate (paper: 500k, 64, 1e-4).
    seed
        Seed of the training prompts.
    curriculum
        Optional :class:`Curriculum` (its ends must not exceed the sampler's
        ``d`` and ``n_points``).

    Returns
    -------
    dict
        ``{"loss": [...]}``: the training loss of every step, divided by the
        number of active dimensions (``d``, or the curriculum's; Garg et al.'s
        normalisation: 1 is the error of predicting 0 for identity ``Sigma``).

    Examples
    --------
    >>> from itersolve.nn.icl import ICLTransformer, GaussianRegressionSampler
    >>> from itersolve.nn.icl import train_icl
    >>> model = ICLTransformer(d=2, max_points=4, layers=1, heads=1, width=8)
    >>> history = train_icl(model, GaussianRegressionSampler(2, 4), steps=3)
    >>> len(history["loss"])
    3
    """
    if not isinstance(model, ICLTransformer):
        raise TypeError(f"model must be an ICLTransformer, got {type(model).__name__}")
    if not isinstance(sampler, GaussianRegressionSampler):
        raise TypeError(
            f"sampler must be a GaussianRegressionSampler, got {type(sampler).__name__}"
        )
    if model.d != sampler.d or sampler.n_points > model.max_points:
        raise ValueError(
            f"the sampler (d={sampler.d}, n_points={sampler.n_points}) does not fit "
            f"the model (d={model.d}, max_points={model.max_points})"
        )
    _positive_int("steps", steps)
    _positive_int("batch_size", batch_size)
    if not (isinstance(lr, (int, float)) and lr > 0):
        raise ValueError(f"lr must be positive, got {lr!r}")
    if curriculum is not None and (
        curriculum.dims_end > sampler.d or curriculum.points_end > sampler.n_points
    ):
        raise ValueError(
            f"curriculum ends ({curriculum.dims_end} dims, {curriculum.points_end} "
            f"points) exceed the sampler's ({sampler.d}, {sampler.n_points})"
        )
    gen = _generator(seed)
    device = model.read_in.weight.device
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    losses: list[torch.Tensor] = []
    scales = []
    for t in range(steps):
        dims, points = (
            curriculum.at(t) if curriculum is not None else (None, sampler.n_points)
        )
        x, y = sampler.sample(batch_size, seed=gen, dims=dims)
        x, y = x[:, :points].to(device), y[:, :points].to(device)
        optimizer.zero_grad(set_to_none=True)
        loss = F.mse_loss(model(x, y), y)
        loss.backward()
        optimizer.step()
        # kept on the device: a host read every step would stall a GPU
        losses.append(loss.detach())
        scales.append(dims or sampler.d)
    model.eval()
    values = torch.stack(losses).cpu().tolist()
    return {"loss": [v / k for v, k in zip(values, scales, strict=True)]}


# -- read-outs -------------------------------------------------------------------


def fit_linear_readout(
    features: torch.Tensor, targets: torch.Tensor, *, ridge: float = 0.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Least-squares linear read-out ``targets ~ features @ weight + bias``.

    The paper trains each read-out by Adam on the squared error; the loss is a
    convex quadratic, so its minimiser is this closed form (float64, QR-based
    ``torch.linalg.lstsq``; ``ridge > 0`` adds ``ridge * ||weight||^2``).

    Parameters
    ----------
    features
        ``(samples, width)``.
    targets
        ``(samples,)``.
    ridge
        Non-negative Tikhonov weight on ``weight`` (not on ``bias``).

    Returns
    -------
    tuple
        ``weight`` of shape ``(width,)`` and a scalar ``bias`` (float64).

    Examples
    --------
    >>> import torch
    >>> from itersolve.nn.icl import fit_linear_readout
    >>> H = torch.randn(50, 3, dtype=torch.float64)
    >>> w, b = fit_linear_readout(H, H @ torch.tensor([1.0, -2.0, 0.5]).double() + 3)
    >>> torch.allclose(w, torch.tensor([1.0, -2.0, 0.5]).double()), round(float(b), 6)
    (True, 3.0)
    """
    if not isinstance(features, torch.Tensor) or not isinstance(targets, torch.Tensor):
        raise TypeError("features and targets must be torch tensors")
    if features.ndim != 2 or targets.shape != features.shape[:1]:
        raise ValueError(
            f"features must have shape (samples, width) and targets (samples,), got "
            f"{tuple(features.shape)} and {tuple(targets.shape)}"
        )
    if not (isinstance(ridge, (int, float)) and ridge >= 0):
        raise ValueError(f"ridge must be a non-negative number, got {ridge!r}")
    H = features.detach().to(F64)
    t = targets.detach().to(F64)
    mean_h, mean_t = H.mean(0), t.mean()
    Hc, tc = H - mean_h, t - mean_t
    if ridge > 0:
        width = H.shape[1]
        eye = math.sqrt(ridge) * torch.eye(width, dtype=F64, device=H.device)
        Hc = torch.cat([Hc, eye])
        tc = torch.cat([tc, torch.zeros(width, dtype=F64, device=H.device)])
    # gelsd: the minimum-norm solution when hidden features are collinear
    driver = "gelsd" if H.device.type == "cpu" else None
    weight = torch.linalg.lstsq(Hc, tc[:, None], driver=driver).solution[:, 0]
    return weight, mean_t - mean_h @ weight


@dataclass(frozen=True)
class LayerReadouts:
    """One linear read-out per layer of an :class:`ICLTransformer`.

    ``weights[l]`` / ``biases[l]`` read layer ``l + 1``'s hidden state at the
    ``x`` tokens; :meth:`predict` gives every layer's predictions. Made by
    :func:`fit_layer_readouts`.

    Examples
    --------
    >>> import torch
    >>> from itersolve.nn.icl import ICLTransformer, LayerReadouts
    >>> model = ICLTransformer(d=2, max_points=3, layers=2, heads=1, width=4)
    >>> readouts = LayerReadouts(torch.zeros(2, 4, dtype=torch.float64),
    ...                          torch.ones(2, dtype=torch.float64))
    >>> readouts.predict(model, torch.randn(5, 3, 2), torch.randn(5, 3)).shape
    torch.Size([2, 5, 3])
    """

    weights: torch.Tensor
    """``(layers, width)``, float64."""
    biases: torch.Tensor
    """``(layers,)``, float64."""

    @torch.no_grad()
    def predict(
        self, model: ICLTransformer, x: torch.Tensor, y: torch.Tensor
    ) -> torch.Tensor:
        """Predictions of every layer, ``(layers, prompts, points)`` in float64."""
        states = torch.stack(model.hidden_states(x, y)).to(F64).cpu()
        if states.shape[0] != self.weights.shape[0]:
            raise ValueError(
                f"the read-outs have {self.weights.shape[0]} layers, the model "
                f"{states.shape[0]}"
            )
        return (
            torch.einsum("lbnw,lw->lbn", states, self.weights)
            + self.biases[:, None, None]
        )


@torch.no_grad()
def fit_layer_readouts(
    model: ICLTransformer,
    sampler: GaussianRegressionSampler,
    prompts: int,
    *,
    seed: int = 1,
    ridge: float = 0.0,
    batch_size: int = 256,
) -> LayerReadouts:
    """Fit a fresh linear read-out on every layer of the frozen ``model``.

    Features: each layer's hidden state at every ``x`` token of ``prompts``
    prompts drawn from ``seed`` (a seed other than the training one); targets:
    the ``y`` of that token. Each read-out is the least-squares optimum
    (:func:`fit_linear_readout`), which the paper's read-out training loop
    approaches.

    Examples
    --------
    >>> from itersolve.nn.icl import ICLTransformer, GaussianRegressionSampler
    >>> from itersolve.nn.icl import fit_layer_readouts
    >>> model = ICLTransformer(d=2, max_points=4, layers=2, heads=1, width=8)
    >>> readouts = fit_layer_readouts(model, GaussianRegressionSampler(2, 4), 32)
    >>> tuple(readouts.weights.shape)
    (2, 8)
    """
    _positive_int("prompts", prompts)
    _positive_int("batch_size", batch_size)
    gen = _generator(seed)
    device = model.read_in.weight.device
    was_training = model.training
    model.eval()
    feats: list[list[torch.Tensor]] = [[] for _ in range(model.layers)]
    targets = []
    for start in range(0, prompts, batch_size):
        x, y = sampler.sample(min(batch_size, prompts - start), seed=gen)
        for layer, h in enumerate(model.hidden_states(x.to(device), y.to(device))):
            feats[layer].append(h.reshape(-1, h.shape[-1]).cpu())
        targets.append(y.reshape(-1))
    model.train(was_training)
    t = torch.cat(targets)
    fits = [fit_linear_readout(torch.cat(f), t, ridge=ridge) for f in feats]
    return LayerReadouts(
        torch.stack([w for w, _ in fits]), torch.stack([b for _, b in fits])
    )


# -- the algorithms ----------------------------------------------------------------


def _prefix_systems(
    x: torch.Tensor, y: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The least-squares system of every position: ``(points, prompts, points, d)``.

    The system at position ``i`` keeps the rows ``j < i`` and zeroes the rest;
    zero rows change neither ``X^T X`` nor ``X^T y``.
    """
    n = x.shape[1]
    mask = (torch.arange(n)[None, :] < torch.arange(n)[:, None]).to(x.dtype)
    X = mask[:, None, :, None] * x[None]
    Y = mask[:, None, :] * y[None]
    return X, Y


def _predict_at_positions(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """``x_i^T w(i)`` for ``w`` of shape ``(..., points, prompts, d)``."""
    return torch.einsum("bnd,...nbd->...bn", x, w)


def newton_predictions(
    x: torch.Tensor,
    y: torch.Tensor,
    steps: int,
    *,
    method: NewtonSchulz | None = None,
) -> torch.Tensor:
    """Predictions of ``k = 1..steps`` Iterative Newton steps at every position.

    At position ``i`` the least squares of the points ``j < i`` is solved by
    Newton–Schulz on ``S = X^T X`` (the shared
    :func:`itersolve.linear.newton_schulz_lstsq`, start ``M_0 = S / ||S S||_F`` as
    the official code, ``w_k = M_k X^T y``); the prediction is ``x_i^T w_k``.
    Position 0 has no points and predicts 0. A system that meets the solver's
    stopping rule keeps its converged ``w`` for the remaining ``k``.

    Parameters
    ----------
    x, y
        Prompts, ``(prompts, points, d)`` and ``(prompts, points)``; computed in
        float64.
    steps
        Largest ``k`` (the paper: 23).
    method
        The :class:`~itersolve.linear.NewtonSchulz` configuration; default
        ``NewtonSchulz(target="pseudoinverse", max_steps=steps)`` (the systems of
        the first ``d`` positions are rank deficient).

    Returns
    -------
    torch.Tensor
        ``(steps, prompts, points)``, float64.

    Examples
    --------
    >>> import torch
    >>> from itersolve.nn.icl import newton_predictions
    >>> x = torch.randn(2, 5, 2, dtype=torch.float64)
    >>> y = x @ torch.tensor([1.0, 2.0], dtype=torch.float64)
    >>> p = newton_predictions(x, y, steps=30)
    >>> bool(torch.allclose(p[-1, :, 3:], y[:, 3:]))
    True
    """
    _check_prompts(x, y)
    _positive_int("steps", steps)
    if method is None:
        method = NewtonSchulz(target="pseudoinverse", max_steps=steps)
    elif not isinstance(method, NewtonSchulz):
        raise TypeError(f"method must be a NewtonSchulz, got {type(method).__name__}")
    x64, y64 = x.detach().to(F64).cpu(), y.detach().to(F64).cpu()
    X, Y = _prefix_systems(x64, y64)
    path: list[torch.Tensor] = []

    def record(info: Any) -> bool:
        path.append(info.x)
        return len(path) >= steps

    with warnings.catch_warnings():
        # the callback stops the run at ``steps``; that is not a failure
        warnings.simplefilter("ignore", ConvergenceWarning)
        solution = newton_schulz_lstsq(X, Y, method, callback=record)
    if solution.status.name in ("STAGNATION", "DIVERGED", "NONFINITE", "BREAKDOWN"):
        # some systems may have stopped short of convergence: say so
        warnings.warn(
            f"Newton-Schulz stopped after {len(path)} of {steps} steps: "
            f"{solution.message}; the remaining steps repeat the last iterate",
            ConvergenceWarning,
            stacklevel=2,
        )
    if not path:  # converged (or stopped) before the first step
        path.append(solution.x)
    while len(path) < steps:  # every system met the stopping rule
        path.append(path[-1])
    return _predict_at_positions(x64, torch.stack(path[:steps]))


def _lipschitz_and_spectrum(
    X: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    S = X.mT @ X
    lam, V = torch.linalg.eigh(S)
    return lam, V, lam[..., -1]


def gd_predictions(
    x: torch.Tensor,
    y: torch.Tensor,
    steps: Sequence[int],
    *,
    lr: float | None = None,
) -> torch.Tensor:
    """Predictions of ``k`` gradient-descent steps at every position, for each
    ``k`` in ``steps``.

    At position ``i``: ``w_{k+1} = w_k - eta X^T (X w_k - y)``, ``w_0 = 0``, on
    the points ``j < i``; prediction ``x_i^T w_k``. Computed exactly for any
    ``k`` from the eigendecomposition ``X^T X = V diag(lam) V^T`` (float64)::

        w_k = V diag((1 - (1 - eta lam)^k) / lam) V^T X^T y

    (the ``k``-step geometric sum; ``eta k`` on ``lam = 0``), so the paper's
    grid up to ``2^12`` steps costs one eigendecomposition per system.

    Parameters
    ----------
    x, y
        Prompts, ``(prompts, points, d)`` and ``(prompts, points)``.
    steps
        Step counts ``k >= 0`` (the paper: ``2^0 .. 2^12``).
    lr
        Step size ``eta``; ``None`` (default) uses ``1 / L`` per system with
        ``L = lambda_max(X^T X)`` (the spec's choice for step counts; the
        official code uses a fixed 0.01).

    Returns
    -------
    torch.Tensor
        ``(len(steps), prompts, points)``, float64.

    Examples
    --------
    >>> import torch
    >>> from itersolve.nn.icl import gd_predictions
    >>> x = torch.randn(2, 5, 2, dtype=torch.float64)
    >>> y = x @ torch.tensor([1.0, 2.0], dtype=torch.float64)
    >>> p = gd_predictions(x, y, [0, 1, 100_000])
    >>> bool((p[0] == 0).all()), bool(torch.allclose(p[-1, :, 3:], y[:, 3:]))
    (True, True)
    """
    _check_prompts(x, y)
    ks = list(steps)
    if not ks or any(
        isinstance(k, bool) or not isinstance(k, int) or k < 0 for k in ks
    ):
        raise ValueError(f"steps must be a non-empty list of ints >= 0, got {steps!r}")
    if lr is not None and not (isinstance(lr, (int, float)) and lr > 0):
        raise ValueError(f"lr must be positive or None, got {lr!r}")
    x64, y64 = x.detach().to(F64).cpu(), y.detach().to(F64).cpu()
    X, Y = _prefix_systems(x64, y64)
    lam, V, top = _lipschitz_and_spectrum(X)
    if lr is None:
        eta = torch.where(top > 0, 1.0 / torch.where(top > 0, top, 1.0), 1.0)[..., None]
    else:
        eta = torch.full_like(top, float(lr))[..., None]
    coords = (V.mT @ (X.mT @ Y[..., None]))[..., 0]  # V^T X^T y
    base = 1.0 - eta * lam
    null = lam.abs() <= torch.finfo(F64).tiny
    safe = torch.where(null, 1.0, lam)
    out = []
    for k in ks:
        if k == 0:
            gain = torch.zeros_like(lam)
        else:
            # 1 - base^k without cancellation when eta * lam is small
            positive = base > 0
            log_base = torch.log(torch.where(positive, base, 1.0))
            geometric = torch.where(positive, -torch.expm1(k * log_base), 1.0 - base**k)
            gain = torch.where(null, eta * k, geometric / safe)
        w = (V @ (gain * coords)[..., None])[..., 0]
        out.append(_predict_at_positions(x64, w))
    return torch.stack(out)


# -- similarity --------------------------------------------------------------------


def similarity_of_errors(
    predictions: torch.Tensor, reference: torch.Tensor, y: torch.Tensor
) -> torch.Tensor:
    """SimE: cosine similarity of the residual vectors over prompt positions.

    For each prompt, ``r = predictions - y`` and ``s = reference - y`` are
    vectors over the positions; SimE is ``<r, s> / (||r|| ||s||)``, averaged
    over the prompts (the paper averages over 320). Leading dimensions of
    ``predictions`` and ``reference`` broadcast, so a ``(layers, 1, B, n)`` set
    of layer predictions against ``(1, steps, B, n)`` algorithm iterates gives a
    ``(layers, steps)`` table. A zero residual vector has similarity 0 to
    anything but another zero vector (1).

    Parameters
    ----------
    predictions, reference
        ``(..., prompts, points)``.
    y
        ``(prompts, points)`` targets.

    Returns
    -------
    torch.Tensor
        The mean similarity over prompts, shape of the broadcast leading
        dimensions (float64).

    Examples
    --------
    >>> import torch
    >>> from itersolve.nn.icl import similarity_of_errors
    >>> y = torch.randn(3, 4)
    >>> p = torch.randn(3, 4)
    >>> same = similarity_of_errors(p, p, y)
    >>> opposite = similarity_of_errors(p, 2 * y - p, y)
    >>> round(float(same), 12), round(float(opposite), 12)
    (1.0, -1.0)
    """
    for name, t in (("predictions", predictions), ("reference", reference)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name} must be a torch tensor, got {type(t).__name__}")
        if t.ndim < 2 or t.shape[-2:] != y.shape:
            raise ValueError(
                f"{name} must have shape (..., {', '.join(map(str, y.shape))}), got "
                f"{tuple(t.shape)}"
            )
    r = predictions.to(F64) - y.to(F64)
    s = reference.to(F64) - y.to(F64)
    nr, ns = torch.linalg.vector_norm(r, dim=-1), torch.linalg.vector_norm(s, dim=-1)
    dot = (r * s).sum(-1)
    both_zero = (nr == 0) & (ns == 0)
    cosine = torch.where(both_zero, 1.0, dot / torch.where(nr * ns > 0, nr * ns, 1.0))
    return cosine.mean(-1)


def best_matching_steps(
    similarity: torch.Tensor, steps: Sequence[int]
) -> tuple[list[int], list[float]]:
    """Per row (layer) of a ``(layers, len(steps))`` similarity table: the
    step with the highest similarity (the first on ties) and that similarity.

    Examples
    --------
    >>> import torch
    >>> from itersolve.nn.icl import best_matching_steps
    >>> table = torch.tensor([[0.1, 0.9, 0.5], [0.2, 0.3, 0.8]], dtype=torch.float64)
    >>> best_matching_steps(table, [1, 2, 4])
    ([2, 4], [0.9, 0.8])
    """
    if similarity.ndim != 2 or similarity.shape[1] != len(steps):
        raise ValueError(
            f"similarity must have shape (layers, {len(steps)}), got "
            f"{tuple(similarity.shape)}"
        )
    index = similarity.argmax(dim=1)
    best = [int(steps[i]) for i in index.tolist()]
    values = similarity.gather(1, index[:, None])[:, 0].tolist()
    return best, values


@dataclass(frozen=True)
class LayerComparison:
    """The similarity curves of every layer against Newton and GD iterates,
    made by :func:`compare_layers`.

    Examples
    --------
    >>> import torch
    >>> from itersolve.nn.icl import compare_layers, gd_predictions
    >>> x = torch.randn(8, 6, 3, dtype=torch.float64)
    >>> y = x @ torch.randn(3, dtype=torch.float64)
    >>> result = compare_layers(gd_predictions(x, y, [4]), x, y, newton_steps=5)
    >>> result.gd_best, tuple(result.newton_similarity.shape)
    ([4], (1, 5))
    """

    newton_steps: list[int]
    gd_steps: list[int]
    newton_similarity: torch.Tensor
    """``(layers, len(newton_steps))`` SimE."""
    gd_similarity: torch.Tensor
    """``(layers, len(gd_steps))`` SimE."""
    newton_best: list[int]
    gd_best: list[int]
    newton_best_similarity: list[float]
    gd_best_similarity: list[float]
    layer_error: list[float]
    """Each layer's mean squared error over positions / d (1 = predicting 0)."""


def compare_layers(
    layer_predictions: torch.Tensor,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    newton_steps: int = 23,
    gd_steps: Sequence[int] = GD_STEPS,
    gd_lr: float | None = None,
) -> LayerComparison:
    """SimE of every layer's predictions against ``k`` Newton and GD steps.

    Parameters
    ----------
    layer_predictions
        ``(layers, prompts, points)``, e.g. :meth:`LayerReadouts.predict`.
    x, y
        The prompts the predictions were made on.
    newton_steps
        Newton ``k = 1..newton_steps`` (the paper: 23).
    gd_steps
        GD step counts (the paper: ``2^0 .. 2^12``).
    gd_lr
        GD step size (``None``: ``1 / L`` per system, see :func:`gd_predictions`).

    Examples
    --------
    >>> import torch
    >>> from itersolve.nn.icl import compare_layers, newton_predictions
    >>> x = torch.randn(8, 6, 3, dtype=torch.float64)
    >>> y = x @ torch.randn(3, dtype=torch.float64)
    >>> layers = newton_predictions(x, y, 6)[[1, 3, 5]]  # "layers" = Newton 2, 4, 6
    >>> compare_layers(layers, x, y, newton_steps=6).newton_best
    [2, 4, 6]
    """
    _check_prompts(x, y)
    if layer_predictions.ndim != 3 or layer_predictions.shape[1:] != y.shape:
        raise ValueError(
            f"layer_predictions must have shape (layers, {y.shape[0]}, {y.shape[1]}), "
            f"got {tuple(layer_predictions.shape)}"
        )
    ks = list(range(1, newton_steps + 1))
    gds = list(gd_steps)
    newton = newton_predictions(x, y, newton_steps)
    gd = gd_predictions(x, y, gds, lr=gd_lr)
    preds = layer_predictions.detach().to(F64).cpu()
    y64 = y.detach().to(F64).cpu()
    sim_newton = similarity_of_errors(preds[:, None], newton[None], y64)
    sim_gd = similarity_of_errors(preds[:, None], gd[None], y64)
    nb, nv = best_matching_steps(sim_newton, ks)
    gb, gv = best_matching_steps(sim_gd, gds)
    d = x.shape[-1]
    error = ((preds - y64) ** 2).mean(dim=(1, 2)) / d
    return LayerComparison(ks, gds, sim_newton, sim_gd, nb, gb, nv, gv, error.tolist())
