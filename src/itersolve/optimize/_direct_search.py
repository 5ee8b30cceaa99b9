"""Covering direct search (cDSM): poll on a positive spanning set plus a covering
step, for black-box objectives under box constraints."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from itersolve._core.iterate import IterativeMethod
from itersolve._core.solution import Status
from itersolve.optimize._box import as_box
from itersolve.optimize._problem import OptimizationProblem

Tensor = torch.Tensor


@dataclass(kw_only=True)
class DirectSearchState:
    """Iterate, its value, the poll size and the cache of evaluated points."""

    x: Tensor
    f: float
    poll_size: float
    max_poll_size: float
    covering_radius: float
    lo: Tensor
    """Lower bounds, flat (``-inf`` where open)."""
    hi: Tensor
    generator: torch.Generator
    cache: Tensor
    """Every point evaluated so far (flat, one per row; the first ``cached``)."""
    cached: int = 1
    last_direction: Tensor | None = None
    """The unit poll direction of the last poll success (polled first)."""
    values: int = 1
    """Evaluations of the objective by this run (``f(x0)`` included)."""
    polls: int = 0
    poll_successes: int = 0
    covering_successes: int = 0
    status: Status | None = None


def _initial_poll_size(lo: Tensor, hi: Tensor, x0: Tensor) -> float:
    """One tenth of the narrowest finite positive width of the box, else of
    ``max(1, ||x0||_inf)`` (NOMAD's default frame is a tenth of the bounds)."""
    width = hi - lo
    usable = width[torch.isfinite(width) & (width > 0)]
    if usable.numel():
        return 0.1 * float(usable.min())
    return 0.1 * max(1.0, float(x0.abs().max()))


def positive_spanning_set(n: int, generator: torch.Generator, like: Tensor) -> Tensor:
    """``n + 1`` unit directions ``[q_1, ..., q_n, -sum q_i / sqrt(n)]`` from a
    uniformly random orthogonal ``Q``, one per row (a minimal positive basis:
    every vector has a positive inner product with one of them).

    A fresh rotation each poll makes the directions dense on the unit sphere
    with probability one, which is what the Clarke-stationarity result of
    directional direct search asks for on non-smooth objectives.

    >>> g = torch.Generator().manual_seed(0)
    >>> D = positive_spanning_set(3, g, torch.zeros(3, dtype=torch.float64))
    >>> D.shape, bool(torch.allclose(D.norm(dim=1), torch.ones(4, dtype=D.dtype)))
    (torch.Size([4, 3]), True)
    """
    gauss = torch.randn(n, n, generator=generator, dtype=torch.float64)
    q, r = torch.linalg.qr(gauss)
    q = q * torch.sign(torch.diagonal(r))  # Haar-distributed (Mezzadri 2007)
    last = -q.sum(dim=1) / math.sqrt(n)
    D = torch.cat([q.T, last[None, :]], dim=0)
    return D.to(dtype=like.dtype, device=like.device)


@dataclass(frozen=True, kw_only=True)
class CoveringDirectSearch(IterativeMethod):
    """Covering direct search (cDSM) for a black-box ``f`` under ``Box(lo, hi)``.

    Derivative-free: ``f`` is only evaluated, never differentiated. Compare with
    NOMAD's MADS (``PyNomad.optimize``) and ``scipy.optimize.minimize(method=
    "Nelder-Mead" | "Powell", bounds=...)``.

    Iteration ``k`` at the incumbent ``x_k`` (value ``f_k``), poll size
    ``Delta_k``, covering radius ``r`` (fixed) and the cache ``V_k`` of every
    point evaluated so far; a trial point ``t`` succeeds when
    ``f(t) < f_k - c Delta_k^2`` (sufficient decrease, ``c`` =
    ``sufficient_decrease``):

    1. **Covering step** (``covering=True``): among ``covering_candidates``
       points drawn uniformly in ``B_inf(x_k, r) ∩ box``, evaluate the one
       farthest from ``V_k`` (an approximate ``argmax_t dist(t, V_k)``, the
       step of Audet, Bouchet & Bourdin). Success: move there, skip the poll.
    2. **Poll step**: ``x_k + Delta_k d`` (projected onto the box) for the
       ``n + 1`` directions of a random minimal positive basis (fresh rotation
       each poll; the last successful direction first), opportunistic (stops
       at the first success). Success: ``Delta <- min(2 Delta, Delta_max)``;
       failure: ``Delta <- Delta / 2``.

    Every evaluated point lies in the box (trial points are projected onto
    it). A non-finite value rejects its point.

    Guarantee: the covering step makes ``V_k`` dense in the covering ball
    around every accumulation point ``x*`` of the incumbents, so ``x*`` is a
    local minimizer of a continuous ``f`` over ``B_inf(x*, r) ∩ box`` (Audet,
    Bouchet & Bourdin 2024); with the dense poll directions and the
    sufficient decrease, ``Delta_k -> 0`` and every refining limit is Clarke
    stationary for a locally Lipschitz ``f`` (Vicente & Custódio 2012).

    Stopping rule (the poll size is the stationarity measure)::

        Delta_k <= min_poll_size

    ``solution.stats["poll_size"]`` is the final ``Delta_k``.

    Parameters
    ----------
    initial_poll_size
        ``Delta_0``; ``None``: a tenth of the narrowest finite box width, else
        a tenth of ``max(1, ||x0||_inf)``.
    min_poll_size
        Stop once ``Delta_k <= min_poll_size`` (default ``1e-5``, the paper's
        ``r_min``).
    max_poll_size
        Cap on ``Delta_k``; ``None``: ``5 Delta_0`` (half the narrowest box
        width with the default ``Delta_0``; polls may grow past the start
        size, as NOMAD's frame does).
    covering
        Run the covering step (``False``: a plain directional direct search).
    covering_radius
        ``r``; ``None``: ``Delta_0``.
    covering_candidates
        Uniform candidates per covering step.
    sufficient_decrease
        ``c`` in the forcing function ``c Delta^2``.
    seed
        Seed of the poll rotations and covering candidates.

    References
    ----------
    C. Audet, P.-Y. Bouchet, L. Bourdin, "Convergence towards a local minimum
    by direct search methods with a covering step", Optim. Lett. (2024).
    L. N. Vicente, A. L. Custódio, "Analysis of direct searches for
    discontinuous functions", Math. Program. 133 (2012).

    Examples
    --------
    >>> import torch
    >>> from itersolve.optimize import minimize, Box, CoveringDirectSearch
    >>> f = lambda x: (x - 0.3).abs().sum()
    >>> x0 = torch.zeros(2, dtype=torch.float64)
    >>> sol = minimize(f, x0, CoveringDirectSearch(), constraints=Box(-1.0, 1.0))
    >>> sol.success, [round(v, 4) for v in sol.x.tolist()]
    (True, [0.3, 0.3])
    >>> sol.stats["poll_size"] <= 1e-5
    True
    """

    initial_poll_size: float | None = None
    min_poll_size: float = 1e-5
    max_poll_size: float | None = None
    covering: bool = True
    covering_radius: float | None = None
    covering_candidates: int = 32
    sufficient_decrease: float = 1e-4
    seed: int = 0

    accepts_constraints: ClassVar[bool] = True
    _state_type: ClassVar[type] = DirectSearchState

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("initial_poll_size", "max_poll_size", "covering_radius"):
            value = getattr(self, name)
            if value is not None and not (
                isinstance(value, (int, float)) and 0 < value < math.inf
            ):
                raise ValueError(
                    f"{name} must be a positive finite number or None, got {value!r}"
                )
        if not (
            isinstance(self.min_poll_size, (int, float)) and self.min_poll_size > 0
        ):
            raise ValueError(
                f"min_poll_size must be positive, got {self.min_poll_size!r}"
            )
        if (
            self.initial_poll_size is not None
            and self.max_poll_size is not None
            and self.max_poll_size < self.initial_poll_size
        ):
            raise ValueError(
                f"max_poll_size must be >= initial_poll_size, got "
                f"{self.max_poll_size} < {self.initial_poll_size}"
            )
        if not isinstance(self.covering, bool):
            raise ValueError(f"covering must be True or False, got {self.covering!r}")
        if (
            isinstance(self.covering_candidates, bool)
            or not isinstance(self.covering_candidates, int)
            or self.covering_candidates < 1
        ):
            raise ValueError(
                "covering_candidates must be a positive int, got "
                f"{self.covering_candidates!r}"
            )
        if not (
            isinstance(self.sufficient_decrease, (int, float))
            and 0 <= self.sufficient_decrease < math.inf
        ):
            raise ValueError(
                "sufficient_decrease must be a finite number >= 0, got "
                f"{self.sufficient_decrease!r}"
            )
        if (
            isinstance(self.seed, bool)
            or not isinstance(self.seed, int)
            or self.seed < 0
        ):
            raise ValueError(f"seed must be a non-negative int, got {self.seed!r}")

    # -- driver hooks -------------------------------------------------------

    def default_max_steps(self, problem: Any) -> int:
        return 100 * (problem.size + 1)

    def default_stall_window(self, problem: Any) -> int | None:
        # x stays put on every failed poll by design; the poll-size rule ends
        # a run of failures (each halves Delta), so the frozen-iterate check
        # would only cut short runs with a tiny min_poll_size.
        return None

    def init(self, problem: OptimizationProblem, x0: Tensor) -> DirectSearchState:
        box = as_box(problem.constraints)
        if box is None:
            lo = torch.full_like(x0, -math.inf)
            hi = torch.full_like(x0, math.inf)
        else:
            lo, hi = box.bounds(x0)
        lo, hi = lo.reshape(-1), hi.reshape(-1)
        flat = x0.reshape(-1).clone()
        delta = self.initial_poll_size or _initial_poll_size(lo, hi, flat)
        cap = self.max_poll_size or 5.0 * delta
        delta = min(delta, cap)
        state = self._state_type(
            x=x0.clone(),
            f=math.inf,
            poll_size=float(delta),
            max_poll_size=float(cap),
            covering_radius=float(self.covering_radius or delta),
            lo=lo,
            hi=hi,
            generator=torch.Generator().manual_seed(self.seed),
            cache=torch.empty(64, flat.numel(), dtype=x0.dtype, device=x0.device),
            **self._extra_state(problem, x0, float(delta)),
        )
        state.cache[0] = flat
        f0 = float(problem.objective.value(x0))
        if not math.isfinite(f0):
            state.status = Status.NONFINITE
            return state
        state.f = f0
        return state

    def _extra_state(
        self, problem: OptimizationProblem, x0: Tensor, poll_size: float
    ) -> dict[str, Any]:
        return {}

    def step(
        self, problem: OptimizationProblem, state: DirectSearchState
    ) -> DirectSearchState:
        self.direct_search_iteration(problem, state)
        return state

    def converged(self, problem: OptimizationProblem, state: DirectSearchState) -> bool:
        return state.poll_size <= self.min_poll_size

    def metrics(
        self, problem: OptimizationProblem, state: DirectSearchState
    ) -> dict[str, float]:
        return {
            "objective": state.f,
            "poll_size": state.poll_size,
            "evaluations": float(state.values),
        }

    def stats(
        self, problem: OptimizationProblem, state: DirectSearchState
    ) -> dict[str, float]:
        return {
            "poll_size": state.poll_size,
            "polls": state.polls,
            "poll_successes": state.poll_successes,
            "covering_successes": state.covering_successes,
        }

    # -- the steps ------------------------------------------------------------

    def direct_search_iteration(
        self, problem: OptimizationProblem, state: DirectSearchState
    ) -> bool:
        """One covering step and (unless it succeeded) one poll; returns
        whether the incumbent moved."""
        if self.covering and self._covering_step(problem, state):
            state.covering_successes += 1
            return True
        return self._poll(problem, state)

    def try_point(
        self,
        problem: OptimizationProblem,
        state: DirectSearchState,
        flat: Tensor,
        threshold: float,
    ) -> bool:
        """Evaluate the flat point ``flat`` (already in the box); move there when
        ``f < threshold``."""
        value = float(problem.objective.value(flat.reshape(state.x.shape)))
        state.values += 1
        self._remember(state, flat)
        if math.isfinite(value) and value < threshold:
            state.x = flat.reshape(state.x.shape).clone()
            state.f = value
            return True
        return False

    def project(self, state: DirectSearchState, flat: Tensor) -> Tensor:
        return torch.minimum(torch.maximum(flat, state.lo), state.hi)

    def forcing(self, state: DirectSearchState) -> float:
        return self.sufficient_decrease * state.poll_size**2

    def _remember(self, state: DirectSearchState, flat: Tensor) -> None:
        if state.cached == state.cache.shape[0]:
            state.cache = torch.cat([state.cache, torch.empty_like(state.cache)])
        state.cache[state.cached] = flat
        state.cached += 1

    def _covering_step(
        self, problem: OptimizationProblem, state: DirectSearchState
    ) -> bool:
        x = state.x.reshape(-1)
        r = state.covering_radius
        low = torch.maximum(x - r, state.lo)
        high = torch.minimum(x + r, state.hi)
        u = torch.rand(
            self.covering_candidates,
            x.numel(),
            generator=state.generator,
            dtype=torch.float64,
        ).to(dtype=x.dtype, device=x.device)
        candidates = low + u * (high - low)
        distance = torch.cdist(candidates, state.cache[: state.cached]).min(dim=1)
        best = int(torch.argmax(distance.values))
        if float(distance.values[best]) == 0.0:
            return False  # the ball is a single cached point (fixed variables)
        return self.try_point(
            problem, state, candidates[best], state.f - self.forcing(state)
        )

    def _poll(self, problem: OptimizationProblem, state: DirectSearchState) -> bool:
        x = state.x.reshape(-1)
        D = positive_spanning_set(x.numel(), state.generator, x)
        if state.last_direction is not None:
            D = torch.cat([state.last_direction[None, :], D])
        state.polls += 1
        threshold = state.f - self.forcing(state)
        for d in D:
            trial = self.project(state, x + state.poll_size * d)
            if torch.equal(trial, x):
                continue
            if self.try_point(problem, state, trial, threshold):
                state.poll_successes += 1
                state.last_direction = d.clone()
                state.poll_size = min(2.0 * state.poll_size, state.max_poll_size)
                return True
        state.last_direction = None
        state.poll_size /= 2.0
        return False
