"""A relaxation method (Jacobi, Gauss–Seidel, SOR, SSOR) used as ``M``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from itersolve._core.operators import LinearOperator, aslinearoperator
from itersolve.linear._relaxation_kernels import (
    checked_diagonal,
    explicit_matrix,
    resolve_backend,
)

if TYPE_CHECKING:
    from itersolve.linear._relaxation import Relaxation


class RelaxationPreconditioner:
    """``r -> M^{-1} r``: ``sweeps`` steps of a relaxation method on ``A z = r``
    from ``z = 0``.

    Built by :meth:`Relaxation.as_preconditioner` (and by the Krylov solvers when
    ``M`` is a relaxation method). The sweeps are the method's own sweeper, the
    one its solver runs, so a preconditioner application equals that many
    solver steps. The map is linear in ``r`` (a fixed number of sweeps from
    zero), so GMRES may use any of them. It is symmetric for symmetric ``A``
    when the method is (Jacobi, SSOR): :attr:`symmetric` says so, and CG and
    MINRES refuse the others, whose ``M^{-1}`` (a forward sweep,
    ``(D/omega + L)^{-1}``) is not symmetric.

    ``applications`` counts right-hand sides preconditioned; ``matvecs`` the
    products with ``A`` the sweeps made (they are not added to the solver's
    ``matvecs``, which count its own products).

    Examples
    --------
    >>> import numpy as np, itersolve
    >>> from itersolve.problems import poisson
    >>> A = poisson(4, dim=1)
    >>> M = itersolve.linear.Jacobi().as_preconditioner(A)
    >>> M(torch.ones(4, dtype=torch.float64))  # one sweep from 0: D^{-1} r
    tensor([0.5000, 0.5000, 0.5000, 0.5000], dtype=torch.float64)
    """

    def __init__(self, method: Relaxation, A: object, sweeps: int = 1) -> None:
        if isinstance(sweeps, bool) or not isinstance(sweeps, int) or sweeps < 1:
            raise ValueError(f"sweeps must be a positive int, got {sweeps!r}")
        op = A if isinstance(A, LinearOperator) else aslinearoperator(A)
        name = f"{type(method).__name__} as a preconditioner"
        explicit_matrix(op, name)
        diag = checked_diagonal(op, name)
        # A copy of the operator (same matrix and caches, own matvec counter).
        self.A = op.with_tags()
        self.method = method
        self.sweeps = sweeps
        self.symmetric = method.symmetric_sweep
        self.shape = op.shape
        self.applications = 0
        self._sweeper = method.make_sweeper(
            self.A, diag, resolve_backend(method.backend, op)
        )

    @property
    def matvecs(self) -> int:
        return self.A.matvecs

    def __call__(self, r: torch.Tensor) -> torch.Tensor:
        self.applications += 1 if r.ndim == 1 else r.shape[1]
        rhs = r.detach().contiguous()
        z = torch.zeros_like(rhs)
        self._sweeper.bind(z, rhs, torch.empty_like(rhs), zero_start=True)
        for _ in range(self.sweeps):
            self._sweeper.sweep(False)
        return z

    def __repr__(self) -> str:
        return (
            f"RelaxationPreconditioner({self.method!r}, shape={self.shape}, "
            f"sweeps={self.sweeps})"
        )
