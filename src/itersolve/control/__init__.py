"""Continuous-time optimal control: torch CARE/Lyapunov, Kleinman and IntRL
policy iteration with trapezoid / Simpson / Gauss–Legendre / Bayesian quadrature.

Front doors: :func:`solve_lqr` (:class:`Kleinman`), :func:`policy_iteration`
(:class:`IntegralPolicyIteration`), and the SciPy-style functions :func:`care`
and :func:`lyapunov`. Inputs are validated as strictly as
``scipy.linalg.solve_continuous_are``: ``Q`` and ``R`` symmetric to 100 ulp of
their 1-norm, ``R`` positive definite, no empty matrices.

Tolerance defaults, each on a relative change: ``1e-13`` for the matrix-sign
iteration of :func:`care` / :func:`lyapunov` (the accuracy of SciPy's Schur
solvers, which these stand in for; quadratic convergence makes the last digits
cost one or two steps) and ``1e-12`` for :class:`Kleinman` (Newton on the CARE:
quadratic too, so a tolerance near float64 rounding costs one extra Lyapunov
solve). :class:`IntegralPolicyIteration` stops on ``||w_k - w_{k-1}||_2 <=
1e-10``: its data come from an ODE solve at ``ode_tol = 1e-12``, and the
weights cannot be resolved better than that data.
"""

from itersolve.control._features import (
    matrix_to_vech,
    vech_features,
    vech_gradient,
    vech_to_matrix,
)
from itersolve.control._intrl import IntegralPolicyIteration
from itersolve.control._kleinman import Kleinman
from itersolve.control._problem import ControlAffineSystem, LQRProblem, SignProblem
from itersolve.control._quadrature import (
    BayesQuadrature,
    bq_matern_weights,
    gauss_legendre_rule,
    integrate,
    matern_kernel,
    matern_kernel_mean,
    simpson_weights,
    trapezoid_weights,
)
from itersolve.control._riccati import care, care_residual, lyapunov
from itersolve.control._sign import MatrixSign
from itersolve.control._solve import policy_iteration, solve_lqr
from itersolve.control._systems import sin_system, third_order_linear

__all__ = [
    "BayesQuadrature",
    "ControlAffineSystem",
    "IntegralPolicyIteration",
    "Kleinman",
    "LQRProblem",
    "MatrixSign",
    "SignProblem",
    "bq_matern_weights",
    "care",
    "care_residual",
    "gauss_legendre_rule",
    "integrate",
    "lyapunov",
    "matern_kernel",
    "matern_kernel_mean",
    "matrix_to_vech",
    "policy_iteration",
    "simpson_weights",
    "sin_system",
    "solve_lqr",
    "third_order_linear",
    "trapezoid_weights",
    "vech_features",
    "vech_gradient",
    "vech_to_matrix",
]
