"""Objectives through a neural network, ``f(x) = outer(Phi(x))``, for
derivative-free methods with directional attacks (Bouchet & Vidal 2025).

* :func:`mlp_surrogate` -- a seeded MLP ``Phi: R^10 -> R^5`` trained on a
  Rosenbrock-style smooth map, with ``outer(y) = ||y - target||^2``;
* :func:`nonsmooth_valley` -- a ReLU "network" with kinks whose minimiser is
  known: ``f(x) = w sum_i |x_{i+1} - x_i| + (mean(x) - a)^2``.

Both are :class:`SurrogateObjective`: call it on a torch tensor for ``f(x)``;
``network`` and ``outer`` are what an attack differentiates.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

Tensor = torch.Tensor


@dataclass(frozen=True)
class SurrogateObjective:
    """``f(x) = outer(network(x))`` on the box ``[lo, hi]^n``.

    Attributes
    ----------
    network
        ``Phi``: torch function of ``x`` (shape ``(n,)``) to ``(m,)``.
    outer
        Smooth torch function of ``Phi``'s output to a scalar.
    n, lo, hi
        Dimension and the bounds of every coordinate.
    x_star, f_star
        The known minimiser and minimum (``None`` when unknown).

    Examples
    --------
    >>> p = nonsmooth_valley(3)
    >>> float(p(p.x_star)), p.f_star
    (0.0, 0.0)
    """

    network: Callable[[Tensor], Tensor]
    outer: Callable[[Tensor], Tensor]
    n: int
    lo: float
    hi: float
    x_star: Tensor | None = None
    f_star: float | None = None

    def __call__(self, x: Tensor) -> Tensor:
        return self.outer(self.network(x))

    def numpy(self, x: np.ndarray) -> float:
        """``f(x)`` for a NumPy ``x`` (float64), for NumPy-based anchors."""
        with torch.no_grad():
            return float(self(torch.as_tensor(np.asarray(x, dtype=np.float64))))

    def starts(self, count: int, seed: int = 0) -> Tensor:
        """``count`` starting points drawn uniformly in the box, one per row.

        >>> nonsmooth_valley(4).starts(2, seed=1).shape
        torch.Size([2, 4])
        """
        g = torch.Generator().manual_seed(seed)
        u = torch.rand(count, self.n, generator=g, dtype=torch.float64)
        return self.lo + (self.hi - self.lo) * u


def rosenbrock_components(x: Tensor) -> Tensor:
    """``g_j(x) = ((1 - x_{2j})^2 + 10 (x_{2j+1} - x_{2j}^2)^2) / 10`` per pair of
    coordinates (last axis of even length ``n``), shape ``(..., n / 2)``.

    >>> rosenbrock_components(torch.ones(4, dtype=torch.float64)).tolist()
    [0.0, 0.0]
    """
    a, b = x[..., 0::2], x[..., 1::2]
    return ((1.0 - a) ** 2 + 10.0 * (b - a**2) ** 2) / 10.0


@functools.lru_cache(maxsize=8)
def _trained_mlp(
    n: int, hidden: int, seed: int, samples: int, train_steps: int
) -> torch.nn.Sequential:
    g = torch.Generator().manual_seed(seed)
    torch_state = torch.random.get_rng_state()
    torch.manual_seed(seed)  # nn.Linear initialises from the global generator
    try:
        net = torch.nn.Sequential(
            torch.nn.Linear(n, hidden),
            torch.nn.Tanh(),
            torch.nn.Linear(hidden, hidden),
            torch.nn.Tanh(),
            torch.nn.Linear(hidden, n // 2),
        ).double()
    finally:
        torch.random.set_rng_state(torch_state)
    X = MLP_LO + (MLP_HI - MLP_LO) * torch.rand(
        samples, n, generator=g, dtype=torch.float64
    )
    Y = rosenbrock_components(X)
    opt = torch.optim.LBFGS(
        net.parameters(),
        lr=1.0,
        max_iter=train_steps,
        history_size=20,
        line_search_fn="strong_wolfe",
        tolerance_grad=1e-12,
        tolerance_change=1e-15,
    )

    def closure() -> Tensor:
        opt.zero_grad()
        loss = ((net(X) - Y) ** 2).mean()
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    for p in net.parameters():
        p.requires_grad_(False)
    return net.eval()


MLP_LO, MLP_HI = -1.5, 1.5
MLP_TARGET = -0.5
"""Every output's target; below ``min g_j = 0``, so ``f* > 0`` and the
minimiser is isolated (a reachable target would leave a manifold of minima
with ``f* = 0``, where a relative comparison of final values means nothing)."""


def mlp_surrogate(
    n: int = 10,
    *,
    hidden: int = 32,
    seed: int = 0,
    samples: int = 2048,
    train_steps: int = 300,
) -> SurrogateObjective:
    """A trained MLP ``Phi: R^n -> R^(n/2)`` and ``f(x) = ||Phi(x) - t||^2``.

    ``Phi`` (two tanh hidden layers of ``hidden`` units, float64, seeded) is
    fitted by full-batch L-BFGS (``train_steps`` iterations, strong Wolfe; a
    relative mean squared error of about 0.4% at the defaults) to
    :func:`rosenbrock_components` on ``samples`` uniform points of
    ``[-1.5, 1.5]^n``; the target is ``t = -0.5`` in every output. The
    minimiser is not known in closed form (``x_star = None``). The trained
    network is cached per arguments.

    Examples
    --------
    >>> p = mlp_surrogate(4, hidden=8, train_steps=20)
    >>> p.network(torch.zeros(4, dtype=torch.float64)).shape
    torch.Size([2])
    """
    if n < 2 or n % 2:
        raise ValueError(f"n must be an even int >= 2, got {n!r}")
    net = _trained_mlp(n, hidden, seed, samples, train_steps)
    target = torch.full((n // 2,), MLP_TARGET, dtype=torch.float64)

    def outer(y: Tensor) -> Tensor:
        return ((y - target) ** 2).sum()

    return SurrogateObjective(net, outer, n, MLP_LO, MLP_HI)


def nonsmooth_valley(
    n: int = 2, *, weight: float = 1.0, level: float = 0.5
) -> SurrogateObjective:
    """``f(x) = w sum_{i<n} |x_{i+1} - x_i| + (mean(x) - a)^2`` on ``[-2, 2]^n``.

    ``Phi(x) = (relu(x_{i+1} - x_i) + relu(x_i - x_{i+1}))_i`` with
    ``mean(x) - a`` appended (ReLU kinks), ``outer(y) = w sum(y[:-1]) +
    y[-1]^2`` (smooth). ``f`` is convex and its only Clarke-stationary point
    is the minimiser ``x* = a 1`` with ``f* = 0``. Away from ``x*`` the
    kinks pin gradient steps: on the valley ``x_1 = ... = x_n`` every signed
    gradient step at a radius below the distance to a kink moves across the
    valley, never along it, so an attack stalls where a poll with dense
    directions keeps going.

    Examples
    --------
    >>> p = nonsmooth_valley(3, weight=2.0, level=0.0)
    >>> float(p(torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64)))
    2.111111111111111
    """
    if n < 2:
        raise ValueError(f"n must be an int >= 2, got {n!r}")

    def network(x: Tensor) -> Tensor:
        gaps = x[..., 1:] - x[..., :-1]
        kinks = torch.relu(gaps) + torch.relu(-gaps)
        return torch.cat([kinks, (x.mean(dim=-1) - level)[..., None]], dim=-1)

    def outer(y: Tensor) -> Tensor:
        return weight * y[..., :-1].sum(dim=-1) + y[..., -1] ** 2

    x_star = torch.full((n,), float(level), dtype=torch.float64)
    return SurrogateObjective(network, outer, n, -2.0, 2.0, x_star, 0.0)
