"""Composite stochastic mirror descent (proximal SGD) with last-iterate step sizes."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import torch

from itersolve.optim._schedule_functions import Schedule, _check_step

DOMAINS = (None, "box", "simplex")
MIRRORS = ("euclidean", "entropy")


# -- prox operators -------------------------------------------------------------


def soft_threshold(x: torch.Tensor, threshold: float) -> torch.Tensor:
    """``prox_{threshold * ||.||_1}(x) = sign(x) max(|x| - threshold, 0)``.

    Examples
    --------
    >>> soft_threshold(torch.tensor([-2.0, 0.5, 3.0]), 1.0)
    tensor([-1.,  0.,  2.])
    """
    return torch.sign(x) * torch.clamp(x.abs() - threshold, min=0.0)


def project_simplex(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Euclidean projection onto the probability simplex along ``dim`` (sorting
    algorithm of Held et al. 1974 / Duchi et al. 2008, vectorised).

    Examples
    --------
    >>> project_simplex(torch.tensor([0.5, 0.5, 1.0]))
    tensor([0.1667, 0.1667, 0.6667])
    """
    moved = x.movedim(dim, -1)
    n = moved.shape[-1]
    u, _ = torch.sort(moved, dim=-1, descending=True)
    css = u.cumsum(dim=-1) - 1.0
    k = torch.arange(1, n + 1, dtype=x.dtype, device=x.device)
    support = (u - css / k) > 0
    rho = support.to(torch.int64).cumsum(dim=-1).argmax(dim=-1, keepdim=True)
    theta = css.gather(-1, rho) / (rho + 1).to(x.dtype)
    return torch.clamp(moved - theta, min=0.0).movedim(-1, dim)


# -- the optimizer --------------------------------------------------------------


class ProxSGD(torch.optim.Optimizer):
    """Composite stochastic mirror descent; its **last iterate** is the answer.

    For ``min_{x in X} f(x) + l1 * ||x||_1`` with stochastic gradients ``g_t`` of
    ``f`` (read from ``p.grad``), each step solves, with the group's current
    ``lr = eta_t`` used **inside** the prox too::

        x_{t+1} = argmin_{x in X} l1 ||x||_1 + <g_t, x> + D_psi(x, x_t) / eta_t

    * ``mirror="euclidean"`` (proximal SGD): ``x_{t+1} = prox(x_t - eta_t g_t)``
      with the joint prox of ``l1 ||.||_1 + indicator(X)``: soft-threshold then
      clip for a box (exact for separable terms); Euclidean projection for the
      simplex (where ``||x||_1 = 1`` is constant).
    * ``mirror="entropy"`` (exponentiated gradient on the simplex):
      ``x_{t+1} proportional to x_t * exp(-eta_t g_t)``.

    With ``average=True`` the uniform average of ``x_1 .. x_t`` is kept in
    ``optimizer.state[p]["average"]`` so last and averaged iterates can be
    compared. There is no stopping rule: run a fixed horizon ``T`` with one of
    the step-size rules (``convex_known_horizon``, ``convex_anytime``,
    ``strongly_convex``, ``heavy_tailed``) through ``LambdaLR`` with ``lr=1``.

    Compare with ``torch.optim.SGD`` (no prox) and
    ``sklearn.linear_model.SGDRegressor(penalty="l1")`` (truncated-gradient
    heuristic, not this exact prox, and averaging when ``average=True``).

    Parameters
    ----------
    params
        Parameters or groups.
    lr
        Step size ``eta`` (multiplied by a ``LambdaLR`` schedule if used).
    l1
        Weight of the l1 term (>= 0).
    domain
        ``None`` (R^n), ``"box"`` (with ``lower`` / ``upper``) or ``"simplex"``
        (along ``simplex_dim``; iterates must start on the simplex).
    mirror
        ``"euclidean"`` or ``"entropy"`` (needs ``domain="simplex"``).
    average
        Also track the running average of the iterates.

    References
    ----------
    Z. Liu, Z. Zhou, "Revisiting the Last-Iterate Convergence of Stochastic
    Gradient Methods", ICLR 2024, arXiv 2312.08531.

    Examples
    --------
    >>> import torch
    >>> x = torch.nn.Parameter(torch.tensor([3.0, -0.2]))
    >>> opt = ProxSGD([x], lr=0.5, l1=0.1)
    >>> for _ in range(50):
    ...     opt.zero_grad()
    ...     (0.5 * (x - torch.tensor([1.0, 0.05])).square().sum()).backward()
    ...     _ = opt.step()
    >>> x.detach()  # soft-thresholded least squares solution
    tensor([0.9000, 0.0000])
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-2,
        *,
        l1: float = 0.0,
        domain: str | None = None,
        lower: float | None = None,
        upper: float | None = None,
        mirror: str = "euclidean",
        simplex_dim: int = -1,
        average: bool = False,
    ) -> None:
        if not 0.0 <= lr:
            raise ValueError(f"Invalid learning rate: {lr}")
        if not 0.0 <= l1:
            raise ValueError(f"Invalid l1 value: {l1}")
        if domain not in DOMAINS:
            raise ValueError(f"Invalid domain: {domain!r}; use one of {DOMAINS}")
        if mirror not in MIRRORS:
            raise ValueError(f"Invalid mirror: {mirror!r}; use one of {MIRRORS}")
        if mirror == "entropy" and domain != "simplex":
            raise ValueError(
                f"mirror='entropy' needs domain='simplex', got domain={domain!r}"
            )
        if domain == "box":
            if lower is None and upper is None:
                raise ValueError("domain='box' needs lower and/or upper")
            if lower is not None and upper is not None and not lower <= upper:
                raise ValueError(f"Invalid box: lower={lower} > upper={upper}")
        elif lower is not None or upper is not None:
            raise ValueError("lower / upper are only used with domain='box'")
        defaults = dict(
            lr=lr,
            l1=l1,
            domain=domain,
            lower=lower,
            upper=upper,
            mirror=mirror,
            simplex_dim=simplex_dim,
            average=average,
        )
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """One composite step from ``p.grad``."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            eta, l1 = group["lr"], group["l1"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                if group["mirror"] == "entropy":
                    dim = group["simplex_dim"]
                    logits = torch.log(p.clamp(min=torch.finfo(p.dtype).tiny))
                    p.copy_(torch.softmax(logits - eta * p.grad, dim=dim))
                else:
                    x = p - eta * p.grad
                    if group["domain"] == "simplex":
                        x = project_simplex(x, group["simplex_dim"])
                    else:
                        if l1 > 0:
                            x = soft_threshold(x, eta * l1)
                        if group["domain"] == "box":
                            x = x.clamp(min=group["lower"], max=group["upper"])
                    p.copy_(x)
                if group["average"]:
                    state = self.state[p]
                    count = state.get("count", 0) + 1
                    state["count"] = count
                    if "average" not in state:
                        state["average"] = p.detach().clone()
                    else:
                        state["average"].add_(p - state["average"], alpha=1 / count)
        return loss


# -- step-size rules --------------------------------------------------------------


def _check_positive(**values: float | None) -> None:
    for name, value in values.items():
        if value is not None and not (math.isfinite(value) and value > 0):
            raise ValueError(f"{name} must be a finite number > 0, got {value}")


def _cap(smoothness: float | None) -> float:
    return math.inf if smoothness is None else 1.0 / (2.0 * smoothness)


@dataclass(frozen=True)
class ConvexKnownHorizon(Schedule):
    smoothness: float | None
    eta: float
    horizon: int

    def __call__(self, t: int) -> float:
        _check_step(t)
        return min(_cap(self.smoothness), self.eta / math.sqrt(self.horizon))


@dataclass(frozen=True)
class ConvexAnytime(Schedule):
    smoothness: float | None
    eta: float

    def __call__(self, t: int) -> float:
        t = _check_step(t)
        return min(_cap(self.smoothness), self.eta / math.sqrt(t + 1))


@dataclass(frozen=True)
class StronglyConvex(Schedule):
    smoothness: float | None
    mu: float

    def __call__(self, t: int) -> float:
        t = _check_step(t)
        return min(_cap(self.smoothness), 1.0 / (self.mu * (t + 1)))


@dataclass(frozen=True)
class HeavyTailed(Schedule):
    p: float
    eta: float
    horizon: int
    smoothness: float | None = None

    def __call__(self, t: int) -> float:
        _check_step(t)
        return min(_cap(self.smoothness), self.eta * self.horizon ** (-1.0 / self.p))


def _check_horizon(horizon: int) -> None:
    if isinstance(horizon, bool) or not isinstance(horizon, int) or horizon < 1:
        raise ValueError(f"T must be an integer >= 1, got {horizon!r}")


def convex_known_horizon(
    L: float | None,
    eta: float,
    T: int,
) -> ConvexKnownHorizon:
    """``eta_t = min(1/(2L), eta/sqrt(T))`` (general convex, known horizon ``T``);
    ``L=None`` drops the cap. Absolute step sizes: use with ``lr=1``.

    Examples
    --------
    >>> convex_known_horizon(1.0, 2.0, 100)(7)
    0.2
    """
    _check_positive(L=L, eta=eta)
    _check_horizon(T)
    return ConvexKnownHorizon(L, eta, T)


def convex_anytime(L: float | None, eta: float) -> ConvexAnytime:
    """``eta_t = min(1/(2L), eta/sqrt(t + 1))`` (general convex, no horizon).

    Examples
    --------
    >>> convex_anytime(None, 1.0)(3)
    0.5
    """
    _check_positive(L=L, eta=eta)
    return ConvexAnytime(L, eta)


def strongly_convex(L: float | None, mu: float) -> StronglyConvex:
    """``eta_t = min(1/(2L), 1/(mu (t + 1)))`` (``mu``-strongly convex).

    Examples
    --------
    >>> strongly_convex(1.0, 0.1)(0), strongly_convex(1.0, 0.1)(19)
    (0.5, 0.5)
    """
    _check_positive(L=L, mu=mu)
    return StronglyConvex(L, mu)


def heavy_tailed(p: float, eta: float, T: int, L: float | None = None) -> HeavyTailed:
    """``eta_t = min(1/(2L), eta T^{-1/p})`` for noise with a finite ``p``-th moment,
    ``p in (1, 2]``.

    Examples
    --------
    >>> round(heavy_tailed(2.0, 1.0, 100)(0), 6)
    0.1
    """
    if not 1.0 < p <= 2.0:
        raise ValueError(f"p must be in (1, 2], got {p}")
    _check_positive(L=L, eta=eta)
    _check_horizon(T)
    return HeavyTailed(p, eta, T, L)
