"""Reference: sparse direct solve of the full diamond-difference angular-flux system."""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
import torch

from itersolve.pde.transport._problem import SlabProblem


def transport_matrix(problem: SlabProblem) -> tuple[sp.csr_array, np.ndarray]:
    """The assembled DD system ``A psi = b`` for the edge angular fluxes.

    Unknowns ``psi[n, j]`` (direction ``n``, edge ``j``), flattened row-major.
    Rows: one balance equation per (direction, cell),
    ``mu_n (psi_{j+1} - psi_j) + sigma_t h (psi_j + psi_{j+1}) / 2
    - (sigma_s h / 2) sum_m w_m (psi_mj + psi_m,j+1) / 2 = q h / 2``,
    and one boundary row per direction (vacuum ``psi_in = 0`` or reflective
    ``psi_in(mu) = psi_out(-mu)``).

    Examples
    --------
    >>> import scipy.sparse.linalg as spla
    >>> from itersolve.pde.transport import homogeneous_slab, transport_matrix
    >>> A, b = transport_matrix(homogeneous_slab(10.0, 20))
    >>> A.shape[0] == b.shape[0], bool((spla.spsolve(A.tocsc(), b) >= 0).all())
    (True, True)
    """
    mu, w = problem.mu, problem.weights
    na, n = mu.size, problem.n_cells
    h, st, ss = problem.widths, problem.sigma_t, problem.sigma_s
    edges = n + 1
    idx = np.arange(na * edges).reshape(na, edges)
    rows_cell = np.arange(na * n).reshape(na, n)
    # streaming + collision (diagonal in direction)
    left = -mu[:, None] + 0.5 * st[None, :] * h[None, :]
    right = mu[:, None] + 0.5 * st[None, :] * h[None, :]
    r = [rows_cell.ravel(), rows_cell.ravel()]
    c = [idx[:, :-1].ravel(), idx[:, 1:].ravel()]
    v = [left.ravel(), right.ravel()]
    # scattering: couples every pair of directions in a cell
    coef = -0.25 * (ss * h)[None, None, :] * w[None, :, None]  # (n, m, cell)
    coef = np.broadcast_to(coef, (na, na, n))
    rr = np.broadcast_to(rows_cell[:, None, :], (na, na, n))
    for shift in (0, 1):
        cc = np.broadcast_to(idx[None, :, shift : shift + n], (na, na, n))
        r.append(rr.ravel())
        c.append(cc.ravel())
        v.append(coef.ravel())
    b_cell = np.broadcast_to(0.5 * problem.q * h, (na, n)).ravel()
    # boundary rows: inflow edge of each direction
    half = na // 2
    r_left, r_right = problem.reflect
    brow = na * n + np.arange(na)
    pos = np.arange(half, na)  # mu > 0 enter on the left (edge 0)
    neg = np.arange(half)  # mu < 0 enter on the right (edge n)
    r += [brow[pos], brow[neg]]
    c += [idx[pos, 0], idx[neg, n]]
    v += [np.ones(half), np.ones(half)]
    if r_left:
        r.append(brow[pos])
        c.append(idx[na - 1 - pos, 0])
        v.append(-r_left * np.ones(half))
    if r_right:
        r.append(brow[neg])
        c.append(idx[na - 1 - neg, n])
        v.append(-r_right * np.ones(half))
    A = sp.coo_array(
        (np.concatenate(v), (np.concatenate(r), np.concatenate(c))),
        shape=(na * edges, na * edges),
    ).tocsr()
    b = np.concatenate([b_cell, np.zeros(na)])
    return A, b


def direct_transport_solve(problem: SlabProblem) -> Any:
    """Cell-average scalar flux from a sparse LU solve of the full psi system.

    The reference every iterative transport solver is checked against: it solves
    the identical diamond-difference equations with no iteration error.
    Equivalent to converging :class:`SourceIteration` to machine precision.

    Examples
    --------
    >>> from itersolve.pde.transport import homogeneous_slab
    >>> phi = direct_transport_solve(homogeneous_slab(10.0, 50, c=0.0))
    >>> bool(0.9 < phi[25] <= 1.0)
    True
    """
    for name in ("sigma_t", "sigma_s", "q"):
        if not np.all(np.isfinite(getattr(problem, name))):
            raise ValueError(f"{name} contains NaN or infinity")
    A, b = transport_matrix(problem)
    psi = spla.spsolve(A.tocsc(), b).reshape(problem.order, problem.n_cells + 1)
    phi = 0.5 * (problem.weights @ (psi[:, :-1] + psi[:, 1:]))
    return problem.output(torch.from_numpy(np.ascontiguousarray(phi)))
