"""Directional attacks on a differentiable surrogate as the search step of a
covering direct search (Bouchet & Vidal, "Optimization by directional attacks")."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from itersolve.optimize._direct_search import CoveringDirectSearch, DirectSearchState
from itersolve.optimize._problem import OptimizationProblem

Tensor = torch.Tensor

ATTACKS = ("fgsm", "pgd")


@dataclass(frozen=True)
class Attack:
    """What :func:`directional_attack` returns: the step ``d`` (shape of ``x``,
    ``||d||_inf <= 1``) and the surrogate passes it used."""

    d: Tensor
    forward: int
    backward: int


def directional_attack(
    surrogate: Callable[[Tensor], Tensor],
    outer: Callable[[Tensor], Tensor] | None,
    x: Tensor,
    radius: float,
    *,
    method: str = "pgd",
    steps: int = 3,
    lo: Tensor | None = None,
    hi: Tensor | None = None,
) -> Attack:
    """A targeted attack of ``surrogate`` at ``x`` along ``-grad outer(Phi(x))``.

    With ``Phi = surrogate`` and ``v = grad outer(Phi(x))`` (``outer`` is cheap
    and smooth; its gradient is not counted; ``outer=None`` takes ``v = 1``
    for a scalar ``Phi``), the attack looks for ``d`` in the unit inf-ball,
    with ``x + radius d`` in ``[lo, hi]``, that decreases
    ``<v, Phi(x + radius d)>``: projected signed-gradient steps from ``d = 0``
    (``"fgsm"``: one full step; ``"pgd"``: ``steps`` steps of length
    ``2 / steps``). Each step is one forward and one backward pass of
    ``Phi``; only those are used (``Phi`` may be a ReLU network).

    The paper maximises ``f(Phi(x))``; here everything is minimised.

    Examples
    --------
    >>> import torch
    >>> phi = torch.nn.Linear(2, 1, bias=False).double()
    >>> with torch.no_grad():
    ...     _ = phi.weight.copy_(torch.tensor([[1.0, -2.0]]))
    >>> a = directional_attack(phi, None, torch.zeros(2, dtype=torch.float64),
    ...                        0.1, method="fgsm")
    >>> a.d.tolist(), a.forward, a.backward
    ([-1.0, 1.0], 1, 1)
    """
    if method not in ATTACKS:
        raise ValueError(f"method must be one of {ATTACKS}, got {method!r}")
    flat = x.detach().reshape(-1)
    d_lo = torch.full_like(flat, -1.0)
    d_hi = torch.full_like(flat, 1.0)
    if lo is not None:
        d_lo = torch.maximum(d_lo, (lo.reshape(-1) - flat) / radius)
    if hi is not None:
        d_hi = torch.minimum(d_hi, (hi.reshape(-1) - flat) / radius)
    n_steps = 1 if method == "fgsm" else steps
    length = 1.0 if method == "fgsm" else 2.0 / steps
    d = torch.zeros_like(flat)
    direction: Tensor | None = None
    forward = backward = 0
    for _ in range(n_steps):
        with torch.enable_grad():
            dg = d.clone().requires_grad_(True)
            y = surrogate((flat + radius * dg).reshape(x.shape))
            forward += 1
            if direction is None:
                direction = _target(outer, y)
            (g,) = torch.autograd.grad(y, dg, grad_outputs=direction)
            backward += 1
        d = torch.minimum(torch.maximum(d - length * torch.sign(g), d_lo), d_hi)
    return Attack(d.reshape(x.shape), forward, backward)


def _target(outer: Callable[[Tensor], Tensor] | None, y: Tensor) -> Tensor:
    """``grad outer(y)`` at the unperturbed output (``1`` without ``outer``)."""
    if outer is None:
        return torch.ones_like(y)
    with torch.enable_grad():
        yd = y.detach().requires_grad_(True)
        (v,) = torch.autograd.grad(outer(yd), yd)
    return v


@dataclass(kw_only=True)
class AttackState(DirectSearchState):
    attack_radius: float
    last_step: Tensor | None = None
    """The last accepted displacement (for the speculative step)."""
    surrogate_forward: int = 0
    surrogate_backward: int = 0
    attacks: int = 0
    attack_successes: int = 0
    speculative_successes: int = 0


@dataclass(frozen=True, kw_only=True)
class DirectionalAttackSearch(CoveringDirectSearch):
    """The hybrid of Bouchet & Vidal: directional attacks on a differentiable
    surrogate, then the covering direct search of
    :class:`CoveringDirectSearch`, under ``Box(lo, hi)``.

    The objective ``f`` passed to :func:`~itersolve.optimize.minimize` stays a
    black box (only evaluated); the attacks differentiate ``surrogate``
    (``Phi``, e.g. a trained MLP; for ``f = outer(Phi(x))`` it is the model
    inside ``f``). Compare with NOMAD (``PyNomad.optimize``), which only
    evaluates ``f``, and with ``torch.optim.Adam`` on the inputs, which
    back-propagates through ``Phi`` at every step.

    Iteration ``k`` (incumbent ``x_k``, attack radius ``a_k``, poll size
    ``Delta_k``):

    0. speculative line search (``speculative=True``, after an accepted step
       ``s``): try ``x_k + s``; accepted on sufficient decrease
       ``f < f_k - tau ||s||_inf``, which ends the iteration and doubles ``s``
       for the next try;
    1. attack: ``d`` = :func:`directional_attack` at radius ``a_k``, trial
       ``t = x_k + a_k d``. Sufficient decrease ``f(t) < f_k - tau a_k``:
       accept, ``a <- min(grow a, max_attack_radius)``, skip step 2; simple
       decrease: accept, ``a <- mild_grow a``; otherwise ``a <- a / shrink``;
    2. one covering step and poll of :class:`CoveringDirectSearch` (which
       keeps its guarantee: the attack is a search step, and a search step
       never breaks the convergence analysis of direct search as long as the
       poll runs whenever the search fails).

    Stopping rule: ``Delta_k <= min_poll_size`` (the poll size is the
    stationarity measure; unlike the paper the attack radius does not have to
    reach ``min_poll_size`` too: every poll failure already certified it).

    ``solution.stats`` adds ``surrogate_forward`` / ``surrogate_backward``
    (passes of ``Phi`` by the attacks; evaluations of ``f`` are
    ``stats["values"]``), ``attacks``, ``attack_successes`` and
    ``attack_radius``.

    Parameters
    ----------
    surrogate
        ``Phi``: a torch function (or ``nn.Module``) of ``x`` (its shape).
        ``None``: the objective itself is attacked through its gradient
        oracle (each attack step is a counted ``grads`` call).
    outer
        Smooth torch function of ``Phi``'s output, the attack's target
        direction is ``grad outer(Phi(x))``; ``None`` for a scalar ``Phi``.
    attack
        ``"fgsm"`` (one signed-gradient step: one forward and one backward
        pass) or ``"pgd"`` (``attack_steps`` projected sign steps).
    attack_steps
        Steps of the PGD attack (one forward and one backward pass each).
    initial_attack_radius, max_attack_radius
        ``a_0`` (``None``: the initial poll size) and the cap (paper: 1).
    tau, grow, mild_grow, shrink
        Sufficient-decrease constant and the radius updates (paper: 1e-3,
        1.3, 1.1, 1.3).
    speculative
        Repeat the last accepted step before attacking.
    **kwargs
        The direct-search parameters of :class:`CoveringDirectSearch`.

    References
    ----------
    P.-Y. Bouchet, T. Vidal, "Optimization by directional attacks: solving
    problems with neural network surrogates" (2025).

    Examples
    --------
    >>> import torch
    >>> from itersolve.optimize import minimize, Box, DirectionalAttackSearch
    >>> phi = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.Tanh()).double()
    >>> outer = lambda y: ((y - 0.2) ** 2).sum()
    >>> f = lambda x: outer(phi(x))
    >>> method = DirectionalAttackSearch(surrogate=phi, outer=outer)
    >>> sol = minimize(f, torch.zeros(2, dtype=torch.float64), method,
    ...                constraints=Box(-1.0, 1.0))
    >>> sol.success, sol.stats["surrogate_backward"] > 0
    (True, True)
    """

    surrogate: Callable[[Tensor], Tensor] | None = None
    outer: Callable[[Tensor], Tensor] | None = None
    attack: str = "fgsm"
    attack_steps: int = 3
    initial_attack_radius: float | None = None
    max_attack_radius: float = 1.0
    tau: float = 1e-3
    grow: float = 1.3
    mild_grow: float = 1.1
    shrink: float = 1.3
    speculative: bool = True

    _state_type: ClassVar[type] = AttackState

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("surrogate", "outer"):
            value = getattr(self, name)
            if value is not None and not callable(value):
                raise ValueError(
                    f"{name} must be callable or None, got {type(value).__name__}"
                )
        if self.attack not in ATTACKS:
            raise ValueError(f"attack must be one of {ATTACKS}, got {self.attack!r}")
        if (
            isinstance(self.attack_steps, bool)
            or not isinstance(self.attack_steps, int)
            or self.attack_steps < 1
        ):
            raise ValueError(
                f"attack_steps must be a positive int, got {self.attack_steps!r}"
            )
        _positive(self, "max_attack_radius")
        if self.initial_attack_radius is not None:
            _positive(self, "initial_attack_radius")
        if not (isinstance(self.tau, (int, float)) and 0 <= self.tau < math.inf):
            raise ValueError(f"tau must be a finite number >= 0, got {self.tau!r}")
        for name in ("grow", "mild_grow", "shrink"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and 1 < value < math.inf):
                raise ValueError(f"{name} must be a finite number > 1, got {value!r}")
        if not isinstance(self.speculative, bool):
            raise ValueError(
                f"speculative must be True or False, got {self.speculative!r}"
            )

    def _extra_state(
        self, problem: OptimizationProblem, x0: Tensor, poll_size: float
    ) -> dict[str, Any]:
        radius = self.initial_attack_radius or poll_size
        return {"attack_radius": min(float(radius), self.max_attack_radius)}

    def step(self, problem: OptimizationProblem, state: Any) -> AttackState:
        x = state.x.reshape(-1).clone()
        if self.speculative and state.last_step is not None:
            trial = self.project(state, x + state.last_step)
            size = float(state.last_step.abs().max())
            if not torch.equal(trial, x) and self.try_point(
                problem, state, trial, state.f - self.tau * size
            ):
                state.speculative_successes += 1
                # a line search along the direction: the next try goes twice
                # as far (repeating the same step would crawl at its length)
                state.last_step = 2.0 * (trial - x)
                return state
            state.last_step = None
        if self._attack_step(problem, state, x):
            return state
        if self.direct_search_iteration(problem, state):
            state.last_step = state.x.reshape(-1) - x
        return state

    def _attack_step(
        self, problem: OptimizationProblem, state: AttackState, x: Tensor
    ) -> bool:
        """The attack; ``True`` when it ends the iteration (sufficient decrease)."""
        radius = state.attack_radius
        attack = self._attack(problem, state, x, radius)
        state.attacks += 1
        trial = self.project(state, x + radius * attack.reshape(-1))
        if torch.equal(trial, x):
            state.attack_radius = radius / self.shrink
            return False
        f_old = state.f
        if not self.try_point(problem, state, trial, f_old):
            state.attack_radius = radius / self.shrink
            return False
        state.attack_successes += 1
        state.last_step = trial - x
        if state.f < f_old - self.tau * radius:
            state.attack_radius = min(self.grow * radius, self.max_attack_radius)
            return True
        state.attack_radius = min(self.mild_grow * radius, self.max_attack_radius)
        return False

    def _attack(
        self, problem: OptimizationProblem, state: AttackState, x: Tensor, radius: float
    ) -> Tensor:
        surrogate = self.surrogate
        if surrogate is None:
            objective = problem.objective

            def surrogate(z: Tensor) -> Tensor:
                return _ObjectiveOracle.apply(z, objective)

        result = directional_attack(
            surrogate,
            self.outer,
            x.reshape(state.x.shape),
            radius,
            method=self.attack,
            steps=self.attack_steps,
            lo=state.lo,
            hi=state.hi,
        )
        if self.surrogate is not None:
            state.surrogate_forward += result.forward
            state.surrogate_backward += result.backward
        return result.d

    def metrics(self, problem: OptimizationProblem, state: Any) -> dict[str, float]:
        return {
            **super().metrics(problem, state),
            "attack_radius": state.attack_radius,
            "surrogate_passes": float(
                state.surrogate_forward + state.surrogate_backward
            ),
        }

    def stats(self, problem: OptimizationProblem, state: Any) -> dict[str, float]:
        return {
            **super().stats(problem, state),
            "surrogate_forward": state.surrogate_forward,
            "surrogate_backward": state.surrogate_backward,
            "attacks": state.attacks,
            "attack_successes": state.attack_successes,
            "speculative_successes": state.speculative_successes,
            "attack_radius": state.attack_radius,
        }


def _positive(method: Any, name: str) -> None:
    value = getattr(method, name)
    if not (isinstance(value, (int, float)) and 0 < value < math.inf):
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")


class _ObjectiveOracle(torch.autograd.Function):
    """The objective's counted oracles as a differentiable function of ``x``:
    forward is ``objective.value``, backward ``objective.grad``."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, objective: Any) -> Tensor:
        ctx.save_for_backward(x)
        ctx.objective = objective
        return objective.value(x)

    @staticmethod
    def backward(ctx: Any, grad_output: Tensor) -> tuple[Tensor, None]:
        (x,) = ctx.saved_tensors
        return grad_output * ctx.objective.grad(x), None
