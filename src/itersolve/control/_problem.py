"""The control problem types (LQR, matrix sign, IntRL) and their validation."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from itersolve._core.tensors import ArrayInfo, as_tensor, is_finite, result_dtype
from itersolve.control._features import vech_gradient


@dataclass(frozen=True)
class LQRProblem:
    """``dx/dt = A x + B u``, cost ``int x^T Q x + u^T R u dt`` (batched).

    Examples
    --------
    >>> import torch
    >>> from itersolve.control import LQRProblem
    >>> eye = torch.eye(2, dtype=torch.float64)
    >>> problem = LQRProblem(-eye, eye, eye, eye)
    >>> problem.A.shape
    torch.Size([2, 2])
    """

    A: torch.Tensor
    B: torch.Tensor
    Q: torch.Tensor
    R: torch.Tensor

    def gain(self, P: torch.Tensor) -> torch.Tensor:
        return torch.linalg.solve(self.R, self.B.mT @ P)


@dataclass(frozen=True)
class SignProblem:
    """``sign(Z0)`` for a batch of square ``Z0``; with ``Q`` the sign of the
    block-triangular ``[[A^T, Q], [0, -A]]`` (``Z0 = A``), whose iteration needs
    only ``n x n`` inverses: its ``(1, 2)`` block converges to ``2 X`` with
    ``A^T X + X A + Q = 0`` when ``A`` is Hurwitz (Roberts 1971).

    Examples
    --------
    >>> import torch
    >>> from itersolve import iterate
    >>> from itersolve.control import MatrixSign, SignProblem
    >>> Z = torch.diag(torch.tensor([-2.0, 3.0], dtype=torch.float64))
    >>> state, sol = iterate(MatrixSign(), SignProblem(), Z)
    >>> torch.diagonal(state.x).tolist()
    [-1.0, 1.0]
    """

    Q: torch.Tensor | None = None


@dataclass(frozen=True, eq=False)
class ControlAffineSystem:
    """``dx/dt = f(x) + g(x) u``, running cost ``x^T Q x + u^T R u``.

    The value is approximated by ``V(x) = w . vech_features(x)``;
    ``w0`` defines the initial (stabilising) policy
    ``u(x) = -1/2 R^{-1} g(x)^T grad_phi(x)^T w``; ``w_star`` is the optimum when
    known. ``A``/``B`` are set for linear systems (then data are generated with
    the exact matrix exponential instead of an ODE solver).

    Examples
    --------
    >>> from itersolve.control import third_order_linear
    >>> system = third_order_linear()
    >>> system.Q.shape, system.R.shape, system.x0.shape
    ((3, 3), (1, 1), (3,))
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


def square(name: str, M: torch.Tensor, n: int | None = None) -> int:
    """The size of the square (batched) ``M``; ``n`` is the size it must have."""
    if M.ndim < 2 or M.shape[-1] != M.shape[-2]:
        raise ValueError(f"{name} must be square (..., n, n), got {tuple(M.shape)}")
    if n is not None and M.shape[-1] != n:
        raise ValueError(f"{name} must be {n}x{n}, got {tuple(M.shape[-2:])}")
    return int(M.shape[-1])


def check_symmetric(name: str, M: torch.Tensor) -> None:
    """SciPy's test in ``solve_continuous_are``: ``||M - M^T||_1`` at most 100
    units in the last place of ``||M||_1`` (per matrix of a batch)."""
    scale = torch.linalg.matrix_norm(M, ord=1)
    ulp = torch.nextafter(scale, torch.full_like(scale, torch.inf)) - scale
    asymmetry = torch.linalg.matrix_norm(M - M.mT, ord=1)
    if bool((asymmetry > 100 * ulp).any()):
        raise ValueError(
            f"{name} must be symmetric: ||{name} - {name}^T||_1 = "
            f"{float(asymmetry.max()):.3g} exceeds 100 ulp of ||{name}||_1 (as "
            "scipy.linalg.solve_continuous_are requires)"
        )


def lqr_problem(A: Any, B: Any, Q: Any, R: Any) -> tuple[LQRProblem, ArrayInfo]:
    """Validate and convert ``(A, B, Q, R)``; the info is ``A``'s array kind.

    Shapes ``(..., n, n)``, ``(..., n, m)``, ``(..., n, n)``, ``(..., m, m)``
    broadcast over leading dimensions; ``n, m >= 1``; the common floating dtype
    (never a downcast). Finite inputs must have ``Q`` and ``R`` symmetric
    (SciPy's tolerance) and ``R`` positive definite; non-finite ones are left
    for the driver's input check (``NONFINITE_INPUT``).
    """
    A_t, info = as_tensor(A, "A")
    B_t, Q_t, R_t = (
        as_tensor(M, name, device=A_t.device)[0]
        for M, name in ((B, "B"), (Q, "Q"), (R, "R"))
    )
    dtype = result_dtype(A_t.dtype, B_t.dtype, Q_t.dtype, R_t.dtype)
    A_t, B_t, Q_t, R_t = (M.to(dtype) for M in (A_t, B_t, Q_t, R_t))
    n = square("A", A_t)
    if n == 0:
        raise ValueError(f"A must have a state, got shape {tuple(A_t.shape)}")
    square("Q", Q_t, n)
    if B_t.ndim < 2 or B_t.shape[-2] != n:
        raise ValueError(f"B must be (..., {n}, m), got {tuple(B_t.shape)}")
    m = int(B_t.shape[-1])
    if m == 0:
        raise ValueError(f"B must have an input, got shape {tuple(B_t.shape)}")
    square("R", R_t, m)
    batch = torch.broadcast_shapes(
        A_t.shape[:-2], B_t.shape[:-2], Q_t.shape[:-2], R_t.shape[:-2]
    )
    A_t, B_t = A_t.expand(*batch, n, n), B_t.expand(*batch, n, m)
    Q_t, R_t = Q_t.expand(*batch, n, n), R_t.expand(*batch, m, m)
    if is_finite(A_t, B_t, Q_t, R_t):
        check_symmetric("Q", Q_t)
        check_symmetric("R", R_t)
        if bool((torch.linalg.cholesky_ex(R_t).info != 0).any()):
            raise ValueError(
                "R must be positive definite (its Cholesky factorisation fails), "
                f"smallest eigenvalue {float(torch.linalg.eigvalsh(R_t).min()):.3g}"
            )
    return LQRProblem(A_t, B_t, Q_t, R_t), info
