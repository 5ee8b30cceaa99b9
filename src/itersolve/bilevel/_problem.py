"""The multi-block bilevel problem: ``min_x (1/m) sum_i f_i(x, y_i*(x))``.

``y_i*(x) = argmin_y g_i(x, y)``, each ``g_i`` strongly convex in ``y``. All
blocks share a lower-level sample set of size ``n_lower`` and an upper-level one
of size ``n_upper``; ``f_i`` and ``g_i`` are means of per-sample terms, so a
minibatch mean is an unbiased estimate of the full one. Every oracle is
batched over the blocks it is asked about.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

#: Per-block term: ``(x, y_i, block, samples) -> per-sample values``, shape
#: ``(len(samples),)``; ``samples`` is a LongTensor of sample indices.
Term = Callable[[Tensor, Tensor, int, Tensor], Tensor]

_COUNTERS = ("lower_grads", "upper_grads", "hessians", "hvps", "cross_products")


def check_positive_int(value: Any, name: str, *, allow_none: bool = False) -> None:
    """``value`` is an int >= 1 (or ``None`` with ``allow_none``)."""
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")


class MultiBlockBilevelProblem:
    """Base of every multi-block bilevel problem: shapes, bounds, oracles.

    A subclass sets ``m`` (blocks), ``dim_x``, ``dim_y``, ``n_lower``,
    ``n_upper``, ``dtype`` and the curvature bounds ``mu``, ``L`` (shape
    ``(m,)``: ``mu_i I <= grad^2_yy g_i <= L_i I`` for every minibatch; the
    Hessian estimates of :class:`~itersolve.bilevel.BSVRB` are projected onto
    them) and implements the batched oracles below. ``blocks`` is a LongTensor
    ``(I,)``, ``y`` has shape ``(I, dim_y)``, ``samples`` is a LongTensor
    ``(I, B)`` of per-block sample indices or ``None`` for the full sets.

    Every oracle call adds the number of blocks it evaluated to
    :attr:`counts` (``lower_grads``, ``upper_grads``, ``hessians``, ``hvps``,
    ``cross_products``).

    Examples
    --------
    >>> from itersolve.problems import quadratic_bilevel
    >>> p = quadratic_bilevel(m=3, dim_x=2, dim_y=4, n=10, seed=0)
    >>> isinstance(p, MultiBlockBilevelProblem), p.m, p.dim_y
    (True, 3, 4)
    """

    m: int
    dim_x: int
    dim_y: int
    n_lower: int
    n_upper: int
    dtype: torch.dtype
    mu: Tensor
    L: Tensor

    def __init__(self) -> None:
        self.counts = dict.fromkeys(_COUNTERS, 0)

    def _count(self, key: str, blocks: Tensor) -> None:
        self.counts[key] += int(blocks.numel())

    def counters(self) -> dict[str, int]:
        """A copy of the oracle counters."""
        return dict(self.counts)

    # -- oracles (batched over blocks) ------------------------------------------

    def lower_value(
        self, blocks: Tensor, x: Tensor, y: Tensor, samples: Tensor | None
    ) -> Tensor:
        """``g_i(x, y_i)``, shape ``(I,)``."""
        raise NotImplementedError

    def upper_value(
        self, blocks: Tensor, x: Tensor, y: Tensor, samples: Tensor | None
    ) -> Tensor:
        """``f_i(x, y_i)``, shape ``(I,)``."""
        raise NotImplementedError

    def lower_grad(
        self, blocks: Tensor, x: Tensor, y: Tensor, samples: Tensor | None
    ) -> Tensor:
        """``grad_y g_i(x, y_i)``, shape ``(I, dim_y)``."""
        raise NotImplementedError

    def lower_hessian(
        self, blocks: Tensor, x: Tensor, y: Tensor, samples: Tensor | None
    ) -> Tensor:
        """``grad^2_yy g_i(x, y_i)``, shape ``(I, dim_y, dim_y)``."""
        raise NotImplementedError

    def lower_hvp(
        self, blocks: Tensor, x: Tensor, y: Tensor, v: Tensor, samples: Tensor | None
    ) -> Tensor:
        """``grad^2_yy g_i(x, y_i) v_i``, shape ``(I, dim_y)``."""
        raise NotImplementedError

    def lower_cross(
        self, blocks: Tensor, x: Tensor, y: Tensor, v: Tensor, samples: Tensor | None
    ) -> Tensor:
        """``grad^2_xy g_i(x, y_i) v_i`` (the x-gradient of ``<grad_y g_i, v_i>``),
        shape ``(I, dim_x)``."""
        raise NotImplementedError

    def lower_cross_jacobian(
        self, blocks: Tensor, x: Tensor, y: Tensor, samples: Tensor | None
    ) -> Tensor:
        """``grad^2_xy g_i(x, y_i)`` as a matrix, shape ``(I, dim_x, dim_y)``;
        by default one :meth:`lower_cross` per column (counted as such)."""
        eye = torch.eye(self.dim_y, dtype=y.dtype, device=y.device)
        columns = [
            self.lower_cross(blocks, x, y, eye[k].expand_as(y), samples)
            for k in range(self.dim_y)
        ]
        return torch.stack(columns, dim=2)

    def upper_grads(
        self, blocks: Tensor, x: Tensor, y: Tensor, samples: Tensor | None
    ) -> tuple[Tensor, Tensor]:
        """``(grad_x f_i, grad_y f_i)``, shapes ``(I, dim_x)`` and ``(I, dim_y)``."""
        raise NotImplementedError

    # -- helpers ----------------------------------------------------------------

    def all_blocks(self, device: torch.device | None = None) -> Tensor:
        return torch.arange(self.m, device=device)

    def hyperobjective_at(self, x: Tensor, y: Tensor) -> float:
        """``(1/m) sum_i f_i(x, y_i)`` on the full upper-level set at the given
        lower iterates (the validation loss of the tracked models)."""
        blocks = self.all_blocks(x.device)
        with torch.no_grad():
            return float(self.upper_value(blocks, x, y, None).mean())


class BilevelProblem(MultiBlockBilevelProblem):
    """A multi-block bilevel problem from per-sample torch functions (autograd).

    ``upper(x, y_i, i, samples)`` and ``lower(x, y_i, i, samples)`` return the
    per-sample terms of block ``i`` (shape ``(len(samples),)``); ``f_i`` and
    ``g_i`` are their means. Gradients, Hessian-vector products (a gradient of
    a ``create_graph`` gradient, never ``backward(create_graph=True)``),
    Hessians and cross products come from autograd, one block at a time.

    Parameters
    ----------
    upper, lower
        The per-sample terms, differentiable by autograd in ``x`` and ``y_i``.
    m, dim_x, dim_y
        Number of blocks, upper and lower dimensions.
    n_upper, n_lower
        Sizes of the upper- and lower-level sample sets.
    mu, L
        Curvature bounds of every ``g_i`` in ``y`` (a float or ``m`` values):
        ``mu`` > 0 declares strong convexity.
    dtype
        The problem's floating dtype.

    Examples
    --------
    >>> import torch
    >>> from itersolve.bilevel import BilevelProblem, exact_hypergradient
    >>> a = torch.linspace(1.0, 2.0, 5, dtype=torch.float64)
    >>> p = BilevelProblem(
    ...     upper=lambda x, y, i, s: 0.5 * ((y - 1.0) ** 2).sum().expand(len(s)),
    ...     lower=lambda x, y, i, s: 0.5 * a[s] * (y**2).sum() - (y * x).sum(),
    ...     m=2, dim_x=3, dim_y=3, n_upper=1, n_lower=5, mu=1.0, L=2.0,
    ... )
    >>> hg = exact_hypergradient(p, torch.zeros(3, dtype=torch.float64))
    >>> [round(v, 6) for v in hg.grad.tolist()]
    [-0.666667, -0.666667, -0.666667]
    """

    def __init__(
        self,
        upper: Term,
        lower: Term,
        *,
        m: int,
        dim_x: int,
        dim_y: int,
        n_upper: int,
        n_lower: int,
        mu: Any,
        L: Any,
        dtype: torch.dtype = torch.float64,
    ) -> None:
        super().__init__()
        if not callable(upper):
            raise TypeError(f"upper must be callable, got {type(upper).__name__}")
        if not callable(lower):
            raise TypeError(f"lower must be callable, got {type(lower).__name__}")
        for name, value in (
            ("m", m),
            ("dim_x", dim_x),
            ("dim_y", dim_y),
            ("n_upper", n_upper),
            ("n_lower", n_lower),
        ):
            check_positive_int(value, name)
        self.upper, self.lower = upper, lower
        self.m, self.dim_x, self.dim_y = m, dim_x, dim_y
        self.n_upper, self.n_lower = n_upper, n_lower
        self.dtype = dtype
        self.mu, self.L = curvature_bounds(mu, L, m, dtype)

    def _samples(self, samples: Tensor | None, k: int, n: int) -> Tensor:
        return torch.arange(n) if samples is None else samples[k]

    def _per_block(
        self,
        fn: Callable[[int, int, Tensor, Tensor], Tensor],
        blocks: Tensor,
        x: Tensor,
        y: Tensor,
    ) -> Tensor:
        return torch.stack(
            [fn(k, int(i), x, y[k]) for k, i in enumerate(blocks.tolist())]
        )

    def lower_value(
        self, blocks: Tensor, x: Tensor, y: Tensor, samples: Tensor | None
    ) -> Tensor:
        def one(k: int, i: int, x: Tensor, yi: Tensor) -> Tensor:
            s = self._samples(samples, k, self.n_lower)
            return self.lower(x, yi, i, s).mean()

        with torch.no_grad():
            return self._per_block(one, blocks, x, y)

    def upper_value(
        self, blocks: Tensor, x: Tensor, y: Tensor, samples: Tensor | None
    ) -> Tensor:
        def one(k: int, i: int, x: Tensor, yi: Tensor) -> Tensor:
            s = self._samples(samples, k, self.n_upper)
            return self.upper(x, yi, i, s).mean()

        with torch.no_grad():
            return self._per_block(one, blocks, x, y)

    def _lower_graph(
        self, k: int, i: int, x: Tensor, yi: Tensor, samples: Tensor | None
    ) -> tuple[Tensor, Tensor, Tensor]:
        """``grad_y g_i`` with its graph (for second derivatives)."""
        xg = x.detach().requires_grad_(True)
        yg = yi.detach().requires_grad_(True)
        value = self.lower(xg, yg, i, self._samples(samples, k, self.n_lower)).mean()
        (grad,) = torch.autograd.grad(value, yg, create_graph=True)
        return grad, xg, yg

    def lower_grad(
        self, blocks: Tensor, x: Tensor, y: Tensor, samples: Tensor | None
    ) -> Tensor:
        self._count("lower_grads", blocks)

        def one(k: int, i: int, x: Tensor, yi: Tensor) -> Tensor:
            with torch.enable_grad():
                grad, _, _ = self._lower_graph(k, i, x, yi, samples)
            return grad.detach()

        return self._per_block(one, blocks, x, y)

    def lower_hvp(
        self, blocks: Tensor, x: Tensor, y: Tensor, v: Tensor, samples: Tensor | None
    ) -> Tensor:
        self._count("hvps", blocks)

        def one(k: int, i: int, x: Tensor, yi: Tensor) -> Tensor:
            with torch.enable_grad():
                grad, _, yg = self._lower_graph(k, i, x, yi, samples)
                (hv,) = torch.autograd.grad(grad, yg, v[k])
            return hv

        return self._per_block(one, blocks, x, y)

    def lower_hessian(
        self, blocks: Tensor, x: Tensor, y: Tensor, samples: Tensor | None
    ) -> Tensor:
        self._count("hessians", blocks)
        eye = torch.eye(self.dim_y, dtype=y.dtype, device=y.device)

        def one(k: int, i: int, x: Tensor, yi: Tensor) -> Tensor:
            with torch.enable_grad():
                grad, _, yg = self._lower_graph(k, i, x, yi, samples)
                rows = [
                    torch.autograd.grad(grad, yg, e, retain_graph=True)[0] for e in eye
                ]
            return torch.stack(rows)

        return self._per_block(one, blocks, x, y)

    def lower_cross(
        self, blocks: Tensor, x: Tensor, y: Tensor, v: Tensor, samples: Tensor | None
    ) -> Tensor:
        self._count("cross_products", blocks)

        def one(k: int, i: int, x: Tensor, yi: Tensor) -> Tensor:
            with torch.enable_grad():
                grad, xg, _ = self._lower_graph(k, i, x, yi, samples)
                (out,) = torch.autograd.grad(grad, xg, v[k], allow_unused=True)
            return torch.zeros_like(x) if out is None else out

        return self._per_block(one, blocks, x, y)

    def upper_grads(
        self, blocks: Tensor, x: Tensor, y: Tensor, samples: Tensor | None
    ) -> tuple[Tensor, Tensor]:
        self._count("upper_grads", blocks)
        gx, gy = [], []
        for k, i in enumerate(blocks.tolist()):
            with torch.enable_grad():
                xg = x.detach().requires_grad_(True)
                yg = y[k].detach().requires_grad_(True)
                s = self._samples(samples, k, self.n_upper)
                value = self.upper(xg, yg, int(i), s).mean()
                dx, dy = torch.autograd.grad(value, (xg, yg), allow_unused=True)
            gx.append(torch.zeros_like(x) if dx is None else dx)
            gy.append(torch.zeros_like(y[k]) if dy is None else dy)
        return torch.stack(gx), torch.stack(gy)


def curvature_bounds(
    mu: Any, L: Any, m: int, dtype: torch.dtype
) -> tuple[Tensor, Tensor]:
    """``mu`` and ``L`` as ``(m,)`` tensors, checked: ``0 < mu <= L < inf``."""
    out = []
    for name, value in (("mu", mu), ("L", L)):
        t = torch.as_tensor(value, dtype=dtype).reshape(-1)
        if t.numel() == 1:
            t = t.expand(m).clone()
        if t.numel() != m:
            raise ValueError(f"{name} must be a float or {m} values, got {t.numel()}")
        if not bool(torch.isfinite(t).all()) or not bool((t > 0).all()):
            raise ValueError(
                f"{name} must be positive and finite (mu > 0 declares the strong "
                f"convexity the lower level needs), got {t.tolist()}"
            )
        out.append(t)
    if not bool((out[0] <= out[1]).all()):
        raise ValueError(f"mu must be <= L, got mu={mu!r}, L={L!r}")
    return out[0], out[1]
