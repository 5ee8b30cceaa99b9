"""``linear_solve``: the front door for linear systems, and ``prepare``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from itersolve._core.frontdoor import check_method, solve
from itersolve._core.iterate import Callback, IterativeMethod, run_inner
from itersolve._core.operators import LinearOperator, aslinearoperator
from itersolve._core.solution import Solution
from itersolve._core.tensors import as_tensor, is_finite, result_dtype
from itersolve.linear._cg import CG
from itersolve.linear._gmres import GMRES
from itersolve.linear._problem import (
    BatchedMatrixOperator,
    LinearProblem,
    explicit_matrix,
    fresh_cache,
    looks_spd,
)


def _is_batched_matrix(A: Any) -> bool:
    return isinstance(A, (torch.Tensor, np.ndarray)) and A.ndim == 3


def default_method(op: LinearOperator) -> IterativeMethod:
    """``CG()`` when ``A`` is SPD by its tags (``op.positive_definite``) or, with
    no tags, looks SPD (explicit, symmetric, positive diagonal; the verdict is
    cached on the operator), ``GMRES()`` otherwise (matrix-free operators
    included)."""
    return CG() if looks_spd(op) else GMRES()


@dataclass(frozen=True)
class LinearSetup:
    """What :func:`prepare` built once for many solves with the same ``A``.

    ``operator`` holds the converted matrix and caches what solvers derive from
    it (compiled-kernel arrays, diagonal, Jacobi preconditioner, structure and
    finiteness verdicts); ``method`` is the solver chosen for it.

    Examples
    --------
    Factor or analyse ``A`` once, then solve for many right-hand sides:

    >>> import numpy as np
    >>> from itersolve.linear import CG, linear_solve, prepare
    >>> from itersolve.problems import poisson
    >>> A = poisson(20, dim=1)
    >>> setup = prepare(A, CG(rtol=1e-10))
    >>> sols = [linear_solve(A, b, state=setup) for b in np.eye(20)[:2]]
    >>> [s.success for s in sols]
    [True, True]
    """

    operator: LinearOperator
    method: IterativeMethod
    source: Any


def prepare(
    A: Any,
    method: IterativeMethod | None = None,
    *,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
    symmetric: bool | None = None,
    positive_definite: bool | None = None,
) -> LinearSetup:
    """Set up ``A`` once for many calls of ``linear_solve(A, b, state=setup)``.

    Converts ``A`` (as :func:`linear_solve` would), applies the declared
    structure tags, picks the default method when ``method`` is ``None`` and
    runs the method's one-off setup (for :class:`CG`: the arrays of the
    compiled kernels and the preconditioner), so each later solve pays only
    for its right-hand side. ``dtype`` should be that of the right-hand sides
    (the float64 / input dtype by default); a solve whose ``b`` promotes to
    another dtype converts ``A`` again.

    Examples
    --------
    >>> import numpy as np, itersolve
    >>> from itersolve.linear import prepare
    >>> A = itersolve.problems.poisson(8, dim=2)
    >>> setup = prepare(A, positive_definite=True)
    >>> type(setup.method).__name__
    'CG'
    >>> B = np.eye(64)[:3]
    >>> xs = [itersolve.linear_solve(A, b, state=setup).x for b in B]
    >>> bool(np.linalg.norm(A @ xs[1] - B[1]) <= 1e-5)
    True
    """
    if _is_batched_matrix(A):
        if symmetric is not None or positive_definite is not None:
            raise ValueError("structure tags apply to one matrix, not a batch")
        op: LinearOperator = BatchedMatrixOperator(
            as_tensor(A, "A", dtype=dtype, device=device)[0]
        )
    else:
        op = aslinearoperator(
            A,
            dtype=dtype,
            device=device,
            symmetric=symmetric,
            positive_definite=positive_definite,
        )
    method = _check_method(default_method(op) if method is None else method)
    setup = getattr(method, "setup", None)
    if setup is not None:
        setup(op)
    _matrix_is_finite(op)
    return LinearSetup(op, method, A)


def _check_method(method: Any) -> IterativeMethod:
    return check_method(method, "CG()")


def _matrix_is_finite(op: LinearOperator) -> bool | None:
    """Whether the explicit matrix is finite, cached on the operator (keyed on
    the tensor's version counter); ``None`` for matrix-free operators."""
    matrix = fresh_cache(op)
    if matrix is None:
        return None
    if "finite" not in op._cache:
        values = matrix.values() if matrix.layout == torch.sparse_csr else matrix
        op._cache["finite"] = is_finite(values)
    return bool(op._cache["finite"])


def _operator(A: Any, b: torch.Tensor, state: LinearSetup | None) -> LinearOperator:
    """``A`` as an operator of ``b``'s result dtype (the prepared one if any)."""
    batched = _is_batched_matrix(A)
    if state is not None:
        op = state.operator
    elif batched:
        op = BatchedMatrixOperator(as_tensor(A, "A", device=b.device)[0])
    else:
        op = aslinearoperator(A, dtype=None, device=b.device)
    dtype = result_dtype(op.dtype, b.dtype)
    if op.dtype == dtype:
        return op
    if isinstance(op, BatchedMatrixOperator):
        return BatchedMatrixOperator(op.matrices.to(dtype))
    converted = aslinearoperator(A, dtype=dtype, device=b.device)
    if converted is op:  # a LinearOperator cannot change dtype
        return op
    return converted.with_tags(
        symmetric=op.symmetric, positive_definite=op.positive_definite
    )


def linear_solve(
    A: Any,
    b: Any,
    method: IterativeMethod | None = None,
    *,
    x0: Any = None,
    callback: Callback | None = None,
    record: bool | int = False,
    throw: bool = False,
    state: LinearSetup | None = None,
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
        ``A`` is declared SPD (``positive_definite=True``, see
        :func:`~itersolve.aslinearoperator`) or, undeclared, is an explicit
        matrix that looks SPD (symmetric, positive diagonal), and ``GMRES()``
        otherwise (matrix-free operators included).
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
    state
        A :class:`LinearSetup` from :func:`prepare` for this ``A``: the
        converted matrix, its structure verdict, kernel arrays and
        preconditioner are reused (and ``method=None`` means the prepared
        method). Same answers as without it.

    Returns
    -------
    Solution
        ``x`` in the array kind of ``b`` (numpy in, numpy out; torch in, torch out
        on the same device); ``stats["matvecs"]`` counts operator applications.

    Examples
    --------
    >>> import numpy as np, itersolve
    >>> A = np.array([[[4.0, 1.0], [1.0, 3.0]], [[2.0, 0.0], [0.0, 5.0]]])
    >>> method = itersolve.linear.CG(rtol=1e-12)
    >>> sol = itersolve.linear_solve(A, np.ones((2, 2)), method)
    >>> np.allclose(np.einsum("bij,bj->bi", A, sol.x), 1.0)
    True
    """
    if state is not None:
        if not isinstance(state, LinearSetup):
            raise TypeError(
                f"state must come from prepare(A), got {type(state).__name__}"
            )
        if A is not state.source and A is not state.operator:
            raise ValueError("state was prepared for another A: call prepare(A)")
        if method is None:
            method = state.method
    b_t, info = as_tensor(b, "b")
    op = _operator(A, b_t, state)
    dtype = op.dtype
    batched = isinstance(op, BatchedMatrixOperator)
    if isinstance(op, BatchedMatrixOperator):
        expected_b = (op.batch, op.shape[0])
        if tuple(b_t.shape) != expected_b:
            raise ValueError(
                f"b must have shape {expected_b} to match a batched A of shape "
                f"{(op.batch, *op.shape)}, got {tuple(b_t.shape)}"
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
    method = _check_method(default_method(op) if method is None else method)
    inputs = [rhs]
    if _matrix_is_finite(op) is False:
        matrix = explicit_matrix(op)
        assert matrix is not None
        inputs.append(matrix.values() if matrix.layout == torch.sparse_csr else matrix)
    return solve(
        method,
        problem,
        x0_t,
        output=info,
        callback=callback,
        record=record,
        throw=throw,
        check_finite=inputs,
        counters=lambda: {"matvecs": op.matvecs},
        to_x=(lambda x: x.T.contiguous()) if batched else None,
    )


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
