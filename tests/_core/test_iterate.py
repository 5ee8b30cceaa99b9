"""The driver contract, exercised with a tiny method whose behaviour is known."""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass

import pytest
import torch

from itersolve import ConvergenceError, ConvergenceWarning, IterativeMethod, Status
from itersolve._core.iterate import finish, iterate, run_inner


@dataclass
class HalvingState:
    x: torch.Tensor


@dataclass(frozen=True, kw_only=True)
class Halving(IterativeMethod):
    """x <- x / 2 until max|x| <= tol; optionally sleeps or emits NaN at a step."""

    tol: float = 1e-3
    sleep: float = 0.0
    nan_at: int | None = None

    def init(self, problem, x0):
        return HalvingState(x0.clone())

    def step(self, problem, state):
        time.sleep(self.sleep)
        x = state.x / 2
        problem["steps"] += 1
        if self.nan_at is not None and problem["steps"] == self.nan_at:
            x = x * float("nan")
        return HalvingState(x)

    def terminate(self, problem, state):
        return bool(state.x.abs().max() <= self.tol), Status.SUCCESS

    def metrics(self, problem, state):
        return {"max_abs": float(state.x.abs().max())}


def run(method, x0=None, **kwargs):
    x0 = torch.ones(3, dtype=torch.float64) if x0 is None else x0
    return iterate(method, {"steps": 0}, x0, **kwargs)[1]


def test_converges_with_exact_step_count():
    sol = run(Halving(tol=1 / 8), record=True)
    assert sol.status is Status.SUCCESS and sol.success
    assert sol.num_steps == 3
    assert sol.trace is not None and sol.trace["max_abs"].tolist() == [0.5, 0.25, 0.125]
    assert sol.trace["step"].tolist() == [1, 2, 3]


def test_solved_start_takes_no_step():
    sol = run(Halving(), x0=torch.zeros(2, dtype=torch.float64))
    assert sol.success and sol.num_steps == 0


def test_max_steps_one_gives_one_row_trace():
    sol = run(Halving(max_steps=1), record=True)
    assert sol.status is Status.MAX_STEPS
    assert sol.num_steps == 1
    assert sol.trace is not None and len(sol.trace) == 1


def test_record_every_k_keeps_final_row():
    sol = run(Halving(tol=1e-3), record=4)
    assert sol.trace is not None
    assert sol.trace["step"].tolist() == [4, 8, 10]


def test_callback_can_stop_and_sees_metrics():
    seen = []

    def callback(info):
        seen.append((info.step, info.metrics["max_abs"]))
        return info.step == 2

    sol = run(Halving(), callback=callback)
    assert sol.status is Status.STOPPED_BY_CALLBACK
    assert seen == [(1, 0.5), (2, 0.25)]


def test_nonfinite_input_takes_no_step():
    x0 = torch.tensor([1.0, float("nan")], dtype=torch.float64)
    sol = run(Halving(), x0=x0)
    assert sol.status is Status.NONFINITE_INPUT and sol.num_steps == 0


def test_nonfinite_iterate_is_caught():
    sol = run(Halving(nan_at=2))
    assert sol.status is Status.NONFINITE
    assert sol.num_steps == 2 and not sol.success


def test_time_limit():
    sol = run(Halving(tol=1e-300, sleep=0.01, time_limit=0.03))
    assert sol.status is Status.TIME_LIMIT
    assert 2 <= sol.num_steps <= 10


def test_time_counts_step_only():
    def callback(info):
        time.sleep(0.25)

    start = time.perf_counter()
    sol = run(Halving(tol=1 / 4), callback=callback)
    assert sol.num_steps == 2 and time.perf_counter() - start >= 0.5
    assert sol.stats["time"] < 0.25


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_steps": 0}, "max_steps must be a positive int, got 0"),
        ({"max_steps": 2.5}, "max_steps must be a positive int"),
        ({"time_limit": -1.0}, "time_limit must be positive, got -1.0"),
        ({"check_every": 0}, "check_every must be a positive int, got 0"),
    ],
)
def test_bad_limits_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Halving(**kwargs)


def test_bad_record_raises():
    with pytest.raises(ValueError, match="record must be"):
        run(Halving(), record=-1)


def test_failure_policy_warns_once_or_throws():
    sol = run(Halving(max_steps=1))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        finish(sol, throw=False)
    assert [w.category for w in caught] == [ConvergenceWarning]
    with pytest.raises(ConvergenceError) as excinfo:
        finish(sol, throw=True)
    assert excinfo.value.solution is sol
    assert "MAX_STEPS" in str(excinfo.value)


def test_every_status_has_a_helpful_message():
    for status in Status:
        assert len(status.value) > 20 and status.message == status.value


@dataclass
class CountdownState:
    x: torch.Tensor
    left: int
    status: Status | None = None
    x_sum: float | None = None


@dataclass(frozen=True, kw_only=True)
class Countdown(IterativeMethod):
    """Converges once ``left`` reaches 0 (the default ``terminate`` over
    ``converged``); counts the stopping tests it is asked for."""

    start: int = 5
    fail_at: int | None = None

    def init(self, problem, x0):
        return CountdownState(x0.clone(), self.start)

    def step(self, problem, state):
        state.left -= 1
        if self.fail_at is not None and state.left == self.fail_at:
            state.status = Status.BREAKDOWN
        return state

    def converged(self, problem, state):
        problem["tests"] += 1
        return state.left <= 0


def test_default_terminate_evaluates_converged_and_status():
    problem = {"tests": 0}
    _, sol = iterate(Countdown(start=3), problem, torch.ones(2))
    assert sol.success and sol.num_steps == 3 and problem["tests"] == 4
    _, sol = iterate(Countdown(start=5, fail_at=2), {"tests": 0}, torch.ones(2))
    assert sol.status is Status.BREAKDOWN and sol.num_steps == 3


def test_check_every_tests_only_at_check_points():
    problem = {"tests": 0}
    _, sol = iterate(Countdown(start=7, check_every=3), problem, torch.ones(2))
    # Tested at k = 0, 3, 6, 9: the rule holds from k = 7, seen at k = 9.
    assert sol.success and sol.num_steps == 9 and problem["tests"] == 4


def test_check_every_still_tests_at_max_steps():
    problem = {"tests": 0}
    _, sol = iterate(
        Countdown(start=5, check_every=4, max_steps=5), problem, torch.ones(2)
    )
    assert sol.success and sol.num_steps == 5


def test_nan_mid_run_caught_at_next_check_point():
    sol = run(Halving(nan_at=2, check_every=3, tol=1e-300))
    assert sol.status is Status.NONFINITE and sol.num_steps == 3


def test_finite_vector_whose_sum_overflows_is_finite():
    big = torch.full((4,), torch.finfo(torch.float64).max / 2, dtype=torch.float64)
    method = Halving(tol=0.0, max_steps=1)
    state = HalvingState(big)
    assert not torch.isfinite(big.sum())
    assert method.is_finite(None, state)
    assert not method.is_finite(None, HalvingState(torch.tensor([1.0, float("inf")])))


def test_x_sum_certificate_is_used_instead_of_a_scan():
    method = Countdown()
    state = CountdownState(torch.tensor([float("nan")]), 1, x_sum=3.0)
    # The certificate is trusted (the step vouches for it); a non-finite one
    # falls back to the scan.
    assert method.is_finite(None, state)
    state.x_sum = float("inf")
    assert not method.is_finite(None, state)


def test_run_inner_matches_iterate_without_extras():
    problem = {"steps": 0}
    _, full = iterate(Halving(tol=1 / 16), problem, torch.ones(3, dtype=torch.float64))
    problem_inner = {"steps": 0}
    _, inner = run_inner(
        Halving(tol=1 / 16), problem_inner, torch.ones(3, dtype=torch.float64)
    )
    assert inner.status is full.status is Status.SUCCESS
    assert inner.num_steps == full.num_steps == problem_inner["steps"] == 4
    assert torch.equal(inner.x, full.x) and inner.trace is None


def test_run_inner_budget_and_nan():
    _, sol = run_inner(Halving(tol=1e-300), {"steps": 0}, torch.ones(2), max_steps=3)
    assert sol.status is Status.MAX_STEPS and sol.num_steps == 3
    _, sol = run_inner(Halving(tol=1e-300, nan_at=2), {"steps": 0}, torch.ones(2))
    assert sol.status is Status.NONFINITE and sol.num_steps == 2
