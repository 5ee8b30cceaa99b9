"""Plain (damped) fixed-point iteration."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from itersolve.fixed_point._base import FixedPointMethod, FixedPointState
from itersolve.fixed_point._problem import FixedPointProblem


@dataclass(frozen=True, kw_only=True)
class FixedPointIteration(FixedPointMethod):
    """Damped Picard iteration ``z_{k+1} = (1 - tau) z_k + tau f(z_k)``.

    One evaluation of ``f`` per step, one stored state. Converges for any
    ``tau`` in ``(0, 1]`` when ``f`` is a contraction, linearly at the rate
    ``max_i |1 - tau + tau lambda_i|`` over the eigenvalues ``lambda_i`` of the
    Jacobian at the fixed point. Stopping rule (per sample, on a fresh
    evaluation; see :class:`~itersolve.fixed_point.FixedPointMethod`)::

        ||f(z) - z||_2 <= max(rtol ||z||_2, atol)

    Compare with: ``scipy.optimize.fixed_point(method="iteration")``.

    Parameters
    ----------
    damping
        ``tau`` in ``(0, 1]`` (1: plain iteration ``z <- f(z)``).
    rtol, atol
        Stopping tolerances.

    References
    ----------
    Krasnosel'skii, "Two remarks on the method of successive approximations",
    Uspekhi Mat. Nauk 10 (1955); Mann, "Mean value methods in iteration",
    Proc. AMS 4 (1953).

    Examples
    --------
    >>> import numpy as np
    >>> from itersolve.fixed_point import fixed_point
    >>> from itersolve.fixed_point import FixedPointIteration
    >>> sol = fixed_point(np.cos, np.array([1.0]), FixedPointIteration())
    >>> sol.success, round(float(sol.x[0]), 6), sol.stats["fevals"] > 40
    (True, 0.739085, True)
    """

    damping: float = 1.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0 < self.damping <= 1:
            raise ValueError(f"damping must be in (0, 1], got {self.damping!r}")

    def init(self, problem: FixedPointProblem, x0: Any) -> FixedPointState:
        return self.start(problem, x0, FixedPointState)

    def step(self, problem: FixedPointProblem, state: FixedPointState) -> Any:
        self.accept(problem, state, state.x + self.damping * state.g)
        return state
