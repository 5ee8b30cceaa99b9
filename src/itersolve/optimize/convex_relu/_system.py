"""The fixed linear system of the ADMM u-update, factored once.

``M = F^T F + rho (I_K (x) I_P (x) C)`` with ``C = I + X^T X`` (the
constraint term ``G^T G`` is ``I (x) X^T X`` because ``(2 D_i - I)^2 = I``) or
``C = I`` for the gated program. Two exact ways to solve with it, the cheaper
one chosen by size:

* ``K P d <= n``: Cholesky of ``M`` itself (``K P d`` square);
* otherwise Woodbury: ``M = rho B + F^T F`` with ``B = I (x) C``, so
  ``M^-1 r = a - B^-1 F^T (rho I_n + F B^-1 F^T)^-1 F a`` with
  ``a = B^-1 r / rho``. ``F B^-1 F^T = K (X C^-1 X^T) * (D D^T)`` (entrywise
  product) is ``n x n``: one ``d x d`` and one ``n x n`` Cholesky, then each
  solve costs two passes of ``F`` and two triangular solves of size ``n``.
"""

from __future__ import annotations

import torch

from itersolve.optimize.convex_relu._problem import ConvexReLUProblem


class FactoredSystem:
    """``M^{-1}`` for one problem and one ``rho``; built once per run."""

    def __init__(self, problem: ConvexReLUProblem, rho: float) -> None:
        X, D = problem.X, problem.D
        K, P, d = problem.shape
        eye_d = torch.eye(d, dtype=X.dtype, device=X.device)
        C = eye_d if problem.gated else eye_d + X.T @ X
        self.problem = problem
        self.rho = rho
        self.woodbury = K * P * d > problem.n
        #: Cholesky factorisations made (two on the Woodbury path).
        self.cost = 2 if self.woodbury else 1
        if self.woodbury:
            self.chol_c = torch.linalg.cholesky(C)
            H = X @ torch.cholesky_solve(X.T, self.chol_c)
            inner = K * H * (D @ D.T)
            inner.diagonal().add_(rho)
            self.chol = torch.linalg.cholesky(inner)
        else:
            F = (
                problem.signs[None, :, None, None]
                * D[:, None, :, None]
                * X[:, None, None, :]
            ).reshape(problem.n, K * P * d)
            M = F.T @ F + rho * torch.block_diag(*([C] * (K * P)))
            self.chol = torch.linalg.cholesky(M)

    def _block_solve(self, r: torch.Tensor) -> torch.Tensor:
        """``B^{-1} r`` for ``r`` of the problem's shape."""
        rows = r.reshape(-1, r.shape[-1]).T
        return torch.cholesky_solve(rows, self.chol_c).T.reshape(r.shape)

    def solve(self, r: torch.Tensor) -> torch.Tensor:
        """``M^{-1} r`` for ``r`` of the problem's shape."""
        if not self.woodbury:
            flat = torch.cholesky_solve(r.reshape(-1, 1), self.chol)
            return flat.reshape(r.shape)
        a = self._block_solve(r) / self.rho
        q = torch.cholesky_solve(self.problem.forward(a)[:, None], self.chol)[:, 0]
        return a - self._block_solve(self.problem.adjoint(q))
