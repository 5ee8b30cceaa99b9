"""Shared fixtures of the rl tests: one thread (tiny tensors are thousands of
times slower under torch's intra-op pool on a loaded machine) and a small LQR."""

from __future__ import annotations

import pytest

from itersolve.rl import LinearGaussianLQR


@pytest.fixture(scope="package")
def lqr() -> LinearGaussianLQR:
    """3 states, 2 actions, horizon 8: 6 policy parameters."""
    return LinearGaussianLQR(state_dim=3, action_dim=2, horizon=8)
