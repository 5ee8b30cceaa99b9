"""Frozen-iterate detection in the driver (issue 21: honest stalls).

A run whose iterate stops changing at rounding level ends with ``STAGNATION``
at the next window boundary instead of running to ``max_steps``; a run that
converges slowly but steadily is never flagged; a disabled check costs nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import pytest
import torch

import itersolve
from itersolve import ConvergenceWarning, IterativeMethod, Status
from itersolve._core import stall as driver
from itersolve._core.iterate import finish, iterate
from itersolve._core.stall import STALL_MAX_GAP, STALL_WINDOW


@dataclass
class State:
    x: torch.Tensor


@dataclass(frozen=True, kw_only=True)
class Freezing(IterativeMethod):
    """x <- x + 1 for ``moving`` steps, then x <- x + jitter: a wobble of
    ``jitter`` ulps of max|x|, up and down in turn (no net change) or, with
    ``drift``, two steps up and one down, or nothing (``jitter=0``)."""

    moving: int = 5
    jitter: float = 0.0
    drift: bool = False

    def init(self, problem, x0):
        return State(x0.clone())

    def step(self, problem, state):
        problem["steps"] += 1
        if problem["steps"] <= self.moving:
            return State(state.x + 1)
        eps = torch.finfo(state.x.dtype).eps
        period = 3 if self.drift else 2
        sign = -1 if problem["steps"] % period == 0 else 1
        return State(state.x + sign * self.jitter * eps * state.x.abs().max())

    def converged(self, problem, state):
        return False

    def metrics(self, problem, state):
        return {"residual_norm": 0.25}


@dataclass(frozen=True, kw_only=True)
class Creeping(IterativeMethod):
    """x <- x * (1 - rate): geometric convergence at a tiny but steady rate."""

    rate: float = 1e-5

    def init(self, problem, x0):
        return State(x0.clone())

    def step(self, problem, state):
        return State(state.x * (1 - self.rate))

    def converged(self, problem, state):
        return False


def _run(method, dtype=torch.float64):
    x0 = torch.tensor([1.0, -2.0, 3.0], dtype=dtype)
    return iterate(method, {"steps": 0}, x0)[1]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("jitter", [0.0, 1.0])
def test_frozen_iterate_ends_at_the_next_window(dtype, jitter):
    sol = _run(Freezing(moving=5, jitter=jitter, max_steps=10_000), dtype)
    # Moving until step 5: the sample moved over [0, 32] (the gap doubles),
    # not over [32, 96], and all of x not over [96, 128].
    assert sol.status is Status.STAGNATION
    assert sol.num_steps == 4 * STALL_WINDOW
    name = str(dtype).removeprefix("torch.")
    assert "iterate x stopped changing" in sol.message
    assert f"last {STALL_WINDOW} steps" in sol.message
    assert "residual_norm 0.25" in sol.message  # the final metric
    assert name in sol.message
    fix = "use float64" if dtype is torch.float32 else "loosen it"
    assert fix in sol.message


def test_window_is_a_field_and_a_method_hook():
    sol = _run(Freezing(moving=5, stall_window=8, max_steps=1000))
    assert sol.status is Status.STAGNATION and sol.num_steps == 32

    @dataclass(frozen=True, kw_only=True)
    class EpochFreezing(Freezing):
        def default_stall_window(self, problem):
            return 100

    sol = _run(EpochFreezing(moving=5, max_steps=1000))
    assert sol.status is Status.STAGNATION and sol.num_steps == 400


def test_window_rounds_up_to_a_check_point():
    sol = _run(Freezing(moving=5, stall_window=10, check_every=4, max_steps=1000))
    assert sol.status is Status.STAGNATION and sol.num_steps == 48


def test_wobble_above_rounding_level_is_not_frozen():
    sol = _run(Freezing(moving=5, jitter=8.0, drift=True, max_steps=200))
    assert sol.status is Status.MAX_STEPS and sol.num_steps == 200


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_slow_steady_convergence_is_not_flagged(dtype):
    # 1e-5 relative per step is ~80 float32 ulps per step; it never freezes.
    sol = _run(Creeping(rate=1e-5, max_steps=3000), dtype)
    assert sol.status is Status.MAX_STEPS and sol.num_steps == 3000


def test_disabled_check_costs_nothing(monkeypatch):
    calls = []

    def counting(x, snapshot):
        calls.append(x.numel())
        return 1.0, 1.0

    monkeypatch.setattr(driver, "stall_change", counting)
    sol = _run(Freezing(moving=0, stall_window=0, max_steps=500))
    assert sol.status is Status.MAX_STEPS and sol.num_steps == 500
    assert calls == []

    @dataclass(frozen=True, kw_only=True)
    class Off(Freezing):
        def default_stall_window(self, problem):
            return None

    assert _run(Off(moving=0, max_steps=500)).status is Status.MAX_STEPS
    assert calls == []
    # Enabled on a moving run: sample comparisons at steps 32, 96, 224, 480
    # (gaps doubling), nothing per step.
    _run(Creeping(max_steps=500))
    assert len(calls) == 4


def test_success_at_a_window_boundary_wins_over_stagnation():
    @dataclass(frozen=True, kw_only=True)
    class FrozenButDone(Freezing):
        def converged(self, problem, state):
            return problem["steps"] >= 4 * STALL_WINDOW

    sol = _run(FrozenButDone(moving=5, max_steps=1000))
    assert sol.status is Status.SUCCESS and sol.num_steps == 4 * STALL_WINDOW


@pytest.mark.parametrize("value", [-1, 1.5, True, "32"])
def test_bad_stall_window_raises(value):
    with pytest.raises(ValueError, match="stall_window must be"):
        Freezing(stall_window=value)


def test_method_advice_is_appended_after_the_detail():
    @dataclass(frozen=True, kw_only=True)
    class Advised(Freezing):
        ADVICE: ClassVar[dict[Status, str]] = {
            Status.STAGNATION: "try the other method"
        }

    with pytest.warns(ConvergenceWarning, match="stopped changing"):
        sol = finish(_run(Advised(moving=5, max_steps=1000)), throw=False)
    assert sol.message.startswith(Status.STAGNATION.outcome + " (the iterate")
    assert sol.message.endswith("; try the other method")


def test_newton_rosenbrock_float32_stalls_long_before_max_steps():
    # Issue 21: Newton on 5-D Rosenbrock in float32 freezes near step 16 and
    # used to run all 500 steps to MAX_STEPS.
    from itersolve.optimize import Newton

    def rosenbrock(x):
        return (100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2).sum()

    x0 = torch.tensor([-1.2, 1.0, -1.2, 1.0, -1.2], dtype=torch.float32)
    # With the dtype-aware default tolerance the run now succeeds (at the local
    # minimizer with f = 3.93); a tolerance float32 cannot reach must still end
    # early with STAGNATION, not run to max_steps.
    fine = itersolve.minimize(rosenbrock, x0, Newton(max_steps=500))
    assert fine.status is Status.SUCCESS and fine.num_steps < 50
    with pytest.warns(ConvergenceWarning, match="STAGNATION"):
        sol = itersolve.minimize(
            rosenbrock, x0, Newton(rtol=1e-14, atol=0.0, max_steps=500)
        )
    assert sol.status is Status.STAGNATION
    assert sol.num_steps <= 4 * STALL_WINDOW
    assert "float32" in sol.message and "use float64" in sol.message
    assert torch.isfinite(sol.x).all()


def test_frozen_sample_alone_never_ends_a_run():
    @dataclass(frozen=True, kw_only=True)
    class TailMoving(Freezing):
        """Only the last entry moves: the strided sample never sees it."""

        def step(self, problem, state):
            x = state.x.clone()
            x[-1] += 1
            return State(x)

    x0 = torch.zeros(10_000, dtype=torch.float64)
    x0[0] = 1e6  # the sample's scale; the moving entry stays far below it
    _, sol = iterate(TailMoving(max_steps=300), {"steps": 0}, x0)
    assert sol.status is Status.MAX_STEPS and sol.num_steps == 300


def test_gaps_stop_growing_and_late_freezes_are_caught():
    # Moving for 5000 steps: the gaps grow to 16 windows (512 steps), so the
    # freeze is seen within two gaps and a window of it.
    sol = _run(Freezing(moving=5000, max_steps=100_000))
    assert sol.status is Status.STAGNATION
    assert 5000 < sol.num_steps <= 5000 + (2 * STALL_MAX_GAP + 1) * STALL_WINDOW
