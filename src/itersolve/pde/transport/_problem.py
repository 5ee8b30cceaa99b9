"""The 1-D slab S_N transport problem and its Gauss–Legendre quadrature."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from itersolve._core.tensors import ArrayInfo, as_tensor, to_output

BOUNDARIES = ("vacuum", "reflective")


def gauss_legendre_sn(order: int) -> tuple[np.ndarray, np.ndarray]:
    """Gauss–Legendre S_N quadrature on ``mu in [-1, 1]`` (weights sum to 2).

    Parameters
    ----------
    order
        Number of directions ``N``; a positive even integer (S2, S4, ..., S32).

    Returns
    -------
    mu, w
        Directions in increasing order (negative half first, symmetric) and
        weights, both float64 of length ``order``.

    Examples
    --------
    >>> mu, w = gauss_legendre_sn(4)
    >>> round(float(w.sum()), 12), bool(np.allclose(mu, -mu[::-1]))
    (2.0, True)
    """
    if isinstance(order, bool) or not isinstance(order, (int, np.integer)):
        raise TypeError(f"quadrature order must be an int, got {order!r}")
    if order < 2 or order % 2:
        raise ValueError(
            f"quadrature order must be a positive even integer (S2, S4, ...), "
            f"got {order}"
        )
    mu, w = np.polynomial.legendre.leggauss(int(order))
    return mu, w


@dataclass(frozen=True, eq=False)
class SlabProblem:
    """One-group, isotropic-scattering, fixed-source S_N transport on a 1-D slab.

    ``mu psi_n' + sigma_t psi_n = (sigma_s phi + q) / 2``, ``phi = sum_n w_n psi_n``,
    piecewise-constant materials on the cells between ``edges``.

    Parameters
    ----------
    edges
        Increasing cell edges, length ``n_cells + 1``.
    sigma_t, sigma_s, q
        Per-cell total and scattering cross sections (>= 0) and isotropic
        source density; a scalar is broadcast to every cell.
    order
        S_N order (even, >= 2).
    boundary
        ``(left, right)``, each ``"vacuum"`` or ``"reflective"`` (a single string
        applies to both sides).

    Notes
    -----
    Work is done in float64 (the sweep kernel is compiled for it); answers come
    back in the dtype and array kind of ``sigma_t``.

    Examples
    --------
    >>> p = SlabProblem(np.linspace(0, 10, 11), 1.0, 0.5, 1.0, order=4)
    >>> p.n_cells, p.boundary
    (10, ('vacuum', 'vacuum'))
    """

    edges: Any
    sigma_t: Any
    sigma_s: Any
    q: Any
    order: int = 8
    boundary: Any = ("vacuum", "vacuum")
    info: ArrayInfo = field(init=False, repr=False)

    def __post_init__(self) -> None:
        edges = _vector(self.edges, "edges")
        if edges.size < 2:
            raise ValueError(
                f"edges must have at least 2 entries (one cell), got {edges.size}"
            )
        widths = np.diff(edges)
        if not np.all(widths > 0):
            raise ValueError("edges must be strictly increasing")
        n = widths.size
        sigma_t, info = as_tensor(self.sigma_t, "sigma_t")
        values = {
            "sigma_t": _cells(sigma_t.cpu().numpy(), n, "sigma_t"),
            "sigma_s": _cells(_vector(self.sigma_s, "sigma_s"), n, "sigma_s"),
            "q": _cells(_vector(self.q, "q"), n, "q"),
        }
        for name in ("sigma_t", "sigma_s"):
            if np.any(values[name] < 0):
                bad = values[name][values[name] < 0][0]
                raise ValueError(f"{name} must be >= 0, got {bad}")
        boundary = self.boundary
        if isinstance(boundary, str):
            boundary = (boundary, boundary)
        boundary = tuple(boundary)
        if len(boundary) != 2 or any(b not in BOUNDARIES for b in boundary):
            raise ValueError(
                f"boundary must be (left, right) with each in {BOUNDARIES}, "
                f"got {self.boundary!r}"
            )
        mu, w = gauss_legendre_sn(self.order)
        if boundary == ("reflective", "reflective"):
            c = values["sigma_s"] / np.where(
                values["sigma_t"] > 0, values["sigma_t"], 1
            )
            if np.any(values["sigma_s"] > values["sigma_t"]):
                raise ValueError(
                    "scattering ratio sigma_s/sigma_t > 1 (max "
                    f"{float(c.max()):.6g}) with reflective boundaries on both "
                    "sides: no leakage removes the excess, so no solution exists"
                )
            if not np.any(values["sigma_t"] > values["sigma_s"]):
                raise ValueError(
                    "no absorption (sigma_s == sigma_t everywhere) and reflective "
                    "boundaries on both sides: the transport system is singular"
                )
        set_ = object.__setattr__
        set_(self, "edges", edges)
        set_(self, "sigma_t", values["sigma_t"])
        set_(self, "sigma_s", values["sigma_s"])
        set_(self, "q", values["q"])
        set_(self, "boundary", boundary)
        set_(self, "info", info)
        set_(self, "_mu", mu)
        set_(self, "_w", w)

    @property
    def n_cells(self) -> int:
        return int(self.sigma_t.size)

    @property
    def widths(self) -> np.ndarray:
        return np.diff(self.edges)

    @property
    def sigma_a(self) -> np.ndarray:
        return self.sigma_t - self.sigma_s

    @property
    def mu(self) -> np.ndarray:
        """All S_N directions (increasing)."""
        return self._mu  # type: ignore[attr-defined]

    @property
    def weights(self) -> np.ndarray:
        return self._w  # type: ignore[attr-defined]

    @property
    def reflect(self) -> tuple[float, float]:
        """Albedo of the (left, right) boundary: 1 reflective, 0 vacuum."""
        left, right = self.boundary
        return float(left == "reflective"), float(right == "reflective")

    def output(self, phi: torch.Tensor) -> Any:
        """``phi`` (float64) in the array kind and dtype of ``sigma_t``."""
        return to_output(phi.to(self.info.dtype), self.info)


def _vector(x: Any, name: str) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be array-like of numbers: {exc}") from exc
    if arr.ndim > 1:
        raise ValueError(f"{name} must be a scalar or 1-D, got shape {arr.shape}")
    return arr.reshape(-1).copy()


def _cells(arr: np.ndarray, n: int, name: str) -> np.ndarray:
    arr = np.asarray(arr, dtype=np.float64).reshape(-1)
    if arr.size == 1:
        arr = np.full(n, float(arr[0]))
    if arr.size != n:
        raise ValueError(f"{name} must have one value per cell ({n}), got {arr.size}")
    return arr.copy()
