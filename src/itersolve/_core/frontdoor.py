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


#: A default relative tolerance is raised to this many ``eps(dtype)``: a relative
#: residual (or gradient, or marginal error) cannot be driven much below
#: ``eps * cond``, since forming ``A x`` alone rounds by ``eps ||A|| ||x||``; 100
#: leaves room for condition numbers of order 100 and for accumulated rounding.
#: It changes no float64 default (``100 eps = 2.2e-14``) and lifts the float32
#: ones to ``1.2e-5``, where ``1e-8`` (relaxation) or ``1e-6`` (Kaczmarz) would end
#: in ``STAGNATION`` on good answers.
DTYPE_RTOL_ULPS = 100.0


def default_rtol(
    dtype: torch.dtype, rtol_default: float, ulps: float = DTYPE_RTOL_ULPS
) -> float:
    """A method's default ``rtol`` for ``dtype``: ``max(rtol_default, ulps eps)``
    (a family whose test quantity has a lower rounding floor passes its ``ulps``).

    Only defaults are lifted (see :class:`DefaultTolerance`); a tolerance the
    user gave is used as given, and a run that cannot reach it says so.

    >>> default_rtol(torch.float32, 1e-8), default_rtol(torch.float64, 1e-8)
    (1.1920928955078125e-05, 1e-08)
    """
    return max(rtol_default, ulps * torch.finfo(dtype).eps)


class DefaultTolerance(float):
    """A default tolerance, lifted per dtype by :func:`resolve_rtol`.

    It is the documented default as a ``float`` (so code that reads
    ``method.rtol`` as a number keeps working, and the repr shows the number);
    only its type tells it apart from the same value given by the user, which
    is never changed.

    >>> resolve_rtol(DefaultTolerance(1e-8), torch.float32) > 1e-8
    True
    >>> resolve_rtol(1e-8, torch.float32)
    1e-08
    """

    __slots__ = ()

    def __repr__(self) -> str:
        return float.__repr__(self)


def resolve_rtol(rtol: float, dtype: torch.dtype) -> float:
    """The tolerance a run uses: ``rtol`` as given, or the dtype-aware default
    (:func:`default_rtol`) when ``rtol`` is a :class:`DefaultTolerance`."""
    if isinstance(rtol, DefaultTolerance):
        return default_rtol(dtype, float(rtol))
    return float(rtol)


def tolerance_field(method: Any, default: float, name: str = "rtol") -> None:
    """In a frozen method's ``__post_init__``: ``None`` becomes the dtype-aware
    default ``default`` (a :class:`DefaultTolerance`)."""
    if getattr(method, name) is None:
        object.__setattr__(method, name, DefaultTolerance(default))


def check_tolerances(rtol: float, atol: float, *, both_zero: bool = False) -> None:
    """The one validation of a ``max(rtol * scale, atol)`` stopping rule.

    ``both_zero`` admits ``rtol = atol = 0`` for a method where that means "run
    ``max_steps``" (block coordinate descent's fixed-budget comparisons).
    """
    if not rtol >= 0:
        raise ValueError(f"rtol must be >= 0, got {rtol}")
    if not atol >= 0:
        raise ValueError(f"atol must be >= 0, got {atol}")
    if rtol == 0 and atol == 0 and not both_zero:
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
    array kind (e.g. a batch solved as columns back to rows). The method's
    :meth:`~itersolve.IterativeMethod.outputs` of the final state go into
    ``solution.extras`` in the same array kind.
    """
    before = dict(counters()) if counters is not None else {}
    state, solution = iterate(
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
    if state is not None:
        for key, value in method.outputs(problem, state).items():
            solution.extras[key] = to_output(value, output)
    x = solution.x if to_x is None else to_x(solution.x)
    solution.x = to_output(x, output)
    return finish(solution, throw=throw, stacklevel=4)
