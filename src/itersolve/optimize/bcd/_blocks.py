"""What selection and update rules work on: the coordinate model, the partition,
the L1 penalty and the quantities cached per fixed block.

Rules receive a :class:`BlockCache` (never the method's state): it answers the
questions a rule asks (the greedy vector, ``L_b``, ``H_b^+``, a forest block's
elimination plan) and remembers the answers that depend on the block alone.
"""

from __future__ import annotations

from typing import Any

import scipy.sparse as sp
import torch

from itersolve.optimize.bcd._forest import ForestPlan, forest_plan
from itersolve.optimize.bcd._models import CoordinateModel
from itersolve.optimize.bcd._partition import Partition
from itersolve.optimize.bcd._proximal import (
    L1Penalty,
    gradient_mapping,
    model_decrease,
)


class BlockCache:
    """The model (which owns the iterate), the partition, the penalty, the size
    of variable blocks, and per-block caches (fixed blocks only: a variable
    block, ``block_id=None``, is computed afresh)."""

    def __init__(
        self,
        model: CoordinateModel,
        penalty: L1Penalty | None,
        block_size: int,
    ) -> None:
        self.model = model
        self.penalty = penalty
        self.block_size = block_size
        self.partition: Partition | None = None
        self._store: dict[str, Any] = {}

    @property
    def blocks(self) -> Partition:
        """The fixed partition (set once the method has built it)."""
        if self.partition is None:
            raise RuntimeError("the partition is not built yet")
        return self.partition

    def _per_block(self, kind: str) -> dict[int, Any]:
        return self._store.setdefault(kind, {})

    # -- quantities every rule may read ------------------------------------------
    def greedy_vector(self) -> torch.Tensor:
        """The gradient, or the proximal-gradient mapping for L1 problems."""
        g = self.model.gradient()
        if self.penalty is None:
            return g
        return gradient_mapping(self.model.x, g, self.model.lipschitz(), self.penalty)

    def proximal_decrease(self) -> torch.Tensor:
        """Per-coordinate decrease of the separable proximal model (GS-q)."""
        if self.penalty is None:
            raise ValueError("the proximal decrease needs an L1 penalty")
        g = self.model.gradient()
        return model_decrease(self.model.x, g, self.model.lipschitz(), self.penalty)

    def objective_value(self) -> float:
        f = float(self.model.value())
        if self.penalty is not None:
            f += float(self.penalty.value(self.model.x))
        return f

    # -- per-block quantities (cached for fixed blocks) ----------------------------
    def block_bound(self, block_id: int | None, b: torch.Tensor) -> torch.Tensor:
        """``H_b``: the fixed upper bound of the block Hessian."""
        if block_id is None:
            return self.model.block_bound(b)
        store = self._per_block("bound")
        if block_id not in store:
            store[block_id] = self.model.block_bound(b)
        return store[block_id]

    def block_lipschitz(self, block_id: int | None, b: torch.Tensor) -> torch.Tensor:
        """``L_b = lambda_max(H_b)``."""
        if b.numel() == 1:
            return self.model.lipschitz()[b][0]
        if block_id is None:
            return torch.linalg.eigvalsh(self.model.block_bound(b))[-1]
        store = self._per_block("lipschitz")
        if block_id not in store:
            store[block_id] = torch.linalg.eigvalsh(self.block_bound(block_id, b))[-1]
        return store[block_id]

    def all_block_lipschitz(self) -> torch.Tensor:
        """``L_b`` of every fixed block."""
        if "all_lipschitz" not in self._store:
            self._store["all_lipschitz"] = torch.stack(
                [
                    self.block_lipschitz(k, b).reshape(())
                    for k, b in enumerate(self.blocks.blocks)
                ]
            ).clamp(min=torch.finfo(self.model.dtype).tiny)
        return self._store["all_lipschitz"]

    def block_inverse(self, block_id: int | None, b: torch.Tensor) -> torch.Tensor:
        """``H_b^+`` (pseudo-inverse)."""
        if block_id is None:
            return torch.linalg.pinv(self.model.block_bound(b), hermitian=True)
        store = self._per_block("inverse")
        if block_id not in store:
            store[block_id] = torch.linalg.pinv(
                self.block_bound(block_id, b), hermitian=True
            )
        return store[block_id]

    def stacked_block_inverses(self) -> torch.Tensor:
        """Every ``H_b^+`` in one zero-padded ``(B, s, s)`` stack (GSQ)."""
        if "stacked_inverse" not in self._store:
            P = self.blocks
            width = P.padded.shape[1]
            out = torch.zeros(
                P.count, width, width, dtype=self.model.dtype, device=self.model.device
            )
            for k, b in enumerate(P.blocks):
                s = b.numel()
                out[k, :s, :s] = self.block_inverse(k, b)
            self._store["stacked_inverse"] = out
        return self._store["stacked_inverse"]

    def adaptive_lipschitz(self, initial: float) -> torch.Tensor:
        """The remembered per-coordinate ``L_i`` of the adaptive update."""
        if "adaptive" not in self._store:
            self._store["adaptive"] = torch.full(
                (self.model.n,),
                initial,
                dtype=self.model.dtype,
                device=self.model.device,
            )
        return self._store["adaptive"]

    def graph(self) -> sp.csr_array:
        """The Hessian's off-diagonal sparsity graph (forest blocks)."""
        if "graph" not in self._store:
            G = self.model.hessian_graph()
            if G is None:
                raise ValueError(
                    "forest blocks need a quadratic with a sparse Hessian "
                    "(LabelPropagation, or a Quadratic with a sparse matrix)"
                )
            G = sp.csr_array(G)
            G.setdiag(0)
            G.eliminate_zeros()
            self._store["graph"] = G
        return self._store["graph"]

    def forest_block(
        self, block_id: int | None, b: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, ForestPlan]:
        """``(diag Q_bb, off-diagonal values, elimination plan)`` of a forest block."""
        store = self._per_block("forest")
        if block_id is not None and block_id in store:
            return store[block_id]
        diag, rows, cols, vals = self.model.block_edges(b)
        plan = forest_plan(b.numel(), rows.cpu().numpy(), cols.cpu().numpy())
        out = (diag, vals, plan)
        if block_id is not None:
            store[block_id] = out
        return out
