"""FISTA with adaptive restart on the gated (constraint-free) convex program."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from itersolve._core.frontdoor import (
    check_tolerances,
    resolve_rtol,
    tolerance_field,
)
from itersolve._core.iterate import IterativeMethod
from itersolve._core.solution import Status
from itersolve.optimize.convex_relu._problem import ConvexReLUProblem
from itersolve.optimize.convex_relu._prox import group_soft_threshold


def lipschitz_constant(problem: ConvexReLUProblem) -> float:
    """``||F||_2^2``, the Lipschitz constant of the loss gradient ``F^T (F x -
    y)``: the top eigenvalue of ``F F^T = K (X X^T) * (D D^T)`` (``n x n``) or
    of ``F^T F`` (``K P d`` square), whichever is smaller."""
    K, P, d = problem.shape
    X, D = problem.X, problem.D
    if problem.n <= K * P * d:
        gram = K * (X @ X.T) * (D @ D.T)
    else:
        F = (
            problem.signs[None, :, None, None] * D[:, None, :, None] * X[:, None, None]
        ).reshape(problem.n, K * P * d)
        gram = F.T @ F
    return float(torch.linalg.eigvalsh(gram)[-1])


@dataclass
class FISTAState:
    """``x`` the last proximal-gradient point, ``y`` the extrapolated one,
    ``t`` the momentum sequence; ``mapping`` is ``L ||y - x||`` of the last
    step (the gradient-mapping norm the stopping rule reads)."""

    x: torch.Tensor
    y: torch.Tensor
    t: float
    L: float
    fty: torch.Tensor
    threshold: float
    mapping: float = math.inf
    restarts: int = 0
    status: Status | None = None


@dataclass(frozen=True, kw_only=True)
class ConvexReLUFISTA(IterativeMethod):
    """FISTA with adaptive (gradient) restart on the gated convex ReLU program.

    The paper's second algorithm: drop the arrangement constraints
    (``ConvexReLUProblem(..., gated=True)``) and solve the group-lasso problem
    ``1/2 ||F u - y||^2 + beta sum ||u_i||`` by a first-order method; here
    FISTA (Beck & Teboulle 2009) with step ``1 / L``, ``L = ||F||_2^2``, and
    O'Donoghue & Candes' restart when ``(y - x+) . (x+ - x) > 0``. Equivalent
    to / compare with pyscnn's R-FISTA on its gated-ReLU model.

    Stopping rule, on the gradient mapping at the extrapolated point::

        L ||y_k - prox(y_k - grad f(y_k) / L)|| <= max(rtol ||F^T y||, atol)

    Parameters
    ----------
    rtol, atol
        Tolerances of the stopping rule (``rtol=None``: 1e-6, lifted for
        float32).
    max_steps, time_limit, check_every, stall_window
        Driver limits (:class:`~itersolve.IterativeMethod`); 5000 steps by
        default.

    References
    ----------
    Y. Bai, T. Gautam, S. Sojoudi, SIAM J. Math. Data Sci. 2022 (section on the
    sampled convex program); A. Beck, M. Teboulle, SIAM J. Imaging Sci. 2009;
    B. O'Donoghue, E. Candes, Found. Comput. Math. 2015.

    Examples
    --------
    >>> import numpy as np
    >>> from itersolve.optimize.convex_relu import (
    ...     ConvexReLUFISTA, ConvexReLUProblem, solve_convex_relu)
    >>> rng = np.random.default_rng(0)
    >>> X, y = rng.standard_normal((20, 2)), rng.standard_normal(20)
    >>> problem = ConvexReLUProblem(X, y, beta=1.0, arrangements=3, gated=True)
    >>> sol = solve_convex_relu(problem, ConvexReLUFISTA(rtol=1e-8))
    >>> sol.success, sol.x.shape
    (True, (1, 3, 3))
    """

    rtol: float | None = None
    atol: float = 0.0

    ADVICE: ClassVar[dict[Status, str]] = {
        Status.MAX_STEPS: "raise max_steps; FISTA's rate depends on the "
        "conditioning of F, ConvexReLUADMM factors it instead"
    }

    def __post_init__(self) -> None:
        super().__post_init__()
        tolerance_field(self, 1e-6)
        assert self.rtol is not None
        check_tolerances(self.rtol, self.atol)

    def default_max_steps(self, problem: Any) -> int:
        return 5000

    def check_problem(self, problem: ConvexReLUProblem) -> None:
        """FISTA has no projection onto the arrangement constraints."""
        if not problem.gated:
            raise ValueError(
                "ConvexReLUFISTA solves the gated program only (a projection onto "
                "the arrangement constraints has no closed form): build the "
                "problem with gated=True, or use ConvexReLUADMM"
            )

    def init(self, problem: ConvexReLUProblem, x0: torch.Tensor) -> FISTAState:
        self.check_problem(problem)
        fty = problem.adjoint(problem.y)
        assert self.rtol is not None
        rtol = resolve_rtol(self.rtol, x0.dtype)
        threshold = max(rtol * float(torch.linalg.vector_norm(fty)), self.atol)
        L = lipschitz_constant(problem)
        return FISTAState(x0.clone(), x0.clone(), 1.0, L, fty, threshold)

    def step(self, problem: ConvexReLUProblem, state: FISTAState) -> FISTAState:
        y, L = state.y, state.L
        grad = problem.adjoint(problem.forward(y)) - state.fty
        x_new = group_soft_threshold(y - grad / L, problem.beta / L)
        gap = y - x_new
        mapping = L * float(torch.linalg.vector_norm(gap))
        restarts = state.restarts
        if float(torch.sum(gap * (x_new - state.x))) > 0:
            t_new, y_new = 1.0, x_new
            restarts += 1
        else:
            t_new = 0.5 * (1.0 + math.sqrt(1.0 + 4.0 * state.t**2))
            y_new = x_new + ((state.t - 1.0) / t_new) * (x_new - state.x)
        return FISTAState(
            x_new, y_new, t_new, L, state.fty, state.threshold, mapping, restarts
        )

    def converged(self, problem: ConvexReLUProblem, state: FISTAState) -> bool:
        return state.mapping <= state.threshold

    def metrics(
        self, problem: ConvexReLUProblem, state: FISTAState
    ) -> dict[str, float]:
        return {
            "objective": float(problem.value(state.x)),
            "gradient_mapping": state.mapping,
        }

    def stats(self, problem: ConvexReLUProblem, state: FISTAState) -> dict[str, float]:
        return {"restarts": state.restarts, "lipschitz": state.L}
