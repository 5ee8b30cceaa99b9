"""Block coordinate descent: greedy block rules, matrix/Newton updates, message
passing on forest blocks and proximal steps (Nutini, Laradji & Schmidt, 2022).

The method is :class:`BlockCoordinateDescent`; the selection and update rules it
accepts by name are also public classes, so a configured rule can be passed
(``selection=GaussSouthwellRule(norm="code")``). Which incremental model a
problem runs on is chosen by the structure protocols it satisfies
(:class:`L1LeastSquaresStructure`, :class:`LeastSquaresStructure`,
:class:`QuadraticStructure`, :class:`LinearPredictorStructure`), so a user's own
problem class gets the fast paths by having the attributes.
"""

from itersolve.optimize.bcd._method import BlockCoordinateDescent
from itersolve.optimize.bcd._proximal import L1Penalty, lasso_duality_gap
from itersolve.optimize.bcd._selection import (
    CyclicRule,
    GaussSouthwellDiagonalRule,
    GaussSouthwellLipschitzRule,
    GaussSouthwellQuadraticRule,
    GaussSouthwellRule,
    GreedyForestRule,
    LipschitzRule,
    RandomRule,
    SelectionRule,
    VariableBlockRule,
)
from itersolve.optimize.bcd._structure import (
    L1LeastSquaresStructure,
    LeastSquaresStructure,
    LinearPredictorStructure,
    QuadraticStructure,
)
from itersolve.optimize.bcd._updates import (
    GradientUpdate,
    LipschitzAdaptiveUpdate,
    MatrixUpdate,
    MessagePassingUpdate,
    NewtonUpdate,
    UpdateRule,
)

__all__ = [
    "BlockCoordinateDescent",
    "CyclicRule",
    "GaussSouthwellDiagonalRule",
    "GaussSouthwellLipschitzRule",
    "GaussSouthwellQuadraticRule",
    "GaussSouthwellRule",
    "GradientUpdate",
    "GreedyForestRule",
    "L1LeastSquaresStructure",
    "L1Penalty",
    "LeastSquaresStructure",
    "LinearPredictorStructure",
    "LipschitzAdaptiveUpdate",
    "LipschitzRule",
    "MatrixUpdate",
    "MessagePassingUpdate",
    "NewtonUpdate",
    "QuadraticStructure",
    "RandomRule",
    "SelectionRule",
    "UpdateRule",
    "VariableBlockRule",
    "lasso_duality_gap",
]
