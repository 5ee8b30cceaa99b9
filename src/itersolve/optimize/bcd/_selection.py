"""Block selection rules for block coordinate descent (Nutini et al., Section 3).

A rule picks, at iteration ``k``, the block to update. Fixed-block rules choose
one block of a partition (``select`` returns ``(block_id, indices)``); variable
block rules build the block on the fly (``block_id`` is ``None``). Greedy rules
read the full gradient, which the coordinate model maintains incrementally, so
a greedy choice costs ``O(n)`` (a segment sum over the partition, or a partial
sort), never a gradient recomputation.

In the proximal setting (L1, non-negativity) the greedy rules score the
*proximal-gradient mapping* ``G_i = L_i (x_i - prox_{h/L_i}(x_i - g_i / L_i))``
in place of ``g_i`` (the GS-r rule), and GSQ scores the decrease of the
separable quadratic model (GS-q).

Norms. The paper's GS is ``argmax ||g_b||_2`` and GSD ``argmax sum_i g_i^2 /
L_i``; the official code (``FB_selection_rules.py``) uses ``sum_i |g_i|`` and
``sum_i |g_i| / sqrt(L_i)``. ``norm="paper"`` (default) or ``norm="code"``.
Our figures (suite ``optimize-bcd``) use the paper's norms.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from itersolve.optimize.bcd._blocks import BlockCache
from itersolve.optimize.bcd._forest import grow_forest

_NORMS = ("paper", "code")


def _check_norm(norm: str) -> None:
    if norm not in _NORMS:
        raise ValueError(f"norm must be one of {_NORMS}, got {norm!r}")


@dataclass(frozen=True)
class SelectionRule:
    """Base class. ``select(cache, step, generator)`` returns ``(block_id, b)``:
    the block's index in ``cache.blocks`` (``None`` for a variable block) and its
    coordinates; ``step`` counts the block updates so far and ``generator`` is
    the method's seeded random stream. ``greedy`` rules need the full gradient
    every step; ``variable`` rules build their own block (size
    ``cache.block_size``)."""

    greedy = False
    variable = False
    needs_lipschitz = False

    def select(
        self, cache: BlockCache, step: int, generator: torch.Generator
    ) -> tuple[int | None, torch.Tensor]:
        raise NotImplementedError

    def _pick(
        self, cache: BlockCache, scores: torch.Tensor
    ) -> tuple[int, torch.Tensor]:
        block = int(torch.argmax(scores))
        return block, cache.blocks.blocks[block]


@dataclass(frozen=True)
class CyclicRule(SelectionRule):
    """Blocks in order ``0, 1, ..., B-1, 0, ...`` (``selection='cyclic'``)."""

    def select(
        self, cache: BlockCache, step: int, generator: torch.Generator
    ) -> tuple[int | None, torch.Tensor]:
        block = step % cache.blocks.count
        return block, cache.blocks.blocks[block]


@dataclass(frozen=True)
class RandomRule(SelectionRule):
    """Uniform random blocks (``selection='random'``), from the method's seed."""

    def select(
        self, cache: BlockCache, step: int, generator: torch.Generator
    ) -> tuple[int | None, torch.Tensor]:
        block = int(torch.randint(cache.blocks.count, (1,), generator=generator))
        return block, cache.blocks.blocks[block]


@dataclass(frozen=True)
class LipschitzRule(SelectionRule):
    """Random blocks with probability ``L_b / sum_c L_c`` (Nesterov's sampling)."""

    needs_lipschitz = True

    def select(
        self, cache: BlockCache, step: int, generator: torch.Generator
    ) -> tuple[int | None, torch.Tensor]:
        weights = cache.all_block_lipschitz()
        block = int(torch.multinomial(weights, 1, generator=generator))
        return block, cache.blocks.blocks[block]


@dataclass(frozen=True)
class GaussSouthwellRule(SelectionRule):
    """GS: ``argmax_b ||g_b||_2`` (``norm="paper"``) or ``sum_{i in b} |g_i|``
    (``norm="code"``)."""

    norm: str = "paper"
    greedy = True

    def __post_init__(self) -> None:
        _check_norm(self.norm)

    def select(
        self, cache: BlockCache, step: int, generator: torch.Generator
    ) -> tuple[int | None, torch.Tensor]:
        g = cache.greedy_vector()
        q = g * g if self.norm == "paper" else g.abs()
        return self._pick(cache, cache.blocks.block_sums(q))


@dataclass(frozen=True)
class GaussSouthwellLipschitzRule(SelectionRule):
    """GSL: ``argmax_b ||g_b||_2 / sqrt(L_b)`` with ``L_b = lambda_max(H_b)``."""

    greedy = True
    needs_lipschitz = True

    def select(
        self, cache: BlockCache, step: int, generator: torch.Generator
    ) -> tuple[int | None, torch.Tensor]:
        g = cache.greedy_vector()
        scores = cache.blocks.block_sums(g * g) / cache.all_block_lipschitz()
        return self._pick(cache, scores)


@dataclass(frozen=True)
class GaussSouthwellDiagonalRule(SelectionRule):
    """GSD: ``argmax_b sum_{i in b} g_i^2 / L_i`` (paper) or
    ``sum_{i in b} |g_i| / sqrt(L_i)`` (official code, ``norm="code"``)."""

    norm: str = "paper"
    greedy = True
    needs_lipschitz = True

    def __post_init__(self) -> None:
        _check_norm(self.norm)

    def select(
        self, cache: BlockCache, step: int, generator: torch.Generator
    ) -> tuple[int | None, torch.Tensor]:
        g = cache.greedy_vector()
        L = cache.model.lipschitz()
        q = g * g / L if self.norm == "paper" else g.abs() / L.sqrt()
        return self._pick(cache, cache.blocks.block_sums(q))


@dataclass(frozen=True)
class GaussSouthwellQuadraticRule(SelectionRule):
    """GSQ: ``argmax_b g_b^T H_b^{-1} g_b``, the guaranteed decrease of the
    matrix-update model, with every ``H_b^{-1}`` computed once and cached
    (a batched ``(B, s, s)`` stack, so a choice costs ``O(n s)``).

    Proximal problems: the decrease of the separable model
    ``min_d g_i d + L_i/2 d^2 + h(x_i + d) - h(x_i)`` summed over the block.
    """

    greedy = True
    needs_lipschitz = True

    def select(
        self, cache: BlockCache, step: int, generator: torch.Generator
    ) -> tuple[int | None, torch.Tensor]:
        if cache.penalty is not None:
            q = cache.proximal_decrease()
            return self._pick(cache, cache.blocks.block_sums(q))
        Hinv = cache.stacked_block_inverses()
        g = cache.greedy_vector()
        gp = cache.blocks.padded_values(g)
        scores = torch.einsum("bi,bij,bj->b", gp, Hinv, gp)
        return self._pick(cache, scores)


@dataclass(frozen=True)
class VariableBlockRule(SelectionRule):
    """Variable blocks: the ``block_size`` coordinates with the largest
    ``|g_i| / sqrt(L_i)`` (``scaling="lipschitz"``, the exact GSD maximiser over
    all blocks of that size) or largest ``|g_i|`` (``scaling="none"``, GS-VB).
    A partial sort (``torch.topk``), ``O(n)``.
    """

    scaling: str = "lipschitz"
    greedy = True
    variable = True

    def __post_init__(self) -> None:
        if self.scaling not in ("lipschitz", "none"):
            raise ValueError(
                f"scaling must be 'lipschitz' or 'none', got {self.scaling!r}"
            )

    @property
    def needs_lipschitz(self) -> bool:  # type: ignore[override]
        return self.scaling == "lipschitz"

    def select(
        self, cache: BlockCache, step: int, generator: torch.Generator
    ) -> tuple[int | None, torch.Tensor]:
        g = cache.greedy_vector()
        score = (
            g.abs()
            if self.scaling == "none"
            else g.abs() / cache.model.lipschitz().sqrt()
        )
        k = min(cache.block_size, score.numel())
        return None, torch.topk(score, k, sorted=False).indices


@dataclass(frozen=True)
class GreedyForestRule(SelectionRule):
    """Variable forest blocks: coordinates in decreasing ``|g_i| / sqrt(L_i)``
    join the block when they keep it a forest of the Hessian's sparsity graph
    (union-find), up to ``block_size`` nodes; pair with
    ``update="message_passing"`` for exact ``O(|b|)`` block solves.
    Candidates are the ``4 block_size`` best coordinates (a partial sort).
    """

    greedy = True
    variable = True
    needs_lipschitz = True

    def select(
        self, cache: BlockCache, step: int, generator: torch.Generator
    ) -> tuple[int | None, torch.Tensor]:
        graph = cache.graph()
        g = cache.greedy_vector()
        score = g.abs() / cache.model.lipschitz().sqrt()
        k = min(4 * cache.block_size, score.numel())
        top = torch.topk(score, k)
        order = top.indices[top.values > 0].cpu().numpy()
        chosen = grow_forest(graph, order, cache.block_size)
        if chosen.size == 0:
            chosen = np.array([int(torch.argmax(score))])
        return None, torch.from_numpy(np.sort(chosen)).to(cache.model.device)


SELECTION_RULES: dict[str, Any] = {
    "cyclic": CyclicRule,
    "random": RandomRule,
    "lipschitz": LipschitzRule,
    "gs": GaussSouthwellRule,
    "gsl": GaussSouthwellLipschitzRule,
    "gsd": GaussSouthwellDiagonalRule,
    "gsq": GaussSouthwellQuadraticRule,
    "vb": VariableBlockRule,
    "gsd-vb": VariableBlockRule,
    "gsl-vb": VariableBlockRule,
    "gsq-vb": VariableBlockRule,
    "gs-vb": lambda: VariableBlockRule(scaling="none"),
    "forest": GreedyForestRule,
}


def as_selection_rule(rule: Any) -> SelectionRule:
    """A rule object from a name (see :data:`SELECTION_RULES`) or a rule.

    ``"gsl-vb"``, ``"gsd-vb"`` and ``"gsq-vb"`` all build blocks from the
    largest ``|g_i| / sqrt(L_i)`` (the GSD-optimal variable block; the paper
    uses it for the GSL/GSQ variable-block curves as well).
    """
    if isinstance(rule, SelectionRule):
        return rule
    if isinstance(rule, str) and rule in SELECTION_RULES:
        return SELECTION_RULES[rule]()
    raise ValueError(
        f"selection must be one of {sorted(SELECTION_RULES)} or a SelectionRule, "
        f"got {rule!r}"
    )
