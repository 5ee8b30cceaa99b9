"""Policy search by stochastic policy gradients with variance reduction.

Front door: :func:`policy_search` (``x`` = the policy parameters, a trace of
return and gradient norm against trajectories sampled). Methods:
:class:`REINFORCE` (GPOMDP with a baseline), :class:`MomentumPG`,
:class:`NormalizedPGIGT` (N-PG-IGT) and :class:`HARPG` /
:class:`NormalizedHARPG` (Hessian-aided recursive policy gradient), from
Fatkhullin, Barakat, Kireeva and He, "Stochastic Policy Gradient Methods:
Improved Sample Complexity for Fisher-non-degenerate Policies" (ICML 2023).
The variance-reduction recursions are shared with :mod:`itersolve.bilevel`
through :mod:`itersolve._core.estimators`.

Problems: :class:`LinearGaussianLQR` (closed-form return, gradient,
Hessian-vector product and optimum) and :class:`CartPole` (batched torch
CartPole-v1, step for step gymnasium's dynamics).
"""

from itersolve.rl._base import PolicyGradientMethod, PolicySearchRun
from itersolve.rl._cartpole import CartPole
from itersolve.rl._gradients import (
    gradient_estimate,
    hessian_vector_estimate,
    trajectory_surrogate,
)
from itersolve.rl._harpg import HARPG, NormalizedHARPG
from itersolve.rl._igt import NormalizedPGIGT
from itersolve.rl._lqr import LinearGaussianLQR
from itersolve.rl._momentum import MomentumPG
from itersolve.rl._policies import LinearGaussianPolicy, SoftmaxMLPPolicy
from itersolve.rl._problem import (
    Policy,
    PolicySearchProblem,
    Trajectories,
    rollout,
)
from itersolve.rl._reinforce import REINFORCE
from itersolve.rl._solve import policy_search

__all__ = [
    "HARPG",
    "REINFORCE",
    "CartPole",
    "LinearGaussianLQR",
    "LinearGaussianPolicy",
    "MomentumPG",
    "NormalizedHARPG",
    "NormalizedPGIGT",
    "Policy",
    "PolicyGradientMethod",
    "PolicySearchProblem",
    "PolicySearchRun",
    "SoftmaxMLPPolicy",
    "Trajectories",
    "gradient_estimate",
    "hessian_vector_estimate",
    "policy_search",
    "rollout",
    "trajectory_surrogate",
]
