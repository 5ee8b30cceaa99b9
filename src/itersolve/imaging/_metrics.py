"""Image-quality metrics of a reconstruction against a reference image."""

from __future__ import annotations

import math
from typing import Any

import torch

from itersolve._core.tensors import as_tensor

Tensor = torch.Tensor


def _pair(x: Any, reference: Any) -> tuple[Tensor, Tensor]:
    a, _ = as_tensor(x, "x")
    b, _ = as_tensor(reference, "reference")
    if a.shape != b.shape or a.dim() != 2:
        raise ValueError(
            "x and reference must be images of the same 2-d shape, got "
            f"{tuple(a.shape)} and {tuple(b.shape)}"
        )
    dtype = torch.promote_types(a.dtype, b.dtype)
    return a.to(dtype), b.to(dtype=dtype, device=a.device)


def _data_range(reference: Tensor, data_range: float | None) -> float:
    if data_range is None:
        data_range = float(reference.max() - reference.min())
    if not (math.isfinite(data_range) and data_range > 0):
        raise ValueError(f"data_range must be a finite number > 0, got {data_range!r}")
    return data_range


def relative_error(x: Any, reference: Any) -> float:
    """``||x - reference|| / ||reference||`` (Frobenius norms).

    Examples
    --------
    >>> import numpy as np
    >>> from itersolve.imaging import relative_error
    >>> relative_error(np.full((2, 2), 1.1), np.ones((2, 2)))
    0.10000000000000009
    """
    a, b = _pair(x, reference)
    return float(torch.linalg.vector_norm(a - b) / torch.linalg.vector_norm(b))


def psnr(x: Any, reference: Any, data_range: float | None = None) -> float:
    """Peak signal-to-noise ratio ``10 log10(data_range^2 / MSE)`` in dB.

    ``data_range`` defaults to ``max - min`` of ``reference`` (what
    ``skimage.metrics.peak_signal_noise_ratio`` does for float images is to
    take the dtype's range, ``[-1, 1]``; pass ``data_range`` to match it).

    Examples
    --------
    >>> import numpy as np
    >>> from itersolve.imaging import psnr
    >>> ref = np.array([[0.0, 1.0], [0.0, 1.0]])
    >>> round(psnr(ref + 0.1, ref), 6)
    20.0
    """
    a, b = _pair(x, reference)
    peak = _data_range(b, data_range)
    mse = float(((a - b) ** 2).mean())
    return math.inf if mse == 0 else 10.0 * math.log10(peak * peak / mse)


def ssim(
    x: Any, reference: Any, data_range: float | None = None, win_size: int = 7
) -> float:
    """Mean structural similarity (Wang et al. 2004) with a uniform
    ``win_size x win_size`` window, as ``skimage.metrics.structural_similarity``
    computes it by default (sample covariances, ``K1 = 0.01``, ``K2 = 0.03``,
    the mean over windows that lie inside the image).

    ``data_range`` defaults to ``max - min`` of ``reference``.

    Examples
    --------
    >>> import numpy as np
    >>> from itersolve.imaging import ssim
    >>> ref = np.random.default_rng(0).random((16, 16))
    >>> ssim(ref, ref)
    1.0
    """
    a, b = _pair(x, reference)
    if (
        isinstance(win_size, bool)
        or not isinstance(win_size, int)
        or win_size < 3
        or win_size % 2 == 0
        or win_size > min(a.shape)
    ):
        raise ValueError(
            "win_size must be an odd int >= 3 and at most the image side "
            f"{min(a.shape)}, got {win_size!r}"
        )
    peak = _data_range(b, data_range)
    n = win_size * win_size
    kernel = torch.full((1, 1, win_size, win_size), 1.0 / n, dtype=a.dtype)
    kernel = kernel.to(a.device)

    def mean(t: Tensor) -> Tensor:
        return torch.nn.functional.conv2d(t[None, None], kernel)[0, 0]

    ux, uy = mean(a), mean(b)
    scale = n / (n - 1.0)  # sample covariance
    vx = scale * (mean(a * a) - ux * ux)
    vy = scale * (mean(b * b) - uy * uy)
    vxy = scale * (mean(a * b) - ux * uy)
    c1, c2 = (0.01 * peak) ** 2, (0.03 * peak) ** 2
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / (
        (ux * ux + uy * uy + c1) * (vx + vy + c2)
    )
    return float(s.mean())
