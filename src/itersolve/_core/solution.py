"""The result type shared by every front door."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from itersolve._core.trace import Trace


class Status(enum.Enum):
    """How a run ended. Each value is the sentence shown to the user.

    Examples
    --------
    >>> from itersolve import Status
    >>> Status.SUCCESS.message
    'Converged: the stopping rule was met.'
    >>> Status["MAX_STEPS"] is Status.MAX_STEPS
    True
    """

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
        "reached; if the error left is near rounding level, the tolerance is below "
        "what this dtype resolves (loosen it or use float64), otherwise try "
        "another method."
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

    @property
    def outcome(self) -> str:
        """What happened, without the generic advice (a method supplies its own,
        see :meth:`IterativeMethod.advice <itersolve.IterativeMethod.advice>`)."""
        return _OUTCOMES.get(self, self.value)

    @property
    def generic_advice(self) -> str:
        """The status's own advice: its sentence after :attr:`outcome`."""
        return self.value[len(self.outcome) :].lstrip(";. ")


_OUTCOMES = {
    Status.MAX_STEPS: "Stopped at max_steps before the stopping rule was met",
    Status.TIME_LIMIT: (
        "Stopped at the wall-clock time_limit before the stopping rule was met"
    ),
    Status.STAGNATION: (
        "Stagnated: the iterates stopped making progress before the tolerance was "
        "reached"
    ),
    Status.DIVERGED: "Diverged: the error grew without bound",
    Status.BREAKDOWN: "Breakdown: a division by (near) zero inside the method",
    Status.NOT_POSITIVE_DEFINITE: (
        "The operator (or preconditioner) is not positive definite: non-positive "
        "curvature was found"
    ),
    Status.NONFINITE: "An iterate became NaN or infinite; the run was stopped",
}


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
    advice
        What to change for this method when the run did not succeed (``None``:
        the status's generic advice applies).
    detail
        What this run's failure looked like, measured (``None`` when nothing
        beyond the status is known): for a frozen iterate, what stalled, by how
        much, the final metrics and whether the dtype's resolution is the limit.
        ``message`` combines outcome, detail and advice.

    Examples
    --------
    >>> import numpy as np
    >>> from itersolve import linear_solve
    >>> from itersolve.linear import CG
    >>> from itersolve.problems import poisson
    >>> sol = linear_solve(poisson(10, dim=1), np.ones(10), CG(rtol=1e-10))
    >>> sol.success, sol.num_steps, type(sol.x).__name__
    (True, 5, 'ndarray')
    >>> sol.message
    'Converged: the stopping rule was met.'
    """

    x: Any
    status: Status
    num_steps: int
    stats: dict[str, float] = field(default_factory=dict)
    trace: Trace | None = None
    extras: dict[str, Any] = field(default_factory=dict)
    advice: str | None = None
    detail: str | None = None

    @property
    def success(self) -> bool:
        return self.status is Status.SUCCESS

    @property
    def message(self) -> str:
        """What happened (with the run's measured detail, if any) and what to
        try: the method's advice when it gave one, the status's generic advice
        otherwise."""
        if self.status not in _OUTCOMES or not (self.advice or self.detail):
            return self.status.value
        what = self.status.outcome
        if self.detail:
            what = f"{what} ({self.detail})"
            if not self.advice:  # the detail says what to change
                return f"{what}."
        return f"{what}; {self.advice or self.status.generic_advice}"

    def __repr__(self) -> str:
        return (
            f"Solution(status={self.status.name}, num_steps={self.num_steps}, "
            f"stats={self.stats}, x={type(self.x).__name__}"
            f"{tuple(getattr(self.x, 'shape', ()))})"
        )
