"""Schedules: endpoints, equality with torch lr_scheduler, resume, refinement."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from itersolve.optim import schedules


def _torch_lrs(make_scheduler, steps: int) -> list[float]:
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=1.0)
    sched = make_scheduler(opt)
    out = []
    for _ in range(steps):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    out.append(opt.param_groups[0]["lr"])
    return out


def _lambda_lrs(schedule, steps: int) -> list[float]:
    return _torch_lrs(lambda o: torch.optim.lr_scheduler.LambdaLR(o, schedule), steps)


def test_linear_decay_endpoints_and_torch_linear_lr() -> None:
    s = schedules.linear_decay(50)
    assert s(0) == 1.0 and s(50) == 0.0 and s(10**6) == 0.0
    ours = _lambda_lrs(s, 50)
    theirs = _torch_lrs(
        lambda o: torch.optim.lr_scheduler.LinearLR(
            o, start_factor=1.0, end_factor=0.0, total_iters=50
        ),
        50,
    )
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-12)
    assert ours[-1] == 0.0


def test_cosine_matches_cosine_annealing_lr() -> None:
    s = schedules.cosine(40, final=0.1)
    assert s(0) == 1.0 and s(40) == 0.1
    ours = _lambda_lrs(s, 40)
    theirs = _torch_lrs(
        lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=40, eta_min=0.1),
        40,
    )
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-12)


def test_warmup_linear_shape() -> None:
    s = schedules.warmup_linear(100, 10)
    values = [s(t) for t in range(101)]
    assert values[0] == pytest.approx(1 / 11)
    assert values[10] == 1.0 and max(values) == 1.0 and values[100] == 0.0
    assert np.all(np.diff(values[:11]) > 0) and np.all(np.diff(values[10:]) < 0)
    # same shape as transformers.get_linear_schedule_with_warmup after warm-up
    assert s(55) == pytest.approx((100 - 55) / 90)


def test_constant_and_inverse_sqrt() -> None:
    assert [schedules.constant()(t) for t in (0, 5, 10**9)] == [1.0, 1.0, 1.0]
    s = schedules.inverse_sqrt(scale=4.0)
    assert s(0) == 1.0 and s(12) == 0.5
    w = schedules.inverse_sqrt(warmup_steps=3)
    assert w(0) == 0.25 and w(3) == 1.0 and w(6) == pytest.approx(0.5)


@pytest.mark.parametrize(
    ("factory", "match"),
    [
        (lambda: schedules.linear_decay(0), "total_steps must be an integer >= 1"),
        (lambda: schedules.linear_decay(10, 10), r"warmup_steps \(10\) must be <"),
        (lambda: schedules.cosine(10, final=2.0), r"final must be in \[0, 1\]"),
        (lambda: schedules.inverse_sqrt(scale=0.0), "scale must be > 0"),
        (lambda: schedules.warmup_linear(10, 0), "warmup_steps must be >= 1"),
        (lambda: schedules.linear_decay(10)(-1), "nonnegative integer"),
        (lambda: schedules.convex_known_horizon(1.0, 1.0, 0), "T must be an integer"),
        (lambda: schedules.heavy_tailed(2.5, 1.0, 10), r"p must be in \(1, 2\]"),
        (lambda: schedules.strongly_convex(1.0, -1.0), "mu must be a finite"),
        (lambda: schedules.refine_schedule([1.0]), "at least 2 values"),
        (lambda: schedules.refine_schedule([1.0, 0.0]), "finite and > 0"),
        (lambda: schedules.refine_schedule([1.0, 2.0], optimizer="lion"), "sgd"),
        (lambda: schedules.refine_schedule([1.0, 2.0], pad_mode="wrap"), "nearest"),
    ],
)
def test_bad_arguments(factory, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        factory()


def test_resume_through_lambda_lr_state_dict() -> None:
    """A run saved at step 30 and resumed continues with the same learning rates."""
    schedule = schedules.warmup_linear(60, 5)
    full = _lambda_lrs(schedule, 60)

    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=1.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, schedule)
    for _ in range(30):
        opt.step()
        sched.step()
    saved_opt, saved_sched = copy.deepcopy(opt.state_dict()), sched.state_dict()

    q = torch.nn.Parameter(torch.zeros(1))
    opt2 = torch.optim.SGD([q], lr=1.0)
    sched2 = torch.optim.lr_scheduler.LambdaLR(opt2, schedules.warmup_linear(60, 5))
    opt2.load_state_dict(saved_opt)
    sched2.load_state_dict(saved_sched)
    resumed = []
    for _ in range(30):
        resumed.append(opt2.param_groups[0]["lr"])
        opt2.step()
        sched2.step()
    resumed.append(opt2.param_groups[0]["lr"])
    assert resumed == full[30:]


def test_schedules_are_pure() -> None:
    s = schedules.cosine(20, warmup_steps=3)
    first = [s(t) for t in range(25)]
    assert [s(t) for t in reversed(range(25))][::-1] == first


# -- refinement -------------------------------------------------------------------


def test_refined_flat_norms_give_linear_decay() -> None:
    s = schedules.refine_schedule(np.full(200, 3.0))
    expected = [(200 - 1 - t) / 199 for t in range(200)]
    np.testing.assert_allclose([s(t) for t in range(200)], expected, atol=1e-12)
    assert s(199) == 0.0 and s(200) == 0.0 and len(s) == 200


def test_refinement_formula_against_direct_sums() -> None:
    norms = np.exp(np.sin(np.arange(30) / 4.0))
    for optimizer, power in (("sgd", -2.0), ("adam", -1.0)):
        s = schedules.refine_schedule(norms, optimizer=optimizer, smoothing=0)
        w = norms**power
        raw = np.array([w[t] * w[t + 1 :].sum() / w.sum() for t in range(30)])
        np.testing.assert_allclose(s.values, raw / raw.max(), rtol=1e-12)


def test_shrinking_norms_give_warmup_growing_norms_decay_faster() -> None:
    t = np.arange(500)
    shrinking = schedules.refine_schedule(10.0 * np.exp(-t / 100) + 0.1)
    values = shrinking.values
    assert values[0] < 0.2 and values.argmax() > 100  # warm-up shape
    growing = schedules.refine_schedule(1.0 + t / 50.0)
    linear = 1 - t / 499
    assert np.all(growing.values[1:-1] <= linear[1:-1] + 1e-12)


def test_median_filter_removes_spikes_and_padding_modes() -> None:
    norms = np.ones(100)
    norms[5::10] = 50.0  # isolated spikes (away from the padded ends)
    smooth = schedules.refine_schedule(norms, smoothing=0.05)
    np.testing.assert_allclose(smooth.values, (99 - np.arange(100)) / 99, atol=1e-12)
    ramp = np.linspace(1, 2, 50)
    a = schedules.refine_schedule(ramp, smoothing=0.2, pad_mode="nearest").values
    b = schedules.refine_schedule(ramp, smoothing=0.2, pad_mode="reflect").values
    assert not np.allclose(a, b)


def test_refined_schedule_accepts_tensors_and_does_not_mutate() -> None:
    norms = torch.linspace(2.0, 1.0, 20, dtype=torch.float64)
    before = norms.clone()
    s = schedules.refine_schedule(norms)
    assert torch.equal(norms, before)
    assert _lambda_lrs(s, 20)[-2:] == [0.0, 0.0]


@settings(max_examples=30, deadline=None, derandomize=True)
@given(
    st.lists(st.floats(1e-3, 1e3), min_size=2, max_size=60),
    st.sampled_from(["sgd", "adam"]),
)
def test_refined_values_in_unit_interval_ending_at_zero(norms, optimizer) -> None:
    s = schedules.refine_schedule(norms, optimizer=optimizer)
    assert s.values.max() == 1.0 and s.values[-1] == 0.0
    assert np.all(s.values >= 0)


# -- last-iterate step-size rules -------------------------------------------------


def test_last_iterate_rules() -> None:
    known = schedules.convex_known_horizon(10.0, 1.0, 400)
    assert known(0) == known(399) == 0.05
    assert schedules.convex_known_horizon(1.0, 100.0, 4)(0) == 0.5  # 1/(2L) cap
    anytime = schedules.convex_anytime(None, 2.0)
    assert anytime(0) == 2.0 and anytime(99) == pytest.approx(0.2)
    strong = schedules.strongly_convex(5.0, 0.5)
    assert strong(0) == 0.1 and strong(99) == pytest.approx(0.02)
    heavy = schedules.heavy_tailed(1.25, 1.0, 1000)
    assert heavy(3) == pytest.approx(1000 ** (-0.8))


def test_default_filter_is_the_papers_nearest_start_reflect_end() -> None:
    # Odd window 2 * (int(0.1 * T) // 2) + 1 = 11, the end extended by its mirror
    # image (the reference code's README): check each median by hand.
    rng = np.random.default_rng(0)
    norms = np.exp(rng.normal(size=100)) + np.linspace(3.0, 0.5, 100)
    width, half = 11, 5
    extended = np.concatenate([np.full(half, norms[0]), norms, norms[-2::-1][:half]])
    filtered = np.array([np.median(extended[t : t + width]) for t in range(100)])
    w = filtered**-2.0
    raw = np.array([w[t] * w[t + 1 :].sum() for t in range(100)])
    s = schedules.refine_schedule(norms, smoothing=0.1)
    np.testing.assert_allclose(s.values, raw / raw.max(), rtol=1e-12)
    nearest = schedules.refine_schedule(norms, smoothing=0.1, pad_mode="nearest")
    assert not np.allclose(s.values, nearest.values)
