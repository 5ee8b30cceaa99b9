"""``SequenceSolver``: solve a stream of related systems, tuning omega online."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from itersolve._core.iterate import Callback, IterativeMethod
from itersolve._core.solution import Solution, Status
from itersolve.linear._solve import linear_solve
from itersolve.linear.tuning._base import Tuner


@dataclass
class SequenceHistory:
    """What happened on each instance: the value chosen, its cost, cap hits.

    Examples
    --------
    >>> from itersolve.linear import SOR, SequenceSolver
    >>> from itersolve.problems import shifted_laplacian_sequence
    >>> solver = SequenceSolver(SOR(omega=1.5, rtol=1e-8))
    >>> for A, b, shift in shifted_laplacian_sequence(3, n=5, seed=0):
    ...     sol = solver.solve(A, b, context=shift)
    >>> len(solver.history.costs), solver.history.omegas
    (3, [1.5, 1.5, 1.5])
    """

    omegas: list[float] = field(default_factory=list)
    costs: list[int] = field(default_factory=list)
    capped: list[bool] = field(default_factory=list)
    statuses: list[Status] = field(default_factory=list)
    contexts: list[float | None] = field(default_factory=list)

    @property
    def total_cost(self) -> int:
        return int(sum(self.costs))

    @property
    def cap_hits(self) -> int:
        return int(sum(self.capped))

    def as_arrays(self) -> dict[str, np.ndarray]:
        return {
            "omega": np.asarray(self.omegas),
            "cost": np.asarray(self.costs),
            "capped": np.asarray(self.capped),
        }


class SequenceSolver:
    """Solves ``A_1 x = b_1, A_2 x = b_2, ...`` one at a time, learning ``omega``.

    For each instance the tuner (if any) chooses the relaxation factor from its
    fixed grid, seeing only the optional scalar ``context``; the system is solved
    with ``replace(method, omega=omega)`` through :func:`linear_solve`, warm
    started from the previous solution when ``warm_start`` (and the shapes
    agree); then the tuner is told the cost — the number of iterations, capped at
    the method's ``max_steps`` — and nothing else. The best fixed omega and the
    instance-optimal one are never computed here: no hindsight leaks into play.

    Equivalent to / compare with a loop of ``linear_solve`` calls with a fixed
    ``omega`` (or scipy/pyamg solves), which is what the tuner is measured against.

    Stopping rule: the method's, per instance.

    Parameters
    ----------
    method
        A relaxation-parameterized solver: :class:`SOR`, :class:`SSOR`,
        :class:`SSORPCG` (anything with an ``omega`` field).
    tuner
        :class:`~itersolve.linear.tuning.TsallisINF`,
        :class:`~itersolve.linear.tuning.ChebCB`,
        :class:`~itersolve.linear.tuning.BinnedTsallisINF`, or ``None`` to keep the
        method's ``omega``.
    warm_start
        Start each solve from the previous solution.

    References
    ----------
    Khodak et al., *Learning to Relax: Setting Solver Parameters Across a Sequence
    of Linear System Instances*, ICLR 2024 (arXiv 2310.02246).

    Examples
    --------
    >>> import numpy as np
    >>> from itersolve.linear import SOR
    >>> from itersolve.linear import SequenceSolver
    >>> from itersolve.linear.tuning import TsallisINF
    >>> from itersolve.problems import poisson
    >>> A = poisson(6, dim=2)
    >>> seq = SequenceSolver(SOR(rtol=1e-8), TsallisINF(seed=0), warm_start=False)
    >>> rng = np.random.default_rng(0)
    >>> for t in range(20):
    ...     sol = seq.solve(A, rng.standard_normal(36))
    >>> len(seq.history.costs), seq.history.cap_hits
    (20, 0)
    """

    def __init__(
        self,
        method: IterativeMethod,
        tuner: Tuner | None = None,
        *,
        warm_start: bool = True,
    ) -> None:
        if not isinstance(method, IterativeMethod) or not hasattr(method, "omega"):
            raise TypeError(
                "method must be a solver with an omega field (SOR, SSOR, SSORPCG), "
                f"got {type(method).__name__}"
            )
        if tuner is not None and not isinstance(tuner, Tuner):
            raise TypeError(
                f"tuner must be a Tuner or None, got {type(tuner).__name__}"
            )
        self.method = method
        self.tuner = tuner
        self.warm_start = warm_start
        self.history = SequenceHistory()
        self._previous: Any = None

    def solve(
        self,
        A: Any,
        b: Any,
        *,
        context: float | None = None,
        x0: Any = None,
        callback: Callback | None = None,
        record: bool | int = False,
    ) -> Solution:
        """Solve one instance; returns its :class:`Solution`.

        ``extras`` holds ``omega`` and ``cost`` (iterations; the cap
        ``max_steps``, default 10000, for a run that did not succeed). A failed
        run keeps its status and warns once, like any ``linear_solve``.
        """
        if self.tuner is not None:
            omega = self.tuner.choose(context)
        else:
            omega = float(getattr(self.method, "omega"))  # noqa: B009
        template: Any = self.method
        method: Any = dataclasses.replace(template, omega=omega)
        if x0 is None and self.warm_start and self._previous is not None:
            if tuple(np.shape(self._previous)) == tuple(np.shape(b)):
                x0 = self._previous
        cap = int(method.max_steps or 10_000)
        try:
            solution = linear_solve(
                A, b, method, x0=x0, callback=callback, record=record
            )
        except BaseException:
            if self.tuner is not None:
                self.tuner.update(cap)  # the protocol owes the tuner a cost
            raise
        # A failed solve (cap hit, divergence) costs the cap: a value that
        # diverges quickly must not look cheap.
        cost = int(solution.num_steps) if solution.success else cap
        if self.tuner is not None:
            self.tuner.update(cost)
        self.history.omegas.append(omega)
        self.history.costs.append(cost)
        self.history.capped.append(not solution.success)
        self.history.statuses.append(solution.status)
        self.history.contexts.append(context)
        solution.extras.update(omega=omega, cost=cost)
        if solution.success:
            self._previous = solution.x
        return solution
