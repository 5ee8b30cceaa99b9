"""``linear_solve``: the front door for linear systems."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from itersolve._core.iterate import (
    Callback,
    IterativeMethod,
    finish,
    iterate,
    run_inner,
)
from itersolve._core.operators import LinearOperator, aslinearoperator
from itersolve._core.solution import Solution
from itersolve._core.tensors import as_tensor, result_dtype, to_output
from itersolve.linear._cg import CG
from itersolve.linear._gmres import GMRES
from itersolve.linear._problem import (
    BatchedMatrixOperator,
    LinearProblem,
    explicit_matrix,
    looks_spd,
)


def _is_batched_matrix(A: Any) -> bool:
    return isinstance(A, (torch.Tensor, np.ndarray)) and A.ndim == 3


def default_method(op: LinearOperator) -> IterativeMethod:
    """``CG()`` when ``A`` looks SPD (explicit, symmetric, positive diagonal),
    ``GMRES()`` otherwise (matrix-free operators included)."""
    return CG() if looks_spd(op) else GMRES()


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
        :class:`~itersolve.LinearOperator` or scipy ``LinearOperator``. A dense
        array of shape ``(B, n, n)`` is a batch of ``B`` independent systems
        (then ``b`` and ``x0`` have shape ``(B, n)``).
    b
        Right-hand side, shape ``(n,)``, or ``(n, k)`` for ``k`` systems at once
        (or ``(B, n)`` with a batched ``A``).
    method
        A configured solver such as ``CG(rtol=1e-8)``. ``None`` picks ``CG()`` when
        ``A`` is an explicit matrix that looks SPD (symmetric, positive diagonal)
        and ``GMRES()`` otherwise (matrix-free operators included).
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

    Examples
    --------
    >>> import numpy as np, itersolve
    >>> A = np.array([[[4.0, 1.0], [1.0, 3.0]], [[2.0, 0.0], [0.0, 5.0]]])
    >>> sol = itersolve.linear_solve(A, np.ones((2, 2)), itersolve.CG(rtol=1e-12))
    >>> np.allclose(np.einsum("bij,bj->bi", A, sol.x), 1.0)
    True
    """
    b_t, info = as_tensor(b, "b")
    batched = _is_batched_matrix(A)
    if batched:
        A_t = as_tensor(A, "A", device=b_t.device)[0]
        batch_op = BatchedMatrixOperator(A_t)
        if b_t.shape != (batch_op.batch, batch_op.shape[0]):
            raise ValueError(
                f"b must have shape {(batch_op.batch, batch_op.shape[0])} to match "
                f"a batched A of shape {tuple(A_t.shape)}, got {tuple(b_t.shape)}"
            )
        op: LinearOperator = batch_op
    else:
        op = aslinearoperator(A, dtype=None, device=b_t.device)
    dtype = result_dtype(op.dtype, b_t.dtype)
    if op.dtype != dtype:
        op = (
            BatchedMatrixOperator(A_t.to(dtype))
            if batched
            else aslinearoperator(A, dtype=dtype, device=b_t.device)
        )
    b_t = b_t.to(dtype)
    # A batch of systems runs as columns: (B, n) is viewed as (n, B), no copy.
    rhs = b_t.T if batched else b_t
    problem = LinearProblem(op, rhs)
    expected = tuple(b_t.shape) if batched else (op.shape[1], *b_t.shape[1:])
    if x0 is None:
        x0_t = (
            torch.zeros_like(rhs)
            if batched
            else torch.zeros(expected, dtype=dtype, device=b_t.device)
        )
    else:
        x0_t = as_tensor(x0, "x0", dtype=dtype, device=b_t.device)[0]
        if tuple(x0_t.shape) != expected:
            raise ValueError(f"x0 must have shape {expected}, got {tuple(x0_t.shape)}")
        if batched:
            x0_t = x0_t.T
    method = default_method(op) if method is None else method
    if not isinstance(method, IterativeMethod):
        raise TypeError(
            f"method must be a solver such as CG(), got {type(method).__name__}"
        )
    matrix = explicit_matrix(op)
    inputs = [rhs]
    if matrix is not None:
        inputs.append(matrix.values() if matrix.layout == torch.sparse_csr else matrix)
    matvecs_before = op.matvecs
    _, solution = iterate(
        method, problem, x0_t, callback=callback, record=record, check_finite=inputs
    )
    solution.stats["matvecs"] = op.matvecs - matvecs_before
    x = solution.x.T.contiguous() if batched else solution.x
    solution.x = to_output(x, info)
    return finish(solution, throw=throw)


def inner_solve(
    method: IterativeMethod,
    A: Any,
    b: torch.Tensor,
    *,
    x0: torch.Tensor | None = None,
    max_steps: int | None = None,
) -> Solution:
    """Solve ``A x = b`` as the inner step of another method.

    The tight entry of the shared Krylov engine: the same recurrence as
    :func:`linear_solve` (same iterates, same ``matvecs``), with no trace, no
    callback, no timing, no input scan, no conversion and no warning. ``A`` is a
    :class:`~itersolve.LinearOperator` (or anything :func:`aslinearoperator`
    takes with ``dtype``/``device`` of ``b``), ``b`` a torch tensor of shape
    ``(n,)`` or ``(n, k)``. The caller reads ``solution.status`` and decides;
    ``solution.x`` is a torch tensor. ``max_steps`` overrides the method's limit.

    Examples
    --------
    >>> import torch
    >>> from itersolve.linear import CG, inner_solve
    >>> A = torch.tensor([[4.0, 1.0], [1.0, 3.0]], dtype=torch.float64)
    >>> sol = inner_solve(CG(rtol=1e-12), A, torch.ones(2, dtype=torch.float64))
    >>> sol.status.name, sol.stats["matvecs"]
    ('SUCCESS', 3)
    """
    if callable(A) and not isinstance(A, (LinearOperator, torch.Tensor)):
        op = aslinearoperator(
            A, shape=(b.shape[0], b.shape[0]), dtype=b.dtype, device=b.device
        )
    else:
        op = aslinearoperator(A, dtype=b.dtype, device=b.device)
    before = op.matvecs
    x_start = torch.zeros_like(b) if x0 is None else x0
    _, solution = run_inner(method, LinearProblem(op, b), x_start, max_steps=max_steps)
    solution.stats["matvecs"] = op.matvecs - before
    return solution
