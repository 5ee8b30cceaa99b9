"""Contract entries of the PINN training loop (``itersolve.pde.train_pinn``).

A width-4 Eulerian PINN on a 6 x 3 collocation grid (``u_t + u_x = 0``),
freshly built from ``torch.manual_seed(0)`` for every run; the collocation
arrays are the inputs (their kind and dtype are the answer's). Six Adam steps
then two L-BFGS steps: the budget is the stopping rule, so a full run is
``SUCCESS``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from itersolve.pde import PINN, AdamThenLBFGS, ConvectionProblem, train_pinn

_PROBLEM = ConvectionProblem(1.0, eval_x=8, eval_t=3)

_ERRORS = (
    ({"lr": 0.0}, r"lr must be finite and > 0, got 0\.0"),
    ({"adam_steps": -1}, r"adam_steps must be an int >= 0, got -1"),
    ({"lbfgs_steps": 1.5}, r"lbfgs_steps must be an int >= 0, got 1\.5"),
    ({"history_size": 0}, r"history_size must be an int >= 1, got 0"),
)


def _data() -> dict[str, np.ndarray]:
    return {
        "x": np.linspace(0.0, 2 * np.pi, 6, endpoint=False),
        "t": np.array([0.25, 0.5, 1.0]),
    }


def _run(inputs: dict[str, Any], method: Any, **kw: Any) -> Any:
    torch.manual_seed(0)
    model = PINN(width=4, depth=1)
    return train_pinn(
        model, _PROBLEM, method, collocation=(inputs["x"], inputs["t"]), **kw
    )


def entries(registry: Any) -> list[Any]:
    entry = registry._family(
        _data, _run, "x", {"adam_steps": 6, "lbfgs_steps": 2, "lr": 1e-2}, {}
    )
    return [entry("adam-then-lbfgs", AdamThenLBFGS, _ERRORS)]
