"""Test-problem generators shared by tests and benchmarks."""

from itersolve.problems.linear import (
    convection_diffusion,
    poisson_eigenvalues,
    random_spd,
    spectrum,
    symmetric_indefinite,
)
from itersolve.problems.poisson import poisson

__all__ = [
    "convection_diffusion",
    "poisson",
    "poisson_eigenvalues",
    "random_spd",
    "spectrum",
    "symmetric_indefinite",
]
