"""RSVRB: randomized stochastic variance-reduced bilevel baseline."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import torch
from torch import Tensor

from itersolve._core.estimators import check_weight, recursive_momentum
from itersolve._core.solution import Status
from itersolve.bilevel._base import (
    BilevelMethod,
    BilevelRun,
    BilevelState,
    check_projection,
    check_step_size,
    project_hessians,
    solve_spd,
)
from itersolve.bilevel._problem import MultiBlockBilevelProblem


@dataclass
class RSVRBState(BilevelState):
    x_prev: Tensor = field(default_factory=lambda: torch.empty(0))
    y_prev: Tensor = field(default_factory=lambda: torch.empty(0))
    s: Tensor = field(default_factory=lambda: torch.empty(0))
    w: Tensor = field(default_factory=lambda: torch.empty(0))
    q: Tensor = field(default_factory=lambda: torch.empty(0))
    J: Tensor = field(default_factory=lambda: torch.empty(0))
    H: Tensor = field(default_factory=lambda: torch.empty(0))
    G: Tensor = field(default_factory=lambda: torch.empty(0))


@dataclass(frozen=True, kw_only=True)
class RSVRB(BilevelMethod):
    """Randomized stochastic variance-reduced bilevel method (Guo et al.), the
    baseline of BSVRB's experiments.

    Every block keeps STORM estimates (weight ``beta``) of ``grad_y g_i``
    (``s_i``), ``grad_y f_i``, ``grad_x f_i``, the cross Jacobian
    ``grad^2_xy g_i`` (a ``dim_x x dim_y`` matrix per block) and the Hessian
    ``grad^2_yy g_i`` (projected as in :class:`BSVRB`). Per step ``I`` blocks
    are sampled and their oracles, weighted ``m / I`` (unbiased for the full
    sum), enter the recursion ``d_i <- (1 - beta)(d_i - o_i(old)) + o_i(new)``;
    unsampled blocks' estimates decay by ``1 - beta``. The hypergradient
    ``G = (1/I) sum_{i in I'} [q_i - J_i H_i^-1 w_i]`` uses a second,
    independent sample ``I'`` of blocks; ``z`` is STORM on ``G``; every block
    moves ``y_i <- y_i - tau s_i``; ``x <- x - eta z``.

    Compare with: ``RSVRB()`` in the BSVRB reference code
    (``quanqihu/BSVRB_ICML2023``, ``HO/main.py``).

    Stopping rule: the budget of :func:`~itersolve.bilevel.solve`.

    Parameters
    ----------
    blocks_per_iter, batch_size, eta
        As for :class:`~itersolve.bilevel.BSVRB`.
    tau
        Lower step size.
    beta
        STORM weight of every estimator, in (0, 1].
    hessian_projection, h_bound
        As for :class:`~itersolve.bilevel.BSVRB`.

    References
    ----------
    Z. Guo, Q. Hu, L. Zhang, T. Yang, "Randomized Stochastic Variance-Reduced
    Methods for Multi-Task Stochastic Bilevel Optimization", arXiv:2105.02266.

    Examples
    --------
    >>> import torch
    >>> from itersolve.bilevel import RSVRB, solve
    >>> from itersolve.problems import quadratic_bilevel
    >>> p = quadratic_bilevel(m=4, dim_x=3, dim_y=5, n=32, seed=0)
    >>> x0 = torch.zeros(3, dtype=torch.float64)
    >>> method = RSVRB(blocks_per_iter=2, batch_size=8, eta=0.1, tau=0.3)
    >>> sol = solve(p, x0, method, epochs=5)
    >>> sol.success, p.hyperobjective(sol.x) < p.hyperobjective(x0)
    (True, True)
    """

    ADVICE: ClassVar[dict[Status, str]] = {}

    tau: float = 0.5
    beta: float = 0.9
    hessian_projection: str = "eig"
    h_bound: float = 10.0

    def __post_init__(self) -> None:
        super().__post_init__()
        check_step_size(self.tau, "tau")
        check_weight(self.beta, "beta")
        check_projection(self.hessian_projection)
        check_step_size(self.h_bound, "h_bound")

    def _oracles(
        self,
        p: MultiBlockBilevelProblem,
        blocks: Tensor,
        x: Tensor,
        y: Tensor,
        lower: Tensor | None,
        upper: Tensor | None,
    ) -> tuple[Tensor, ...]:
        gx, gy = p.upper_grads(blocks, x, y, upper)
        return (
            p.lower_grad(blocks, x, y, lower),
            gy,
            gx,
            p.lower_cross_jacobian(blocks, x, y, lower),
            p.lower_hessian(blocks, x, y, lower),
        )

    def _project(self, H: Tensor, p: MultiBlockBilevelProblem) -> Tensor:
        return project_hessians(H, p.mu, p.L, self.hessian_projection, self.h_bound)

    @staticmethod
    def _direction(
        blocks: Tensor, q: Tensor, J: Tensor, H: Tensor, w: Tensor
    ) -> Tensor:
        inner = solve_spd(H[blocks], w[blocks])
        return (q[blocks] - torch.einsum("ixd,id->ix", J[blocks], inner)).mean(0)

    def init(self, problem: BilevelRun, x0: Tensor) -> RSVRBState:
        p = problem.problem
        gen = torch.Generator().manual_seed(problem.seed)
        blocks = p.all_blocks()
        y = problem.y0.clone()
        lower = self.sample(p.m, p.n_lower, gen)
        upper = self.sample(p.m, p.n_upper, gen)
        s, w, q, J, H = self._oracles(p, blocks, x0, y, lower, upper)
        state = RSVRBState(
            x=x0,
            y=y,
            z=torch.zeros_like(x0),
            generator=gen,
            x_prev=x0,
            y_prev=y,
            s=s,
            w=w,
            q=q,
            J=J,
        )
        if bool((torch.linalg.cholesky_ex(H)[1] != 0).any()):
            state.status = Status.NOT_POSITIVE_DEFINITE
            state.H = H
            state.G = state.z
            return state
        state.H = self._project(H, p)
        state.G = state.z = self._direction(blocks, q, J, state.H, w)
        return state

    def step(self, problem: BilevelRun, state: RSVRBState) -> RSVRBState:
        p = problem.problem
        gen = state.generator
        b = self.sample_blocks(p, gen)
        b_hyper = self.sample_blocks(p, gen)
        lower = self.sample(len(b), p.n_lower, gen)
        upper = self.sample(len(b), p.n_upper, gen)
        weight = p.m / len(b)
        new = self._oracles(p, b, state.x, state.y[b], lower, upper)
        old = self._oracles(p, b, state.x_prev, state.y_prev[b], lower, upper)
        tracked = (state.s, state.w, state.q, state.J, state.H)
        updated = []
        for d, o_new, o_old in zip(tracked, new, old, strict=True):
            full_new = torch.zeros_like(d)
            full_new[b] = weight * o_new
            correction = full_new.clone()
            correction[b] -= weight * o_old
            updated.append(recursive_momentum(d, full_new, correction, self.beta))
        s, w, q, J, H = updated
        H = self._project(H, p)
        G_new = self._direction(b_hyper, q, J, H, w)
        G_old = self._direction(b_hyper, state.q, state.J, state.H, state.w)
        z = recursive_momentum(state.z, G_new, G_new - G_old, self.beta)
        state.x_prev, state.x = state.x, state.x - self.eta * z
        state.y_prev, state.y = state.y, state.y - self.tau * s
        state.s, state.w, state.q, state.J, state.H = s, w, q, J, H
        state.z, state.G = z, G_new
        state.k += 1
        return state
