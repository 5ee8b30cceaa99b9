"""The SSOR preconditioner, for CG (SSOR-PCG) and other Krylov solvers."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
import torch

from itersolve._core.operators import LinearOperator, aslinearoperator
from itersolve.linear import _relaxation_kernels as kernels
from itersolve.linear._relaxation import validate_omega
from itersolve.linear._relaxation_kernels import (
    CSRArrays,
    as_block,
    checked_diagonal,
    explicit_matrix,
    resolve_backend,
)


class SSORPreconditioner:
    """``r -> M^{-1} r`` for the SSOR matrix of a symmetric ``A``.

    ``M = (D + omega L) D^{-1} (D + omega U) / (omega (2 - omega))``, symmetric
    positive definite when ``A`` is and ``0 < omega < 2``; applying ``M^{-1}`` is a
    forward and a backward triangular sweep (compiled with numba on CPU, dense
    triangular solves in torch otherwise). Pass it as ``M`` to :class:`CG`.

    Equivalent to / compare with the ``M1, M2`` pair of the Learning-to-Relax
    reference ``ssor_pcg.m`` (MATLAB ``pcg``), and pyamg's symmetric SOR smoother.

    Parameters
    ----------
    A
        The matrix (anything :func:`~itersolve.aslinearoperator` accepts that has
        explicit entries), with a diagonal free of zeros.
    omega
        Relaxation factor in (0, 2).
    backend
        As in :class:`SOR`.

    References
    ----------
    Saad, *Iterative Methods for Sparse Linear Systems*, §10.2; Khodak et al.,
    *Learning to Relax*, ICLR 2024.

    Examples
    --------
    >>> import numpy as np, itersolve
    >>> from itersolve.problems import poisson
    >>> A = poisson(16, dim=2)
    >>> M = itersolve.linear.SSORPreconditioner(A, omega=1.5)
    >>> method = itersolve.linear.CG(rtol=1e-8, M=M)
    >>> pcg = itersolve.linear_solve(A, np.ones(256), method)
    >>> cg = itersolve.linear_solve(A, np.ones(256), itersolve.linear.CG(rtol=1e-8))
    >>> pcg.success, pcg.num_steps < cg.num_steps
    (True, True)
    """

    def __init__(
        self,
        A: Any,
        omega: float = 1.0,
        *,
        backend: str = "auto",
        dtype: torch.dtype | None = None,
    ) -> None:
        validate_omega(omega)
        op = A if isinstance(A, LinearOperator) else aslinearoperator(A, dtype=dtype)
        matrix = explicit_matrix(op, "SSORPreconditioner")
        diag = checked_diagonal(op, "SSORPreconditioner")
        self.omega = float(omega)
        self.shape = op.shape
        self.dtype = op.dtype
        self.device = op.device
        self.backend = resolve_backend(backend, op)
        self.applications = 0
        if self.backend == "numba":
            self._csr = CSRArrays.from_matrix(matrix, diag)
        else:
            dense = matrix.to_dense() if matrix.layout != torch.strided else matrix
            diag_m = torch.diag(diag)
            self._diag = diag
            if self.backend == "torch":
                self._lower = diag_m + omega * torch.tril(dense, -1)
                self._upper = diag_m + omega * torch.triu(dense, 1)
            else:
                csr = sp.csr_array(dense.cpu().numpy())
                d = sp.diags_array(diag.cpu().numpy())
                self._lower_sp = sp.csr_array(d + omega * sp.tril(csr, -1))
                self._upper_sp = sp.csr_array(d + omega * sp.triu(csr, 1))

    def __call__(self, r: torch.Tensor) -> torch.Tensor:
        self.applications += 1 if r.ndim == 1 else r.shape[1]
        scale = self.omega * (2.0 - self.omega)
        if self.backend == "numba":
            rhs = r.detach().contiguous()
            out = torch.empty_like(rhs)
            c = self._csr
            kernels._ssor_apply(
                c.indptr,
                c.indices,
                c.data,
                c.diag,
                as_block(rhs),
                self.omega,
                as_block(out),
            )
            return out
        block = r.reshape(r.shape[0], -1)
        diag = self._diag[:, None]
        if self.backend == "torch":
            y = torch.linalg.solve_triangular(self._lower, block, upper=False)
            z = torch.linalg.solve_triangular(self._upper, scale * diag * y, upper=True)
            return z.reshape(r.shape)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", sp.SparseEfficiencyWarning)
            rhs_np = block.cpu().numpy()
            y_np = spla.spsolve_triangular(self._lower_sp, rhs_np, lower=True)
            w = scale * diag.cpu().numpy() * np.asarray(y_np)
            z_np = spla.spsolve_triangular(self._upper_sp, w, lower=False)
        return torch.as_tensor(np.asarray(z_np), dtype=r.dtype).reshape(r.shape)

    def to_dense(self) -> torch.Tensor:
        """``M^{-1}`` as a dense matrix (for tests and small problems)."""
        return self(torch.eye(self.shape[0], dtype=self.dtype, device=self.device))

    def __repr__(self) -> str:
        return f"SSORPreconditioner(shape={self.shape}, omega={self.omega})"
