"""``solve_variational``: the front door for variational PDEs on tensor grids."""

from __future__ import annotations

from typing import Any

import torch

from itersolve._core.frontdoor import check_method, solve
from itersolve._core.iterate import Callback, IterativeMethod
from itersolve._core.solution import Solution
from itersolve._core.tensors import as_tensor
from itersolve.pde._problem import VariationalProblem
from itersolve.pde._sobolev import SobolevGradientDescent


def solve_variational(
    problem: VariationalProblem,
    method: IterativeMethod | None = None,
    *,
    u0: Any = None,
    callback: Callback | None = None,
    record: bool | int = False,
    throw: bool = False,
) -> Solution:
    """Solve a :class:`VariationalProblem` for the grid function ``u``.

    Parameters
    ----------
    problem
        The energy, its grid and right-hand side ``f``.
    method
        :class:`SobolevGradientDescent` (default), :class:`L2GradientDescent`,
        :class:`PicardIteration` or :class:`NewtonKrylov`.
    u0
        Initial guess on the grid (zeros by default).
    callback, record, throw
        As in :func:`itersolve.linear_solve`.

    Returns
    -------
    Solution
        ``x`` in the array kind and dtype of ``problem.f``; ``stats`` counts
        ``residuals`` (flux evaluations) and ``poisson_solves``.

    Raises
    ------
    TypeError
        ``problem`` is not a :class:`VariationalProblem`.
    ValueError
        ``u0`` empty or not of the grid's shape. (An empty grid or right-hand
        side is refused earlier, by :class:`Grid` and :class:`VariationalProblem`.)

    Examples
    --------
    >>> from itersolve.pde import log_gradient_energy
    >>> sol = solve_variational(log_gradient_energy(32))
    >>> sol.success
    True
    """
    if not isinstance(problem, VariationalProblem):
        raise TypeError(
            f"problem must be a VariationalProblem, got {type(problem).__name__}"
        )
    method = check_method(
        SobolevGradientDescent() if method is None else method,
        "SobolevGradientDescent()",
    )
    dtype = problem.f.dtype
    if u0 is None:
        u0_t = torch.zeros(problem.grid.shape, dtype=dtype, device=problem.f.device)
    else:
        u0_t = as_tensor(u0, "u0", dtype=dtype, device=problem.f.device)[0]
        if u0_t.numel() == 0:  # worded as minimize words an empty x0
            raise ValueError(
                f"u0 must have at least one entry, got shape {tuple(u0_t.shape)}"
            )
        if tuple(u0_t.shape) != problem.grid.shape:
            raise ValueError(
                f"u0 must have the grid's shape {problem.grid.shape}, got "
                f"{tuple(u0_t.shape)}"
            )
    return solve(
        method,
        problem,
        u0_t,
        output=problem.info,
        callback=callback,
        record=record,
        throw=throw,
        check_finite=(problem.f,),
    )
