"""BSVRB: blockwise stochastic variance-reduced bilevel method (v1 and v2)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import Tensor

from itersolve._core.estimators import check_weight, msvr_update, recursive_momentum
from itersolve._core.operators import aslinearoperator
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
from itersolve.bilevel._problem import MultiBlockBilevelProblem, check_positive_int
from itersolve.linear import CG, inner_solve

#: Statuses of an inner CG solve that mean the lower level is not strongly
#: convex there (or the numbers broke): they end the run.
FATAL_INNER = (Status.NOT_POSITIVE_DEFINITE, Status.BREAKDOWN, Status.NONFINITE)


@dataclass
class BSVRBState(BilevelState):
    x_prev: Tensor = field(default_factory=lambda: torch.empty(0))
    y_prev: Tensor = field(default_factory=lambda: torch.empty(0))
    s: Tensor = field(default_factory=lambda: torch.empty(0))
    H: Tensor | None = None
    H_prev: Tensor | None = None
    v: Tensor | None = None
    v_prev: Tensor | None = None
    u: Tensor | None = None
    delay: Tensor = field(default_factory=lambda: torch.empty(0))
    G: Tensor = field(default_factory=lambda: torch.empty(0))
    inner_matvecs: int = 0


def adjoint_cg(
    problem: MultiBlockBilevelProblem,
    solver: Any,
    blocks: Tensor,
    x: Tensor,
    y: Tensor,
    rhs: Tensor,
    samples: Tensor | None,
    v0: Tensor | None = None,
) -> tuple[Tensor, Status, int]:
    """``grad^2_yy g_i v_i = rhs_i`` for the given blocks, one CG solve on
    their block-diagonal operator of minibatch Hessian-vector products (the
    shared engine's tight entry). Returns ``v``, the solve's status, matvecs."""
    shape = rhs.shape
    n = rhs.numel()

    def matvec(v: Tensor) -> Tensor:
        return problem.lower_hvp(blocks, x, y, v.reshape(shape), samples).reshape(-1)

    op = aslinearoperator(matvec, shape=(n, n), dtype=rhs.dtype, device=rhs.device)
    start = None if v0 is None else v0.reshape(-1)
    sol = inner_solve(solver, op, rhs.reshape(-1), x0=start)
    return sol.x.reshape(shape), sol.status, int(sol.stats["matvecs"])


@dataclass(frozen=True, kw_only=True)
class BSVRB(BilevelMethod):
    """Blockwise stochastic variance-reduced bilevel method (Hu et al., 2023).

    Per step, ``I`` blocks are sampled, each with a minibatch ``xi`` of ``B``
    lower samples (and one of upper samples), evaluated at the current and the
    previous iterates (the same ``xi`` at both). For every sampled block:

    * MSVR tracking of the lower gradient,
      ``s_i <- (1 - alpha) s_i + (alpha + gamma) grad_y g_i(new) - gamma
      grad_y g_i(old)``;
    * ``version="v1"``: the same tracking of the Hessian, projected,
      ``H_i <- Proj(...)``; the hypergradient term uses ``H_i^-1 grad_y f_i``
      (a Cholesky solve of ``dim_y x dim_y``);
    * ``version="v2"``: ``v_i ~ (grad^2_yy g_i)^-1 grad_y f_i`` tracked by
      MSVR of ``u_i ~ grad^2_yy g_i v_i - grad_y f_i`` (Hessian-vector
      products only), ``v_i <- Proj_{|v| <= v_bound}(v_i - tau_v dc_i u_i)``.

    Lower variables: v1 moves every block, ``y_i <- y_i - tau s_i``; v2 moves
    the sampled blocks only, scaled by the delay count ``dc_i`` (steps since
    block ``i`` was last sampled). Upper: ``G = (1/I) sum_i [grad_x f_i -
    grad^2_xy g_i (H_i^-1 grad_y f_i | v_i)]``, STORM direction ``z <- (1 -
    beta)(z - G_old) + G_new`` (the old ``G`` at the previous iterates and
    estimators, same samples), ``x <- x - eta z``.

    Initialisation: one minibatch on every block gives ``s``, ``H`` (v1) and
    ``v`` (v2: a CG solve, :func:`itersolve.linear.inner_solve`, whose
    ``NOT_POSITIVE_DEFINITE`` ends the run; not projected, the ball bounds the
    later updates), and ``z = G_0`` over all blocks:
    with full batches at ``y0 = y*(x0)`` it is the exact hypergradient. A v1
    initial Hessian that is not positive definite ends the run with
    ``NOT_POSITIVE_DEFINITE`` (the projection would hide it later).

    Compare with: the reference code ``quanqihu/BSVRB_ICML2023`` (NumPy);
    deviations: the Hessian projection clips eigenvalues to the lower level's
    ``[mu_i, L_i]`` (``hessian_projection="eig"``; the reference's Frobenius
    rescaling is ``"frobenius"``) and Cholesky solves replace ``inv``.

    Stopping rule: the budget of :func:`~itersolve.bilevel.solve` (``k ==
    budget``).

    Parameters
    ----------
    version
        ``"v1"`` (Hessian tracking, memory ``O(m dim_y^2)``) or ``"v2"``
        (Hessian-vector products, memory ``O(m dim_y)``).
    blocks_per_iter, batch_size, eta
        See :class:`~itersolve.bilevel.BilevelMethod` (the paper's ``I``,
        ``B``, ``eta``).
    upper_batch_size
        Upper-level samples per sampled block (``None``: ``batch_size``).
    tau
        Lower step size (``None``: 0.5 for v1, 1.0 for v2, the paper's). With
        ``alpha = 0.9``, ``gamma = 1`` the recursion of ``y`` (and of ``v``
        with ``tau_v``) is stable on a quadratic with curvature ``L`` for
        ``tau L < 22/29`` (about 0.76; the deterministic recursion's spectral
        radius reaches 1 there): take a smaller ``tau`` for stiff lower
        levels.
    tau_v
        v2's step size for ``v``.
    alpha, gamma
        MSVR weights (``alpha`` in (0, 1], ``gamma >= 0``).
    beta
        STORM weight of the upper direction, in (0, 1].
    hessian_projection, h_bound
        ``"eig"`` or ``"frobenius"`` (with its bound ``h_bound``).
    v_bound
        Radius of v2's ball for ``v``.
    linear_solver
        The CG of v2's initial ``v`` (default ``CG(rtol=1e-12)``).

    References
    ----------
    Q. Hu, Z. Qiu, Z. Guo, L. Zhang, T. Yang, "Blockwise Stochastic
    Variance-Reduced Methods with Parallel Speedup for Multi-Block Bilevel
    Optimization", ICML 2023.

    Examples
    --------
    >>> import torch
    >>> from itersolve.bilevel import BSVRB, solve
    >>> from itersolve.problems import quadratic_bilevel
    >>> p = quadratic_bilevel(m=4, dim_x=3, dim_y=5, n=32, seed=0)
    >>> x0 = torch.zeros(3, dtype=torch.float64)
    >>> method = BSVRB(blocks_per_iter=2, batch_size=8, eta=0.1, tau=0.3)
    >>> sol = solve(p, x0, method, epochs=5)
    >>> sol.success, p.hyperobjective(sol.x) < p.hyperobjective(x0)
    (True, True)
    """

    ADVICE: ClassVar[dict[Status, str]] = {
        Status.NOT_POSITIVE_DEFINITE: (
            "the lower level is not strongly convex at the start (a Hessian "
            "or CG curvature <= 0): check g_i, its mu, or start y0 elsewhere"
        ),
    }

    version: str = "v1"
    upper_batch_size: int | None = None
    tau: float | None = None
    tau_v: float = 1.0
    alpha: float = 0.9
    gamma: float = 1.0
    beta: float = 0.9
    hessian_projection: str = "eig"
    h_bound: float = 10.0
    v_bound: float = 10.0
    linear_solver: Any = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.version not in ("v1", "v2"):
            raise ValueError(f"version must be 'v1' or 'v2', got {self.version!r}")
        check_positive_int(self.upper_batch_size, "upper_batch_size", allow_none=True)
        if self.tau is not None:
            check_step_size(self.tau, "tau")
        check_step_size(self.tau_v, "tau_v")
        check_weight(self.alpha, "alpha")
        check_weight(self.beta, "beta")
        check_step_size(self.gamma, "gamma", allow_zero=True)
        check_projection(self.hessian_projection)
        check_step_size(self.h_bound, "h_bound")
        check_step_size(self.v_bound, "v_bound")
        if self.linear_solver is None:
            object.__setattr__(self, "linear_solver", CG(rtol=1e-12))
        elif not isinstance(self.linear_solver, CG):
            raise TypeError(
                "linear_solver must be a CG (e.g. CG(rtol=1e-10)), got "
                f"{type(self.linear_solver).__name__}"
            )

    @property
    def lower_step(self) -> float:
        if self.tau is not None:
            return self.tau
        return 0.5 if self.version == "v1" else 1.0

    def _upper_samples(
        self, problem: MultiBlockBilevelProblem, count: int, gen: torch.Generator
    ) -> Tensor | None:
        if self.batch_size is None and self.upper_batch_size is None:
            return None
        size = self.upper_batch_size or self.batch_size
        assert size is not None
        size = min(size, problem.n_upper)
        return torch.rand(count, problem.n_upper, generator=gen).argsort(1)[:, :size]

    def _project(
        self, H: Tensor, problem: MultiBlockBilevelProblem, blocks: Tensor
    ) -> Tensor:
        return project_hessians(
            H,
            problem.mu[blocks],
            problem.L[blocks],
            self.hessian_projection,
            self.h_bound,
        )

    def _direction(
        self,
        problem: MultiBlockBilevelProblem,
        blocks: Tensor,
        x: Tensor,
        y: Tensor,
        H_or_v: Tensor,
        lower: Tensor | None,
        upper: Tensor | None,
        grads: tuple[Tensor, Tensor] | None = None,
    ) -> Tensor:
        """``G = mean_i [grad_x f_i - grad^2_xy g_i w_i]``, ``w_i = H_i^-1
        grad_y f_i`` (v1) or ``v_i`` (v2), at ``(x, y)`` on the given samples
        (``grads``: the upper gradients there, when already evaluated)."""
        gx, gy = problem.upper_grads(blocks, x, y, upper) if grads is None else grads
        w = solve_spd(H_or_v, gy) if self.version == "v1" else H_or_v
        return (gx - problem.lower_cross(blocks, x, y, w, lower)).mean(0)

    def init(self, problem: BilevelRun, x0: Tensor) -> BSVRBState:
        p = problem.problem
        gen = torch.Generator().manual_seed(problem.seed)
        blocks = p.all_blocks()
        y = problem.y0.clone()
        lower = self.sample(p.m, p.n_lower, gen)
        upper = self._upper_samples(p, p.m, gen)
        s = p.lower_grad(blocks, x0, y, lower)
        state = BSVRBState(
            x=x0,
            y=y,
            z=torch.zeros_like(x0),
            generator=gen,
            x_prev=x0,
            y_prev=y,
            s=s,
            delay=torch.zeros(p.m, dtype=torch.long),
        )
        if self.version == "v1":
            raw = p.lower_hessian(blocks, x0, y, lower)
            if bool((torch.linalg.cholesky_ex(raw)[1] != 0).any()):
                state.status = Status.NOT_POSITIVE_DEFINITE
                state.G = state.z
                return state
            state.H = state.H_prev = self._project(raw, p, blocks)
            G = self._direction(p, blocks, x0, y, state.H, lower, upper)
        else:
            grads = p.upper_grads(blocks, x0, y, upper)
            gy = grads[1]
            v, status, matvecs = adjoint_cg(
                p, self.linear_solver, blocks, x0, y, gy, lower
            )
            state.inner_matvecs += matvecs
            if status in FATAL_INNER:
                state.status = status
                state.G = state.z
                return state
            state.v = state.v_prev = v
            state.u = p.lower_hvp(blocks, x0, y, state.v, lower) - gy
            G = self._direction(p, blocks, x0, y, state.v, lower, upper, grads)
        state.G = state.z = G
        return state

    def step(self, problem: BilevelRun, state: BSVRBState) -> BSVRBState:
        p = problem.problem
        gen = state.generator
        b = self.sample_blocks(p, gen)
        lower = self.sample(len(b), p.n_lower, gen)
        upper = self._upper_samples(p, len(b), gen)
        x, xp = state.x, state.x_prev
        y, yp = state.y, state.y_prev
        yb, ypb = y[b], yp[b]
        s = state.s.clone()
        s[b] = msvr_update(
            s[b],
            p.lower_grad(b, x, yb, lower),
            p.lower_grad(b, xp, ypb, lower),
            self.alpha,
            self.gamma,
        )
        tau = self.lower_step
        if self.version == "v1":
            assert state.H is not None and state.H_prev is not None
            H = state.H.clone()
            H[b] = self._project(
                msvr_update(
                    H[b],
                    p.lower_hessian(b, x, yb, lower),
                    p.lower_hessian(b, xp, ypb, lower),
                    self.alpha,
                    self.gamma,
                ),
                p,
                b,
            )
            G_new = self._direction(p, b, x, yb, state.H[b], lower, upper)
            G_old = self._direction(p, b, xp, ypb, state.H_prev[b], lower, upper)
            y_next = y - tau * s
            state.H_prev, state.H = state.H, H
        else:
            assert state.v is not None and state.v_prev is not None
            assert state.u is not None
            v, vp = state.v[b], state.v_prev[b]
            new = p.upper_grads(b, x, yb, upper)
            old = p.upper_grads(b, xp, ypb, upper)
            u = state.u.clone()
            u[b] = msvr_update(
                u[b],
                p.lower_hvp(b, x, yb, v, lower) - new[1],
                p.lower_hvp(b, xp, ypb, vp, lower) - old[1],
                self.alpha,
                self.gamma,
            )
            G_new = self._direction(p, b, x, yb, v, lower, upper, new)
            G_old = self._direction(p, b, xp, ypb, vp, lower, upper, old)
            # Each sampled block catches up on the steps it missed.
            dc = (state.delay[b] + 1).to(y.dtype)[:, None]
            y_next = y.clone()
            y_next[b] = yb - tau * dc * s[b]
            v_next = state.v.clone()
            v_next[b] = _ball(v - self.tau_v * dc * u[b], self.v_bound)
            delay = state.delay + 1
            delay[b] = 0
            state.delay = delay
            state.v_prev, state.v, state.u = state.v, v_next, u
        z = recursive_momentum(state.z, G_new, G_new - G_old, self.beta)
        state.x_prev, state.x = x, x - self.eta * z
        state.y_prev, state.y = y, y_next
        state.s, state.z, state.G = s, z, G_new
        state.k += 1
        return state

    def stats(self, problem: BilevelRun, state: BSVRBState) -> dict[str, float]:
        return {"inner_matvecs": state.inner_matvecs}


def _ball(v: Tensor, radius: float) -> Tensor:
    """Rows of ``v`` projected onto the ball of ``radius``."""
    norms = torch.linalg.vector_norm(v, dim=-1, keepdim=True)
    return v * torch.clamp(radius / norms.clamp_min(torch.finfo(v.dtype).tiny), max=1.0)
