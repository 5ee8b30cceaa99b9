"""Contract entries of the multi-block bilevel family (``itersolve.bilevel``).

The problem: a tiny quadratic bilevel (3 blocks, ``dim_x = 2``, ``dim_y = 3``,
8 lower samples), run for a budget of 3 epochs from a seeded stream (the
budget is the stopping rule, so a spent budget is ``SUCCESS``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from itersolve.bilevel import BSVRB, RSVRB, BilevelMethod, StochasticHypergradient
from itersolve.bilevel import solve as bilevel_solve
from itersolve.problems import QuadraticBilevel

BASES = {
    BilevelMethod: "shared hyperparameters (blocks_per_iter, batch_size, eta), "
    "sampling and budget of BSVRB, RSVRB and StochasticHypergradient; no step",
}


def _data() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(5)
    return {
        "a": rng.standard_normal((3, 8, 3)) / np.sqrt(3),
        "B": rng.standard_normal((3, 3, 2)) / np.sqrt(2),
        "c": rng.standard_normal((3, 3)),
        "t": rng.standard_normal((3, 3)),
        "x0": np.zeros(2),
    }


def _tensor(value: Any) -> torch.Tensor:
    return value if isinstance(value, torch.Tensor) else torch.from_numpy(value)


def _run(inputs: dict[str, Any], method: Any, **kw: Any) -> Any:
    problem = QuadraticBilevel(
        *(_tensor(inputs[k]) for k in ("a", "B", "c", "t")), mu=1.0, rho=0.1
    )
    return bilevel_solve(problem, inputs["x0"], method, epochs=3, **kw)


_COMMON = {"blocks_per_iter": 2, "batch_size": 4, "eta": 0.1, "tau": 0.3}

_ERRORS = (
    ({"blocks_per_iter": 0}, r"blocks_per_iter must be a positive int, got 0"),
    ({"batch_size": 0}, r"batch_size must be a positive int, got 0"),
    ({"eta": -1.0}, r"eta must be a finite number > 0, got -1\.0"),
    ({"tau": -1.0}, r"tau must be a finite number > 0"),
    ({"max_steps": 0}, r"max_steps must be a positive int, got 0"),
)


def entries(registry: Any) -> list[Any]:
    entry = registry._family(_data, _run, "x0", _COMMON, {})

    return [
        entry(
            "bsvrb-v1",
            BSVRB,
            (
                *_ERRORS,
                ({"version": "v3"}, r"version must be 'v1' or 'v2'"),
                ({"alpha": 0.0}, r"alpha must be in \(0, 1\]"),
            ),
        ),
        entry(
            "bsvrb-v2",
            BSVRB,
            (({"tau_v": 0.0}, r"tau_v must be a finite number > 0"),),
            extra={"version": "v2", "tau_v": 0.3},
        ),
        entry(
            "rsvrb",
            RSVRB,
            (*_ERRORS, ({"beta": 2.0}, r"beta must be in \(0, 1\]")),
        ),
        entry(
            "stochastic-hypergradient",
            StochasticHypergradient,
            (*_ERRORS, ({"inner_steps": 0}, r"inner_steps must be a positive int")),
        ),
    ]
