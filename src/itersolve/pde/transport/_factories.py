"""Slab test problems: a homogeneous slab and Reed's five-region benchmark."""

from __future__ import annotations

from typing import Any

import numpy as np

from itersolve.pde.transport._problem import SlabProblem


def homogeneous_slab(
    thickness: float,
    n_cells: int,
    sigma_t: float = 1.0,
    c: float = 0.9999,
    q: float = 1.0,
    order: int = 8,
    boundary: Any = "vacuum",
) -> SlabProblem:
    """A uniform slab of ``n_cells`` equal cells, ``sigma_s = c * sigma_t``.

    Examples
    --------
    >>> homogeneous_slab(100.0, 1000).n_cells
    1000
    """
    if not isinstance(n_cells, (int, np.integer)) or n_cells < 1:
        raise ValueError(f"n_cells must be a positive int, got {n_cells!r}")
    if not thickness > 0:
        raise ValueError(f"thickness must be positive, got {thickness!r}")
    return SlabProblem(
        np.linspace(0.0, thickness, n_cells + 1),
        sigma_t,
        c * sigma_t,
        q,
        order=order,
        boundary=boundary,
    )


def reed_problem(cells_per_unit: int = 10, order: int = 8) -> SlabProblem:
    """Reed's 5-region benchmark (1971), reflective at x = 0, vacuum at x = 8.

    Regions (x range: sigma_t, sigma_s, q): [0,2): 50, 0, 50 (pure absorber with
    source); [2,3): 5, 0, 0; [3,5): 0, 0, 0 (void); [5,6): 1, 0.9, 1;
    [6,8): 1, 0.9, 0.

    Examples
    --------
    >>> reed_problem(4).n_cells
    32
    """
    if not isinstance(cells_per_unit, (int, np.integer)) or cells_per_unit < 1:
        raise ValueError(
            f"cells_per_unit must be a positive int, got {cells_per_unit!r}"
        )
    bounds = [0.0, 2.0, 3.0, 5.0, 6.0, 8.0]
    data = [
        (50.0, 0.0, 50.0),
        (5.0, 0.0, 0.0),
        (0.0, 0.0, 0.0),
        (1.0, 0.9, 1.0),
        (1.0, 0.9, 0.0),
    ]
    edges = np.linspace(0.0, 8.0, 8 * cells_per_unit + 1)
    mids = 0.5 * (edges[1:] + edges[:-1])
    region = np.searchsorted(bounds, mids) - 1
    table = np.array(data)[region]
    return SlabProblem(
        edges,
        table[:, 0],
        table[:, 1],
        table[:, 2],
        order=order,
        boundary=("reflective", "vacuum"),
    )
