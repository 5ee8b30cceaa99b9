"""Equality constraints ``c(x) = 0`` for the constrained methods of ``minimize``.

:class:`EqualityConstraints` is what the user passes (``c``, optionally its
Jacobian and the constraint part of the Lagrangian Hessian);
:meth:`EqualityConstraints.bind` checks it at ``x0`` and returns the counted
:class:`BoundConstraints` a method evaluates.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

Tensor = torch.Tensor


def _difference_step(x: Tensor) -> float:
    # central differences: error O(h^2) + O(eps / h) balances at h ~ eps^(1/3)
    eps = torch.finfo(x.dtype).eps
    return float(eps ** (1.0 / 3.0)) * max(1.0, float(x.abs().max()))


@dataclass(frozen=True)
class EqualityConstraints:
    """The equality constraints ``c(x) = 0``, ``c: R^n -> R^m``.

    Pass them to :func:`~itersolve.optimize.minimize` with a constrained method
    (:class:`~itersolve.optimize.AdaSketchSQP`). Compare with SciPy's
    ``NonlinearConstraint(fun, 0, 0, jac=..., hess=...)``.

    Parameters
    ----------
    fun
        ``c(x)``: a torch function returning an ``(m,)`` tensor (Jacobian and
        Hessians by autograd), or a NumPy function returning an ``(m,)`` array
        (told apart by one call at ``x0``, as ``minimize`` does for objectives).
    jac
        ``x -> (m, n)`` Jacobian (or ``(m, *x.shape)``), in the kind of ``fun``;
        ``None``: autograd (torch) or central differences (NumPy, ``2 n`` calls
        of ``fun`` per Jacobian).
    hess
        ``(x, lam) -> (n, n)`` matrix ``sum_i lam_i Hess c_i(x)`` (SciPy's
        ``hess(x, v)``); ``None``: autograd of ``lam^T c`` (torch) or central
        differences of ``jac(x)^T lam`` (NumPy, ``2 n`` Jacobians).

    Examples
    --------
    >>> import torch
    >>> from itersolve.optimize import EqualityConstraints
    >>> con = EqualityConstraints(lambda x: (x**2).sum(0, keepdim=True) - 1.0)
    >>> bound = con.bind(torch.tensor([1.0, 1.0], dtype=torch.float64))
    >>> bound.m, bound.jacobian(torch.tensor([1.0, 0.0], dtype=torch.float64))
    (1, tensor([[2., 0.]], dtype=torch.float64))
    """

    fun: Callable[..., Any]
    jac: Callable[..., Any] | None = None
    hess: Callable[..., Any] | None = None

    def __post_init__(self) -> None:
        for name in ("fun", "jac", "hess"):
            value = getattr(self, name)
            if value is not None and not callable(value):
                raise TypeError(
                    f"EqualityConstraints {name} must be callable, got "
                    f"{type(value).__name__}"
                )
        if self.fun is None:
            raise TypeError("EqualityConstraints fun must be callable, got None")

    def bind(self, x0: Tensor) -> BoundConstraints:
        """Check the constraints at ``x0`` and return the counted evaluator.

        Raises ``ValueError`` when ``c(x0)`` cannot be evaluated, is not a
        non-empty 1-D vector or is not finite, or when the Jacobian at ``x0`` is
        not ``(m, n)``.
        """
        numpy_mode = False
        try:
            with torch.no_grad():
                value = self.fun(x0)
            if not isinstance(value, Tensor):
                raise TypeError("not a tensor")
        except Exception as torch_error:
            try:
                value = np.asarray(self.fun(x0.detach().cpu().numpy().copy()))
            except Exception as exc:
                raise ValueError(
                    "the constraints c could not be evaluated at x0 of shape "
                    f"{tuple(x0.shape)}: {type(torch_error).__name__}: {torch_error}"
                ) from exc
            if not np.issubdtype(value.dtype, np.number):
                raise TypeError(
                    f"the constraints c(x0) must be numbers, got dtype {value.dtype}"
                ) from torch_error
            numpy_mode = True
        shape = tuple(value.shape)
        if len(shape) != 1 or shape[0] == 0:
            raise ValueError(
                f"the constraints c(x0) must be a 1-D vector of shape (m,) with "
                f"m >= 1, got shape {shape}"
            )
        bound = BoundConstraints(self, tuple(x0.shape), shape[0], numpy_mode)
        c0 = bound.value(x0)
        if not bool(torch.isfinite(c0).all()):
            raise ValueError(f"the constraints c(x0) are not finite: {c0.tolist()[:8]}")
        J0 = bound.jacobian(x0)
        if not bool(torch.isfinite(J0).all()):
            raise ValueError("the constraint Jacobian at x0 is not finite")
        bound.reset_counts()
        return bound


@dataclass
class BoundConstraints:
    """:class:`EqualityConstraints` checked at ``x0``: counted evaluations of
    ``c`` (``(m,)``), its Jacobian (``(m, n)``, ``n = x.numel()``) and the
    constraint part ``sum_i lam_i Hess c_i`` of the Lagrangian Hessian.

    Counters (``counts``): ``constraint_values``, ``constraint_jacobians``,
    ``constraint_hessians``.
    """

    spec: EqualityConstraints
    shape: tuple[int, ...]
    m: int
    numpy_mode: bool
    counts: dict[str, int] = field(
        default_factory=lambda: {
            "constraint_values": 0,
            "constraint_jacobians": 0,
            "constraint_hessians": 0,
        }
    )

    @property
    def n(self) -> int:
        return int(np.prod(self.shape)) if self.shape else 1

    def reset_counts(self) -> None:
        for key in self.counts:
            self.counts[key] = 0

    def _raw(self, x: Tensor) -> Tensor:
        if self.numpy_mode:
            out = np.asarray(self.spec.fun(x.detach().cpu().numpy().copy()), float)
            return torch.as_tensor(out, dtype=x.dtype, device=x.device).reshape(-1)
        with torch.no_grad():
            return self.spec.fun(x).reshape(-1).to(x.dtype)

    def value(self, x: Tensor) -> Tensor:
        """``c(x)`` as an ``(m,)`` tensor."""
        self.counts["constraint_values"] += 1
        return self._raw(x)

    def jacobian(self, x: Tensor) -> Tensor:
        """The ``(m, n)`` Jacobian of ``c`` at ``x``."""
        self.counts["constraint_jacobians"] += 1
        n = x.numel()
        if self.spec.jac is not None:
            if self.numpy_mode:
                raw = np.asarray(
                    self.spec.jac(x.detach().cpu().numpy().copy()), dtype=float
                )
                J = torch.as_tensor(raw, dtype=x.dtype, device=x.device)
            else:
                with torch.no_grad():
                    J = torch.as_tensor(self.spec.jac(x)).to(x.dtype)
            if J.numel() != self.m * n or J.shape[0] != self.m:
                raise ValueError(
                    f"the constraint Jacobian jac(x) must have shape (m, n) = "
                    f"({self.m}, {n}), got {tuple(J.shape)}"
                )
            return J.reshape(self.m, n)
        if self.numpy_mode:
            return self._difference_jacobian(x)
        flat = x.detach().reshape(-1)
        J = torch.autograd.functional.jacobian(
            lambda z: self.spec.fun(z.reshape(x.shape)).reshape(-1),
            flat,
            vectorize=True,
        )
        return J.reshape(self.m, n).detach()

    def _difference_jacobian(self, x: Tensor) -> Tensor:
        flat = x.reshape(-1)
        h = _difference_step(flat)
        cols = []
        for j in range(flat.numel()):
            e = torch.zeros_like(flat)
            e[j] = h
            plus = self._raw((flat + e).reshape(x.shape))
            minus = self._raw((flat - e).reshape(x.shape))
            cols.append((plus - minus) / (2 * h))
        return torch.stack(cols, dim=1)

    def hessian(self, x: Tensor, lam: Tensor) -> Tensor:
        """``sum_i lam_i Hess c_i(x)`` as an ``(n, n)`` tensor."""
        self.counts["constraint_hessians"] += 1
        n = x.numel()
        if self.spec.hess is not None:
            if self.numpy_mode:
                raw = self.spec.hess(
                    x.detach().cpu().numpy().copy(), lam.detach().cpu().numpy().copy()
                )
                H = torch.as_tensor(np.asarray(raw, float), dtype=x.dtype)
            else:
                with torch.no_grad():
                    H = torch.as_tensor(self.spec.hess(x, lam)).to(x.dtype)
            if H.numel() != n * n:
                raise ValueError(
                    f"the constraint Hessian hess(x, lam) must have shape (n, n) = "
                    f"({n}, {n}), got {tuple(H.shape)}"
                )
            return H.reshape(n, n).to(x.device)
        if self.numpy_mode or self.spec.jac is not None:
            return self._difference_hessian(x, lam)
        flat = x.detach().reshape(-1)
        H = torch.autograd.functional.hessian(
            lambda z: (lam * self.spec.fun(z.reshape(x.shape)).reshape(-1)).sum(),
            flat,
            vectorize=True,
        )
        return H.reshape(n, n).detach()

    def _difference_hessian(self, x: Tensor, lam: Tensor) -> Tensor:
        # jac is not counted again: one constraint_hessians call stands for it
        flat = x.reshape(-1)
        h = _difference_step(flat)
        saved = self.counts["constraint_jacobians"]
        cols = []
        for j in range(flat.numel()):
            e = torch.zeros_like(flat)
            e[j] = h
            plus = self.jacobian((flat + e).reshape(x.shape)).T @ lam
            minus = self.jacobian((flat - e).reshape(x.shape)).T @ lam
            cols.append((plus - minus) / (2 * h))
        self.counts["constraint_jacobians"] = saved
        H = torch.stack(cols, dim=1)
        return 0.5 * (H + H.T)


def bind_constraints(constraints: Any, x0: Tensor) -> BoundConstraints:
    """``constraints`` (an :class:`EqualityConstraints`) checked at ``x0``.

    >>> import torch
    >>> c = EqualityConstraints(lambda x: x[:1] - 1.0)
    >>> bind_constraints(c, torch.zeros(3, dtype=torch.float64)).m
    1
    """
    if not isinstance(constraints, EqualityConstraints):
        raise TypeError(
            "constraints must be an itersolve.optimize.EqualityConstraints, got "
            f"{type(constraints).__name__}"
        )
    return constraints.bind(x0)
