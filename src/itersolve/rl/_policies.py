"""Policies on a flat parameter vector: linear Gaussian and softmax MLP."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


def _positive_int(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return value


@dataclass(frozen=True)
class LinearGaussianPolicy:
    """``a ~ N(K s, std^2 I)`` with ``K = theta.reshape(action_dim, state_dim)``.

    Fisher-non-degenerate (``F = E[s s^T] / std^2`` per action row) whenever the
    visited states span the state space, the setting of Fatkhullin et al.
    (2023).

    Examples
    --------
    >>> import torch
    >>> policy = LinearGaussianPolicy(state_dim=2, action_dim=1, std=1.0)
    >>> theta = torch.tensor([1.0, 0.0], dtype=torch.float64)
    >>> s, a = torch.tensor([[1.0, 2.0]]).double(), torch.tensor([[1.0]]).double()
    >>> policy.log_prob(theta, s, a)  # log N(1; 1, 1)
    tensor([-0.9189], dtype=torch.float64)
    """

    state_dim: int
    action_dim: int
    std: float = 0.5

    def __post_init__(self) -> None:
        _positive_int(self.state_dim, "state_dim")
        _positive_int(self.action_dim, "action_dim")
        if not (isinstance(self.std, int | float) and self.std > 0):
            raise ValueError(f"std must be > 0, got {self.std!r}")

    @property
    def num_params(self) -> int:
        return self.state_dim * self.action_dim

    def gain(self, theta: torch.Tensor) -> torch.Tensor:
        return theta.reshape(self.action_dim, self.state_dim)

    def log_prob(
        self, theta: torch.Tensor, states: torch.Tensor, actions: torch.Tensor
    ) -> torch.Tensor:
        mean = states.to(theta.dtype) @ self.gain(theta).T
        z = (actions.to(theta.dtype) - mean) / self.std
        const = self.action_dim * (math.log(self.std) + 0.5 * math.log(2 * math.pi))
        return -0.5 * (z * z).sum(-1) - const

    def sample(
        self, theta: torch.Tensor, states: torch.Tensor, generator: torch.Generator
    ) -> torch.Tensor:
        mean = states.to(theta.dtype) @ self.gain(theta).T
        noise = torch.randn(mean.shape, generator=generator, dtype=mean.dtype)
        return mean + self.std * noise


@dataclass(frozen=True)
class SoftmaxMLPPolicy:
    """Categorical policy: a tanh MLP ``state_dim -> hidden... -> num_actions``.

    ``theta`` holds every layer's weight (row-major) then bias, layer by layer;
    :meth:`initial_parameters` gives PyTorch's default ``nn.Linear``
    initialisation with the last layer scaled by 0.01 (a near-uniform start).

    Examples
    --------
    >>> import torch
    >>> policy = SoftmaxMLPPolicy(state_dim=4, num_actions=2, hidden=(8,))
    >>> theta = policy.initial_parameters(seed=0)
    >>> theta.shape, policy.num_params
    (torch.Size([58]), 58)
    >>> p = policy.log_prob(theta, torch.zeros(3, 4), torch.tensor([0, 1, 1])).exp()
    >>> bool(((p > 0.45) & (p < 0.55)).all())
    True
    """

    state_dim: int
    num_actions: int
    hidden: tuple[int, ...] = (32, 32)

    def __post_init__(self) -> None:
        _positive_int(self.state_dim, "state_dim")
        _positive_int(self.num_actions, "num_actions")
        for width in self.hidden:
            _positive_int(width, "hidden width")

    @property
    def _sizes(self) -> list[tuple[int, int]]:
        widths = [self.state_dim, *self.hidden, self.num_actions]
        return list(zip(widths[1:], widths[:-1], strict=True))

    @property
    def num_params(self) -> int:
        return sum(out * inp + out for out, inp in self._sizes)

    def initial_parameters(
        self, seed: int = 0, dtype: torch.dtype = torch.float32
    ) -> torch.Tensor:
        g = torch.Generator().manual_seed(seed)
        parts = []
        last = len(self._sizes) - 1
        for k, (out, inp) in enumerate(self._sizes):
            bound = 1.0 / math.sqrt(inp)
            scale = 0.01 if k == last else 1.0
            w = (torch.rand(out * inp + out, generator=g, dtype=dtype) * 2 - 1) * bound
            parts.append(w * scale)
        return torch.cat(parts)

    def logits(self, theta: torch.Tensor, states: torch.Tensor) -> torch.Tensor:
        h = states.to(theta.dtype)
        offset = 0
        last = len(self._sizes) - 1
        for k, (out, inp) in enumerate(self._sizes):
            w = theta[offset : offset + out * inp].reshape(out, inp)
            offset += out * inp
            b = theta[offset : offset + out]
            offset += out
            h = h @ w.T + b
            if k != last:
                h = torch.tanh(h)
        return h

    def log_prob(
        self, theta: torch.Tensor, states: torch.Tensor, actions: torch.Tensor
    ) -> torch.Tensor:
        logp = torch.log_softmax(self.logits(theta, states), dim=-1)
        return logp.gather(-1, actions.long().unsqueeze(-1)).squeeze(-1)

    def sample(
        self, theta: torch.Tensor, states: torch.Tensor, generator: torch.Generator
    ) -> torch.Tensor:
        probs = torch.softmax(self.logits(theta, states), dim=-1)
        u = torch.rand((*probs.shape[:-1], 1), generator=generator, dtype=probs.dtype)
        # inverse CDF; the clamp guards the rounding of the last cumulative sum
        cdf = probs.cumsum(-1)
        return (cdf < u).sum(-1).clamp_max(self.num_actions - 1)
