"""Quadratic (vech) value features: ``V(x) = w . vech_features(x)``."""

from __future__ import annotations

import numpy as np


def vech_features(x: np.ndarray) -> np.ndarray:
    """Quadratic basis ``[x_i x_j for i <= j]`` (``n(n+1)/2`` features), batched
    over leading axes. Avoids the duplicate columns of ``x kron x``.

    Examples
    --------
    >>> vech_features(np.array([1.0, 2.0]))
    array([1., 2., 4.])
    """
    n = x.shape[-1]
    i, j = np.triu_indices(n)
    return x[..., i] * x[..., j]


def vech_gradient(x: np.ndarray) -> np.ndarray:
    """Jacobian of :func:`vech_features`: shape ``(..., n(n+1)/2, n)``.

    Examples
    --------
    >>> import numpy as np
    >>> from itersolve.control import vech_features, vech_gradient
    >>> x, dx = np.array([1.0, 2.0]), np.array([1e-6, 0.0])
    >>> fd = (vech_features(x + dx) - vech_features(x)) / 1e-6
    >>> np.allclose(vech_gradient(x)[:, 0], fd, atol=1e-5)
    True
    """
    n = x.shape[-1]
    i, j = np.triu_indices(n)
    p = i.size
    grad = np.zeros((*x.shape[:-1], p, n))
    k = np.arange(p)
    grad[..., k, i] += x[..., j]
    grad[..., k, j] += x[..., i]
    return grad


def vech_to_matrix(w: np.ndarray, n: int) -> np.ndarray:
    """Symmetric ``P`` with ``x^T P x = w . vech_features(x)``.

    Examples
    --------
    >>> import numpy as np
    >>> from itersolve.control import vech_features, vech_to_matrix
    >>> w, x = np.array([1.0, 2.0, 3.0]), np.array([0.5, -1.0])
    >>> P = vech_to_matrix(w, 2)
    >>> bool(np.isclose(x @ P @ x, w @ vech_features(x)))
    True
    """
    i, j = np.triu_indices(n)
    P = np.zeros((n, n))
    P[i, j] = np.where(i == j, w, w / 2)
    P[j, i] = P[i, j]
    return P


def matrix_to_vech(P: np.ndarray) -> np.ndarray:
    """Inverse of :func:`vech_to_matrix`.

    Examples
    --------
    >>> import numpy as np
    >>> from itersolve.control import matrix_to_vech, vech_to_matrix
    >>> P = np.array([[2.0, 0.5], [0.5, 1.0]])
    >>> np.allclose(vech_to_matrix(matrix_to_vech(P), 2), P)
    True
    """
    n = P.shape[0]
    i, j = np.triu_indices(n)
    return np.where(i == j, P[i, j], 2 * P[i, j])
