"""GPOMDP gradient and the HARPG Hessian-vector estimate from trajectories.

Both are derivatives of one per-trajectory surrogate (Fatkhullin et al. 2023,
eq. for ``Phi``): ``Phi(tau, theta) = sum_t log pi(a_t | s_t) (G_t - b_t)``,
``G_t = sum_{t' >= t} discount^t' r_t'``, with ``b_t`` a baseline that does not
depend on ``tau`` (the mean of ``G_t`` over the *other* trajectories of the
batch: leave-one-out keeps the estimate unbiased). Its gradient is the GPOMDP
estimate ``g(tau, theta)``; ``B(tau, theta) u = <grad log p(tau | theta), u>
g(tau, theta) + hess Phi(tau, theta) u`` is unbiased for ``hess J(theta) u``.
The Hessian part is a double backward through ``torch.autograd.grad``
(never ``backward(create_graph=True)``, whose reference cycle leaks).
"""

from __future__ import annotations

import torch

from itersolve.rl._problem import PolicySearchProblem, Trajectories


def _baseline(rtg: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Leave-one-out mean of the rewards-to-go over the running episodes."""
    n = mask.sum(1, keepdim=True)
    total = (rtg * mask).sum(1, keepdim=True)
    others = (n - mask).clamp_min(1.0)
    return torch.where(n - mask > 0, (total - rtg * mask) / others, 0.0)


def _log_probs(
    problem: PolicySearchProblem, theta: torch.Tensor, batch: Trajectories
) -> torch.Tensor:
    logp = problem.policy.log_prob(theta, batch.states, batch.actions)
    if not (isinstance(logp, torch.Tensor) and logp.requires_grad):
        raise ValueError(
            "policy.log_prob is not differentiable in theta (its result does "
            "not require grad); policy gradients need a differentiable log-prob"
        )
    return logp * batch.mask


def trajectory_surrogate(
    problem: PolicySearchProblem,
    theta: torch.Tensor,
    batch: Trajectories,
    *,
    baseline: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-trajectory ``(Phi_i, log p(tau_i | theta))``, each of shape ``(N,)``.

    ``theta`` must require grad; the gradient of ``Phi_i`` is trajectory
    ``i``'s GPOMDP estimate.

    Examples
    --------
    >>> import torch
    >>> from itersolve.rl import LinearGaussianLQR, rollout, trajectory_surrogate
    >>> problem = LinearGaussianLQR(state_dim=2, action_dim=1, horizon=4)
    >>> theta = torch.zeros(2, dtype=torch.float64, requires_grad=True)
    >>> batch = rollout(problem, theta, 8, torch.Generator().manual_seed(0))
    >>> phi, loglik = trajectory_surrogate(problem, theta, batch)
    >>> phi.shape, loglik.requires_grad
    (torch.Size([8]), True)
    """
    logp = _log_probs(problem, theta, batch)
    psi = _weights(problem, batch, logp.dtype, baseline)
    return (logp * psi).sum(0), logp.sum(0)


def _weights(
    problem: PolicySearchProblem,
    batch: Trajectories,
    dtype: torch.dtype,
    baseline: bool,
) -> torch.Tensor:
    """``Psi_t = G_t - b_t`` (masked), the weight of ``log pi(a_t | s_t)``."""
    mask = batch.mask.to(dtype)
    rtg = batch.rewards_to_go(problem.discount).to(dtype)
    if baseline:
        rtg = rtg - _baseline(rtg, mask)
    return rtg * mask


def gradient_estimate(
    problem: PolicySearchProblem,
    theta: torch.Tensor,
    batch: Trajectories,
    *,
    baseline: bool = True,
) -> torch.Tensor:
    """The batch-mean GPOMDP estimate of ``grad J(theta)``.

    Examples
    --------
    >>> import torch
    >>> from itersolve.rl import LinearGaussianLQR, gradient_estimate, rollout
    >>> problem = LinearGaussianLQR(state_dim=2, action_dim=1, horizon=4)
    >>> theta = torch.zeros(2, dtype=torch.float64)
    >>> batch = rollout(problem, theta, 4000, torch.Generator().manual_seed(0))
    >>> g = gradient_estimate(problem, theta, batch)
    >>> exact = problem.gradient(theta)
    >>> bool((g - exact).norm() < 0.25 * exact.norm())  # sampling error
    True
    """
    th = theta.detach().requires_grad_(True)
    phi, _ = trajectory_surrogate(problem, th, batch, baseline=baseline)
    (g,) = torch.autograd.grad(phi.mean(), th)
    return g


def hessian_vector_estimate(
    problem: PolicySearchProblem,
    theta: torch.Tensor,
    batch: Trajectories,
    u: torch.Tensor,
    *,
    baseline: bool = True,
    causal: bool = False,
) -> torch.Tensor:
    """Batch mean of ``B(tau_i, theta) u``, unbiased for ``hess J(theta) u``.

    ``causal=False`` is the paper's ``B(tau, theta) u = <grad log p(tau), u>
    g(tau, theta) + hess Phi(tau, theta) u``. ``causal=True`` pairs each
    reward only with the score of the actions before it (Shen et al. 2019):
    with ``Phi = sum_t psi_t L_t``, ``L_t = sum_{k <= t} log pi(a_k | s_k)``,
    ``B u = hess Phi u + sum_t psi_t grad L_t <grad L_t, u>``; also unbiased,
    with a variance that does not grow with rewards paired to later actions.

    The directional derivatives ``<grad L, u>`` of every trajectory (and
    time, when causal) come from one extra backward: the derivative of
    ``sum w * (grad L . u)`` in a dummy ``w``.

    Examples
    --------
    >>> import torch
    >>> from itersolve.rl import LinearGaussianLQR, hessian_vector_estimate, rollout
    >>> problem = LinearGaussianLQR(state_dim=2, action_dim=1, horizon=4)
    >>> theta, u = torch.zeros(2).double(), torch.tensor([1.0, 0.0]).double()
    >>> batch = rollout(problem, theta, 8, torch.Generator().manual_seed(0))
    >>> hessian_vector_estimate(problem, theta, batch, u).shape
    torch.Size([2])
    """
    th = theta.detach().requires_grad_(True)
    u = u.detach().to(th.dtype)
    logp = _log_probs(problem, th, batch)
    psi = _weights(problem, batch, logp.dtype, baseline)
    if causal:
        # Phi = sum_t psi_t L_t with psi_t = Psi_t - Psi_{t+1}
        cumulative = logp.cumsum(0)
        increments = psi - torch.cat((psi[1:], torch.zeros_like(psi[:1])))
        phi = (cumulative * increments).sum(0)
        scored, weights = cumulative, increments
    else:
        phi = (logp * psi).sum(0)
        scored, weights = logp.sum(0), phi.detach()
    w = torch.zeros_like(scored, requires_grad=True)
    (grad_w,) = torch.autograd.grad((w * scored).sum(), th, create_graph=True)
    (directional,) = torch.autograd.grad(grad_w @ u, w, retain_graph=True)
    (grad_phi,) = torch.autograd.grad(phi.mean(), th, create_graph=True)
    n = batch.num
    if causal:
        outer = (directional.detach() * weights * scored).sum() / n
    else:
        outer = (directional.detach() * phi).mean()
    (hu,) = torch.autograd.grad(grad_phi @ u + outer, th)
    return hu
