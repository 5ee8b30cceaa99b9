"""Fixed-point test problems: the contractive map ``z = tanh(W z + x)``.

Deterministic (seeded), float64. The map is callable on numpy arrays (for the
SciPy anchors) and torch tensors (for itersolve), on one state ``(n,)`` or a
batch ``(B, n)`` (then ``x`` has one row per sample).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

_SPECTRA = ("symmetric-filled", "gaussian")


@dataclass(frozen=True)
class ContractiveTanh:
    """The map ``f(z) = tanh(W z + x)``, a contraction with factor ``||W||_2``.

    ``tanh`` is 1-Lipschitz, so ``||f(z) - f(w)|| <= ||W||_2 ||z - w||`` and the
    fixed point is unique. ``W`` and ``x`` are float64 numpy arrays; calling the
    map on a torch tensor computes in torch (``W`` and ``x`` cast to the
    tensor's dtype and device).

    Examples
    --------
    >>> from itersolve.problems import contractive_tanh
    >>> f = contractive_tanh(8, seed=0)
    >>> z = np.zeros(8)
    >>> for _ in range(2000):
    ...     z = f(z)
    >>> bool(np.linalg.norm(f(z) - z) < 1e-10)
    True
    """

    W: np.ndarray
    x: np.ndarray
    spectrum: str
    rho: float

    def __call__(self, z: Any) -> Any:
        if isinstance(z, torch.Tensor):
            W = torch.as_tensor(self.W, dtype=z.dtype, device=z.device)
            x = torch.as_tensor(self.x, dtype=z.dtype, device=z.device)
            return torch.tanh(z @ W.T + x)
        return np.tanh(np.asarray(z) @ self.W.T + self.x)

    @property
    def n(self) -> int:
        return int(self.W.shape[0])


def contractive_tanh(
    n: int,
    *,
    spectrum: str = "symmetric-filled",
    rho: float = 0.99,
    input_scale: float = 0.1,
    batch: int | None = None,
    seed: int = 0,
) -> ContractiveTanh:
    """A contractive ``z = tanh(W z + x)`` whose ``W`` has a chosen spectrum.

    Parameters
    ----------
    n
        Dimension of ``z``.
    spectrum
        ``"symmetric-filled"``: ``W = Q diag(linspace(-rho, rho, n)) Q^T`` with
        a random orthogonal ``Q``; eigenvalues fill ``[-rho, rho]``, so plain
        iteration is slow (its error contracts by ``rho`` per step along the
        extreme eigenvectors) and acceleration pays (issue 16: at ``rho =
        0.99``, n = 256 and the default ``input_scale``, 236 plain
        evaluations to ``rtol = 1e-8`` against 68 for ``Anderson()``).
        ``"gaussian"``: a Gaussian matrix scaled to ``||W||_2 = rho``; its
        eigenvalues cluster well inside the disc, plain iteration converges in
        a few dozen steps and nothing accelerates it much.
    rho
        ``||W||_2``, in ``(0, 1)``: the contraction factor.
    input_scale
        ``x ~ N(0, input_scale^2 I)``. A small input keeps ``tanh`` near its
        linear range, where ``f``'s Jacobian at the fixed point keeps
        ``W``'s spectrum; a large one saturates ``tanh`` and contracts more.
    batch
        ``None`` for ``x`` of shape ``(n,)``; an int ``B`` for ``x`` of shape
        ``(B, n)``: ``B`` independent fixed points sharing ``W``.
    seed
        Seed of ``Q`` (or the Gaussian ``W``) and of ``x``.

    Examples
    --------
    >>> f = contractive_tanh(16, rho=0.9, batch=3, seed=1)
    >>> f.x.shape, round(float(np.linalg.norm(f.W, 2)), 12)
    ((3, 16), 0.9)
    """
    if not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}")
    if spectrum not in _SPECTRA:
        raise ValueError(f"spectrum must be one of {_SPECTRA}, got {spectrum!r}")
    if not 0 < rho < 1:
        raise ValueError(f"rho must be in (0, 1), got {rho!r}")
    if not input_scale > 0:
        raise ValueError(f"input_scale must be positive, got {input_scale!r}")
    if batch is not None and (not isinstance(batch, (int, np.integer)) or batch < 1):
        raise ValueError(f"batch must be None or a positive int, got {batch!r}")
    rng = np.random.default_rng(seed)
    if spectrum == "symmetric-filled":
        q, r = np.linalg.qr(rng.standard_normal((n, n)))
        q = q * np.sign(np.diag(r))  # Haar-distributed Q
        W = (q * np.linspace(-rho, rho, n)) @ q.T
        W = 0.5 * (W + W.T)
    else:
        G = rng.standard_normal((n, n))
        W = G * (rho / np.linalg.norm(G, 2))
    x = input_scale * rng.standard_normal((n,) if batch is None else (batch, n))
    return ContractiveTanh(W, x, spectrum, float(rho))
