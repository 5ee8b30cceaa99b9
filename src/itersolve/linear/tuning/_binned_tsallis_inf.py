"""Tsallis-INF per context bin (the paper's Tsallis-INF-CB)."""

from __future__ import annotations

from typing import Any

import numpy as np

from itersolve.linear.tuning._base import Tuner, check_range
from itersolve.linear.tuning._tsallis_inf import TsallisINF


class BinnedTsallisINF(Tuner):
    """A contextual bandit: the context interval in ``n_bins`` equal bins, an
    independent :class:`TsallisINF` in each.

    Contexts outside ``context_range`` go to the nearest end bin.

    Equivalent to / compare with ``learners/TsallisINFCB.m`` of the
    Learning-to-Relax code.

    Parameters
    ----------
    grid, loss_scale, seed
        As in :class:`TsallisINF` (one generator shared by the bins).
    n_bins
        Number of equal-width context bins.
    context_range
        ``(lo, hi)``: the interval the contexts come from.

    References
    ----------
    Khodak et al., *Learning to Relax*, ICLR 2024, §4 (Tsallis-INF-CB).

    Examples
    --------
    >>> tuner = BinnedTsallisINF([1.0, 1.8], n_bins=2, context_range=(0, 1), seed=0)
    >>> for t in range(400):
    ...     c = t % 2
    ...     omega = tuner.choose(c)
    ...     tuner.update(10.0 if (omega == 1.0) == (c == 0) else 40.0)
    >>> [float(b.grid[b.probabilities.argmax()]) for b in tuner.bins]
    [1.0, 1.8]
    """

    contextual = True

    def __init__(
        self,
        grid: Any = None,
        *,
        n_bins: int = 5,
        context_range: Any,
        loss_scale: str | float = "running-mean",
        seed: int | np.random.Generator | None = None,
    ) -> None:
        super().__init__(grid, seed)
        if not isinstance(n_bins, int) or n_bins < 1:
            raise ValueError(f"n_bins must be a positive int, got {n_bins!r}")
        self.lo, self.hi = check_range(context_range)
        self.n_bins = n_bins
        self.bins = [
            TsallisINF(self.grid, loss_scale=loss_scale, seed=self.rng)
            for _ in range(n_bins)
        ]
        self._bin: TsallisINF | None = None

    def bin_of(self, context: float) -> int:
        z = (float(context) - self.lo) / (self.hi - self.lo)
        return int(np.clip(np.floor(z * self.n_bins), 0, self.n_bins - 1))

    def _choose(self, context: float | None) -> int:
        assert context is not None
        self._bin = self.bins[self.bin_of(context)]
        self._bin.choose()
        assert self._bin.arm is not None
        return self._bin.arm

    def _update(self, arm: int, cost: float) -> None:
        assert self._bin is not None
        self._bin.update(cost)
