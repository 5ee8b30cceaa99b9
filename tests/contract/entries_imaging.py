"""Contract entries of the tomographic reconstruction methods (``SGP``,
``FISTATV``) through ``imaging.reconstruct``.

The problem: a 6 x 6 Shepp-Logan phantom seen from 8 angles, its sinogram
simulated analytically (so not exactly in the projector's range), and a
constant starting image. Without ``noise_level`` both methods stop on the
relative change ``||x_k - x_{k-1}|| <= rtol ||x_k||``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from itersolve.imaging import FISTATV, SGP, ParallelBeamProjector, reconstruct
from itersolve.problems import shepp_logan, simulate

N = 6
ANGLES = np.linspace(0, np.pi, 8, endpoint=False)

_ERRORS = (
    ({"lam": -1.0}, r"lam must be a finite number >= 0, got -1\.0"),
    ({"tau": 0.5}, r"tau must be a finite number >= 1, got 0\.5"),
    ({"rtol": -1.0}, r"rtol must be >= 0, got -1\.0"),
)


def _data() -> dict[str, np.ndarray]:
    return {
        "y": simulate(shepp_logan(N), ANGLES, 0.0, seed=0),
        "x0": np.full((N, N), 0.3),
    }


def _run(inputs: dict[str, Any], method: Any, **kw: Any) -> Any:
    projector = ParallelBeamProjector(N, ANGLES)
    return reconstruct(inputs["y"], projector, method, x0=inputs["x0"], **kw)


def entries(registry: Any) -> list[Any]:
    family = registry._family(
        _data,
        _run,
        "y",
        {"lam": 0.05, "rtol": 1e-10, "max_steps": 5000},
        {"rtol": 1e-6},
    )
    return [
        family(
            "imaging-sgp",
            SGP,
            (*_ERRORS, ({"bb_memory": 0}, r"bb_memory must be a positive int")),
        ),
        family(
            "imaging-sgp-kl",
            SGP,
            (*_ERRORS, ({"data_term": "l2"}, r"data_term must be one of")),
            extra={"data_term": "kullback_leibler"},
        ),
        family(
            "imaging-fista-tv",
            FISTATV,
            (*_ERRORS, ({"prox_steps": 0}, r"prox_steps must be a positive int")),
        ),
    ]
