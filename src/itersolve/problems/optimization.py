"""Smooth test objectives for ``itersolve.optimize``, with closed-form derivatives.

Every problem class stores its data as torch tensors (public attributes, documented
per class), evaluates ``value``/``grad``/``hvp``/``hessian`` in closed form, and
hands an :class:`~itersolve.Objective` to the solvers through ``.objective()``, so
``minimize(problem, x0)`` works directly. ``to(dtype)`` gives the float32 twin and
``repr`` a one-line summary (both from
:class:`~itersolve.problems._base.FixtureProblem`).

Objective scalings (stated once, used by every benchmark and anchor):

* ``Quadratic``: ``f(x) = 1/2 x^T A x - b^T x``.
* ``LeastSquares``: ``f(x) = 1/2 ||A x - b||^2 + l2/2 ||x||^2``.
* ``Logistic``: ``f(w) = mean_i log(1 + exp(-y_i x_i^T w)) + l2/2 ||w||^2`` with
  labels ``y_i in {-1, +1}``; no intercept. scikit-learn's
  ``LogisticRegression(C=C, fit_intercept=False)`` minimizes
  ``C sum_i loss_i + 1/2 ||w||^2 = C n f(w)`` when ``C = 1 / (n l2)``.
* ``Softmax``: ``f(W) = mean_i [logsumexp(x_i^T W) - x_i^T W_{:, y_i}]
  + l2/2 ||W||_F^2`` with ``W`` of shape ``(d, K)``; same ``C = 1 / (n l2)``.
* ``LogSumExp``: ``f(x) = mu log sum_i exp((a_i^T x - b_i) / mu) + l2/2 ||x||^2``.
* ``Rosenbrock``: ``sum_i 100 (x_{i+1} - x_i^2)^2 + (1 - x_i)^2``
  (``scipy.optimize.rosen``).
* ``LessardCounterexample``: the 1-D piecewise quadratic of Lessard, Recht and
  Packard (2016) with ``L = 25``, ``mu = 1``, on which tuned heavy ball cycles.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property
from typing import Any

import numpy as np
import torch

from itersolve._core.tensors import as_tensor, floating_dtype
from itersolve.optimize._problem import SmoothProblem
from itersolve.problems._base import FixtureProblem

Tensor = torch.Tensor


class _PointCache:
    """Remembers one derived tensor for the last ``x`` seen (same object, same
    in-place version), so the many Hessian-vector products of one CG solve
    share the probabilities at ``x``."""

    def __init__(self) -> None:
        self._key: tuple[int, int] | None = None
        self._ref: Tensor | None = None
        self._value: Tensor | None = None

    def get(self, x: Tensor, compute: Callable[[Tensor], Tensor]) -> Tensor:
        key = (id(x), x._version)
        if self._key != key or self._ref is not x or self._value is None:
            self._value = compute(x)
            self._key, self._ref = key, x
        return self._value


def _tensor(x: Any, name: str, dtype: torch.dtype | None = None) -> Tensor:
    t, _ = as_tensor(x, name, dtype=dtype)
    return t


def _check_l2(l2: float) -> float:
    if not (isinstance(l2, (int, float)) and l2 >= 0 and np.isfinite(l2)):
        raise ValueError(f"l2 must be a finite number >= 0, got {l2!r}")
    return float(l2)


def _gram_extremes(M: Tensor) -> tuple[float, float]:
    """Largest and smallest eigenvalue of ``M^T M`` (float64)."""
    M64 = M.to(torch.float64)
    if M.shape[0] >= M.shape[1]:
        ev = torch.linalg.eigvalsh(M64.T @ M64)
        return float(ev[-1]), float(ev[0].clamp(min=0))
    s = torch.linalg.svdvals(M64)
    return float(s[0] ** 2), 0.0


# -- quadratic and least squares ---------------------------------------------------


class Quadratic(FixtureProblem, SmoothProblem):
    """``f(x) = 1/2 x^T A x - b^T x`` with ``A`` symmetric positive definite.

    Attributes
    ----------
    A : Tensor (n, n)
        The Hessian (symmetric).
    b : Tensor (n,)
        The linear term; the minimizer solves ``A x = b``.
    eigenvalues : Tensor (n,) or None
        The spectrum when built by :meth:`with_spectrum`.

    Examples
    --------
    >>> q = Quadratic.with_spectrum(torch.tensor([1.0, 4.0], dtype=torch.float64))
    >>> q.L, q.mu
    (4.0, 1.0)
    """

    fields = ("A", "b", "eigenvalues")

    @property
    def Q(self) -> torch.Tensor:
        """``A``, under the name :class:`~itersolve.optimize.bcd.QuadraticStructure`
        reads (so block coordinate descent takes its incremental path)."""
        return self.A

    @property
    def c(self) -> torch.Tensor:
        """``b``, under the name :class:`~itersolve.optimize.bcd.QuadraticStructure`
        reads."""
        return self.b

    def __init__(self, A: Any, b: Any, *, eigenvalues: Any = None) -> None:
        A_t = _tensor(A, "A")
        b_t = _tensor(b, "b", dtype=A_t.dtype)
        if A_t.ndim != 2 or A_t.shape[0] != A_t.shape[1]:
            raise ValueError(f"A must be a square matrix, got shape {tuple(A_t.shape)}")
        if b_t.shape != (A_t.shape[0],):
            raise ValueError(
                f"b must have shape ({A_t.shape[0]},), got {tuple(b_t.shape)}"
            )
        self.A = 0.5 * (A_t + A_t.T)
        self.b = b_t
        self.eigenvalues = None if eigenvalues is None else _tensor(eigenvalues, "ev")
        self.shape = (A_t.shape[0],)
        self.dtype = A_t.dtype
        self.device = A_t.device

    @classmethod
    def with_spectrum(
        cls,
        eigenvalues: Any,
        *,
        seed: int = 0,
        rotate: bool = True,
        dtype: torch.dtype = torch.float64,
    ) -> Quadratic:
        """``A = Q diag(eigenvalues) Q^T`` with a seeded random orthogonal ``Q``
        (``rotate=False``: diagonal ``A``) and ``b`` seeded standard normal."""
        ev = _tensor(eigenvalues, "eigenvalues", dtype=torch.float64)
        if ev.ndim != 1 or not bool((ev > 0).all()):
            raise ValueError("eigenvalues must be a 1-D array of positive numbers")
        n = ev.numel()
        gen = torch.Generator().manual_seed(seed)
        if rotate:
            Q, _ = torch.linalg.qr(
                torch.randn(n, n, generator=gen, dtype=torch.float64)
            )
            A = (Q * ev) @ Q.T
        else:
            A = torch.diag(ev)
        b = torch.randn(n, generator=gen, dtype=torch.float64)
        return cls(A.to(dtype), b.to(dtype), eigenvalues=ev.to(dtype))

    def value(self, x: Tensor) -> Tensor:
        return 0.5 * (x @ (self.A @ x)) - self.b @ x

    def grad(self, x: Tensor) -> Tensor:
        return self.A @ x - self.b

    def value_and_grad(self, x: Tensor) -> tuple[Tensor, Tensor]:
        Ax = self.A @ x
        return 0.5 * (x @ Ax) - self.b @ x, Ax - self.b

    def hessian(self, x: Tensor) -> Tensor:
        return self.A

    def hvp(self, x: Tensor, v: Tensor) -> Tensor:
        return self.A @ v

    @cached_property
    def _spectrum(self) -> tuple[float, float]:
        if self.eigenvalues is not None:
            return float(self.eigenvalues.max()), float(self.eigenvalues.min())
        ev = torch.linalg.eigvalsh(self.A.to(torch.float64))
        return float(ev[-1]), float(ev[0])

    @property
    def L(self) -> float:
        return self._spectrum[0]

    @property
    def mu(self) -> float:
        return self._spectrum[1]

    @cached_property
    def x_star(self) -> Tensor:
        A64, b64 = self.A.to(torch.float64), self.b.to(torch.float64)
        return torch.linalg.solve(A64, b64).to(self.dtype)


def quadratic_logspaced(
    d: int, kappa: float, *, seed: int = 0, dtype: torch.dtype = torch.float64
) -> Quadratic:
    """A ``d``-dimensional :class:`Quadratic` with eigenvalues log-spaced in
    ``[1, kappa]`` (so ``mu = 1``, ``L = kappa``), randomly rotated.

    Examples
    --------
    >>> q = quadratic_logspaced(50, 100.0)
    >>> round(q.L / q.mu, 6)
    100.0
    """
    if d < 1:
        raise ValueError(f"d must be >= 1, got {d}")
    if not kappa >= 1:
        raise ValueError(f"kappa must be >= 1, got {kappa}")
    ev = np.logspace(0.0, np.log10(kappa), d)
    return Quadratic.with_spectrum(ev, seed=seed, dtype=dtype)


class LeastSquares(FixtureProblem, SmoothProblem):
    """``f(x) = 1/2 ||A x - b||^2 + l2/2 ||x||^2``.

    Equivalent to ``scipy.linalg.lstsq`` (``l2 = 0``) or ridge regression with
    ``alpha = l2`` (``sklearn.linear_model.Ridge(alpha=l2, fit_intercept=False)``).

    Attributes
    ----------
    A : Tensor (m, n)
    b : Tensor (m,)
    l2 : float
        Ridge weight.

    Examples
    --------
    >>> p = LeastSquares(torch.eye(2, dtype=torch.float64), torch.ones(2))
    >>> p.value(torch.zeros(2, dtype=torch.float64)).item()
    1.0
    """

    fields = ("A", "b", "l2")

    approximations = ("gauss_newton",)

    def __init__(self, A: Any, b: Any, *, l2: float = 0.0) -> None:
        A_t = _tensor(A, "A")
        b_t = _tensor(b, "b", dtype=A_t.dtype)
        if A_t.ndim != 2:
            raise ValueError(f"A must be a matrix, got shape {tuple(A_t.shape)}")
        if b_t.shape != (A_t.shape[0],):
            raise ValueError(
                f"b must have shape ({A_t.shape[0]},), got {tuple(b_t.shape)}"
            )
        self.A, self.b, self.l2 = A_t, b_t, _check_l2(l2)
        self.shape = (A_t.shape[1],)
        self.dtype, self.device = A_t.dtype, A_t.device

    def residual(self, x: Tensor) -> Tensor:
        return self.A @ x - self.b

    def value(self, x: Tensor) -> Tensor:
        r = self.residual(x)
        return 0.5 * (r @ r) + 0.5 * self.l2 * (x @ x)

    def grad(self, x: Tensor) -> Tensor:
        return self.A.T @ self.residual(x) + self.l2 * x

    def value_and_grad(self, x: Tensor) -> tuple[Tensor, Tensor]:
        r = self.residual(x)
        value = 0.5 * (r @ r) + 0.5 * self.l2 * (x @ x)
        return value, self.A.T @ r + self.l2 * x

    @cached_property
    def _gram(self) -> Tensor:
        n = self.shape[0]
        eye = torch.eye(n, dtype=self.dtype, device=self.device)
        return self.A.T @ self.A + self.l2 * eye

    def hessian(self, x: Tensor) -> Tensor:
        return self._gram

    def gauss_newton(self, x: Tensor) -> Tensor:
        """Exact for least squares: ``A^T A + l2 I``."""
        return self._gram

    def hvp(self, x: Tensor, v: Tensor) -> Tensor:
        return self.A.T @ (self.A @ v) + self.l2 * v

    @cached_property
    def _spectrum(self) -> tuple[float, float]:
        hi, lo = _gram_extremes(self.A)
        return hi + self.l2, lo + self.l2

    @property
    def L(self) -> float:
        return self._spectrum[0]

    @property
    def mu(self) -> float:
        return self._spectrum[1]

    @cached_property
    def x_star(self) -> Tensor:
        A64, b64 = self.A.to(torch.float64), self.b.to(torch.float64)
        if self.l2 == 0:
            return (
                torch.linalg.lstsq(A64, b64.unsqueeze(1)).solution[:, 0].to(self.dtype)
            )
        G = A64.T @ A64 + self.l2 * torch.eye(self.shape[0], dtype=torch.float64)
        return torch.linalg.solve(G, A64.T @ b64).to(self.dtype)


# -- classification ------------------------------------------------------------------


def _signed_labels(y: Any, dtype: torch.dtype, device: torch.device) -> Tensor:
    y_np = np.asarray(y.cpu() if isinstance(y, torch.Tensor) else y)
    values = set(np.unique(y_np).tolist())
    if values <= {0, 1}:
        signed = 2.0 * y_np.astype(float) - 1.0
    elif values <= {-1, 1}:
        signed = y_np.astype(float)
    else:
        raise ValueError(
            "Logistic needs binary labels in {0, 1} or {-1, +1}, got "
            f"{sorted(values)}"
        )
    return torch.as_tensor(signed, dtype=dtype, device=device)


class Logistic(FixtureProblem, SmoothProblem):
    """L2-regularised logistic regression, mean loss, no intercept.

    ``f(w) = (1/n) sum_i log(1 + exp(-y_i x_i^T w)) + l2/2 ||w||^2``.

    Compare with ``sklearn.linear_model.LogisticRegression(C=1/(n l2),
    fit_intercept=False)``, which minimizes ``n C f(w)`` (same minimizer). Append
    a column of ones to ``X`` for a (penalised) intercept.

    Attributes
    ----------
    X : Tensor (n, d)
        Features.
    y : Tensor (n,)
        Labels as ``-1.0 / +1.0`` (``{0, 1}`` inputs are mapped).
    l2 : float
        Ridge weight (``mu = l2``).
    C : float
        The scikit-learn ``C`` of the same problem, ``1 / (n l2)``.

    Hessian approximations: ``"gauss_newton"`` (the logistic loss as a two-term
    log-sum-exp with its ``-p p^T`` term dropped: weights ``sigma(-y z)`` instead
    of ``sigma(z) sigma(-z)``, an upper bound) and ``"fisher"`` (the fixed
    Böhning bound ``X^T X / (4 n) + l2 I``).

    Examples
    --------
    >>> X = torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    >>> p = Logistic(X, [0, 1], l2=1.0)
    >>> round(p.value(torch.zeros(2, dtype=torch.float64)).item(), 6)
    0.693147
    """

    fields = ("X", "y", "l2")
    #: declares :class:`~itersolve.optimize.bcd.LinearPredictorStructure`
    loss = "logistic"

    approximations = ("gauss_newton", "fisher")

    def __init__(self, X: Any, y: Any, *, l2: float = 1e-3) -> None:
        X_t = _tensor(X, "X")
        if X_t.ndim != 2:
            raise ValueError(f"X must be a matrix, got shape {tuple(X_t.shape)}")
        y_t = _signed_labels(y, X_t.dtype, X_t.device)
        if y_t.shape != (X_t.shape[0],):
            raise ValueError(
                f"y must have shape ({X_t.shape[0]},), got {tuple(y_t.shape)}"
            )
        self.X, self.y, self.l2 = X_t, y_t, _check_l2(l2)
        self.shape = (X_t.shape[1],)
        self.dtype, self.device = X_t.dtype, X_t.device
        self._hvp_cache = _PointCache()

    @property
    def C(self) -> float:
        return 1.0 / (self.X.shape[0] * self.l2) if self.l2 > 0 else float("inf")

    def value(self, x: Tensor) -> Tensor:
        margin = self.y * (self.X @ x)
        loss = torch.nn.functional.softplus(-margin).mean()
        return loss + 0.5 * self.l2 * (x @ x)

    def value_and_grad(self, x: Tensor) -> tuple[Tensor, Tensor]:
        margin = self.y * (self.X @ x)
        loss = torch.nn.functional.softplus(-margin).mean()
        weights = self.y * torch.sigmoid(-margin)
        grad = self.X.T @ weights * (-1.0 / self.X.shape[0]) + self.l2 * x
        return loss + 0.5 * self.l2 * (x @ x), grad

    def grad(self, x: Tensor) -> Tensor:
        return self.value_and_grad(x)[1]

    def _weighted_gram(self, weights: Tensor) -> Tensor:
        n = self.X.shape[0]
        H = self.X.T @ (self.X * (weights / n).unsqueeze(1))
        H.diagonal().add_(self.l2)
        return H

    def hessian(self, x: Tensor) -> Tensor:
        s = torch.sigmoid(self.X @ x)
        return self._weighted_gram(s * (1.0 - s))

    def _curvature_weights(self, x: Tensor) -> Tensor:
        s = torch.sigmoid(self.X @ x)
        return s * (1.0 - s) / self.X.shape[0]

    def hvp(self, x: Tensor, v: Tensor) -> Tensor:
        w = self._hvp_cache.get(x, self._curvature_weights)
        return self.X.T @ (w * (self.X @ v)) + self.l2 * v

    def gauss_newton(self, x: Tensor) -> Tensor:
        """``X^T diag(sigma(-y_i z_i)) X / n + l2 I`` (log-sum-exp Gauss–Newton)."""
        return self._weighted_gram(torch.sigmoid(-self.y * (self.X @ x)))

    @cached_property
    def _bohning(self) -> Tensor:
        return self._weighted_gram(
            torch.full((self.X.shape[0],), 0.25, dtype=self.dtype, device=self.device)
        )

    def fisher(self, x: Tensor) -> Tensor:
        """The constant upper bound ``X^T X / (4 n) + l2 I`` (Böhning)."""
        return self._bohning

    @cached_property
    def _L(self) -> float:
        return _gram_extremes(self.X)[0] / (4 * self.X.shape[0]) + self.l2

    @property
    def L(self) -> float:
        """``lambda_max(X^T X) / (4 n) + l2``."""
        return self._L

    @property
    def mu(self) -> float:
        """``l2`` (a valid lower bound on the curvature)."""
        return self.l2


class Softmax(FixtureProblem, SmoothProblem):
    """L2-regularised multinomial logistic (softmax) regression, no intercept.

    ``f(W) = (1/n) sum_i [logsumexp_k (x_i^T W_{:,k}) - x_i^T W_{:,y_i}]
    + l2/2 ||W||_F^2`` over ``W`` of shape ``(d, K)``.

    Compare with ``sklearn.linear_model.LogisticRegression(C=1/(n l2),
    fit_intercept=False)`` on multiclass data (multinomial loss; its ``coef_`` is
    ``W.T``). Hessians are ``(d K) x (d K)`` in the row-major flattening of ``W``.

    Attributes
    ----------
    X : Tensor (n, d)
    y : Tensor (n,) of int64 class indices in ``[0, K)``
    n_classes : int
        ``K``.
    l2 : float
    C : float
        ``1 / (n l2)``.

    Hessian approximation ``"gauss_newton"`` drops the ``-p p^T`` term of each
    sample's softmax Hessian: block diagonal over classes, ``X^T diag(p_k) X / n
    + l2 I`` per class.

    Examples
    --------
    >>> X = torch.eye(3, dtype=torch.float64)
    >>> p = Softmax(X, [0, 1, 2], l2=0.1)
    >>> round(p.value(torch.zeros(3, 3, dtype=torch.float64)).item(), 6)
    1.098612
    """

    fields = ("X", "y", "l2", "n_classes")
    #: declares :class:`~itersolve.optimize.bcd.LinearPredictorStructure`
    loss = "softmax"

    approximations = ("gauss_newton",)

    def __init__(
        self, X: Any, y: Any, *, l2: float = 1e-3, n_classes: int | None = None
    ) -> None:
        X_t = _tensor(X, "X")
        if X_t.ndim != 2:
            raise ValueError(f"X must be a matrix, got shape {tuple(X_t.shape)}")
        y_np = np.asarray(y.cpu() if isinstance(y, torch.Tensor) else y)
        if y_np.shape != (X_t.shape[0],):
            raise ValueError(
                f"y must have shape ({X_t.shape[0]},), got {tuple(y_np.shape)}"
            )
        if not np.issubdtype(y_np.dtype, np.integer) or y_np.min() < 0:
            raise ValueError("y must hold non-negative integer class indices")
        K = int(y_np.max()) + 1 if n_classes is None else int(n_classes)
        if K < 2 or y_np.max() >= K:
            raise ValueError(f"need at least 2 classes covering y, got n_classes={K}")
        self.X = X_t
        self.y = torch.as_tensor(y_np, dtype=torch.int64, device=X_t.device)
        self.n_classes = K
        self.l2 = _check_l2(l2)
        self.shape = (X_t.shape[1], K)
        self.dtype, self.device = X_t.dtype, X_t.device
        self._hvp_cache = _PointCache()

    @property
    def C(self) -> float:
        return 1.0 / (self.X.shape[0] * self.l2) if self.l2 > 0 else float("inf")

    @cached_property
    def _onehot(self) -> Tensor:
        return torch.nn.functional.one_hot(self.y, self.n_classes).to(self.dtype)

    def value(self, x: Tensor) -> Tensor:
        Z = self.X @ x
        loss = (torch.logsumexp(Z, dim=1) - Z.gather(1, self.y[:, None])[:, 0]).mean()
        return loss + 0.5 * self.l2 * (x * x).sum()

    def value_and_grad(self, x: Tensor) -> tuple[Tensor, Tensor]:
        Z = self.X @ x
        lse = torch.logsumexp(Z, dim=1, keepdim=True)
        loss = (lse[:, 0] - Z.gather(1, self.y[:, None])[:, 0]).mean()
        P = torch.exp(Z - lse)
        grad = self.X.T @ (P - self._onehot) / self.X.shape[0] + self.l2 * x
        return loss + 0.5 * self.l2 * (x * x).sum(), grad

    def grad(self, x: Tensor) -> Tensor:
        return self.value_and_grad(x)[1]

    def probabilities(self, x: Tensor) -> Tensor:
        return torch.softmax(self.X @ x, dim=1)

    def hvp(self, x: Tensor, v: Tensor) -> Tensor:
        P = self._hvp_cache.get(x, self.probabilities)
        XV = self.X @ v
        inner = P * XV - P * (P * XV).sum(dim=1, keepdim=True)
        return self.X.T @ inner / self.X.shape[0] + self.l2 * v

    def _block_diagonal(self, P: Tensor) -> Tensor:
        n, d = self.X.shape
        K = self.n_classes
        # blocks[k] = X^T diag(P[:, k]) X / n, placed at H[(i, k), (j, k)].
        blocks = torch.einsum("ni,nk,nj->kij", self.X, P / n, self.X)
        H = torch.zeros(d, K, d, K, dtype=self.dtype, device=self.device)
        idx = torch.arange(K, device=self.device)
        H[:, idx, :, idx] = blocks
        H = H.reshape(d * K, d * K)
        H.diagonal().add_(self.l2)
        return H

    def hessian(self, x: Tensor) -> Tensor:
        n, d = self.X.shape
        P = self.probabilities(x)
        H = self._block_diagonal(P)
        Z = (self.X.unsqueeze(2) * P.unsqueeze(1)).reshape(n, d * self.n_classes)
        return H - Z.T @ Z / n

    def gauss_newton(self, x: Tensor) -> Tensor:
        """Block-diagonal ``X^T diag(p_k) X / n + l2 I`` (drops ``-p p^T``)."""
        return self._block_diagonal(self.probabilities(x))

    @cached_property
    def _L(self) -> float:
        return _gram_extremes(self.X)[0] / self.X.shape[0] + self.l2

    @property
    def L(self) -> float:
        """``lambda_max(X^T X) / n + l2`` (an upper bound: softmax curvature <= 1)."""
        return self._L

    @property
    def mu(self) -> float:
        return self.l2


class LogSumExp(FixtureProblem, SmoothProblem):
    """``f(x) = mu log sum_i exp((a_i^T x - b_i) / mu) + l2/2 ||x||^2``.

    A smooth maximum of affine functions (the test problem of Semenov, Jaggi and
    Doikov 2025). Hessian ``(1/mu) A^T (diag p - p p^T) A + l2 I`` with
    ``p = softmax((A x - b) / mu)``; the ``"gauss_newton"`` approximation drops
    ``-p p^T``.

    Attributes
    ----------
    A : Tensor (m, n)
    b : Tensor (m,)
    mu_smoothing : float
        The temperature ``mu`` (named so to avoid clashing with strong convexity).
    l2 : float

    Examples
    --------
    >>> p = LogSumExp(torch.eye(2, dtype=torch.float64), torch.zeros(2), mu=1.0)
    >>> round(p.value(torch.zeros(2, dtype=torch.float64)).item(), 6)
    0.693147
    """

    fields = ("A", "b", "mu", "l2")

    approximations = ("gauss_newton",)

    def __init__(self, A: Any, b: Any, *, mu: float = 0.05, l2: float = 0.0) -> None:
        A_t = _tensor(A, "A")
        b_t = _tensor(b, "b", dtype=A_t.dtype)
        if A_t.ndim != 2 or b_t.shape != (A_t.shape[0],):
            raise ValueError(
                f"need A of shape (m, n) and b of shape (m,), got {tuple(A_t.shape)} "
                f"and {tuple(b_t.shape)}"
            )
        if not mu > 0:
            raise ValueError(f"mu must be > 0, got {mu}")
        self.A, self.b = A_t, b_t
        self.mu_smoothing, self.l2 = float(mu), _check_l2(l2)
        self.shape = (A_t.shape[1],)
        self.dtype, self.device = A_t.dtype, A_t.device

    @classmethod
    def random(
        cls,
        m: int,
        n: int,
        *,
        mu: float = 0.05,
        l2: float = 0.0,
        seed: int = 0,
        dtype: torch.dtype = torch.float64,
    ) -> LogSumExp:
        """Seeded ``A`` with entries uniform in ``[-1, 1]`` and ``b`` likewise."""
        gen = torch.Generator().manual_seed(seed)
        A = 2 * torch.rand(m, n, generator=gen, dtype=torch.float64) - 1
        b = 2 * torch.rand(m, generator=gen, dtype=torch.float64) - 1
        return cls(A.to(dtype), b.to(dtype), mu=mu, l2=l2)

    def arguments(self) -> dict[str, Any]:
        return {"A": self.A, "b": self.b, "mu": self.mu_smoothing, "l2": self.l2}

    def _scores(self, x: Tensor) -> Tensor:
        return (self.A @ x - self.b) / self.mu_smoothing

    def value(self, x: Tensor) -> Tensor:
        return self.mu_smoothing * torch.logsumexp(
            self._scores(x), 0
        ) + 0.5 * self.l2 * (x @ x)

    def value_and_grad(self, x: Tensor) -> tuple[Tensor, Tensor]:
        s = self._scores(x)
        lse = torch.logsumexp(s, 0)
        p = torch.exp(s - lse)
        value = self.mu_smoothing * lse + 0.5 * self.l2 * (x @ x)
        return value, self.A.T @ p + self.l2 * x

    def grad(self, x: Tensor) -> Tensor:
        return self.value_and_grad(x)[1]

    def gauss_newton(self, x: Tensor) -> Tensor:
        p = torch.softmax(self._scores(x), 0)
        H = self.A.T @ (self.A * (p / self.mu_smoothing).unsqueeze(1))
        H.diagonal().add_(self.l2)
        return H

    def hessian(self, x: Tensor) -> Tensor:
        p = torch.softmax(self._scores(x), 0)
        Ap = self.A.T @ p
        return self.gauss_newton(x) - torch.outer(Ap, Ap) / self.mu_smoothing

    def hvp(self, x: Tensor, v: Tensor) -> Tensor:
        p = torch.softmax(self._scores(x), 0)
        Av = self.A @ v
        inner = p * Av - p * (p @ Av)
        return self.A.T @ inner / self.mu_smoothing + self.l2 * v

    @property
    def L(self) -> float:
        """``lambda_max(A^T A) / mu + l2`` (an upper bound)."""
        return _gram_extremes(self.A)[0] / self.mu_smoothing + self.l2

    @property
    def mu(self) -> float | None:
        return self.l2 if self.l2 > 0 else None


class Rosenbrock(FixtureProblem, SmoothProblem):
    """The chained Rosenbrock function ``sum_i 100 (x_{i+1} - x_i^2)^2 +
    (1 - x_i)^2``, minimizer ``x* = 1`` with ``f* = 0``.

    Equivalent to ``scipy.optimize.rosen`` / ``rosen_der`` / ``rosen_hess``.
    Non-convex; ``"gauss_newton"`` is ``2 J^T J`` of the residuals
    ``(10 (x_{i+1} - x_i^2), 1 - x_i)``.

    Attributes
    ----------
    n : int
        Dimension (>= 2).

    Examples
    --------
    >>> Rosenbrock(2).value(torch.tensor([1.0, 1.0], dtype=torch.float64)).item()
    0.0
    """

    fields = ("n", "dtype", "device")

    approximations = ("gauss_newton",)

    def __init__(
        self,
        n: int = 2,
        *,
        dtype: torch.dtype = torch.float64,
        device: torch.device | str = "cpu",
    ) -> None:
        if not (isinstance(n, int) and n >= 2):
            raise ValueError(f"n must be an int >= 2, got {n!r}")
        self.n = n
        self.shape = (n,)
        self.dtype, self.device = dtype, torch.device(device)

    def value(self, x: Tensor) -> Tensor:
        return (100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2).sum()

    def grad(self, x: Tensor) -> Tensor:
        t = x[1:] - x[:-1] ** 2
        g = torch.zeros_like(x)
        g[:-1] = -400.0 * x[:-1] * t - 2.0 * (1.0 - x[:-1])
        g[1:] += 200.0 * t
        return g

    def hessian(self, x: Tensor) -> Tensor:
        diag = torch.zeros_like(x)
        diag[:-1] = 1200.0 * x[:-1] ** 2 - 400.0 * x[1:] + 2.0
        diag[1:] += 200.0
        off = -400.0 * x[:-1]
        return torch.diag(diag) + torch.diag(off, 1) + torch.diag(off, -1)

    def gauss_newton(self, x: Tensor) -> Tensor:
        diag = torch.zeros_like(x)
        diag[:-1] = 800.0 * x[:-1] ** 2 + 2.0
        diag[1:] += 200.0
        off = -400.0 * x[:-1]
        return torch.diag(diag) + torch.diag(off, 1) + torch.diag(off, -1)

    @property
    def x_star(self) -> Tensor:
        return torch.ones(self.n, dtype=self.dtype, device=self.device)

    def x0(self) -> Tensor:
        """The classical start ``(-1.2, 1, -1.2, 1, ...)``."""
        x = torch.ones(self.n, dtype=self.dtype, device=self.device)
        x[::2] = -1.2
        return x


class LessardCounterexample(FixtureProblem, SmoothProblem):
    """The 1-D function of Lessard, Recht and Packard (2016, Sec. 4.6) with
    ``L = 25``, ``mu = 1``, ``x* = 0``::

        f'(x) = 25 x          (x < 1)
                x + 24        (1 <= x < 2)
                25 x - 24     (x >= 2)

    Heavy ball with the quadratic-optimal parameters ``alpha = 4 / (sqrt(L) +
    sqrt(mu))^2 = 1/9``, ``beta = ((sqrt(kappa) - 1)/(sqrt(kappa) + 1))^2 = 4/9``
    falls into a limit cycle from ``x0`` around 3.3; Nesterov and triple momentum
    converge.

    Examples
    --------
    >>> p = LessardCounterexample()
    >>> p.grad(torch.tensor([1.5], dtype=torch.float64)).item()
    25.5
    """

    fields = ("dtype", "device")

    def __init__(
        self, *, dtype: torch.dtype = torch.float64, device: torch.device | str = "cpu"
    ) -> None:
        self.shape = (1,)
        self.dtype, self.device = dtype, torch.device(device)

    def value(self, x: Tensor) -> Tensor:
        f = torch.where(
            x < 1,
            12.5 * x**2,
            torch.where(x < 2, 0.5 * x**2 + 24 * x - 12, 12.5 * x**2 - 24 * x + 36),
        )
        return f.sum()

    def grad(self, x: Tensor) -> Tensor:
        return torch.where(x < 1, 25 * x, torch.where(x < 2, x + 24, 25 * x - 24))

    def hessian(self, x: Tensor) -> Tensor:
        h = torch.where((x >= 1) & (x < 2), 1.0, 25.0).to(self.dtype)
        return torch.diag(h)

    @property
    def L(self) -> float:
        return 25.0

    @property
    def mu(self) -> float:
        return 1.0

    @property
    def x_star(self) -> Tensor:
        return torch.zeros(1, dtype=self.dtype, device=self.device)

    def x0(self) -> Tensor:
        """A start inside heavy ball's basin of the limit cycle."""
        return torch.tensor([3.3], dtype=self.dtype, device=self.device)


def lessard_counterexample(dtype: torch.dtype = torch.float64) -> LessardCounterexample:
    """The Lessard–Recht–Packard heavy-ball counterexample (see the class).

    Examples
    --------
    >>> from itersolve.problems import lessard_counterexample
    >>> problem = lessard_counterexample()
    >>> problem.L, problem.mu
    (25.0, 1.0)
    """
    return LessardCounterexample(dtype=dtype)


# -- data sets -----------------------------------------------------------------------


def _standardize(X: np.ndarray) -> np.ndarray:
    scale = X.std(axis=0)
    scale[scale == 0] = 1.0
    return (X - X.mean(axis=0)) / scale


def breast_cancer_data(
    *, standardize: bool = True, dtype: torch.dtype = torch.float64
) -> tuple[Tensor, Tensor]:
    """scikit-learn's bundled Wisconsin breast cancer set: ``X`` (569, 30) and
    ``y`` in ``{0, 1}`` (float); columns standardized by default. No download.

    Examples
    --------
    >>> from itersolve.problems import breast_cancer_data
    >>> X, y = breast_cancer_data()
    >>> tuple(X.shape), tuple(y.shape)
    ((569, 30), (569,))
    """
    from sklearn.datasets import load_breast_cancer

    X, y = load_breast_cancer(return_X_y=True)
    X = _standardize(X) if standardize else X
    return torch.as_tensor(X, dtype=dtype), torch.as_tensor(y, dtype=dtype)


def digits_data(
    *, standardize: bool = True, dtype: torch.dtype = torch.float64
) -> tuple[Tensor, Tensor]:
    """scikit-learn's bundled digits: ``X`` (1797, 64) and int64 ``y`` in
    ``[0, 10)``; pixels standardized by default (constant pixels left at 0).

    Examples
    --------
    >>> from itersolve.problems import digits_data
    >>> X, y = digits_data()
    >>> tuple(X.shape), int(y.max()) + 1
    ((1797, 64), 10)
    """
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    X = _standardize(X) if standardize else X / 16.0
    return torch.as_tensor(X, dtype=dtype), torch.as_tensor(y, dtype=torch.int64)


def synthetic_classification(
    n: int,
    d: int,
    *,
    condition_number: float = 1e3,
    n_classes: int = 2,
    noise: float = 0.5,
    seed: int = 0,
    dtype: torch.dtype = torch.float64,
) -> tuple[Tensor, Tensor]:
    """Ill-conditioned Gaussian features and labels from a planted linear model.

    Columns of ``X`` are scaled so the singular values of ``X / sqrt(n)`` are
    log-spaced in ``[1/condition_number, 1]`` (up to sampling noise), then mixed
    by a random rotation. Labels: ``argmax`` of ``X W + noise * Gumbel`` for a
    random ``W`` (``n_classes = 2`` gives ``{0, 1}`` labels for
    :class:`Logistic`). Deterministic in ``seed``.

    Examples
    --------
    >>> from itersolve.problems import synthetic_classification
    >>> X, y = synthetic_classification(100, 5, condition_number=10.0)
    >>> tuple(X.shape), sorted(set(y.tolist()))
    ((100, 5), [0, 1])
    """
    if n < 1 or d < 1:
        raise ValueError(f"n and d must be >= 1, got n={n}, d={d}")
    if not condition_number >= 1:
        raise ValueError(f"condition_number must be >= 1, got {condition_number}")
    if n_classes < 2:
        raise ValueError(f"n_classes must be >= 2, got {n_classes}")
    rng = np.random.default_rng(seed)
    scales = np.logspace(0.0, -np.log10(condition_number), d)
    Q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    X = (rng.standard_normal((n, d)) * scales) @ Q.T
    W = rng.standard_normal((d, n_classes)) * 3.0
    scores = X @ (Q @ W) + noise * rng.gumbel(size=(n, n_classes))
    y = scores.argmax(axis=1)
    return torch.as_tensor(X, dtype=dtype), torch.as_tensor(y, dtype=torch.int64)


def breast_cancer_logistic(l2: float = 1e-3) -> Logistic:
    """:class:`Logistic` on standardized breast_cancer (569 x 30).

    Examples
    --------
    >>> from itersolve import minimize
    >>> from itersolve.problems import breast_cancer_logistic
    >>> problem = breast_cancer_logistic()
    >>> minimize(problem, problem.x0()).success
    True
    """
    X, y = breast_cancer_data()
    return Logistic(X, y, l2=l2)


def digits_softmax(l2: float = 1e-3) -> Softmax:
    """:class:`Softmax` on standardized digits (1797 x 64, 10 classes).

    Examples
    --------
    >>> from itersolve.problems import digits_softmax
    >>> tuple(digits_softmax().x0().shape)  # features x classes
    (64, 10)
    """
    X, y = digits_data()
    return Softmax(X, y, l2=l2)


def synthetic_logistic(
    n: int = 2000,
    d: int = 100,
    *,
    l2: float = 1e-3,
    condition_number: float = 1e3,
    seed: int = 0,
) -> Logistic:
    """:class:`Logistic` on :func:`synthetic_classification` data.

    Examples
    --------
    >>> from itersolve.problems import synthetic_logistic
    >>> tuple(synthetic_logistic(200, 10).x0().shape)
    (10,)
    """
    X, y = synthetic_classification(n, d, condition_number=condition_number, seed=seed)
    return Logistic(X, y, l2=l2)


def as_problem_dtype(problem: Any, dtype: torch.dtype) -> Any:
    """``problem.to(dtype)`` when ``problem`` is a :class:`SmoothProblem` of
    another dtype; ``problem`` unchanged otherwise."""
    if isinstance(problem, SmoothProblem) and problem.dtype != floating_dtype(dtype):
        return problem.to(dtype=dtype)
    return problem
