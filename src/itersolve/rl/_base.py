"""What every policy-gradient method shares: hyperparameters, state, stopping.

A method's ``step`` samples trajectories, updates its direction ``d`` and moves
``theta``; the base owns the bookkeeping (trajectories and environment steps
spent, the return of the last sampled batch) and the stopping rule::

    stop when  trajectories + cost of one more step > trajectory_budget
           or  (target_return given and the last batch's mean return >= it)

Running out of budget is SUCCESS without a target (the budget *is* the
stopping rule) and MAX_STEPS with one (the target was not reached).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch

from itersolve._core.iterate import IterativeMethod
from itersolve._core.solution import Status
from itersolve.rl._gradients import gradient_estimate
from itersolve.rl._problem import PolicySearchProblem, Trajectories, rollout, schedule


@dataclass(frozen=True)
class PolicySearchRun:
    """A problem plus what one :func:`~itersolve.rl.policy_search` run allows
    (what the driver hands to a method's ``init`` and ``step``).

    Examples
    --------
    >>> from itersolve.rl import LinearGaussianLQR, PolicySearchRun
    >>> run = PolicySearchRun(LinearGaussianLQR(), trajectory_budget=100, seed=0)
    >>> run.trajectory_budget, run.target_return
    (100, None)
    """

    problem: PolicySearchProblem
    trajectory_budget: int
    seed: int
    target_return: float | None = None


@dataclass
class PolicyGradientState:
    x: torch.Tensor
    generator: torch.Generator
    x_prev: torch.Tensor | None = None
    d: torch.Tensor | None = None
    t: int = 0
    trajectories: int = 0
    env_steps: int = 0
    last_return: float = math.nan
    step_size: float = math.nan
    returns: list[float] = field(default_factory=list)
    """Undiscounted return of every trajectory sampled, in order."""


def _check_real(value: object, name: str, *, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    bad = value <= 0 if positive else value < 0
    if not math.isfinite(value) or bad:
        relation = "> 0" if positive else ">= 0"
        raise ValueError(f"{name} must be finite and {relation}, got {value!r}")
    return float(value)


@dataclass(frozen=True, kw_only=True)
class PolicyGradientMethod(IterativeMethod):
    """Shared hyperparameters of the policy-gradient methods.

    Parameters
    ----------
    step_size
        ``gamma_0`` of the step schedule ``gamma_t = gamma_0 (c / (t + c))^p``
        with ``c = schedule_offset`` and ``p = step_decay``.
    batch_size
        Trajectories per gradient estimate.
    step_decay
        Exponent ``p`` of the step schedule (0: constant steps).
    schedule_offset
        ``c`` in every schedule (the iteration at which it has halved, for
        exponent 1, is ``c``).
    baseline
        Subtract the leave-one-out mean reward-to-go (unbiased, needs
        ``batch_size >= 2`` to have an effect).

    Examples
    --------
    >>> from itersolve.rl import REINFORCE, PolicyGradientMethod
    >>> method = REINFORCE(step_size=0.1, step_decay=1.0)
    >>> isinstance(method, PolicyGradientMethod), method.gamma(0), method.gamma(2)
    (True, 0.1, 0.05)
    """

    step_size: float = 0.1
    batch_size: int = 1
    step_decay: float = 0.0
    schedule_offset: float = 2.0
    baseline: bool = True

    #: Trajectories per step, in units of ``batch_size`` (HARPG samples two).
    BATCHES_PER_STEP: ClassVar[int] = 1

    ADVICE: ClassVar[dict[Status, str]] = {
        Status.MAX_STEPS: "raise trajectory_budget or max_steps, or tune step_size",
        Status.NONFINITE: "reduce step_size (the policy parameters overflowed)",
    }

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_real(self.step_size, "step_size", positive=True)
        _check_real(self.step_decay, "step_decay")
        _check_real(self.schedule_offset, "schedule_offset", positive=True)
        if (
            isinstance(self.batch_size, bool)
            or not isinstance(self.batch_size, int)
            or self.batch_size < 1
        ):
            raise ValueError(
                f"batch_size must be a positive int, got {self.batch_size!r}"
            )

    # -- driver protocol ----------------------------------------------------

    def default_max_steps(self, problem: Any) -> int:
        return problem.trajectory_budget + 1

    def default_stall_window(self, problem: Any) -> int | None:
        # Stochastic steps never freeze at rounding level; decaying schedules
        # may move theta by tiny amounts late in a long run, which is not a stall.
        return None

    def init(self, problem: PolicySearchRun, x0: torch.Tensor) -> PolicyGradientState:
        generator = torch.Generator().manual_seed(problem.seed)
        return PolicyGradientState(x=x0.clone(), generator=generator)

    def step_cost(self, state: PolicyGradientState) -> int:
        return self.BATCHES_PER_STEP * self.batch_size

    def terminate(
        self, problem: PolicySearchRun, state: PolicyGradientState
    ) -> tuple[bool, Status]:
        target = problem.target_return
        if target is not None and state.last_return >= target:
            return True, Status.SUCCESS
        if state.trajectories + self.step_cost(state) > problem.trajectory_budget:
            return True, Status.SUCCESS if target is None else Status.MAX_STEPS
        return False, Status.SUCCESS

    def metrics(
        self, problem: PolicySearchRun, state: PolicyGradientState
    ) -> dict[str, float]:
        out = {
            "trajectories": float(state.trajectories),
            "env_steps": float(state.env_steps),
            "return": state.last_return,
            "grad_norm": float(state.d.norm()) if state.d is not None else math.nan,
            "step_size": state.step_size,
        }
        exact = problem.problem.expected_return(state.x)
        if exact is not None:
            out["expected_return"] = float(exact)
        return out

    def stats(
        self, problem: PolicySearchRun, state: PolicyGradientState
    ) -> dict[str, float]:
        return {"trajectories": state.trajectories, "env_steps": state.env_steps}

    # -- helpers for the steps ------------------------------------------------

    def gamma(self, t: int) -> float:
        return schedule(self.step_size, self.step_decay, self.schedule_offset, t)

    def sample(
        self,
        problem: PolicySearchRun,
        state: PolicyGradientState,
        theta: torch.Tensor,
        *,
        record: bool = True,
    ) -> Trajectories:
        """Roll out ``batch_size`` episodes at ``theta`` and count them.

        ``record`` puts their returns in the learning curve (False for
        HARPG's second batch at the interpolation point, which is not a
        policy the method proposes).
        """
        batch = rollout(problem.problem, theta, self.batch_size, state.generator)
        state.trajectories += batch.num
        state.env_steps += batch.env_steps
        if record:
            returns = batch.returns()
            state.returns.extend(returns.tolist())
            state.last_return = float(returns.mean())
        return batch

    def gradient(
        self, problem: PolicySearchRun, theta: torch.Tensor, batch: Trajectories
    ) -> torch.Tensor:
        return gradient_estimate(problem.problem, theta, batch, baseline=self.baseline)
