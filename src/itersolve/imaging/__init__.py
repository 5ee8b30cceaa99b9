"""Tomographic reconstruction: a parallel-beam projector with an exact adjoint
and early-stopped regularised solvers.

* :class:`ParallelBeamProjector` — the X-ray transform as a torch sparse
  matrix of exact ray-pixel intersection lengths, with its transpose.
* :func:`reconstruct` — the front door, ``reconstruct(y, projector, method)``.
* :class:`SGP` — scaled gradient projection on least squares + smoothed TV.
* :class:`FISTATV` — FISTA on least squares + isotropic TV.
* :class:`RISING`, :func:`train_rising`, :class:`ResUNet` — a few SGP steps
  completed by a network trained on converged SGP reconstructions.
* :func:`relative_error`, :func:`psnr`, :func:`ssim` — image-quality metrics.

Phantoms and simulated sinograms: :func:`itersolve.problems.ellipse_phantoms`,
:func:`itersolve.problems.shepp_logan`, :func:`itersolve.problems.simulate`.

Examples
--------
>>> import numpy as np, torch
>>> from itersolve import imaging
>>> K = imaging.ParallelBeamProjector(16, np.radians([0.0, 45.0, 90.0]))
>>> K.forward(torch.ones(16, 16, dtype=torch.float64)).shape
torch.Size([3, 24])
"""

from itersolve.imaging._fista_tv import FISTATV
from itersolve.imaging._metrics import psnr, relative_error, ssim
from itersolve.imaging._projector import ParallelBeamProjector
from itersolve.imaging._reconstruct import reconstruct
from itersolve.imaging._rising import RISING, train_rising
from itersolve.imaging._sgp import SGP
from itersolve.imaging._tv import tv_isotropic, tv_smoothed
from itersolve.imaging._unet import ResUNet

__all__ = [
    "FISTATV",
    "RISING",
    "SGP",
    "ParallelBeamProjector",
    "ResUNet",
    "psnr",
    "reconstruct",
    "relative_error",
    "ssim",
    "train_rising",
    "tv_isotropic",
    "tv_smoothed",
]
