"""Two-layer ReLU networks trained to global optimality through their convex
program (Pilanci & Ergen 2020; Bai, Gautam & Sojoudi 2022).

Sample activation patterns (:func:`sample_arrangements`), build the program
(:class:`ConvexReLUProblem`), solve it with :func:`solve_convex_relu` --
:class:`ConvexReLUADMM` (factor-once linear systems, constrained or gated
program) or :class:`ConvexReLUFISTA` (gated program) -- and turn the answer
into a torch network with :func:`recover_relu_network`, whose
:func:`network_objective` equals the convex objective.
"""

from itersolve.optimize.convex_relu._admm import ConvexReLUADMM
from itersolve.optimize.convex_relu._fista import ConvexReLUFISTA
from itersolve.optimize.convex_relu._network import (
    network_objective,
    recover_relu_network,
)
from itersolve.optimize.convex_relu._problem import (
    ConvexReLUProblem,
    sample_arrangements,
)
from itersolve.optimize.convex_relu._prox import group_soft_threshold
from itersolve.optimize.convex_relu._solve import solve_convex_relu

__all__ = [
    "ConvexReLUADMM",
    "ConvexReLUFISTA",
    "ConvexReLUProblem",
    "group_soft_threshold",
    "network_objective",
    "recover_relu_network",
    "sample_arrangements",
    "solve_convex_relu",
]
