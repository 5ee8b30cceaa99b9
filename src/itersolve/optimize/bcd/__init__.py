"""Block coordinate descent: greedy block rules, matrix/Newton updates, message
passing on forest blocks and proximal steps (Nutini, Laradji & Schmidt, 2022).

The method is :class:`BlockCoordinateDescent`; the selection and update rules it
accepts by name are also public classes, so a configured rule can be passed
(``selection=GaussSouthwellRule(norm="code")``).
"""

from itersolve.optimize.bcd._method import BlockCoordinateDescent
from itersolve.optimize.bcd._proximal import L1Penalty
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
    "L1Penalty",
    "LipschitzAdaptiveUpdate",
    "LipschitzRule",
    "MatrixUpdate",
    "MessagePassingUpdate",
    "NewtonUpdate",
    "RandomRule",
    "SelectionRule",
    "UpdateRule",
    "VariableBlockRule",
]
