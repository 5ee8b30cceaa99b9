"""Linear systems: ``linear_solve`` and its solvers."""

from itersolve.linear._cg import CG
from itersolve.linear._newton_schulz import (
    NewtonSchulz,
    newton_schulz_inverse,
    newton_schulz_lstsq,
)
from itersolve.linear._problem import LinearProblem
from itersolve.linear._solve import linear_solve

__all__ = [
    "CG",
    "LinearProblem",
    "NewtonSchulz",
    "linear_solve",
    "newton_schulz_inverse",
    "newton_schulz_lstsq",
]
