"""Block update rules for block coordinate descent (Nutini et al., Section 4).

An update rule moves ``x_b`` given the block gradient ``g_b``:

* ``gradient``: ``x_b -= g_b / L_b`` with ``L_b = lambda_max(H_b)`` of the
  block's Hessian bound (not the looser sum of the ``L_i``);
* ``lipschitz_adaptive``: start from the remembered ``L_b`` (per coordinate,
  initially 1), double until ``f(x+) <= f(x) - ||g_b||^2 / (2 L_b)``, remember;
* ``matrix``: ``x_b -= H_b^+ g_b`` with the fixed upper bound ``H_b``
  (pseudo-inverse cached per fixed block);
* ``newton``: the true block Hessian with an Armijo line search;
* ``message_passing``: exact block Newton step on a forest-structured block of
  a sparse quadratic, ``O(|b|)`` by leaf-to-root elimination.

In the proximal setting (``h = lam ||x||_1``, optionally ``x >= 0``)
``gradient`` is the proximal-gradient block step and ``newton``/``matrix`` the
two-metric-projection Newton step (see :mod:`._proximal`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from itersolve._core.linesearch import armijo
from itersolve._core.solution import Status
from itersolve.optimize.bcd._blocks import BlockCache
from itersolve.optimize.bcd._forest import tree_solve
from itersolve.optimize.bcd._proximal import (
    proximal_gradient_step,
    two_metric_projection_step,
)

_EPS = float(torch.finfo(torch.float64).eps)


@dataclass(frozen=True)
class UpdateRule:
    """Base class: ``update(cache, block_id, b, g_b)`` moves ``x_b`` (through
    ``cache.model.apply``) and returns ``None``, or the :class:`Status` of a
    numerical breakdown that ends the run (``x`` then unmoved). Trial
    evaluations are counted by the model."""

    needs_lipschitz = False

    def update(
        self, cache: BlockCache, block_id: int | None, b: torch.Tensor, g: torch.Tensor
    ) -> Status | None:
        raise NotImplementedError


@dataclass(frozen=True)
class GradientUpdate(UpdateRule):
    """``x_b <- x_b - g_b / L_b`` (``L_b = lambda_max`` of the block bound)."""

    needs_lipschitz = True

    def update(
        self, cache: BlockCache, block_id: int | None, b: torch.Tensor, g: torch.Tensor
    ) -> Status | None:
        L = cache.block_lipschitz(block_id, b)
        if cache.penalty is not None:
            d = proximal_gradient_step(cache.model.x[b], g, L, cache.penalty)
        else:
            d = -g / L
        cache.model.apply(b, d)
        return None


@dataclass(frozen=True)
class LipschitzAdaptiveUpdate(UpdateRule):
    """Adaptive ``L_b``: double until the sufficient-decrease test
    ``f(x + d) <= f(x) - ||g_b||^2 / (2 L_b)`` holds (``d = -g_b / L_b``), and
    remember the accepted value per coordinate. ``initial`` is the first guess.
    """

    initial: float = 1.0
    max_doublings: int = 60

    def __post_init__(self) -> None:
        if not self.initial > 0:
            raise ValueError(f"initial must be > 0, got {self.initial!r}")

    def update(
        self, cache: BlockCache, block_id: int | None, b: torch.Tensor, g: torch.Tensor
    ) -> Status | None:
        model = cache.model
        stored = cache.adaptive_lipschitz(self.initial)
        L = float(stored[b].max())
        # Smooth part only: the trial adds the block's change of h, so the test is
        # F(x + d) <= F(x) - L/2 ||d||^2 (comparing with F(x) itself, h of every
        # coordinate included, accepted steps that raised F).
        f0 = float(model.value())
        gg = float(torch.dot(g, g))
        for _ in range(self.max_doublings):
            if cache.penalty is not None:
                d = proximal_gradient_step(model.x[b], g, L, cache.penalty)
                target = f0 - 0.5 * L * float(torch.dot(d, d))
                trial = float(model.trial_value(b, d)) + float(
                    cache.penalty.value(model.x[b] + d)
                    - cache.penalty.value(model.x[b])
                )
            else:
                d = -g / L
                target = f0 - gg / (2 * L)
                trial = float(model.trial_value(b, d))
            if trial <= target + 1e-12 * abs(f0):
                break
            L *= 2.0
        stored[b] = L
        model.apply(b, d)
        return None


@dataclass(frozen=True)
class MatrixUpdate(UpdateRule):
    """``x_b <- x_b - H_b^+ g_b`` with the fixed Hessian upper bound ``H_b``
    (least squares: ``A_b^T A_b``; logistic ``A_b^T A_b / 4``; softmax
    Boehning's bound). Exact block minimization for quadratics."""

    def update(
        self, cache: BlockCache, block_id: int | None, b: torch.Tensor, g: torch.Tensor
    ) -> Status | None:
        if cache.penalty is not None:
            d = two_metric_projection_step(cache, b, g, cache.block_bound(block_id, b))
        else:
            d = -(cache.block_inverse(block_id, b) @ g)
        cache.model.apply(b, d)
        return None


@dataclass(frozen=True)
class NewtonUpdate(UpdateRule):
    """Newton on the block with the true Hessian ``grad^2_bb f(x)`` and an Armijo
    backtracking line search (``c1``); falls back to ``-g_b`` scaled by the
    Hessian's largest eigenvalue when the block Hessian is not positive definite.
    """

    c1: float = 1e-4

    def __post_init__(self) -> None:
        if not 0 < self.c1 < 1:
            raise ValueError(f"c1 must be in (0, 1), got {self.c1!r}")

    def update(
        self, cache: BlockCache, block_id: int | None, b: torch.Tensor, g: torch.Tensor
    ) -> Status | None:
        model = cache.model
        H = model.block_hessian(b)
        if cache.penalty is not None:
            d = two_metric_projection_step(cache, b, g, H)
            model.apply(b, d)
            return None
        L_chol, info = torch.linalg.cholesky_ex(H)
        if int(info) == 0:
            d = -torch.cholesky_solve(g[:, None], L_chol)[:, 0]
        else:
            top = float(torch.linalg.eigvalsh(H)[-1])
            d = -g / max(top, float(torch.finfo(g.dtype).tiny))
        slope = float(torch.dot(g, d))
        if model.quadratic and int(info) == 0:
            model.apply(b, d)  # unit Newton step is exact on a quadratic
            return None
        f0 = float(model.value())
        if int(info) == 0 and -slope <= 1e3 * _EPS * max(1.0, abs(f0)):
            # the predicted decrease is below the rounding of f: values cannot
            # rank trial points any more, and the unit Newton step is accurate
            model.apply(b, d)
            return None

        def phi(t: float) -> float:
            return float(model.trial_value(b, t * d))

        result = armijo(phi, f0, slope, c1=self.c1)
        if result.step > 0:
            model.apply(b, result.step * d)
        return None


@dataclass(frozen=True)
class MessagePassingUpdate(UpdateRule):
    """Exact ``Q_bb d = -g_b`` on a forest-structured block of a sparse quadratic
    in ``O(|b|)`` (Gaussian elimination leaves-to-root, back-substitution).

    Raises ``ValueError`` when the block's induced graph has a cycle.
    """

    def update(
        self, cache: BlockCache, block_id: int | None, b: torch.Tensor, g: torch.Tensor
    ) -> Status | None:
        if cache.penalty is not None:
            raise ValueError("message passing is for smooth quadratics only")
        diag, values, plan = cache.forest_block(block_id, b)
        d = tree_solve(diag, values, plan, -g)
        if not bool(torch.isfinite(d).all()):
            return Status.NOT_POSITIVE_DEFINITE
        cache.model.apply(b, d)
        return None


UPDATE_RULES: dict[str, Any] = {
    "gradient": GradientUpdate,
    "lipschitz_adaptive": LipschitzAdaptiveUpdate,
    "matrix": MatrixUpdate,
    "exact": MatrixUpdate,
    "newton": NewtonUpdate,
    "message_passing": MessagePassingUpdate,
}


def as_update_rule(rule: Any) -> UpdateRule:
    """An update rule from a name (see :data:`UPDATE_RULES`) or a rule object.

    ``"exact"`` is ``"matrix"``: for quadratics the bound is the Hessian.
    """
    if isinstance(rule, UpdateRule):
        return rule
    if isinstance(rule, str):
        key = rule.replace("-", "_")
        if key in UPDATE_RULES:
            return UPDATE_RULES[key]()
    raise ValueError(
        f"update must be one of {sorted(UPDATE_RULES)} or an UpdateRule, got {rule!r}"
    )
