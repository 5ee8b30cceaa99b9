"""Contract entries of the derivative-free methods under a ``Box``
(``CoveringDirectSearch``, ``DirectionalAttackSearch``).

Both run on the registry's regularised least-squares problem inside the box
``[-10, 10]^4`` (inactive at the minimiser); the hybrid attacks the objective
itself through its gradient oracle (no separate surrogate). Their stopping
rule is the poll size (``min_poll_size``), not a gradient tolerance.
"""

from __future__ import annotations

from typing import Any

from itersolve.optimize import (
    Box,
    CoveringDirectSearch,
    DirectionalAttackSearch,
    minimize,
)
from itersolve.problems import LeastSquares

_ERRORS = (
    ({"min_poll_size": 0.0}, r"min_poll_size must be positive, got 0\.0"),
    ({"covering_candidates": 0}, r"covering_candidates must be a positive int"),
    ({"sufficient_decrease": -1.0}, r"sufficient_decrease must be a finite"),
    ({"seed": -1}, r"seed must be a non-negative int"),
)


TOL32 = 3e-3
"""Comparing values, a direct search resolves ``x`` only to about
``sqrt(eps)`` (``3.5e-4`` in float32) times the problem's scale: the default
``1e-3`` of the gradient methods is below that."""


def _run(inputs: dict[str, Any], method: Any, **kw: Any) -> Any:
    problem = LeastSquares(inputs["A"], inputs["b"], l2=0.1)
    return minimize(problem, inputs["x0"], method, constraints=Box(-10.0, 10.0), **kw)


def entries(registry: Any) -> list[Any]:
    data = registry._least_squares
    tight = {"min_poll_size": 1e-9}
    loose = {"min_poll_size": 1e-6}
    return [
        registry.Entry(
            "covering-direct-search",
            CoveringDirectSearch,
            lambda **o: CoveringDirectSearch(**{**tight, **o}),
            data,
            _run,
            nan_key="x0",
            loose=loose,
            errors=_ERRORS,
            seeded=True,
            tol32=TOL32,
        ),
        registry.Entry(
            "directional-attack-search",
            DirectionalAttackSearch,
            lambda **o: DirectionalAttackSearch(**{**tight, **o}),
            data,
            _run,
            nan_key="x0",
            loose=loose,
            errors=(
                ({"attack": "cw"}, r"attack must be one of"),
                ({"attack_steps": 0}, r"attack_steps must be a positive int"),
                ({"shrink": 1.0}, r"shrink must be a finite number > 1"),
                ({"max_attack_radius": 0.0}, r"max_attack_radius must be a positive"),
            ),
            seeded=True,
            tol32=TOL32,
        ),
    ]
