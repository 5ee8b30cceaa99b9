"""Finite-difference Laplacians (moved to :mod:`itersolve.problems.linear`)."""

from itersolve.problems.linear import poisson, poisson_eigenvalues

__all__ = ["poisson", "poisson_eigenvalues"]
