"""Sequences of related linear systems (the Learning-to-Relax test problems).

* :func:`shifted_laplacian_sequence`: ``A_t = A + c_t I`` with ``A`` the 2-D
  5-point Laplacian and Beta-distributed diagonal shifts ``c_t`` (the paper's
  high- and low-variance distributions), right-hand sides ``N(0, I)`` truncated to
  ``||b|| <= sqrt(n)``.
* :class:`HeatEquation2D`: Crank–Nicolson steps of the 2-D heat equation with a
  time-varying diffusion coefficient and a moving heat source; each step is one
  SPD system whose matrix changes with the coefficient.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from itersolve.problems.poisson import poisson

# c = -0.15 + 0.6 Beta(a, b): the shift distributions of the reference scripts.
SHIFT_DISTRIBUTIONS = {"high-variance": (0.5, 1.5), "low-variance": (2.0, 6.0)}
SHIFT_OFFSET, SHIFT_WIDTH = -0.15, 0.6


@dataclass(frozen=True)
class ShiftedLaplacianSequence:
    """``T`` systems ``(A + c_t I) x = b_t``; iterate to get ``(A_t, b_t, c_t)``.

    Examples
    --------
    >>> from itersolve.problems import shifted_laplacian_sequence
    >>> sequence = shifted_laplacian_sequence(3, n=4, seed=0)
    >>> [A.shape for A, b, c in sequence]
    [(16, 16), (16, 16), (16, 16)]
    """

    A: sp.csr_array
    shifts: np.ndarray
    rhs: np.ndarray
    distribution: str

    @property
    def context_range(self) -> tuple[float, float]:
        """The support of the shifts: the interval a contextual tuner is told."""
        return SHIFT_OFFSET, SHIFT_OFFSET + SHIFT_WIDTH

    def __len__(self) -> int:
        return len(self.shifts)

    def matrix(self, t: int) -> sp.csr_array:
        eye = sp.eye_array(self.A.shape[0], format="csr")
        return sp.csr_array(self.A + float(self.shifts[t]) * eye)

    def __iter__(self) -> Iterator[tuple[sp.csr_array, np.ndarray, float]]:
        for t in range(len(self)):
            yield self.matrix(t), self.rhs[t], float(self.shifts[t])


def truncated_normal(n: int, count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` draws of ``N(0, I_n)`` conditioned on ``||b|| <= sqrt(n)``."""
    out = np.empty((count, n))
    filled = 0
    while filled < count:
        draw = rng.standard_normal((2 * (count - filled) + 8, n))
        ok = draw[np.linalg.norm(draw, axis=1) <= math.sqrt(n)]
        take = min(len(ok), count - filled)
        out[filled : filled + take] = ok[:take]
        filled += take
    return out


def shifted_laplacian_sequence(
    T: int,
    *,
    distribution: str = "high-variance",
    n: int = 10,
    seed: int = 0,
) -> ShiftedLaplacianSequence:
    """The paper's sequence: 2-D Laplacian on ``n x n`` points plus random shifts.

    ``c_t = -0.15 + 0.6 Beta(0.5, 1.5)`` (``"high-variance"``: mass near -0.15,
    where the systems are nearly singular and SOR is slow) or
    ``-0.15 + 0.6 Beta(2, 6)`` (``"low-variance"``), as in the reference
    ``contextual.m``; ``A`` is ``poisson(n, 2)`` (diagonal 4, MATLAB
    ``delsq(numgrid('S', n + 2))``), SPD for every shift since its smallest
    eigenvalue ``8 sin^2(pi / (2 (n + 1)))`` exceeds 0.15 for ``n <= 10``.

    Examples
    --------
    >>> seq = shifted_laplacian_sequence(3, seed=1)
    >>> seq.A.shape, seq.rhs.shape, bool((abs(seq.shifts - 0.15) <= 0.3).all())
    ((100, 100), (3, 100), True)
    """
    if distribution not in SHIFT_DISTRIBUTIONS:
        raise ValueError(
            f"distribution must be one of {tuple(SHIFT_DISTRIBUTIONS)}, got "
            f"{distribution!r}"
        )
    if not isinstance(T, (int, np.integer)) or T < 1:
        raise ValueError(f"T must be a positive int, got {T!r}")
    rng = np.random.default_rng(seed)
    a, b = SHIFT_DISTRIBUTIONS[distribution]
    A = poisson(n, dim=2)
    lam_min = 8.0 * math.sin(math.pi / (2 * (n + 1))) ** 2
    if lam_min + SHIFT_OFFSET <= 0:
        raise ValueError(
            f"n = {n} makes A + c I indefinite for c near {SHIFT_OFFSET}: use n <= 10"
        )
    shifts = SHIFT_OFFSET + SHIFT_WIDTH * rng.beta(a, b, size=T)
    rhs = truncated_normal(n * n, T, rng)
    return ShiftedLaplacianSequence(A, shifts, rhs, distribution)


def _bump(points: np.ndarray, center: tuple[float, float], radius: float) -> np.ndarray:
    """Smooth bump ``exp(1 - 1 / (1 - |x - c|^2 / r^2))``, zero outside radius r."""
    s = np.minimum(1.0, ((points - np.asarray(center)) ** 2).sum(axis=1) / radius**2)
    with np.errstate(divide="ignore"):
        return np.exp(1.0 - 1.0 / (1.0 - s))


class HeatEquation2D:
    """Crank–Nicolson for ``u_t = kappa(t) Laplace(u) + f(t, x)`` on the unit square.

    Zero Dirichlet boundary, ``(nx - 1)^2`` interior points, ``dx = 1 / nx``,
    ``dt = stoptime / steps``. Diffusion ``kappa(t) = max(0.1 sin 2 pi t,
    -10 sin 2 pi t)`` (two regimes two orders of magnitude apart), a heat source
    that moves on a circle, and a bump as the initial state — the setup of the
    reference ``h2d.m``. Step ``k`` solves

        (I - kappa_h dt/2 L) u_{k+1} = (I + kappa_h dt/2 L) u_k + dt f(t_h),

    ``t_h = (k + 1/2) dt``, an SPD system whose matrix changes with ``kappa_h``
    (the context a tuner may see).

    Examples
    --------
    >>> heat = HeatEquation2D(8, steps=100)
    >>> A, b, kappa = heat.system(0, heat.initial)
    >>> A.shape, b.shape, kappa > 0
    ((49, 49), (49,), True)
    """

    def __init__(self, nx: int = 50, *, steps: int = 5000, stoptime: float = 5.0):
        if not isinstance(nx, (int, np.integer)) or nx < 3:
            raise ValueError(f"nx must be an int >= 3, got {nx!r}")
        if not isinstance(steps, (int, np.integer)) or steps < 1:
            raise ValueError(f"steps must be a positive int, got {steps!r}")
        if not stoptime > 0:
            raise ValueError(f"stoptime must be positive, got {stoptime!r}")
        self.nx = int(nx)
        self.steps = int(steps)
        self.dt = stoptime / steps
        dx = 1.0 / nx
        self.n = (nx - 1) ** 2
        self.L = sp.csr_array(-poisson(nx - 1, dim=2) / dx**2)
        self.eye = sp.eye_array(self.n, format="csr")
        grid = np.arange(1, nx) * dx
        ii, jj = np.meshgrid(grid, grid, indexing="ij")
        self.points = np.column_stack([ii.ravel(), jj.ravel()])
        self.initial = _bump(self.points, (0.5, 0.5), 0.25)

    @staticmethod
    def coefficient(t: float) -> float:
        s = math.sin(2.0 * math.pi * t)
        return max(0.1 * s, -10.0 * s)

    def forcing(self, t: float) -> np.ndarray:
        center = (
            0.5 + math.cos(16.0 * math.pi * t) / 4.0,
            0.5 + math.sin(16.0 * math.pi * t) / 4.0,
        )
        return 32.0 * _bump(self.points, center, 0.125)

    def context_range(self, steps: int | None = None) -> tuple[float, float]:
        """Range of the diffusion coefficient over the first ``steps`` steps."""
        k = np.arange(self.steps if steps is None else steps)
        values = [self.coefficient((i + 0.5) * self.dt) for i in k]
        return float(min(values)), float(max(values))

    def system(self, k: int, u: np.ndarray) -> tuple[sp.csr_array, np.ndarray, float]:
        """The matrix, right-hand side and diffusion coefficient of step ``k``."""
        half = (k + 0.5) * self.dt
        kappa = self.coefficient(half)
        CL = (0.5 * kappa * self.dt) * self.L
        A = sp.csr_array(self.eye - CL)
        b = u + CL @ u + self.dt * self.forcing(half)
        return A, b, kappa
