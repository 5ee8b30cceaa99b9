"""Linear-system test problems: Laplacians, SPD/indefinite matrices, convection.

Every generator is deterministic (seeded where random) and returns float64 scipy
sparse arrays (finite differences) or numpy arrays (dense random matrices), so the
same object can be handed to itersolve and to the anchors (scipy, pyamg).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

_BOUNDARIES = ("dirichlet", "neumann")


def _check_grid(n: int, dim: int) -> None:
    if not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}")
    if dim not in (1, 2, 3):
        raise ValueError(f"dim must be 1, 2 or 3, got {dim!r}")


def _kron_sum(blocks: list[sp.sparray], n: int) -> sp.csr_array:
    """``sum_i I x .. x T_i x .. x I`` over ``dim = len(blocks)`` axes."""
    eye = sp.eye_array(n, format="csr")
    total = None
    for axis, block in enumerate(blocks):
        term = None
        for j in range(len(blocks)):
            factor = block if j == axis else eye
            term = factor if term is None else sp.kron(term, factor, format="csr")
        total = term if total is None else total + term
    return sp.csr_array(total)


def poisson(n: int, dim: int = 2, *, bc: str = "dirichlet") -> sp.csr_array:
    """The negative Laplacian, ``(2 dim + 1)``-point stencil, on ``n**dim`` points.

    Unscaled (no ``1/h^2``). ``bc="dirichlet"``: ``n`` interior points per side,
    SPD with eigenvalues ``sum_i 4 sin^2(pi k_i / (2(n+1)))``, ``k_i = 1..n``.
    ``bc="neumann"``: ``n`` cell centres per side with homogeneous Neumann
    (reflecting) boundary, symmetric positive *semi*-definite with eigenvalues
    ``sum_i 4 sin^2(pi k_i / (2n))``, ``k_i = 0..n-1``; the constant vector spans
    the null space, so ``A x = b`` is solvable iff ``b`` sums to zero.

    Compare with ``pyamg.gallery.poisson`` (Dirichlet).

    Examples
    --------
    >>> poisson(3, dim=1).toarray()
    array([[ 2., -1.,  0.],
           [-1.,  2., -1.],
           [ 0., -1.,  2.]])
    >>> poisson(3, dim=1, bc="neumann").toarray()
    array([[ 1., -1.,  0.],
           [-1.,  2., -1.],
           [ 0., -1.,  1.]])
    """
    _check_grid(n, dim)
    if bc not in _BOUNDARIES:
        raise ValueError(f"bc must be one of {_BOUNDARIES}, got {bc!r}")
    diag = np.full(n, 2.0)
    if bc == "neumann":
        diag[0] = diag[-1] = 1.0 if n > 1 else 0.0
    T = sp.diags_array(
        [-np.ones(n - 1), diag, -np.ones(n - 1)], offsets=[-1, 0, 1], shape=(n, n)
    )
    return _kron_sum([sp.csr_array(T)] * dim, n)


def poisson_eigenvalues(n: int, dim: int = 2, *, bc: str = "dirichlet") -> np.ndarray:
    """The eigenvalues of :func:`poisson` in closed form, ascending.

    Examples
    --------
    >>> poisson_eigenvalues(2, dim=1)
    array([1., 3.])
    """
    _check_grid(n, dim)
    if bc not in _BOUNDARIES:
        raise ValueError(f"bc must be one of {_BOUNDARIES}, got {bc!r}")
    if bc == "dirichlet":
        lam = 4 * np.sin(np.pi * np.arange(1, n + 1) / (2 * (n + 1))) ** 2
    else:
        lam = 4 * np.sin(np.pi * np.arange(n) / (2 * n)) ** 2
    grids = np.meshgrid(*([lam] * dim), indexing="ij")
    return np.sort(np.sum(grids, axis=0).ravel())


def _orthogonal(n: int, rng: np.random.Generator, batch: int | None) -> np.ndarray:
    shape = (n, n) if batch is None else (batch, n, n)
    q, r = np.linalg.qr(rng.standard_normal(shape))
    # Sign fix so Q is Haar-distributed (and the result independent of LAPACK).
    return q * np.sign(np.diagonal(r, axis1=-2, axis2=-1))[..., None, :]


def spectrum(n: int, condition_number: float, *, kind: str = "geometric") -> np.ndarray:
    """``n`` eigenvalues in ``[1, condition_number]``.

    ``kind="geometric"``: log-spaced; ``"linear"``: evenly spaced; ``"clustered"``:
    all at 1 except the largest (CG converges in 2 steps).

    Examples
    --------
    >>> spectrum(3, 100.0)
    array([  1.,  10., 100.])
    """
    if not condition_number >= 1:
        raise ValueError(f"condition_number must be >= 1, got {condition_number}")
    if kind == "geometric":
        return np.geomspace(1.0, condition_number, n)
    if kind == "linear":
        return np.linspace(1.0, condition_number, n)
    if kind == "clustered":
        lam = np.ones(n)
        lam[-1] = condition_number
        return lam
    raise ValueError(f"kind must be 'geometric', 'linear' or 'clustered', got {kind!r}")


def random_spd(
    n: int,
    *,
    eigenvalues: np.ndarray | None = None,
    condition_number: float = 100.0,
    batch: int | None = None,
    seed: int = 0,
) -> np.ndarray:
    """A dense SPD matrix ``Q diag(eigenvalues) Q^T`` with Haar-random ``Q``.

    Give ``eigenvalues`` (all > 0) or a ``condition_number`` (log-spaced spectrum
    in ``[1, condition_number]``). ``batch=B`` returns ``B`` independent matrices
    stacked as ``(B, n, n)`` (the shape batched ``linear_solve`` takes).

    Examples
    --------
    >>> A = random_spd(4, condition_number=10.0, seed=1)
    >>> bool(np.allclose(A, A.T)), float(np.round(np.linalg.cond(A), 6))
    (True, 10.0)
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    lam = (
        spectrum(n, condition_number)
        if eigenvalues is None
        else np.asarray(eigenvalues, dtype=float)
    )
    if lam.shape != (n,):
        raise ValueError(f"eigenvalues must have shape ({n},), got {lam.shape}")
    if not np.all(lam > 0):
        raise ValueError("eigenvalues of an SPD matrix must all be > 0")
    return _from_spectrum(lam, n, np.random.default_rng(seed), batch)


def _from_spectrum(
    lam: np.ndarray, n: int, rng: np.random.Generator, batch: int | None
) -> np.ndarray:
    q = _orthogonal(n, rng, batch)
    A = (q * lam) @ np.swapaxes(q, -1, -2)
    return (A + np.swapaxes(A, -1, -2)) / 2


def symmetric_indefinite(
    n: int,
    *,
    negative_fraction: float = 0.5,
    condition_number: float = 100.0,
    seed: int = 0,
) -> np.ndarray:
    """A dense symmetric indefinite, nonsingular matrix (MINRES's home ground).

    Eigenvalue magnitudes are log-spaced in ``[1, condition_number]``; the
    smallest-magnitude ``round(negative_fraction * n)`` of them (at least one)
    get a negative sign, so CG meets negative curvature while MINRES/GMRES
    converge.

    Examples
    --------
    >>> A = symmetric_indefinite(6, seed=0)
    >>> w = np.linalg.eigvalsh(A)
    >>> bool(w.min() < 0 < w.max()), bool(np.allclose(A, A.T))
    (True, True)
    """
    if n < 2:
        raise ValueError(f"n must be >= 2 for an indefinite matrix, got {n}")
    if not 0 < negative_fraction < 1:
        raise ValueError(
            f"negative_fraction must be in (0, 1), got {negative_fraction}"
        )
    lam = spectrum(n, condition_number)
    negatives = min(max(1, round(negative_fraction * n)), n - 1)
    signs = np.ones(n)
    signs[np.random.default_rng(seed + 1).permutation(n)[:negatives]] = -1.0
    return _from_spectrum(lam * signs, n, np.random.default_rng(seed), None)


def convection_diffusion(
    n: int, dim: int = 2, *, peclet: float = 10.0, wind: tuple[float, ...] | None = None
) -> sp.csr_array:
    """``-Laplace(u) + w . grad(u)`` on the unit cube, Dirichlet, upwind differences.

    Nonsymmetric (GMRES's home ground). ``n`` interior points per side, mesh
    width ``h = 1/(n+1)``, scaled by ``h^2`` like :func:`poisson`; ``peclet``
    scales the unit ``wind`` direction (default all-ones, normalized), so the cell
    Peclet number is ``peclet * h``. First-order upwinding keeps an M-matrix
    (nonsingular, positive real part spectrum) for any ``peclet >= 0``.

    Examples
    --------
    >>> A = convection_diffusion(4, dim=2, peclet=50.0)
    >>> A.shape, bool(abs(A - A.T).max() > 0)
    ((16, 16), True)
    """
    _check_grid(n, dim)
    if not peclet >= 0:
        raise ValueError(f"peclet must be >= 0, got {peclet}")
    w = np.ones(dim) if wind is None else np.asarray(wind, dtype=float)
    if w.shape != (dim,):
        raise ValueError(f"wind must have {dim} components, got {w.shape}")
    norm = np.linalg.norm(w)
    w = w / norm if norm > 0 else w
    h = 1.0 / (n + 1)
    lap = poisson(n, dim)
    eye = sp.eye_array(n, format="csr")
    conv = None
    for axis in range(dim):
        c = peclet * h * w[axis]
        if c >= 0:  # backward difference for positive wind
            D = sp.diags_array([-np.ones(n - 1), np.ones(n)], offsets=[-1, 0])
        else:
            D = sp.diags_array([np.ones(n), -np.ones(n - 1)], offsets=[0, 1])
        term = None
        for j in range(dim):
            factor = abs(c) * D if j == axis else eye
            term = factor if term is None else sp.kron(term, factor, format="csr")
        conv = term if conv is None else conv + term
    return sp.csr_array(lap + conv)
