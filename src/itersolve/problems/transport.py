"""Optimal-transport test problems: ``(a, b, C)`` triples as float64 numpy arrays.

All are built offline and deterministically (seeded): random assignment, point
clouds, MNIST-like digit images from scikit-learn's bundled ``load_digits``, and
discretised Gaussian-mixture densities for W1/W2.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class TransportInstance:
    """Weights ``a`` (n,), ``b`` (m,) of equal mass; ground cost ``cost`` (n, m).

    Examples
    --------
    >>> from itersolve.problems import random_assignment
    >>> instance = random_assignment(4, seed=0)
    >>> instance.a.shape, instance.cost.shape
    ((4,), (4, 4))
    >>> bool(abs(instance.a.sum() - instance.b.sum()) < 1e-12)
    True
    """

    a: np.ndarray
    b: np.ndarray
    cost: np.ndarray
    name: str = ""


def random_assignment(n: int, *, seed: int = 0) -> TransportInstance:
    """Uniform weights ``1/n`` and a cost with i.i.d. ``U[0, 1]`` entries.

    The random linear assignment problem of the SNS paper (Table 1; there with
    ``eta = 1200``, i.e. ``reg = 1/1200``).

    Examples
    --------
    >>> p = random_assignment(3, seed=0)
    >>> p.cost.shape, float(p.a.sum())
    ((3, 3), 1.0)
    """
    _check_size(n, "n")
    rng = np.random.default_rng(seed)
    w = np.full(n, 1.0 / n)
    return TransportInstance(w, w.copy(), rng.random((n, n)), f"assignment-{n}")


def point_clouds(
    n: int, m: int | None = None, *, dim: int = 2, seed: int = 0
) -> TransportInstance:
    """Two Gaussian point clouds (shifted), uniform weights, squared-Euclidean cost.

    The cost is divided by its maximum (so ``reg`` is relative to ``max C = 1``),
    as in POT's examples.

    Examples
    --------
    >>> p = point_clouds(4, 5, seed=1)
    >>> p.cost.shape, float(p.cost.max())
    ((4, 5), 1.0)
    """
    m = n if m is None else m
    _check_size(n, "n")
    _check_size(m, "m")
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, dim))
    y = rng.standard_normal((m, dim)) + 1.0
    cost = ((x[:, None, :] - y[None, :, :]) ** 2).sum(-1)
    return TransportInstance(
        np.full(n, 1.0 / n), np.full(m, 1.0 / m), cost / cost.max(), f"clouds-{n}x{m}"
    )


def digit_image(index: int, *, size: int = 28, background: float = 1e-3) -> np.ndarray:
    """Digit ``index`` of ``sklearn.datasets.load_digits`` as a ``size x size`` density.

    The 8x8 image is upsampled by cubic spline interpolation
    (``scipy.ndimage.zoom``), clipped at 0, raised by ``background`` times its
    maximum so that every pixel carries mass (full support, as the log-domain
    solvers of every library then see the same problem) and normalised to sum 1.

    Examples
    --------
    >>> from itersolve.problems import digit_image
    >>> image = digit_image(0, size=16)  # flattened, a histogram for OT
    >>> image.shape, round(float(image.sum()), 12)
    ((256,), 1.0)
    """
    from scipy.ndimage import zoom
    from sklearn.datasets import load_digits

    images = load_digits().images
    if not 0 <= index < len(images):
        raise ValueError(f"index must be in [0, {len(images)}), got {index}")
    image = np.clip(zoom(images[index].astype(float), size / 8, order=3), 0, None)
    image = image + background * image.max()
    return (image / image.sum()).ravel()


def mnist_like(
    i: int = 0, j: int = 1, *, metric: str = "l2", size: int = 28
) -> TransportInstance:
    """OT between two MNIST-like digit images on a ``size x size`` pixel grid.

    Images are from scikit-learn's bundled ``load_digits`` (no download),
    upsampled to 28x28 (see :func:`digit_image`). The ground cost is the
    ``metric`` cost between pixel centres on the unit square: ``"l2"``, the
    squared Euclidean distance (the W2 cost, whose optimal plan is unique), or
    ``"l1"``, the Manhattan distance (the W1 cost, whose optimal plan is not
    unique; the SNS paper needs a longer warm start there).

    Examples
    --------
    >>> p = mnist_like(0, 1, metric="l1", size=10)
    >>> p.cost.shape, round(float(p.a.sum()), 12)
    ((100, 100), 1.0)
    """
    if metric not in ("l1", "l2"):
        raise ValueError(f"metric must be 'l1' or 'l2', got {metric!r}")
    grid = _grid2d(size)
    diff = grid[:, None, :] - grid[None, :, :]
    if metric == "l2":
        cost = (diff**2).sum(-1)
    else:
        cost = np.abs(diff).sum(-1)
    return TransportInstance(
        digit_image(i, size=size),
        digit_image(j, size=size),
        cost,
        f"mnist-{metric}-{i}-{j}",
    )


def gaussian_mixture_density(
    n: int, *, dim: int = 1, components: int = 3, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """A random Gaussian mixture discretised on a regular grid of ``[0, 1]^dim``.

    Returns ``(weights, points)``: ``n`` points per axis (``n**dim`` cells), the
    density evaluated at the cell centres and normalised to sum 1.

    Examples
    --------
    >>> from itersolve.problems import gaussian_mixture_density
    >>> weights, points = gaussian_mixture_density(50, seed=0)
    >>> weights.shape, round(float(weights.sum()), 12)
    ((50,), 1.0)
    """
    _check_size(n, "n")
    if dim not in (1, 2):
        raise ValueError(f"dim must be 1 or 2, got {dim}")
    rng = np.random.default_rng(seed)
    points = (np.arange(n) + 0.5)[:, None] / n if dim == 1 else _grid2d(n)
    means = rng.uniform(0.2, 0.8, (components, dim))
    widths = rng.uniform(0.05, 0.12, components)
    mix = rng.dirichlet(np.ones(components))
    sq = ((points[:, None, :] - means[None, :, :]) ** 2).sum(-1)
    density = (mix * np.exp(-sq / (2 * widths**2)) / widths**dim).sum(-1)
    return density / density.sum(), points


def gaussian_mixtures(
    n: int, *, dim: int = 1, power: int = 2, seed: int = 0
) -> TransportInstance:
    """Two discretised Gaussian-mixture densities and the ``|x - y|^power`` cost.

    ``power=1`` gives W1, ``power=2`` gives W2^2 (``ot.emd2`` is the exact value).

    Examples
    --------
    >>> p = gaussian_mixtures(50, dim=1, power=2, seed=0)
    >>> p.cost.shape, round(float(p.a.sum()), 12), round(float(p.b.sum()), 12)
    ((50, 50), 1.0, 1.0)
    """
    if power not in (1, 2):
        raise ValueError(f"power must be 1 or 2, got {power}")
    a, points = gaussian_mixture_density(n, dim=dim, seed=seed)
    b, _ = gaussian_mixture_density(n, dim=dim, seed=seed + 1)
    dist = np.sqrt(((points[:, None, :] - points[None, :, :]) ** 2).sum(-1))
    return TransportInstance(a, b, dist**power, f"gmm{dim}d-{n}-W{power}")


def _grid2d(size: int) -> np.ndarray:
    ticks = (np.arange(size) + 0.5) / size
    yy, xx = np.meshgrid(ticks, ticks, indexing="ij")
    return np.stack([yy.ravel(), xx.ravel()], axis=1)


def _check_size(n: int, name: str) -> None:
    if not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"{name} must be a positive int, got {n!r}")
