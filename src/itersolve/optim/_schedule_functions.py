"""Learning-rate multipliers as pure functions of the step index (resume-safe)."""

from __future__ import annotations

import math
from dataclasses import dataclass


def _check_steps(name: str, value: int, *, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")


def _check_step(t: int) -> int:
    if isinstance(t, bool) or int(t) != t or t < 0:
        raise ValueError(f"the step must be a nonnegative integer, got {t!r}")
    return int(t)


class Schedule:
    """Base class: ``schedule(t)`` is the learning-rate multiplier at step ``t``.

    Schedules hold no mutable state, so a training run resumed at step ``t``
    gets exactly the values of an uninterrupted run. Use them with
    ``torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)`` (its
    ``last_epoch`` is the step index), where they are saved with the scheduler's
    ``state_dict`` because they are callable objects.

    Examples
    --------
    A schedule is a pure function of the step, so a resumed run continues exactly:

    >>> from itersolve.optim.schedules import LinearDecay, Schedule
    >>> schedule = LinearDecay(total_steps=10)
    >>> isinstance(schedule, Schedule), schedule(5)
    (True, 0.5)
    """

    def __call__(self, t: int) -> float:
        raise NotImplementedError


@dataclass(frozen=True)
class Constant(Schedule):
    """``1`` at every step (with an optional linear warm-up).

    Examples
    --------
    >>> from itersolve.optim.schedules import Constant
    >>> schedule = Constant(warmup_steps=4)
    >>> [schedule(t) for t in range(6)]
    [0.2, 0.4, 0.6, 0.8, 1.0, 1.0]
    """

    warmup_steps: int = 0

    def __post_init__(self) -> None:
        _check_steps("warmup_steps", self.warmup_steps, minimum=0)

    def __call__(self, t: int) -> float:
        t = _check_step(t)
        if t < self.warmup_steps:
            return (t + 1) / (self.warmup_steps + 1)
        return 1.0


@dataclass(frozen=True)
class InverseSqrt(Schedule):
    """``1 / sqrt(1 + t / scale)`` after an optional linear warm-up.

    Examples
    --------
    >>> from itersolve.optim.schedules import InverseSqrt
    >>> schedule = InverseSqrt(scale=1.0)
    >>> [schedule(t) for t in (0, 3, 15)]
    [1.0, 0.5, 0.25]
    """

    scale: float = 1.0
    warmup_steps: int = 0

    def __post_init__(self) -> None:
        if not self.scale > 0:
            raise ValueError(f"scale must be > 0, got {self.scale}")
        _check_steps("warmup_steps", self.warmup_steps, minimum=0)

    def __call__(self, t: int) -> float:
        t = _check_step(t)
        if t < self.warmup_steps:
            return (t + 1) / (self.warmup_steps + 1)
        return 1.0 / math.sqrt(1.0 + (t - self.warmup_steps) / self.scale)


@dataclass(frozen=True)
class Cosine(Schedule):
    """Cosine annealing from 1 to ``final`` over ``total_steps`` (after warm-up);
    exactly ``final`` for ``t >= total_steps``.

    Examples
    --------
    >>> from itersolve.optim.schedules import Cosine
    >>> schedule = Cosine(total_steps=4)
    >>> [round(schedule(t), 4) for t in range(5)]
    [1.0, 0.8536, 0.5, 0.1464, 0.0]
    """

    total_steps: int
    warmup_steps: int = 0
    final: float = 0.0

    def __post_init__(self) -> None:
        _check_steps("total_steps", self.total_steps, minimum=1)
        _check_steps("warmup_steps", self.warmup_steps, minimum=0)
        if self.warmup_steps >= self.total_steps:
            raise ValueError(
                f"warmup_steps ({self.warmup_steps}) must be < total_steps "
                f"({self.total_steps})"
            )
        if not 0.0 <= self.final <= 1.0:
            raise ValueError(f"final must be in [0, 1], got {self.final}")

    def __call__(self, t: int) -> float:
        t = _check_step(t)
        if t < self.warmup_steps:
            return (t + 1) / (self.warmup_steps + 1)
        if t >= self.total_steps:
            return self.final
        frac = (t - self.warmup_steps) / (self.total_steps - self.warmup_steps)
        return self.final + (1 - self.final) * 0.5 * (1 + math.cos(math.pi * frac))


@dataclass(frozen=True)
class LinearDecay(Schedule):
    """Linear decay ``1 - t / T`` (after an optional linear warm-up): 1 at the end of
    warm-up (at ``t = 0`` without warm-up), exactly 0 at ``t = total_steps`` and
    after.

    Examples
    --------
    >>> import torch
    >>> from itersolve.optim.schedules import LinearDecay
    >>> schedule = LinearDecay(total_steps=4)
    >>> [schedule(t) for t in range(5)]
    [1.0, 0.75, 0.5, 0.25, 0.0]
    >>> opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    >>> scheduler = torch.optim.lr_scheduler.LambdaLR(opt, schedule)
    """

    total_steps: int
    warmup_steps: int = 0

    def __post_init__(self) -> None:
        _check_steps("total_steps", self.total_steps, minimum=1)
        _check_steps("warmup_steps", self.warmup_steps, minimum=0)
        if self.warmup_steps >= self.total_steps:
            raise ValueError(
                f"warmup_steps ({self.warmup_steps}) must be < total_steps "
                f"({self.total_steps})"
            )

    def __call__(self, t: int) -> float:
        t = _check_step(t)
        if t < self.warmup_steps:
            return (t + 1) / (self.warmup_steps + 1)
        if t >= self.total_steps:
            return 0.0
        return (self.total_steps - t) / (self.total_steps - self.warmup_steps)


def constant(warmup_steps: int = 0) -> Constant:
    """Constant multiplier 1 (optionally after a linear warm-up).

    Equivalent to ``torch.optim.lr_scheduler.ConstantLR(factor=1)``.

    Examples
    --------
    >>> constant()(0), constant()(10**6)
    (1.0, 1.0)
    """
    return Constant(warmup_steps)


def inverse_sqrt(scale: float = 1.0, warmup_steps: int = 0) -> InverseSqrt:
    """``1 / sqrt(1 + t / scale)``: the classical SGD decay (1 at ``t = 0``).

    Compare with ``transformers.get_inverse_sqrt_schedule``.

    Examples
    --------
    >>> inverse_sqrt()(0), inverse_sqrt()(3)
    (1.0, 0.5)
    """
    return InverseSqrt(scale, warmup_steps)


def cosine(total_steps: int, warmup_steps: int = 0, final: float = 0.0) -> Cosine:
    """Cosine annealing to ``final`` at ``t = total_steps``.

    Equivalent to ``torch.optim.lr_scheduler.CosineAnnealingLR(T_max=total_steps,
    eta_min=final * lr)`` (closed form) without warm-up.

    Examples
    --------
    >>> s = cosine(10)
    >>> s(0), s(5), s(10)
    (1.0, 0.5, 0.0)
    """
    return Cosine(total_steps, warmup_steps, final)


def linear_decay(total_steps: int, warmup_steps: int = 0) -> LinearDecay:
    """Linear decay to exactly 0 at ``t = total_steps`` (worst-case optimal for the
    SGD last iterate, Defazio et al. 2023), after an optional linear warm-up that
    reaches 1 at ``t = warmup_steps``.

    Equivalent to ``torch.optim.lr_scheduler.LinearLR(start_factor=1,
    end_factor=0, total_iters=total_steps)`` without warm-up and to
    ``transformers.get_linear_schedule_with_warmup``'s shape with it.

    Examples
    --------
    >>> s = linear_decay(4)
    >>> [s(t) for t in range(6)]
    [1.0, 0.75, 0.5, 0.25, 0.0, 0.0]
    """
    return LinearDecay(total_steps, warmup_steps)


def warmup_linear(total_steps: int, warmup_steps: int) -> LinearDecay:
    """Linear warm-up over ``warmup_steps`` steps, then linear decay to 0 at
    ``total_steps``; the same as ``linear_decay(total_steps, warmup_steps)``.

    Examples
    --------
    >>> s = warmup_linear(10, 2)
    >>> [round(s(t), 3) for t in (0, 1, 2, 6, 10)]
    [0.333, 0.667, 1.0, 0.5, 0.0]
    """
    if warmup_steps < 1:
        raise ValueError(f"warmup_steps must be >= 1, got {warmup_steps}")
    return LinearDecay(total_steps, warmup_steps)
