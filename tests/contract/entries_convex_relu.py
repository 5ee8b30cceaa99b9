"""Contract entries of the convex two-layer ReLU solvers (itersolve.optimize.
convex_relu): the constrained program for ADMM, the gated one for FISTA, both
on 20 points in 2-D with 3 sampled arrangements."""

from __future__ import annotations

from typing import Any

import numpy as np

from itersolve.optimize.convex_relu import (
    ConvexReLUADMM,
    ConvexReLUFISTA,
    ConvexReLUProblem,
    sample_arrangements,
    solve_convex_relu,
)


def _data() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    X = rng.standard_normal((20, 2))
    y = rng.standard_normal(20)
    # The patterns are drawn once, from the float64 data, so every kind and
    # dtype solves the same program.
    D = sample_arrangements(X, 3, seed=0)
    return {"X": X, "y": y, "D": D}


def _runner(gated: bool) -> Any:
    def run(inputs: dict[str, Any], method: Any, **kw: Any) -> Any:
        D = inputs["D"]
        D = D.numpy() if hasattr(D, "numpy") else D
        problem = ConvexReLUProblem(
            inputs["X"], inputs["y"], beta=1.0, arrangements=D, gated=gated
        )
        return solve_convex_relu(problem, method, **kw)

    return run


def entries(registry: Any) -> list[Any]:
    return [
        registry.Entry(
            "convex-relu-admm",
            ConvexReLUADMM,
            lambda **o: ConvexReLUADMM(**{"rho": 1.0, "rtol": 1e-10, **o}),
            _data,
            _runner(gated=False),
            nan_key="X",
            loose={"rtol": 1e-5},
            errors=(
                ({"rho": 0.0}, r"rho must be > 0, got 0\.0"),
                ({"relaxation": 2.5}, r"relaxation must be in \(0, 2\)"),
                ({"adapt_every": 0}, r"adapt_every must be a positive int"),
                ({"rtol": -1.0}, r"rtol must be >= 0"),
            ),
        ),
        registry.Entry(
            "convex-relu-fista",
            ConvexReLUFISTA,
            lambda **o: ConvexReLUFISTA(**{"rtol": 1e-12, **o}),
            _data,
            _runner(gated=True),
            nan_key="y",
            loose={"rtol": 1e-5},
            errors=(
                ({"rtol": -1.0}, r"rtol must be >= 0"),
                ({"max_steps": 0}, r"max_steps must be a positive int"),
            ),
        ),
    ]
