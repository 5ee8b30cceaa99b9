"""Quadrature on one window: trapezoid, Simpson, Gauss–Legendre, Bayesian (Matérn)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

# Matérn nu = p + 1/2: k(r) = exp(-s r) sum_k c_k (s r)^k with s = sqrt(2 nu) / l.
_MATERN_POLY = {
    0.5: (1.0,),
    1.5: (1.0, 1.0),
    2.5: (1.0, 1.0, 1.0 / 3.0),
    3.5: (1.0, 1.0, 2.0 / 5.0, 1.0 / 15.0),
}


def _check_n(n: int, minimum: int = 2) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < minimum:
        raise ValueError(f"n_points must be an int >= {minimum}, got {n!r}")
    return int(n)


def _check_length(length: float) -> float:
    if not (isinstance(length, (int, float)) and math.isfinite(length) and length > 0):
        raise ValueError(f"window length must be a positive number, got {length!r}")
    return float(length)


def trapezoid_weights(n_points: int, length: float) -> torch.Tensor:
    """Composite trapezoid weights for ``n_points`` evenly spaced nodes on
    ``[0, length]`` (error ``O(n^-2)``). Compare with ``scipy.integrate.trapezoid``.

    Examples
    --------
    >>> trapezoid_weights(3, 1.0)
    tensor([0.2500, 0.5000, 0.2500], dtype=torch.float64)
    """
    n = _check_n(n_points)
    h = _check_length(length) / (n - 1)
    w = torch.full((n,), h, dtype=torch.float64)
    w[0] = w[-1] = h / 2
    return w


def simpson_weights(n_points: int, length: float) -> torch.Tensor:
    """Composite Simpson weights (``n_points`` odd, evenly spaced, error
    ``O(n^-4)``). Compare with ``scipy.integrate.simpson``.

    Examples
    --------
    >>> simpson_weights(3, 1.0) * 6
    tensor([1., 4., 1.], dtype=torch.float64)
    """
    n = _check_n(n_points, 3)
    if n % 2 == 0:
        raise ValueError(f"Simpson's rule needs an odd number of points, got {n}")
    h = _check_length(length) / (n - 1)
    w = torch.full((n,), 2.0, dtype=torch.float64)
    w[1::2] = 4.0
    w[0] = w[-1] = 1.0
    return w * h / 3


def gauss_legendre_rule(
    n_points: int, length: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Gauss–Legendre nodes and weights on ``[0, length]`` (exact to degree
    ``2n - 1``). Compare with ``numpy.polynomial.legendre.leggauss``.

    Examples
    --------
    >>> t, w = gauss_legendre_rule(2, 2.0)
    >>> float(w @ t**3)  # integral of t^3 on [0, 2]
    4.0
    """
    n = _check_n(n_points, 1)
    length = _check_length(length)
    x, w = np.polynomial.legendre.leggauss(n)
    return (
        torch.from_numpy(length * (x + 1) / 2),
        torch.from_numpy(w * length / 2),
    )


def matern_kernel(r: torch.Tensor, nu: float, lengthscale: float) -> torch.Tensor:
    """Matérn kernel ``k(r)`` for half-integer ``nu`` in {0.5, 1.5, 2.5, 3.5}.

    Examples
    --------
    >>> import torch
    >>> from itersolve.control import matern_kernel
    >>> r = torch.tensor([0.0, 0.3], dtype=torch.float64)
    >>> matern_kernel(r, 3.5, 0.3)[0].item()
    1.0
    """
    coef = _matern_coefficients(nu)
    x = math.sqrt(2 * nu) / lengthscale * r.abs()
    poly = torch.zeros_like(x)
    for c in reversed(coef):
        poly = poly * x + c
    return torch.exp(-x) * poly


def _matern_coefficients(nu: float) -> tuple[float, ...]:
    if nu not in _MATERN_POLY:
        raise ValueError(
            f"nu must be a half-integer in {sorted(_MATERN_POLY)} (closed-form "
            f"kernel means), got {nu!r}"
        )
    return _MATERN_POLY[nu]


def matern_kernel_mean(
    nodes: torch.Tensor, a: float, b: float, nu: float, lengthscale: float
) -> torch.Tensor:
    """``z_i = int_a^b k(t, t_i) dt`` in closed form (incomplete gamma sums).

    Examples
    --------
    >>> import torch
    >>> from itersolve.control import matern_kernel, matern_kernel_mean
    >>> node = torch.tensor([0.5], dtype=torch.float64)
    >>> z = matern_kernel_mean(node, 0.0, 1.0, 2.5, 0.3)
    >>> t = torch.linspace(0.0, 1.0, 20001, dtype=torch.float64)
    >>> numeric = torch.trapezoid(matern_kernel((t - 0.5).abs(), 2.5, 0.3), t)
    >>> abs(z.item() - numeric.item()) < 1e-8
    True
    """
    coef = _matern_coefficients(nu)
    s = math.sqrt(2 * nu) / lengthscale

    def half(d: torch.Tensor) -> torch.Tensor:
        # int_0^d exp(-s r) (s r)^k dr = k!/s * (1 - exp(-s d) sum_{j<=k} (s d)^j/j!)
        x = s * d
        out = torch.zeros_like(x)
        for k, c in enumerate(coef):
            tail = sum(x**j / math.factorial(j) for j in range(k + 1))
            out = out + c * math.factorial(k) * (1 - torch.exp(-x) * tail) / s
        return out

    return half(nodes - a) + half(b - nodes)


@dataclass(frozen=True)
class BayesQuadrature:
    """Bayesian-quadrature weights and diagnostics.

    ``weights = K^{-1} z``; ``condition`` is the Gram matrix's 2-norm condition
    number, ``sum_error = sum(weights) - (b - a)``, ``jitter`` the diagonal shift
    that was needed for the Cholesky factorisation (0 when none), ``variance``
    the posterior variance of the integral.

    Examples
    --------
    >>> import torch
    >>> from itersolve.control import bq_matern_weights
    >>> nodes = torch.linspace(0.0, 1.0, 5, dtype=torch.float64)
    >>> bq = bq_matern_weights(nodes, (0.0, 1.0))
    >>> bq.weights.shape, bool(bq.condition > 1)
    (torch.Size([5]), True)
    """

    weights: torch.Tensor
    condition: float
    sum_error: float
    jitter: float
    variance: float


def bq_matern_weights(
    nodes: Any,
    domain: tuple[float, float],
    nu: float = 3.5,
    lengthscale: float = 0.3,
    jitter: float = 0.0,
) -> BayesQuadrature:
    """Bayesian-quadrature weights for a zero-mean GP prior with a Matérn kernel.

    Compare with ``probnum.quad.bayesquad_from_data`` (same weights, no probnum
    dependency). For ``nu = p + 1/2`` the RKHS is the Sobolev space of order
    ``nu + 1/2`` on the line, so on evenly spaced nodes the error falls like
    ``n^-(nu + 1/2)`` (Cao & Pan, ICLR 2024, for IntRL). The Gram matrix is
    severely ill-conditioned when ``lengthscale`` exceeds the node spacing: it is
    factorised in float64 by Cholesky, with a jitter ``eps * trace / n`` grown
    tenfold (from ``jitter``, or ``1e-15`` when 0) only if the factorisation fails.

    Parameters
    ----------
    nodes
        Distinct sample times inside ``domain``.
    domain
        Integration interval ``(a, b)``; Lebesgue measure.
    nu, lengthscale
        Matérn smoothness (0.5, 1.5, 2.5 or 3.5) and length scale.
    jitter
        Initial relative diagonal shift (0: try without).

    Examples
    --------
    >>> bq = bq_matern_weights(torch.linspace(0, 0.1, 7, dtype=torch.float64), (0, 0.1))
    >>> abs(float(bq.weights.sum()) - 0.1) < 1e-6
    True
    """
    t = torch.as_tensor(nodes, dtype=torch.float64).reshape(-1)
    a, b = float(domain[0]), float(domain[1])
    if not b > a:
        raise ValueError(f"domain must be (a, b) with b > a, got {domain!r}")
    if not lengthscale > 0:
        raise ValueError(f"lengthscale must be positive, got {lengthscale!r}")
    if jitter < 0:
        raise ValueError(f"jitter must be >= 0, got {jitter!r}")
    if t.numel() < 1 or bool(((t < a) | (t > b)).any()):
        raise ValueError(f"nodes must be non-empty and lie in [{a}, {b}]")
    if torch.unique(t).numel() != t.numel():
        raise ValueError("nodes must be distinct (the Gram matrix is singular)")
    K = matern_kernel(t[:, None] - t[None, :], nu, lengthscale)
    z = matern_kernel_mean(t, a, b, nu, lengthscale)
    n = t.numel()
    eye = torch.eye(n, dtype=torch.float64)
    shift = jitter
    while True:
        L, info = torch.linalg.cholesky_ex(K + shift * eye)
        if int(info) == 0:
            break
        shift = 1e-15 if shift == 0 else shift * 10
        if shift > 1e-2:
            raise ValueError("the Gram matrix is not positive definite; check nodes")
    w = torch.cholesky_solve(z[:, None], L)[:, 0]
    # int int k(s, t) ds dt over [a, b]^2 (the prior variance of the integral):
    # 2 * int_0^D (D - r) k(r) dr, computed with Gauss–Legendre (smooth integrand).
    gx, gw = gauss_legendre_rule(64, b - a)
    prior = 2 * float((gw * (b - a - gx) * matern_kernel(gx, nu, lengthscale)).sum())
    evals = torch.linalg.eigvalsh(K)
    cond = float(evals[-1] / evals[0].clamp(min=1e-300))
    return BayesQuadrature(
        w, cond, float(w.sum()) - (b - a), shift, prior - float(z @ w)
    )


def integrate(samples: Any, weights: Any) -> torch.Tensor:
    """``sum_j weights_j * samples[..., j]`` (the quadrature estimate).

    Examples
    --------
    >>> float(integrate(torch.ones(3, dtype=torch.float64), trapezoid_weights(3, 2.0)))
    2.0
    """
    f = torch.as_tensor(samples, dtype=torch.float64)
    w = torch.as_tensor(weights, dtype=torch.float64)
    if f.shape[-1] != w.shape[-1]:
        raise ValueError(
            f"samples have {f.shape[-1]} nodes on the last axis, weights {w.shape[-1]}"
        )
    return f @ w
