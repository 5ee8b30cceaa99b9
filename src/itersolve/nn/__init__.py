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
from itersolve.nn._graph import CGS, ContractiveGraphFixedPoint
from itersolve.nn._homoode import HomoODE, SharedStart

__all__ = [
    "CGS",
    "ChebConv",
    "ContractiveGraphFixedPoint",
    "DCDMNet",
    "DCDMTraining",
    "DEQLayer",
    "HomoODE",
    "SharedStart",
    "VariationalDropout",
    "chebyshev_laplacian",
    "dcdm_loss",
    "lanczos_ritz",
    "ritz_rhs_dataset",
    "train_dcdm",
]
