"""Test-problem generators, fixtures and datasets shared by tests and benchmarks.

Library interfaces live with their family: the smooth-problem protocol is
:class:`itersolve.optimize.SmoothProblem`. ``itersolve.problems.SmoothProblem`` and
``itersolve.problems.ProblemObjective`` still resolve for one release, with a
``DeprecationWarning``.
"""

import warnings
from typing import Any

from itersolve.optimize import _problem
from itersolve.problems.bilevel import (
    HyperparameterLearning,
    QuadraticBilevel,
    hyperparameter_learning,
    quadratic_bilevel,
)
from itersolve.problems.constrained import (
    PAPER_PROBLEMS,
    CutestProblem,
    constrained_logistic,
    cutest,
    cutest_available,
    cutest_directory,
)
from itersolve.problems.coordinate import (
    ElasticNet,
    LabelPropagation,
    Lasso,
    NonNegativeLeastSquaresL1,
    SparseLeastSquares,
    lattice_label_propagation,
    sparse_classification_data,
    sparse_multiclass_data,
    sparse_regression_data,
    two_moons_label_propagation,
)
from itersolve.problems.fixed_point import ContractiveTanh, contractive_tanh
from itersolve.problems.linear import (
    convection_diffusion,
    poisson_eigenvalues,
    random_spd,
    spectrum,
    symmetric_indefinite,
)
from itersolve.problems.mdp import RandomMDP, random_mdp
from itersolve.problems.mpm import MPMTrajectory, mpm_p2g, mpm_simulate
from itersolve.problems.obstacles import ObstaclePoisson, obstacle_poisson
from itersolve.problems.optimization import (
    LeastSquares,
    LessardCounterexample,
    Logistic,
    LogSumExp,
    Quadratic,
    Rosenbrock,
    Softmax,
    breast_cancer_data,
    breast_cancer_logistic,
    digits_data,
    digits_softmax,
    lessard_counterexample,
    quadratic_logspaced,
    synthetic_classification,
    synthetic_logistic,
)
from itersolve.problems.phantoms import (
    EllipsePhantom,
    ellipse_phantoms,
    shepp_logan,
    simulate,
)
from itersolve.problems.poisson import poisson
from itersolve.problems.sequences import (
    HeatEquation2D,
    ShiftedLaplacianSequence,
    shifted_laplacian_sequence,
)
from itersolve.problems.surrogates import (
    SurrogateObjective,
    mlp_surrogate,
    nonsmooth_valley,
)
from itersolve.problems.transport import (
    TransportInstance,
    digit_image,
    gaussian_mixture_density,
    gaussian_mixtures,
    mnist_like,
    point_clouds,
    random_assignment,
)

__all__ = [
    "PAPER_PROBLEMS",
    "ContractiveTanh",
    "CutestProblem",
    "ElasticNet",
    "EllipsePhantom",
    "HeatEquation2D",
    "HyperparameterLearning",
    "LabelPropagation",
    "Lasso",
    "LeastSquares",
    "LessardCounterexample",
    "LogSumExp",
    "Logistic",
    "MPMTrajectory",
    "NonNegativeLeastSquaresL1",
    "ObstaclePoisson",
    "Quadratic",
    "QuadraticBilevel",
    "RandomMDP",
    "Rosenbrock",
    "ShiftedLaplacianSequence",
    "Softmax",
    "SparseLeastSquares",
    "SurrogateObjective",
    "TransportInstance",
    "breast_cancer_data",
    "breast_cancer_logistic",
    "constrained_logistic",
    "contractive_tanh",
    "convection_diffusion",
    "cutest",
    "cutest_available",
    "cutest_directory",
    "digit_image",
    "digits_data",
    "digits_softmax",
    "ellipse_phantoms",
    "gaussian_mixture_density",
    "gaussian_mixtures",
    "hyperparameter_learning",
    "lattice_label_propagation",
    "lessard_counterexample",
    "mlp_surrogate",
    "mnist_like",
    "mpm_p2g",
    "mpm_simulate",
    "nonsmooth_valley",
    "obstacle_poisson",
    "point_clouds",
    "poisson",
    "poisson_eigenvalues",
    "quadratic_bilevel",
    "quadratic_logspaced",
    "random_assignment",
    "random_mdp",
    "random_spd",
    "shepp_logan",
    "shifted_laplacian_sequence",
    "simulate",
    "sparse_classification_data",
    "sparse_multiclass_data",
    "sparse_regression_data",
    "spectrum",
    "symmetric_indefinite",
    "synthetic_classification",
    "synthetic_logistic",
    "two_moons_label_propagation",
]

_MOVED = {"SmoothProblem", "ProblemObjective"}


def __getattr__(name: str) -> Any:
    if name in _MOVED:
        warnings.warn(
            f"itersolve.problems.{name} is deprecated; import it from "
            "itersolve.optimize",
            DeprecationWarning,
            stacklevel=2,
        )
        return getattr(_problem, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
