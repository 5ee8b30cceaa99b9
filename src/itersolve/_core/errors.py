"""Warnings and errors raised for numerical outcomes (never for bad arguments)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from itersolve._core.solution import Solution


class ConvergenceWarning(UserWarning):
    """Emitted once when a solver stops without success (``throw=False``).

    Examples
    --------
    >>> import warnings
    >>> import numpy as np
    >>> from itersolve import ConvergenceWarning, linear_solve
    >>> from itersolve.linear import CG
    >>> from itersolve.problems import poisson
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     sol = linear_solve(poisson(30, dim=1), np.ones(30), CG(max_steps=2))
    >>> [w.category is ConvergenceWarning for w in caught]
    [True]
    """


class ConvergenceError(RuntimeError):
    """Raised instead of :class:`ConvergenceWarning` when ``throw=True``.

    The unsuccessful :class:`~itersolve.Solution` is kept in ``.solution``.

    Examples
    --------
    >>> import numpy as np
    >>> from itersolve import ConvergenceError, linear_solve
    >>> from itersolve.linear import CG
    >>> from itersolve.problems import poisson
    >>> A = poisson(30, dim=1)
    >>> try:
    ...     linear_solve(A, np.ones(30), CG(max_steps=2), throw=True)
    ... except ConvergenceError as error:
    ...     print(error.solution.status, error.solution.num_steps)
    Status.MAX_STEPS 2
    """

    def __init__(self, solution: Solution) -> None:
        super().__init__(f"{solution.status.name}: {solution.message}")
        self.solution = solution
