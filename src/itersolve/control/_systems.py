"""Control-affine test systems of Cao & Pan (ICLR 2024) with known optima."""

from __future__ import annotations

import numpy as np
import scipy.linalg as sla

from itersolve.control._features import matrix_to_vech
from itersolve.control._problem import ControlAffineSystem


def third_order_linear() -> ControlAffineSystem:
    """Example 1 of Cao & Pan (ICLR 2024): 3rd-order linear, Q = I, R = 1, K0 = 0.

    ``A = [[0, 1, 0], [0, 0, 1], [-0.1, -0.5, -0.7]]`` (Hurwitz), ``B = e_3``,
    ``x0 = [2, -2, 3]``; ``w_star`` from ``scipy.linalg.solve_continuous_are``
    (``K* = [0.90499, 1.89310, 1.59700]``).

    Examples
    --------
    >>> from itersolve.control import vech_to_matrix
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
