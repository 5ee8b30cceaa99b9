"""The front door of the imaging family."""

from __future__ import annotations

import math
from typing import Any

import torch

from itersolve._core.frontdoor import check_method, solve
from itersolve._core.iterate import Callback, IterativeMethod
from itersolve._core.solution import Solution
from itersolve._core.tensors import as_tensor
from itersolve.imaging._problem import TomographyProblem
from itersolve.imaging._projector import ParallelBeamProjector
from itersolve.imaging._sgp import SGP


def reconstruct(
    y: Any,
    projector: ParallelBeamProjector,
    method: IterativeMethod | None = None,
    *,
    x0: Any = None,
    noise_level: float | None = None,
    callback: Callback | None = None,
    record: bool | int = False,
    throw: bool = False,
) -> Solution:
    """Reconstruct an image from its sinogram ``y ~ K x`` with ``x >= 0``.

    Compare with ``skimage.transform.iradon`` (FBP) and ``iradon_sart``.

    Parameters
    ----------
    y
        Sinogram of shape ``projector.sinogram_shape`` (angles, detectors).
    projector
        The :class:`ParallelBeamProjector` ``K``; it is moved to ``y``'s dtype
        and device when they differ (a copy).
    method
        :class:`SGP` (default, ``SGP()``) or :class:`FISTATV`.
    x0
        Starting image (``projector.image_shape``); default the constant image
        ``c = sum(y) / sum(K 1)`` that reproduces the data's total mass
        (positive, as SGP's multiplicative scaling needs; ``x0 = 0`` would
        freeze its first step).
    noise_level
        Relative noise level ``||e|| / ||y||`` (as made by
        :func:`itersolve.problems.simulate`); when given, the methods stop by
        the discrepancy principle ``||K x - y|| <= tau noise_level ||y||``.
    callback, record, throw
        As for every front door.

    Returns
    -------
    Solution
        ``x`` the image in ``y``'s array kind and dtype; ``stats`` counts
        ``forward_projections`` and ``back_projections`` (line searches
        included) and ``discrepancy_stop`` (1.0 when the discrepancy
        principle ended the run, else 0.0).

    Examples
    --------
    >>> import numpy as np
    >>> from itersolve.imaging import ParallelBeamProjector, reconstruct
    >>> from itersolve.problems import shepp_logan, simulate
    >>> angles = np.linspace(0, np.pi, 16, endpoint=False)
    >>> y = simulate(shepp_logan(16), angles, 0.0, seed=0)
    >>> sol = reconstruct(y, ParallelBeamProjector(16, angles))
    >>> sol.x.shape, sol.success
    ((16, 16), True)
    """
    if not isinstance(projector, ParallelBeamProjector):
        raise TypeError(
            f"projector must be a ParallelBeamProjector, got {type(projector).__name__}"
        )
    method = check_method(method if method is not None else SGP(), "SGP()")
    y_t, info = as_tensor(y, "y")
    if tuple(y_t.shape) != projector.sinogram_shape:
        raise ValueError(
            f"y must have the projector's sinogram shape "
            f"{projector.sinogram_shape}, got {tuple(y_t.shape)}"
        )
    if noise_level is not None and not (
        isinstance(noise_level, (int, float))
        and math.isfinite(noise_level)
        and noise_level >= 0
    ):
        raise ValueError(
            f"noise_level must be a finite number >= 0 or None, got {noise_level!r}"
        )
    K = projector
    if K.dtype != y_t.dtype or K.device != y_t.device:
        K = projector.to(device=y_t.device, dtype=y_t.dtype)
    if x0 is None:
        ones = torch.ones(K.image_shape, dtype=y_t.dtype, device=y_t.device)
        mass = float(y_t.sum()) / max(float(K.matrix.values().sum()), 1e-300)
        # The fallback keeps x0 positive on all-zero (or negative-mean) data.
        x = ones * (mass if mass > 0 else 1e-3)
    else:
        x, _ = as_tensor(x0, "x0", dtype=y_t.dtype, device=y_t.device, copy=True)
        if tuple(x.shape) != K.image_shape:
            raise ValueError(
                f"x0 must have the image shape {K.image_shape}, got {tuple(x.shape)}"
            )
    delta = None
    if noise_level is not None:
        delta = noise_level * float(torch.linalg.vector_norm(y_t))
    problem = TomographyProblem(K, y_t, delta)
    return solve(
        method,
        problem,
        x,
        output=info,
        callback=callback,
        record=record,
        throw=throw,
        check_finite=(y_t,),
        counters=problem.counts,
    )
