"""Contract entries of the equality-constrained SQP family (AdaSketchSQP)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from itersolve import Solution, Status
from itersolve._core.iterate import IterativeMethod
from itersolve.optimize import AdaSketchSQP, EqualityConstraints, minimize


def _data() -> dict[str, np.ndarray]:
    # min ||x - p||^2 s.t. A x = b: closed form, a few SQP steps
    rng = np.random.default_rng(3)
    return {
        "A": rng.standard_normal((2, 4)),
        "b": rng.standard_normal(2),
        "p": rng.standard_normal(4),
        "x0": np.zeros(4),
    }


def _run(inputs: Any, method: IterativeMethod, **kw: Any) -> Solution:
    # the functions see x as a torch tensor whatever kind x0 has
    A, b, p = (torch.as_tensor(inputs[key]) for key in ("A", "b", "p"))
    constraints = EqualityConstraints(lambda x: A @ x - b)
    return minimize(
        lambda x: ((x - p) ** 2).sum(),
        inputs["x0"],
        method,
        constraints=constraints,
        **kw,
    )


def entries(registry: Any) -> list[Any]:
    entry = registry._family(_data, _run, "x0", {"atol": 1e-10}, {"atol": 1e-4})
    errors = (
        ({"atol": -1.0}, r"atol must be >= 0, got -1\.0"),
        ({"inner_rtol": 2.0}, r"inner_rtol must be in \(0, 1\) or None, got 2\.0"),
        ({"linear_solver": "lu"}, r"linear_solver must be 'direct' or a solver"),
        ({"beta": 0.7}, r"beta must be in \(0, 0\.5\), got 0\.7"),
        ({"nu": 1.0}, r"nu must be > 1, got 1\.0"),
        ({"eta1": 0.0}, r"eta1 must be positive and finite, got 0\.0"),
    )
    return [
        entry(
            "AdaSketchSQP",
            AdaSketchSQP,
            errors,
            seeded=True,
        ),
        entry(
            "AdaSketchSQP-direct",
            AdaSketchSQP,
            errors[:1],
            extra={"linear_solver": "direct"},
            # a quadratic with linear constraints: one exact Newton-KKT step
            one_step=Status.SUCCESS,
        ),
    ]
