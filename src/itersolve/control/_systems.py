"""Control-affine test systems with quadratic (vech) value features."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.linalg as sla


def vech_features(x: np.ndarray) -> np.ndarray:
    """Quadratic basis ``[x_i x_j for i <= j]`` (``n(n+1)/2`` features), batched
    over leading axes. Avoids the duplicate columns of ``x kron x``.

    >>> vech_features(np.array([1.0, 2.0]))
    array([1., 2., 4.])
    """
    n = x.shape[-1]
    i, j = np.triu_indices(n)
    return x[..., i] * x[..., j]


def vech_gradient(x: np.ndarray) -> np.ndarray:
    """Jacobian of :func:`vech_features`: shape ``(..., n(n+1)/2, n)``."""
    n = x.shape[-1]
    i, j = np.triu_indices(n)
    p = i.size
    grad = np.zeros((*x.shape[:-1], p, n))
    k = np.arange(p)
    grad[..., k, i] += x[..., j]
    grad[..., k, j] += x[..., i]
    return grad


def vech_to_matrix(w: np.ndarray, n: int) -> np.ndarray:
    """Symmetric ``P`` with ``x^T P x = w . vech_features(x)``."""
    i, j = np.triu_indices(n)
    P = np.zeros((n, n))
    P[i, j] = np.where(i == j, w, w / 2)
    P[j, i] = P[i, j]
    return P


def matrix_to_vech(P: np.ndarray) -> np.ndarray:
    """Inverse of :func:`vech_to_matrix`."""
    n = P.shape[0]
    i, j = np.triu_indices(n)
    return np.where(i == j, P[i, j], 2 * P[i, j])


@dataclass(frozen=True, eq=False)
class ControlAffineSystem:
    """``dx/dt = f(x) + g(x) u``, running cost ``x^T Q x + u^T R u``.

    The value is approximated by ``V(x) = w . vech_features(x)``;
    ``w0`` defines the initial (stabilising) policy
    ``u(x) = -1/2 R^{-1} g(x)^T grad_phi(x)^T w``; ``w_star`` is the optimum when
    known. ``A``/``B`` are set for linear systems (then data are generated with
    the exact matrix exponential instead of an ODE solver).
    """

    name: str
    f: Callable[[np.ndarray], np.ndarray]
    g: Callable[[np.ndarray], np.ndarray]
    Q: np.ndarray
    R: np.ndarray
    x0: np.ndarray
    w0: np.ndarray
    n_windows: int
    w_star: np.ndarray | None = None
    A: np.ndarray | None = None
    B: np.ndarray | None = None

    @property
    def n(self) -> int:
        return int(self.x0.size)

    def policy(self, w: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
        Rinv = np.linalg.inv(self.R)

        def u(x: np.ndarray) -> np.ndarray:
            dV = np.einsum("...p,...pn->...n", w, vech_gradient(x))
            gx = self.g(x)  # (..., n, m)
            return -0.5 * np.einsum("mk,...nk,...n->...m", Rinv, gx, dV)

        return u

    def running_cost(self, x: np.ndarray, u: np.ndarray) -> np.ndarray:
        return np.einsum("...i,ij,...j->...", x, self.Q, x) + np.einsum(
            "...i,ij,...j->...", u, self.R, u
        )


def third_order_linear() -> ControlAffineSystem:
    """Example 1 of Cao & Pan (ICLR 2024): 3rd-order linear, Q = I, R = 1, K0 = 0.

    ``A = [[0, 1, 0], [0, 0, 1], [-0.1, -0.5, -0.7]]`` (Hurwitz), ``B = e_3``,
    ``x0 = [2, -2, 3]``; ``w_star`` from ``scipy.linalg.solve_continuous_are``
    (``K* = [0.90499, 1.89310, 1.59700]``).

    Examples
    --------
    >>> s = third_order_linear()
    >>> np.round(np.linalg.solve(s.R, s.B.T @ vech_to_matrix(s.w_star, 3)), 5)
    array([[0.90499, 1.8931 , 1.597  ]])
    """
    A = np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [-0.1, -0.5, -0.7]])
    B = np.array([[0.0], [0.0], [1.0]])
    Q, R = np.eye(3), np.eye(1)
    P = sla.solve_continuous_are(A, B, Q, R)
    return ControlAffineSystem(
        "third-order-linear",
        lambda x: x @ A.T,
        lambda x: np.broadcast_to(B, (*x.shape[:-1], 3, 1)),
        Q,
        R,
        np.array([2.0, -2.0, 3.0]),
        np.zeros(6),
        10,
        matrix_to_vech(P),
        A,
        B,
    )


def sin_system() -> ControlAffineSystem:
    """Example 2 of Cao & Pan (ICLR 2024): nonlinear, known optimum.

    ``x1' = -x1 + x2``, ``x2' = -(x1 + x2)/2 + x2 sin(x1)^2 / 2 + sin(x1) u``,
    Q = I, R = 1; ``V* = x1^2/2 + x2^2`` (``w* = [0.5, 0, 1]``),
    ``u* = -sin(x1) x2``; ``w0 = [-1, 3, 1.5]``, ``x0 = [1, 1]``.

    Examples
    --------
    >>> s = sin_system()
    >>> bool(s.policy(s.w_star)(np.array([0.3, 2.0]))[0] == -np.sin(0.3) * 2.0)
    True
    """

    def f(x: np.ndarray) -> np.ndarray:
        x1, x2 = x[..., 0], x[..., 1]
        return np.stack(
            [-x1 + x2, -0.5 * (x1 + x2) + 0.5 * x2 * np.sin(x1) ** 2], axis=-1
        )

    def g(x: np.ndarray) -> np.ndarray:
        zero = np.zeros_like(x[..., 0])
        return np.stack([zero, np.sin(x[..., 0])], axis=-1)[..., None]

    return ControlAffineSystem(
        "sin-system",
        f,
        g,
        np.eye(2),
        np.eye(1),
        np.array([1.0, 1.0]),
        np.array([-1.0, 3.0, 1.5]),
        20,
        np.array([0.5, 0.0, 1.0]),
    )
