"""Deterministic smooth minimization: ``minimize`` and its methods."""

from itersolve.optimize._box import Box
from itersolve.optimize._constraints import EqualityConstraints
from itersolve.optimize._cubic_newton import CubicRegularizedNewton, cubic_subproblem
from itersolve.optimize._direct_search import CoveringDirectSearch
from itersolve.optimize._directional_attack import (
    DirectionalAttackSearch,
    directional_attack,
)
from itersolve.optimize._first_order import GradientMethod
from itersolve.optimize._gradient_descent import GradientDescent
from itersolve.optimize._heavy_ball import HeavyBall, heavy_ball_parameters
from itersolve.optimize._least_squares import LeastSquaresProblem, least_squares
from itersolve.optimize._levenberg_marquardt import (
    GaussNewton,
    LeastSquaresMethod,
    LevenbergMarquardt,
)
from itersolve.optimize._minimize import default_method, minimize
from itersolve.optimize._nesterov import Nesterov, torch_momentum_parameters
from itersolve.optimize._newton import Newton
from itersolve.optimize._problem import (
    OptimizationProblem,
    ProblemObjective,
    SmoothProblem,
)
from itersolve.optimize._regularized_newton import RegularizedNewton
from itersolve.optimize._second_order import DiagonalPlusRankOne, fisher_rank_one
from itersolve.optimize._sqp import AdaSketchSQP
from itersolve.optimize._triple_momentum import (
    TripleMomentum,
    triple_momentum_parameters,
)
from itersolve.optimize.bcd import BlockCoordinateDescent

__all__ = [
    "AdaSketchSQP",
    "BlockCoordinateDescent",
    "Box",
    "CoveringDirectSearch",
    "CubicRegularizedNewton",
    "DiagonalPlusRankOne",
    "DirectionalAttackSearch",
    "EqualityConstraints",
    "GaussNewton",
    "GradientDescent",
    "GradientMethod",
    "HeavyBall",
    "LeastSquaresMethod",
    "LeastSquaresProblem",
    "LevenbergMarquardt",
    "Nesterov",
    "Newton",
    "OptimizationProblem",
    "ProblemObjective",
    "RegularizedNewton",
    "SmoothProblem",
    "TripleMomentum",
    "cubic_subproblem",
    "default_method",
    "directional_attack",
    "fisher_rank_one",
    "heavy_ball_parameters",
    "least_squares",
    "minimize",
    "torch_momentum_parameters",
    "triple_momentum_parameters",
]
