"""Diamond-difference transport sweep: numba kernel, numpy fallback.

The sweep is sequential in space (each cell needs its upwind neighbour), so the
cell loop is compiled with numba when it is installed (the ``fast`` extra); the
fallback runs the cell loop in Python, vectorised over all directions at once,
and is an order of magnitude slower on large meshes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from itersolve._core.jit import HAVE_NUMBA, lazy_njit
from itersolve.pde.transport._problem import SlabProblem


@dataclass
class SweepResult:
    """Scalar fluxes from one sweep.

    ``phi`` cell averages, ``phi_edge`` edge values, ``leakage`` the net outflow
    current ``(left, right)`` through the two boundaries.

    Examples
    --------
    >>> import numpy as np
    >>> from itersolve.pde.transport import homogeneous_slab, sweep
    >>> result = sweep(homogeneous_slab(10.0, 20), np.ones(20))
    >>> result.phi.shape, len(result.leakage)
    ((20,), 2)
    """

    phi: np.ndarray
    phi_edge: np.ndarray
    leakage: tuple[float, float]


@lazy_njit(cache=True)
def _dd_sweep_kernel(sigma_t, h, Q, mu, w, r_left, r_right):
    """Compiled by numba on first call (:func:`itersolve._core.jit.lazy_njit`;
    the numpy backend below is the vectorised fallback)."""
    n = sigma_t.size
    phi = np.zeros(n)
    phi_edge = np.zeros(n + 1)
    leak = np.zeros(2)
    for m in range(mu.size):
        am = mu[m]
        # Transmission factor and source term of each cell for this |mu|.
        tau = sigma_t * h / (2.0 * am)
        t = (1.0 - tau) / (1.0 + tau)
        s = (h / am) * Q / (1.0 + tau)
        in_left = 0.0
        in_right = 0.0
        if r_left != 0.0 or r_right != 0.0:
            # Reflective sides: outgoing = a * incoming + b on each pass;
            # solve the 2x2 boundary coupling exactly.
            a_f = 1.0
            b_f = 0.0
            for i in range(n):
                b_f = t[i] * b_f + s[i]
                a_f *= t[i]
            a_b = 1.0
            b_b = 0.0
            for i in range(n - 1, -1, -1):
                b_b = t[i] * b_b + s[i]
                a_b *= t[i]
            in_left = (
                r_left
                * (a_b * r_right * b_f + b_b)
                / (1.0 - r_left * r_right * a_f * a_b)
            )
            in_right = r_right * (a_f * in_left + b_f)
        psi = in_left
        phi_edge[0] += w[m] * psi
        for i in range(n):
            out = t[i] * psi + s[i]
            phi[i] += 0.5 * w[m] * (psi + out)
            phi_edge[i + 1] += w[m] * out
            psi = out
        leak[1] += w[m] * am * (psi - in_right)
        psi = in_right
        phi_edge[n] += w[m] * psi
        for i in range(n - 1, -1, -1):
            out = t[i] * psi + s[i]
            phi[i] += 0.5 * w[m] * (psi + out)
            phi_edge[i] += w[m] * out
            psi = out
        leak[0] += w[m] * am * (psi - in_left)
    return phi, phi_edge, leak


def _numpy_sweep(
    sigma_t: np.ndarray,
    h: np.ndarray,
    Q: np.ndarray,
    mu: np.ndarray,
    w: np.ndarray,
    r_left: float,
    r_right: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = sigma_t.size
    tau = sigma_t[None, :] * h[None, :] / (2.0 * mu[:, None])
    t = (1.0 - tau) / (1.0 + tau)
    s = (h[None, :] / mu[:, None]) * Q[None, :] / (1.0 + tau)
    in_left = np.zeros(mu.size)
    in_right = np.zeros(mu.size)
    if r_left or r_right:
        a_f, b_f = np.ones(mu.size), np.zeros(mu.size)
        a_b, b_b = np.ones(mu.size), np.zeros(mu.size)
        for i in range(n):
            b_f = t[:, i] * b_f + s[:, i]
            a_f = a_f * t[:, i]
            j = n - 1 - i
            b_b = t[:, j] * b_b + s[:, j]
            a_b = a_b * t[:, j]
        in_left = (
            r_left * (a_b * r_right * b_f + b_b) / (1 - r_left * r_right * a_f * a_b)
        )
        in_right = r_right * (a_f * in_left + b_f)
    fwd = np.empty((mu.size, n + 1))
    bwd = np.empty((mu.size, n + 1))
    fwd[:, 0] = in_left
    bwd[:, n] = in_right
    for i in range(n):
        fwd[:, i + 1] = t[:, i] * fwd[:, i] + s[:, i]
        j = n - 1 - i
        bwd[:, j] = t[:, j] * bwd[:, j + 1] + s[:, j]
    edge = w @ (fwd + bwd)
    phi = 0.5 * (w @ (fwd[:, 1:] + fwd[:, :-1] + bwd[:, 1:] + bwd[:, :-1]))
    leak = np.array(
        [w @ (mu * (bwd[:, 0] - in_left)), w @ (mu * (fwd[:, n] - in_right))]
    )
    return phi, edge, leak


def sweep(
    problem: SlabProblem, source: np.ndarray, *, backend: str = "auto"
) -> SweepResult:
    """One diamond-difference sweep for the isotropic source density ``source``.

    Solves ``mu psi' + sigma_t psi = source / 2`` cell by cell, upwind, with
    ``psi_out = ((1 - a) psi_in + (h / |mu|) source / 2) / (1 + a)``,
    ``a = sigma_t h / (2 |mu|)``, and the cell average ``(psi_in + psi_out) / 2``;
    reflective boundaries are coupled exactly (no lagging), so the sweep is the
    exact inverse of the streaming-plus-collision operator.

    Parameters
    ----------
    problem
        The slab.
    source
        Total isotropic source per cell (``sigma_s phi + q``), float64.
    backend
        ``"numba"``, ``"numpy"`` or ``"auto"`` (numba when installed).

    Examples
    --------
    >>> from itersolve.pde.transport import homogeneous_slab
    >>> p = homogeneous_slab(2.0, 20, c=0.0)
    >>> r = sweep(p, np.ones(20))
    >>> bool(np.all(r.phi > 0) and np.all(r.phi < 1))
    True
    """
    src = np.ascontiguousarray(source, dtype=np.float64)
    if src.shape != (problem.n_cells,):
        raise ValueError(
            f"source must have shape ({problem.n_cells},), got {src.shape}"
        )
    half = problem.order // 2
    mu = np.ascontiguousarray(problem.mu[half:])
    w = np.ascontiguousarray(problem.weights[half:])
    r_left, r_right = problem.reflect
    Q = 0.5 * src
    if backend not in ("auto", "numba", "numpy"):
        raise ValueError(f"backend must be 'auto', 'numba' or 'numpy', got {backend!r}")
    if backend == "numba" and not HAVE_NUMBA:
        raise ImportError("backend='numba' needs numba: pip install 'itersolve[fast]'")
    args = (problem.sigma_t, problem.widths, Q, mu, w, r_left, r_right)
    compiled = backend != "numpy" and HAVE_NUMBA
    phi, edge, leak = _dd_sweep_kernel(*args) if compiled else _numpy_sweep(*args)
    return SweepResult(phi, edge, (float(leak[0]), float(leak[1])))
