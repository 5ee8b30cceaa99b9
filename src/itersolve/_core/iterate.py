"""The one driver loop every family runs through.

A method is a frozen keyword-only dataclass deriving from :class:`IterativeMethod`
and implementing ``init``, ``step``, ``terminate`` and ``metrics`` (and optionally
``stats``). :func:`iterate` owns everything else: ``max_steps``, ``time_limit``, the
finiteness check of each iterate, timing of ``step`` only, callbacks, the trace and
the warning/exception policy.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import torch

from itersolve._core.errors import ConvergenceError, ConvergenceWarning
from itersolve._core.solution import Solution, Status
from itersolve._core.tensors import is_finite
from itersolve._core.trace import IterInfo, Trace

Callback = Callable[[IterInfo], bool | None]


class HasX(Protocol):
    x: torch.Tensor


@dataclass(frozen=True, kw_only=True)
class IterativeMethod:
    """Base of every method: the limits the driver enforces.

    Parameters
    ----------
    max_steps
        Most outer iterations; ``None`` takes the method's default for the
        problem (:meth:`default_max_steps`).
    time_limit
        Most seconds spent in ``step``; ``None`` for no limit.
    """

    max_steps: int | None = None
    time_limit: float | None = None

    def __post_init__(self) -> None:
        if self.max_steps is not None and (
            not isinstance(self.max_steps, int) or self.max_steps < 1
        ):
            raise ValueError(
                f"max_steps must be a positive int, got {self.max_steps!r}"
            )
        if self.time_limit is not None and not self.time_limit > 0:
            raise ValueError(f"time_limit must be positive, got {self.time_limit!r}")

    def default_max_steps(self, problem: Any) -> int:
        return 1000

    def init(self, problem: Any, x0: torch.Tensor) -> Any:
        raise NotImplementedError

    def step(self, problem: Any, state: Any) -> Any:
        raise NotImplementedError

    def terminate(self, problem: Any, state: Any) -> tuple[bool, Status]:
        raise NotImplementedError

    def metrics(self, problem: Any, state: Any) -> dict[str, float]:
        return {}

    def is_finite(self, problem: Any, state: Any) -> bool:
        """Whether the new iterate is finite (the driver's ``NONFINITE`` check).

        A method may override it with an exact but cheaper test (e.g. a sum
        accumulated in a fused kernel, falling back to the full scan).
        """
        return is_finite(state.x)

    def stats(self, problem: Any, state: Any) -> dict[str, float]:
        return {}


def _sync(x: torch.Tensor) -> None:
    if x.is_cuda:
        torch.cuda.synchronize(x.device)


def iterate(
    method: IterativeMethod,
    problem: Any,
    x0: torch.Tensor,
    *,
    callback: Callback | None = None,
    record: bool | int = False,
    check_finite: Sequence[torch.Tensor] = (),
) -> tuple[Any, Solution]:
    """Run ``method`` on ``problem`` from ``x0``.

    Returns the final state and a :class:`Solution` whose ``x`` is still a torch
    tensor (front doors convert it and call :func:`finish`). ``check_finite`` lists
    the inputs to validate first: any NaN/inf gives ``Status.NONFINITE_INPUT``
    without a single step.

    Order per iteration: ``terminate`` (so a solved ``x0`` takes no step), then
    ``step`` (timed), the finiteness check, metrics/trace/callback.
    """
    every = _record_every(record)
    trace = Trace() if every else None
    if not is_finite(x0, *check_finite):
        return None, Solution(x0, Status.NONFINITE_INPUT, 0, {"time": 0.0}, trace)

    _sync(x0)
    start = time.perf_counter()
    state = method.init(problem, x0)
    _sync(state.x)
    elapsed = time.perf_counter() - start
    max_steps = method.max_steps or method.default_max_steps(problem)

    status = Status.MAX_STEPS
    k = 0
    while True:
        done, verdict = method.terminate(problem, state)
        if done:
            status = verdict
            break
        if k >= max_steps:
            break
        if method.time_limit is not None and elapsed >= method.time_limit:
            status = Status.TIME_LIMIT
            break
        start = time.perf_counter()
        state = method.step(problem, state)
        _sync(state.x)
        elapsed += time.perf_counter() - start
        k += 1
        if not method.is_finite(problem, state):
            status = Status.NONFINITE
            break
        want_row = trace is not None and (k % every == 0 or k == max_steps)
        if want_row or callback is not None:
            metrics = method.metrics(problem, state)
            if want_row and trace is not None:
                trace.append({"step": k, "time": elapsed, **metrics})
            if callback is not None and callback(
                IterInfo(k, state.x, metrics, elapsed, state)
            ):
                status = Status.STOPPED_BY_CALLBACK
                break

    if trace is not None and k > 0 and (len(trace) == 0 or trace["step"][-1] != k):
        trace.append({"step": k, "time": elapsed, **method.metrics(problem, state)})
    stats = {**method.stats(problem, state), "time": elapsed}
    return state, Solution(state.x, status, k, stats, trace)


def finish(solution: Solution, *, throw: bool, stacklevel: int = 3) -> Solution:
    """Apply the failure policy: warn once, or raise with ``throw=True``."""
    if not solution.success:
        if throw:
            raise ConvergenceError(solution)
        if solution.status is not Status.STOPPED_BY_CALLBACK:
            warnings.warn(
                f"{solution.status.name}: {solution.message}",
                ConvergenceWarning,
                stacklevel=stacklevel,
            )
    return solution


def _record_every(record: bool | int) -> int:
    if record is True:
        return 1
    if record is False or record is None:
        return 0
    if isinstance(record, int) and record >= 1:
        return record
    raise ValueError(f"record must be True, False or a positive int, got {record!r}")
