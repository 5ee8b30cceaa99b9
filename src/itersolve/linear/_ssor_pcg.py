"""Conjugate gradients preconditioned by SSOR (SSOR-PCG)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from itersolve._core.frontdoor import DefaultTolerance, tolerance_field
from itersolve._core.iterate import IterativeMethod
from itersolve._core.solution import Status
from itersolve.linear._cg import CG
from itersolve.linear._problem import RELAXATION_RTOL, LinearProblem
from itersolve.linear._relaxation import validate_omega
from itersolve.linear._relaxation_kernels import (
    BACKENDS,
    explicit_matrix,
    matrix_is_finite,
)
from itersolve.linear._ssor_preconditioner import SSORPreconditioner


@dataclass(frozen=True, kw_only=True)
class SSORPCG(IterativeMethod):
    """CG preconditioned by :class:`SSORPreconditioner` with relaxation ``omega``.

    The preconditioner is built in ``init`` from the system's matrix; the
    iteration is :class:`CG`'s with ``M = SSORPreconditioner(A, omega)``. The
    method the Learning-to-Relax paper tunes ``omega`` for on the heat equation.

    Equivalent to / compare with ``scipy.sparse.linalg.cg(A, b, M=...)`` with the
    same preconditioner, and MATLAB ``pcg(A, b, tol, maxit, M1, M2)`` in the
    reference ``ssor_pcg.m``.

    Stopping rule, per column ``j`` (CG's)::

        ||b_j - A x_j|| <= max(rtol * ||b_j||, atol)

    Parameters
    ----------
    omega
        Relaxation factor in (0, 2).
    rtol, atol
        Relative and absolute tolerances of CG's rule. ``rtol`` defaults to
        1e-8 (the relaxation family's), lifted to ``100 eps`` in low precision
        (float32: 1.2e-5); ``None`` means that default (see
        :mod:`itersolve.linear`).
    backend
        Backend of the preconditioner, as in :class:`SOR`.

    References
    ----------
    Khodak et al., *Learning to Relax*, ICLR 2024, §5 (SSOR-preconditioned CG).

    Examples
    --------
    >>> import numpy as np, itersolve
    >>> from itersolve.problems import poisson
    >>> sol = itersolve.linear_solve(poisson(12, dim=2), np.ones(144),
    ...                              itersolve.linear.SSORPCG(omega=1.4, rtol=1e-10))
    >>> sol.success
    True
    """

    omega: float = 1.0
    rtol: float = DefaultTolerance(RELAXATION_RTOL)
    atol: float = 0.0
    backend: str = "auto"

    def __post_init__(self) -> None:
        super().__post_init__()
        tolerance_field(self, RELAXATION_RTOL)
        validate_omega(self.omega)
        if self.backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {self.backend!r}")
        self._cg(None)  # validates rtol / atol with CG's messages

    def _cg(self, M: Any) -> CG:
        return CG(rtol=self.rtol, atol=self.atol, M=M)

    def default_max_steps(self, problem: LinearProblem) -> int:
        return 10_000

    def init(self, problem: LinearProblem, x0: Any) -> Any:
        M = SSORPreconditioner(problem.A, self.omega, backend=self.backend)
        state = self._cg(M).init(problem, x0)
        if not matrix_is_finite(explicit_matrix(problem.A, "SSORPCG")):
            state.status = Status.NONFINITE_INPUT
        return state

    def step(self, problem: LinearProblem, state: Any) -> Any:
        return self._cg(None).step(problem, state)

    def terminate(self, problem: LinearProblem, state: Any) -> tuple[bool, Status]:
        return self._cg(None).terminate(problem, state)

    def metrics(self, problem: LinearProblem, state: Any) -> dict[str, float]:
        return self._cg(None).metrics(problem, state)

    def stats(self, problem: LinearProblem, state: Any) -> dict[str, float]:
        stats = self._cg(None).stats(problem, state)
        stats["preconditioner_applications"] = state.precondition.applications
        return stats
