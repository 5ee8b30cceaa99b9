"""One-group S_N transport on a 1-D slab: source iteration, DSA, DSA-GMRES.

Build a :class:`SlabProblem`, solve it with :func:`transport_solve` (default:
consistent DSA), check against :func:`direct_transport_solve`, and measure
convergence factors with :func:`spectral_radius`.
"""

from itersolve.pde.transport._diffusion import DiffusionCorrection, dsa_operator
from itersolve.pde.transport._direct import direct_transport_solve, transport_matrix
from itersolve.pde.transport._factories import homogeneous_slab, reed_problem
from itersolve.pde.transport._gmres import TransportGMRES
from itersolve.pde.transport._problem import SlabProblem, gauss_legendre_sn
from itersolve.pde.transport._solve import transport_solve
from itersolve.pde.transport._source_iteration import SourceIteration
from itersolve.pde.transport._spectral import spectral_radius
from itersolve.pde.transport._sweep import SweepResult, sweep

__all__ = [
    "DiffusionCorrection",
    "SlabProblem",
    "SourceIteration",
    "SweepResult",
    "TransportGMRES",
    "direct_transport_solve",
    "dsa_operator",
    "gauss_legendre_sn",
    "homogeneous_slab",
    "reed_problem",
    "spectral_radius",
    "sweep",
    "transport_matrix",
    "transport_solve",
]
