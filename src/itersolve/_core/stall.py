"""Frozen-iterate detection for the driver (:func:`itersolve.iterate`).

At check points the driver asks a :class:`StallWatch` whether ``x`` has moved
beyond rounding level. The answer must cost next to nothing on a run that moves
(the common case, where the driver's per-step budget is a couple of
microseconds) and be exact on a run that is frozen, so it comes in two stages:

1. a strided sample of ``x`` (at most :data:`STALL_SAMPLE` entries) is compared
   with its copy from the previous check: a few tens of microseconds at any
   size, dominated by the fixed cost of a handful of tensor operations;
2. only when the sample did not move is all of ``x`` copied, and compared one
   window later. ``STAGNATION`` is declared on that full comparison only, never
   on the sample.

The gaps between sample checks start at the window ``W`` and double while ``x``
keeps moving, up to ``STALL_MAX_GAP * W``: the check's cost per step then falls
to a few hundredths of a microsecond on long runs, and a run that freezes at
step ``f`` still ends within two gaps and a window of ``f`` (about ``4 f + W``
early in a run, at most ``f + (2 STALL_MAX_GAP + 1) W``) instead of at
``max_steps``.
"""

from __future__ import annotations

import torch

#: Steps between frozen-iterate checks unless a method says otherwise
#: (:meth:`IterativeMethod.default_stall_window
#: <itersolve.IterativeMethod.default_stall_window>`): a run frozen early ends
#: long before a typical ``max_steps``, and the check's few microseconds per
#: window vanish per step.
STALL_WINDOW = 32

#: ``x`` counts as frozen over a window when ``max|x - snapshot|`` is at most this
#: many units of ``eps(dtype) * max|x|``. Why a few and not zero: a converged
#: iterate still moves by rounding (``x + d`` flips the last bit of components
#: where ``d`` is about half an ulp), back and forth, so the net change over a
#: window is a few ulps, not exactly zero. Why against ``max|x|`` and not per
#: component: anything computed from ``x`` (``A x``, a gradient) carries a
#: rounding error of order ``eps * max|x|``, so changes below that cannot move the
#: stopping test. A run making real progress moves ``x`` far more than 4 ulps
#: over a window.
STALL_ULPS = 4.0

#: Most entries of ``x`` in the cheap first-stage comparison.
STALL_SAMPLE = 256

#: Largest gap between sample checks, in windows.
STALL_MAX_GAP = 16


def stall_change(x: torch.Tensor, snapshot: torch.Tensor) -> tuple[float, float]:
    """``max|x - snapshot|`` and ``max|x|``.

    ``aminmax`` rather than ``abs().max()`` or an inf-norm: one pass and no
    temporary for the scale (several times faster on CPU).
    """
    with torch.no_grad():
        low, high = torch.aminmax(x - snapshot)
        xlow, xhigh = torch.aminmax(x)
    return max(float(high), -float(low)), max(float(xhigh), -float(xlow))


class StallWatch:
    """Tells at check points whether ``x`` froze; :attr:`next` is the step of
    the next check (a multiple of ``window``, itself a multiple of the
    driver's ``check_every``).

    After a ``True`` from :meth:`frozen`, ``change`` and ``scale`` hold the
    measured ``max|dx|`` over the last ``window`` steps and ``max|x|``.
    """

    def __init__(self, x: torch.Tensor, window: int) -> None:
        flat = self._flat(x)
        self.window = self.gap = self.next = window
        self.tolerance = STALL_ULPS * torch.finfo(x.dtype).eps
        self.stride = max(1, -(-flat.numel() // STALL_SAMPLE))
        self.sample = flat[:: self.stride].clone()
        self.full: torch.Tensor | None = None
        self.change = self.scale = 0.0

    @staticmethod
    def _flat(x: torch.Tensor) -> torch.Tensor:
        x = x.detach()
        return x.view(-1) if x.is_contiguous() else x.reshape(-1)

    def _still(self, x: torch.Tensor, snapshot: torch.Tensor) -> bool:
        if x.is_complex():  # aminmax is real-only; the max over parts is as good
            x, snapshot = torch.view_as_real(x), torch.view_as_real(snapshot)
        self.change, self.scale = stall_change(x, snapshot)
        return self.change <= self.tolerance * self.scale

    def frozen(self, x: torch.Tensor) -> bool:
        flat = self._flat(x)
        sample = flat[:: self.stride]
        if self.full is not None:
            full, self.full = self.full, None
            if self._still(flat, full):
                return True
            self.next += self.gap
        elif self._still(sample, self.sample):
            # The sample stopped: confirm on all of x one window from now.
            self.full = flat.clone()
            self.next += self.window
        else:
            self.gap = min(2 * self.gap, STALL_MAX_GAP * self.window)
            self.next += self.gap
        self.sample.copy_(sample)
        return False


def stall_detail(x: torch.Tensor, watch: StallWatch, metrics: dict) -> str:
    """What froze and by how much, for ``Solution.detail``.

    The frozen-iterate rule only fires at the dtype's resolution, so the hint
    names the dtype: float32 can move to float64, float64 can only loosen the
    tolerance.
    """
    eps = torch.finfo(x.dtype).eps
    name = str(x.dtype).removeprefix("torch.")
    relative = watch.change / watch.scale if watch.scale > 0 else 0.0
    text = (
        f"the iterate x stopped changing: over the last {watch.window} steps "
        f"max|dx| / max|x| = {relative:.2g} (max|x| = {watch.scale:.3g}), within "
        f"{STALL_ULPS:g} rounding units of {name} (eps {eps:.2g})"
    )
    shown = [
        f"{key} {value:.3g}"
        for key, value in metrics.items()
        if isinstance(value, (int, float)) and not isinstance(value, bool)
    ][:3]
    if shown:
        text += "; final " + ", ".join(shown)
    fix = "use float64 or loosen the tolerance" if eps > 1e-10 else "loosen it"
    return (
        f"{text}; the tolerance is below what {name} resolves for this problem: {fix}"
    )
