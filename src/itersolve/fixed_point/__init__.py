"""Fixed points ``z = f(z)``: :func:`fixed_point` and its methods.

* :class:`FixedPointIteration` — damped Picard iteration, one evaluation and
  one stored state per step.
* :class:`Anderson` — Anderson acceleration with a relative regularisation and
  a conditioning guard on its history (the default).
* :class:`Broyden` — limited-memory Broyden (good or bad) on ``f(z) - z = 0``.
* :class:`NewtonKrylov` — inexact Newton with a Krylov inner solve through
  :func:`itersolve.linear.inner_solve` (also :class:`itersolve.pde.NewtonKrylov`).

Every method shares the stopping rule ``||f(z) - z|| <= max(rtol ||z||,
atol)``, checked on a fresh evaluation of ``f`` at the iterate it returns.
Tolerance default: ``rtol = 1e-8``, lifted to ``100 eps`` of the dtype
(float32: ``1.2e-5``), since ``f(z) - z`` cannot be formed more accurately than
``eps ||z||``; ``atol = 0``, so give an ``atol`` when the fixed point may be 0.
A batch (``batch_dim=0``) stops sample by sample.

Implicit differentiation: :func:`implicit_vjp` solves the adjoint fixed point
``u = J_f(z*)^T u + g`` with any of these methods (or a linear solver), and
:func:`fixed_point_layer` makes ``z* = f(z*, x)`` differentiable in ``x`` and in
``f``'s parameters (implicit or phantom backward).
"""

from itersolve.fixed_point._anderson import Anderson
from itersolve.fixed_point._base import FixedPointMethod
from itersolve.fixed_point._broyden import Broyden
from itersolve.fixed_point._implicit import (
    FixedPointLayerInfo,
    fixed_point_layer,
    implicit_vjp,
)
from itersolve.fixed_point._iteration import FixedPointIteration
from itersolve.fixed_point._newton_krylov import NewtonKrylov
from itersolve.fixed_point._problem import FixedPointProblem
from itersolve.fixed_point._solve import fixed_point

__all__ = [
    "Anderson",
    "Broyden",
    "FixedPointIteration",
    "FixedPointLayerInfo",
    "FixedPointMethod",
    "FixedPointProblem",
    "NewtonKrylov",
    "fixed_point",
    "fixed_point_layer",
    "implicit_vjp",
]
