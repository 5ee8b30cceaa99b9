"""Measured error-contraction factor of SI / DSA by power iteration."""

from __future__ import annotations

import numpy as np

from itersolve.pde.transport._diffusion import dsa_operator
from itersolve.pde.transport._factories import homogeneous_slab
from itersolve.pde.transport._sweep import sweep

METHODS = ("source_iteration", "dsa", "inconsistent_dsa")


def spectral_radius(
    sigma_t: float,
    c: float,
    cell_width: float,
    n_cells: int,
    order: int,
    method: str,
    *,
    boundary: str = "vacuum",
    max_iter: int = 2000,
    rtol: float = 1e-7,
    window: int = 10,
    seed: int = 0,
) -> float:
    """Spectral radius of the SI / DSA error iteration on a homogeneous slab.

    Power iteration on the error ``e <- Sweep(sigma_s e)`` (plus the diffusion
    correction for ``method="dsa"`` / ``"inconsistent_dsa"``) from a seeded
    random start, with no source. The estimate is the geometric mean growth
    ``(||e_k|| / ||e_{k-window}||)^(1/window)`` (robust to complex or negative
    dominant eigenvalues); it stops when two successive estimates agree to
    ``rtol`` or after ``max_iter`` sweeps.

    Fourier analysis gives ``rho = c`` for SI on an infinite medium and ``rho <=
    0.2247 c`` for consistent DSA on every mesh; the inconsistent cell-centred
    DSA exceeds 1 for cells thicker than about 1 mean free path.

    Examples
    --------
    >>> rho = spectral_radius(1.0, 0.9, 1.0, 100, 8, "dsa")
    >>> bool(0.1 < rho < 0.23 * 0.9)
    True
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if not sigma_t > 0:
        raise ValueError(f"sigma_t must be positive, got {sigma_t}")
    if not 0 <= c <= 1:
        raise ValueError(f"c must be in [0, 1], got {c}")
    if not cell_width > 0:
        raise ValueError(f"cell_width must be positive, got {cell_width}")
    if not isinstance(window, int) or window < 1:
        raise ValueError(f"window must be a positive int, got {window!r}")
    problem = homogeneous_slab(
        cell_width * n_cells, n_cells, sigma_t, c, 0.0, order, boundary
    )
    correction = (
        None
        if method == "source_iteration"
        else dsa_operator(problem, consistent=method == "dsa")
    )
    rng = np.random.default_rng(seed)
    e = rng.uniform(0.5, 1.5, n_cells)
    log_norms = [0.0]
    log_scale = 0.0
    estimate = np.nan
    for k in range(1, max_iter + 1):
        new = sweep(problem, problem.sigma_s * e).phi
        if correction is not None:
            new = new + correction.apply(new - e)
        norm = float(np.linalg.norm(new))
        if norm == 0.0 or not np.isfinite(norm):
            return 0.0 if norm == 0.0 else float("inf")
        log_scale += np.log(norm) - np.log(float(np.linalg.norm(e)))
        log_norms.append(log_scale)
        e = new / norm
        if k >= window:
            previous = estimate
            estimate = float(np.exp((log_norms[k] - log_norms[k - window]) / window))
            if abs(estimate - previous) <= rtol * estimate:
                break
    return estimate
