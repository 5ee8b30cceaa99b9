"""``linear_solve``: the front door for linear systems."""

from __future__ import annotations

from typing import Any

import torch

from itersolve._core.iterate import Callback, IterativeMethod, finish, iterate
from itersolve._core.operators import aslinearoperator
from itersolve._core.solution import Solution
from itersolve._core.tensors import as_tensor, result_dtype, to_output
from itersolve.linear._cg import CG
from itersolve.linear._problem import LinearProblem


def linear_solve(
    A: Any,
    b: Any,
    method: IterativeMethod | None = None,
    *,
    x0: Any = None,
    callback: Callback | None = None,
    record: bool | int = False,
    throw: bool = False,
) -> Solution:
    """Solve ``A x = b`` iteratively.

    Parameters
    ----------
    A
        Dense matrix (torch/numpy), torch sparse CSR/COO, scipy.sparse matrix,
        :class:`~itersolve.LinearOperator` or scipy ``LinearOperator``.
    b
        Right-hand side, shape ``(n,)``, or ``(n, k)`` for ``k`` systems at once.
    method
        A configured solver such as ``CG(rtol=1e-8)``; ``None`` uses ``CG()``,
        the default for symmetric positive definite systems.
    x0
        Starting point with the shape of ``b`` (zeros by default).
    callback
        Called after every step with an :class:`~itersolve.IterInfo`; returning
        ``True`` stops the run (``Status.STOPPED_BY_CALLBACK``).
    record
        ``True`` records every step in ``solution.trace``; an int ``k`` every k-th.
    throw
        Raise :class:`~itersolve.ConvergenceError` instead of warning when the run
        does not succeed.

    Returns
    -------
    Solution
        ``x`` in the array kind of ``b`` (numpy in, numpy out; torch in, torch out
        on the same device); ``stats["matvecs"]`` counts operator applications.
    """
    b_t, info = as_tensor(b, "b")
    op = aslinearoperator(A, dtype=None, device=b_t.device)
    dtype = result_dtype(op.dtype, b_t.dtype)
    if op.dtype != dtype:
        op = aslinearoperator(A, dtype=dtype, device=b_t.device)
    b_t = b_t.to(dtype)
    problem = LinearProblem(op, b_t)
    if x0 is None:
        x0_t = torch.zeros(
            (op.shape[1], *b_t.shape[1:]), dtype=dtype, device=b_t.device
        )
    else:
        x0_t = as_tensor(x0, "x0", dtype=dtype, device=b_t.device)[0]
        expected = (op.shape[1], *b_t.shape[1:])
        if tuple(x0_t.shape) != expected:
            raise ValueError(f"x0 must have shape {expected}, got {tuple(x0_t.shape)}")
    method = CG() if method is None else method
    if not isinstance(method, IterativeMethod):
        raise TypeError(
            f"method must be a solver such as CG(), got {type(method).__name__}"
        )
    matvecs_before = op.matvecs
    _, solution = iterate(
        method, problem, x0_t, callback=callback, record=record, check_finite=(b_t,)
    )
    solution.stats["matvecs"] = op.matvecs - matvecs_before
    solution.x = to_output(solution.x, info)
    return finish(solution, throw=throw)
