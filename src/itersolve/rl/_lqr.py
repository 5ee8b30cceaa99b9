"""Linear-Gaussian LQR: a policy-search problem with a closed-form objective."""

from __future__ import annotations

import numpy as np
import scipy.linalg as sla
import torch

from itersolve.rl._policies import LinearGaussianPolicy
from itersolve.rl._problem import PolicySearchProblem


class LinearGaussianLQR(PolicySearchProblem):
    """Discrete-time LQR under a linear Gaussian policy, with exact ``J``.

    ``s_{t+1} = A s_t + B a_t + w_t``, ``w_t ~ N(0, noise_std^2 I)``,
    ``s_0 ~ N(0, init_std^2 I)``, reward ``r_t = -(s_t^T Q s_t + a_t^T R a_t)``,
    policy ``a_t ~ N(K s_t, policy_std^2 I)`` with ``K = theta.reshape(m, n)``.
    The state covariance obeys ``S_{t+1} = (A + B K) S_t (A + B K)^T +
    policy_std^2 B B^T + noise_std^2 I``, so

    ``J_H(K) = -sum_{t < H} discount^t [tr((Q + K^T R K) S_t) + policy_std^2 tr R]``

    exactly: :meth:`expected_return`; its gradient and Hessian-vector product
    (:meth:`gradient`, :meth:`hvp`) are derivatives of that formula (autograd
    through ``H`` matrix products). The optimum over ``K``
    (:meth:`optimal_theta`) starts from the discounted infinite-horizon gain
    (``scipy.linalg.solve_discrete_are`` on ``sqrt(discount) A``,
    ``sqrt(discount) B``) and is refined by Newton's method on ``J_H`` to a
    gradient of rounding level.

    ``A`` is a seeded Gaussian matrix rescaled to ``spectral_radius``, ``B``
    Gaussian over ``sqrt(n)``, ``Q = I``, ``R = I``.

    Examples
    --------
    >>> import torch
    >>> from itersolve.rl import LinearGaussianLQR
    >>> problem = LinearGaussianLQR(state_dim=3, action_dim=2, horizon=10)
    >>> theta = torch.zeros(6, dtype=torch.float64)
    >>> bool(problem.optimal_return() > problem.expected_return(theta))
    True
    >>> float(problem.gradient(problem.optimal_theta()).norm()) < 1e-9
    True
    """

    def __init__(
        self,
        state_dim: int = 5,
        action_dim: int = 2,
        horizon: int = 20,
        *,
        discount: float = 0.9,
        policy_std: float = 0.5,
        noise_std: float = 0.1,
        init_std: float = 1.0,
        spectral_radius: float = 0.95,
        seed: int = 0,
    ) -> None:
        self.gaussian = LinearGaussianPolicy(state_dim, action_dim, policy_std)
        self.policy = self.gaussian
        if not isinstance(horizon, int) or horizon < 1:
            raise ValueError(f"horizon must be a positive int, got {horizon!r}")
        if not 0.0 < discount <= 1.0:
            raise ValueError(f"discount must be in (0, 1], got {discount!r}")
        for name, value in (("noise_std", noise_std), ("init_std", init_std)):
            if not value >= 0:
                raise ValueError(f"{name} must be >= 0, got {value!r}")
        if not spectral_radius > 0:
            raise ValueError(f"spectral_radius must be > 0, got {spectral_radius!r}")
        self.horizon, self.discount = horizon, float(discount)
        self.noise_std, self.init_std = float(noise_std), float(init_std)
        rng = np.random.default_rng(seed)
        n, m = state_dim, action_dim
        A = rng.standard_normal((n, n))
        A *= spectral_radius / max(abs(np.linalg.eigvals(A)))
        self.A = torch.from_numpy(A)
        self.B = torch.from_numpy(rng.standard_normal((n, m)) / np.sqrt(n))
        self.Q = torch.eye(n, dtype=torch.float64)
        self.R = torch.eye(m, dtype=torch.float64)
        self._optimum: torch.Tensor | None = None

    # -- environment --------------------------------------------------------

    def reset(self, n: int, generator: torch.Generator) -> torch.Tensor:
        shape = (n, self.gaussian.state_dim)
        return self.init_std * torch.randn(shape, generator=generator, dtype=self.dt)

    def step(
        self, states: torch.Tensor, actions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        s, a = states.to(self.dt), actions.to(self.dt)
        reward = -((s @ self.Q) * s).sum(-1) - ((a @ self.R) * a).sum(-1)
        done = torch.zeros(s.shape[0], dtype=torch.bool)
        return s @ self.A.T + a @ self.B.T, reward, done

    def transition_noise(
        self, states: torch.Tensor, generator: torch.Generator
    ) -> torch.Tensor | None:
        if self.noise_std == 0:
            return None
        noise = torch.randn(states.shape, generator=generator, dtype=self.dt)
        return self.noise_std * noise

    @property
    def dt(self) -> torch.dtype:
        return torch.float64

    # -- closed forms -------------------------------------------------------

    def expected_return(self, theta: torch.Tensor) -> torch.Tensor:
        """``J_H(theta)`` (differentiable in ``theta``)."""
        K = self.gaussian.gain(theta.to(self.dt))
        n = self.gaussian.state_dim
        var = self.gaussian.std**2
        closed = self.A + self.B @ K
        drive = var * self.B @ self.B.T + self.noise_std**2 * torch.eye(n).to(self.dt)
        S = self.init_std**2 * torch.eye(n, dtype=self.dt)
        cost_matrix = self.Q + K.T @ self.R @ K
        action_noise = var * torch.trace(self.R)
        total = torch.zeros((), dtype=self.dt)
        for t in range(self.horizon):
            step_cost = torch.trace(cost_matrix @ S) + action_noise
            total = total - self.discount**t * step_cost
            S = closed @ S @ closed.T + drive
        return total

    def gradient(self, theta: torch.Tensor) -> torch.Tensor:
        """``grad J_H(theta)``."""
        th = theta.detach().to(self.dt).requires_grad_(True)
        (g,) = torch.autograd.grad(self.expected_return(th), th)
        return g

    def hvp(self, theta: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """``hess J_H(theta) u``."""
        th = theta.detach().to(self.dt).requires_grad_(True)
        (g,) = torch.autograd.grad(self.expected_return(th), th, create_graph=True)
        (hu,) = torch.autograd.grad(g @ u.to(self.dt), th)
        return hu

    def hessian(self, theta: torch.Tensor) -> torch.Tensor:
        th = theta.detach().to(self.dt)
        return torch.autograd.functional.hessian(self.expected_return, th)

    def infinite_horizon_theta(self) -> torch.Tensor:
        """The discounted infinite-horizon optimal gain, flattened."""
        root = np.sqrt(self.discount)
        A, B = root * self.A.numpy(), root * self.B.numpy()
        P = sla.solve_discrete_are(A, B, self.Q.numpy(), self.R.numpy())
        K = -np.linalg.solve(self.R.numpy() + B.T @ P @ B, B.T @ P @ A)
        return torch.from_numpy(K.reshape(-1).copy())

    def optimal_theta(self) -> torch.Tensor:
        """``argmax J_H`` (Newton on the closed form from the DARE gain)."""
        if self._optimum is None:
            theta = self.infinite_horizon_theta()
            for _ in range(50):
                g = self.gradient(theta)
                H = self.hessian(theta)
                theta = theta - torch.linalg.solve(H, g)
                if float(g.norm()) <= 1e-12 * (
                    1 + float(self.expected_return(theta)).__abs__()
                ):
                    break
            H = self.hessian(theta)
            if not bool((torch.linalg.eigvalsh(H) < 0).all()):
                raise RuntimeError("Newton refinement did not end at a maximum of J_H")
            self._optimum = theta
        return self._optimum.clone()

    def optimal_return(self) -> float:
        """``max_K J_H(K)``."""
        return float(self.expected_return(self.optimal_theta()))
