"""The one driver loop every family runs through.

A method is a frozen keyword-only dataclass deriving from :class:`IterativeMethod`
and implementing ``init``, ``step``, ``terminate`` and ``metrics`` (and optionally
``stats``). :func:`iterate` owns everything else: ``max_steps``, ``time_limit``, the
finiteness check of each iterate, timing of ``step`` only, callbacks, the trace and
the warning/exception policy. :func:`run_inner` is the same loop without trace,
callback or timing: the tight entry an outer method uses for an inner solve.

The loop must cost next to nothing per step, so it does no work on the iterate
itself: the finiteness check is a certificate (a sum the step computed, or one
``sum``, with the full scan only when that sum is not finite), and the stopping
test and the certificate run every ``check_every`` steps, the only points where a
CUDA run synchronises with the host.

Frozen iterates: at check points ``stall_window`` steps apart or more (gaps
double while ``x`` keeps moving) the driver asks whether ``x`` moved beyond
rounding level and ends the run with ``Status.STAGNATION`` when it did not,
instead of running on to ``max_steps`` (:mod:`itersolve._core.stall`): one
integer comparison per step and a few tens of microseconds per check.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

import torch

from itersolve._core.errors import ConvergenceError, ConvergenceWarning
from itersolve._core.solution import Solution, Status
from itersolve._core.stall import STALL_WINDOW, StallWatch, stall_detail
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
    check_every
        Evaluate the stopping rule and the finiteness certificate every this many
        steps (``None``: the method's default, :meth:`default_check_every`, which
        is 1 unless the method is built to run unchecked steps on a GPU). Between
        check points no host synchronisation happens.
    stall_window
        Steps between frozen-iterate checks: when ``x`` has not moved beyond
        rounding level over this many steps the run ends with
        ``Status.STAGNATION``. ``None``: the method's default,
        :meth:`default_stall_window` (32 steps, or an epoch for methods that
        update a part of ``x`` per step); ``0`` disables the check.

    Examples
    --------
    Every method inherits the limits the driver enforces:

    >>> from itersolve import IterativeMethod
    >>> from itersolve.linear import CG
    >>> method = CG(max_steps=50, time_limit=1.0)
    >>> isinstance(method, IterativeMethod), method.max_steps, method.time_limit
    (True, 50, 1.0)
    """

    max_steps: int | None = None
    time_limit: float | None = None
    check_every: int | None = None
    stall_window: int | None = None

    #: Advice for this method per non-success status (see :meth:`advice`).
    ADVICE: ClassVar[dict[Status, str]] = {}

    def __post_init__(self) -> None:
        if self.max_steps is not None and (
            not isinstance(self.max_steps, int) or self.max_steps < 1
        ):
            raise ValueError(
                f"max_steps must be a positive int, got {self.max_steps!r}"
            )
        if self.time_limit is not None and not self.time_limit > 0:
            raise ValueError(f"time_limit must be positive, got {self.time_limit!r}")
        if self.check_every is not None and (
            not isinstance(self.check_every, int) or self.check_every < 1
        ):
            raise ValueError(
                f"check_every must be a positive int, got {self.check_every!r}"
            )
        if self.stall_window is not None and (
            isinstance(self.stall_window, bool)
            or not isinstance(self.stall_window, int)
            or self.stall_window < 0
        ):
            raise ValueError(
                "stall_window must be a non-negative int (0 disables the "
                f"frozen-iterate check) or None, got {self.stall_window!r}"
            )

    def default_max_steps(self, problem: Any) -> int:
        return 1000

    def default_check_every(self, problem: Any) -> int:
        """Steps between stopping tests when ``check_every`` is ``None``.

        1 by default: a method overrides it only when its steps stay correct (no
        division by a vanished quantity) past the point where it converged.
        """
        return 1

    def default_stall_window(self, problem: Any) -> int | None:
        """Steps between frozen-iterate checks when ``stall_window`` is ``None``.

        :data:`STALL_WINDOW` (32) by default: one step of most methods moves all
        of ``x``. A method whose single step may legitimately leave ``x``
        unchanged (one coordinate or one row per step, an update only at the end
        of a restart cycle) returns at least the steps of one epoch or cycle, or
        ``None`` to disable the check.
        """
        return STALL_WINDOW

    def init(self, problem: Any, x0: torch.Tensor) -> Any:
        raise NotImplementedError

    def step(self, problem: Any, state: Any) -> Any:
        raise NotImplementedError

    def terminate(self, problem: Any, state: Any) -> tuple[bool, Status]:
        """The common rule: stop on a status the step set, or once converged.

        A method whose step detects failures (breakdown, non-positive curvature)
        stores a :class:`Status` in ``state.status``; success is whatever
        :meth:`converged` says, evaluated here, not a flag left by ``step``.
        """
        status = getattr(state, "status", None)
        if status is not None:
            return True, status
        if self.converged(problem, state):
            return True, Status.SUCCESS
        return False, Status.SUCCESS

    def converged(self, problem: Any, state: Any) -> bool:
        """The stopping rule (documented as a formula by each method)."""
        raise NotImplementedError

    def metrics(self, problem: Any, state: Any) -> dict[str, float]:
        return {}

    def outputs(self, problem: Any, state: Any) -> dict[str, torch.Tensor]:
        """Arrays of the final state a user needs beside ``x`` (e.g. Lagrange
        multipliers); the front door puts them into ``Solution.extras`` in the
        array kind of the input. Called once, after the run."""
        return {}

    def is_finite(self, problem: Any, state: Any) -> bool:
        """Whether the new iterate is finite (the driver's ``NONFINITE`` check).

        Exact and cheap: ``state.x_sum`` when the step already summed ``x`` (a
        fused kernel), else one ``sum``; only a non-finite sum, which may also be
        the overflow of a finite vector, pays for the full scan.
        """
        total = getattr(state, "x_sum", None)
        if total is None:
            total = state.x.sum()
        if math.isfinite(total if isinstance(total, float) else float(total.real)):
            return True
        return is_finite(state.x)

    def stats(self, problem: Any, state: Any) -> dict[str, float]:
        return {}

    def diagnose(self, problem: Any, state: Any, status: Status) -> str | None:
        """A measured finding about this run's failure, or ``None``.

        Called by the driver once, only after a run that did not succeed (so a
        check that costs a pass over the matrix is affordable here and nowhere
        else); the finding goes into ``Solution.detail``, before the advice.
        CG, for one, reports a nonsymmetric matrix.
        """
        return None

    def advice(self, status: Status) -> str | None:
        """What to change for *this* method after a run that ended in ``status``
        (``None``: the status's generic advice), from the class's ``ADVICE``
        table. Shown in ``Solution.message`` and in the warning, after what
        happened."""
        return self.ADVICE.get(status)


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
    check_finite: Sequence[torch.Tensor] | None = (),
    max_steps: int | None = None,
) -> tuple[Any, Solution]:
    """Run ``method`` on ``problem`` from ``x0``.

    Returns the final state and a :class:`Solution` whose ``x`` is still a torch
    tensor (front doors convert it and call :func:`finish`). ``check_finite`` lists
    the inputs to validate besides ``x0``: any NaN/inf gives
    ``Status.NONFINITE_INPUT`` without a single step; ``None`` skips the scan
    (an inner solve, whose outer method owns its inputs). ``max_steps``
    overrides the method's own limit.

    Order per iteration: ``terminate`` (so a solved ``x0`` takes no step), then
    ``step`` (timed), the finiteness check, metrics/trace/callback. With
    ``check_every = c > 1`` the stopping test and the finiteness check run after
    every ``c``-th step (and at ``max_steps``), and a CUDA run is synchronised
    (for timing) only there and where a trace row or callback needs values.

    Examples
    --------
    The driver behind every front door, here with CG on a prepared linear problem:

    >>> import torch
    >>> from itersolve import iterate
    >>> from itersolve.linear import CG
    >>> from itersolve.linear import LinearProblem
    >>> from itersolve import aslinearoperator
    >>> A = torch.tensor([[4.0, 1.0], [1.0, 3.0]], dtype=torch.float64)
    >>> b = torch.ones(2, dtype=torch.float64)
    >>> problem = LinearProblem(aslinearoperator(A), b)
    >>> state, sol = iterate(CG(rtol=1e-12), problem, torch.zeros_like(b))
    >>> sol.status.name, sol.num_steps
    ('SUCCESS', 2)
    """
    every = _record_every(record)
    trace = Trace() if every else None
    if check_finite is not None and not is_finite(x0, *check_finite):
        return None, Solution(x0, Status.NONFINITE_INPUT, 0, {"time": 0.0}, trace)

    cuda = x0.is_cuda
    _sync(x0)
    start = time.perf_counter()
    state = method.init(problem, x0)
    if cuda:
        _sync(state.x)
    elapsed = time.perf_counter() - start
    max_steps = max_steps or method.max_steps or method.default_max_steps(problem)
    check = method.check_every or method.default_check_every(problem)
    time_limit = method.time_limit
    step, terminate, finite = method.step, method.terminate, method.is_finite
    observe = trace is not None or callback is not None
    window = method.stall_window
    if window is None:
        window = method.default_stall_window(problem) or 0
    # At check points, so a GPU run reads the verdict where it synchronises
    # anyway; next_stall = -1 (never reached) when disabled.
    window = -(-window // check) * check
    watch = StallWatch(state.x, window) if window else None
    next_stall = watch.next if watch is not None else -1
    detail = None

    status = Status.MAX_STEPS
    k = 0
    while True:
        if k % check == 0:
            done, verdict = terminate(problem, state)
            if done:
                status = verdict
                break
        if k == next_stall and watch is not None:
            if watch.frozen(state.x):
                status = Status.STAGNATION
                metrics = method.metrics(problem, state)
                detail = stall_detail(state.x, watch, metrics)
                break
            next_stall = watch.next
        if k >= max_steps:
            break
        if time_limit is not None and elapsed >= time_limit:
            status = Status.TIME_LIMIT
            break
        start = time.perf_counter()
        state = step(problem, state)
        k += 1
        checkpoint = k % check == 0 or k == max_steps
        if cuda and (checkpoint or observe):
            _sync(state.x)
        elapsed += time.perf_counter() - start
        if checkpoint and not finite(problem, state):
            status = Status.NONFINITE
            break
        if observe:
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
        if k == max_steps and k % check != 0:
            done, verdict = terminate(problem, state)
            if done:
                status = verdict
            break

    if trace is not None and k > 0 and (len(trace) == 0 or trace["step"][-1] != k):
        trace.append({"step": k, "time": elapsed, **method.metrics(problem, state)})
    stats = {**method.stats(problem, state), "time": elapsed}
    solution = Solution(state.x, status, k, stats, trace, detail=detail)
    if not solution.success:
        solution.advice = method.advice(status)
        finding = method.diagnose(problem, state, status)
        if finding:
            solution.detail = f"{detail}; {finding}" if detail else finding
    return state, solution


def run_inner(
    method: IterativeMethod,
    problem: Any,
    x0: torch.Tensor,
    *,
    max_steps: int | None = None,
) -> tuple[Any, Solution]:
    """The tight entry for an inner solve: :func:`iterate` without its extras.

    The same loop as a full run, hence the same iterates and counters; no trace,
    no callback and no input scan (the outer method owns its inputs). The
    finiteness certificate is still checked at each check point, so a NaN ends
    the inner solve with ``Status.NONFINITE`` instead of running to
    ``max_steps``. ``max_steps`` overrides the method's own limit (an outer
    method's budget for this solve). Never warns: the caller reads the status.
    """
    return iterate(method, problem, x0, check_finite=None, max_steps=max_steps)


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
