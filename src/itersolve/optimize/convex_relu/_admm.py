"""ADMM for the convex two-layer ReLU program with a factor-once u-update."""

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
from itersolve.optimize.convex_relu._system import FactoredSystem


@dataclass
class ADMMState:
    """Iterates of :class:`ConvexReLUADMM` (scaled duals ``lam``, ``nu``).

    ``x`` is the group-lasso copy ``z`` (exactly group-sparse), ``u`` the
    least-squares iterate, ``s >= 0`` the constraint slack; ``gs`` and ``gnu``
    cache ``G^T s`` and ``G^T nu`` so a step applies ``G^T`` once.
    ``system`` holds the factorisation made in ``init``.
    """

    x: torch.Tensor
    u: torch.Tensor
    lam: torch.Tensor
    s: torch.Tensor | None
    nu: torch.Tensor | None
    gs: torch.Tensor | None
    gnu: torch.Tensor | None
    system: FactoredSystem
    fty: torch.Tensor
    gram: torch.Tensor
    primal: float = math.inf
    dual: float = math.inf
    eps_primal: float = 0.0
    eps_dual: float = 0.0
    rtol: float = 0.0
    rho: float = 1.0
    steps: int = 0
    factorizations: int = 0
    floor: tuple[float, float] = (0.0, 0.0)
    status: Status | None = None


@dataclass(frozen=True, kw_only=True)
class ConvexReLUADMM(IterativeMethod):
    """ADMM on the convex program of a two-layer ReLU network (Bai, Gautam &
    Sojoudi, 2022, the first algorithm), with the linear system factored once.

    Splitting ``u = z`` (group lasso on ``z``) and ``G u = s`` with ``s >= 0``
    (the arrangement constraints ``(2 D_i - I) X u_i >= 0``); in scaled form,

    * ``u+ = (F^T F + rho I + rho G^T G)^{-1} (F^T y + rho (z - lam) + rho
      G^T (s - nu))`` -- a fixed matrix, factored in ``init``
      (:class:`~itersolve.optimize.convex_relu._system.FactoredSystem`);
    * ``z+ = prox_{beta/rho group}(u+ + lam)`` (block soft-threshold);
    * ``s+ = max(G u+ + nu, 0)``;
    * ``lam += u+ - z+``, ``nu += G u+ - s+``.

    The gated program (``problem.gated``) has no ``s``, ``nu`` or ``G``.
    Equivalent to / compare with a conic solver (cvxpy + Clarabel) on the same
    program, and pyscnn's augmented-Lagrangian solver.

    Stopping rule (Boyd et al. 2011, section 3.3.1, with OSQP's scale floor),
    primal and dual residual::

        ||(u - z, G u - s)|| <= sqrt(m) atol + rtol max(||(u, G u)||, ||(z, s)||,
                                                     ||(F^T y / ||X||_F^2, y)||)
        rho ||(z+ - z) + G^T (s+ - s)|| <= sqrt(N) atol
                                           + rtol max(rho ||lam + G^T nu||, ||F^T y||)

    Parameters
    ----------
    rho
        Initial penalty ``> 0`` (the matrix factored in ``init`` depends on it).
    rtol, atol
        Tolerances of the stopping rule (``rtol=None``: 1e-6, lifted for
        float32).
    relaxation
        Over-relaxation ``alpha`` in ``(0, 2)`` (1: plain ADMM; 1.6 by default,
        Boyd et al. section 3.4.3).
    adaptive_rho
        Residual balancing (OSQP's rule): every ``adapt_every`` steps ``rho`` is
        multiplied by ``sqrt(relative primal / relative dual residual)`` when
        that moves it by more than ``adapt_factor``; each change refactors (a
        few times per run, counted in ``stats["factorizations"]``). ``False``
        keeps the paper's single factorisation.
    adapt_every, adapt_factor
        See ``adaptive_rho``.
    max_steps, time_limit, check_every, stall_window
        Driver limits (:class:`~itersolve.IterativeMethod`); 1000 steps by
        default.

    References
    ----------
    Y. Bai, T. Gautam, S. Sojoudi, "Efficient global optimization of two-layer
    ReLU networks: quadratic-time algorithms and adversarial training", SIAM J.
    Math. Data Sci. 2022. M. Pilanci, T. Ergen, "Neural networks are convex
    regularizers", ICML 2020.

    Examples
    --------
    >>> import numpy as np
    >>> from itersolve.optimize.convex_relu import (
    ...     ConvexReLUADMM, ConvexReLUProblem, solve_convex_relu)
    >>> rng = np.random.default_rng(0)
    >>> X, y = rng.standard_normal((20, 2)), rng.standard_normal(20)
    >>> problem = ConvexReLUProblem(X, y, beta=1.0, arrangements=3)
    >>> sol = solve_convex_relu(problem, ConvexReLUADMM(rho=1.0, rtol=1e-6))
    >>> sol.success, sol.x.shape, sol.stats["factorizations"]
    (True, (2, 3, 3), 1)
    """

    rho: float = 0.1
    rtol: float | None = None
    atol: float = 0.0
    relaxation: float = 1.6
    adaptive_rho: bool = True
    adapt_every: int = 25
    adapt_factor: float = 5.0

    ADVICE: ClassVar[dict[Status, str]] = {
        Status.MAX_STEPS: "raise max_steps or try another rho (too small a rho "
        "slows primal feasibility, too large a rho slows the objective)"
    }

    def __post_init__(self) -> None:
        super().__post_init__()
        if not (isinstance(self.rho, (int, float)) and math.isfinite(self.rho)):
            raise ValueError(f"rho must be a finite number > 0, got {self.rho!r}")
        if not self.rho > 0:
            raise ValueError(f"rho must be > 0, got {self.rho!r}")
        if not (isinstance(self.relaxation, (int, float)) and 0 < self.relaxation < 2):
            raise ValueError(f"relaxation must be in (0, 2), got {self.relaxation!r}")
        if (
            isinstance(self.adapt_every, bool)
            or not isinstance(self.adapt_every, int)
            or self.adapt_every < 1
        ):
            raise ValueError(
                f"adapt_every must be a positive int, got {self.adapt_every!r}"
            )
        if not (isinstance(self.adapt_factor, (int, float)) and self.adapt_factor > 1):
            raise ValueError(f"adapt_factor must be > 1, got {self.adapt_factor!r}")
        tolerance_field(self, 1e-6)
        assert self.rtol is not None
        check_tolerances(self.rtol, self.atol)

    def default_max_steps(self, problem: Any) -> int:
        return 1000

    def default_stall_window(self, problem: Any) -> int | None:
        """None: the answer ``z`` is group-sparse and may rest (at zero, say)
        for many steps while ``u``, ``s`` and the duals still move."""
        return None

    def check_problem(self, problem: ConvexReLUProblem) -> None:
        """Every convex ReLU program is accepted (constrained or gated)."""

    def init(self, problem: ConvexReLUProblem, x0: torch.Tensor) -> ADMMState:
        system = FactoredSystem(problem, float(self.rho))
        fty = problem.adjoint(problem.y)
        z = x0.clone()
        gram = problem.X.T @ problem.X
        s = nu = gs = gnu = None
        if not problem.gated:
            s = torch.clamp(problem.gate(z), min=0.0)
            nu = torch.zeros_like(s)
            gs = problem.gate_adjoint(s)
            gnu = torch.zeros_like(z)
        assert self.rtol is not None
        rtol = resolve_rtol(self.rtol, z.dtype)
        return ADMMState(
            z,
            z.clone(),
            torch.zeros_like(z),
            s,
            nu,
            gs,
            gnu,
            system,
            fty,
            gram,
            rtol=rtol,
            rho=float(self.rho),
            factorizations=system.cost,
            floor=self._floor(problem, fty),
        )

    def _floor(
        self, problem: ConvexReLUProblem, fty: torch.Tensor
    ) -> tuple[float, float]:
        """Problem scales under the residual sizes, so an answer at (or near)
        zero can pass: ``||(F^T y / ||X||_F^2, y)||`` in the units of ``(u, G
        u)`` (``y`` only with constraints) and ``||F^T y||`` for the dual."""
        weights = float(torch.linalg.vector_norm(fty)) / max(
            float(torch.sum(problem.X**2)), torch.finfo(fty.dtype).tiny
        )
        outputs = 0.0 if problem.gated else float(torch.sum(problem.y**2))
        return math.sqrt(weights**2 + outputs), float(torch.linalg.vector_norm(fty))

    def step(self, problem: ConvexReLUProblem, state: ADMMState) -> ADMMState:
        rho, rtol, alpha = state.rho, state.rtol, float(self.relaxation)
        z, lam = state.x, state.lam
        rhs = state.fty + rho * (z - lam)
        if state.gs is not None and state.gnu is not None:
            rhs = rhs + rho * (state.gs - state.gnu)
        u = state.system.solve(rhs)
        # Over-relaxation (Boyd et al. 2011, section 3.4.3): the z-, s- and
        # dual updates see alpha u + (1 - alpha) z instead of u.
        u_hat = alpha * u + (1.0 - alpha) * z
        z_new = group_soft_threshold(u_hat + lam, problem.beta / rho)
        lam_new = lam + u_hat - z_new
        primal_sq = float(torch.sum((u - z_new) ** 2))
        dual_vec = z_new - z
        size_u = float(torch.sum(u**2))
        size_z = float(torch.sum(z_new**2))
        m = u.numel()
        s = nu = gs = gnu = None
        if state.s is not None and state.nu is not None and state.gnu is not None:
            assert state.gs is not None
            gu = problem.gate(u)
            g_hat = alpha * gu + (1.0 - alpha) * state.s
            s = torch.clamp(g_hat + state.nu, min=0.0)
            nu = state.nu + g_hat - s
            gs = problem.gate_adjoint(s)
            # G^T G u = u X^T X because (2 D_i - I)^2 = I: no pass over G.
            gt_hat = alpha * (u @ state.gram) + (1.0 - alpha) * state.gs
            gnu = state.gnu + gt_hat - gs
            dual_vec = dual_vec + gs - state.gs
            primal_sq += float(torch.sum((gu - s) ** 2))
            size_u += float(torch.sum(gu**2))
            size_z += float(torch.sum(s**2))
            m += gu.numel()
            dual_scale = float(torch.linalg.vector_norm(lam_new + gnu))
        else:
            dual_scale = float(torch.linalg.vector_norm(lam_new))
        primal = math.sqrt(primal_sq)
        dual = rho * float(torch.linalg.vector_norm(dual_vec))
        size = math.sqrt(max(size_u, size_z))
        eps_primal = math.sqrt(m) * self.atol + rtol * max(size, state.floor[0])
        eps_dual = math.sqrt(u.numel()) * self.atol + rtol * max(
            rho * dual_scale, state.floor[1]
        )
        new = ADMMState(
            z_new,
            u,
            lam_new,
            s,
            nu,
            gs,
            gnu,
            state.system,
            state.fty,
            state.gram,
            primal,
            dual,
            eps_primal,
            eps_dual,
            rtol,
            rho,
            state.steps + 1,
            state.factorizations,
            state.floor,
        )
        if self.adaptive_rho and new.steps % self.adapt_every == 0:
            self._rebalance(problem, new, size, rho * dual_scale)
        return new

    def _rebalance(
        self,
        problem: ConvexReLUProblem,
        state: ADMMState,
        primal_size: float,
        dual_size: float,
    ) -> None:
        """OSQP's rule: ``rho *= sqrt((r / |primal size|) / (s / |dual size|))``,
        applied only when it moves ``rho`` by more than ``adapt_factor``; the
        scaled duals are rescaled and the system factored again."""
        tiny = torch.finfo(state.x.dtype).tiny
        relative_primal = state.primal / max(primal_size, tiny)
        relative_dual = state.dual / max(dual_size, tiny)
        if relative_primal <= 0 or relative_dual <= 0:
            return
        factor = math.sqrt(relative_primal / relative_dual)
        if 1.0 / self.adapt_factor <= factor <= self.adapt_factor:
            return
        rho = state.rho * factor
        ratio = state.rho / rho
        state.lam = state.lam * ratio
        if state.nu is not None and state.gnu is not None:
            state.nu = state.nu * ratio
            state.gnu = state.gnu * ratio
        state.rho = rho
        state.system = FactoredSystem(problem, rho)
        state.factorizations += state.system.cost

    def converged(self, problem: ConvexReLUProblem, state: ADMMState) -> bool:
        return state.primal <= state.eps_primal and state.dual <= state.eps_dual

    def metrics(self, problem: ConvexReLUProblem, state: ADMMState) -> dict[str, float]:
        return {
            "objective": float(problem.value(state.x)),
            "primal_residual": state.primal,
            "dual_residual": state.dual,
            "rho": state.rho,
        }

    def stats(self, problem: ConvexReLUProblem, state: ADMMState) -> dict[str, float]:
        return {
            "factorizations": state.factorizations,
            "woodbury": int(state.system.woodbury),
            "rho": state.rho,
        }
