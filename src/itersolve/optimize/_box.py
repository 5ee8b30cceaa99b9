"""``Box(lo, hi)``: bound constraints ``lo <= x <= hi`` for derivative-free methods.

The box is validated once, when it is built (``lo <= hi``, no NaN, ``lo`` not
``+inf`` and ``hi`` not ``-inf``, matching shapes), and against ``x0`` when a
run starts (:meth:`Box.bounds`: shape, and ``x0`` inside). Methods read the
bounds in the dtype and device of the iterate.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

Tensor = torch.Tensor


def _as_bound(value: Any, name: str) -> Tensor:
    if isinstance(value, torch.Tensor):
        t = value.detach().to(torch.float64, copy=True).cpu()
    else:
        try:
            array = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise TypeError(
                f"{name} must be a real number or array, got {type(value).__name__}"
            ) from exc
        t = torch.from_numpy(array.copy())
    if t.is_complex():
        raise TypeError(f"{name} must be real, got a complex array")
    if bool(torch.isnan(t).any()):
        raise ValueError(f"{name} must not contain NaN, got {t.tolist()}")
    return t


def _first(mask: Tensor) -> tuple[int, ...]:
    return tuple(int(i) for i in mask.nonzero()[0])


class Box:
    """Bound constraints ``lo <= x <= hi``, entrywise.

    ``lo`` and ``hi`` are numbers or arrays of the shape of ``x`` (a number, or
    a 0-d array, applies to every entry); ``-inf`` / ``+inf`` leave a side
    open. Passed to :func:`~itersolve.optimize.minimize` as ``constraints=`` for
    the methods that accept a box (:class:`CoveringDirectSearch`,
    :class:`DirectionalAttackSearch`).

    Compare with ``scipy.optimize.Bounds(lb, ub)``.

    Parameters
    ----------
    lo, hi
        Lower and upper bounds; ``lo <= hi`` entrywise, no NaN, ``lo < +inf``
        and ``hi > -inf``.

    Raises
    ------
    ValueError
        ``lo > hi`` anywhere (the box is empty), NaN bounds, ``lo = +inf`` or
        ``hi = -inf``, or shapes of ``lo`` and ``hi`` that differ (other than
        a number against an array).

    Examples
    --------
    >>> import torch
    >>> box = Box([0.0, -1.0], [1.0, 1.0])
    >>> box.project(torch.tensor([2.0, -3.0], dtype=torch.float64)).tolist()
    [1.0, -1.0]
    >>> box.contains(torch.tensor([0.5, 0.0], dtype=torch.float64))
    True
    >>> Box([0.0, 2.0], [1.0, 1.0])
    Traceback (most recent call last):
    ...
    ValueError: Box is empty: lo must be <= hi, got lo[1] = 2.0 > hi[1] = 1.0
    """

    def __init__(self, lo: Any, hi: Any) -> None:
        lo_t, hi_t = _as_bound(lo, "lo"), _as_bound(hi, "hi")
        if lo_t.dim() and hi_t.dim() and lo_t.shape != hi_t.shape:
            raise ValueError(
                f"Box: lo and hi must have the same shape, got {tuple(lo_t.shape)} "
                f"and {tuple(hi_t.shape)}"
            )
        lo_t, hi_t = torch.broadcast_tensors(lo_t, hi_t)
        lo_t, hi_t = lo_t.clone(), hi_t.clone()
        bad = lo_t > hi_t
        if bool(bad.any()):
            i = _first(bad)
            raise ValueError(
                f"Box is empty: lo must be <= hi, got lo{list(i)} = "
                f"{float(lo_t[i])} > hi{list(i)} = {float(hi_t[i])}"
            )
        if bool((lo_t == np.inf).any()) or bool((hi_t == -np.inf).any()):
            raise ValueError("Box is empty: lo must be < +inf and hi > -inf")
        self.lo = lo_t
        self.hi = hi_t

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of the bounds (``()`` for scalar bounds on every entry)."""
        return tuple(self.lo.shape)

    @property
    def bounded(self) -> bool:
        """Whether every side of every entry is finite."""
        return bool(torch.isfinite(self.lo).all() and torch.isfinite(self.hi).all())

    def bounds(self, x0: Tensor, name: str = "x0") -> tuple[Tensor, Tensor]:
        """``(lo, hi)`` shaped like ``x0``, in its dtype and device, after
        checking the shape and that ``x0`` lies in the box.

        >>> box = Box(0.0, 1.0)
        >>> box.bounds(torch.tensor([2.0]))
        Traceback (most recent call last):
        ...
        ValueError: x0 must lie in the box: x0[0] = 2.0 > hi[0] = 1.0
        """
        if self.lo.dim() and tuple(self.lo.shape) != tuple(x0.shape):
            raise ValueError(
                f"Box has shape {self.shape} but {name} has shape "
                f"{tuple(x0.shape)}: they must match"
            )
        lo = self.lo.to(dtype=x0.dtype, device=x0.device).expand(x0.shape)
        hi = self.hi.to(dtype=x0.dtype, device=x0.device).expand(x0.shape)
        for side, mask, bound in (("<", x0 < lo, lo), (">", x0 > hi, hi)):
            if bool(mask.any()):
                i = _first(mask)
                which = "lo" if side == "<" else "hi"
                raise ValueError(
                    f"{name} must lie in the box: {name}{list(i)} = "
                    f"{float(x0[i])} {side} {which}{list(i)} = {float(bound[i])}"
                )
        return lo.contiguous(), hi.contiguous()

    def project(self, x: Tensor) -> Tensor:
        """The nearest point of the box (entrywise clamp); ``x`` is not changed."""
        lo = self.lo.to(dtype=x.dtype, device=x.device)
        hi = self.hi.to(dtype=x.dtype, device=x.device)
        return torch.minimum(torch.maximum(x, lo), hi)

    def contains(self, x: Tensor) -> bool:
        """Whether ``lo <= x <= hi`` holds entrywise."""
        lo = self.lo.to(dtype=x.dtype, device=x.device)
        hi = self.hi.to(dtype=x.dtype, device=x.device)
        return bool(((x >= lo) & (x <= hi)).all())

    def __repr__(self) -> str:
        return f"Box(lo={self.lo.tolist()}, hi={self.hi.tolist()})"


def as_box(constraints: Any) -> Box | None:
    """``constraints`` as a :class:`Box` (``None`` stays ``None``).

    >>> as_box(None) is None
    True
    """
    if constraints is None or isinstance(constraints, Box):
        return constraints
    raise TypeError(
        f"constraints must be a Box(lo, hi) or None, got {type(constraints).__name__}"
    )
