"""Linear systems: ``linear_solve`` and its solvers."""

from itersolve.linear._cg import CG
from itersolve.linear._flexible_cg import FlexibleCG
from itersolve.linear._gauss_seidel import GaussSeidel
from itersolve.linear._gmres import GMRES
from itersolve.linear._jacobi import Jacobi
from itersolve.linear._kaczmarz import RandomizedKaczmarz
from itersolve.linear._minres import MINRES
from itersolve.linear._newton_schulz import (
    NewtonSchulz,
    newton_schulz_inverse,
    newton_schulz_lstsq,
)
from itersolve.linear._optimal_omega import jacobi_spectral_radius, optimal_sor_omega
from itersolve.linear._problem import BatchedMatrixOperator, LinearProblem
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
    "LinearProblem",
    "LinearSetup",
    "NewtonSchulz",
    "RandomizedKaczmarz",
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
