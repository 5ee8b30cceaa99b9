"""Backtracking line searches shared by every family.

Both searches work on the one-dimensional restriction ``phi(t) = f(x + t d)`` and
take ``f0 = phi(0)`` and ``slope = phi'(0) = <grad f(x), d>`` (negative for a
descent direction). They never raise on numerical trouble: ``success=False`` is
returned with the best step seen.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class LineSearchResult:
    step: float
    value: float
    evaluations: int
    success: bool
    slope: float = math.nan
    """phi'(step), when the search evaluated it (Wolfe)."""


def armijo(
    phi: Callable[[float], float],
    f0: float,
    slope: float,
    *,
    step: float = 1.0,
    c1: float = 1e-4,
    shrink: float = 0.5,
    max_evaluations: int = 40,
) -> LineSearchResult:
    """Backtrack until ``phi(t) <= f0 + c1 t slope`` (sufficient decrease).

    >>> armijo(lambda t: (1 - t) ** 2, 1.0, -2.0, step=4.0).step
    1.0
    """
    if not 0 < c1 < 1:
        raise ValueError(f"c1 must be in (0, 1), got {c1}")
    if not 0 < shrink < 1:
        raise ValueError(f"shrink must be in (0, 1), got {shrink}")
    if not slope < 0:
        return LineSearchResult(0.0, f0, 0, False)
    best = LineSearchResult(0.0, f0, 0, False)
    t = step
    for k in range(1, max_evaluations + 1):
        value = phi(t)
        if math.isfinite(value) and value <= f0 + c1 * t * slope:
            return LineSearchResult(t, value, k, True)
        if math.isfinite(value) and value < best.value:
            best = LineSearchResult(t, value, k, False)
        t *= shrink
    return LineSearchResult(best.step, best.value, max_evaluations, False)


def armijo_rows(
    trial: Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, tuple]],
    f0: torch.Tensor,
    slope: torch.Tensor,
    pending: torch.Tensor,
    initial: tuple,
    *,
    c1: float = 1e-4,
    shrink: float = 0.5,
    max_evaluations: int = 41,
) -> tuple[torch.Tensor, torch.Tensor, tuple]:
    """:func:`armijo` for a batch of independent searches, one call per trial.

    ``trial(t, rows)`` evaluates every row at its own step ``t`` (shape ``(B,)``;
    rows outside the mask ``rows`` may be evaluated at their old point) and
    returns ``(values, payload)``: ``phi_b(t_b)`` (non-finite where the trial
    point is) and a tuple of batch-first tensors. A row whose ``pending`` flag
    is set backtracks until ``phi_b(t_b) <= f0_b + c1 t_b slope_b``; rows with a
    non-negative slope are never accepted. Returns the steps, the accepted
    mask and, per row, the payload of its accepting trial (``initial``'s row
    otherwise).

    >>> f0, slope = torch.ones(2), torch.tensor([-2.0, -2.0])
    >>> t, ok, _ = armijo_rows(
    ...     lambda t, rows: ((1 - t * torch.tensor([1.0, 0.25])) ** 2, ()),
    ...     f0, slope, torch.tensor([True, True]), (),
    ... )
    >>> t.tolist(), ok.tolist()
    ([1.0, 1.0], [True, True])
    """
    pending = pending & (slope < 0)
    t = torch.ones_like(slope)
    accepted = torch.zeros_like(pending)
    payload = initial
    for _ in range(max_evaluations):
        values, trial_payload = trial(t, pending)
        ok = pending & torch.isfinite(values) & (values <= f0 + c1 * t * slope)
        payload = tuple(
            torch.where(ok.reshape(-1, *([1] * (new.dim() - 1))), new, old)
            for new, old in zip(trial_payload, payload, strict=True)
        )
        accepted |= ok
        pending = pending & ~ok
        if not bool(pending.any()):
            break
        t = torch.where(pending, shrink * t, t)
    return t, accepted, payload


def strong_wolfe(
    phi: Callable[[float], tuple[float, float]],
    f0: float,
    slope: float,
    *,
    step: float = 1.0,
    c1: float = 1e-4,
    c2: float = 0.9,
    max_step: float = 1e10,
    max_evaluations: int = 30,
) -> LineSearchResult:
    """Find ``t`` with sufficient decrease and ``|phi'(t)| <= c2 |phi'(0)|``.

    Bracketing then zoom with safeguarded cubic interpolation (Nocedal & Wright,
    Algorithms 3.5 and 3.6). ``phi`` returns ``(phi(t), phi'(t))``.

    >>> r = strong_wolfe(lambda t: ((t - 2) ** 2, 2 * (t - 2)), 4.0, -4.0, c2=0.1)
    >>> r.success, round(r.step, 6)
    (True, 2.0)
    """
    if not 0 < c1 < c2 < 1:
        raise ValueError(f"need 0 < c1 < c2 < 1, got c1={c1}, c2={c2}")
    if not slope < 0:
        return LineSearchResult(0.0, f0, 0, False)
    evaluations = 0
    t_prev, f_prev, g_prev = 0.0, f0, slope
    t = step
    while evaluations < max_evaluations:
        f, g = phi(t)
        evaluations += 1
        if not (math.isfinite(f) and math.isfinite(g)):
            # Step into a non-finite region: treat as too long and zoom back.
            return _zoom(
                phi,
                f0,
                slope,
                t_prev,
                f_prev,
                g_prev,
                t,
                math.inf,
                math.nan,
                c1,
                c2,
                evaluations,
                max_evaluations,
            )
        if f > f0 + c1 * t * slope or (evaluations > 1 and f >= f_prev):
            return _zoom(
                phi,
                f0,
                slope,
                t_prev,
                f_prev,
                g_prev,
                t,
                f,
                g,
                c1,
                c2,
                evaluations,
                max_evaluations,
            )
        if abs(g) <= -c2 * slope:
            return LineSearchResult(t, f, evaluations, True, g)
        if g >= 0:
            return _zoom(
                phi,
                f0,
                slope,
                t,
                f,
                g,
                t_prev,
                f_prev,
                g_prev,
                c1,
                c2,
                evaluations,
                max_evaluations,
            )
        t_prev, f_prev, g_prev = t, f, g
        t = min(2.0 * t, max_step)
    return LineSearchResult(t_prev, f_prev, evaluations, False, g_prev)


def _cubic_minimizer(
    a: float, fa: float, ga: float, b: float, fb: float, gb: float
) -> float:
    """Minimizer of the cubic interpolating (a, fa, ga), (b, fb, gb); NaN if none."""
    d1 = ga + gb - 3 * (fa - fb) / (a - b)
    radicand = d1 * d1 - ga * gb
    if radicand < 0 or not math.isfinite(radicand):
        return math.nan
    d2 = math.copysign(math.sqrt(radicand), b - a)
    denom = gb - ga + 2 * d2
    if denom == 0:
        return math.nan
    return b - (b - a) * (gb + d2 - d1) / denom


def _zoom(
    phi: Callable[[float], tuple[float, float]],
    f0: float,
    slope: float,
    lo: float,
    f_lo: float,
    g_lo: float,
    hi: float,
    f_hi: float,
    g_hi: float,
    c1: float,
    c2: float,
    evaluations: int,
    max_evaluations: int,
) -> LineSearchResult:
    while evaluations < max_evaluations:
        left, right = min(lo, hi), max(lo, hi)
        t = math.nan
        if math.isfinite(f_hi) and math.isfinite(g_hi):
            t = _cubic_minimizer(lo, f_lo, g_lo, hi, f_hi, g_hi)
        margin = 0.1 * (right - left)
        if not (left + margin <= t <= right - margin):
            t = 0.5 * (lo + hi)
        f, g = phi(t)
        evaluations += 1
        if not (math.isfinite(f) and math.isfinite(g)):
            hi, f_hi, g_hi = t, math.inf, math.nan
            continue
        if f > f0 + c1 * t * slope or f >= f_lo:
            hi, f_hi, g_hi = t, f, g
        else:
            if abs(g) <= -c2 * slope:
                return LineSearchResult(t, f, evaluations, True, g)
            if g * (hi - lo) >= 0:
                hi, f_hi, g_hi = lo, f_lo, g_lo
            lo, f_lo, g_lo = t, f, g
        if abs(hi - lo) <= 1e-16 * max(1.0, abs(lo)):
            break
    # Out of evaluations: the best bracketed step still decreases f (lo > 0) or is 0.
    return LineSearchResult(lo, f_lo, evaluations, False, g_lo)
