"""The linear-system problem object and preconditioner handling shared by solvers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from itersolve._core.operators import LinearOperator, aslinearoperator

Preconditioner = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class LinearProblem:
    """``A x = b`` with ``b`` of shape ``(n,)`` or ``(n, k)`` (k right-hand sides)."""

    A: LinearOperator
    b: torch.Tensor

    def __post_init__(self) -> None:
        m = self.A.shape[0]
        if self.b.ndim not in (1, 2) or self.b.shape[0] != m:
            raise ValueError(
                f"b must have shape ({m},) or ({m}, k) to match A of shape "
                f"{self.A.shape}, got {tuple(self.b.shape)}"
            )

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        return self.b - self.A.matvec(x)


def column_norms(x: torch.Tensor) -> torch.Tensor:
    """Euclidean norm of a vector, or of each column of a block."""
    return torch.linalg.vector_norm(x, dim=0)


def make_preconditioner(M: Any, A: LinearOperator) -> Preconditioner | None:
    """Turn the ``M`` argument of a solver into ``r -> M r`` (approximate ``A^{-1} r``).

    ``None`` means no preconditioning; ``"jacobi"`` divides by ``diag(A)``; a
    matrix or ``LinearOperator`` is applied by matvec; a callable is used as is.
    """
    if M is None:
        return None
    if isinstance(M, str):
        if M != "jacobi":
            raise ValueError(
                f"M must be None, 'jacobi', an operator or a callable, got {M!r}"
            )
        diag = A.diagonal()
        if not bool((diag != 0).all()):
            raise ValueError("M='jacobi' needs a diagonal without zeros")
        inv = diag.reciprocal()

        def jacobi(r: torch.Tensor) -> torch.Tensor:
            return r * (inv if r.ndim == 1 else inv[:, None])

        return jacobi
    if callable(M) and not isinstance(M, (LinearOperator, torch.Tensor)):
        return M
    op = aslinearoperator(M, dtype=A.dtype, device=A.device)
    if op.shape != (A.shape[1], A.shape[0]):
        raise ValueError(f"M has shape {op.shape}, expected {(A.shape[1], A.shape[0])}")
    return op.matvec
