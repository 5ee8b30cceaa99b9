"""Pressure-Poisson systems on a square with solid obstacles (DCDM test problems).

The 2-D analogue of the smoke-simulation pressure systems of Kaneda et al.
(*A Deep Conjugate Direction Method*, ICML 2023): cell-centred unknowns on an
``n x n`` grid over the unit square, a 5-point stencil, solid cells removed
(their faces are closed: homogeneous Neumann), the domain walls closed except
the open ones (homogeneous Dirichlet, a ghost value of zero). The obstacle
geometry is drawn in continuous coordinates, so one layout rasterised at
``32^2``, ``64^2`` and ``128^2`` is the same shape at three resolutions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.ndimage as ndi
import scipy.sparse as sp

LAYOUTS = ("disks", "boxes", "mixed", "empty")
BOUNDARIES = ("top", "all")


@dataclass(frozen=True)
class ObstaclePoisson:
    """The fluid-cell Poisson matrix of one obstacle layout, and its grid.

    Attributes
    ----------
    A
        ``scipy.sparse.csr_array`` of shape ``(m, m)``, ``m`` = number of fluid
        cells, in row-major grid order. Symmetric positive definite: every
        fluid cell is connected to an open (Dirichlet) wall, cells of pockets
        sealed off by obstacles are made solid.
    solid
        Boolean ``(n, n)`` grid, ``True`` at solid cells (row 0 is the top).
    n
        Cells per side.
    layout, seed, boundary
        How it was made (see :func:`obstacle_poisson`).

    Examples
    --------
    >>> import numpy as np
    >>> from itersolve.problems import obstacle_poisson
    >>> p = obstacle_poisson(8, "disks", seed=0)
    >>> p.to_grid(np.ones(p.A.shape[0])).shape
    (8, 8)
    """

    A: sp.csr_array
    solid: np.ndarray
    n: int
    layout: str
    seed: int | None
    boundary: str

    @property
    def fluid(self) -> np.ndarray:
        """Boolean ``(n, n)`` grid of the unknowns (``~solid``)."""
        return ~self.solid

    def to_grid(self, v: Any) -> np.ndarray:
        """A vector over the fluid cells as an ``(n, n)`` grid, zero in solids."""
        v = np.asarray(v)
        grid = np.zeros((self.n, self.n, *v.shape[1:]), dtype=v.dtype)
        grid[self.fluid] = v
        return grid

    def rhs(self, seed: int) -> np.ndarray:
        """A smooth right-hand side: Gaussian sources and sinks plus 1% noise.

        Like a velocity divergence, it is dominated by low modes (white noise
        alone would be easy for plain CG). Normalised to unit 2-norm; the
        sources live in continuous coordinates, so one seed gives the same
        field at every resolution.
        """
        rng = np.random.default_rng(seed)
        centres = (np.arange(self.n) + 0.5) / self.n
        y, x = np.meshgrid(centres, centres, indexing="ij")
        field = np.zeros((self.n, self.n))
        for _ in range(int(rng.integers(3, 7))):
            cy, cx = rng.uniform(0.05, 0.95, 2)
            width = rng.uniform(0.05, 0.15)
            sign = rng.choice([-1.0, 1.0])
            field += sign * np.exp(-((y - cy) ** 2 + (x - cx) ** 2) / (2 * width**2))
        b = field[self.fluid]
        b = b / np.linalg.norm(b)
        noise = rng.standard_normal(b.shape)
        b = b + 0.01 * noise / np.linalg.norm(noise)
        return b / np.linalg.norm(b)


def _positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 2:
        raise ValueError(f"{name} must be an int >= 2, got {value!r}")
    return int(value)


def random_layout(n: int, layout: str, seed: int | None) -> np.ndarray:
    """The solid cells of a seeded random layout rasterised on an ``n x n`` grid.

    ``"disks"``: 3-7 disks of radius 0.04-0.12; ``"boxes"``: 3-7 axis-aligned
    boxes with sides 0.05-0.3; ``"mixed"``: both (2-4 each); ``"empty"``: none.
    A cell is solid when its centre lies inside a shape. Shapes are drawn in
    ``[0, 1]^2`` and keep clear of the top band ``y < 0.1`` (the open wall).

    Examples
    --------
    >>> s = random_layout(8, "disks", seed=1)
    >>> s.shape, s.dtype
    ((8, 8), dtype('bool'))
    """
    n = _positive_int(n, "n")
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    rng = np.random.default_rng(seed)
    centres = (np.arange(n) + 0.5) / n
    y, x = np.meshgrid(centres, centres, indexing="ij")
    solid = np.zeros((n, n), dtype=bool)
    n_disks = {"disks": int(rng.integers(3, 8)), "mixed": int(rng.integers(2, 5))}
    n_boxes = {"boxes": int(rng.integers(3, 8)), "mixed": int(rng.integers(2, 5))}
    for _ in range(n_disks.get(layout, 0)):
        radius = rng.uniform(0.04, 0.12)
        cy = rng.uniform(0.1 + radius, 1.0 - radius)
        cx = rng.uniform(radius, 1.0 - radius)
        solid |= (y - cy) ** 2 + (x - cx) ** 2 <= radius**2
    for _ in range(n_boxes.get(layout, 0)):
        h, w = rng.uniform(0.05, 0.3, 2)
        top = rng.uniform(0.1, 1.0 - h)
        left = rng.uniform(0.0, 1.0 - w)
        solid |= (y >= top) & (y <= top + h) & (x >= left) & (x <= left + w)
    return solid


def _seal_pockets(solid: np.ndarray, boundary: str) -> np.ndarray:
    """Make solid every fluid region that touches no open wall (its pressure
    would be defined only up to a constant: a null-space vector of ``A``)."""
    labels, count = ndi.label(~solid)
    if count == 0:
        return solid
    edges = [labels[0]]
    if boundary == "all":
        edges += [labels[-1], labels[:, 0], labels[:, -1]]
    open_labels = np.unique(np.concatenate(edges))
    open_labels = open_labels[open_labels > 0]
    return solid | ~np.isin(labels, open_labels)


def assemble(solid: np.ndarray, boundary: str = "top") -> sp.csr_array:
    """The 5-point matrix on the fluid cells of ``solid`` (unscaled: ``h^2``
    times the negative Laplacian).

    Row of fluid cell ``c``: ``-1`` for each fluid neighbour, and on the
    diagonal the number of fluid neighbours plus the number of open-wall faces
    (Dirichlet ghost value zero); faces to solid cells and closed walls add
    nothing (Neumann). Rows and columns follow the row-major order of the
    fluid cells.

    Examples
    --------
    >>> assemble(np.zeros((2, 2), dtype=bool), "top").toarray()
    array([[ 3., -1., -1.,  0.],
           [-1.,  3.,  0., -1.],
           [-1.,  0.,  2., -1.],
           [ 0., -1., -1.,  2.]])
    """
    if boundary not in BOUNDARIES:
        raise ValueError(f"boundary must be one of {BOUNDARIES}, got {boundary!r}")
    fluid = ~np.asarray(solid, dtype=bool)
    index = np.full(fluid.shape, -1, dtype=np.int64)
    m = int(fluid.sum())
    index[fluid] = np.arange(m)
    diag = np.zeros(fluid.shape)
    rows, cols = [], []
    # Horizontal and vertical interior faces between two fluid cells.
    for a, b in (
        (index[:, :-1], index[:, 1:]),
        (index[:-1, :], index[1:, :]),
    ):
        both = (a >= 0) & (b >= 0)
        rows += [a[both], b[both]]
        cols += [b[both], a[both]]
    for axis in (0, 1):
        for direction in (1, -1):
            neighbour = np.roll(fluid, direction, axis=axis)
            edge: list[Any] = [slice(None), slice(None)]
            edge[axis] = 0 if direction == 1 else -1
            neighbour[tuple(edge)] = False  # np.roll wraps around: cut it
            diag += neighbour
    # Open-wall faces: the top row always, every wall for boundary="all".
    diag[0, :] += 1
    if boundary == "all":
        diag[-1, :] += 1
        diag[:, 0] += 1
        diag[:, -1] += 1
    r = np.concatenate([*rows, np.arange(m)])
    c = np.concatenate([*cols, np.arange(m)])
    v = np.concatenate([-np.ones(sum(len(x) for x in rows)), diag[fluid]])
    return sp.csr_array(sp.coo_array((v, (r, c)), shape=(m, m)))


def obstacle_poisson(
    n: int,
    layout: str | np.ndarray = "mixed",
    seed: int | None = 0,
    *,
    boundary: str = "top",
) -> ObstaclePoisson:
    """Pressure-Poisson system on an ``n x n`` grid with solid obstacles.

    Compare with :func:`itersolve.problems.poisson` (no obstacles); with
    ``layout="empty", boundary="all"`` the matrix is exactly
    ``poisson(n, dim=2)``.

    Parameters
    ----------
    n
        Cells per side (``>= 2``).
    layout
        ``"disks"``, ``"boxes"``, ``"mixed"`` or ``"empty"`` (a seeded random
        layout, see :func:`random_layout`), or a boolean ``(n, n)`` array of
        solid cells.
    seed
        Seed of the random layout (ignored for an array layout).
    boundary
        ``"top"``: the top wall is open (Dirichlet, like the open top of a
        smoke box), the other three closed (Neumann); ``"all"``: every wall
        open.

    Returns
    -------
    ObstaclePoisson
        ``A`` over the fluid cells (SPD: fluid pockets not connected to an open
        wall are sealed, i.e. made solid, so there is no null space), the
        solid grid and helpers.

    Examples
    --------
    >>> from itersolve.problems import obstacle_poisson
    >>> p = obstacle_poisson(32, "disks", seed=3)
    >>> p.A.shape[0] == int(p.fluid.sum()), bool((p.A != p.A.T).nnz == 0)
    (True, True)
    """
    n = _positive_int(n, "n")
    if boundary not in BOUNDARIES:
        raise ValueError(f"boundary must be one of {BOUNDARIES}, got {boundary!r}")
    if isinstance(layout, str):
        solid = random_layout(n, layout, seed)
        name = layout
    else:
        solid = np.asarray(layout)
        if solid.shape != (n, n) or solid.dtype != bool:
            raise ValueError(
                f"layout must be a layout name {LAYOUTS} or a boolean array of "
                f"shape {(n, n)}, got {solid.dtype} array of shape {solid.shape}"
            )
        name = "array"
        seed = None
    solid = _seal_pockets(solid.copy(), boundary)
    if solid.all():
        raise ValueError("layout leaves no fluid cell connected to an open wall")
    return ObstaclePoisson(assemble(solid, boundary), solid, n, name, seed, boundary)
