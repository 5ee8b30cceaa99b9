"""What every front door does after it has built its problem.

A front door (``linear_solve``, ``minimize``, ``ot.transport``, ...) converts its
inputs and builds a problem; the rest is the same everywhere and lives here: check
the method's type (or pick the family's default), run the driver, attach the
oracle counters, return ``x`` in the caller's array kind and apply the failure
policy (:func:`~itersolve._core.iterate.finish`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch

from itersolve._core.iterate import Callback, IterativeMethod, finish, iterate
from itersolve._core.solution import Solution
from itersolve._core.tensors import ArrayInfo, to_output


def check_method(method: Any, example: str) -> IterativeMethod:
    """Reject anything that is not a configured method, naming an example."""
    if not isinstance(method, IterativeMethod):
        raise TypeError(
            f"method must be a method such as {example}, got {type(method).__name__}"
        )
    return method


def check_tolerances(rtol: float, atol: float) -> None:
    """The one validation of a ``max(rtol * scale, atol)`` stopping rule."""
    if not rtol >= 0:
        raise ValueError(f"rtol must be >= 0, got {rtol}")
    if not atol >= 0:
        raise ValueError(f"atol must be >= 0, got {atol}")
    if rtol == 0 and atol == 0:
        raise ValueError("rtol and atol cannot both be 0")


def solve(
    method: IterativeMethod,
    problem: Any,
    x0: torch.Tensor,
    *,
    output: ArrayInfo,
    callback: Callback | None,
    record: bool | int,
    throw: bool,
    check_finite: Sequence[torch.Tensor] | None = (),
    counters: Callable[[], Mapping[str, int]] | None = None,
    to_x: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> Solution:
    """Run ``method`` on ``problem`` from ``x0`` and return the finished Solution.

    ``counters`` reads the problem's oracle counters (matvecs, grads, ...); the
    difference over the run goes into ``solution.stats``. ``to_x`` maps the
    final iterate to the answer's layout before it is converted to ``output``'s
    array kind (e.g. a batch solved as columns back to rows).
    """
    before = dict(counters()) if counters is not None else {}
    _, solution = iterate(
        method,
        problem,
        x0,
        callback=callback,
        record=record,
        check_finite=check_finite,
    )
    if counters is not None:
        for key, count in counters().items():
            solution.stats[key] = count - before.get(key, 0)
    x = solution.x if to_x is None else to_x(solution.x)
    solution.x = to_output(x, output)
    return finish(solution, throw=throw, stacklevel=4)
