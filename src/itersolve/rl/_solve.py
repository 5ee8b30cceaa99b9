"""``policy_search``: the front door of the policy-gradient family."""

from __future__ import annotations

import math
from typing import Any

import torch

from itersolve._core.frontdoor import check_method, solve
from itersolve._core.iterate import Callback, IterativeMethod
from itersolve._core.solution import Solution
from itersolve._core.tensors import as_tensor
from itersolve.rl._base import PolicyGradientMethod, PolicySearchRun
from itersolve.rl._harpg import NormalizedHARPG
from itersolve.rl._problem import check_problem


def _check_differentiable(problem: Any, theta: torch.Tensor) -> None:
    """One probe state and action: ``log_prob`` must carry a gradient."""
    generator = torch.Generator().manual_seed(0)
    th = theta.detach().clone().requires_grad_(True)
    with torch.no_grad():
        state = problem.reset(1, generator)
        action = problem.policy.sample(th, state, generator)
    logp = problem.policy.log_prob(th, state, action)
    if not (isinstance(logp, torch.Tensor) and logp.requires_grad):
        raise ValueError(
            "policy.log_prob is not differentiable in theta (its result does not "
            "require grad); policy gradients need a differentiable log-prob"
        )


def policy_search(
    problem: Any,
    theta0: Any,
    method: IterativeMethod | None = None,
    *,
    trajectory_budget: int,
    seed: int = 0,
    target_return: float | None = None,
    callback: Callback | None = None,
    record: bool | int = False,
    throw: bool = False,
) -> Solution:
    """Maximise a policy's expected return by stochastic policy gradients.

    Parameters
    ----------
    problem
        A :class:`~itersolve.rl.PolicySearchProblem`
        (:class:`~itersolve.rl.LinearGaussianLQR`,
        :class:`~itersolve.rl.CartPole` or your own).
    theta0
        Initial flat policy parameters, shape ``(problem.policy.num_params,)``,
        on the CPU (where the batched environments step).
    method
        A method of :mod:`itersolve.rl`; ``None`` picks
        ``NormalizedHARPG()`` (the best proven sample complexity).
    trajectory_budget
        Most trajectories sampled in total (every batch counts, HARPG's
        second batch at the interpolation point included): the x-axis of
        every comparison. The run stops before a step that would exceed it.
    seed
        Seeds the one generator of every rollout and random draw: equal seeds
        give equal runs.
    target_return
        Stop once the mean undiscounted return of the last sampled batch
        reaches it (then running out of budget is ``MAX_STEPS``).
    callback, record, throw
        As in every front door; the trace columns are ``trajectories``,
        ``env_steps``, ``return`` (mean return of the step's batch),
        ``grad_norm`` (``||d_t||``), ``step_size`` and, for problems with a
        closed form, ``expected_return`` (``J(theta_t)``).

    Returns
    -------
    Solution
        ``x``: the final parameters in ``theta0``'s kind and dtype;
        ``stats["trajectories"]`` and ``stats["env_steps"]``. Stopping rule::

            trajectories + (cost of the next step) > trajectory_budget
            or mean return of the last batch >= target_return

    Examples
    --------
    >>> import numpy as np
    >>> from itersolve.rl import LinearGaussianLQR, policy_search
    >>> problem = LinearGaussianLQR(state_dim=2, action_dim=1, horizon=10)
    >>> sol = policy_search(problem, np.zeros(2), trajectory_budget=99, seed=1)
    >>> sol.success, type(sol.x).__name__, sol.stats["trajectories"]
    (True, 'ndarray', 99)
    """
    problem = check_problem(problem)
    method = check_method(
        NormalizedHARPG() if method is None else method, "NormalizedHARPG()"
    )
    if not isinstance(method, PolicyGradientMethod):
        raise TypeError(
            "method must be a policy-gradient method such as NormalizedHARPG(), "
            f"got {type(method).__name__}"
        )
    if (
        isinstance(trajectory_budget, bool)
        or not isinstance(trajectory_budget, int)
        or trajectory_budget < 1
    ):
        raise ValueError(
            f"trajectory_budget must be a positive int, got {trajectory_budget!r}"
        )
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an int, got {seed!r}")
    if target_return is not None and not math.isfinite(target_return):
        raise ValueError(f"target_return must be finite or None, got {target_return!r}")
    theta, info = as_tensor(theta0, "theta0")
    if theta.device.type != "cpu":
        # the environments step on CPU tensors; a GPU buys nothing at these sizes
        raise ValueError(
            f"policy_search runs its rollouts on the CPU; got theta0 on {theta.device}"
        )
    expected = problem.policy.num_params
    if theta.shape != (expected,):
        raise ValueError(
            f"theta0 must have shape ({expected},) for this policy, "
            f"got {tuple(theta.shape)}"
        )
    if method.batch_size > trajectory_budget:
        raise ValueError(
            f"trajectory_budget ({trajectory_budget}) is smaller than one batch "
            f"(batch_size={method.batch_size})"
        )
    if bool(torch.isfinite(theta).all()):
        _check_differentiable(problem, theta)
    run = PolicySearchRun(problem, trajectory_budget, seed, target_return)
    return solve(
        method,
        run,
        theta,
        output=info,
        callback=callback,
        record=record,
        throw=throw,
    )
