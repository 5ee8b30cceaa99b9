"""Tsallis-INF: the 1/2-Tsallis-entropy bandit, for a relaxation factor grid."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from itersolve.linear.tuning._base import Tuner


class TsallisINF(Tuner):
    """Adversarial multi-armed bandit with 1/2-Tsallis regularization (Tsallis-INF).

    Round ``t`` plays arm ``i`` with probability
    ``p_i = 4 / (eta_t (Lhat_i - x))^2``, ``eta_t = 2 / sqrt(t)``, where ``x`` is
    the normalizer with ``sum_i p_i = 1`` (Newton's method from the right of the
    root, monotone) and ``Lhat`` the importance-weighted cumulative losses:
    ``Lhat_i += (cost - 1) / (scale p_i)`` for the played arm only.

    Costs (iteration counts) are heavy-tailed; they are normalized by ``scale``:
    ``"running-mean"`` uses ``mean(costs so far) - 1`` as the reference code does,
    a number ``B`` treats it as a known upper bound (costs are capped at ``B``).

    Equivalent to / compare with ``learners/TsallisINF.m`` of the Learning-to-Relax
    code; generic bandit libraries (``mabwiser``) as alternatives.

    Parameters
    ----------
    grid
        The values to choose from (default ``linspace(1, 1.95, 20)``).
    loss_scale
        ``"running-mean"`` or a positive upper bound on the costs.
    seed
        Seed or ``numpy.random.Generator`` of the arm sampling.

    References
    ----------
    Zimmert & Seldin, *Tsallis-INF*, JMLR 2021; Khodak et al., *Learning to
    Relax*, ICLR 2024, Alg. 1.

    Examples
    --------
    >>> import numpy as np
    >>> tuner = TsallisINF([1.0, 1.5, 1.9], seed=0)
    >>> for _ in range(300):
    ...     omega = tuner.choose()
    ...     tuner.update({1.0: 30.0, 1.5: 10.0, 1.9: 20.0}[omega])
    >>> float(tuner.grid[np.argmax(tuner.probabilities)])
    1.5
    """

    def __init__(
        self,
        grid: Any = None,
        *,
        loss_scale: str | float = "running-mean",
        seed: int | np.random.Generator | None = None,
    ) -> None:
        super().__init__(grid, seed)
        if isinstance(loss_scale, str):
            if loss_scale != "running-mean":
                raise ValueError(
                    "loss_scale must be 'running-mean' or a positive bound, got "
                    f"{loss_scale!r}"
                )
        elif not (isinstance(loss_scale, (int, float)) and loss_scale > 1):
            raise ValueError(f"loss_scale bound must be > 1, got {loss_scale!r}")
        self.loss_scale = loss_scale
        self.cumulative = np.zeros(self.d)
        self.probabilities = np.full(self.d, 1.0 / self.d)
        self._total = 0.0

    def _scale(self) -> float:
        if isinstance(self.loss_scale, str):
            mean = self._total / len(self.costs) if self.costs else 2.0
            return mean - 1.0 if mean > 1.0 else 1.0
        return float(self.loss_scale) - 1.0

    def _choose(self, context: float | None) -> int:
        self.probabilities = tsallis_probabilities(
            self.cumulative / self._scale(), 2.0 / math.sqrt(self.t)
        )
        return self._sample(self.probabilities)

    def _update(self, arm: int, cost: float) -> None:
        if not isinstance(self.loss_scale, str):
            cost = min(cost, float(self.loss_scale))
        self._total += cost
        self.cumulative[arm] += (cost - 1.0) / self.probabilities[arm]


def tsallis_probabilities(losses: np.ndarray, eta: float) -> np.ndarray:
    """``p_i = 4 / (eta (L_i - x))^2`` with ``x`` chosen so that ``sum p = 1``.

    ``f(x) = sum p_i(x) - 1`` is increasing and convex left of ``min L``; Newton
    from ``x0 = min L - 2/eta`` (where ``f >= 0``) decreases monotonically to the
    root.

    >>> p = tsallis_probabilities(np.array([0.0, 1.0, 5.0]), 1.0)
    >>> round(float(p.sum()), 12), bool(p[0] > p[1] > p[2])
    (1.0, True)
    """
    x = float(losses.min()) - 2.0 / eta
    for _ in range(100):
        gap = losses - x
        probs = 4.0 / (eta * gap) ** 2
        excess = probs.sum() - 1.0
        if excess <= 1e-13:
            break
        x -= excess / (eta * float((probs**1.5).sum()))
    return probs / probs.sum()
