"""GMRES on ``(I - T) phi = Sweep(q)`` with DSA as left preconditioner."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.sparse.linalg as spla
import torch

from itersolve._core.iterate import IterativeMethod
from itersolve._core.solution import Status
from itersolve.pde.transport._diffusion import dsa_operator
from itersolve.pde.transport._slab import SlabProblem
from itersolve.pde.transport._sweep import sweep

PRECONDITIONERS = (None, "dsa", "inconsistent_dsa")


def _gmres_cycle(
    matvec: Callable[[np.ndarray], np.ndarray],
    b: np.ndarray,
    x0: np.ndarray,
    restart: int,
    rtol: float,
) -> tuple[np.ndarray, bool, int]:
    """One restart cycle of GMRES(restart) from ``x0``: (x, converged, inner steps).

    The single place the Krylov kernel is chosen (scipy's gmres today).
    """
    n = b.size
    op = spla.LinearOperator((n, n), matvec=matvec, dtype=np.float64)
    inner = [0]

    def count(_: float) -> None:
        inner[0] += 1

    x, info = spla.gmres(
        op,
        b,
        x0=x0,
        rtol=rtol,
        atol=0.0,
        restart=restart,
        maxiter=1,
        callback=count,
        callback_type="pr_norm",
    )
    return x, info == 0, inner[0]


@dataclass
class TransportGMRESState:
    x: torch.Tensor
    apply: Callable[[np.ndarray], np.ndarray]
    rhs: np.ndarray
    counts: dict[str, int]
    residual: float = float("inf")
    rhs_norm: float = 1.0
    converged: bool = False
    inner_steps: int = 0


@dataclass(frozen=True, kw_only=True)
class TransportGMRES(IterativeMethod):
    """Restarted GMRES on the transport fixed point, DSA-preconditioned.

    Compare with: :class:`SourceIteration` (``acceleration="dsa"``) and the direct
    solve :func:`direct_transport_solve`.

    Solves ``P (I - T) phi = P Sweep(q)`` where ``T phi = Sweep(sigma_s phi)`` and
    ``P = I + C`` with ``C`` the DSA diffusion correction (so one preconditioned
    matvec is one sweep plus one tridiagonal solve, and the Richardson iteration
    on this system is exactly DSA-accelerated source iteration). Warsa, Wareing
    & Morel (2004) show the Krylov form stays robust where DSA alone degrades.
    Each step is one GMRES(``restart``) cycle; the Krylov kernel is
    ``scipy.sparse.linalg.gmres``.

    Stopping rule (on the preconditioned residual)::

        ||P (Sweep(q) - (I - T) phi)||_2 <= rtol * ||P Sweep(q)||_2

    Examples
    --------
    >>> from itersolve.pde.transport import homogeneous_slab, transport_solve
    >>> sol = transport_solve(homogeneous_slab(20.0, 100, c=0.99), TransportGMRES())
    >>> sol.success, sol.stats["sweeps"] < 20
    (True, True)
    """

    rtol: float = 1e-10
    restart: int = 30
    preconditioner: str | None = "dsa"

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0 < self.rtol < 1:
            raise ValueError(f"rtol must be in (0, 1), got {self.rtol}")
        if not isinstance(self.restart, int) or self.restart < 1:
            raise ValueError(f"restart must be a positive int, got {self.restart!r}")
        if self.preconditioner not in PRECONDITIONERS:
            raise ValueError(
                f"preconditioner must be one of {PRECONDITIONERS}, "
                f"got {self.preconditioner!r}"
            )

    def default_max_steps(self, problem: SlabProblem) -> int:
        return 200

    def init(self, problem: SlabProblem, x0: torch.Tensor) -> TransportGMRESState:
        counts = {"sweeps": 0, "diffusion_solves": 0}
        correction = (
            None
            if self.preconditioner is None
            else dsa_operator(problem, consistent=self.preconditioner == "dsa")
        )

        def precondition(v: np.ndarray) -> np.ndarray:
            if correction is None:
                return v
            counts["diffusion_solves"] += 1
            return v + correction.apply(v)

        def apply(phi: np.ndarray) -> np.ndarray:
            counts["sweeps"] += 1
            return precondition(phi - sweep(problem, problem.sigma_s * phi).phi)

        counts["sweeps"] += 1
        rhs = precondition(sweep(problem, problem.q).phi)
        state = TransportGMRESState(x0.clone(), apply, rhs, counts)
        state.rhs_norm = float(np.linalg.norm(rhs))
        return state

    def step(
        self, problem: SlabProblem, state: TransportGMRESState
    ) -> TransportGMRESState:
        if state.rhs_norm == 0.0:
            state.x = torch.zeros_like(state.x)
            state.converged = True
            return state
        x, converged, inner = _gmres_cycle(
            state.apply, state.rhs, state.x.numpy(), self.restart, self.rtol
        )
        state.inner_steps += inner
        state.x = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float64))
        state.residual = float(np.linalg.norm(state.rhs - state.apply(x)))
        state.converged = converged or state.residual <= self.rtol * state.rhs_norm
        return state

    def terminate(
        self, problem: SlabProblem, state: TransportGMRESState
    ) -> tuple[bool, Status]:
        if state.rhs_norm == 0.0 and not bool(state.x.any()):
            return True, Status.SUCCESS
        return state.converged, Status.SUCCESS

    def metrics(
        self, problem: SlabProblem, state: TransportGMRESState
    ) -> dict[str, float]:
        return {
            "residual_norm": state.residual,
            "relative_residual": state.residual / max(state.rhs_norm, 1e-300),
        }

    def stats(
        self, problem: SlabProblem, state: TransportGMRESState
    ) -> dict[str, float]:
        return {**state.counts, "inner_steps": state.inner_steps}
