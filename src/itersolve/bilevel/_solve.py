"""``solve``: the front door of multi-block bilevel optimisation."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from itersolve._core.frontdoor import check_method
from itersolve._core.frontdoor import solve as run_method
from itersolve._core.iterate import Callback
from itersolve._core.solution import Solution
from itersolve._core.tensors import as_tensor
from itersolve.bilevel._base import BilevelMethod, BilevelRun
from itersolve.bilevel._bsvrb import BSVRB
from itersolve.bilevel._exact import _check_problem
from itersolve.bilevel._problem import MultiBlockBilevelProblem, check_positive_int


def _lower_start(problem: MultiBlockBilevelProblem, y0: Any) -> Tensor:
    shape = (problem.m, problem.dim_y)
    if y0 is None:
        return torch.zeros(shape, dtype=problem.dtype)
    y, _ = as_tensor(y0, "y0", dtype=problem.dtype)
    if tuple(y.shape) != shape:
        raise ValueError(f"y0 must have shape {shape}, got {tuple(y.shape)}")
    return y


def _check_seed(seed: Any) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    return seed


def _budget(
    method: BilevelMethod,
    problem: MultiBlockBilevelProblem,
    epochs: float | None,
    max_steps: int | None,
) -> int:
    if epochs is not None and max_steps is not None:
        raise ValueError("give epochs or max_steps, not both")
    if max_steps is not None:
        check_positive_int(max_steps, "max_steps")
        return max_steps
    epochs = 10 if epochs is None else epochs
    if (
        isinstance(epochs, bool)
        or not isinstance(epochs, (int, float))
        or not (math.isfinite(epochs) and epochs > 0)
    ):
        raise ValueError(f"epochs must be a positive number, got {epochs!r}")
    return max(1, math.ceil(epochs * method.steps_per_epoch(problem)))


def solve(
    problem: MultiBlockBilevelProblem,
    x0: Any,
    method: BilevelMethod | None = None,
    *,
    y0: Any = None,
    epochs: float | None = None,
    max_steps: int | None = None,
    seed: int = 0,
    callback: Callback | None = None,
    record: bool | int = False,
    throw: bool = False,
) -> Solution:
    """Minimise ``F(x) = (1/m) sum_i f_i(x, y_i*(x))`` over ``x``.

    Parameters
    ----------
    problem
        A :class:`~itersolve.bilevel.MultiBlockBilevelProblem`
        (:class:`~itersolve.bilevel.BilevelProblem` for autograd oracles, or a
        generator of :mod:`itersolve.problems` such as
        :func:`~itersolve.problems.hyperparameter_learning`).
    x0
        Upper starting point, ``dim_x`` entries (torch, numpy or sequence).
    method
        :class:`~itersolve.bilevel.BSVRB` (default, v1),
        :class:`~itersolve.bilevel.RSVRB` or
        :class:`~itersolve.bilevel.StochasticHypergradient`.
    y0
        Lower starting points, shape ``(m, dim_y)`` (zeros by default).
    epochs, max_steps
        The budget, the stopping rule (``SUCCESS`` once spent): ``epochs``
        (default 10; one epoch is ``method.steps_per_epoch(problem)`` steps)
        or ``max_steps`` steps. A method's own ``max_steps`` is the driver's
        hard limit (``MAX_STEPS`` when below the budget).
    seed
        Seed of every block and sample draw: equal seeds, equal runs.
    callback, record, throw
        As for :func:`~itersolve.linear_solve`; ``info.state.y`` holds the
        lower iterates. The trace's columns: ``upper_loss`` (the mean
        upper-level loss on the full set at the tracked lower iterates),
        ``lower_loss`` (the same for the lower level), ``epoch``,
        ``hypergradient_norm``.

    Returns
    -------
    Solution
        ``x`` in ``x0``'s array kind and the problem's dtype;
        ``stats`` counts oracle calls per block (``lower_grads``,
        ``upper_grads``, ``hessians``, ``hvps``, ``cross_products``).

    Examples
    --------
    >>> import numpy as np
    >>> from itersolve.bilevel import BSVRB, solve
    >>> from itersolve.problems import quadratic_bilevel
    >>> p = quadratic_bilevel(m=4, dim_x=3, dim_y=5, n=32, seed=0)
    >>> method = BSVRB(
    ...     version="v2", blocks_per_iter=2, batch_size=8, eta=0.1, tau=0.3, tau_v=0.3
    ... )
    >>> sol = solve(p, np.zeros(3), method, epochs=30, seed=1)
    >>> sol.success, sol.stats["hessians"]
    (True, 0)
    """
    problem = _check_problem(problem)
    checked = check_method(BSVRB() if method is None else method, "BSVRB()")
    if not isinstance(checked, BilevelMethod):
        raise TypeError(
            "method must be a bilevel method (BSVRB(), RSVRB(), "
            f"StochasticHypergradient()), got {type(checked).__name__}"
        )
    method = checked
    method.check_problem(problem)
    x, info = as_tensor(x0, "x0", dtype=problem.dtype)
    x = x.reshape(-1)
    if x.numel() != problem.dim_x:
        raise ValueError(f"x0 must have {problem.dim_x} entries, got {x.numel()}")
    y = _lower_start(problem, y0)
    run = BilevelRun(
        problem, y, _check_seed(seed), _budget(method, problem, epochs, max_steps)
    )
    return run_method(
        method,
        run,
        x,
        output=info,
        callback=callback,
        record=record,
        throw=throw,
        check_finite=[y],
        counters=problem.counters,
    )


def hypergradient_estimate(
    problem: MultiBlockBilevelProblem,
    x: Any,
    method: BilevelMethod,
    *,
    y: Any = None,
    seed: int = 0,
) -> Tensor:
    """The method's initial hypergradient estimate ``G_0`` at ``(x, y)``.

    With ``blocks_per_iter=None`` (all blocks), ``batch_size=None`` (full
    sets) and ``y = y*(x)`` it equals the exact hypergradient: the check that
    the estimator targets the right quantity.

    Examples
    --------
    >>> import torch
    >>> from itersolve.bilevel import BSVRB, exact_hypergradient, hypergradient_estimate
    >>> from itersolve.problems import quadratic_bilevel
    >>> p = quadratic_bilevel(m=3, dim_x=2, dim_y=4, n=16)
    >>> x = torch.ones(2, dtype=torch.float64)
    >>> exact = exact_hypergradient(p, x)
    >>> G = hypergradient_estimate(p, x, BSVRB(batch_size=None), y=exact.y)
    >>> bool((G - exact.grad).abs().max() < 1e-10)
    True
    """
    problem = _check_problem(problem)
    checked = check_method(method, "BSVRB()")
    if not isinstance(checked, BilevelMethod):
        raise TypeError(
            f"method must be a bilevel method, got {type(checked).__name__}"
        )
    checked.check_problem(problem)
    x_t, _ = as_tensor(x, "x", dtype=problem.dtype)
    run = BilevelRun(problem, _lower_start(problem, y), _check_seed(seed), 1)
    state = checked.init(run, x_t.reshape(-1))
    return state.G
