"""Stochastic estimators shared by the variance-reduced methods.

One home for the recursions that policy-gradient methods (:mod:`itersolve.rl`)
and multi-block bilevel methods (:mod:`itersolve.bilevel`) build on. Each is a
pure function of tensors of any (matching) shape: callers keep the state, the
functions never mutate their inputs and never draw random numbers except
:func:`interpolation_point`, which takes an explicit ``torch.Generator``.

* :func:`recursive_momentum` — STORM-type recursive momentum (Cutkosky and
  Orabona 2019), ``d_t = a g_t + (1 - a)(d_{t-1} + c_t)``, where the correction
  ``c_t`` estimates ``grad(x_t) - grad(x_{t-1})``: the difference of two
  stochastic gradients at one sample (STORM), or a Hessian-vector product at a
  random interpolation point (HARPG, Fatkhullin et al. 2023).
* :func:`msvr_update` — moving-average stochastic variance-reduced tracking of
  a vector-valued inner function (MSVR, as BSVRB uses):
  ``u_t = (1 - a) u_{t-1} + a h(x_t) + gamma (h(x_t) - h(x_{t-1}))``.
* :func:`igt_extrapolate` / :func:`moving_average` — implicit gradient
  transport (Arnold et al. 2019; NIGT, Cutkosky and Mehta 2020): the gradient
  is sampled at ``x_t + (1 - a)/a (x_t - x_{t-1})`` and averaged with weight
  ``a``, so on a quadratic the average equals the gradient at ``x_t``.
* :func:`interpolation_point` — ``q x_t + (1 - q) x_{t-1}`` with
  ``q ~ U[0, 1]``, the point at which a Hessian-vector product estimates
  ``grad(x_t) - grad(x_{t-1})`` without bias.
* :func:`normalized_step` — ``x + step d / max(||d||, eps)``.

Examples
--------
On a quadratic with exact gradients every tracker reproduces the gradient at the
current point:

>>> import torch
>>> from itersolve._core.estimators import igt_extrapolate, moving_average
>>> A = torch.diag(torch.tensor([1.0, 3.0], dtype=torch.float64))
>>> x_prev, x = torch.tensor([1.0, 1.0]).double(), torch.tensor([0.5, 0.2]).double()
>>> d = moving_average(A @ x_prev, A @ igt_extrapolate(x, x_prev, 0.25), 0.25)
>>> torch.allclose(d, A @ x)
True
"""

from __future__ import annotations

import math

import torch

__all__ = [
    "check_weight",
    "igt_extrapolate",
    "interpolation_point",
    "moving_average",
    "msvr_update",
    "normalized_step",
    "recursive_momentum",
]


def check_weight(a: float, name: str = "a") -> float:
    """Validate an averaging weight: a real number in ``(0, 1]``.

    >>> check_weight(0.5)
    0.5
    """
    if isinstance(a, bool) or not isinstance(a, int | float):
        raise TypeError(f"{name} must be a real number in (0, 1], got {a!r}")
    a = float(a)
    if not (0.0 < a <= 1.0):
        raise ValueError(f"{name} must be in (0, 1], got {a}")
    return a


def _check_same_shape(**tensors: torch.Tensor | None) -> None:
    shapes = {k: tuple(v.shape) for k, v in tensors.items() if v is not None}
    if len(set(shapes.values())) > 1:
        raise ValueError(f"shapes must match, got {shapes}")


def recursive_momentum(
    d_prev: torch.Tensor | None,
    grad: torch.Tensor,
    correction: torch.Tensor | None,
    a: float,
) -> torch.Tensor:
    """STORM-type recursive momentum ``d_t = a g_t + (1 - a)(d_{t-1} + c_t)``.

    With ``c_t = g(x_t; xi_t) - g(x_{t-1}; xi_t)`` this is STORM's
    ``d_t = g(x_t; xi_t) + (1 - a)(d_{t-1} - g(x_{t-1}; xi_t))``; with
    ``c_t`` a Hessian-vector product at a random interpolation point it is
    HARPG's update. If ``E[c_t] = grad(x_t) - grad(x_{t-1})`` and ``d_{t-1}``
    is unbiased for ``grad(x_{t-1})``, ``d_t`` is unbiased for ``grad(x_t)``.

    Parameters
    ----------
    d_prev
        The previous estimate ``d_{t-1}``; ``None`` at the first step, where
        the estimate is ``grad``.
    grad
        A stochastic gradient ``g_t`` at ``x_t``.
    correction
        The estimate ``c_t`` of ``grad(x_t) - grad(x_{t-1})``; ``None`` only
        together with ``d_prev=None``.
    a
        Weight of the fresh gradient, in ``(0, 1]`` (``a = 1``: plain SGD).

    Returns
    -------
    torch.Tensor
        A new tensor ``d_t``; the inputs are not modified.

    Examples
    --------
    Exact gradient differences keep an exact estimate exact:

    >>> import torch
    >>> g0, g1 = torch.tensor([1.0, 2.0]), torch.tensor([0.5, -1.0])
    >>> recursive_momentum(g0, g1, g1 - g0, 0.1)
    tensor([ 0.5000, -1.0000])
    """
    a = check_weight(a)
    if d_prev is None:
        return grad.clone()
    if correction is None:
        raise ValueError("correction is required when d_prev is given")
    _check_same_shape(d_prev=d_prev, grad=grad, correction=correction)
    return torch.lerp(d_prev + correction, grad, a)


def msvr_update(
    u_prev: torch.Tensor | None,
    h_new: torch.Tensor,
    h_old: torch.Tensor | None,
    a: float,
    gamma: float | None = None,
) -> torch.Tensor:
    """MSVR tracking ``u_t = (1 - a) u_{t-1} + a h_t + gamma (h_t - h'_{t-1})``.

    ``h_new = h(x_t; xi_t)`` and ``h_old = h(x_{t-1}; xi_t)`` are the inner
    function at the current and previous points **on the same sample**.
    ``gamma = 1 - a`` (the default) makes it STORM applied to ``h``
    (:func:`recursive_momentum` with ``c_t = h_new - h_old``); BSVRB's MSVR
    uses ``gamma = (m - b)/(b (1 - a)) + (1 - a)`` for ``b`` of ``m`` blocks
    sampled, which the caller passes.

    Parameters
    ----------
    u_prev
        The previous estimate; ``None`` at the first step (returns ``h_new``).
    h_new, h_old
        Inner-function samples at ``x_t`` and ``x_{t-1}``.
    a
        Averaging weight in ``(0, 1]``.
    gamma
        Weight of the correction, ``>= 0``; ``None`` for ``1 - a``.

    Examples
    --------
    >>> import torch
    >>> h0, h1 = torch.tensor([1.0]), torch.tensor([3.0])
    >>> msvr_update(h0, h1, h0, 0.5)
    tensor([3.])
    """
    a = check_weight(a)
    if u_prev is None:
        return h_new.clone()
    if h_old is None:
        raise ValueError("h_old is required when u_prev is given")
    if gamma is None:
        gamma = 1.0 - a
    if not (isinstance(gamma, int | float) and math.isfinite(gamma) and gamma >= 0):
        raise ValueError(f"gamma must be a finite number >= 0, got {gamma!r}")
    _check_same_shape(u_prev=u_prev, h_new=h_new, h_old=h_old)
    return (1.0 - a) * u_prev + a * h_new + gamma * (h_new - h_old)


def moving_average(
    d_prev: torch.Tensor | None, grad: torch.Tensor, a: float
) -> torch.Tensor:
    """Exponential moving average ``d_t = (1 - a) d_{t-1} + a g_t``.

    With ``g_t`` sampled at :func:`igt_extrapolate`'s point this is IGT's
    gradient estimate; with ``g_t`` at ``x_t`` it is heavy-ball momentum.

    Examples
    --------
    >>> import torch
    >>> moving_average(torch.tensor([1.0]), torch.tensor([3.0]), 0.25)
    tensor([1.5000])
    """
    a = check_weight(a)
    if d_prev is None:
        return grad.clone()
    _check_same_shape(d_prev=d_prev, grad=grad)
    return torch.lerp(d_prev, grad, a)


def igt_extrapolate(
    x: torch.Tensor, x_prev: torch.Tensor | None, a: float
) -> torch.Tensor:
    """The implicit-gradient-transport point ``x + (1 - a)/a (x - x_prev)``.

    A gradient sampled there and averaged by :func:`moving_average` with the
    same ``a`` transports the old average to ``x`` to first order: exactly
    on a quadratic, since ``(1 - a) A x_prev + a A x~ = A x``.

    Parameters
    ----------
    x, x_prev
        The current and previous iterates (``x_prev=None``: returns a copy of
        ``x``, the first step's sampling point).
    a
        The averaging weight in ``(0, 1]``; small ``a`` looks far ahead.

    Examples
    --------
    >>> import torch
    >>> igt_extrapolate(torch.tensor([1.0]), torch.tensor([0.0]), 0.5)
    tensor([2.])
    """
    a = check_weight(a)
    if x_prev is None:
        return x.clone()
    _check_same_shape(x=x, x_prev=x_prev)
    return x + ((1.0 - a) / a) * (x - x_prev)


def interpolation_point(
    x: torch.Tensor,
    x_prev: torch.Tensor,
    generator: torch.Generator | None = None,
    *,
    q: float | None = None,
) -> tuple[torch.Tensor, float]:
    """``(q x + (1 - q) x_prev, q)`` with ``q ~ U[0, 1]`` from ``generator``.

    ``grad(x) - grad(x_prev) = E_q[H(q x + (1 - q) x_prev)] (x - x_prev)``
    (the fundamental theorem of calculus along the segment), so a
    Hessian-vector product at this point, applied to ``x - x_prev``, is an
    unbiased estimate of the gradient difference.

    Parameters
    ----------
    x, x_prev
        The segment's end points.
    generator
        Source of ``q`` (CPU generator); ignored when ``q`` is given.
    q
        A fixed interpolation weight in ``[0, 1]`` (tests, replays).

    Examples
    --------
    >>> import torch
    >>> point, q = interpolation_point(torch.ones(2), torch.zeros(2), q=0.25)
    >>> point, q
    (tensor([0.2500, 0.2500]), 0.25)
    """
    _check_same_shape(x=x, x_prev=x_prev)
    if q is None:
        q = float(torch.rand((), generator=generator, dtype=torch.float64))
    elif not (isinstance(q, int | float) and 0.0 <= q <= 1.0):
        raise ValueError(f"q must be in [0, 1], got {q!r}")
    return torch.lerp(x_prev, x, float(q)), float(q)


def normalized_step(
    x: torch.Tensor, d: torch.Tensor, step: float, eps: float = 1e-8
) -> torch.Tensor:
    """``x + step d / max(||d||, eps)``: a move of length ``step`` along ``d``.

    The guard ``eps`` keeps a vanishing ``d`` (common at the first steps) from
    producing an infinite move; ``step < 0`` descends.

    Examples
    --------
    >>> import torch
    >>> normalized_step(torch.zeros(2), torch.tensor([3.0, 4.0]), 0.5)
    tensor([0.3000, 0.4000])
    """
    if not (isinstance(step, int | float) and math.isfinite(step)):
        raise ValueError(f"step must be a finite number, got {step!r}")
    if not (isinstance(eps, int | float) and eps > 0):
        raise ValueError(f"eps must be > 0, got {eps!r}")
    _check_same_shape(x=x, d=d)
    # clamp on the device: no host synchronisation per step on a GPU
    return x + d * (step / torch.linalg.vector_norm(d).clamp_min(eps))
