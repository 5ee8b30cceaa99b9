"""Integral reinforcement learning (IntRL) policy iteration, pluggable quadrature."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.integrate as si
import scipy.linalg as sla
import torch

from itersolve._core.frontdoor import DefaultTolerance
from itersolve._core.iterate import IterativeMethod
from itersolve._core.solution import Status
from itersolve.control._features import vech_features, vech_to_matrix
from itersolve.control._problem import ControlAffineSystem
from itersolve.control._quadrature import (
    bq_matern_weights,
    gauss_legendre_rule,
    simpson_weights,
    trapezoid_weights,
)

QUADRATURES = ("trapezoid", "simpson", "gauss_legendre", "bq", "exact")


@dataclass
class IntRLState:
    x: torch.Tensor  # value weights w_k
    offsets: np.ndarray
    weights: np.ndarray | None
    change: float = float("inf")
    condition: float = float("nan")
    floor: float = 0.0
    """Rounding floor of the least-squares weights (see ``terminate``)."""
    error: float = float("nan")
    steps: int = 0
    best_change: float = float("inf")
    since_best: int = 0
    diverged: bool = False
    simulations: int = 0


@dataclass(frozen=True, kw_only=True)
class IntegralPolicyIteration(IterativeMethod):
    """IntRL policy iteration: data-driven policy evaluation by quadrature.

    Compare with: :class:`Kleinman` (the model-based, exact-integral limit) and
    ``scipy.linalg.solve_continuous_are`` for linear systems.

    Step ``k``: simulate the closed loop under ``u_k`` from ``x0`` over
    ``n_windows`` consecutive windows of length ``window``, sampling ``n_points``
    times per window; evaluate the policy by least squares on
    ``w^T (phi(x(t_i)) - phi(x(t_i + T))) = sum_j omega_j l(t_ij)`` (vech
    features); improve ``u_{k+1} = -1/2 R^{-1} g^T grad_phi^T w_k``. The
    quadrature error perturbs each Newton step, so the converged ``w_N`` is off
    ``w*`` by ``O(N^-2)`` with the trapezoid rule and ``O(N^-(nu + 1/2))`` with
    Matérn-``nu`` Bayesian quadrature (Cao & Pan, "Impact of Computation in
    Integral Reinforcement Learning for Continuous-Time Control", ICLR 2024).

    Stopping rule::

        ||w_k - w_{k-1}||_2 <= tol

    where the default ``tol`` (1e-10) is lifted to the rounding floor of the
    least-squares weights, ``cond(Phi_k) * delta * max(1, ||w_k||)`` with
    ``delta`` the relative accuracy of the data (float64 ``eps`` for the exact
    matrix exponential of linear systems, ``ode_tol`` for ODE data): the
    regression matrix of one decaying trajectory has ``cond(Phi) ~ 2e7`` on
    :func:`third_order_linear`, so 1e-10 lies below what the data resolve
    (a ``tol`` given explicitly is used as given). ``Status.STAGNATION`` when
    the change has not improved for 5 steps after reaching ``1e-6 max(1,
    ||w_k||)``: an explicit ``tol`` below the floor ends there.

    Data come from the exact matrix exponential for linear systems, otherwise
    from ``scipy.integrate.solve_ivp`` (DOP853, rtol = atol = ``ode_tol``); the
    ``"exact"`` quadrature integrates the cost as an extra state.

    Parameters
    ----------
    quadrature
        ``"trapezoid"``, ``"simpson"`` (odd ``n_points``), ``"gauss_legendre"``,
        ``"bq"`` (Matérn ``nu``, ``lengthscale``) or ``"exact"``.
    n_points
        Samples per window.
    window, n_windows
        Window length ``T`` and rows per iteration (``None``: the system's).

    Examples
    --------
    >>> from itersolve.control import policy_iteration, third_order_linear
    >>> method = IntegralPolicyIteration(quadrature="bq", n_points=8, tol=1e-8)
    >>> sol = policy_iteration(third_order_linear(), method)
    >>> w_star = third_order_linear().w_star
    >>> sol.success, bool(np.linalg.norm(sol.x - w_star) < 1e-5)
    (True, True)
    """

    quadrature: str = "trapezoid"
    n_points: int = 10
    window: float = 0.1
    n_windows: int | None = None
    tol: float = DefaultTolerance(1e-10)
    nu: float = 3.5
    lengthscale: float = 0.3
    ode_tol: float = 1e-12

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.quadrature not in QUADRATURES:
            raise ValueError(
                f"quadrature must be one of {QUADRATURES}, got {self.quadrature!r}"
            )
        if not isinstance(self.n_points, int) or self.n_points < 2:
            raise ValueError(f"n_points must be an int >= 2, got {self.n_points!r}")
        if self.quadrature == "simpson" and self.n_points % 2 == 0:
            raise ValueError(f"simpson needs an odd n_points, got {self.n_points}")
        if not self.window > 0:
            raise ValueError(f"window must be positive, got {self.window!r}")
        if self.n_windows is not None and (
            not isinstance(self.n_windows, int) or self.n_windows < 1
        ):
            raise ValueError(
                f"n_windows must be a positive int, got {self.n_windows!r}"
            )
        if not self.tol > 0:
            raise ValueError(f"tol must be positive, got {self.tol!r}")
        if self.quadrature == "bq":
            bq_matern_weights([0.0], (0.0, 1.0), self.nu, self.lengthscale)

    def default_max_steps(self, problem: ControlAffineSystem) -> int:
        return 50

    def rule(self) -> tuple[np.ndarray, np.ndarray | None]:
        """Node offsets in ``[0, window]`` and their weights (None: exact)."""
        T, N = self.window, self.n_points
        if self.quadrature == "gauss_legendre":
            t, w = gauss_legendre_rule(N, T)
            return t.numpy(), w.numpy()
        offsets = np.linspace(0.0, T, N)
        if self.quadrature == "trapezoid":
            return offsets, trapezoid_weights(N, T).numpy()
        if self.quadrature == "simpson":
            return offsets, simpson_weights(N, T).numpy()
        if self.quadrature == "bq":
            bq = bq_matern_weights(offsets, (0.0, T), self.nu, self.lengthscale)
            return offsets, bq.weights.numpy()
        return offsets, None

    def init(self, problem: ControlAffineSystem, x0: torch.Tensor) -> IntRLState:
        offsets, weights = self.rule()
        return IntRLState(x0.clone(), offsets, weights)

    def step(self, problem: ControlAffineSystem, state: IntRLState) -> IntRLState:
        w = state.x.numpy()
        M = self.n_windows or problem.n_windows
        data = simulate(problem, w, self.window, M, state.offsets, self.ode_tol)
        state.simulations += 1
        if data is None:
            state.diverged = True
            return state
        starts, ends, _, costs, exact = data
        Phi = vech_features(starts) - vech_features(ends)
        if state.weights is None:
            integrals = exact
        else:
            integrals = costs @ state.weights
        w_new, *_ = np.linalg.lstsq(Phi, integrals, rcond=None)
        s = np.linalg.svd(Phi, compute_uv=False)
        state.condition = float(s[0] / max(s[-1], 1e-300))
        state.change = float(np.linalg.norm(w_new - w))
        # Perturbation bound of least squares: data accurate to `resolution`
        # (relative) move w by up to cond(Phi) * resolution * ||w||.
        resolution = np.finfo(np.float64).eps if problem.A is not None else self.ode_tol
        scale = max(1.0, float(np.linalg.norm(w_new)))
        state.floor = state.condition * resolution * scale
        if state.change < state.best_change:
            state.best_change, state.since_best = state.change, 0
        else:
            state.since_best += 1
        if problem.w_star is not None:
            state.error = float(np.linalg.norm(w_new - problem.w_star))
        state.x = torch.from_numpy(w_new)
        state.steps += 1
        return state

    def terminate(
        self, problem: ControlAffineSystem, state: IntRLState
    ) -> tuple[bool, Status]:
        if state.diverged:
            return True, Status.DIVERGED
        tol = self.tol
        if isinstance(tol, DefaultTolerance):
            tol = max(tol, state.floor)
        if state.steps > 0 and state.change <= tol:
            return True, Status.SUCCESS
        # Rounding floor: Phi is ill-conditioned (one decaying trajectory), so
        # the change can stall above a tight tol once the iteration has converged.
        floor = 1e-6 * max(1.0, float(state.x.norm()))
        if state.since_best >= 5 and state.best_change <= floor:
            return True, Status.STAGNATION
        return False, Status.SUCCESS

    def metrics(
        self, problem: ControlAffineSystem, state: IntRLState
    ) -> dict[str, float]:
        return {
            "change": state.change,
            "error": state.error,
            "condition": state.condition,
        }

    def stats(
        self, problem: ControlAffineSystem, state: IntRLState
    ) -> dict[str, float]:
        return {"simulations": state.simulations}


def linear_gain(system: ControlAffineSystem, w: np.ndarray) -> np.ndarray:
    assert system.B is not None
    P = vech_to_matrix(w, system.n)
    return np.linalg.solve(system.R, system.B.T @ P)


def simulate(
    system: ControlAffineSystem,
    w: np.ndarray,
    T: float,
    M: int,
    offsets: np.ndarray,
    ode_tol: float,
) -> tuple[np.ndarray, ...] | None:
    """Window start/end states ``(M, n)``, running cost at the nodes ``(M, N)``
    and the exact window integrals ``(M,)``; ``None`` if the loop blows up."""
    n = system.n
    if system.A is not None and system.B is not None:
        K = linear_gain(system, w)
        Acl = system.A - system.B @ K
        if np.linalg.eigvals(Acl).real.max() >= 0:
            return None
        Qk = system.Q + K.T @ system.R @ K
        # Van Loan: expm([[-Acl^T, Qk], [0, Acl]] T) = [[., F12], [0, e^{Acl T}]]
        # and int_0^T e^{Acl^T s} Qk e^{Acl s} ds = e^{Acl T}^T F12.
        block = np.block([[-Acl.T, Qk], [np.zeros((n, n)), Acl]])
        F = sla.expm(block * T)
        step = F[n:, n:]
        window_gram = step.T @ F[:n, n:]
        window_gram = 0.5 * (window_gram + window_gram.T)
        node_maps = np.stack([sla.expm(Acl * t) for t in offsets])
        states = [system.x0]
        for _ in range(M):
            states.append(step @ states[-1])
        traj = np.array(states)
        first, last = traj[:-1], traj[1:]
        nodes = np.einsum("jab,ib->ija", node_maps, first)
        node_costs = np.einsum("ija,ab,ijb->ij", nodes, Qk, nodes)
        integrals = np.einsum("ia,ab,ib->i", first, window_gram, first)
        return first, last, nodes, node_costs, integrals

    u = system.policy(w)

    def rhs(_: float, y: np.ndarray) -> np.ndarray:
        x = y[:n]
        ux = u(x)
        dx = system.f(x) + system.g(x) @ ux
        return np.concatenate([dx, [system.running_cost(x, ux)]])

    times = np.unique(np.concatenate([offsets, [0.0, T]]))
    limit = 1e3 * max(1.0, float(np.linalg.norm(system.x0)))

    def blow_up(_: float, y: np.ndarray) -> float:
        # Stop at once on an unstable loop: a growing angle argument would
        # otherwise force ever smaller ODE steps.
        return limit - float(np.linalg.norm(y[:n]))

    blow_up.terminal = True  # type: ignore[attr-defined]
    starts: list[np.ndarray] = []
    ends: list[np.ndarray] = []
    samples: list[np.ndarray] = []
    exact: list[float] = []
    x = system.x0.astype(float)
    for _ in range(M):
        sol = si.solve_ivp(
            rhs,
            (0.0, T),
            np.concatenate([x, [0.0]]),
            method="DOP853",
            t_eval=times,
            rtol=ode_tol,
            atol=ode_tol,
            events=blow_up,
        )
        if sol.status != 0 or not np.all(np.isfinite(sol.y)):
            return None
        Y = sol.y.T
        index = np.searchsorted(times, offsets)
        starts.append(x)
        x = Y[-1, :n]
        if np.linalg.norm(x) > limit:
            return None
        ends.append(x)
        samples.append(Y[index, :n])
        exact.append(Y[-1, n])
    S = np.array(samples)
    costs = system.running_cost(S, u(S))
    return np.array(starts), np.array(ends), S, costs, np.array(exact)
