"""``solve_convex_relu``: the front door of the convex two-layer ReLU program."""

from __future__ import annotations

from typing import Any

import torch

from itersolve._core.frontdoor import check_method, solve
from itersolve._core.iterate import Callback
from itersolve._core.solution import Solution
from itersolve._core.tensors import as_tensor
from itersolve.optimize.convex_relu._admm import ConvexReLUADMM
from itersolve.optimize.convex_relu._fista import ConvexReLUFISTA
from itersolve.optimize.convex_relu._problem import ConvexReLUProblem


def solve_convex_relu(
    problem: ConvexReLUProblem,
    method: ConvexReLUADMM | ConvexReLUFISTA | None = None,
    *,
    x0: Any = None,
    callback: Callback | None = None,
    record: bool | int = False,
    throw: bool = False,
) -> Solution:
    """Solve the convex program of a two-layer ReLU network.

    Parameters
    ----------
    problem
        A :class:`ConvexReLUProblem` (data, arrangements, ``beta``).
    method
        :class:`ConvexReLUADMM` (default, ``rho=1``; constrained or gated
        program) or :class:`ConvexReLUFISTA` (gated program only).
    x0
        Start, shape ``problem.shape``; zeros by default.
    callback, record, throw
        As for every front door (:func:`itersolve.linear_solve`).

    Returns
    -------
    Solution
        ``x`` of shape ``problem.shape`` (``(2, P, d)``: the stacks ``v`` and
        ``w``; ``d`` counts the bias column) in the array kind and dtype of
        ``problem``'s ``X``; ``extras``: ``objective`` (the convex objective at
        ``x``), ``constraint_violation``, ``bias`` and ``gated`` (what
        :func:`recover_relu_network` reads). A ``NaN`` in ``X`` or ``y`` gives
        ``Status.NONFINITE_INPUT``.

    Examples
    --------
    >>> import numpy as np
    >>> from itersolve.optimize.convex_relu import (
    ...     ConvexReLUADMM, ConvexReLUProblem, solve_convex_relu)

    A warm start from an earlier answer, with the per-step record:

    >>> rng = np.random.default_rng(0)
    >>> X, y = rng.standard_normal((20, 2)), rng.standard_normal(20)
    >>> problem = ConvexReLUProblem(X, y, beta=1.0, arrangements=3)
    >>> first = solve_convex_relu(problem, ConvexReLUADMM(rho=1.0, rtol=1e-4))
    >>> sol = solve_convex_relu(problem, ConvexReLUADMM(rho=1.0), x0=first.x,
    ...                         record=True)
    >>> sol.success, sorted(sol.trace.as_dict())
    (True, ['dual_residual', 'objective', 'primal_residual', 'rho', 'step', 'time'])
    """
    if not isinstance(problem, ConvexReLUProblem):
        raise TypeError(
            f"problem must be a ConvexReLUProblem, got {type(problem).__name__}"
        )
    if method is None:
        method = ConvexReLUADMM()
    check_method(method, "ConvexReLUADMM(rho=1.0)")
    if not isinstance(method, (ConvexReLUADMM, ConvexReLUFISTA)):
        raise TypeError(
            "method must be ConvexReLUADMM or ConvexReLUFISTA, got "
            f"{type(method).__name__}"
        )
    method.check_problem(problem)
    if x0 is None:
        start = torch.zeros(problem.shape, dtype=problem.dtype, device=problem.X.device)
    else:
        start, _ = as_tensor(x0, "x0", dtype=problem.dtype, device=problem.X.device)
        if tuple(start.shape) != problem.shape:
            raise ValueError(
                f"x0 must have shape {problem.shape}, got {tuple(start.shape)}"
            )
    solution = solve(
        method,
        problem,
        start,
        output=problem.info,
        callback=callback,
        record=record,
        throw=throw,
        check_finite=(problem.X, problem.y),
    )
    x, _ = as_tensor(solution.x, "x", dtype=problem.dtype, device=problem.X.device)
    solution.extras.update(
        objective=float(problem.value(x)),
        constraint_violation=problem.constraint_violation(x),
        bias=problem.bias,
        gated=problem.gated,
    )
    return solution
