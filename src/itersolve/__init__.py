"""itersolve: fast-converging iterative methods on PyTorch.

Front doors return a :class:`Solution`: ``linear_solve``, ``minimize``,
``ot.transport``, ``pde.transport_solve``, ``control.solve_lqr`` ...; the
torch.optim-style optimizers live in :mod:`itersolve.optim`.

Export policy: the front doors and the core types are at the top level; methods
live in their family (``itersolve.linear.CG``, ``itersolve.optimize.Newton``).
Everything loads on first use (PEP 562), so ``import itersolve`` imports neither
torch nor numba; numba loads only when a compiled kernel is first needed.

Examples
--------
>>> import numpy as np, itersolve
>>> sol = itersolve.linear_solve(np.array([[4.0, 1.0], [1.0, 3.0]]), [1.0, 2.0])
>>> sol.success
True
"""

from __future__ import annotations

import importlib
import warnings
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

#: The families, imported on first attribute access.
_FAMILIES = (
    "bilevel",
    "control",
    "fixed_point",
    "imaging",
    "linear",
    "nn",
    "optim",
    "optimize",
    "ot",
    "pde",
    "problems",
    "rl",
)

#: Top-level names and the module that defines them.
_EXPORTS = {
    "ConvergenceError": "itersolve._core.errors",
    "ConvergenceWarning": "itersolve._core.errors",
    "IterInfo": "itersolve._core.trace",
    "IterativeMethod": "itersolve._core.iterate",
    "LinearOperator": "itersolve._core.operators",
    "Objective": "itersolve._core.objective",
    "Solution": "itersolve._core.solution",
    "Status": "itersolve._core.solution",
    "Trace": "itersolve._core.trace",
    "aslinearoperator": "itersolve._core.operators",
    "iterate": "itersolve._core.iterate",
    "linear_solve": "itersolve.linear",
    "minimize": "itersolve.optimize",
}

#: Linear methods that were top-level names before the export policy; they keep
#: working for one release, with a DeprecationWarning naming their new home.
_MOVED_TO_LINEAR = (
    "CG",
    "GMRES",
    "MINRES",
    "SOR",
    "SSOR",
    "SSORPCG",
    "FlexibleCG",
    "GaussSeidel",
    "Jacobi",
    "NewtonSchulz",
    "RandomizedKaczmarz",
    "SSORPreconditioner",
    "SketchAndProject",
    "newton_schulz_inverse",
    "newton_schulz_lstsq",
    "optimal_sor_omega",
)

# Literal, so static tools see the lazy names (a test checks it matches).
__all__ = [
    "ConvergenceError",
    "ConvergenceWarning",
    "IterInfo",
    "IterativeMethod",
    "LinearOperator",
    "Objective",
    "Solution",
    "Status",
    "Trace",
    "aslinearoperator",
    "bilevel",
    "control",
    "fixed_point",
    "imaging",
    "iterate",
    "linear",
    "linear_solve",
    "minimize",
    "nn",
    "optim",
    "optimize",
    "ot",
    "pde",
    "problems",
    "rl",
]


def __getattr__(name: str) -> Any:
    if name in _FAMILIES:
        value: Any = importlib.import_module(f"itersolve.{name}")
    elif name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
    elif name in _MOVED_TO_LINEAR:
        warnings.warn(
            f"itersolve.{name} is deprecated and will be removed in the next "
            f"release; use itersolve.linear.{name}",
            DeprecationWarning,
            stacklevel=2,
        )
        # Not cached: every use of the old name warns.
        return getattr(importlib.import_module("itersolve.linear"), name)
    else:
        raise AttributeError(f"module 'itersolve' has no attribute {name!r}")
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


if TYPE_CHECKING:  # what the lazy names are, for type checkers and IDEs
    from itersolve import (
        bilevel,
        control,
        fixed_point,
        imaging,
        linear,
        nn,
        optim,
        optimize,
        ot,
        pde,
        problems,
    )
    from itersolve._core.errors import ConvergenceError, ConvergenceWarning
    from itersolve._core.iterate import IterativeMethod, iterate
    from itersolve._core.objective import Objective
    from itersolve._core.operators import LinearOperator, aslinearoperator
    from itersolve._core.solution import Solution, Status
    from itersolve._core.trace import IterInfo, Trace
    from itersolve.linear import linear_solve
    from itersolve.optimize import minimize
