"""The fixed-point problem ``z = f(z)`` and the bookkeeping its methods share."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from itersolve._core.tensors import Kind, as_tensor

#: A residual that grows by this factor over its initial value ends that
#: sample's run with ``Status.DIVERGED`` (issue 16).
DIVERGENCE_FACTOR = 1e6


@dataclass
class Record:
    """What the problem saw over a run, per sample: the lowest-residual iterate
    (returned for a sample that did not converge) and the convergence flags."""

    best_x: torch.Tensor | None = None
    best_res: torch.Tensor | None = None
    converged: torch.Tensor | None = None


@dataclass
class FixedPointProblem:
    """``z = f(z)`` on ``B`` rows of ``n`` unknowns (``B = 1`` unbatched).

    Methods work on the flattened layout ``(B, n)``; :meth:`map` reshapes each
    row to the user's shape ``shape``, converts to the input's array kind
    (numpy in, numpy for ``f``), calls ``f`` and checks that the shape is kept.
    ``calls`` counts calls of ``f`` (each evaluates the whole batch); ``f(z)``
    is cast to the dtype of the iterate.

    Examples
    --------
    >>> import torch
    >>> from itersolve._core.tensors import Kind
    >>> p = FixedPointProblem(lambda z: 0.5 * z + 1.0, (2,), False, Kind.TORCH)
    >>> p.map(torch.zeros(1, 2, dtype=torch.float64))
    tensor([[1., 1.]], dtype=torch.float64)
    >>> p.residual(torch.full((1, 2), 2.0, dtype=torch.float64))
    tensor([[0., 0.]], dtype=torch.float64)
    """

    f: Callable[[Any], Any]
    shape: tuple[int, ...]
    batched: bool
    kind: Kind
    calls: int = 0
    record: Record = field(default_factory=Record)

    def to_user(self, z: torch.Tensor) -> torch.Tensor:
        return z.reshape(self.shape)

    def map(self, z: torch.Tensor) -> torch.Tensor:
        """``f`` applied to every row of ``z`` (shape ``(B, n)``)."""
        arg: Any = self.to_user(z)
        if self.kind is not Kind.TORCH:
            arg = arg.detach().cpu().numpy()
            arg.flags.writeable = False  # f must not edit the iterate
        out = self.f(arg)
        self.calls += 1
        if isinstance(out, np.ndarray | torch.Tensor | float | int | list | tuple):
            t, _ = as_tensor(out, "f(z)", device=z.device)
        else:
            raise TypeError(f"f must return an array like z, got {type(out).__name__}")
        if tuple(t.shape) != self.shape:
            raise ValueError(
                f"f must keep the shape of z: z has shape {self.shape}, f(z) has "
                f"shape {tuple(t.shape)}"
            )
        # The iteration lives in z0's dtype: a float32 z0 chooses float32
        # iterates even when f computes in float64 (numpy promotion).
        t = t.to(z.dtype)
        return t.reshape(z.shape)

    def residual(self, z: torch.Tensor) -> torch.Tensor:
        """``g(z) = f(z) - z``, the root form (what Newton–Krylov solves)."""
        return self.map(z) - z

    def answer(self, x: torch.Tensor) -> torch.Tensor:
        """The returned iterate: ``x`` for a converged row, the lowest-residual
        iterate of the run for any other row, in the user's shape."""
        rec = self.record
        if rec.best_x is not None and rec.converged is not None:
            x = torch.where(rec.converged[:, None], x, rec.best_x)
        return self.to_user(x)


def row_norms(v: torch.Tensor) -> torch.Tensor:
    """Euclidean norm of each row of ``v`` (shape ``(B, n)`` -> ``(B,)``)."""
    return torch.linalg.vector_norm(v, dim=1)
