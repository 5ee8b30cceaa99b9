"""itersolve: fast-converging iterative methods on PyTorch.

Front doors return a :class:`Solution`; see ``linear_solve``.
"""

from itersolve._core.errors import ConvergenceError, ConvergenceWarning
from itersolve._core.iterate import IterativeMethod, iterate
from itersolve._core.objective import Objective
from itersolve._core.operators import LinearOperator, aslinearoperator
from itersolve._core.solution import Solution, Status
from itersolve._core.trace import IterInfo, Trace
from itersolve.linear import (
    CG,
    NewtonSchulz,
    linear_solve,
    newton_schulz_inverse,
    newton_schulz_lstsq,
)

__version__ = "0.1.0"

__all__ = [
    "CG",
    "ConvergenceError",
    "ConvergenceWarning",
    "IterInfo",
    "IterativeMethod",
    "LinearOperator",
    "NewtonSchulz",
    "Objective",
    "Solution",
    "Status",
    "Trace",
    "aslinearoperator",
    "iterate",
    "linear_solve",
    "newton_schulz_inverse",
    "newton_schulz_lstsq",
]
