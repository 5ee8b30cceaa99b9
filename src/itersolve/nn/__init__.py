"""Neural-network layers built on the solvers: deep equilibrium models.

* :class:`DEQLayer` — ``z* = cell(z*, x)`` as an :class:`torch.nn.Module`,
  solved by a method of :mod:`itersolve.fixed_point` and differentiated
  implicitly (or by the phantom gradient) through
  :func:`~itersolve.fixed_point.fixed_point_layer`.
* :class:`VariationalDropout` — dropout whose mask stays fixed across the
  solver iterations of one forward call.
* :class:`HomoODE` — the homotopy ODE between a DEQ cell and its fixed point
  (exact Newton homotopy, or paper 16's learned field with a learned start,
  :class:`SharedStart`).
* :class:`ContractiveGraphFixedPoint` (alias ``CGS``) — the contractive linear
  fixed point of a convergent graph solver, sparse message passing, implicit
  backward.
* :class:`ChebConv` — Chebyshev spectral graph convolution on the scaled
  normalised Laplacian of :func:`chebyshev_laplacian`, plain torch.
* :class:`DCDMNet`, :func:`train_dcdm` — the deep conjugate direction method's
  CNN (``f ~ A^{-1}`` up to a scalar), trained unsupervised on Ritz-vector
  right-hand sides; used through :class:`itersolve.linear.LearnedPreconditioner`.
* :mod:`itersolve.nn.icl` (a public submodule) — the in-context linear-regression
  probe of Fu et al.: a GPT-2-style transformer, per-layer linear read-outs and
  their similarity to Iterative Newton and gradient-descent steps.
* :class:`GIOROM` — a reduced-order learned particle simulator (graph neural
  operator :class:`GraphOperator` on a farthest-point-sampled cloud, learned
  :class:`KernelInterpolator` back to the full cloud) and the full-graph
  :class:`GNS` baseline; :func:`train_giorom`, :func:`train_gns`,
  :func:`rollout_error`, :func:`radius_graph` (cell list).
"""

from itersolve.nn._chebconv import ChebConv, chebyshev_laplacian
from itersolve.nn._dcdm import (
    DCDMNet,
    DCDMTraining,
    dcdm_loss,
    lanczos_ritz,
    ritz_rhs_dataset,
    train_dcdm,
)
from itersolve.nn._deq import DEQLayer, VariationalDropout
from itersolve.nn._giorom import (
    GIOROM,
    GNS,
    GraphOperator,
    KernelInterpolator,
    farthest_point_sample,
    lattice_neighbors,
    radius_graph,
    radius_neighbors,
    rollout_error,
    train_giorom,
    train_gns,
)
from itersolve.nn._graph import CGS, ContractiveGraphFixedPoint
from itersolve.nn._homoode import HomoODE, SharedStart

__all__ = [
    "CGS",
    "GIOROM",
    "GNS",
    "ChebConv",
    "ContractiveGraphFixedPoint",
    "DCDMNet",
    "DCDMTraining",
    "DEQLayer",
    "GraphOperator",
    "HomoODE",
    "KernelInterpolator",
    "SharedStart",
    "VariationalDropout",
    "chebyshev_laplacian",
    "dcdm_loss",
    "farthest_point_sample",
    "lanczos_ritz",
    "lattice_neighbors",
    "radius_graph",
    "radius_neighbors",
    "ritz_rhs_dataset",
    "rollout_error",
    "train_dcdm",
    "train_giorom",
    "train_gns",
]
