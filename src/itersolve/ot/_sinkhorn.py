"""Log-domain Sinkhorn, batched over problems that share a size."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import ClassVar

import torch

from itersolve._core.frontdoor import DefaultTolerance, resolve_rtol
from itersolve._core.iterate import IterativeMethod
from itersolve._core.solution import Status
from itersolve.ot._problem import (
    TransportProblem,
    log_marginal,
    row_error,
    sinkhorn_sweep,
)


@dataclass
class SinkhornState:
    x: torch.Tensor
    """Stacked log-scalings ``[u, v]``, shape ``(..., n + m)``."""
    log_rowsum: torch.Tensor
    error: torch.Tensor
    buf: torch.Tensor
    exact_passes: int = 0


def check_common(tol: float, patience: int | None) -> None:
    """Validate ``tol``; warn that a given ``patience`` no longer does anything.

    ``patience`` ended a run after that many steps without a new smallest
    error, which stopped Sinkhorn on plateaus it would have left (8x8 digits,
    L1 cost, reg 1e-3: flat at 1.3e-2 for ~2 000 sweeps, then converging).
    Stagnation is now the driver's frozen-iterate check (``stall_window``).
    A bad value still raises as before, so code that relied on the check keeps
    failing loudly rather than silently changing meaning.
    """
    if not tol > 0:
        raise ValueError(f"tol must be > 0, got {tol}")
    if patience is None:
        return
    if isinstance(patience, bool) or not isinstance(patience, int) or patience < 1:
        raise ValueError(f"patience must be a positive int, got {patience!r}")
    warnings.warn(
        "patience is deprecated and has no effect: a run now ends with "
        "STAGNATION only when the iterates stop changing at rounding level "
        "(the driver's frozen-iterate check, window stall_window); drop the "
        "argument",
        DeprecationWarning,
        stacklevel=4,
    )


@dataclass(frozen=True, kw_only=True)
class Sinkhorn(IterativeMethod):
    """Log-domain Sinkhorn for entropic optimal transport.

    Equivalent to ``ot.sinkhorn(a, b, M, reg, method="sinkhorn_log")`` (same
    iterates, same meaning of ``reg``), but stopping on the L1 marginal error,
    batched over problems sharing a size, and computing each half-step as one
    fused ``sum(exp(u_i + v_j - C_ij / reg))`` pass that falls back to a
    max-shifted ``logsumexp`` wherever a sum would over- or underflow, so it is
    stable at any ``reg`` (no NaN at ``reg = 1e-4 * max(C)``).

    One step is a full sweep ``u <- log a - LSE_j(v_j - C_ij / reg)``, then
    ``v <- log b - LSE_i(u_i - C_ij / reg)``, i.e. exact alternating maximisation
    of the dual (:func:`~itersolve.ot.lyapunov_potential`).

    Stopping rule (per problem of a batch; all must meet it)::

        ||P 1 - a||_1 + ||P^T 1 - b||_1 <= tol

    where the column term vanishes after the ``v`` half-step (up to rounding), so
    the row term is what is measured; it comes free with the next sweep.
    ``Status.STAGNATION`` only when the log-scalings stop changing at rounding
    level (the driver's frozen-iterate check every ``stall_window`` sweeps,
    default 32), which is how a tolerance below what the dtype can resolve
    (float32 cannot reach 1e-10) ends instead of looping. A flat error curve is
    not a stall: at small ``reg`` the error can sit on a plateau for thousands
    of sweeps while the scalings still move, then fall to the tolerance.

    Parameters
    ----------
    tol
        Target L1 marginal error (absolute; the marginals' total mass sets the
        scale).
    patience
        Deprecated, no effect (``DeprecationWarning`` when given); it stopped
        runs on error plateaus they would have left.

    References
    ----------
    Cuturi, "Sinkhorn distances", NeurIPS 2013; Peyre & Cuturi, "Computational
    Optimal Transport", 2019, section 4.4 (log-domain).

    Examples
    --------
    >>> import numpy as np
    >>> from itersolve import ot
    >>> rng = np.random.default_rng(0)
    >>> C = rng.random((4, 3))
    >>> sol = ot.transport(np.full(4, 0.25), np.full(3, 1 / 3), C,
    ...                    ot.Sinkhorn(tol=1e-12), reg=0.1)
    >>> sol.success, np.allclose(sol.x.sum(0), 1 / 3, atol=1e-12)
    (True, True)
    """

    ADVICE: ClassVar[dict[Status, str]] = {
        Status.STAGNATION: (
            "the log-scalings stopped changing at rounding level: the "
            "tolerance is below what this dtype resolves for this cost and "
            "reg (use float64, a larger tol, or a larger reg)"
        ),
        Status.MAX_STEPS: (
            "raise max_steps; at small reg use SinkhornNewtonSparse, which "
            "converges in far fewer iterations"
        ),
    }

    tol: float = DefaultTolerance(1e-9)
    patience: int | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        check_common(self.tol, self.patience)

    def default_max_steps(self, problem: TransportProblem) -> int:
        return 10_000

    def init(self, problem: TransportProblem, x0: torch.Tensor) -> SinkhornState:
        x = x0.clone()
        u, v = problem.split(x)
        buf = torch.empty(problem.plan_shape, dtype=x.dtype, device=x.device)
        log_colsum, fast_c = log_marginal(problem, u, v, -2, buf)
        v.add_(problem.log_b - log_colsum)
        log_rowsum, fast_r = log_marginal(problem, u, v, -1, buf)
        error = row_error(problem, log_rowsum)
        state = SinkhornState(x, log_rowsum, error, buf)
        state.exact_passes = (not fast_c) + (not fast_r)
        return state

    def step(self, problem: TransportProblem, state: SinkhornState) -> SinkhornState:
        u, v = problem.split(state.x)
        state.log_rowsum, fast = sinkhorn_sweep(
            problem, u, v, state.log_rowsum, state.buf
        )
        state.exact_passes += not fast
        state.error = row_error(problem, state.log_rowsum)
        return state

    def terminate(
        self, problem: TransportProblem, state: SinkhornState
    ) -> tuple[bool, Status]:
        if bool((state.error <= resolve_rtol(self.tol, state.x.dtype)).all()):
            return True, Status.SUCCESS
        return False, Status.SUCCESS

    def metrics(
        self, problem: TransportProblem, state: SinkhornState
    ) -> dict[str, float]:
        return {"marginal_error": float(state.error.max())}

    def stats(
        self, problem: TransportProblem, state: SinkhornState
    ) -> dict[str, float]:
        return {"logsumexp_fallbacks": state.exact_passes}
