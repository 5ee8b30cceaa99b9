"""``fixed_point``: the front door for ``z = f(z)``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from itersolve._core.frontdoor import check_method, solve
from itersolve._core.iterate import Callback, IterativeMethod
from itersolve._core.solution import Solution
from itersolve._core.tensors import as_tensor
from itersolve.fixed_point._anderson import Anderson
from itersolve.fixed_point._problem import FixedPointProblem


def fixed_point(
    f: Callable[[Any], Any],
    z0: Any,
    method: IterativeMethod | None = None,
    *,
    batch_dim: int | None = None,
    callback: Callback | None = None,
    record: bool | int = False,
    throw: bool = False,
) -> Solution:
    """Solve ``z = f(z)`` iteratively.

    Parameters
    ----------
    f
        The map. It receives an array of ``z0``'s shape and kind (a read-only
        numpy array for numpy ``z0``, a torch tensor otherwise) and returns one
        of the same shape; it must not modify its argument. Its result is cast
        to the dtype of the iterate.
    z0
        Starting point, any shape (torch tensor, numpy array or sequence).
    method
        A configured method of :mod:`itersolve.fixed_point`; ``None`` picks
        ``Anderson()`` (memory 6, relative regularisation 1e-10), which on a
        contraction costs at most about the evaluations of plain iteration
        and far fewer when the Jacobian's spectrum reaches near 1.
    batch_dim
        ``None``: ``z0`` is one state. ``0``: the leading dimension of ``z0``
        indexes independent fixed points (``f`` maps the whole batch at once
        and must treat the samples independently); each sample stops on its
        own rule, is frozen once converged, and ``stats["sample_fevals"]``
        counts the evaluations each used. ``NewtonKrylov`` takes no batch.
    callback
        Called after every step with an :class:`~itersolve.IterInfo` (its
        ``x`` has the methods' layout ``(B, n)``, ``B = 1`` unbatched);
        returning ``True`` stops the run.
    record
        ``True`` records every step in ``solution.trace``; an int ``k`` every k-th.
    throw
        Raise :class:`~itersolve.ConvergenceError` instead of warning when the
        run does not succeed.

    Returns
    -------
    Solution
        ``x`` in ``z0``'s shape, kind and dtype: the last iterate of every
        converged sample and the lowest-residual iterate of any other;
        ``stats["fevals"]`` counts the calls of ``f``. Stopping rule (per
        sample, on a fresh evaluation of ``f`` at the returned iterate)::

            ||f(z) - z||_2 <= max(rtol ||z||_2, atol)

    Examples
    --------
    >>> import numpy as np
    >>> from itersolve.fixed_point import fixed_point
    >>> from itersolve.problems import contractive_tanh
    >>> f = contractive_tanh(64, rho=0.99, seed=0)
    >>> sol = fixed_point(f, np.zeros(64))
    >>> gap = np.linalg.norm(f(sol.x) - sol.x) / np.linalg.norm(sol.x)
    >>> sol.success, bool(gap <= 1e-8)
    (True, True)
    """
    if not callable(f):
        raise TypeError(f"f must be callable, got {type(f).__name__}")
    if batch_dim not in (None, 0):
        raise ValueError(f"batch_dim must be None or 0, got {batch_dim!r}")
    method = check_method(Anderson() if method is None else method, "Anderson()")
    z, info = as_tensor(z0, "z0")
    # as_tensor lifts a 0-d array to shape (1,); the answer keeps z0's shape.
    z = z.reshape(z0.shape if isinstance(z0, torch.Tensor) else np.shape(z0))
    if batch_dim == 0 and z.ndim < 1:
        raise ValueError("batch_dim=0 needs z0 with a leading batch dimension")
    if z.numel() == 0:
        raise ValueError(f"z0 must not be empty, got shape {tuple(z.shape)}")
    if z.is_complex():
        raise TypeError(f"z0 must be real, got dtype {z.dtype}")
    rows = z.shape[0] if batch_dim == 0 else 1
    problem = FixedPointProblem(f, tuple(z.shape), batch_dim == 0, info.kind)
    return solve(
        method,
        problem,
        z.reshape(rows, -1),
        output=info,
        callback=callback,
        record=record,
        throw=throw,
        to_x=problem.answer,
    )
