"""Per-step records: the columnar ``Trace`` and the ``IterInfo`` given to callbacks."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class IterInfo:
    """What a callback sees after each step.

    ``x`` is the current iterate as a torch tensor (do not modify it), ``metrics``
    the method's metrics for this step (residual norm, objective, ...), ``time`` the
    seconds spent in ``step`` so far and ``state`` the method's full state.

    Examples
    --------
    >>> import numpy as np
    >>> from itersolve import linear_solve
    >>> from itersolve.linear import CG
    >>> from itersolve.problems import poisson
    >>> seen = []
    >>> def callback(info):
    ...     seen.append((info.step, sorted(info.metrics)))
    ...     return info.step == 2  # True stops the run
    >>> sol = linear_solve(poisson(10, dim=1), np.ones(10), CG(), callback=callback)
    >>> sol.status.name, seen[-1]
    ('STOPPED_BY_CALLBACK', (2, ['relative_residual', 'residual_norm']))
    """

    step: int
    x: Any
    metrics: dict[str, float]
    time: float
    state: Any


@dataclass
class Trace:
    """Columnar record of a run: ``step``, ``time`` and the method's metrics.

    Examples
    --------
    >>> t = Trace()
    >>> t.append({"step": 1, "time": 0.1, "residual": 1e-3})
    >>> t["residual"]
    array([0.001])
    >>> t.to_rows()
    [{'step': 1, 'time': 0.1, 'residual': 0.001}]
    """

    columns: dict[str, list[float]] = field(default_factory=dict)

    def append(self, row: dict[str, float]) -> None:
        n = len(self)
        for key in row:
            if key not in self.columns:
                self.columns[key] = [float("nan")] * n
        for key, column in self.columns.items():
            column.append(row.get(key, float("nan")))

    def __len__(self) -> int:
        return len(next(iter(self.columns.values()), []))

    def __getitem__(self, name: str) -> np.ndarray:
        return np.asarray(self.columns[name])

    def __contains__(self, name: object) -> bool:
        return name in self.columns

    def as_dict(self) -> dict[str, np.ndarray]:
        return {key: np.asarray(col) for key, col in self.columns.items()}

    def to_rows(self) -> list[dict[str, float]]:
        keys = list(self.columns)
        return [
            dict(zip(keys, values, strict=True))
            for values in zip(*self.columns.values(), strict=True)
        ]
