"""Physics-informed networks for 1-D convection(-diffusion) and Burgers.

* :func:`train_pinn` with :class:`AdamThenLBFGS` — the training loop, run by
  the shared driver (trace of every loss term, the relative L2 error vs the
  reference and the time of each step).
* :class:`PINN` — the Eulerian baseline, which fails for ``c >= 30``;
  :class:`LagrangianPINN` — the characteristic (Lagrangian) PINN of Mojgani,
  Balajewicz & Hassanzadeh, with the displacement form
  ``X = xi + c N_X(xi, t)``.
* :class:`ConvectionProblem` (exact reference ``u0(x - c t)``),
  :class:`ConvectionDiffusionProblem` (FFT reference) and
  :class:`BurgersProblem` (Cole--Hopf reference, optional noisy
  :class:`SensorData`), all :class:`PINNProblem`: the problem supplies its
  PDE residual from the network output and its autograd derivatives.
* :func:`train_enkf_pinn` with :class:`EnsembleKalmanPINN` — iterated
  ensemble Kalman training of a batch of PINNs on noisy data, and
  :func:`ipinner_search` — an NSGA-III architecture search (both a
  reconstruction of iPINNER from its abstract).
* :func:`burgers_cole_hopf` (Burgers by Cole--Hopf) and
  :func:`poisson_reference` (Poisson by a scikit-fem direct solve).
"""

from itersolve.pde.pinn._burgers import BurgersProblem, SensorData
from itersolve.pde.pinn._ipinner import (
    ArchitectureSearch,
    EnsembleKalmanPINN,
    ensemble_mean_field,
    ipinner_search,
    train_enkf_pinn,
)
from itersolve.pde.pinn._models import PINN, LagrangianPINN, PINNModel
from itersolve.pde.pinn._problem import (
    ConvectionDiffusionProblem,
    ConvectionProblem,
    PINNProblem,
)
from itersolve.pde.pinn._reference import convection_diffusion_fft, convection_exact
from itersolve.pde.pinn._references import (
    PoissonReference,
    burgers_cole_hopf,
    poisson_reference,
)
from itersolve.pde.pinn._train import AdamThenLBFGS, relative_l2, train_pinn

__all__ = [
    "PINN",
    "AdamThenLBFGS",
    "ArchitectureSearch",
    "BurgersProblem",
    "ConvectionDiffusionProblem",
    "ConvectionProblem",
    "EnsembleKalmanPINN",
    "LagrangianPINN",
    "PINNModel",
    "PINNProblem",
    "PoissonReference",
    "SensorData",
    "burgers_cole_hopf",
    "convection_diffusion_fft",
    "convection_exact",
    "ensemble_mean_field",
    "ipinner_search",
    "poisson_reference",
    "relative_l2",
    "train_enkf_pinn",
    "train_pinn",
]
