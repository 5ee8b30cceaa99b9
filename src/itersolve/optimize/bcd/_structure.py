"""The structures block coordinate descent exploits, as protocols a problem
implements by having the attributes.

A problem handed to :func:`~itersolve.optimize.minimize` with
:class:`~itersolve.optimize.BlockCoordinateDescent` runs on an incremental
coordinate model (``O(n)`` greedy steps, exact block bounds) when it satisfies
one of these protocols, and on the generic objective path (full gradients)
otherwise. The library's own problems implement them the same way a user's class
does: nothing is chosen by the class, only by the attributes.

* :class:`L1LeastSquaresStructure` -- ``scale/2 ||A x - b||^2 + h(x)``, ``h`` an
  :class:`~itersolve.optimize.bcd.L1Penalty` (Lasso, non-negative least squares
  + L1). With a scipy sparse ``A``, float64 on CPU, single coordinates and a
  greedy rule this is the compiled greedy path.
* :class:`LeastSquaresStructure` -- ``1/2 ||A x - b||^2 + l2/2 ||x||^2``.
* :class:`QuadraticStructure` -- ``1/2 x^T Q x - c^T x`` (``Q`` symmetric).
* :class:`LinearPredictorStructure` -- ``1/m sum_i loss(x_i^T W, y_i) + l2/2
  ||W||^2`` with the logistic or softmax loss.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import torch

from itersolve.optimize.bcd._proximal import L1Penalty


@runtime_checkable
class L1LeastSquaresStructure(Protocol):
    """``f(x) = scale/2 ||A x - b||^2 + penalty(x)`` (``+ l2/2 ||x||^2`` when the
    problem also has an ``l2`` attribute: the elastic net).

    Attributes
    ----------
    A
        ``(m, n)`` data matrix: numpy array, torch tensor or scipy/torch sparse.
    b
        ``(m,)`` target.
    scale
        Weight of the squared residual (``1 / m`` for scikit-learn's Lasso).
    penalty
        An :class:`~itersolve.optimize.bcd.L1Penalty`: ``lam ||x||_1``, plus
        ``x >= 0`` when ``nonnegative``.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> class MyLasso:
    ...     def __init__(self, X, y, alpha):
    ...         self.A, self.b, self.scale = X, y, 1.0 / X.shape[0]
    ...         self.penalty = L1Penalty(alpha)
    >>> isinstance(MyLasso(sp.eye(3).tocsr(), np.ones(3), 0.1), L1LeastSquaresStructure)
    True
    """

    A: Any
    b: Any
    scale: float
    penalty: L1Penalty


@runtime_checkable
class LeastSquaresStructure(Protocol):
    """``f(x) = 1/2 ||A x - b||^2 + l2/2 ||x||^2``; ``residual(x) = A x - b``.

    ``A`` is dense or sparse ``(m, n)``, ``b`` has ``m`` entries, ``l2 >= 0``.
    ``residual`` marks the objective as a sum of squares (a class holding ``A``,
    ``b`` and ``l2`` for another objective does not match).

    Examples
    --------
    >>> import numpy as np
    >>> from itersolve.problems import LeastSquares
    >>> isinstance(LeastSquares(np.eye(2), np.ones(2)), LeastSquaresStructure)
    True
    """

    A: Any
    b: Any
    l2: float

    def residual(self, x: torch.Tensor) -> torch.Tensor: ...


@runtime_checkable
class QuadraticStructure(Protocol):
    """``f(x) = 1/2 x^T Q x - c^T x`` with ``Q`` symmetric ``(n, n)`` (dense or
    sparse; a sparse ``Q`` enables forest blocks and message passing).

    Examples
    --------
    >>> import numpy as np
    >>> class Chain:
    ...     Q, c = np.array([[2.0, -1.0], [-1.0, 2.0]]), np.ones(2)
    >>> isinstance(Chain(), QuadraticStructure)
    True
    """

    Q: Any
    c: Any


@runtime_checkable
class LinearPredictorStructure(Protocol):
    """``f(W) = 1/m sum_i loss(x_i^T W, y_i) + l2/2 ||W||^2`` over the ``m`` rows
    ``x_i`` of ``X``.

    ``loss`` is ``"logistic"`` (``y_i`` in {-1, +1}, ``W`` of shape ``(d,)``) or
    ``"softmax"`` (``y_i`` class indices in ``[0, K)``, ``W`` of shape ``(d, K)``).

    Examples
    --------
    >>> import numpy as np
    >>> class Ridge:
    ...     X, y, l2 = np.eye(2), np.ones(2), 0.1
    >>> isinstance(Ridge(), LinearPredictorStructure)  # no loss: not matched
    False
    """

    X: Any
    y: Any
    l2: float
    loss: str


@dataclass(frozen=True)
class LeastSquaresTerms:
    """``scale/2 ||A x - b||^2 + l2/2 ||x||^2 + penalty(x)``."""

    A: Any
    b: Any
    scale: float = 1.0
    l2: float = 0.0
    penalty: L1Penalty | None = None


@dataclass(frozen=True)
class QuadraticTerms:
    """``1/2 x^T Q x - c^T x``."""

    Q: Any
    c: Any


@dataclass(frozen=True)
class LinearPredictorTerms:
    """``scale sum_i loss(x_i^T W, Y_i) + l2/2 ||W||^2`` (``Y`` one-hot for
    softmax)."""

    X: Any
    Y: torch.Tensor
    loss: str
    scale: float
    l2: float


Terms = LeastSquaresTerms | QuadraticTerms | LinearPredictorTerms


def _linear_predictor(X: Any, y: Any, l2: float, loss: str, K: int) -> Terms:
    if loss not in ("logistic", "softmax"):
        raise ValueError(f"loss must be 'logistic' or 'softmax', got {loss!r}")
    y_t = torch.as_tensor(y)
    if loss == "softmax":
        Y = torch.nn.functional.one_hot(y_t.to(torch.int64), K)
    else:
        Y = y_t
    return LinearPredictorTerms(X, Y, loss, 1.0 / X.shape[0], float(l2))


def coordinate_terms(source: Any, x0: torch.Tensor) -> Terms | None:
    """The structure ``source`` declares (the first protocol it satisfies, in
    the order of the module docstring), or ``None`` for the generic path."""
    if isinstance(source, L1LeastSquaresStructure) and isinstance(
        source.penalty, L1Penalty
    ):
        return LeastSquaresTerms(
            source.A,
            source.b,
            scale=float(source.scale),
            l2=float(getattr(source, "l2", 0.0)),  # optional ridge (elastic net)
            penalty=source.penalty,
        )
    if isinstance(source, LeastSquaresStructure):
        return LeastSquaresTerms(source.A, source.b, l2=float(source.l2))
    if isinstance(source, QuadraticStructure):
        return QuadraticTerms(source.Q, source.c)
    if isinstance(source, LinearPredictorStructure):
        K = 1 if x0.ndim == 1 else int(x0.shape[1])
        return _linear_predictor(source.X, source.y, source.l2, source.loss, K)
    return None
