"""Test-problem generators shared by tests and benchmarks."""

from itersolve.problems.poisson import poisson

__all__ = ["poisson"]
