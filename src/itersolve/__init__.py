"""itersolve: fast-converging iterative methods on PyTorch.

Front doors return a :class:`Solution`; see ``linear_solve``.
"""

from itersolve import control, ot, pde
from itersolve._core.errors import ConvergenceError, ConvergenceWarning
from itersolve._core.iterate import IterativeMethod, iterate
from itersolve._core.objective import Objective
from itersolve._core.operators import LinearOperator, aslinearoperator
from itersolve._core.solution import Solution, Status
from itersolve._core.trace import IterInfo, Trace
from itersolve.linear import GMRES, MINRES, FlexibleCG
from itersolve.linear import (
    CG,
    SOR,
    SSOR,
    SSORPCG,
    GaussSeidel,
    Jacobi,
    NewtonSchulz,
    RandomizedKaczmarz,
    SketchAndProject,
    SSORPreconditioner,
    linear_solve,
    newton_schulz_inverse,
    newton_schulz_lstsq,
    optimal_sor_omega,
)

__version__ = "0.1.0"

__all__ = [
    "CG",
    "GMRES",
    "MINRES",
    "FlexibleCG",
    "SOR",
    "SSOR",
    "SSORPCG",
    "ConvergenceError",
    "ConvergenceWarning",
    "GaussSeidel",
    "IterInfo",
    "IterativeMethod",
    "Jacobi",
    "LinearOperator",
    "NewtonSchulz",
    "Objective",
    "RandomizedKaczmarz",
    "SSORPreconditioner",
    "SketchAndProject",
    "Solution",
    "Status",
    "Trace",
    "aslinearoperator",
    "iterate",
    "linear_solve",
    "newton_schulz_inverse",
    "newton_schulz_lstsq",
    "optimal_sor_omega",
    "ot",
]
