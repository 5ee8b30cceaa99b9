"""ChebCB: a SquareCB-style contextual bandit on Chebyshev features of a scalar."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy.optimize import lsq_linear

from itersolve.linear.tuning._base import Tuner, check_range


class ChebCB(Tuner):
    """Contextual bandit for a scalar context: per-arm regression of the cost on
    Chebyshev features, inverse-gap-weighted exploration (SquareCB).

    Each arm ``i`` keeps a least-squares fit ``yhat_i(c) = theta_i . T(z)`` of its
    normalized cost on ``T(z) = (T_0(z), ..., T_{m-1}(z))``,
    ``z = 2 (c - lo) / (hi - lo) - 1``; coefficients are box-constrained (the
    bounds of the paper's analysis). Round ``t`` plays arm ``i != i*`` with
    probability ``1 / (d + eta_t (yhat_i - yhat_*))`` and the greedy arm ``i*``
    with the rest; ``eta_t`` grows about linearly in ``t`` (data-driven, as in the
    reference code). Costs are normalized by ``K N`` with ``K`` the largest cost
    seen and ``N = 2 + 4 (hi - lo) L / K (1 + log m)`` from the observed cost
    range ``L``; the fits are refreshed whenever that scale changes.

    Equivalent to / compare with ``learners/ChebCB.m`` of the Learning-to-Relax
    code; ``contextualbandits``/``vowpalwabbit`` as generic alternatives.

    Parameters
    ----------
    grid
        Values to choose from (default ``linspace(1, 1.95, 20)``).
    context_range
        ``(lo, hi)``: the interval of the contexts (outside values are clipped).
    n_features
        ``m``, the number of Chebyshev polynomials ``T_0 .. T_{m-1}``.
    seed
        Seed or ``numpy.random.Generator`` of the arm sampling.

    References
    ----------
    Foster & Rakhlin, *Beyond UCB* (SquareCB), ICML 2020; Khodak et al.,
    *Learning to Relax*, ICLR 2024, §4 (ChebCB).

    Examples
    --------
    >>> tuner = ChebCB([1.0, 1.8], context_range=(0, 1), n_features=3, seed=0)
    >>> for t in range(300):
    ...     c = (t % 10) / 9
    ...     omega = tuner.choose(c)
    ...     tuner.update(10.0 + 30.0 * abs((omega == 1.8) - c))
    >>> [float(tuner.grid[tuner.predict(c).argmin()]) for c in (0.0, 1.0)]
    [1.0, 1.8]
    """

    contextual = True

    def __init__(
        self,
        grid: Any = None,
        *,
        context_range: Any,
        n_features: int = 6,
        seed: int | np.random.Generator | None = None,
    ) -> None:
        super().__init__(grid, seed)
        if not isinstance(n_features, int) or n_features < 1:
            raise ValueError(f"n_features must be a positive int, got {n_features!r}")
        self.lo, self.hi = check_range(context_range)
        self.m = n_features
        d, m = self.d, self.m
        self.theta = np.zeros((d, m))
        # Per arm: Gram matrix F^T F, F^T (cost - 1), sum (cost - 1)^2.
        self._gram = np.zeros((d, m, m))
        self._moment = np.zeros((d, m))
        self._squares = np.zeros(d)
        self._feature = np.zeros(m)
        self._predicted = 0.0
        # Running sums for R = sum_t (yhat_t - cost_t / (K N))^2 at the current K N.
        self._sums = np.zeros(3)  # sum yhat^2, sum yhat * cost, sum cost^2
        self._max, self._min = -np.inf, np.inf
        self.scale = 0.0
        self.eta = 0.0
        self.probabilities = np.full(d, 1.0 / d)

    def features(self, context: float) -> np.ndarray:
        z = 2.0 * (float(context) - self.lo) / (self.hi - self.lo) - 1.0
        z = min(max(z, -1.0), 1.0)
        out = np.empty(self.m)
        out[0] = 1.0
        if self.m > 1:
            out[1] = z
        for k in range(2, self.m):  # T_k = 2 z T_{k-1} - T_{k-2}
            out[k] = 2.0 * z * out[k - 1] - out[k - 2]
        return out

    def predict(self, context: float) -> np.ndarray:
        """The fitted normalized cost of every arm at ``context``."""
        return self.theta @ self.features(context)

    def _choose(self, context: float | None) -> int:
        assert context is not None
        self._feature = self.features(context)
        yhat = self.theta @ self._feature
        best = int(np.argmin(yhat))
        probs = 1.0 / (self.d + self.eta * (yhat - yhat[best]))
        probs[best] = 0.0
        probs[best] = max(1.0 - probs.sum(), 0.0)
        self.probabilities = probs
        arm = self._sample(probs)
        self._predicted = float(yhat[arm])
        return arm

    def _update(self, arm: int, cost: float) -> None:
        f = self._feature
        self._gram[arm] += np.outer(f, f)
        self._moment[arm] += (cost - 1.0) * f
        self._squares[arm] += (cost - 1.0) ** 2
        p = self._predicted
        self._sums += (p * p, p * cost, cost * cost)
        self._max, self._min = max(self._max, cost), min(self._min, cost)
        width = self.hi - self.lo
        K = max(self._max, 1.0)
        L = (self._max - self._min) / width
        N = 2.0 + 4.0 * width * L / K * (1.0 + math.log(self.m))
        refit_all = self.scale != K * N
        self.scale = K * N
        bound = np.concatenate(
            ([1.0 / N], 2.0 * width * L / self.scale / np.arange(1, self.m))
        )
        resnorm = 0.0
        arms = range(self.d) if refit_all else (arm,)
        for i in arms:
            if self._squares[i] == 0 and not self._gram[i].any():
                continue
            theta, res = self._fit(i, bound)
            self.theta[i] = theta
            if res is not None:
                resnorm = res
        alpha = (
            (math.pi + 2.0 / math.pi * math.log(2.0 * self.m + 1.0))
            / (2.0 * self.scale * (self.m + 1.0))
            * width
            * L
        )
        s2, sc, c2 = self._sums
        scale = K * N
        squared_errors = s2 - 2.0 * sc / scale + c2 / scale**2
        denominator = squared_errors - resnorm + 2.0 * alpha**2 * self.t
        if denominator > 0:
            self.eta = 2.0 * self.t * math.sqrt(self.d * self.t / denominator)

    def _fit(self, i: int, bound: np.ndarray) -> tuple[np.ndarray, float | None]:
        """Min-norm least squares of arm ``i``; box-constrained when it leaves the box.

        Works on the normal equations: ``||F theta - y||^2 = ||R theta - c||^2 +
        const`` with ``G = R^T R`` from the eigendecomposition of the Gram matrix.
        """
        gram, moment = self._gram[i], self._moment[i] / self.scale
        lam, Q = np.linalg.eigh(gram)
        keep = lam > lam.max() * 1e-12
        Qk = Q[:, keep]
        projected = Qk.T @ moment
        theta = Qk @ (projected / lam[keep])  # pinv(G) h: the min-norm solution
        if not (np.abs(theta) > bound).any():
            return theta, None
        R = np.sqrt(lam[keep])[:, None] * Qk.T
        c = projected / np.sqrt(lam[keep])
        # A zero bound (no cost spread seen yet) pins that coefficient to 0.
        free = bound > 0
        theta = np.zeros(self.m)
        if free.any():
            fit = lsq_linear(
                R[:, free], c, bounds=(-bound[free], bound[free]), method="bvls"
            )
            theta[free] = fit.x
        residual = R @ theta - c
        squares = self._squares[i] / self.scale**2
        resnorm = float(residual @ residual) + squares - float(c @ c)
        return theta, max(resnorm, 0.0)
