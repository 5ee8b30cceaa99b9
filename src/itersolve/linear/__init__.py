"""Linear systems: ``linear_solve`` and its solvers.

Tolerances
----------
Every solver stops on ``||b - A x|| <= max(rtol * ||b||, atol)`` (per column;
relaxation may measure against ``||b - A x0||``). The default ``rtol`` differs by
kind of method, for a stated reason:

CG, MINRES, GMRES, FlexibleCG: ``1e-5``
    SciPy's default, so ``linear_solve`` and ``scipy.sparse.linalg`` stop on
    the same rule.
RandomizedKaczmarz, SketchAndProject: ``1e-6``
    The floor of the inner-solve accuracy in AdaSketch-Newton (Hong et al.,
    ICML 2023), the outer method these row-action solvers serve.
Jacobi, GaussSeidel, SOR, SSOR, SSORPCG: ``1e-8``
    The tolerance of the relaxation papers (Khodak et al., *Learning to
    Relax*), so step counts compare with theirs.
NewtonSchulz: ``tol = sqrt(m eps)``
    The rounding floor of ``||I - S M||_F``; dtype-aware by construction.

A default is lifted to ``100 eps`` of the dtype when it is below that (float32:
``1.2e-5``; no float64 default changes), since a relative residual cannot be
driven much below ``eps * cond(A)``: in float32, ``1e-8`` would end in
``STAGNATION`` on good answers. An ``rtol`` you pass (also the same value as
the default) is used as given; ``rtol=None`` asks for the dtype-aware default.
"""

from itersolve.linear._cg import CG
from itersolve.linear._flexible_cg import FlexibleCG
from itersolve.linear._gauss_seidel import GaussSeidel
from itersolve.linear._gmres import GMRES
from itersolve.linear._jacobi import Jacobi
from itersolve.linear._kaczmarz import RandomizedKaczmarz
from itersolve.linear._learned import LearnedPreconditioner
from itersolve.linear._minres import MINRES
from itersolve.linear._newton_schulz import (
    NewtonSchulz,
    newton_schulz_inverse,
    newton_schulz_lstsq,
)
from itersolve.linear._optimal_omega import jacobi_spectral_radius, optimal_sor_omega
from itersolve.linear._problem import BatchedMatrixOperator, LinearProblem
from itersolve.linear._relaxation_preconditioner import RelaxationPreconditioner
from itersolve.linear._sequence import SequenceHistory, SequenceSolver
from itersolve.linear._sketch_project import SketchAndProject
from itersolve.linear._solve import LinearSetup, inner_solve, linear_solve, prepare
from itersolve.linear._sor import SOR
from itersolve.linear._ssor import SSOR
from itersolve.linear._ssor_pcg import SSORPCG
from itersolve.linear._ssor_preconditioner import SSORPreconditioner

__all__ = [
    "CG",
    "GMRES",
    "MINRES",
    "SOR",
    "SSOR",
    "SSORPCG",
    "BatchedMatrixOperator",
    "FlexibleCG",
    "GaussSeidel",
    "Jacobi",
    "LearnedPreconditioner",
    "LinearProblem",
    "LinearSetup",
    "NewtonSchulz",
    "RandomizedKaczmarz",
    "RelaxationPreconditioner",
    "SSORPreconditioner",
    "SequenceHistory",
    "SequenceSolver",
    "SketchAndProject",
    "inner_solve",
    "jacobi_spectral_radius",
    "linear_solve",
    "newton_schulz_inverse",
    "newton_schulz_lstsq",
    "optimal_sor_omega",
    "prepare",
]
