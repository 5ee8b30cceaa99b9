"""PDE solvers: S_N transport with DSA, Sobolev-preconditioned gradient descent."""

from itersolve.pde import transport
from itersolve.pde.transport import (
    SlabProblem,
    SourceIteration,
    TransportGMRES,
    direct_transport_solve,
    spectral_radius,
    transport_solve,
)

__all__ = [
    "SlabProblem",
    "SourceIteration",
    "TransportGMRES",
    "direct_transport_solve",
    "spectral_radius",
    "transport",
    "transport_solve",
]
