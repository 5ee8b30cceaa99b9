"""Explicit Runge-Kutta integration of an autonomous ODE ``dz/dt = g(z)`` over
``t in [0, 1]``: classical RK4 with fixed steps and Dormand-Prince 5(4)
with adaptive steps, written once for :class:`itersolve.nn.HomoODE`.

Every stage is an ordinary torch computation, so autograd differentiates the
endpoint through the steps taken (discretise-then-differentiate). The
adaptive step sizes are chosen from detached values: the gradient is that of
the endpoint with the accepted step sequence held fixed, as in
``torchdiffeq.odeint`` without the adjoint.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from itersolve._core.solution import Status

Field = Callable[[torch.Tensor], torch.Tensor]

METHODS = ("rk4", "dopri5")

# Dormand-Prince 5(4): rows of A, the 5th-order weights B (which equal the
# last row of A, so the last stage is the next step's first: FSAL) and the
# difference B - B* to the embedded 4th-order weights (the error estimate).
_DP_A = (
    (1 / 5,),
    (3 / 40, 9 / 40),
    (44 / 45, -56 / 15, 32 / 9),
    (19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729),
    (9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656),
)
_DP_B = (35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84)
_DP_E = (
    35 / 384 - 5179 / 57600,
    0.0,
    500 / 1113 - 7571 / 16695,
    125 / 192 - 393 / 640,
    -2187 / 6784 + 92097 / 339200,
    11 / 84 - 187 / 2100,
    -1 / 40,
)
# Step-size control as in Hairer-Norsett-Wanner (II.4) and torchdiffeq.
_SAFETY, _GROW, _SHRINK = 0.9, 10.0, 0.2


@dataclass
class Integration:
    """What one integration did: ``fevals`` evaluations of ``g``, ``steps``
    accepted and ``rejected`` steps, and how it ended."""

    status: Status
    fevals: int
    steps: int
    rejected: int = 0


def _combine(
    z: torch.Tensor, h: float, coeffs: tuple[float, ...], ks: list
) -> torch.Tensor:
    out = z
    for c, k in zip(coeffs, ks, strict=False):
        if c != 0.0:
            out = out + (h * c) * k
    return out


def rk4(g: Field, z0: torch.Tensor, steps: int) -> tuple[torch.Tensor, Integration]:
    """``steps`` classical RK4 steps of size ``1 / steps`` (``4 steps``
    evaluations of ``g``)."""
    h, z = 1.0 / steps, z0
    for _ in range(steps):
        k1 = g(z)
        k2 = g(z + (h / 2) * k1)
        k3 = g(z + (h / 2) * k2)
        k4 = g(z + h * k3)
        z = z + (h / 6) * (k1 + 2 * k2 + 2 * k3 + k4)
    return z, Integration(Status.SUCCESS, 4 * steps, steps)


def _rms(v: torch.Tensor) -> float:
    return float(torch.sqrt(torch.mean(v.detach().to(torch.float64) ** 2)))


def _first_step(
    g: Field, z0: torch.Tensor, k0: torch.Tensor, rtol: float, atol: float
) -> float:
    """Hairer-Norsett-Wanner's starting step (one evaluation of ``g``)."""
    scale = atol + rtol * z0.detach().abs()
    d0, d1 = _rms(z0 / scale), _rms(k0 / scale)
    h0 = 0.01 * d0 / d1 if d0 > 1e-5 and d1 > 1e-5 else 1e-6
    with torch.no_grad():
        k1 = g(z0.detach() + h0 * k0.detach())
    d2 = _rms((k1 - k0.detach()) / scale) / h0
    top = max(d1, d2)
    h1 = max(1e-6, h0 * 1e-3) if top <= 1e-15 else (0.01 / top) ** (1 / 5)
    return min(100 * h0, h1, 1.0)


def dopri5(
    g: Field, z0: torch.Tensor, rtol: float, atol: float, max_steps: int
) -> tuple[torch.Tensor, Integration]:
    """Adaptive Dormand-Prince 5(4) from ``t = 0`` to ``1``.

    A step is accepted when the root-mean-square over all entries of
    ``err / (atol + rtol max(|z_n|, |z_n+1|))`` is at most 1 (one norm over
    the whole batch, as torchdiffeq's default); the next step is
    ``h * clip(0.9 err^(-1/5), 0.2, 10)`` (at most ``h`` after a rejection).
    Ends ``SUCCESS`` at ``t = 1``, ``MAX_STEPS`` after ``max_steps`` accepted
    and rejected steps, ``NONFINITE`` on a non-finite error estimate,
    ``STAGNATION`` when the step falls below ``1e-12``.
    """
    z, t = z0, 0.0
    k1 = g(z)
    h = _first_step(g, z0, k1, rtol, atol)
    fevals, steps, rejected = 2, 0, 0
    status = Status.MAX_STEPS
    while steps + rejected < max_steps:
        h = min(h, 1.0 - t)
        ks = [k1]
        for row in _DP_A:
            ks.append(g(_combine(z, h, row, ks)))
        z_new = _combine(z, h, _DP_B, ks)
        k7 = g(z_new)
        fevals += 6
        err = _combine(torch.zeros_like(z), h, _DP_E, [*ks, k7])
        scale = atol + rtol * torch.maximum(z.detach().abs(), z_new.detach().abs())
        norm = _rms(err / scale)
        if norm != norm or norm == float("inf"):
            status = Status.NONFINITE
            break
        if norm <= 1.0:
            z, k1, t = z_new, k7, t + h
            steps += 1
            if t >= 1.0 - 1e-12:
                status = Status.SUCCESS
                break
            factor = _GROW if norm == 0 else _SAFETY * norm ** (-1 / 5)
            h *= min(_GROW, max(_SHRINK, factor))
        else:
            rejected += 1
            h *= min(1.0, max(_SHRINK, _SAFETY * norm ** (-1 / 5)))
        if h < 1e-12:
            status = Status.STAGNATION
            break
    return z, Integration(status, fevals, steps, rejected)
