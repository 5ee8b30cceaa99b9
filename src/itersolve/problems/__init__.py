"""Test-problem generators shared by tests and benchmarks."""

from itersolve.problems.linear import (
    convection_diffusion,
    poisson_eigenvalues,
    random_spd,
    spectrum,
    symmetric_indefinite,
)
from itersolve.problems.optimization import (
    LeastSquares,
    LessardCounterexample,
    Logistic,
    LogSumExp,
    ProblemObjective,
    Quadratic,
    Rosenbrock,
    SmoothProblem,
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
from itersolve.problems.poisson import poisson
from itersolve.problems.sequences import (
    HeatEquation2D,
    ShiftedLaplacianSequence,
    shifted_laplacian_sequence,
)

__all__ = [
    "HeatEquation2D",
    "LeastSquares",
    "LessardCounterexample",
    "LogSumExp",
    "Logistic",
    "ProblemObjective",
    "Quadratic",
    "Rosenbrock",
    "ShiftedLaplacianSequence",
    "SmoothProblem",
    "Softmax",
    "breast_cancer_data",
    "breast_cancer_logistic",
    "convection_diffusion",
    "digits_data",
    "digits_softmax",
    "lessard_counterexample",
    "poisson",
    "poisson_eigenvalues",
    "quadratic_logspaced",
    "random_spd",
    "shifted_laplacian_sequence",
    "spectrum",
    "symmetric_indefinite",
    "synthetic_classification",
    "synthetic_logistic",
]
