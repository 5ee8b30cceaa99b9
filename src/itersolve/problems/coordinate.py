"""Problems with coordinate structure for block coordinate descent.

Scalings (stated once, used by the ``optimize-bcd`` suite and its anchors):

* :class:`Lasso`: ``(1/(2 m)) ||y - X w||^2 + alpha ||w||_1`` -- scikit-learn's
  ``Lasso(alpha, fit_intercept=False)`` objective, ``m`` = number of samples.
* :class:`ElasticNet`: ``(1/(2 m)) ||y - X w||^2 + alpha rho ||w||_1 + alpha
  (1 - rho)/2 ||w||^2`` -- scikit-learn's ``ElasticNet(alpha, l1_ratio=rho,
  fit_intercept=False)`` objective.
* :class:`NonNegativeLeastSquaresL1`: ``1/2 ||A x - b||^2 + lam sum_i x_i`` over
  ``x >= 0`` (``lam = 0``: ``scipy.optimize.nnls``).
* :class:`SparseLeastSquares`: ``1/2 ||A x - b||^2 + l2/2 ||x||^2`` with a
  scipy/torch sparse ``A`` (the dense twin is :class:`LeastSquares`).
* :class:`LabelPropagation`: ``1/2 sum_{i,j} w_ij (x_i - x_j)^2`` over the
  unlabelled nodes, labelled ones fixed: the SPD quadratic
  ``1/2 x^T Q x - c^T x`` with ``Q = (D - W)_UU``, ``c = W_UL y_L``.

Each class declares its structure for block coordinate descent by having the
attributes of one of the protocols of :mod:`itersolve.optimize.bcd` (Lasso and
NNLS + L1: ``A``, ``b``, ``scale``, ``penalty``; sparse least squares: ``A``,
``b``, ``l2``, ``residual``; label propagation: ``Q``, ``c``), exactly as a
user's own problem class would.

Generators follow the recipes of Nutini, Laradji & Schmidt (2022), datasets A-E
(``IssamLaradji/BlockCoordinateDescent``, ``src/datasets``), at any size.
"""

from __future__ import annotations

import warnings
from functools import cached_property
from typing import Any

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
import torch

from itersolve._core.objective import Objective
from itersolve._core.tensors import as_tensor
from itersolve.optimize.bcd import L1Penalty
from itersolve.optimize.bcd import lasso_duality_gap as _lasso_duality_gap
from itersolve.problems._base import FixtureProblem
from itersolve.problems.optimization import SmoothProblem

Tensor = torch.Tensor


def _check_weight(value: Any, name: str) -> float:
    if not (isinstance(value, (int, float, np.floating)) and np.isfinite(value)):
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value!r}")
    return float(value)


def _matrix(A: Any, name: str) -> sp.csr_array | np.ndarray:
    """scipy CSR for sparse input, a float numpy array otherwise."""
    if sp.issparse(A):
        out = sp.csr_array(A, dtype=np.float64 if A.dtype.kind in "iub" else A.dtype)
    elif isinstance(A, torch.Tensor) and A.layout != torch.strided:
        coo = A.detach().cpu().to_sparse_coo().coalesce()
        i = coo.indices().numpy()
        out = sp.csr_array((coo.values().numpy(), (i[0], i[1])), shape=tuple(A.shape))
    else:
        out = as_tensor(A, name)[0].cpu().numpy()
    if out.ndim != 2:
        raise ValueError(f"{name} must be a matrix, got shape {out.shape}")
    return out


def _vector(v: Any, name: str, size: int) -> np.ndarray:
    out = as_tensor(v, name)[0].cpu().numpy().reshape(-1)
    if out.size != size:
        raise ValueError(f"{name} must have {size} entries, got {out.size}")
    return out


def _torch_matrix(A: sp.csr_array | np.ndarray, dtype: torch.dtype) -> Tensor:
    if sp.issparse(A):
        csr = sp.csr_array(A)
        csr.sort_indices()
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "Sparse CSR tensor support")
            return torch.sparse_csr_tensor(
                torch.from_numpy(csr.indptr.astype(np.int64)),
                torch.from_numpy(csr.indices.astype(np.int64)),
                torch.from_numpy(csr.data).to(dtype),
                size=csr.shape,
                # scipy built these arrays: valid by construction, no re-check
                check_invariants=False,
            )
    return torch.from_numpy(A).to(dtype)


class _CompositeProblem(FixtureProblem):
    """Shared parts of the L1 problems (not smooth: no gradient oracle): the
    :class:`~itersolve.optimize.bcd.L1LeastSquaresStructure` attributes ``A``,
    ``b``, ``scale`` and ``penalty``."""

    A: sp.csr_array | np.ndarray
    b: np.ndarray
    scale: float
    penalty: L1Penalty
    shape: tuple[int, ...]
    dtype = torch.float64

    @cached_property
    def _A_torch(self) -> Tensor:
        return _torch_matrix(self.A, torch.float64)

    def smooth_value(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    def penalty_value(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    def value(self, x: Tensor) -> Tensor:
        return self.smooth_value(x) + self.penalty_value(x)

    def _residual(self, x: Tensor) -> Tensor:
        A = self._A_torch.to(x.dtype)
        b = torch.from_numpy(self.b).to(x.dtype)
        return A @ x - b

    def objective(self) -> Objective:
        """The composite value as an :class:`~itersolve.Objective`; it has no
        gradient (the problem is non-smooth): use ``BlockCoordinateDescent``."""

        def no_grad(x: Tensor) -> Tensor:
            raise TypeError(
                f"{type(self).__name__} is not smooth: minimize it with "
                "BlockCoordinateDescent (proximal steps)"
            )

        return Objective(self.value, grad=no_grad)

    def x0(self) -> Tensor:
        return torch.zeros(self.shape, dtype=torch.float64)


class Lasso(_CompositeProblem):
    """``f(w) = 1/(2 m) ||y - X w||^2 + alpha ||w||_1`` (``m`` samples).

    Compare with ``sklearn.linear_model.Lasso(alpha=alpha, fit_intercept=False)``:
    the identical objective.

    Attributes
    ----------
    X : numpy array or scipy CSR (m, d)
    y : numpy array (m,)
    alpha : float
    A, b, scale, penalty
        ``X``, ``y``, ``1 / m`` and ``L1Penalty(alpha)``: the
        :class:`~itersolve.optimize.bcd.L1LeastSquaresStructure` attributes.
    alpha_max : float
        The smallest ``alpha`` with solution ``w = 0``: ``||X^T y||_inf / m``.

    Examples
    --------
    >>> p = Lasso(np.eye(2), [1.0, 0.0], alpha=0.1)
    >>> round(p.value(torch.zeros(2, dtype=torch.float64)).item(), 6)
    0.25
    """

    fields = ("X", "y", "alpha")

    def __init__(self, X: Any, y: Any, *, alpha: float = 1.0) -> None:
        self.X = self.A = _matrix(X, "X")
        self.y = self.b = _vector(y, "y", self.X.shape[0])
        self.alpha = _check_weight(alpha, "alpha")
        self.shape = (self.X.shape[1],)
        self.n_samples = self.X.shape[0]
        self.scale = 1.0 / self.n_samples
        self.penalty = L1Penalty(self.alpha)

    @property
    def alpha_max(self) -> float:
        return float(np.abs(self.X.T @ self.y).max() / self.n_samples)

    def smooth_value(self, x: Tensor) -> Tensor:
        r = self._residual(x)
        return 0.5 * (r @ r) / self.n_samples

    def penalty_value(self, x: Tensor) -> Tensor:
        return self.alpha * x.abs().sum()

    @property
    def gap_scale(self) -> float:
        """``||y||^2 / m``: scikit-learn's ``tol`` is relative to it (its solver
        stops once the duality gap is ``<= tol ||y||^2 / m``)."""
        return float(self.y @ self.y) / self.n_samples

    def duality_gap(self, w: Any) -> float:
        """scikit-learn's duality gap at ``w``, computed afresh in float64.

        >>> p = Lasso(np.eye(2), [1.0, 0.0], alpha=0.1)
        >>> round(p.duality_gap(np.array([0.8, 0.0])), 12)
        0.0
        """
        w = np.asarray(w, dtype=np.float64).reshape(-1)
        r = self.X @ w - self.y
        g = self.X.T @ r / self.n_samples
        return _lasso_duality_gap(
            float(r @ r),
            float(r @ self.y),
            float(np.abs(g).max()),
            float(np.abs(w).sum()),
            self.alpha,
            self.n_samples,
        )


class ElasticNet(_CompositeProblem):
    """``f(w) = 1/(2 m) ||y - X w||^2 + alpha rho ||w||_1
    + alpha (1 - rho)/2 ||w||^2`` (``m`` samples, ``rho = l1_ratio``).

    Compare with ``sklearn.linear_model.ElasticNet(alpha=alpha,
    l1_ratio=l1_ratio, fit_intercept=False)``: the identical objective.
    ``l1_ratio = 1`` is :class:`Lasso`.

    Attributes
    ----------
    X : numpy array or scipy CSR (m, d)
    y : numpy array (m,)
    alpha, l1_ratio : float
    A, b, scale, l2, penalty
        ``X``, ``y``, ``1 / m``, ``alpha (1 - l1_ratio)`` and
        ``L1Penalty(alpha l1_ratio)``: the
        :class:`~itersolve.optimize.bcd.L1LeastSquaresStructure` attributes
        with its optional ridge term.

    Examples
    --------
    >>> p = ElasticNet(np.eye(2), [1.0, 0.0], alpha=0.2, l1_ratio=0.5)
    >>> round(p.value(torch.tensor([1.0, 0.0], dtype=torch.float64)).item(), 6)
    0.15
    """

    fields = ("X", "y", "alpha", "l1_ratio")

    def __init__(
        self, X: Any, y: Any, *, alpha: float = 1.0, l1_ratio: float = 0.5
    ) -> None:
        self.X = self.A = _matrix(X, "X")
        self.y = self.b = _vector(y, "y", self.X.shape[0])
        self.alpha = _check_weight(alpha, "alpha")
        ratio = _check_weight(l1_ratio, "l1_ratio")
        if ratio > 1.0:
            raise ValueError(f"l1_ratio must be in [0, 1], got {l1_ratio!r}")
        self.l1_ratio = ratio
        self.shape = (self.X.shape[1],)
        self.n_samples = self.X.shape[0]
        self.scale = 1.0 / self.n_samples
        self.l2 = self.alpha * (1.0 - ratio)
        self.penalty = L1Penalty(self.alpha * ratio)

    def smooth_value(self, x: Tensor) -> Tensor:
        r = self._residual(x)
        return 0.5 * (r @ r) / self.n_samples + 0.5 * self.l2 * (x @ x)

    def penalty_value(self, x: Tensor) -> Tensor:
        return self.penalty.lam * x.abs().sum()


class NonNegativeLeastSquaresL1(_CompositeProblem):
    """``f(x) = 1/2 ||A x - b||^2 + lam sum_i x_i`` subject to ``x >= 0``.

    Compare with ``scipy.optimize.nnls(A, b)`` (``lam = 0``) or
    ``scipy.optimize.lsq_linear`` after folding ``lam`` into the data.

    Attributes
    ----------
    A : numpy array or scipy CSR (m, n)
    b : numpy array (m,)
    lam : float
    scale, penalty
        ``1`` and ``L1Penalty(lam, nonnegative=True)``: with ``A`` and ``b`` the
        :class:`~itersolve.optimize.bcd.L1LeastSquaresStructure` attributes.

    Examples
    --------
    >>> import numpy as np
    >>> import torch
    >>> from itersolve.problems import NonNegativeLeastSquaresL1
    >>> b = np.array([1.0, -1.0, 2.0])
    >>> problem = NonNegativeLeastSquaresL1(np.eye(3), b, lam=0.5)
    >>> float(problem.value(torch.tensor([0.5, 0.0, 1.5], dtype=torch.float64)))
    1.75
    """

    fields = ("A", "b", "lam")

    def __init__(self, A: Any, b: Any, *, lam: float = 0.0) -> None:
        self.A = _matrix(A, "A")
        self.b = _vector(b, "b", self.A.shape[0])
        self.lam = _check_weight(lam, "lam")
        self.shape = (self.A.shape[1],)
        self.scale = 1.0
        self.penalty = L1Penalty(self.lam, nonnegative=True)

    def smooth_value(self, x: Tensor) -> Tensor:
        r = self._residual(x)
        return 0.5 * (r @ r)

    def penalty_value(self, x: Tensor) -> Tensor:
        if bool((x < 0).any()):
            return torch.tensor(float("inf"), dtype=x.dtype)
        return self.lam * x.sum()


class SparseLeastSquares(FixtureProblem, SmoothProblem):
    """``f(x) = 1/2 ||A x - b||^2 + l2/2 ||x||^2`` for a sparse ``A``.

    The sparse twin of :class:`~itersolve.problems.LeastSquares` (which stores a
    dense tensor). Compare with ``scipy.sparse.linalg.lsqr(A, b, damp=sqrt(l2))``.

    Attributes
    ----------
    A : scipy CSR (m, n)
    b : numpy array (m,)
    l2 : float

    Examples
    --------
    >>> import numpy as np
    >>> import scipy.sparse as sp
    >>> import torch
    >>> from itersolve.problems import SparseLeastSquares
    >>> problem = SparseLeastSquares(sp.eye(3, format="csr"), np.ones(3), l2=1.0)
    >>> float(problem.value(torch.zeros(3, dtype=torch.float64)))
    1.5
    """

    fields = ("A", "b", "l2", "dtype")

    def __init__(self, A: Any, b: Any, *, l2: float = 0.0, dtype: Any = None) -> None:
        self.A = sp.csr_array(_matrix(A, "A"))
        self.b = _vector(b, "b", self.A.shape[0])
        self.l2 = _check_weight(l2, "l2")
        self.shape = (self.A.shape[1],)
        self.dtype = dtype or torch.float64
        self.device = torch.device("cpu")
        self._At = _torch_matrix(self.A, self.dtype)
        self._AtT = _torch_matrix(sp.csr_array(self.A.T), self.dtype)
        self._bt = torch.from_numpy(self.b).to(self.dtype)

    def residual(self, x: Tensor) -> Tensor:
        """``A x - b``."""
        return self._At @ x - self._bt

    def value(self, x: Tensor) -> Tensor:
        r = self.residual(x)
        return 0.5 * (r @ r) + 0.5 * self.l2 * (x @ x)

    def grad(self, x: Tensor) -> Tensor:
        return self._AtT @ self.residual(x) + self.l2 * x

    def hvp(self, x: Tensor, v: Tensor) -> Tensor:
        return self._AtT @ (self._At @ v) + self.l2 * v

    def hessian(self, x: Tensor) -> Tensor:
        G = (self.A.T @ self.A).toarray() + self.l2 * np.eye(self.shape[0])
        return torch.from_numpy(G).to(self.dtype)


class LabelPropagation(FixtureProblem, SmoothProblem):
    """Quadratic label propagation on a weighted graph (Zhu & Ghahramani 2002).

    ``f(x) = 1/2 sum_{i,j} w_ij (x_i - x_j)^2`` with the labelled nodes fixed to
    their labels and minimized over the unlabelled ones: ``1/2 x^T Q x - c^T x``
    with ``Q = (D - W)_UU`` (SPD when every connected component holds a label),
    ``c = W_UL y_L``. Labelled nodes are removed before any block is formed;
    ``unlabelled`` maps system unknowns back to graph nodes.

    Compare with ``scipy.sparse.linalg.cg(Q, c)`` / ``spsolve``.

    Parameters
    ----------
    graph
        Symmetric non-negative weights ``W`` (scipy sparse or dense), zero diagonal.
    labels
        One value per node: the label, or NaN for an unlabelled node.

    Attributes
    ----------
    Q : scipy CSR, c : numpy array
        The system over the unlabelled nodes.
    unlabelled, labelled : int arrays of node ids.
    lattice_shape : (rows, cols) or None
        Set by :func:`lattice_label_propagation` (enables ``blocks="lattice"``).
    dtype : torch.dtype
        Of the tensors ``value``/``grad`` use (float64 by default).

    Examples
    --------
    >>> W = sp.csr_array(np.array([[0, 1.0, 0], [1.0, 0, 1.0], [0, 1.0, 0]]))
    >>> p = LabelPropagation(W, [1.0, np.nan, 3.0])
    >>> p.Q.toarray(), p.c
    (array([[2.]]), array([4.]))
    """

    fields = ("graph", "labels", "lattice_shape", "dtype")

    def __init__(
        self,
        graph: Any,
        labels: Any,
        *,
        lattice_shape: tuple[int, int] | None = None,
        dtype: torch.dtype = torch.float64,
    ) -> None:
        W = sp.csr_array(_matrix(graph, "graph"), dtype=np.float64)
        n = W.shape[0]
        if W.shape != (n, n):
            raise ValueError(f"graph must be square, got shape {W.shape}")
        if W.nnz and W.data.min() < 0:
            raise ValueError(f"graph weights must be >= 0, got min {W.data.min()}")
        if abs(W - W.T).sum() > 1e-12 * max(1.0, abs(W).sum()):
            raise ValueError("graph must be symmetric")
        y = np.asarray(labels, dtype=np.float64).reshape(-1)
        if y.size != n:
            raise ValueError(f"labels must have {n} entries, got {y.size}")
        labelled = np.flatnonzero(~np.isnan(y))
        unlabelled = np.flatnonzero(np.isnan(y))
        if labelled.size == 0 or unlabelled.size == 0:
            raise ValueError(
                "labels must mark at least one labelled (number) and one unlabelled "
                f"(NaN) node, got {labelled.size} labelled of {n}"
            )
        W = W - sp.diags_array(W.diagonal())
        degree = np.asarray(W.sum(axis=1)).reshape(-1)
        Lap = sp.csr_array(sp.diags_array(degree) - W)
        self.graph = W
        self.labels = y
        self.labelled, self.unlabelled = labelled, unlabelled
        self.Q = sp.csr_array(Lap[unlabelled][:, unlabelled])
        self.Q.eliminate_zeros()
        self.c = np.asarray(W[unlabelled][:, labelled] @ y[labelled]).reshape(-1)
        self.lattice_shape = lattice_shape
        self.shape = (unlabelled.size,)
        self.dtype = dtype
        self.device = torch.device("cpu")
        self._Qt = _torch_matrix(self.Q, dtype)
        self._ct = torch.from_numpy(self.c).to(dtype)

    def value(self, x: Tensor) -> Tensor:
        return 0.5 * (x @ (self._Qt @ x)) - self._ct @ x

    def grad(self, x: Tensor) -> Tensor:
        return self._Qt @ x - self._ct

    def hvp(self, x: Tensor, v: Tensor) -> Tensor:
        return self._Qt @ v

    def hessian(self, x: Tensor) -> Tensor:
        return torch.from_numpy(self.Q.toarray()).to(self.dtype)

    @cached_property
    def x_star(self) -> Tensor:
        sol = spla.spsolve(sp.csc_array(self.Q), self.c)
        return torch.from_numpy(np.asarray(sol)).to(self.dtype)


# -- the paper's generators (datasets A-E) ------------------------------------------


def _sparse_design(rng: np.random.Generator, m: int, n: int) -> sp.csr_array:
    """Recipe A: N(0,1)+1 entries, columns scaled by 10 N(0,1), each entry kept
    with probability 10 log(m) / m."""
    keep = rng.random((m, n)) < min(1.0, 10 * np.log(m) / m)
    A = (rng.standard_normal((m, n)) + 1.0) * (10.0 * rng.standard_normal(n))
    return sp.csr_array(A * keep)


def sparse_regression_data(
    m: int = 1000, n: int = 10000, *, seed: int = 0
) -> tuple[sp.csr_array, np.ndarray, np.ndarray]:
    """Dataset A: ``(A, b, w)`` with ``b = A w + N(0, 1)``, ``w`` 10% non-zero.

    Examples
    --------
    >>> A, b, w = sparse_regression_data(50, 80, seed=1)
    >>> A.shape, b.shape, 0 < A.nnz < 50 * 80
    ((50, 80), (50,), True)
    """
    rng = np.random.default_rng(seed)
    A = _sparse_design(rng, m, n)
    w = rng.standard_normal(n) * (rng.random(n) < 0.1)
    return A, A @ w + rng.standard_normal(m), w


def sparse_classification_data(
    m: int = 1000, n: int = 10000, *, seed: int = 0
) -> tuple[sp.csr_array, np.ndarray]:
    """Dataset B: ``(A, y)`` with ``y = sign(A w)`` in {-1, +1}, 10% flipped.

    Examples
    --------
    >>> import numpy as np
    >>> from itersolve.problems import sparse_classification_data
    >>> A, y = sparse_classification_data(50, 200, seed=0)
    >>> A.shape, sorted(np.unique(y).tolist())
    ((50, 200), [-1.0, 1.0])
    """
    rng = np.random.default_rng(seed)
    A = _sparse_design(rng, m, n)
    w = rng.standard_normal(n) * (rng.random(n) < 0.1)
    y = np.sign(A @ w)
    y[y == 0] = 1.0
    y *= np.where(rng.random(m) < 0.1, -1.0, 1.0)
    return A, y


def sparse_multiclass_data(
    m: int = 1000, n: int = 1000, classes: int = 50, *, seed: int = 0
) -> tuple[sp.csr_array, np.ndarray]:
    """Dataset C: ``(A, y)``, ``y = argmax(A W + N(0,1))`` with dense ``W``.

    Examples
    --------
    >>> from itersolve.problems import sparse_multiclass_data
    >>> A, y = sparse_multiclass_data(40, 30, classes=5, seed=0)
    >>> A.shape, y.shape
    ((40, 30), (40,))
    """
    rng = np.random.default_rng(seed)
    A = _sparse_design(rng, m, n)
    W = rng.standard_normal((n, classes))
    scores = A @ W + rng.standard_normal((m, classes))
    return A, np.argmax(scores, axis=1)


def lattice_label_propagation(
    rows: int = 50,
    cols: int = 50,
    *,
    n_labelled: int = 100,
    weight: float = 1e5,
    seed: int = 0,
) -> LabelPropagation:
    """Dataset D: a ``rows x cols`` 4-neighbour lattice, weights ``weight``,
    ``n_labelled`` random nodes labelled ``10 N(0, 1)``. Node ``i`` sits at row
    ``i % rows``, column ``i // rows`` (the official code's numbering).

    Examples
    --------
    >>> from itersolve.problems import lattice_label_propagation
    >>> problem = lattice_label_propagation(10, 10, n_labelled=10)
    >>> tuple(problem.x0().shape)  # one unknown per unlabelled node
    (90,)
    """
    if rows < 2 or cols < 2:
        raise ValueError(f"the lattice needs rows, cols >= 2, got {rows}, {cols}")
    n = rows * cols
    if not 0 < n_labelled < n:
        raise ValueError(f"n_labelled must be in (0, {n}), got {n_labelled}")
    idx = np.arange(n)
    r, c = idx % rows, idx // rows
    down = idx[r < rows - 1]
    right = idx[c < cols - 1]
    i = np.concatenate([down, right])
    j = np.concatenate([down + 1, right + rows])
    W = sp.csr_array((np.full(i.size, float(weight)), (i, j)), shape=(n, n))
    W = sp.csr_array(W + W.T)
    rng = np.random.default_rng(seed)
    labels = np.full(n, np.nan)
    chosen = rng.choice(n, n_labelled, replace=False)
    labels[chosen] = 10.0 * rng.standard_normal(n_labelled)
    return LabelPropagation(W, labels, lattice_shape=(rows, cols))


def two_moons_label_propagation(
    n_nodes: int = 2000,
    *,
    n_neighbors: int = 5,
    n_labelled: int = 100,
    noise: float = 0.1,
    seed: int = 0,
) -> LabelPropagation:
    """Dataset E: two-moons points joined to their ``n_neighbors`` nearest
    neighbours (symmetrized, weights 1), ``n_labelled`` nodes labelled by moon
    (+1 / -1). Components without a label are joined to their nearest labelled
    component so that ``Q`` is positive definite.

    Examples
    --------
    >>> from itersolve.problems import two_moons_label_propagation
    >>> problem = two_moons_label_propagation(100, n_labelled=10)
    >>> tuple(problem.x0().shape)  # one unknown per unlabelled node
    (90,)
    """
    from scipy.spatial import cKDTree

    if n_nodes < 4:
        raise ValueError(f"n_nodes must be >= 4, got {n_nodes}")
    if not 0 < n_labelled < n_nodes:
        raise ValueError(f"n_labelled must be in (0, {n_nodes}), got {n_labelled}")
    rng = np.random.default_rng(seed)
    half = n_nodes // 2
    t = np.concatenate([rng.random(half), rng.random(n_nodes - half)]) * np.pi
    moon = np.arange(n_nodes) >= half
    pts = np.where(
        moon[:, None],
        np.stack([1 - np.cos(t), 0.5 - np.sin(t)], 1),
        np.stack([np.cos(t), np.sin(t)], 1),
    )
    pts += noise * rng.standard_normal(pts.shape)
    tree = cKDTree(pts)
    _, nb = tree.query(pts, n_neighbors + 1)
    i = np.repeat(np.arange(n_nodes), n_neighbors)
    j = nb[:, 1:].reshape(-1)
    W = sp.csr_array((np.ones(i.size), (i, j)), shape=(n_nodes, n_nodes))
    W = sp.csr_array((W + W.T) > 0, dtype=np.float64)
    labels = np.full(n_nodes, np.nan)
    chosen = rng.choice(n_nodes, n_labelled, replace=False)
    labels[chosen] = np.where(moon[chosen], 1.0, -1.0)
    W = _connect_unlabelled_components(W, pts, labels)
    return LabelPropagation(W, labels)


def _connect_unlabelled_components(
    W: sp.csr_array, pts: np.ndarray, labels: np.ndarray
) -> sp.csr_array:
    from scipy.sparse.csgraph import connected_components

    _, comp = connected_components(W, directed=False)
    has_label = np.zeros(comp.max() + 1, dtype=bool)
    has_label[comp[~np.isnan(labels)]] = True
    extra_i, extra_j = [], []
    labelled_nodes = np.flatnonzero(has_label[comp])
    for k in np.flatnonzero(~has_label):
        members = np.flatnonzero(comp == k)
        d = ((pts[members, None, :] - pts[None, labelled_nodes, :]) ** 2).sum(-1)
        a, b = np.unravel_index(np.argmin(d), d.shape)
        extra_i.append(members[a])
        extra_j.append(labelled_nodes[b])
    if not extra_i:
        return W
    E = sp.csr_array((np.ones(len(extra_i)), (extra_i, extra_j)), shape=W.shape)
    return sp.csr_array(((W + E + E.T) > 0).astype(np.float64))


_MOVED = {
    "lasso_duality_gap": "itersolve.optimize.bcd",
    "CompressedMatrix": "itersolve.optimize.bcd._columns",
}


def __getattr__(name: str) -> Any:
    # Library pieces that lived here before the BCD subpackage: one release of
    # grace, with a warning naming the new home.
    if name in _MOVED:
        import importlib

        home = _MOVED[name]
        warnings.warn(
            f"itersolve.problems.coordinate.{name} moved to {home}.{name}; "
            "the old path will be removed in the next release",
            DeprecationWarning,
            stacklevel=2,
        )
        return getattr(importlib.import_module(home), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
