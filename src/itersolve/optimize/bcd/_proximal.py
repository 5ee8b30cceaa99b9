"""Proximal block coordinate descent for ``f(x) + lam ||x||_1`` (optionally ``x >= 0``).

* Proximal-gradient block step: ``x_b+ = prox_{h / L_b}(x_b - g_b / L_b)``
  (soft-thresholding; for ``x >= 0`` clipping at 0 after the shift by ``lam``).
* Two-metric projection Newton (TMP, Nutini et al. Section 6; Gafni &
  Bertsekas 1984): coordinates with ``x_i <= eps`` whose derivative pushes them
  against the bound (``g_i + lam > 0``) take a diagonally scaled gradient step;
  the others (the working set) a Newton step with the block Hessian; a
  projected backtracking line search keeps ``x >= 0``. For the signed L1
  problem (Lasso) the orthant is fixed by the sign of the proximal-gradient
  point and the same projected Newton step runs inside it. Once the active set
  is identified (finitely many iterations for greedy rules), these steps are
  Newton steps on the identified manifold: superlinear convergence.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from itersolve.optimize.bcd._blocks import BlockCache

ACTIVE_THRESHOLD = 1e-4
"""TMP's threshold: a coordinate with ``x_i <= 1e-4`` may be in the active set."""


@dataclass(frozen=True)
class L1Penalty:
    """``h(x) = lam ||x||_1``, plus the indicator of ``x >= 0`` when ``nonnegative``."""

    lam: float
    nonnegative: bool = False

    def __post_init__(self) -> None:
        if not (isinstance(self.lam, (int, float)) and self.lam >= 0):
            raise ValueError(f"the L1 weight must be >= 0, got {self.lam!r}")

    def value(self, x: torch.Tensor) -> torch.Tensor:
        return self.lam * x.abs().sum()

    def prox(self, v: torch.Tensor, step: torch.Tensor | float) -> torch.Tensor:
        """``argmin_z h(z) + ||z - v||^2 / (2 step)``."""
        t = self.lam * step
        if self.nonnegative:
            return (v - t).clamp(min=0)
        return torch.sign(v) * (v.abs() - t).clamp(min=0)

    def project(self, v: torch.Tensor) -> torch.Tensor:
        return v.clamp(min=0) if self.nonnegative else v


def lasso_duality_gap(
    r_norm2: float, r_dot_y: float, g_max: float, l1: float, alpha: float, m: float
) -> float:
    """The Lasso duality gap from four reductions, as scikit-learn computes it.

    With ``r = X w - y`` and ``g = X^T r / m`` (the gradient of the smooth part),
    ``P(w) = ||r||^2 / (2m) + alpha ||w||_1``, the dual point is
    ``theta = -s r`` with ``s = min(1, alpha / ||g||_inf)``, and::

        gap = P(w) - (-s^2 ||r||^2 / (2m) - s r.y / m)

    scikit-learn's ``gap_enet`` (formulation A) divided by ``m``: its solver
    works on ``m P``. ``g_max`` is ``||g||_inf`` (``max(-g)`` for
    non-negative coefficients). ``m`` is the number of samples, or ``1 / scale``
    for ``scale/2 ||A x - b||^2 + alpha ||x||_1``.

    >>> lasso_duality_gap(1.0, -1.0, 0.5, 0.0, 1.0, 1.0)  # w = 0 is optimal
    0.0
    """
    primal = 0.5 * r_norm2 / m + alpha * l1
    s = alpha / g_max if g_max > alpha else 1.0
    dual = -0.5 * s * s * r_norm2 / m - s * r_dot_y / m
    return primal - dual


def proximal_gradient_step(
    xb: torch.Tensor, g: torch.Tensor, L: torch.Tensor | float, penalty: L1Penalty
) -> torch.Tensor:
    """The block move ``prox_{h/L}(x_b - g_b / L) - x_b``."""
    return penalty.prox(xb - g / L, 1.0 / L) - xb


def gradient_mapping(
    x: torch.Tensor, g: torch.Tensor, L: torch.Tensor, penalty: L1Penalty
) -> torch.Tensor:
    """``G_i = L_i (x_i - prox_{h/L_i}(x_i - g_i / L_i))``: zero exactly at the
    optimum; what greedy rules score in the proximal setting (GS-r)."""
    return L * (x - penalty.prox(x - g / L, 1.0 / L))


def model_decrease(
    x: torch.Tensor, g: torch.Tensor, L: torch.Tensor, penalty: L1Penalty
) -> torch.Tensor:
    """Per-coordinate decrease of ``g_i d + L_i/2 d^2 + h(x_i + d) - h(x_i)`` at
    its minimizer (the GS-q score; non-negative)."""
    d = penalty.prox(x - g / L, 1.0 / L) - x
    change = g * d + 0.5 * L * d * d + penalty.lam * ((x + d).abs() - x.abs())
    return (-change).clamp(min=0)


def two_metric_projection_step(
    cache: BlockCache, b: torch.Tensor, g: torch.Tensor, H: torch.Tensor
) -> torch.Tensor:
    """The TMP Newton move for block ``b`` (``H``: block Hessian or its bound).

    Falls back to the proximal-gradient step when the projected line search
    finds no sufficient decrease (so every step decreases the objective).
    """
    model, penalty = cache.model, cache.penalty
    assert penalty is not None
    xb = model.x[b]
    lam = penalty.lam
    if penalty.nonnegative:
        sign = torch.ones_like(xb)
        gf = g + lam
        active = (xb <= ACTIVE_THRESHOLD) & (gf > 0)
    else:
        L_b = cache.block_lipschitz(None, b)
        z = penalty.prox(xb - g / L_b, 1.0 / L_b)
        sign = torch.sign(z)
        gf = g + lam * sign
        active = sign == 0
    free = ~active
    d = torch.zeros_like(xb)
    if bool(active.any()):
        if penalty.nonnegative:
            diag = H.diagonal()[active].clamp(min=torch.finfo(H.dtype).tiny)
            d[active] = -gf[active] / diag
        else:
            d[active] = -xb[active]
    if bool(free.any()):
        idx = torch.nonzero(free).flatten()
        Hw = H[idx][:, idx]
        chol, info = torch.linalg.cholesky_ex(Hw)
        if int(info) == 0:
            d[idx] = -torch.cholesky_solve(gf[idx][:, None], chol)[:, 0]
        else:
            d[idx] = -torch.linalg.pinv(Hw, hermitian=True) @ gf[idx]
    h0 = float(penalty.value(xb))
    f0 = float(model.value())
    t = 1.0
    for _ in range(30):
        trial = xb + t * d
        if penalty.nonnegative:
            trial = trial.clamp(min=0)
        else:
            trial = torch.where(torch.sign(trial) * sign < 0, 0.0, trial)
        step = trial - xb
        slope = float(torch.dot(g, step)) + lam * float((trial.abs() - xb.abs()).sum())
        value = float(model.trial_value(b, step)) + float(penalty.value(trial))
        if slope < 0 and value <= f0 + h0 + 1e-4 * slope:
            return step
        t *= 0.5
    return proximal_gradient_step(xb, g, cache.block_lipschitz(None, b), penalty)
