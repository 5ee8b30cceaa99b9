"""Tomography phantoms made of ellipses, and sinograms simulated analytically.

A phantom is a sum of constant-valued ellipses on the square ``[-1, 1]^2``
(scaled to ``n/2`` pixels). Its image is rasterised by averaging
``supersample^2`` points per pixel; its sinogram is made of the *exact* line
integrals of the ellipses (closed form, no pixel grid), averaged over several
parallel rays across each detector bin. The reconstruction projector
(:class:`itersolve.imaging.ParallelBeamProjector`: one centre ray per bin
through a pixel grid) is a different discretisation, so reconstructing
simulated data does not commit the inverse crime.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from itersolve.imaging._projector import _as_angles, detector_offsets

#: value, semi-axis a, semi-axis b, centre x, centre y, rotation (degrees):
#: the modified Shepp-Logan table (Toft 1996), higher contrast than the original.
SHEPP_LOGAN = (
    (1.0, 0.69, 0.92, 0.0, 0.0, 0.0),
    (-0.8, 0.6624, 0.874, 0.0, -0.0184, 0.0),
    (-0.2, 0.11, 0.31, 0.22, 0.0, -18.0),
    (-0.2, 0.16, 0.41, -0.22, 0.0, 18.0),
    (0.1, 0.21, 0.25, 0.0, 0.35, 0.0),
    (0.1, 0.046, 0.046, 0.0, 0.1, 0.0),
    (0.1, 0.046, 0.046, 0.0, -0.1, 0.0),
    (0.1, 0.046, 0.023, -0.08, -0.605, 0.0),
    (0.1, 0.023, 0.023, 0.0, -0.606, 0.0),
    (0.1, 0.023, 0.046, 0.06, -0.605, 0.0),
)


def _positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return int(value)


@dataclass(frozen=True)
class EllipsePhantom:
    """A sum of constant ellipses, rasterised to an ``n x n`` image.

    Attributes
    ----------
    n
        Image size in pixels.
    ellipses
        Rows ``(value, a, b, x0, y0, phi_degrees)`` on ``[-1, 1]^2``
        (``y`` up, ``x`` to the right).
    supersample
        Points per pixel side averaged by :attr:`image`.

    Examples
    --------
    >>> from itersolve.problems import shepp_logan
    >>> p = shepp_logan(32)
    >>> p.image.shape, bool(p.image.min() >= 0), bool(p.image.max() <= 1)
    ((32, 32), True, True)
    """

    n: int
    ellipses: tuple[tuple[float, float, float, float, float, float], ...]
    supersample: int = 4

    @property
    def image(self) -> np.ndarray:
        """The ``(n, n)`` float64 image, row 0 on top."""
        n, q = self.n, self.supersample
        # Sample points in pixel units, then normalised to [-1, 1].
        sub = (np.arange(n * q) + 0.5) / q - n / 2.0
        x = sub[None, :] / (n / 2.0)
        y = -sub[:, None] / (n / 2.0)
        fine = np.zeros((n * q, n * q))
        for value, a, b, x0, y0, phi in self.ellipses:
            c, s = math.cos(math.radians(phi)), math.sin(math.radians(phi))
            u = (x - x0) * c + (y - y0) * s
            v = -(x - x0) * s + (y - y0) * c
            fine += value * ((u / a) ** 2 + (v / b) ** 2 <= 1.0)
        # Ellipses that cancel exactly (Shepp-Logan's 1 - 0.8 - 0.2) leave
        # rounding residue such as -5.6e-17; zero it so the image's sign is
        # the phantom's.
        fine[np.abs(fine) < 1e-12] = 0.0
        return fine.reshape(n, q, n, q).mean(axis=(1, 3))

    def line_integrals(self, angles: np.ndarray, offsets: np.ndarray) -> np.ndarray:
        """Exact integrals along the rays ``p . (cos t, sin t) = s`` (pixel units),
        shape ``(len(angles), len(offsets))``."""
        h = self.n / 2.0
        theta = np.asarray(angles, dtype=np.float64)[:, None]
        s = np.asarray(offsets, dtype=np.float64)[None, :]
        out = np.zeros((theta.shape[0], s.shape[1]))
        for value, a, b, x0, y0, phi in self.ellipses:
            a_, b_, x_, y_ = a * h, b * h, x0 * h, y0 * h
            alpha = theta - math.radians(phi)
            r2 = (a_ * np.cos(alpha)) ** 2 + (b_ * np.sin(alpha)) ** 2
            shift = s - (x_ * np.cos(theta) + y_ * np.sin(theta))
            inside = np.clip(r2 - shift**2, 0.0, None)
            out += value * 2.0 * a_ * b_ * np.sqrt(inside) / r2
        return out


def shepp_logan(n: int) -> EllipsePhantom:
    """The modified Shepp-Logan head phantom at ``n x n``.

    Examples
    --------
    >>> from itersolve.problems import shepp_logan
    >>> shepp_logan(16).n, len(shepp_logan(16).ellipses)
    (16, 10)
    """
    return EllipsePhantom(_positive_int(n, "n"), SHEPP_LOGAN)


def ellipse_phantoms(n: int, count: int, seed: int) -> list[EllipsePhantom]:
    """``count`` random COULE-like phantoms: overlapping ellipses and thin lines.

    Each phantom has a large background ellipse, 3 to 8 smaller ellipses and
    0 to 2 thin ellipses ("lines"); values add up (all positive, so the image
    is nonnegative) and everything lies inside the unit disc, which every
    projection angle sees whole.

    Examples
    --------
    >>> from itersolve.problems import ellipse_phantoms
    >>> ps = ellipse_phantoms(32, 3, seed=0)
    >>> len(ps), ps[0].image.shape, bool((ps[0].image >= 0).all())
    (3, (32, 32), True)
    """
    n = _positive_int(n, "n")
    count = _positive_int(count, "count")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    rng = np.random.default_rng(seed)
    phantoms = []
    for _ in range(count):
        rows = [
            (
                0.2 * rng.uniform(0.5, 1.0),
                rng.uniform(0.6, 0.8),
                rng.uniform(0.5, 0.7),
                0.0,
                0.0,
                rng.uniform(0.0, 180.0),
            )
        ]
        for k in range(rng.integers(3, 9) + rng.integers(0, 3)):
            line = k >= 8 or rng.uniform() < 0.2
            a = rng.uniform(0.2, 0.5) if line else rng.uniform(0.05, 0.25)
            b = rng.uniform(0.01, 0.03) if line else rng.uniform(0.05, 0.25)
            # Centre far enough in that the ellipse stays inside the unit disc.
            radius = rng.uniform(0.0, max(0.0, 0.9 - max(a, b)))
            angle = rng.uniform(0.0, 2 * math.pi)
            rows.append(
                (
                    rng.uniform(0.2, 0.8),
                    a,
                    b,
                    radius * math.cos(angle),
                    radius * math.sin(angle),
                    rng.uniform(0.0, 180.0),
                )
            )
        phantoms.append(EllipsePhantom(n, tuple(rows)))
    return phantoms


def simulate(
    phantom: EllipsePhantom,
    angles: Any,
    noise: float,
    seed: int,
    *,
    n_detectors: int | None = None,
    detector_spacing: float = 1.0,
    rays_per_bin: int = 4,
) -> np.ndarray:
    """A noisy sinogram of ``phantom`` in the geometry of
    :class:`~itersolve.imaging.ParallelBeamProjector`.

    Each bin averages the exact ellipse line integrals of ``rays_per_bin``
    rays evenly spread across it (a discretisation unrelated to the
    reconstruction's pixel grid). The noise is Gaussian, scaled so that
    ``||e|| = noise ||y_clean||`` exactly (``noise`` is the relative noise
    level; 0 for clean data).

    Returns
    -------
    numpy.ndarray
        Shape ``(len(angles), n_detectors)``, float64.

    Examples
    --------
    >>> import numpy as np
    >>> from itersolve.problems import shepp_logan, simulate
    >>> y = simulate(shepp_logan(32), np.linspace(0, np.pi, 10), 0.05, seed=0)
    >>> y.shape
    (10, 46)
    """
    if not isinstance(phantom, EllipsePhantom):
        raise TypeError(
            "phantom must be an EllipsePhantom (from ellipse_phantoms or "
            f"shepp_logan), got {type(phantom).__name__}"
        )
    if not (isinstance(noise, (int, float)) and math.isfinite(noise) and noise >= 0):
        raise ValueError(f"noise must be a finite number >= 0, got {noise!r}")
    rays_per_bin = _positive_int(rays_per_bin, "rays_per_bin")
    theta = _as_angles(angles)
    n = phantom.n
    if n_detectors is None:
        n_detectors = math.ceil(math.sqrt(2.0) * n)
        n_detectors += (n_detectors - n) % 2
    n_detectors = _positive_int(n_detectors, "n_detectors")
    centres = detector_offsets(n_detectors, detector_spacing)
    spread = ((np.arange(rays_per_bin) + 0.5) / rays_per_bin - 0.5) * detector_spacing
    rays = (centres[:, None] + spread[None, :]).reshape(-1)
    y = phantom.line_integrals(theta, rays)
    y = y.reshape(theta.size, n_detectors, rays_per_bin).mean(axis=2)
    if noise > 0:
        e = np.random.default_rng(seed).standard_normal(y.shape)
        y = y + noise * np.linalg.norm(y) * e / np.linalg.norm(e)
    return y
