"""``Objective``: value, gradient, Hessian-vector products, Hessians; counted.

:class:`Objective` wraps a torch function (derivatives by autograd unless closed
forms are given); :class:`NumpyObjective` wraps a SciPy-style NumPy function
(derivatives from ``jac`` or central finite differences).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
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
                if not g.requires_grad:
                    raise ValueError(
                        "the closed-form gradient is not differentiable by autograd "
                        "(no grad_fn): give hvp= or hessian= to the Objective"
                    )
            else:
                value = self._fun(xg)
                if not value.requires_grad:
                    raise ValueError(detached_message(self._fun))
                (g,) = torch.autograd.grad(value, xg, create_graph=True)
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
            _check_scalar(value)
            if not value.requires_grad:
                raise ValueError(detached_message(self._fun))
            (g,) = torch.autograd.grad(value, xg)
        return value.detach(), g

    def check_at(self, x: torch.Tensor) -> None:
        """Evaluate once at ``x``, uncounted, and reject what cannot work: a value
        that is not a torch scalar, or (gradient by autograd) a value that does not
        depend on ``x`` through autograd. Front doors call it on ``x0`` so a broken
        objective fails with one clear error before the first step.

        >>> Objective(lambda x: x.detach().sum()).check_at(torch.ones(2))
        Traceback (most recent call last):
        ...
        ValueError: the objective <lambda> returned a value without an autograd ...
        """
        if self._grad is not None:
            with torch.no_grad():
                value = self._fun(x)
            _check_scalar(value)
            return
        value = probe(self._fun, x)
        _check_scalar(value)
        if not value.requires_grad:
            raise ValueError(detached_message(self._fun))

    def __repr__(self) -> str:
        return f"Objective(fun={getattr(self._fun, '__name__', self._fun)!r})"


def _name(fun: Any) -> str:
    return getattr(fun, "__name__", type(fun).__name__)


def probe(fun: Callable[..., Any], x: torch.Tensor) -> Any:
    """``fun(x)`` on a copy of ``x`` that requires grad, to see whether the value
    keeps an autograd graph. torch's warning about turning such a tensor into a
    Python number is silenced: the caller raises :func:`detached_message`."""
    with torch.enable_grad(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Converting a tensor with requires_grad")
        return fun(x.detach().requires_grad_(True))


def detached_message(fun: Any) -> str:
    """The one error for a torch objective that breaks the autograd graph."""
    return (
        f"the objective {_name(fun)} returned a value without an autograd graph "
        "back to x (no grad_fn): it detaches its input (.detach(), torch.no_grad(), "
        "a new tensor built from .item() or .numpy()). Write it with torch "
        "operations on x, or pass a NumPy function with jac= (see minimize)"
    )


def _check_scalar(value: Any) -> None:
    if not isinstance(value, torch.Tensor):
        raise TypeError(
            f"the objective must return a torch scalar, got {type(value).__name__}"
        )
    if value.numel() != 1:
        raise ValueError(
            f"the objective must return a scalar, got shape {tuple(value.shape)}"
        )


class NumpyObjective(Objective):
    """A SciPy-style NumPy function ``fun(x: ndarray) -> float`` as an Objective.

    ``x`` reaches ``fun`` as a fresh NumPy array of the iterate's shape and dtype
    (never a view of the solver's state). Derivatives:

    * ``jac=True``: ``fun`` returns ``(value, gradient)`` (SciPy's convention);
    * ``jac=callable``: ``jac(x)`` returns the gradient;
    * ``jac=None``: central finite differences, ``2 n`` calls of ``fun`` per
      gradient with steps ``h_i = eps^(1/3) max(1, |x_i|)`` (error about
      ``eps^(2/3)`` relative).

    Hessian-vector products and Hessians are central differences of that
    gradient (``2`` gradients per product, ``2 n`` per Hessian, steps
    ``eps^(1/3)`` with a gradient oracle, ``eps^(1/4)`` over a finite-difference
    gradient). ``counts`` adds ``fevals`` and ``jevals``: the calls of ``fun`` and
    ``jac`` themselves, finite differences included.

    Examples
    --------
    >>> from scipy.optimize import rosen, rosen_der
    >>> f = NumpyObjective(rosen, jac=rosen_der)
    >>> x = torch.tensor([0.0, 0.0], dtype=torch.float64)
    >>> f.value(x).item(), f.grad(x).tolist(), f.counts["jevals"]
    (1.0, [-2.0, 0.0], 1)
    >>> g = NumpyObjective(rosen)
    >>> round(g.grad(torch.zeros(2, dtype=torch.float64))[0].item(), 6)
    -2.0
    >>> g.counts["fevals"]
    4
    """

    def __init__(self, fun: Callable[..., Any], *, jac: Any = None) -> None:
        if not (jac is None or jac is True or callable(jac)):
            raise TypeError(
                f"jac must be True, a callable or None, got {type(jac).__name__}"
            )
        super().__init__(fun)
        self._numpy_fun = fun
        self._jac = jac
        self.counts.update(fevals=0, jevals=0)

    def _call(self, x: torch.Tensor) -> Any:
        self.counts["fevals"] += 1
        return self._numpy_fun(x.detach().cpu().numpy().copy())

    def _scalar(self, out: Any, x: torch.Tensor) -> torch.Tensor:
        value = np.asarray(out)
        if value.size != 1:
            raise ValueError(
                f"the objective {_name(self._fun)} must return a scalar, got shape "
                f"{value.shape}"
            )
        return torch.tensor(float(value.reshape(-1)[0]), dtype=x.dtype, device=x.device)

    def _vector(self, out: Any, x: torch.Tensor) -> torch.Tensor:
        g = np.asarray(out, dtype=np.float64)
        if g.size != x.numel():
            raise ValueError(
                f"the gradient must have {x.numel()} entries (x's shape "
                f"{tuple(x.shape)}), got shape {g.shape}"
            )
        return torch.as_tensor(g.reshape(tuple(x.shape)), dtype=x.dtype).to(x.device)

    def _pair(self, x: torch.Tensor) -> tuple[Any, Any]:
        out = self._call(x)
        if not (isinstance(out, (tuple, list)) and len(out) == 2):
            raise ValueError(
                f"with jac=True the objective {_name(self._fun)} must return "
                f"(value, gradient), got {type(out).__name__}"
            )
        return out[0], out[1]

    def _value(self, x: torch.Tensor) -> torch.Tensor:
        out = self._pair(x)[0] if self._jac is True else self._call(x)
        return self._scalar(out, x)

    def _gradient(self, x: torch.Tensor) -> torch.Tensor:
        if self._jac is True:
            return self._vector(self._pair(x)[1], x)
        if callable(self._jac):
            self.counts["jevals"] += 1
            return self._vector(self._jac(x.detach().cpu().numpy().copy()), x)
        eps = torch.finfo(x.dtype).eps
        flat = x.detach().reshape(-1)
        steps = eps ** (1 / 3) * flat.abs().clamp(min=1.0)
        g = torch.empty_like(flat)
        for i in range(flat.numel()):
            up, down = flat.clone(), flat.clone()
            up[i] += steps[i]
            down[i] -= steps[i]
            f_up = self._value(up.reshape(x.shape))
            f_down = self._value(down.reshape(x.shape))
            # the step actually taken (x_i + h rounded), not the nominal h
            g[i] = (f_up - f_down) / (up[i] - down[i])
        return g.reshape(x.shape)

    def _difference_step(self, x: torch.Tensor) -> float:
        eps = torch.finfo(x.dtype).eps
        power = 1 / 4 if self._jac is None else 1 / 3
        return float(eps**power * max(1.0, float(x.abs().max())))

    def value(self, x: torch.Tensor) -> torch.Tensor:
        self.counts["values"] += 1
        return self._value(x)

    def grad(self, x: torch.Tensor) -> torch.Tensor:
        self.counts["grads"] += 1
        return self._gradient(x)

    def value_and_grad(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self.counts["values"] += 1
        self.counts["grads"] += 1
        if self._jac is True:
            value, g = self._pair(x)
            return self._scalar(value, x), self._vector(g, x)
        return self._value(x), self._gradient(x)

    def hvp(self, x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """``H(x) v`` by a central difference of the gradient along ``v``."""
        self.counts["hvps"] += 1
        scale = float(v.abs().max())
        if scale == 0:
            return torch.zeros_like(v)
        h = self._difference_step(x) / scale
        diff = self._gradient(x + h * v) - self._gradient(x - h * v)
        return diff / (2 * h)

    def hessian(self, x: torch.Tensor) -> torch.Tensor:
        """The Hessian by central differences of the gradient, symmetrized."""
        self.counts["hessians"] += 1
        n = x.numel()
        h = self._difference_step(x)
        flat = x.detach().reshape(-1)
        H = torch.empty(n, n, dtype=x.dtype, device=x.device)
        for i in range(n):
            e = torch.zeros_like(flat)
            e[i] = h
            up = self._gradient((flat + e).reshape(x.shape)).reshape(-1)
            down = self._gradient((flat - e).reshape(x.shape)).reshape(-1)
            H[:, i] = (up - down) / (2 * h)
        return 0.5 * (H + H.T)

    def check_at(self, x: torch.Tensor) -> None:
        saved = dict(self.counts)
        try:
            if self._jac is True:
                self._vector(self._pair(x)[1], x)
            self._value(x)
        finally:
            self.counts.update(saved)

    def __repr__(self) -> str:
        return f"NumpyObjective(fun={_name(self._fun)!r}, jac={self._jac!r})"


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
