"""The result type shared by every front door."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from itersolve._core.trace import Trace


class Status(enum.Enum):
    """How a run ended. Each value is the sentence shown to the user."""

    SUCCESS = "Converged: the stopping rule was met."
    MAX_STEPS = (
        "Stopped at max_steps before the stopping rule was met; raise max_steps, "
        "loosen the tolerance or use a preconditioner."
    )
    TIME_LIMIT = (
        "Stopped at the wall-clock time_limit before the stopping rule was met; "
        "raise time_limit or use a faster method."
    )
    STAGNATION = (
        "Stagnated: the iterates stopped making progress before the tolerance was "
        "reached; the tolerance may be below what this dtype can resolve."
    )
    DIVERGED = (
        "Diverged: the error grew without bound; reduce the step size or check "
        "that the method's assumptions hold for this problem."
    )
    BREAKDOWN = (
        "Breakdown: a division by (near) zero inside the method; try another "
        "method or a different starting point."
    )
    NOT_POSITIVE_DEFINITE = (
        "The operator (or preconditioner) is not positive definite: non-positive "
        "curvature was found. Use a method for indefinite problems (MINRES, GMRES)."
    )
    NONFINITE_INPUT = (
        "The input contains NaN or infinity; nothing was computed. Clean the data "
        "or the starting point."
    )
    NONFINITE = (
        "An iterate became NaN or infinite; the run was stopped. Check scaling, "
        "use float64, or a smaller step."
    )
    STOPPED_BY_CALLBACK = "Stopped because the callback returned True."

    @property
    def message(self) -> str:
        return self.value


@dataclass
class Solution:
    """What every front door returns.

    Attributes
    ----------
    x
        The answer, in the array kind, dtype and device of the input.
    status
        How the run ended; ``success`` is ``status is Status.SUCCESS``.
    num_steps
        Outer iterations taken.
    stats
        Counters (``matvecs``, ``grads``, ``hvps``, ``factorizations``, ...) and
        ``time``: seconds spent inside ``step`` (metrics and callbacks excluded).
    trace
        Per-step record when the run asked for ``record``; ``None`` otherwise.
    extras
        Method-specific results (dual potentials, transport cost, ...).
    """

    x: Any
    status: Status
    num_steps: int
    stats: dict[str, float] = field(default_factory=dict)
    trace: Trace | None = None
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def success(self) -> bool:
        return self.status is Status.SUCCESS

    @property
    def message(self) -> str:
        return self.status.value

    def __repr__(self) -> str:
        return (
            f"Solution(status={self.status.name}, num_steps={self.num_steps}, "
            f"stats={self.stats}, x={type(self.x).__name__}"
            f"{tuple(getattr(self.x, 'shape', ()))})"
        )
