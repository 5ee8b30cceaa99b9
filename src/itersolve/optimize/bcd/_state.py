"""The states of :class:`~itersolve.optimize.BlockCoordinateDescent`: the generic
path (:class:`BCDState`) and the compiled greedy path (:class:`GreedyState`).

Neither holds the method's rules: the method owns its selection and update
rules and hands them the :class:`~._blocks.BlockCache` the state holds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from itersolve._core.solution import Status
from itersolve.optimize.bcd._blocks import BlockCache
from itersolve.optimize.bcd._greedy import GreedyL1Engine, Reductions


@dataclass
class BCDState:
    """The iterate lives in ``cache.model``; ``generator`` feeds random rules.

    ``criterion`` is the stopping rule's quantity at the last check point,
    ``threshold`` the value it must reach; checks happen every ``check_every``
    block updates (``steps``). ``support`` (L1 problems) is the non-zero pattern
    of ``x``, last changed at update ``support_changed_at``. ``refuted`` counts
    the passes of the maintained quantity that a fresh recomputation refuted;
    after one, no fresh check runs before update ``confirm_from``.
    """

    cache: BlockCache
    generator: torch.Generator
    terms: Any = None
    threshold: float = 0.0
    criterion: float = math.inf
    steps: int = 0
    status: Status | None = None
    converged: bool = False
    last_block: int = 0
    support: torch.Tensor | None = None
    support_changed_at: int = 0
    check_every: int = 1
    refuted: int = 0
    confirm_from: int = 0

    @property
    def model(self) -> Any:
        return self.cache.model

    @property
    def x(self) -> torch.Tensor:
        return self.cache.model.x.view(self.cache.model.shape)


@dataclass
class GreedyState:
    """State of the compiled greedy path (see :mod:`._greedy`): the iterate
    lives in ``engine.w``; ``reductions`` are measured after every step;
    ``refuted`` and ``confirm_from`` (in steps) as in :class:`BCDState`."""

    engine: GreedyL1Engine
    shape: tuple[int, ...]
    reductions: Reductions
    terms: Any = None
    threshold: float = 0.0
    criterion: float = math.inf
    gap: float = math.inf
    steps: int = 0
    x_sum: float | None = None
    status: Status | None = None
    support_changed_at: int = 0
    refuted: int = 0
    confirm_from: int = 0

    @property
    def x(self) -> torch.Tensor:
        return self.engine.x.view(self.shape)
