"""Contract entries of the least-squares methods (LevenbergMarquardt,
GaussNewton) through ``least_squares``."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from itersolve import Solution
from itersolve._core.iterate import IterativeMethod
from itersolve.optimize import (
    GaussNewton,
    LeastSquaresMethod,
    LevenbergMarquardt,
    least_squares,
)

BASES = {
    LeastSquaresMethod: "shared stopping rule (rtol, atol) and row bookkeeping "
    "of LevenbergMarquardt and GaussNewton; it has no step of its own",
}


def _data() -> dict[str, np.ndarray]:
    # y = 2 exp(-1.5 t) + 0.3 plus noise: a nonzero-residual exponential fit
    t = np.linspace(0.0, 3.0, 30)
    noise = 0.02 * np.random.default_rng(5).standard_normal(30)
    return {"t": t, "y": 2.0 * np.exp(-1.5 * t) + 0.3 + noise, "x0": np.ones(3)}


def _run(inputs: Any, method: IterativeMethod, **kw: Any) -> Solution:
    # the residual sees x as a torch tensor whatever kind x0 has
    t, y = (torch.as_tensor(inputs[key]) for key in ("t", "y"))

    def residual(p: torch.Tensor) -> torch.Tensor:
        return p[0] * torch.exp(-p[1] * t) + p[2] - y

    return least_squares(residual, inputs["x0"], method, **kw)


def entries(registry: Any) -> list[Any]:
    entry = registry._family(_data, _run, "x0", {"rtol": 1e-9}, {"rtol": 1e-4})
    errors = (
        ({"rtol": -1.0}, r"rtol must be >= 0, got -1\.0"),
        ({"rtol": 0.0, "atol": 0.0}, r"rtol and atol cannot both be 0"),
    )
    return [
        entry(
            "LevenbergMarquardt",
            LevenbergMarquardt,
            (
                *errors,
                (
                    {"initial_damping": -1.0},
                    r"initial_damping must be positive and finite, got -1\.0",
                ),
            ),
        ),
        entry(
            "GaussNewton",
            GaussNewton,
            (*errors, ({"c1": 0.0}, r"c1 must be in \(0, 1\), got 0\.0")),
        ),
    ]
