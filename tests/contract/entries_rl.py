"""Contract entries of the policy-gradient family (``itersolve.rl``).

One tiny LQR (2 states, 1 action, horizon 5) run through
:func:`~itersolve.rl.policy_search` with a budget of 40 trajectories; the
seed is a front-door argument (tests/rl check seeded reproducibility).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from itersolve.rl import (
    HARPG,
    REINFORCE,
    LinearGaussianLQR,
    MomentumPG,
    NormalizedHARPG,
    NormalizedPGIGT,
    PolicyGradientMethod,
    policy_search,
)

BASES = {
    PolicyGradientMethod: "shared hyperparameters (step_size, batch_size, "
    "schedules), bookkeeping and budget rule of the policy-gradient methods; "
    "it has no step of its own",
}

_PROBLEM = LinearGaussianLQR(state_dim=2, action_dim=1, horizon=5)

_WHY = (
    "float32 is a different sample path, not a rounding of the float64 run: "
    "the policy samples its actions in theta's dtype, so the random draws differ"
)

_ERRORS = (
    ({"step_size": -0.1}, r"step_size must be finite and > 0, got -0\.1"),
    ({"batch_size": 0}, r"batch_size must be a positive int, got 0"),
    ({"step_decay": -1.0}, r"step_decay must be finite and >= 0"),
    ({"max_steps": 0}, r"max_steps must be a positive int, got 0"),
)


def _data() -> dict[str, np.ndarray]:
    return {"theta0": np.zeros(2)}


def _run(inputs: dict[str, Any], method: Any, **kw: Any) -> Any:
    return policy_search(
        _PROBLEM, inputs["theta0"], method, trajectory_budget=40, seed=0, **kw
    )


def entries(registry: Any) -> list[Any]:
    entry = registry._family(_data, _run, "theta0", {"batch_size": 4}, {})

    def make(name: str, cls: type, errors: Any = (), **extra: Any) -> Any:
        return entry(
            name,
            cls,
            _ERRORS + tuple(errors),
            extra=extra,
            float32=False,
            why=_WHY,
        )

    return [
        make("reinforce", REINFORCE, step_size=0.001),
        make(
            "momentum-pg",
            MomentumPG,
            ((({"momentum": 0.0}), r"momentum must be in \(0, 1\], got 0\.0"),),
            step_size=0.001,
        ),
        make(
            "n-pg-igt",
            NormalizedPGIGT,
            (({"eps": 0.0}, r"eps must be finite and > 0, got 0\.0"),),
            step_size=0.05,
        ),
        make(
            "harpg",
            HARPG,
            (({"momentum_decay": -0.5}, r"momentum_decay must be finite and >= 0"),),
            step_size=0.0005,
        ),
        make("n-harpg", NormalizedHARPG, step_size=0.05),
    ]
