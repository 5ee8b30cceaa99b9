"""PDE solvers: S_N transport with DSA, Sobolev-preconditioned gradient descent.

* :mod:`itersolve.pde.transport` — 1-D slab S_N transport: source iteration,
  consistent DSA, DSA-preconditioned GMRES, direct reference, spectral radii.
* :func:`solve_variational` — nonlinear elliptic variational PDEs on tensor
  grids: :class:`SobolevGradientDescent` and the comparators
  :class:`L2GradientDescent`, :class:`PicardIteration`, :class:`NewtonKrylov`.

Tolerance defaults: ``rtol = 1e-8`` on the relative residual for every
variational method, and ``tol = 1e-8`` for :class:`SourceIteration`, whose test
``||phi^{l+1} - phi^l|| / (1 - rho)`` estimates the error itself: 1e-8 is
``sqrt(eps)`` of float64, far below the ``O(h^2)`` discretisation error of any
grid these solvers are meant for, and a float64 run reaches it with room to
spare. :class:`TransportGMRES` tests the DSA-preconditioned *residual*, which
bounds the error only up to the preconditioned operator's condition number, so
its default ``GMRES(rtol=1e-10)`` keeps two digits for that factor.
"""

from itersolve.pde import pinn, transport
from itersolve.pde._diffusion_sorption import (
    DiffusionSorptionProblem,
    diffusion_sorption_reference,
)
from itersolve.pde._enkf import (
    EnKFResult,
    enkf_update,
    flatten_ensemble,
    load_ensemble,
    model_observer,
)
from itersolve.pde._factories import (
    log_gradient_energy,
    manufactured_solution,
    semilinear_tanh,
)
from itersolve.pde._fe_residual import FEResidual
from itersolve.pde._graph_galerkin import (
    GraphGalerkinNet,
    mesh_graph,
    node_features,
    train_graph_galerkin,
)
from itersolve.pde._grid import Grid, LaplacianInverse, dst1
from itersolve.pde._hard_constraint import (
    HardConstraintInfo,
    HardConstraintLayer,
    partition_domain,
)
from itersolve.pde._newton_krylov import NewtonKrylov
from itersolve.pde._pc_moe import (
    ConstrainedBasisModel,
    relative_error,
    train_constrained,
)
from itersolve.pde._picard import PicardIteration
from itersolve.pde._problem import VariationalProblem
from itersolve.pde._sobolev import L2GradientDescent, SobolevGradientDescent
from itersolve.pde._solve import solve_variational
from itersolve.pde.pinn import (
    PINN,
    AdamThenLBFGS,
    ArchitectureSearch,
    BurgersProblem,
    ConvectionDiffusionProblem,
    ConvectionProblem,
    EnsembleKalmanPINN,
    LagrangianPINN,
    PINNModel,
    PINNProblem,
    SensorData,
    convection_diffusion_fft,
    convection_exact,
    ensemble_mean_field,
    ipinner_search,
    relative_l2,
    train_enkf_pinn,
    train_pinn,
)
from itersolve.pde.transport import (
    SlabProblem,
    SourceIteration,
    TransportGMRES,
    direct_transport_solve,
    spectral_radius,
    transport_solve,
)

__all__ = [
    "PINN",
    "AdamThenLBFGS",
    "ArchitectureSearch",
    "BurgersProblem",
    "ConstrainedBasisModel",
    "ConvectionDiffusionProblem",
    "ConvectionProblem",
    "DiffusionSorptionProblem",
    "EnKFResult",
    "EnsembleKalmanPINN",
    "FEResidual",
    "GraphGalerkinNet",
    "Grid",
    "HardConstraintInfo",
    "HardConstraintLayer",
    "L2GradientDescent",
    "LagrangianPINN",
    "LaplacianInverse",
    "NewtonKrylov",
    "PINNModel",
    "PINNProblem",
    "PicardIteration",
    "SensorData",
    "SlabProblem",
    "SobolevGradientDescent",
    "SourceIteration",
    "TransportGMRES",
    "VariationalProblem",
    "convection_diffusion_fft",
    "convection_exact",
    "diffusion_sorption_reference",
    "direct_transport_solve",
    "dst1",
    "enkf_update",
    "ensemble_mean_field",
    "flatten_ensemble",
    "ipinner_search",
    "load_ensemble",
    "log_gradient_energy",
    "manufactured_solution",
    "mesh_graph",
    "model_observer",
    "node_features",
    "partition_domain",
    "pinn",
    "relative_error",
    "relative_l2",
    "semilinear_tanh",
    "solve_variational",
    "spectral_radius",
    "train_constrained",
    "train_enkf_pinn",
    "train_graph_galerkin",
    "train_pinn",
    "transport",
    "transport_solve",
]
