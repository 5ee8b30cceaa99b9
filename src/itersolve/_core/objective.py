"""``Objective``: value, gradient, Hessian-vector products, Hessians; counted."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

Fn = Callable[[torch.Tensor], torch.Tensor]


class Objective:
    """A smooth scalar function of a tensor ``x``, with derivative oracles.

    Any oracle not given is derived from ``fun`` by autograd: ``grad`` by reverse
    mode, ``hvp`` by differentiating the gradient (double backward), ``hessian`` by
    ``torch.autograd.functional.hessian``. Closed forms, when given, are used as
    they are. Every call is counted in :attr:`counts` (``values``, ``grads``, ``hvps``,
    ``hessians``); a ``value_and_grad`` call counts one of each.

    Examples
    --------
    >>> f = Objective(lambda x: (x**2).sum())
    >>> x = torch.tensor([1.0, -2.0], dtype=torch.float64)
    >>> f.value(x).item(), f.grad(x).tolist()
    (5.0, [2.0, -4.0])
    >>> f.hvp(x, torch.tensor([1.0, 0.0], dtype=torch.float64)).tolist()
    [2.0, 0.0]
    """

    def __init__(
        self,
        fun: Fn,
        *,
        grad: Fn | None = None,
        hvp: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
        hessian: Fn | None = None,
    ) -> None:
        if not callable(fun):
            raise TypeError(f"fun must be callable, got {type(fun).__name__}")
        self._fun = fun
        self._grad = grad
        self._hvp = hvp
        self._hessian = hessian
        self.counts = {"values": 0, "grads": 0, "hvps": 0, "hessians": 0}

    def value(self, x: torch.Tensor) -> torch.Tensor:
        self.counts["values"] += 1
        with torch.no_grad():
            return self._fun(x)

    def grad(self, x: torch.Tensor) -> torch.Tensor:
        self.counts["grads"] += 1
        if self._grad is not None:
            return self._grad(x)
        return self._autograd(x)[1]

    def value_and_grad(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self.counts["values"] += 1
        self.counts["grads"] += 1
        if self._grad is not None:
            with torch.no_grad():
                return self._fun(x), self._grad(x)
        return self._autograd(x)

    def hvp(self, x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """Hessian-vector product ``H(x) v``."""
        self.counts["hvps"] += 1
        if self._hvp is not None:
            return self._hvp(x, v)
        if self._hessian is not None:
            return (self._hessian(x) @ v.reshape(-1)).reshape(x.shape)
        with torch.enable_grad():
            xg = x.detach().requires_grad_(True)
            if self._grad is not None:
                g = self._grad(xg)
            else:
                (g,) = torch.autograd.grad(self._fun(xg), xg, create_graph=True)
            (hv,) = torch.autograd.grad(g, xg, grad_outputs=v)
        return hv.detach()

    def hessian(self, x: torch.Tensor) -> torch.Tensor:
        """The dense Hessian as an ``(x.numel(), x.numel())`` matrix."""
        self.counts["hessians"] += 1
        if self._hessian is not None:
            return self._hessian(x)
        n = x.numel()
        flat = x.detach().reshape(-1)
        H = torch.autograd.functional.hessian(
            lambda z: self._fun(z.reshape(x.shape)), flat
        )
        return H.reshape(n, n)

    def reset_counts(self) -> None:
        for key in self.counts:
            self.counts[key] = 0

    def _autograd(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.enable_grad():
            xg = x.detach().requires_grad_(True)
            value = self._fun(xg)
            if value.numel() != 1:
                raise ValueError(
                    "the objective must return a scalar, got shape "
                    f"{tuple(value.shape)}"
                )
            (g,) = torch.autograd.grad(value, xg)
        return value.detach(), g

    def __repr__(self) -> str:
        return f"Objective(fun={getattr(self._fun, '__name__', self._fun)!r})"


def as_objective(f: Any) -> Objective:
    """An :class:`Objective` from an ``Objective``, a problem exposing one via
    ``.objective()``, or a plain torch function of ``x``."""
    if isinstance(f, Objective):
        return f
    if hasattr(f, "objective") and callable(f.objective):
        obj = f.objective()
        if isinstance(obj, Objective):
            return obj
    if callable(f):
        return Objective(f)
    raise TypeError(
        "objective must be an Objective, a problem or a callable, got "
        f"{type(f).__name__}"
    )
