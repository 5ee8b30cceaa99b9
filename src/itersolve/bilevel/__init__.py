"""Multi-block bilevel optimisation: ``min_x (1/m) sum_i f_i(x, y_i*(x))``.

``y_i*(x) = argmin_y g_i(x, y)`` with every ``g_i`` strongly convex in ``y``.
The front door :func:`solve` runs :class:`BSVRB` (blockwise variance-reduced,
v1 with Hessian tracking, v2 with Hessian-vector products), the baseline
:class:`RSVRB`, or :class:`StochasticHypergradient` (inner SGD and a CG
adjoint); :func:`exact_hypergradient` is the implicit-differentiation oracle.

Examples
--------
>>> import torch
>>> from itersolve.bilevel import BSVRB, solve
>>> from itersolve.problems import quadratic_bilevel
>>> p = quadratic_bilevel(m=4, dim_x=3, dim_y=5, n=32)
>>> x0 = torch.zeros(3, dtype=torch.float64)
>>> sol = solve(p, x0, BSVRB(eta=0.1, tau=0.3), epochs=5)
>>> sol.success
True
"""

from itersolve.bilevel._base import BilevelMethod
from itersolve.bilevel._bsvrb import BSVRB
from itersolve.bilevel._exact import Hypergradient, exact_hypergradient, solve_lower
from itersolve.bilevel._problem import BilevelProblem, MultiBlockBilevelProblem
from itersolve.bilevel._rsvrb import RSVRB
from itersolve.bilevel._solve import hypergradient_estimate, solve
from itersolve.bilevel._stochastic_hypergradient import StochasticHypergradient

__all__ = [
    "BSVRB",
    "RSVRB",
    "BilevelMethod",
    "BilevelProblem",
    "Hypergradient",
    "MultiBlockBilevelProblem",
    "StochasticHypergradient",
    "exact_hypergradient",
    "hypergradient_estimate",
    "solve",
    "solve_lower",
]
