"""A scikit-fem assembled linear weak form as a differentiable torch residual."""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from itersolve._core.operators import _torch_csr_from_scipy

LOSSES = ("energy", "residual-norm", "preconditioned")


def _vector(value: Any, name: str, n: int) -> np.ndarray:
    out = np.array(value, dtype=np.float64)
    if out.ndim == 0:
        out = np.full(n, float(out))
    if out.shape != (n,):
        raise ValueError(
            f"{name} must be a scalar or have shape ({n},), got {out.shape}"
        )
    if not np.all(np.isfinite(out)):
        raise ValueError(f"{name} must be finite")
    return out


def _dofs(value: Any, n: int) -> np.ndarray:
    dofs = np.asarray(value)
    if dofs.size == 0:
        return np.zeros(0, dtype=np.int64)
    if dofs.ndim != 1 or not np.issubdtype(dofs.dtype, np.integer):
        raise TypeError(
            f"dirichlet_dofs must be a 1-D integer array, got dtype {dofs.dtype} "
            f"and shape {dofs.shape}"
        )
    if int(dofs.min()) < 0 or int(dofs.max()) >= n:
        raise ValueError(
            f"dirichlet_dofs must be in [0, {n}), got range "
            f"[{int(dofs.min())}, {int(dofs.max())}]"
        )
    if np.unique(dofs).size != dofs.size:
        raise ValueError("dirichlet_dofs must not repeat a dof")
    return dofs.astype(np.int64)


class FEResidual:
    """``R(u) = K u - f`` on the free dofs of a linear FE system, in torch.

    The discrete weak form of a linear PDE, ``K u = f`` with Dirichlet values
    ``u_D = g``, as differentiable torch functions of the full dof vector
    ``u`` (float64, ``K`` a sparse CSR tensor). The Dirichlet values are
    written into ``u`` *before* anything is computed (the hard boundary
    condition of physics-informed graph Galerkin networks), so what the
    dofs in ``dirichlet_dofs`` held never matters:

    * :meth:`residual`: ``R_free(u) = K_ff u_f + K_fD g - f_f``;
    * :meth:`preconditioned_residual`: ``diag(K_ff)^{-1} R_free(u)`` (Jacobi);
    * :meth:`energy`: ``1/2 u^T K u - f^T u``, whose gradient with respect to
      the free dofs is ``R_free`` for symmetric ``K`` (so minimising it solves
      the system, and its excess over the minimum is ``1/2 ||u - u*||_K^2``);
    * :meth:`loss`: ``"energy"``, ``"residual-norm"`` (``||R_free||_2``, not
      squared, the paper's loss) or ``"preconditioned"``
      (``||diag(K_ff)^{-1} R_free||_2``).

    Every method takes an optional ``load`` (a torch vector of length
    ``n_dofs`` that replaces ``f``, e.g. ``s * unit_load`` with a learned
    ``s`` in an inverse problem) and ``values`` (replacing ``g``).
    Only linear (bilinear + linear) forms are supported; a nonlinear form has
    no single matrix ``K``.

    Compare with scikit-fem's ``condense`` + ``solve``, which :meth:`solve`
    calls: at its answer ``R_free`` is zero to rounding. Reference: Gao, Zahr
    & Wang, "Physics-informed graph neural Galerkin networks", CMAME 390
    (2022) 114502.

    Parameters
    ----------
    stiffness
        ``K``, a square scipy sparse matrix (or dense array), ``(N, N)``.
    load
        ``f``, shape ``(N,)`` (a scalar is broadcast).
    dirichlet_dofs
        Indices of the dofs with prescribed values (may be empty).
    dirichlet_values
        ``g``: a scalar or one value per Dirichlet dof.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp, torch
    >>> K = sp.diags([-1.0, 2.0, -1.0], [-1, 0, 1], shape=(4, 4))
    >>> r = FEResidual(K, np.ones(4), dirichlet_dofs=[0, 3], dirichlet_values=0.0)
    >>> u = torch.as_tensor(r.solve())
    >>> u.tolist()
    [0.0, 1.0, 1.0, 0.0]
    >>> float(r.residual(u).abs().max())
    0.0
    """

    def __init__(
        self,
        stiffness: Any,
        load: Any,
        dirichlet_dofs: Any = (),
        dirichlet_values: Any = 0.0,
    ) -> None:
        if not sp.issparse(stiffness):
            stiffness = np.asarray(stiffness, dtype=np.float64)
            if stiffness.ndim != 2:
                raise ValueError(
                    f"stiffness must be a 2-D matrix, got shape {stiffness.shape}"
                )
        k = sp.csr_matrix(stiffness, dtype=np.float64)
        n = k.shape[0]
        if k.shape != (n, n) or n == 0:
            raise ValueError(f"stiffness must be square and non-empty, got {k.shape}")
        if not np.all(np.isfinite(k.data)):
            raise ValueError("stiffness must be finite")
        dofs = _dofs(dirichlet_dofs, n)
        free = np.setdiff1d(np.arange(n), dofs)
        if free.size == 0:
            raise ValueError("every dof is a Dirichlet dof: nothing is left to solve")
        diagonal = k.diagonal()[free]
        if np.any(diagonal == 0):
            raise ValueError(
                "stiffness has a zero diagonal entry on a free dof; Jacobi "
                "preconditioning and a direct solve need a nonzero diagonal"
            )
        self._k = k
        self.n_dofs = n
        self.dirichlet_dofs = torch.from_numpy(dofs)
        self.free_dofs = torch.from_numpy(free)
        self.dirichlet_values = torch.from_numpy(
            _vector(dirichlet_values, "dirichlet_values", dofs.size)
        )
        self.load = torch.from_numpy(_vector(load, "load", n))
        self.stiffness = _torch_csr_from_scipy(k, torch.float64, None)
        self._free_rows = _torch_csr_from_scipy(k[free], torch.float64, None)
        self.diagonal = torch.from_numpy(diagonal.astype(np.float64))
        scale = float(abs(k).max())
        asymmetry = abs(k - k.T).max() if k.nnz else 0.0
        self.symmetric = bool(asymmetry <= 1e-12 * scale)

    @classmethod
    def from_skfem(
        cls,
        basis: Any,
        form: Any,
        *,
        load: Any = None,
        dirichlet_dofs: Any = None,
        dirichlet_values: Any = 0.0,
    ) -> FEResidual:
        """Assemble ``form`` (and ``load``) on a scikit-fem ``basis``.

        Parameters
        ----------
        basis
            A scikit-fem ``Basis`` (e.g. ``Basis(mesh, ElementTriP2())``).
        form
            A scikit-fem ``BilinearForm``: ``K = form.assemble(basis)``.
        load
            A ``LinearForm`` (assembled on ``basis``), an array of length
            ``basis.N``, a scalar, or ``None`` (zero load).
        dirichlet_dofs
            ``None``: every boundary dof (``basis.get_dofs()``); otherwise an
            integer array of dofs.
        dirichlet_values
            A scalar or one value per Dirichlet dof.

        Examples
        --------
        >>> import numpy as np
        >>> from skfem import (Basis, BilinearForm, ElementTriP2, LinearForm,
        ...     MeshTri)
        >>> from skfem.helpers import dot, grad
        >>> laplace = BilinearForm(lambda u, v, w: dot(grad(u), grad(v)))
        >>> unit = LinearForm(lambda v, w: 1.0 * v)
        >>> basis = Basis(MeshTri().refined(2), ElementTriP2())
        >>> r = FEResidual.from_skfem(basis, laplace, load=unit)
        >>> r.n_dofs, len(r.free_dofs)
        (81, 49)
        """
        from skfem import BilinearForm, LinearForm

        if not isinstance(form, BilinearForm):
            raise TypeError(
                "form must be a scikit-fem BilinearForm (only linear problems "
                f"are supported), got {type(form).__name__}"
            )
        stiffness = form.assemble(basis)
        n = stiffness.shape[0]
        if load is None:
            f: Any = np.zeros(n)
        elif isinstance(load, LinearForm):
            f = load.assemble(basis)
        else:
            f = load
        if dirichlet_dofs is None:
            dirichlet_dofs = np.asarray(basis.get_dofs(), dtype=np.int64)
        return cls(stiffness, f, dirichlet_dofs, dirichlet_values)

    # -- torch side ---------------------------------------------------------

    def _check(self, u: torch.Tensor) -> None:
        if not isinstance(u, torch.Tensor):
            raise TypeError(f"u must be a torch tensor, got {type(u).__name__}")
        if u.shape != (self.n_dofs,):
            raise ValueError(
                f"u must have shape ({self.n_dofs},), got {tuple(u.shape)}"
            )
        if u.dtype != torch.float64:
            raise TypeError(f"u must be float64, got {u.dtype}")

    def _load(self, load: torch.Tensor | None) -> torch.Tensor:
        if load is None:
            return self.load
        if not isinstance(load, torch.Tensor) or load.shape != (self.n_dofs,):
            raise ValueError(
                f"load must be a torch tensor of shape ({self.n_dofs},), got "
                f"{getattr(load, 'shape', type(load).__name__)}"
            )
        return load

    def impose(
        self, u: torch.Tensor, values: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``u`` with the Dirichlet dofs set to ``values`` (default ``g``).

        Out of place and differentiable in both arguments.
        """
        self._check(u)
        g = self.dirichlet_values if values is None else values
        if g.shape != self.dirichlet_values.shape:
            raise ValueError(
                f"values must have shape {tuple(self.dirichlet_values.shape)}, got "
                f"{tuple(g.shape)}"
            )
        return u.index_put((self.dirichlet_dofs,), g.to(u.dtype))

    def residual(
        self,
        u: torch.Tensor,
        *,
        load: torch.Tensor | None = None,
        values: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``R_free(u) = K_ff u_f + K_fD g - f_f``, shape ``(len(free_dofs),)``."""
        full = self.impose(u, values)
        ku = torch.sparse.mm(self._free_rows, full[:, None])[:, 0]
        return ku - self._load(load)[self.free_dofs]

    def preconditioned_residual(
        self,
        u: torch.Tensor,
        *,
        load: torch.Tensor | None = None,
        values: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``diag(K_ff)^{-1} R_free(u)`` (Jacobi)."""
        return self.residual(u, load=load, values=values) / self.diagonal

    def energy(
        self,
        u: torch.Tensor,
        *,
        load: torch.Tensor | None = None,
        values: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``1/2 u^T K u - f^T u`` at ``u`` with the Dirichlet values imposed.

        Raises ``ValueError`` for a non-symmetric ``K`` (no energy exists).
        """
        if not self.symmetric:
            raise ValueError(
                "energy needs a symmetric stiffness matrix; use loss "
                "'residual-norm' or 'preconditioned'"
            )
        full = self.impose(u, values)
        ku = torch.sparse.mm(self.stiffness, full[:, None])[:, 0]
        return 0.5 * torch.dot(full, ku) - torch.dot(self._load(load), full)

    def loss(
        self,
        u: torch.Tensor,
        kind: str = "energy",
        *,
        load: torch.Tensor | None = None,
        values: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The training loss ``kind`` (one of :data:`LOSSES`) at ``u``."""
        if kind == "energy":
            return self.energy(u, load=load, values=values)
        if kind == "residual-norm":
            return torch.linalg.vector_norm(self.residual(u, load=load, values=values))
        if kind == "preconditioned":
            return torch.linalg.vector_norm(
                self.preconditioned_residual(u, load=load, values=values)
            )
        raise ValueError(f"kind must be one of {LOSSES}, got {kind!r}")

    # -- reference ----------------------------------------------------------

    def solve(self, load: Any = None) -> np.ndarray:
        """The FE solution by a sparse direct solve (``scipy`` ``spsolve``).

        ``load``: an array of length ``n_dofs`` replacing ``f`` (default
        ``f``). Returns the full dof vector (numpy, float64).
        """
        from scipy.sparse.linalg import spsolve

        f = (
            self.load.numpy()
            if load is None
            else _vector(np.asarray(load), "load", self.n_dofs)
        )
        free = self.free_dofs.numpy()
        dirichlet = self.dirichlet_dofs.numpy()
        g = self.dirichlet_values.numpy()
        u = np.zeros(self.n_dofs)
        u[dirichlet] = g
        rhs = f[free] - self._k[free][:, dirichlet] @ g
        u[free] = spsolve(sp.csc_matrix(self._k[free][:, free]), rhs)
        if not np.all(np.isfinite(u)):
            raise FloatingPointError(
                "the direct solve gave non-finite values: the free block of K "
                "is singular (are enough dofs fixed?)"
            )
        return u

    def __repr__(self) -> str:
        return (
            f"FEResidual(n_dofs={self.n_dofs}, free={len(self.free_dofs)}, "
            f"dirichlet={len(self.dirichlet_dofs)}, symmetric={self.symmetric})"
        )
