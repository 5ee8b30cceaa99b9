"""Stochastic hypergradient descent with inner SGD and a CG adjoint solve."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import Tensor

from itersolve._core.solution import Status
from itersolve.bilevel._base import (
    BilevelMethod,
    BilevelRun,
    BilevelState,
    check_step_size,
)
from itersolve.bilevel._bsvrb import FATAL_INNER, adjoint_cg
from itersolve.bilevel._problem import MultiBlockBilevelProblem, check_positive_int
from itersolve.linear import CG


@dataclass
class StochasticHypergradientState(BilevelState):
    v: Tensor = field(default_factory=lambda: torch.empty(0))
    G: Tensor = field(default_factory=lambda: torch.empty(0))
    inner_matvecs: int = 0
    inner_solves: int = 0
    inner_unconverged: int = 0


@dataclass(frozen=True, kw_only=True)
class StochasticHypergradient(BilevelMethod):
    """Stochastic hypergradient descent with a CG adjoint (stocBiO-like).

    Per step, ``I`` blocks are sampled; each runs ``inner_steps`` SGD steps
    ``y_i <- y_i - tau grad_y g_i(x, y_i; xi)`` (fresh minibatches, warm
    start), then one CG solve (the shared engine,
    :func:`itersolve.linear.inner_solve`) of the block-diagonal system
    ``grad^2_yy g_i(x, y_i; xi) v_i = grad_y f_i(x, y_i; xi')`` on minibatch
    Hessian-vector products, warm-started from the block's last ``v_i``; then
    ``G = (1/I) sum_i [grad_x f_i - grad^2_xy g_i v_i]`` and ``x <- x - eta G``.
    A CG that stops on its ``max_steps`` is accepted (a truncated solve, as
    stocBiO's fixed Neumann series; counted in ``stats["inner_unconverged"]``);
    ``NOT_POSITIVE_DEFINITE`` (the lower level is not strongly convex at the
    iterate), ``BREAKDOWN`` or ``NONFINITE`` ends the run with that status.

    Compare with: stocBiO (Ji, Yang, Liang, ICML 2021), which uses a Neumann
    series where this uses CG.

    Stopping rule: the budget of :func:`~itersolve.bilevel.solve`; one epoch
    counts the ``inner_steps`` lower minibatches of every step.

    Parameters
    ----------
    blocks_per_iter, batch_size, eta
        As for :class:`~itersolve.bilevel.BSVRB`.
    tau
        Inner SGD step size.
    inner_steps
        SGD steps per sampled block per step.
    linear_solver
        The adjoint CG (default ``CG(rtol=1e-4, max_steps=20)``).

    Examples
    --------
    >>> import torch
    >>> from itersolve.bilevel import StochasticHypergradient, solve
    >>> from itersolve.problems import quadratic_bilevel
    >>> p = quadratic_bilevel(m=4, dim_x=3, dim_y=5, n=32, seed=0)
    >>> x0 = torch.zeros(3, dtype=torch.float64)
    >>> method = StochasticHypergradient(
    ...     blocks_per_iter=2, batch_size=8, eta=0.1, tau=0.3
    ... )
    >>> sol = solve(p, x0, method, epochs=5)
    >>> sol.success, p.hyperobjective(sol.x) < p.hyperobjective(x0)
    (True, True)
    """

    ADVICE: ClassVar[dict[Status, str]] = {
        Status.NOT_POSITIVE_DEFINITE: (
            "CG met curvature <= 0 in a lower-level Hessian: g_i is not "
            "strongly convex at the iterate"
        ),
    }

    tau: float = 0.5
    inner_steps: int = 5
    linear_solver: Any = None

    def __post_init__(self) -> None:
        super().__post_init__()
        check_step_size(self.tau, "tau")
        check_positive_int(self.inner_steps, "inner_steps")
        if self.linear_solver is None:
            object.__setattr__(self, "linear_solver", CG(rtol=1e-4, max_steps=20))
        elif not isinstance(self.linear_solver, CG):
            raise TypeError(
                "linear_solver must be a CG (e.g. CG(rtol=1e-6)), got "
                f"{type(self.linear_solver).__name__}"
            )

    def lower_samples_per_step(self) -> int:
        return self.inner_steps

    def _hypergradient(
        self,
        p: MultiBlockBilevelProblem,
        state: StochasticHypergradientState,
        blocks: Tensor,
        x: Tensor,
        y: Tensor,
    ) -> Tensor | None:
        """``G`` on the given blocks (``None`` and ``state.status`` set when
        the adjoint CG fails)."""
        gen = state.generator
        lower = self.sample(len(blocks), p.n_lower, gen)
        upper = self.sample(len(blocks), p.n_upper, gen)
        gx, gy = p.upper_grads(blocks, x, y, upper)
        v, status, matvecs = adjoint_cg(
            p, self.linear_solver, blocks, x, y, gy, lower, v0=state.v[blocks]
        )
        state.inner_matvecs += matvecs
        state.inner_solves += 1
        if status in FATAL_INNER:
            state.status = status
            return None
        if status is not Status.SUCCESS:
            state.inner_unconverged += 1
        v_all = state.v.clone()
        v_all[blocks] = v
        state.v = v_all
        return (gx - p.lower_cross(blocks, x, y, v, lower)).mean(0)

    def init(self, problem: BilevelRun, x0: Tensor) -> StochasticHypergradientState:
        p = problem.problem
        gen = torch.Generator().manual_seed(problem.seed)
        y = problem.y0.clone()
        state = StochasticHypergradientState(
            x=x0, y=y, z=torch.zeros_like(x0), generator=gen, v=torch.zeros_like(y)
        )
        G = self._hypergradient(p, state, p.all_blocks(), x0, y)
        state.G = state.z = torch.zeros_like(x0) if G is None else G
        return state

    def step(
        self, problem: BilevelRun, state: StochasticHypergradientState
    ) -> StochasticHypergradientState:
        p = problem.problem
        gen = state.generator
        b = self.sample_blocks(p, gen)
        yb = state.y[b]
        for _ in range(self.inner_steps):
            lower = self.sample(len(b), p.n_lower, gen)
            yb = yb - self.tau * p.lower_grad(b, state.x, yb, lower)
        y = state.y.clone()
        y[b] = yb
        state.y = y
        G = self._hypergradient(p, state, b, state.x, yb)
        if G is not None:
            state.G = state.z = G
            state.x = state.x - self.eta * G
        state.k += 1
        return state

    def stats(
        self, problem: BilevelRun, state: StochasticHypergradientState
    ) -> dict[str, float]:
        return {
            "inner_matvecs": state.inner_matvecs,
            "inner_solves": state.inner_solves,
            "inner_unconverged": state.inner_unconverged,
        }
