"""itersolve: fast-converging iterative methods on PyTorch.

Front doors return a :class:`Solution`: ``linear_solve``, ``minimize``,
``ot.transport``, ``pde.transport_solve``, ``control.solve_lqr`` ...; the
torch.optim-style optimizers live in :mod:`itersolve.optim`.
"""

from itersolve import control, linear, optim, optimize, ot, pde, problems
from itersolve._core.errors import ConvergenceError, ConvergenceWarning
from itersolve._core.iterate import IterativeMethod, iterate
from itersolve._core.objective import Objective
from itersolve._core.operators import LinearOperator, aslinearoperator
from itersolve._core.solution import Solution, Status
from itersolve._core.trace import IterInfo, Trace
from itersolve.linear import (
    CG,
    GMRES,
    MINRES,
    SOR,
    SSOR,
    SSORPCG,
    FlexibleCG,
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
from itersolve.optimize import minimize

__version__ = "0.1.0"

__all__ = [
    "CG",
    "GMRES",
    "MINRES",
    "SOR",
    "SSOR",
    "SSORPCG",
    "ConvergenceError",
    "ConvergenceWarning",
    "FlexibleCG",
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
    "control",
    "iterate",
    "linear",
    "linear_solve",
    "minimize",
    "newton_schulz_inverse",
    "newton_schulz_lstsq",
    "optim",
    "optimal_sor_omega",
    "optimize",
    "ot",
    "pde",
    "problems",
]
