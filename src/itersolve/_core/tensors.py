"""The array boundary: anything array-like in, torch inside, the same kind out.

Policy: floating and complex dtypes are kept; integers and booleans become float64;
nothing is ever downcast. Inputs are never written to: solvers clone what they
update in place (see :func:`as_tensor` ``copy``).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch


class Kind(enum.Enum):
    TORCH = "torch"
    NUMPY = "numpy"
    SEQUENCE = "sequence"


@dataclass(frozen=True)
class ArrayInfo:
    """How an input arrived, so the answer can be returned the same way."""

    kind: Kind
    dtype: torch.dtype
    device: torch.device


def floating_dtype(dtype: torch.dtype) -> torch.dtype:
    if dtype.is_floating_point or dtype.is_complex:
        return dtype
    return torch.float64


def as_tensor(
    x: Any,
    name: str,
    *,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
    copy: bool = False,
) -> tuple[torch.Tensor, ArrayInfo]:
    """Convert ``x`` to a floating torch tensor and remember its kind.

    >>> t, info = as_tensor(np.array([1, 2]), "b")
    >>> t.dtype, info.kind
    (torch.float64, <Kind.NUMPY: 'numpy'>)
    """
    if isinstance(x, torch.Tensor):
        kind = Kind.TORCH
        t = x.detach()
    elif isinstance(x, np.ndarray):
        kind = Kind.NUMPY
        if x.dtype == object:
            raise TypeError(f"{name} must be a numeric array, got dtype=object")
        t = torch.from_numpy(numpy_view(x))
    elif sp.issparse(x):
        raise TypeError(f"{name} must be a dense array, got a scipy.sparse matrix")
    elif isinstance(x, (list, tuple, int, float)):
        kind = Kind.SEQUENCE
        try:
            t = torch.as_tensor(np.asarray(x, dtype=float))
        except (ValueError, TypeError) as exc:
            raise TypeError(f"{name} must be array-like of numbers: {exc}") from exc
    else:
        raise TypeError(
            f"{name} must be a torch.Tensor, numpy.ndarray or sequence, "
            f"got {type(x).__name__}"
        )
    if t.is_sparse or t.layout != torch.strided:
        raise TypeError(f"{name} must be dense, got layout {t.layout}")
    info = ArrayInfo(kind, floating_dtype(t.dtype), t.device)
    target = dtype if dtype is not None else info.dtype
    t = t.to(dtype=target, device=device if device is not None else t.device)
    if copy:
        t = t.clone()
    return t, info


def numpy_view(x: np.ndarray) -> np.ndarray:
    """``x`` as a contiguous array torch can wrap (read-only arrays are copied)."""
    if not x.flags.writeable:
        return np.array(x, order="C")
    return np.ascontiguousarray(x)


def to_output(t: torch.Tensor, info: ArrayInfo) -> Any:
    """Return ``t`` in the kind, dtype and device described by ``info``."""
    t = t.detach()
    if info.kind is Kind.TORCH:
        return t.to(device=info.device)
    return t.cpu().numpy()


def is_finite(*tensors: torch.Tensor) -> bool:
    """True when every entry of every tensor is finite."""
    return all(bool(torch.isfinite(t).all()) for t in tensors)


def result_dtype(*dtypes: torch.dtype) -> torch.dtype:
    """The common floating dtype of several inputs (promotion, never downcast)."""
    out = dtypes[0]
    for d in dtypes[1:]:
        out = torch.promote_types(out, d)
    return floating_dtype(out)
