"""A differentiable hard-constraint layer solved by nonlinear least squares.

Given basis functions ``psi_b`` on a grid (from any backbone network), the layer
returns ``u = sum_b w*_b psi_b`` with ``w*`` the least-squares solution of the
constraint ``F(u) = 0`` (PDE, initial and boundary residuals), per sample and per
expert (a fixed block of the grid), solved by
:func:`~itersolve.optimize.least_squares`. Gradients with respect to ``psi``
(and to parameters of ``F``) come from the implicit function theorem at the
stationarity condition ``grad_w phi(w*, psi) = 0``, ``phi = 1/2 ||F||^2``::

    dw*/dpsi = -H^-1 d(grad_w phi)/dpsi,     H = grad_w^2 phi (exact Hessian)

so a loss gradient ``g = dL/dw*`` pulls back through ``v = H^-1 g`` as
``dL/dpsi = -(d grad_w phi / dpsi)^T v``: one ``(n_basis x n_basis)`` solve per
sample and expert, no unrolling.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.autograd.function import once_differentiable

from itersolve._core.errors import ConvergenceWarning
from itersolve._core.solution import Solution, Status
from itersolve.optimize import LeastSquaresMethod, LevenbergMarquardt, least_squares
from itersolve.optimize._least_squares import jacobian_products

Tensor = torch.Tensor
Block = tuple[slice, ...]
ResidualFn = Callable[[Tensor, Block], Tensor]

_BACKWARDS = ("implicit", "zero")

#: Outcomes at which ``w*`` is stationary to working precision, so the implicit
#: function theorem applies: the gradient rule held, or the step reached the
#: rounding level of ``w`` (no representable step decreases ``1/2 ||F||^2``).
_STATIONARY = (Status.SUCCESS.name, Status.STAGNATION.name)


def partition_domain(grid: Sequence[int], experts: int | Sequence[int]) -> list[Block]:
    """The fixed blocks of a grid, one per expert.

    ``experts`` is a count per grid axis (``(1, 4)``: 1 block in time, 4 in
    space) or one int ``K``, which splits the last axis into ``K`` blocks.
    Blocks are contiguous; sizes differ by at most one along an axis.

    Examples
    --------
    >>> partition_domain((4, 6), (1, 2))
    [(slice(0, 4, None), slice(0, 3, None)), (slice(0, 4, None), slice(3, 6, None))]
    """
    grid = tuple(int(n) for n in grid)
    if isinstance(experts, bool) or not isinstance(experts, int | tuple | list):
        raise TypeError(
            f"experts must be an int or a tuple of ints, got {type(experts).__name__}"
        )
    counts = (
        (1,) * (len(grid) - 1) + (experts,)
        if isinstance(experts, int)
        else tuple(experts)
    )
    if len(counts) != len(grid):
        raise ValueError(
            f"experts must give one count per grid axis ({len(grid)}), got "
            f"{tuple(counts)}"
        )
    for n, k in zip(grid, counts, strict=True):
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= n:
            raise ValueError(
                f"experts must be ints in [1, axis size], got {tuple(counts)} for "
                f"grid {grid}"
            )
    axes: list[list[slice]] = []
    for n, k in zip(grid, counts, strict=True):
        edges = [round(i * n / k) for i in range(k + 1)]
        axes.append([slice(edges[i], edges[i + 1]) for i in range(k)])
    blocks: list[Block] = [()]
    for cuts in axes:
        blocks = [(*b, s) for b in blocks for s in cuts]
    return blocks


@dataclass
class HardConstraintInfo:
    """What the last call of a :class:`HardConstraintLayer` did.

    ``solutions[k]`` is expert ``k``'s least-squares Solution (a batch over
    the samples); ``status[k][b]`` the status name of sample ``b`` in expert
    ``k``; ``converged`` a ``(experts, batch)`` bool tensor (``SUCCESS``);
    ``fallback`` the samples and experts whose backward gave a zero gradient
    for ``w*`` (a solve that ended neither ``SUCCESS`` nor ``STAGNATION``, or a
    Hessian that is not positive definite), filled in by the backward pass.

    Examples
    --------
    >>> HardConstraintInfo().all_converged
    True
    """

    solutions: list[Solution] = field(default_factory=list)
    status: list[list[str]] = field(default_factory=list)
    converged: Tensor | None = None
    fallback: Tensor | None = None

    @property
    def all_converged(self) -> bool:
        return self.converged is None or bool(self.converged.all())


@dataclass
class _Config:
    residual_fn: ResidualFn
    block: Block
    expert: int
    method: LeastSquaresMethod
    backward: str
    ridge: float
    throw: bool
    info: HardConstraintInfo


def _combine(psi: Tensor, w: Tensor) -> Tensor:
    """``u = sum_b w_b psi_b`` per sample: ``psi (B, *block, nb)``, ``w (B, nb)``."""
    return torch.einsum("b...n,bn->b...", psi, w.to(psi.dtype))


def _residual_rows(cfg: _Config, psi: Tensor, w: Tensor) -> Tensor:
    return _constraint(cfg, _combine(psi, w))


def _constraint(cfg: _Config, u: Tensor) -> Tensor:
    """``F(u)`` on the expert's block as rows ``(B, m)``."""
    out = cfg.residual_fn(u, cfg.block)
    if not isinstance(out, Tensor):
        raise TypeError(
            f"residual_fn must return a torch tensor, got {type(out).__name__}"
        )
    if out.ndim == 0 or out.shape[0] != u.shape[0]:
        raise ValueError(
            "residual_fn must return the batch dimension first: psi has "
            f"{u.shape[0]} samples, the residual has shape {tuple(out.shape)}"
        )
    return out.reshape(u.shape[0], -1)


def _jacobian(cfg: _Config, psi: Tensor) -> Callable[[Tensor], Tensor]:
    """``w -> dF/dw = (dF/du) psi`` per sample: the products of ``F``'s
    Jacobian in ``u`` with the basis functions (cheaper than differentiating
    through ``u = psi w``)."""
    directions = psi.movedim(-1, 0)

    def jac(w: Tensor) -> Tensor:
        with torch.enable_grad():
            u = _combine(psi, w).detach().requires_grad_()
            r = _constraint(cfg, u)
            if not r.requires_grad:
                return r.new_zeros((*r.shape, psi.shape[-1]))
            return jacobian_products(r, u, directions).permute(1, 2, 0)

    return jac


class _ImplicitLeastSquares(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, cfg: _Config, psi: Tensor, *params: Tensor) -> Tensor:
        psi_d = psi.detach()
        w0 = torch.zeros(psi.shape[0], psi.shape[-1], dtype=psi.dtype)
        w0 = w0.to(psi.device)
        sol = least_squares(
            lambda w: _residual_rows(cfg, psi_d, w),
            w0,
            cfg.method,
            jac=_jacobian(cfg, psi_d),
            batch_dim=0,
            throw=cfg.throw,
        )
        info = cfg.info
        info.solutions.append(sol)
        stats: dict[str, Any] = sol.stats
        names: list[str] = list(stats["sample_status"])
        info.status.append(names)
        ctx.cfg = cfg
        ctx.stationary = torch.tensor([n in _STATIONARY for n in names])
        ctx.save_for_backward(sol.x, psi, *params)
        return sol.x

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad_w: Tensor) -> tuple[Tensor | None, ...]:
        cfg: _Config = ctx.cfg
        w, psi, *params = ctx.saved_tensors
        wanted = list(ctx.needs_input_grad[1:])
        none: list[Tensor | None] = [None] * (1 + len(wanted))
        if cfg.backward == "zero" or not any(wanted):
            return tuple(none)
        n = w.shape[1]
        with torch.enable_grad():
            wr = w.detach().requires_grad_()
            psr = psi.detach().requires_grad_()
            r = _residual_rows(cfg, psr, wr)
            phi = 0.5 * (r * r).sum()
            (gw,) = torch.autograd.grad(phi, wr, create_graph=True)
            # the rows are independent: row i of every sample's Hessian at once
            H = torch.stack(
                [
                    torch.autograd.grad(gw[:, i].sum(), wr, retain_graph=True)[0]
                    for i in range(n)
                ],
                dim=1,
            )
        eye = torch.eye(n, dtype=H.dtype, device=H.device)
        L, fail = torch.linalg.cholesky_ex(
            0.5 * (H + H.transpose(1, 2)) + cfg.ridge * eye
        )
        v = torch.cholesky_solve(grad_w.detach().to(H.dtype)[..., None], L)[..., 0]
        usable = (fail == 0) & ctx.stationary.to(fail.device)
        usable &= torch.isfinite(v).all(dim=1)
        v = torch.where(usable[:, None], v, torch.zeros_like(v))
        _record_fallback(cfg, ~usable)
        wrt = [t for t, need in zip([psr, *params], wanted, strict=True) if need]
        found = torch.autograd.grad(gw, wrt, -v, allow_unused=True)
        grads = iter(found)
        out: list[Tensor | None] = [None]
        for need in wanted:
            out.append(next(grads, None) if need else None)
        return tuple(out)


def _record_fallback(cfg: _Config, rows: Tensor) -> None:
    info = cfg.info
    if info.converged is None:
        return
    if info.fallback is None:
        info.fallback = torch.zeros_like(info.converged)
    info.fallback[cfg.expert] = rows.to(info.fallback.device)


class HardConstraintLayer(torch.nn.Module):
    """``u = sum_b w*_b psi_b`` with ``w*`` solving the constraint ``F(u) = 0``
    in the least-squares sense, per sample and per expert.

    The physics-informed hard constraint of Chalapathi, Du & Krishnapriyan
    (PI-HC, and PI-HC-MoE with ``experts > 1``). Compare with the reference
    stack's optimistix / jaxopt Levenberg–Marquardt with implicit
    differentiation, and Theseus' nonlinear least squares in PyTorch.

    Each expert owns a fixed block of the grid (:func:`partition_domain`) and
    solves its own ``w*`` in ``R^n_basis`` from the residuals on its block only
    (no coupling between experts, as in the paper): a batched
    :func:`~itersolve.optimize.least_squares` over the samples, each sample
    stopping on its own rule. The backward pass is the implicit function
    theorem at ``grad_w 1/2 ||F||^2 = 0`` with the exact Hessian (plus
    ``ridge I``) - see :mod:`itersolve.pde._hard_constraint`.

    A solve that does not converge is never silent: ``least_squares`` emits a
    :class:`~itersolve.ConvergenceWarning` (``throw=True``: raises
    :class:`~itersolve.ConvergenceError`), :attr:`info` keeps the status of
    every sample and expert, and the backward pass gives that sample and
    expert a zero gradient through ``w*`` (the IFT needs a stationary point),
    flagged in ``info.fallback``; ``u`` still carries the gradient of
    ``psi`` at fixed ``w*``. ``STAGNATION`` (the step reached the rounding
    level of ``w`` before the gradient rule held, common with an
    ill-conditioned basis) is stationary to working precision: it warns but
    keeps the implicit gradient.

    Parameters
    ----------
    residual_fn
        ``residual_fn(u, block) -> r``: ``u`` of shape ``(B, *block_shape)``
        (the candidate on one expert's block, ``block`` its tuple of slices
        into the grid, so a block touching the boundary can add boundary
        residuals), ``r`` of shape ``(B, ...)``, a fixed shape per block;
        differentiable torch code treating the samples independently.
    n_basis
        Number of basis functions (the last dimension of ``psi``).
    method
        A least-squares method (``None``: ``LevenbergMarquardt()``).
    experts
        ``1`` (one global constraint), an int ``K`` (``K`` blocks along the last
        grid axis) or one count per grid axis, e.g. ``(1, 4)``.
    backward
        ``"implicit"`` (IFT) or ``"zero"`` (``w*`` treated as a constant).
    ridge
        Added to the Hessian in the backward solve (``0``; use ``1e-8`` or
        more with redundant basis functions).
    throw
        Raise instead of warning when a solve fails.

    References
    ----------
    N. Chalapathi, Y. Du, A. S. Krishnapriyan, *Scaling physics-informed hard
    constraints with mixture-of-experts*, ICLR 2024 (arXiv 2402.13412).

    Examples
    --------
    Impose ``u'' = -1``, ``u(0) = u(1) = 0`` (finite differences on 17 points)
    on a random basis of 5 functions:

    >>> import torch
    >>> from itersolve.pde import HardConstraintLayer
    >>> h = 1.0 / 16
    >>> def residual(u, block):
    ...     pde = (u[:, 2:] - 2 * u[:, 1:-1] + u[:, :-2]) / h**2 + 1.0
    ...     return torch.cat([pde, u[:, :1], u[:, -1:]], dim=1)
    >>> layer = HardConstraintLayer(residual, n_basis=5)
    >>> x = torch.linspace(0, 1, 17, dtype=torch.float64)
    >>> psi = torch.stack([x**k for k in range(5)], dim=-1)[None]
    >>> u = layer(psi.requires_grad_())
    >>> bool(torch.allclose(u[0], x * (1 - x) / 2, atol=1e-6)), layer.info.status
    (True, [['SUCCESS']])
    """

    def __init__(
        self,
        residual_fn: ResidualFn,
        n_basis: int,
        *,
        method: LeastSquaresMethod | None = None,
        experts: int | Sequence[int] = 1,
        backward: str = "implicit",
        ridge: float = 0.0,
        throw: bool = False,
    ) -> None:
        super().__init__()
        if not callable(residual_fn):
            raise TypeError(
                f"residual_fn must be callable, got {type(residual_fn).__name__}"
            )
        if isinstance(n_basis, bool) or not isinstance(n_basis, int) or n_basis < 1:
            raise ValueError(f"n_basis must be a positive int, got {n_basis!r}")
        method = LevenbergMarquardt() if method is None else method
        if not isinstance(method, LeastSquaresMethod):
            raise TypeError(
                "method must be a least-squares method such as "
                f"LevenbergMarquardt(), got {type(method).__name__}"
            )
        if backward not in _BACKWARDS:
            raise ValueError(f"backward must be 'implicit' or 'zero', got {backward!r}")
        if not (isinstance(ridge, int | float) and 0 <= ridge < float("inf")):
            raise ValueError(f"ridge must be >= 0 and finite, got {ridge!r}")
        if isinstance(experts, int) and not isinstance(experts, bool) and experts < 1:
            raise ValueError(f"experts must be >= 1, got {experts!r}")
        self.residual_fn = residual_fn
        self.n_basis = n_basis
        self.method = method
        self.experts = experts
        self.backward = backward
        self.ridge = float(ridge)
        self.throw = throw
        self.info = HardConstraintInfo()

    def forward(self, psi: Tensor, *params: Tensor) -> Tensor:
        """``u`` of shape ``(B, *grid)`` from ``psi`` of shape ``(B, *grid,
        n_basis)``; ``params`` are tensors ``residual_fn`` reads (through a
        closure) that should receive gradients through ``w*``."""
        if not isinstance(psi, Tensor) or not psi.is_floating_point():
            raise TypeError(f"psi must be a floating torch tensor, got {psi!r:.60}")
        if psi.ndim < 3 or psi.shape[-1] != self.n_basis:
            raise ValueError(
                f"psi must have shape (batch, *grid, n_basis={self.n_basis}), got "
                f"{tuple(psi.shape)}"
            )
        if psi.dtype != torch.float64:
            warnings.warn(
                f"HardConstraintLayer in {psi.dtype}: the implicit gradient needs "
                "a converged solve, which float32 rarely gives; use float64",
                ConvergenceWarning,
                stacklevel=2,
            )
        grid = tuple(psi.shape[1:-1])
        blocks = partition_domain(grid, self.experts)
        info = HardConstraintInfo()
        self.info = info
        u = torch.empty(psi.shape[:-1], dtype=psi.dtype, device=psi.device)
        for k, block in enumerate(blocks):
            cfg = _Config(
                self.residual_fn,
                block,
                k,
                self.method,
                self.backward,
                self.ridge,
                self.throw,
                info,
            )
            psi_k = psi[(slice(None), *block)]
            w = _ImplicitLeastSquares.apply(cfg, psi_k, *params)
            u[(slice(None), *block)] = _combine(psi_k, w)
        info.converged = torch.tensor(
            [[name == Status.SUCCESS.name for name in row] for row in info.status]
        )
        return u
