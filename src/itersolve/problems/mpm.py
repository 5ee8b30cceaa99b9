"""A small vectorised 2-D MLS-MPM simulator (torch) for particle trajectories.

Moving-least-squares material point method with APIC transfers (Hu et al.
2018, the "mpm88" layout) on the unit square ``[0, 1]^2`` with a regular
``grid x grid`` background grid and quadratic B-spline weights. One substep:

1. **P2G**: every particle scatters mass ``w m_p`` and momentum
   ``w (m_p v_p + A_p (x_i - x_p))`` to its 3 x 3 grid stencil, where
   ``A_p = -dt 4/dx^2 V_p tau_p + m_p C_p`` (Kirchhoff stress ``tau_p``, affine
   velocity ``C_p``); all particles at once through ``index_add``, no Python
   loop over particles;
2. **grid update**: ``v_i = p_i / m_i``, plus ``dt g`` (gravity, ``-y``), and at
   the walls (grid nodes within ``bound`` cells of an edge) the outward
   velocity component is set to zero (slip walls);
3. **G2P**: ``v_p = sum w v_i``, ``C_p = 4/dx^2 sum w v_i (x_i - x_p)^T``,
   ``x_p += dt v_p``, ``F_p <- (I + dt C_p) F_p``, then the plastic projection.

Materials (Young's modulus ``E``, Poisson ratio ``nu``, density 1):

* ``"elastic"``: fixed corotated, ``tau = 2 mu (F - R) F^T + lam J (J - 1) I``
  with ``R`` the rotation of the polar decomposition (closed form in 2-D);
* ``"sand"``: Drucker-Prager plasticity with the return mapping of Klar et al.
  (2016) on the Hencky strain ``eps = log Sigma`` of ``F = U Sigma V^T``:
  friction angle 30 degrees, no cohesion, no hardening (the documented
  simplification: the friction angle stays fixed); stress
  ``tau = U (2 mu eps + lam tr(eps) I) U^T``.

Particle-grid transfers conserve mass and linear momentum exactly (the
quadratic B-spline weights sum to one and their first moments vanish), so
without gravity and walls the total momentum is constant to rounding, and
under gravity alone the mean velocity changes by exactly ``-g t``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

MATERIALS = ("elastic", "sand")
_OFFSETS = torch.tensor([(i, j) for i in range(3) for j in range(3)])


@dataclass(frozen=True)
class MPMTrajectory:
    """Particle trajectories of one MPM run.

    Attributes
    ----------
    positions
        ``(n_frames + 1, n_particles, 2)`` positions in ``[0, 1]^2``, frame 0
        the initial state.
    velocities
        Same shape: particle velocities at each saved frame.
    material
        ``"elastic"`` or ``"sand"``.
    frame_dt
        Simulated time between two saved frames (``dt * substeps``).
    particle_mass
        Mass of one particle (all equal).
    config
        The simulator settings (grid, dt, substeps, gravity, E, nu, ...).

    Examples
    --------
    >>> from itersolve.problems import mpm_simulate
    >>> traj = mpm_simulate("elastic", n_particles=64, n_frames=2, seed=0)
    >>> tuple(traj.positions.shape)
    (3, 64, 2)
    """

    positions: torch.Tensor
    velocities: torch.Tensor
    material: str
    frame_dt: float
    particle_mass: float
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def n_frames(self) -> int:
        """Number of simulated frames (the initial state not counted)."""
        return int(self.positions.shape[0]) - 1

    @property
    def n_particles(self) -> int:
        return int(self.positions.shape[1])


def _check_state(value: Any, name: str, n: int | None, dtype: torch.dtype) -> Any:
    tensor = torch.as_tensor(value, dtype=dtype)
    if tensor.ndim != 2 or tensor.shape[1] != 2 or (n is not None and len(tensor) != n):
        want = f"({n}, 2)" if n is not None else "(n_particles, 2)"
        raise ValueError(f"{name} must have shape {want}, got {tuple(tensor.shape)}")
    if not torch.isfinite(tensor).all():
        raise ValueError(f"{name} contains NaN or infinite entries")
    return tensor.clone()


def _stencil(
    x: torch.Tensor, inv_dx: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Flat grid indices ``(N, 9)`` are returned by the caller; here the base
    node ``(N, 2)``, weights ``(N, 9)`` and offsets ``x_i - x_p`` in cells
    ``(N, 9, 2)`` of the quadratic B-spline stencil."""
    scaled = x * inv_dx
    base = torch.floor(scaled - 0.5)
    fx = scaled - base
    w = torch.stack(
        [0.5 * (1.5 - fx) ** 2, 0.75 - (fx - 1.0) ** 2, 0.5 * (fx - 0.5) ** 2]
    )
    offsets = _OFFSETS.to(x.device)
    weight = w[offsets[:, 0], :, 0].T * w[offsets[:, 1], :, 1].T
    dpos = offsets.to(x.dtype)[None] - fx[:, None, :]
    return base.long(), weight, dpos


def mpm_p2g(
    positions: Any,
    velocities: Any,
    masses: Any,
    *,
    grid: int = 32,
    affine: Any = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Particle-to-grid transfer of mass and APIC momentum.

    ``m_i = sum_p w_ip m_p`` and ``p_i = sum_p w_ip (m_p v_p + A_p (x_i -
    x_p))`` with quadratic B-spline weights ``w_ip`` on a ``grid x grid`` grid
    over ``[0, 1]^2``. Because ``sum_i w_ip = 1`` and ``sum_i w_ip (x_i - x_p)
    = 0``, the grid carries exactly the particles' total mass and momentum.

    Parameters
    ----------
    positions, velocities
        ``(N, 2)`` particle states; positions at least one cell from the edges.
    masses
        ``(N,)`` particle masses (or a scalar).
    grid
        Grid nodes per side.
    affine
        Optional ``(N, 2, 2)`` affine momentum matrices ``A_p`` (zero if absent).

    Returns
    -------
    grid_mass, grid_momentum
        ``(grid, grid)`` and ``(grid, grid, 2)`` tensors.

    Raises
    ------
    ValueError
        Wrong shapes, NaN entries or particles outside the grid's interior.

    Examples
    --------
    >>> import torch
    >>> from itersolve.problems import mpm_p2g
    >>> x = torch.rand(10, 2, dtype=torch.float64) * 0.5 + 0.25
    >>> m, p = mpm_p2g(x, torch.ones(10, 2, dtype=torch.float64), 0.1)
    >>> round(float(m.sum()), 12), round(float(p[..., 0].sum()), 12)
    (1.0, 1.0)
    """
    dtype = (
        positions.dtype
        if isinstance(positions, torch.Tensor) and positions.is_floating_point()
        else torch.float64
    )
    x = _check_state(positions, "positions", None, dtype)
    v = _check_state(velocities, "velocities", len(x), dtype)
    m = torch.as_tensor(masses, dtype=dtype, device=x.device).expand(len(x)).clone()
    if not torch.isfinite(m).all():
        raise ValueError("masses contains NaN or infinite entries")
    a = torch.zeros(len(x), 2, 2, dtype=dtype) if affine is None else affine
    a = torch.as_tensor(a, dtype=dtype, device=x.device)
    if a.shape != (len(x), 2, 2):
        raise ValueError(
            f"affine must have shape ({len(x)}, 2, 2), got {tuple(a.shape)}"
        )
    _check_inside(x, grid)
    mass, momentum, _ = _p2g(x, v, m, a, grid)
    return mass.reshape(grid, grid), momentum.reshape(grid, grid, 2)


def _check_inside(x: torch.Tensor, grid: int) -> None:
    dx = 1.0 / grid
    lo, hi = float(x.min()), float(x.max())
    if lo < dx or hi > 1.0 - dx:
        raise ValueError(
            f"particles must stay at least one cell ({dx:g}) inside [0, 1]^2, got "
            f"coordinates in [{lo:.4g}, {hi:.4g}]"
        )


def _p2g(
    x: torch.Tensor, v: torch.Tensor, m: torch.Tensor, a: torch.Tensor, grid: int
) -> tuple[torch.Tensor, torch.Tensor, tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    inv_dx = float(grid)
    base, weight, dpos = _stencil(x, inv_dx)
    offsets = _OFFSETS.to(x.device)
    node = (base[:, None, :] + offsets[None]).reshape(-1, 2)
    index = node[:, 0] * grid + node[:, 1]
    mom = m[:, None] * v + 0.0
    contrib = mom[:, None, :] + dpos @ (a.transpose(1, 2) / inv_dx)
    mass = torch.zeros(grid * grid, dtype=x.dtype, device=x.device)
    mass.index_add_(0, index, (weight * m[:, None]).reshape(-1))
    momentum = torch.zeros(grid * grid, 2, dtype=x.dtype, device=x.device)
    momentum.index_add_(0, index, (weight[..., None] * contrib).reshape(-1, 2))
    return mass, momentum, (index, weight, dpos)


def _rotation(f: torch.Tensor) -> torch.Tensor:
    """Rotation factor of the 2-D polar decomposition ``F = R S``."""
    angle = torch.atan2(f[:, 1, 0] - f[:, 0, 1], f[:, 0, 0] + f[:, 1, 1])
    c, s = torch.cos(angle), torch.sin(angle)
    return torch.stack([torch.stack([c, -s], -1), torch.stack([s, c], -1)], -2)


def _elastic_stress(f: torch.Tensor, mu: float, lam: float) -> torch.Tensor:
    r = _rotation(f)
    j = f[:, 0, 0] * f[:, 1, 1] - f[:, 0, 1] * f[:, 1, 0]
    eye = torch.eye(2, dtype=f.dtype, device=f.device)
    return (
        2 * mu * (f - r) @ f.transpose(1, 2) + (lam * j * (j - 1))[:, None, None] * eye
    )


def _sand_project(
    f: torch.Tensor, mu: float, lam: float, alpha: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Drucker-Prager return mapping; returns the projected ``F`` and its
    Kirchhoff stress."""
    u, sigma, vh = torch.linalg.svd(f)
    eps = torch.log(sigma.clamp_min(1e-6))
    trace = eps.sum(1, keepdim=True)
    dev = eps - trace / 2
    dev_norm = dev.norm(dim=1, keepdim=True)
    dgamma = dev_norm + (2 * lam + 2 * mu) / (2 * mu) * trace * alpha
    safe = dev_norm.clamp_min(1e-12)
    projected = eps - (dgamma / safe) * dev
    eps_new = torch.where(dgamma <= 0, eps, projected)
    # Expansion (tr > 0): no cohesion, so the state returns to the stress-free tip.
    eps_new = torch.where(trace > 0, torch.zeros_like(eps), eps_new)
    f_new = u @ torch.diag_embed(torch.exp(eps_new)) @ vh
    tr_new = eps_new.sum(1, keepdim=True)
    tau = u @ torch.diag_embed(2 * mu * eps_new + lam * tr_new) @ u.transpose(1, 2)
    return f_new, tau


def _positive(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be positive and finite, got {value!r}")
    return float(value)


def _count(value: Any, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}")
    return int(value)


def _initial_blocks(
    n: int, n_blocks: int, generator: torch.Generator, dtype: torch.dtype
) -> tuple[torch.Tensor, torch.Tensor]:
    """``n_blocks`` random rectangles in the upper part of the box, uniform
    particles inside each, one random velocity per block."""
    sizes = [n // n_blocks + (k < n % n_blocks) for k in range(n_blocks)]
    xs, vs = [], []
    for k, size in enumerate(sizes):
        r = torch.rand(5, generator=generator, dtype=dtype)
        width, height = 0.12 + 0.12 * r[0], 0.12 + 0.12 * r[1]
        slot = 1.0 / n_blocks
        x0 = 0.1 + slot * k * 0.8 + (slot * 0.8 - width).clamp_min(0) * r[2]
        y0 = 0.15 + 0.3 * r[3]
        u = torch.rand(size, 2, generator=generator, dtype=dtype)
        xs.append(torch.stack([x0 + width * u[:, 0], y0 + height * u[:, 1]], 1))
        angle = 2 * math.pi * r[4]
        speed = 0.5 * torch.rand((), generator=generator, dtype=dtype)
        vel = speed * torch.stack([torch.cos(angle), torch.sin(angle)])
        vs.append(vel.expand(size, 2))
    return torch.cat(xs), torch.cat(vs)


def mpm_simulate(
    material: str = "elastic",
    n_particles: int = 1000,
    n_frames: int = 50,
    seed: int = 0,
    *,
    grid: int = 32,
    dt: float = 5e-4,
    substeps: int = 10,
    gravity: float = 9.8,
    youngs_modulus: float = 1e3,
    poisson_ratio: float = 0.3,
    boundary: bool = True,
    n_blocks: int = 1,
    positions: Any = None,
    velocities: Any = None,
    dtype: torch.dtype = torch.float64,
) -> MPMTrajectory:
    """Simulate an elastic or sand-like body with 2-D MLS-MPM.

    Particles start in ``n_blocks`` random rectangles (seeded) with one random
    velocity per block (speed below 0.5), unless ``positions`` (and
    ``velocities``) are given. Particle volume: total block area over
    ``n_particles``; density 1. Every saved frame is ``substeps`` substeps of
    size ``dt`` apart.

    Parameters
    ----------
    material
        ``"elastic"`` (fixed corotated) or ``"sand"`` (Drucker-Prager).
    n_particles, n_frames, seed
        Cloud size, saved frames after the initial one, random seed.
    grid
        Grid nodes per side over ``[0, 1]^2``.
    dt, substeps
        Substep size and substeps per saved frame.
    gravity
        Acceleration along ``-y`` (``0`` for none).
    youngs_modulus, poisson_ratio
        Lame parameters ``mu = E / (2 (1 + nu))``, ``lam = E nu / ((1 + nu)
        (1 - 2 nu))``.
    boundary
        Slip walls three cells inside the box (``False``: free space; the run
        raises once a particle reaches the grid's edge).
    n_blocks
        Number of initial rectangles.
    positions, velocities
        Optional initial state ``(N, 2)`` (then ``n_particles`` is ignored and
        the particle volume is ``1 / (4 grid^2)``, a quarter cell).
    dtype
        Floating dtype of the run.

    Returns
    -------
    MPMTrajectory

    Raises
    ------
    ValueError
        Unknown material, non-positive sizes, NaN or wrongly shaped initial
        states, particles outside the grid; ``FloatingPointError`` if the run
        becomes non-finite or leaves the grid (``dt`` too large).

    Examples
    --------
    >>> from itersolve.problems import mpm_simulate
    >>> traj = mpm_simulate("sand", n_particles=100, n_frames=3, seed=1)
    >>> bool(traj.velocities[-1, :, 1].mean() < traj.velocities[0, :, 1].mean())
    True
    """
    if material not in MATERIALS:
        raise ValueError(f"material must be one of {MATERIALS}, got {material!r}")
    n_frames = _count(n_frames, "n_frames", 0)
    grid = _count(grid, "grid", 8)
    substeps = _count(substeps, "substeps")
    n_blocks = _count(n_blocks, "n_blocks")
    dt = _positive(dt, "dt")
    e_mod = _positive(youngs_modulus, "youngs_modulus")
    if not isinstance(gravity, (int, float)) or not math.isfinite(gravity):
        raise ValueError(f"gravity must be a finite number, got {gravity!r}")
    if not 0 <= poisson_ratio < 0.5:
        raise ValueError(f"poisson_ratio must be in [0, 0.5), got {poisson_ratio!r}")
    generator = torch.Generator().manual_seed(int(seed))
    if positions is None:
        n_particles = _count(n_particles, "n_particles")
        x, v = _initial_blocks(n_particles, n_blocks, generator, dtype)
        area = float((x.max(0).values - x.min(0).values).prod()) / n_blocks
        volume = area / len(x)
    else:
        x = _check_state(positions, "positions", None, dtype)
        v = (
            torch.zeros_like(x)
            if velocities is None
            else _check_state(velocities, "velocities", len(x), dtype)
        )
        volume = 0.25 / grid**2
    _check_inside(x, grid)
    mu = e_mod / (2 * (1 + poisson_ratio))
    lam = e_mod * poisson_ratio / ((1 + poisson_ratio) * (1 - 2 * poisson_ratio))
    sin_phi = math.sin(math.radians(30.0))
    alpha = math.sqrt(2 / 3) * 2 * sin_phi / (3 - sin_phi)
    n = len(x)
    dev = x.device
    v = v.to(dev)
    mass = torch.full((n,), volume, dtype=dtype, device=dev)  # density 1
    c = torch.zeros(n, 2, 2, dtype=dtype, device=dev)
    eye = torch.eye(2, dtype=dtype, device=dev)
    f = eye.repeat(n, 1, 1)
    tau = torch.zeros_like(c)
    inv_dx = float(grid)
    bound = 3
    idx = torch.arange(grid, device=dev)
    gi, gj = torch.meshgrid(idx, idx, indexing="ij")
    low = torch.stack([gi < bound, gj < bound], -1).reshape(-1, 2)
    high = torch.stack([gi > grid - bound, gj > grid - bound], -1).reshape(-1, 2)
    gravity_step = torch.tensor([0.0, -dt * gravity], dtype=dtype, device=dev)
    xs, vs = [x.clone()], [v.clone()]
    for frame in range(n_frames):
        for _ in range(substeps):
            affine = -dt * 4 * inv_dx**2 * volume * tau + mass[:, None, None] * c
            g_mass, g_mom, (index, weight, dpos) = _p2g(x, v, mass, affine, grid)
            active = g_mass > 0
            g_vel = torch.where(
                active[:, None], g_mom / g_mass.clamp_min(1e-300)[:, None], 0.0
            )
            g_vel = g_vel + gravity_step * active[:, None]
            if boundary:
                g_vel = torch.where(
                    (low & (g_vel < 0)) | (high & (g_vel > 0)), 0.0, g_vel
                )
            node_v = g_vel[index].reshape(n, 9, 2)
            wv = weight[..., None] * node_v
            v = wv.sum(1)
            c = 4 * inv_dx * (wv.transpose(1, 2) @ dpos)
            x = x + dt * v
            f = (eye + dt * c) @ f
            if material == "elastic":
                tau = _elastic_stress(f, mu, lam)
            else:
                f, tau = _sand_project(f, mu, lam, alpha)
        if not (torch.isfinite(x).all() and torch.isfinite(v).all()):
            raise FloatingPointError(
                f"MPM run became non-finite at frame {frame + 1}; reduce dt ({dt:g})"
            )
        try:
            _check_inside(x, grid)
        except ValueError as exc:
            raise FloatingPointError(
                f"MPM run left the grid at frame {frame + 1}: {exc}"
            ) from None
        xs.append(x.clone())
        vs.append(v.clone())
    config = {
        "grid": grid,
        "dt": dt,
        "substeps": substeps,
        "gravity": float(gravity),
        "youngs_modulus": e_mod,
        "poisson_ratio": float(poisson_ratio),
        "boundary": bool(boundary),
        "seed": int(seed),
    }
    return MPMTrajectory(
        torch.stack(xs), torch.stack(vs), material, dt * substeps, volume, config
    )
