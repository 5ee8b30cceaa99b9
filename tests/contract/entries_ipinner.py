"""Contract entries of the ensemble Kalman PINN training (``train_enkf_pinn``).

A width-4 Eulerian PINN ensemble (3 members) on Burgers with 6 noisy sensors,
on a 6 x 3 collocation grid given as the inputs (their kind and dtype are the
answer's); two outer iterations of two Adam steps each. The budget is the
stopping rule, so a full run is ``SUCCESS``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from itersolve.pde import PINN, BurgersProblem, EnsembleKalmanPINN, train_enkf_pinn

_PROBLEM = BurgersProblem(eval_x=8, eval_t=3).with_noisy_data(6, noise=0.1, seed=0)

_ERRORS = (
    ({"ensemble_size": 1}, r"ensemble_size must be an int >= 2, got 1"),
    ({"iterations": 0}, r"iterations must be an int >= 1, got 0"),
    ({"inflation": 0.5}, r"inflation must be finite and >= 1, got 0\.5"),
    ({"update": "x"}, r"update must be 'outputs' or 'parameters', got 'x'"),
)


def _data() -> dict[str, np.ndarray]:
    return {
        "x": np.linspace(-1.0, 1.0, 6, endpoint=False),
        "t": np.array([0.25, 0.5, 1.0]),
    }


def _run(inputs: dict[str, Any], method: Any, **kw: Any) -> Any:
    torch.manual_seed(0)
    model = PINN(width=4, depth=1)
    return train_enkf_pinn(
        model, _PROBLEM, method, collocation=(inputs["x"], inputs["t"]), **kw
    )


def entries(registry: Any) -> list[Any]:
    entry = registry._family(
        _data,
        _run,
        "x",
        {"ensemble_size": 3, "iterations": 2, "adam_steps": 2, "lr": 1e-2},
        {},
    )
    return [
        entry("enkf-pinn-outputs", EnsembleKalmanPINN, _ERRORS),
        entry(
            "enkf-pinn-parameters",
            EnsembleKalmanPINN,
            _ERRORS,
            extra={"update": "parameters"},
        ),
    ]
