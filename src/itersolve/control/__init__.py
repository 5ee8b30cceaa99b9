"""Continuous-time optimal control: torch CARE/Lyapunov, Kleinman and IntRL
policy iteration with trapezoid / Simpson / Gauss–Legendre / Bayesian quadrature."""

from itersolve.control._intrl import IntegralPolicyIteration, policy_iteration
from itersolve.control._kleinman import Kleinman, LQRProblem, solve_lqr
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
from itersolve.control._sign import MatrixSign, SignProblem
from itersolve.control._systems import (
    ControlAffineSystem,
    matrix_to_vech,
    sin_system,
    third_order_linear,
    vech_features,
    vech_gradient,
    vech_to_matrix,
)

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
