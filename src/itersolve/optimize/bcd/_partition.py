"""A partition of the coordinates into blocks, with vectorized block reductions."""

from __future__ import annotations

import numpy as np
import torch


class Partition:
    """A partition of ``range(n)`` into blocks, with vectorized block reductions.

    Examples
    --------
    >>> P = Partition([np.array([0, 1]), np.array([2])], 3, torch.device("cpu"))
    >>> P.block_sums(torch.tensor([1.0, 2.0, 4.0])).tolist()
    [3.0, 4.0]
    """

    def __init__(self, blocks: list[np.ndarray], n: int, device: torch.device) -> None:
        self.blocks = [torch.from_numpy(b).to(device) for b in blocks]
        self.count = len(blocks)
        self.sizes = torch.tensor([b.size for b in blocks], device=device)
        owner = np.empty(n, dtype=np.int64)
        for k, b in enumerate(blocks):
            owner[b] = k
        self.block_of = torch.from_numpy(owner).to(device)
        width = max(b.size for b in blocks)
        padded = np.full((self.count, width), n, dtype=np.int64)
        for k, b in enumerate(blocks):
            padded[k, : b.size] = b
        self.padded = torch.from_numpy(padded).to(device)
        self.n = n

    def block_sums(self, q: torch.Tensor) -> torch.Tensor:
        """``sum_{i in b} q_i`` for every block, ``O(n)``."""
        out = torch.zeros(self.count, dtype=q.dtype, device=q.device)
        return out.index_add_(0, self.block_of, q)

    def padded_values(self, v: torch.Tensor) -> torch.Tensor:
        """``v`` gathered into a ``(B, max|b|)`` array, zero in the padding."""
        return torch.cat([v, v.new_zeros(1)])[self.padded]
