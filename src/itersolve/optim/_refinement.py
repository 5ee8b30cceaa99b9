"""Schedule refinement from logged gradient norms (Defazio et al., 2023)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import scipy.ndimage
import torch

from itersolve.optim._schedule_functions import Schedule, _check_step

OPTIMIZERS = ("sgd", "adam")
PAD_MODES = ("nearest-reflect", "nearest", "reflect")


@dataclass(frozen=True, eq=False)
class RefinedSchedule(Schedule):
    """A schedule given by a table: ``values[t]`` for ``t < len(values)``, 0 after.

    ``values`` is normalised to a maximum of 1 and its last entry is 0.

    Examples
    --------
    >>> import numpy as np
    >>> from itersolve.optim.schedules import RefinedSchedule
    >>> schedule = RefinedSchedule(np.array([1.0, 0.5, 0.25]))
    >>> [schedule(t) for t in range(4)]
    [1.0, 0.5, 0.25, 0.0]
    """

    values: np.ndarray = field(repr=False)

    def __call__(self, t: int) -> float:
        t = _check_step(t)
        return float(self.values[t]) if t < len(self.values) else 0.0

    def __len__(self) -> int:
        return len(self.values)


def refine_schedule(
    grad_norms: Sequence[float] | np.ndarray | torch.Tensor,
    *,
    optimizer: str = "sgd",
    smoothing: float = 0.1,
    pad_mode: str = "nearest-reflect",
) -> RefinedSchedule:
    """Refine a schedule from the gradient norms logged during a previous run.

    With ``G_t`` the median-filtered norms (odd window
    ``2 * (int(smoothing * T) // 2) + 1``, as in the paper's reference code) and
    weights ``w_t = G_t^{-2}`` (``optimizer="sgd"``, l2 norms) or
    ``w_t = G_t^{-1}`` (``optimizer="adam"``, pass l1 norms; coordinate-wise
    normalised updates), the refined multiplier is::

        s_t = w_t * sum_{p > t} w_p / sum_p w_p,     t = 0 .. T-1,

    divided by its maximum, so ``max s = 1`` and ``s_{T-1} = 0``: the last logged
    step gets learning rate 0, so the run ends on the iterate the refinement
    bound is about (Algorithm 1 of the paper, ``eta_T = 0``). Flat norms give
    exactly linear decay over the ``T - 1`` nonzero steps; norms that shrink
    during training give a warm-up-like rise, growing norms a faster decay.
    Multiply by the base learning rate (e.g. through ``LambdaLR``); rerun the
    same LR grid with it.

    Compare with ``torch.optim.lr_scheduler.LinearLR`` (what refinement reduces to
    for constant norms) and the closed form in the paper's reference code
    (``find_closed_form_schedule``).

    Parameters
    ----------
    grad_norms
        ``T >= 2`` positive, finite per-step gradient norms (l2 for SGD, l1 for
        Adam-type methods).
    optimizer
        ``"sgd"`` (weights ``G^{-2}``) or ``"adam"`` (weights ``G^{-1}``).
    smoothing
        Median-filter width as a fraction of ``T`` (0: no filtering).
    pad_mode
        Boundary handling of the filter. ``"nearest-reflect"`` (default) is the
        paper's: nearest at the start, and at the end the norms are extended by
        their mirror image (``numpy.pad(mode="reflect")``, ``2 * window`` values)
        so the last window's median is not pinned to the last logged norm.
        ``"nearest"`` or ``"reflect"`` use that ``scipy.ndimage`` mode at both
        ends.

    References
    ----------
    A. Defazio, A. Cutkosky, H. Mehta, K. Mishchenko, "When, Why and How Much?
    Adaptive Learning Rate Scheduling by Refinement", arXiv 2310.07831.

    Examples
    --------
    >>> s = refine_schedule([1.0] * 5, smoothing=0)  # flat norms: linear decay
    >>> [round(s(t), 12) for t in range(6)]
    [1.0, 0.75, 0.5, 0.25, 0.0, 0.0]
    """
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {optimizer!r}")
    if pad_mode not in PAD_MODES:
        raise ValueError(f"pad_mode must be one of {PAD_MODES}, got {pad_mode!r}")
    if not 0.0 <= smoothing <= 1.0:
        raise ValueError(f"smoothing must be in [0, 1], got {smoothing}")
    if isinstance(grad_norms, torch.Tensor):
        norms = grad_norms.detach().cpu().to(torch.float64).numpy()
    else:
        norms = np.asarray(grad_norms, dtype=np.float64)
    if norms.ndim != 1 or norms.size < 2:
        raise ValueError(
            f"grad_norms must be a 1-D sequence of at least 2 values, got shape "
            f"{norms.shape}"
        )
    if not np.all(np.isfinite(norms)) or np.any(norms <= 0):
        raise ValueError("grad_norms must be finite and > 0")
    width = 2 * (int(smoothing * norms.size) // 2) + 1
    if width > 1 and pad_mode == "nearest-reflect":
        pad = 2 * width
        padded = np.pad(norms, (0, pad), mode="reflect")
        norms = scipy.ndimage.median_filter(padded, size=width, mode="nearest")[:-pad]
    elif width > 1:
        norms = scipy.ndimage.median_filter(norms, size=width, mode=pad_mode)
    weights = norms ** (-2.0 if optimizer == "sgd" else -1.0)
    tail = np.cumsum(weights[::-1])[::-1]  # sum_{p >= t} w_p
    after = np.append(tail[1:], 0.0)  # sum_{p > t} w_p
    values = weights * after / tail[0]
    values = values / values.max()
    values.setflags(write=False)
    return RefinedSchedule(values)
