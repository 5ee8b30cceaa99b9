"""GMRES on ``(I - T) phi = Sweep(q)`` with DSA as left preconditioner."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from itersolve._core.iterate import IterativeMethod
from itersolve._core.solution import Status
from itersolve.linear import GMRES, inner_solve
from itersolve.pde.transport._diffusion import dsa_operator
from itersolve.pde.transport._problem import SlabProblem
from itersolve.pde.transport._sweep import sweep

PRECONDITIONERS = (None, "dsa", "inconsistent_dsa")
_KRYLOV = GMRES(rtol=1e-10, restart=30)


@dataclass
class TransportGMRESState:
    x: torch.Tensor
    apply: Callable[[np.ndarray], np.ndarray]
    rhs: torch.Tensor
    counts: dict[str, int]
    rhs_norm: float = 1.0
    verified: bool = False
    status: Status | None = None
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
    Each step is one restart cycle of ``linear_solver`` (itersolve's
    :class:`~itersolve.linear.GMRES`, run through :func:`itersolve.linear.inner_solve`
    on the matrix-free operator, from the current flux).

    Stopping rule (on the preconditioned residual, confirmed by GMRES on a
    freshly computed residual), with ``rtol = linear_solver.rtol``::

        ||P (Sweep(q) - (I - T) phi)||_2 <= rtol * ||P Sweep(q)||_2

    Parameters
    ----------
    linear_solver
        The Krylov solver and its settings (default
        ``GMRES(rtol=1e-10, restart=30)``); a step runs ``restart`` of its
        iterations.
    preconditioner
        ``"dsa"`` (consistent diffusion synthetic acceleration), ``"inconsistent_dsa"``
        or ``None``.

    Examples
    --------
    >>> from itersolve.linear import GMRES
    >>> from itersolve.pde.transport import homogeneous_slab, transport_solve
    >>> method = TransportGMRES(linear_solver=GMRES(rtol=1e-10, restart=30))
    >>> sol = transport_solve(homogeneous_slab(20.0, 100, c=0.99), method)
    >>> sol.success, sol.stats["sweeps"] < 20
    (True, True)
    """

    linear_solver: GMRES = _KRYLOV
    preconditioner: str | None = "dsa"

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.linear_solver, GMRES):
            raise TypeError(
                "linear_solver must be a GMRES(...) instance, got "
                f"{type(self.linear_solver).__name__}"
            )
        if self.linear_solver.M is not None:
            raise ValueError(
                "linear_solver must not carry M: the preconditioner is "
                "TransportGMRES(preconditioner=...)"
            )
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
        rhs = torch.from_numpy(precondition(sweep(problem, problem.q).phi))
        state = TransportGMRESState(x0.clone(), apply, rhs, counts)
        state.rhs_norm = float(torch.linalg.vector_norm(rhs))
        state.verified = state.rhs_norm == 0.0 and not bool(x0.any())
        return state

    def step(
        self, problem: SlabProblem, state: TransportGMRESState
    ) -> TransportGMRESState:
        if state.rhs_norm == 0.0:
            state.x = torch.zeros_like(state.x)
            state.verified = True
            return state

        def matvec(phi: torch.Tensor) -> torch.Tensor:
            # A sweep takes one flux vector (GMRES may pass an (n, 1) block).
            out = state.apply(phi.reshape(-1).numpy())
            return torch.from_numpy(out).view(phi.shape)

        solution = inner_solve(
            self.linear_solver,
            matvec,
            state.rhs,
            x0=state.x,
            max_steps=self.linear_solver.restart,
        )
        state.inner_steps += solution.num_steps
        state.x = solution.x
        if solution.status is Status.SUCCESS:
            state.verified = True
        elif solution.status is not Status.MAX_STEPS:  # breakdown, non-finite
            state.status = solution.status
        return state

    def converged(self, problem: SlabProblem, state: TransportGMRESState) -> bool:
        return state.verified

    def metrics(
        self, problem: SlabProblem, state: TransportGMRESState
    ) -> dict[str, float]:
        # Only for traces and callbacks: the sweeps spent here are not counted.
        sweeps = dict(state.counts)
        residual = float(
            np.linalg.norm(state.rhs.numpy() - state.apply(state.x.numpy()))
        )
        state.counts.update(sweeps)
        return {
            "residual_norm": residual,
            "relative_residual": residual / max(state.rhs_norm, 1e-300),
        }

    def stats(
        self, problem: SlabProblem, state: TransportGMRESState
    ) -> dict[str, float]:
        return {**state.counts, "inner_steps": state.inner_steps}
