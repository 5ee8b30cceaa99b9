"""The online protocol every tuner follows: choose, then update with the cost."""

from __future__ import annotations

from typing import Any

import numpy as np

DEFAULT_GRID = np.linspace(1.0, 1.95, 20)


def check_grid(grid: Any) -> np.ndarray:
    values = np.asarray(DEFAULT_GRID if grid is None else grid, dtype=float)
    if values.ndim != 1 or values.size < 2:
        raise ValueError(
            "grid must be a 1-D sequence of at least 2 values, got shape "
            f"{values.shape}"
        )
    if not np.isfinite(values).all():
        raise ValueError("grid must be finite")
    if np.unique(values).size != values.size:
        raise ValueError("grid values must be distinct")
    return values.copy()


def check_range(context_range: Any) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in context_range)
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"context_range must be a pair (lo, hi), got {context_range!r}"
        ) from exc
    if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
        raise ValueError(f"context_range must satisfy lo < hi, got ({lo}, {hi})")
    return lo, hi


class Tuner:
    """Base of the online learners: ``choose(context) -> value``, ``update(cost)``.

    The protocol is strict so hindsight cannot leak: ``update`` takes the cost of
    the value just chosen and nothing else, and each ``choose`` must be followed
    by exactly one ``update``. ``grid`` is fixed at construction.
    """

    contextual = False

    def __init__(self, grid: Any, seed: int | np.random.Generator | None) -> None:
        self.grid = check_grid(grid)
        self.rng = (
            seed
            if isinstance(seed, np.random.Generator)
            else np.random.default_rng(seed)
        )
        self.t = 1
        self.arm: int | None = None
        self.arms: list[int] = []
        self.costs: list[float] = []

    @property
    def d(self) -> int:
        return int(self.grid.size)

    def choose(self, context: float | None = None) -> float:
        if self.arm is not None:
            raise RuntimeError("choose() called twice without update(cost) in between")
        if self.contextual and context is None:
            raise ValueError(f"{type(self).__name__} needs a context")
        self.arm = self._choose(context)
        self.arms.append(self.arm)
        return float(self.grid[self.arm])

    def update(self, cost: float) -> None:
        if self.arm is None:
            raise RuntimeError("update(cost) called before choose()")
        cost = float(cost)
        if not np.isfinite(cost) or cost < 0:
            raise ValueError(f"cost must be finite and >= 0, got {cost}")
        self.costs.append(cost)
        self._update(self.arm, cost)
        self.arm = None
        self.t += 1

    def _choose(self, context: float | None) -> int:
        raise NotImplementedError

    def _update(self, arm: int, cost: float) -> None:
        raise NotImplementedError

    def _sample(self, probs: np.ndarray) -> int:
        total = probs.sum()
        if not (np.isfinite(total) and total > 0 and (probs >= 0).all()):
            return int(self.rng.integers(self.d))
        # Inverse-CDF sampling: rng.choice(p=...) validates p at a high fixed cost.
        arm = int(np.searchsorted(np.cumsum(probs), self.rng.random() * total, "right"))
        return min(arm, self.d - 1)


def replay(
    tuner: Tuner, table: np.ndarray, contexts: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Play ``tuner`` on a precomputed cost table; returns (costs, arms) per round.

    ``table[t, i]`` is the cost of grid value ``i`` on instance ``t``. Only the
    chosen entry of each row is read, so this is the online game exactly (a bandit
    sees nothing else), at a fraction of the cost of re-solving.
    """
    table = np.asarray(table, dtype=float)
    if table.ndim != 2 or table.shape[1] != tuner.d:
        raise ValueError(
            f"table must have shape (T, {tuner.d}) to match the grid, got {table.shape}"
        )
    if contexts is not None and len(contexts) != table.shape[0]:
        raise ValueError(
            f"contexts has length {len(contexts)}, the table {table.shape[0]} rows"
        )
    costs = np.empty(table.shape[0])
    arms = np.empty(table.shape[0], dtype=int)
    for t in range(table.shape[0]):
        tuner.choose(None if contexts is None else float(contexts[t]))
        arm = tuner.arm
        assert arm is not None
        costs[t] = table[t, arm]
        arms[t] = arm
        tuner.update(costs[t])
    return costs, arms
