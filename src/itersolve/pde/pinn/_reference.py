"""Exact references of the periodic 1-D convection(-diffusion) problems."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

InitialCondition = Callable[[torch.Tensor], torch.Tensor]


def convection_exact(
    u0: InitialCondition,
    c: float,
    x: torch.Tensor,
    t: torch.Tensor,
    *,
    length: float = 2 * math.pi,
) -> torch.Tensor:
    """Exact solution ``u(x, t) = u0((x - c t) mod length)`` of ``u_t + c u_x = 0``.

    Parameters
    ----------
    u0
        Initial condition, a torch function on ``[0, length)``.
    c
        Convection speed.
    x, t
        1-D grids; the result has shape ``(len(t), len(x))``.
    length
        Period of the domain.

    Examples
    --------
    >>> import torch
    >>> x = torch.tensor([0.0, 1.0], dtype=torch.float64)
    >>> t = torch.tensor([0.0, 0.5], dtype=torch.float64)
    >>> u = convection_exact(torch.sin, 2.0, x, t)
    >>> torch.allclose(u[1], torch.sin(x - 1.0))
    True
    """
    shifted = torch.remainder(x[None, :] - c * t[:, None], length)
    return u0(shifted)


def convection_diffusion_fft(
    u0_values: torch.Tensor,
    c: float,
    nu: float,
    t: torch.Tensor,
    *,
    length: float = 2 * math.pi,
) -> torch.Tensor:
    """Solution of ``u_t + c u_x = nu u_xx`` with periodic boundaries, by FFT.

    Each Fourier mode ``k`` of the initial values is multiplied by
    ``exp(-(i c k + nu k^2) t)``: exact for an initial condition that is a
    trigonometric polynomial resolved by the grid, spectrally accurate for a
    smooth one (the reference solver of Krishnapriyan et al., which the
    Lagrangian PINN paper compares against).

    Parameters
    ----------
    u0_values
        The initial condition on the uniform periodic grid
        ``x_j = j length / n``, ``j = 0..n-1`` (1-D, float64 recommended).
    c, nu
        Speed and viscosity (``nu >= 0``).
    t
        1-D times; the result has shape ``(len(t), n)``.
    length
        Period of the domain.

    Examples
    --------
    At ``nu = 0`` it is the shifted initial condition:

    >>> import math, torch
    >>> x = torch.arange(16, dtype=torch.float64) * 2 * math.pi / 16
    >>> t = torch.tensor([0.3], dtype=torch.float64)
    >>> u = convection_diffusion_fft(torch.sin(x), 5.0, 0.0, t)
    >>> bool(torch.allclose(u[0], torch.sin(x - 1.5), atol=1e-12))
    True
    """
    if not nu >= 0:
        raise ValueError(f"nu must be >= 0, got {nu}")
    if u0_values.ndim != 1 or t.ndim != 1:
        raise ValueError(
            "u0_values and t must be 1-D, got shapes "
            f"{tuple(u0_values.shape)} and {tuple(t.shape)}"
        )
    n = u0_values.shape[0]
    k = 2 * math.pi * torch.fft.fftfreq(n, d=length / n, dtype=u0_values.dtype)
    modes = torch.fft.fft(u0_values)
    decay = torch.exp(-(1j * c * k[None, :] + nu * k[None, :] ** 2) * t[:, None])
    return torch.fft.ifft(modes[None, :] * decay, dim=-1).real
