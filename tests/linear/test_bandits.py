"""Online tuners (Tsallis-INF, ChebCB, binned Tsallis-INF) on synthetic cost tables.

Each table has a known best arm (or a known best arm per context region), so the
learners are checked against exact answers: which arm they settle on and how close
their late-round cost gets to the best fixed / best contextual policy.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from itersolve.linear.tuning import (
    DEFAULT_GRID,
    BinnedTsallisINF,
    ChebCB,
    TsallisINF,
    replay,
    tsallis_probabilities,
)

T = 1500


def _bandit_table(seed: int = 0) -> np.ndarray:
    """Costs with a unique best arm (index 6), heavy-ish tails, never below 1."""
    rng = np.random.default_rng(seed)
    means = 40.0 + 15.0 * np.abs(np.arange(20) - 6)
    return 1.0 + rng.gamma(4.0, means / 4.0, size=(T, 20))


def _contextual_table(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Context c in [0, 1]; the best arm moves from 2 (c = 0) to 17 (c = 1)."""
    rng = np.random.default_rng(seed)
    contexts = rng.uniform(0.0, 1.0, T)
    best = 2.0 + 15.0 * contexts
    arms = np.arange(20)
    table = 20.0 + 4.0 * np.abs(arms[None, :] - best[:, None])
    return table * rng.uniform(0.9, 1.1, size=table.shape), contexts


def _late(costs: np.ndarray) -> float:
    return float(costs[len(costs) // 2 :].mean())


def test_tsallis_inf_finds_the_best_arm():
    table = _bandit_table()
    best_fixed = table.mean(axis=0).min()
    late = []
    for seed in range(3):
        tuner = TsallisINF(seed=seed)
        costs, arms = replay(tuner, table)
        late.append(_late(costs))
        assert np.argmax(tuner.probabilities) == 6
        assert np.mean(arms[-300:] == 6) > 0.5
    # sqrt(K t) regret: at t = 1500, K = 20 the late rounds still explore a little.
    assert np.mean(late) <= 1.25 * best_fixed


def test_tsallis_inf_with_a_known_bound_also_learns():
    table = np.minimum(_bandit_table(1), 400.0)
    tuner = TsallisINF(loss_scale=400.0, seed=0)
    costs, _ = replay(tuner, table)
    assert np.argmax(tuner.probabilities) == 6
    assert _late(costs) < table.mean(axis=0).mean()


def test_chebcb_learns_the_context_to_arm_map():
    table, contexts = _contextual_table()
    best_fixed = table.mean(axis=0).min()
    best_policy = table.min(axis=1)
    tuner = ChebCB(context_range=(0.0, 1.0), seed=0)
    costs, _ = replay(tuner, table, contexts)
    assert _late(costs) < 0.8 * best_fixed
    assert _late(costs) <= 1.25 * _late(best_policy)
    for c, expected in ((0.05, 3), (0.5, 9), (0.95, 16)):
        assert abs(int(np.argmin(tuner.predict(c))) - expected) <= 2


def test_binned_tsallis_inf_beats_the_best_fixed_arm():
    table, contexts = _contextual_table(2)
    tuner = BinnedTsallisINF(n_bins=5, context_range=(0.0, 1.0), seed=0)
    costs, _ = replay(tuner, table, contexts)
    assert _late(costs) < table.mean(axis=0).min()
    assert [tuner.bin_of(c) for c in (-1.0, 0.1, 0.5, 0.99, 3.0)] == [0, 0, 2, 4, 4]


@pytest.mark.parametrize(
    "make",
    [
        lambda s: TsallisINF(seed=s),
        lambda s: ChebCB(context_range=(0, 1), seed=s),
        lambda s: BinnedTsallisINF(context_range=(0, 1), seed=s),
    ],
)
def test_seeded_runs_are_reproducible(make):
    table, contexts = _contextual_table(3)
    first = replay(make(7), table[:200], contexts[:200])[1]
    second = replay(make(7), table[:200], contexts[:200])[1]
    other = replay(make(8), table[:200], contexts[:200])[1]
    np.testing.assert_array_equal(first, second)
    assert not np.array_equal(first, other)


def test_protocol_is_enforced():
    tuner = TsallisINF(seed=0)
    with pytest.raises(RuntimeError, match="before choose"):
        tuner.update(3.0)
    assert tuner.choose() in DEFAULT_GRID
    with pytest.raises(RuntimeError, match="twice"):
        tuner.choose()
    with pytest.raises(ValueError, match="cost must be finite and >= 0"):
        tuner.update(float("nan"))
    tuner.update(3.0)
    with pytest.raises(ValueError, match="needs a context"):
        ChebCB(context_range=(0, 1)).choose()


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: TsallisINF([1.0]), "at least 2 values"),
        (lambda: TsallisINF([1.0, 1.0]), "distinct"),
        (lambda: TsallisINF([1.0, np.inf]), "finite"),
        (lambda: TsallisINF(loss_scale="max"), "loss_scale must be"),
        (lambda: TsallisINF(loss_scale=0.5), "bound must be > 1"),
        (lambda: ChebCB(context_range=(1, 0)), "lo < hi"),
        (lambda: ChebCB(context_range=3), "pair"),
        (lambda: ChebCB(context_range=(0, 1), n_features=0), "n_features"),
        (lambda: BinnedTsallisINF(context_range=(0, 1), n_bins=0), "n_bins"),
    ],
)
def test_bad_arguments_raise(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_replay_checks_shapes():
    with pytest.raises(ValueError, match=r"shape \(T, 20\)"):
        replay(TsallisINF(), np.ones((5, 3)))
    with pytest.raises(ValueError, match="contexts has length 2"):
        replay(ChebCB(context_range=(0, 1)), np.ones((5, 20)), np.ones(2))


@given(
    st.lists(st.floats(0, 1e4), min_size=2, max_size=30),
    st.floats(1e-3, 10.0),
)
def test_tsallis_probabilities_solve_the_normalization(losses, eta):
    L = np.asarray(losses)
    p = tsallis_probabilities(L, eta)
    assert np.all(p > 0) and p.sum() == pytest.approx(1.0, abs=1e-12)
    # p_i = 4 / (eta (L_i - x))^2 for one common x: sqrt(4/p_i)/eta + x = L_i.
    x = L - 2.0 / (eta * np.sqrt(p))
    assert np.ptp(x) <= 1e-6 * (1.0 + np.abs(L).max())
    assert np.all(np.diff(p[np.argsort(L)]) <= 1e-15)
