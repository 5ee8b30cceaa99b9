"""Warnings and errors raised for numerical outcomes (never for bad arguments)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from itersolve._core.solution import Solution


class ConvergenceWarning(UserWarning):
    """Emitted once when a solver stops without success (``throw=False``)."""


class ConvergenceError(RuntimeError):
    """Raised instead of :class:`ConvergenceWarning` when ``throw=True``.

    The unsuccessful :class:`~itersolve.Solution` is kept in ``.solution``.
    """

    def __init__(self, solution: Solution) -> None:
        super().__init__(f"{solution.status.name}: {solution.message}")
        self.solution = solution
