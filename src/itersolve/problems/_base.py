"""The one base of the fixture problems in :mod:`itersolve.problems`.

Every fixture is rebuilt from its constructor arguments: a subclass names them in
``fields`` (each an attribute holding the argument's value) and inherits

* ``to(dtype=None, device=None)`` -- the same problem with its floating tensors cast
  to ``dtype`` and every tensor moved to ``device`` (integer tensors such as class
  labels keep their dtype; a ``dtype`` / ``device`` constructor argument is
  replaced), rebuilt through the constructor so derived data is recomputed;
* ``__repr__`` -- ``Name(field=..., ...)`` with arrays shown by their shape, so a
  repr stays one line for a problem with a million entries (and the ``dtype``
  when it is not a field).

A fixture whose constructor arguments are not all stored under their own names
overrides :meth:`FixtureProblem.arguments`; one whose rebuild would redo expensive
work overrides ``to``.
"""

from __future__ import annotations

from typing import Any, ClassVar, Self

import numpy as np
import scipy.sparse as sp
import torch

__all__ = ["FixtureProblem"]


def _moved(
    value: Any, dtype: torch.dtype | None, device: torch.device | str | None
) -> Any:
    if isinstance(value, torch.Tensor):
        cast = dtype if dtype is not None and value.is_floating_point() else None
        return value.to(dtype=cast, device=device)
    return value


def _summary(value: Any) -> str:
    if isinstance(value, (torch.Tensor, np.ndarray)) or sp.issparse(value):
        return str(tuple(value.shape))
    if isinstance(value, (torch.dtype, torch.device)):
        return str(value)
    return repr(value)


class FixtureProblem:
    """Base class of the ``itersolve.problems`` fixtures: ``to()`` and ``__repr__``.

    Subclasses set the class attribute ``fields`` to their constructor's argument
    names, in order; each must be stored as an attribute of the same name (or the
    subclass overrides :meth:`arguments`).

    Examples
    --------
    >>> class Shifted(FixtureProblem):
    ...     fields = ("a", "shift")
    ...     def __init__(self, a, shift=0.0):
    ...         self.a, self.shift = torch.as_tensor(a), shift
    >>> p = Shifted(torch.ones(3, dtype=torch.float64), shift=2.0)
    >>> p
    Shifted(a=(3,), shift=2.0)
    >>> p.to(dtype=torch.float32).a.dtype
    torch.float32
    """

    fields: ClassVar[tuple[str, ...]] = ()

    def arguments(self) -> dict[str, Any]:
        """The constructor arguments that rebuild this problem, by name."""
        return {name: getattr(self, name) for name in self.fields}

    def to(
        self, dtype: torch.dtype | None = None, device: torch.device | str | None = None
    ) -> Self:
        """The same problem with floating tensors cast to ``dtype`` and tensors moved
        to ``device`` (``None``: unchanged)."""
        kwargs = {k: _moved(v, dtype, device) for k, v in self.arguments().items()}
        if "dtype" in kwargs and dtype is not None:
            kwargs["dtype"] = dtype
        if "device" in kwargs and device is not None:
            kwargs["device"] = torch.device(device)
        return type(self)(**kwargs)

    def __repr__(self) -> str:
        arguments = self.arguments()
        dtype = getattr(self, "dtype", None)
        if "dtype" not in arguments and isinstance(dtype, torch.dtype):
            arguments["dtype"] = dtype
        parts = [f"{k}={_summary(v)}" for k, v in arguments.items()]
        return f"{type(self).__name__}({', '.join(parts)})"
