"""torch.optim-style training optimizers and learning-rate schedules.

* :class:`Adahessian` and :func:`hutchinson_diagonal` (Hessian-diagonal
  preconditioning, arXiv 2006.00719);
* :class:`MFAC`, :class:`InverseFisher`, :func:`obs_prune` (matrix-free inverse
  empirical Fisher, arXiv 2107.03356);
* :class:`ProxSGD` with prox operators and last-iterate step-size rules
  (arXiv 2312.08531);
* :mod:`itersolve.optim.schedules` (pure schedules and ``refine_schedule``,
  arXiv 2310.07831).
"""

from itersolve.optim import schedules
from itersolve.optim._adahessian import Adahessian
from itersolve.optim._hutchinson import hutchinson_diagonal, spatial_average
from itersolve.optim._inverse_fisher import InverseFisher
from itersolve.optim._last_iterate import ProxSGD, project_simplex, soft_threshold
from itersolve.optim._mfac import MFAC
from itersolve.optim._obs_prune import obs_prune

__all__ = [
    "MFAC",
    "Adahessian",
    "InverseFisher",
    "ProxSGD",
    "hutchinson_diagonal",
    "obs_prune",
    "project_simplex",
    "schedules",
    "soft_threshold",
    "spatial_average",
]
