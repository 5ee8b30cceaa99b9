"""Static M-FAC: products with the inverse of a damped empirical Fisher matrix."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from typing import Any

import torch


@contextlib.contextmanager
def full_precision_matmul() -> Iterator[None]:
    """Disable TF32 for float32 matmuls and convolutions inside the block.

    The Woodbury identity subtracts nearly equal quantities when the damping is
    small; TF32's 10-bit mantissa ruins it (the official M-FAC code disables TF32
    globally for the same reason). Settings are restored on exit.
    """
    backends: list[Any] = [torch.backends.cuda.matmul, torch.backends.cudnn]
    if all(hasattr(b, "fp32_precision") for b in backends):  # torch >= 2.9
        saved = [b.fp32_precision for b in backends]
        try:
            for b in backends:
                b.fp32_precision = "ieee"
            yield
        finally:
            for b, value in zip(backends, saved, strict=True):
                b.fp32_precision = value
        return
    legacy = [b.allow_tf32 for b in backends]  # pragma: no cover - old torch
    try:  # pragma: no cover
        for b in backends:
            b.allow_tf32 = False
        yield
    finally:  # pragma: no cover
        for b, flag in zip(backends, legacy, strict=True):
            b.allow_tf32 = flag


def check_damping(damping: float) -> float:
    if not isinstance(damping, (int, float)) or isinstance(damping, bool):
        raise TypeError(f"damping must be a float, got {type(damping).__name__}")
    if not (math.isfinite(damping) and damping > 0):
        raise ValueError(f"damping must be a finite number > 0, got {damping}")
    return float(damping)


class InverseFisher:
    """Matrix-free ``F^{-1}`` for the damped empirical Fisher of ``m`` gradients.

    ``F = damping * I + (1/m) G^T G`` with ``G`` the ``m x d`` matrix of gradients
    (rows). By the Woodbury identity
    ``F^{-1} = I/lambda - H^T H`` with ``H = L^{-1} G / lambda`` and
    ``L L^T = m I + G G^T / lambda`` (an ``m x m`` Cholesky factor, float64), which
    is the closed form of M-FAC's recursion ``h_i = F_{i-1}^{-1} g_i``,
    ``den_i = m + g_i^T h_i`` (``H``'s rows are ``h_i / sqrt(den_i)``). Setup costs
    ``O(d m^2)``, a product ``O(d m)``, the whole inverse diagonal ``O(d m)``;
    no ``d x d`` matrix is formed.

    With ``blocksize=B`` the Fisher is block-diagonal over consecutive blocks of
    ``B`` coordinates (M-FAC's blocked variant for pruning), all blocks batched.

    Equivalent to a dense ``torch.linalg.solve(damping * I + G.T @ G / m, x)``;
    compare with ``IST-DASLab/M-FAC``'s ``prun.py`` (static algorithm).

    Parameters
    ----------
    grads
        ``m x d`` tensor, one gradient per row (float32 or float64).
    damping
        ``lambda > 0``.
    blocksize
        ``None`` (one block, the full Fisher) or a block length ``B >= 1``
        (the last block is zero-padded; padded coordinates never leak out).

    References
    ----------
    E. Frantar, E. Kurtic, D. Alistarh, "M-FAC: Efficient Matrix-Free
    Approximations of Second-Order Information", NeurIPS 2021, arXiv 2107.03356.

    Examples
    --------
    >>> import torch
    >>> gen = torch.Generator().manual_seed(0)
    >>> g = torch.randn(4, 10, dtype=torch.float64, generator=gen)
    >>> fisher = InverseFisher(g, damping=0.1)
    >>> x = torch.ones(10, dtype=torch.float64)
    >>> dense = 0.1 * torch.eye(10, dtype=torch.float64) + g.T @ g / 4
    >>> torch.allclose(fisher.matvec(x), torch.linalg.solve(dense, x))
    True
    """

    def __init__(
        self, grads: torch.Tensor, damping: float, *, blocksize: int | None = None
    ) -> None:
        if not isinstance(grads, torch.Tensor):
            raise TypeError(f"grads must be a torch.Tensor, got {type(grads).__name__}")
        if grads.dim() != 2 or grads.shape[0] < 1 or grads.shape[1] < 1:
            raise ValueError(
                f"grads must be an m x d matrix with m, d >= 1, got shape "
                f"{tuple(grads.shape)}"
            )
        if not grads.is_floating_point():
            raise TypeError(f"grads must be floating point, got {grads.dtype}")
        if not bool(torch.isfinite(grads).all()):
            raise ValueError("grads contains NaN or infinite entries")
        self.damping = check_damping(damping)
        m, d = grads.shape
        if blocksize is not None:
            if isinstance(blocksize, bool) or not isinstance(blocksize, int):
                raise TypeError(f"blocksize must be an int or None, got {blocksize!r}")
            if blocksize < 1:
                raise ValueError(f"blocksize must be >= 1, got {blocksize}")
        self.blocksize = d if blocksize is None else min(blocksize, d)
        self.m, self.d, self.dtype = m, d, grads.dtype
        self.num_blocks = -(-d // self.blocksize)
        padded = self.num_blocks * self.blocksize
        with full_precision_matmul():
            g = grads.to(torch.float64)
            if padded > d:
                g = torch.nn.functional.pad(g, (0, padded - d))
            blocks = g.reshape(m, self.num_blocks, self.blocksize).transpose(0, 1)
            gram = blocks @ blocks.transpose(1, 2)
            eye = torch.eye(m, dtype=torch.float64, device=grads.device)
            chol = torch.linalg.cholesky(m * eye + gram / self.damping)
            # H: (blocks, m, B), F_b^{-1} = I / lambda - H_b^T H_b
            self._h = (
                torch.linalg.solve_triangular(chol, blocks, upper=False) / self.damping
            )

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        padded = self.num_blocks * self.blocksize
        x = x.to(torch.float64)
        if padded > self.d:
            x = torch.nn.functional.pad(x, (0, 0, 0, padded - self.d))
        return x.reshape(self.num_blocks, self.blocksize, -1)

    def matvec(self, x: torch.Tensor) -> torch.Tensor:
        """``F^{-1} x`` for ``x`` of shape ``(d,)`` or ``(d, k)``; ``O(d m)`` each."""
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
        if x.dim() not in (1, 2) or x.shape[0] != self.d:
            raise ValueError(
                f"x must have shape ({self.d},) or ({self.d}, k), got {tuple(x.shape)}"
            )
        vector = x.dim() == 1
        with full_precision_matmul():
            xb = self._split(x.unsqueeze(1) if vector else x)
            out = xb / self.damping - self._h.transpose(1, 2) @ (self._h @ xb)
            out = out.reshape(-1, out.shape[-1])[: self.d]
        out = out.to(x.dtype if x.is_floating_point() else self.dtype)
        return out.squeeze(1) if vector else out

    def diagonal(self) -> torch.Tensor:
        """The diagonal of ``F^{-1}``: ``1/lambda - sum_i H[i, k]^2``."""
        diag = 1.0 / self.damping - self._h.square().sum(dim=1)
        return diag.reshape(-1)[: self.d].to(self.dtype)

    def block_inverses(self) -> torch.Tensor:
        """Dense inverse blocks ``(num_blocks, B, B)`` in float64 (for pruning)."""
        eye = torch.eye(self.blocksize, dtype=torch.float64, device=self._h.device)
        with full_precision_matmul():
            return eye / self.damping - self._h.transpose(1, 2) @ self._h
