"""Viscous Burgers on ``[-1, 1]`` (Raissi et al.'s PINN benchmark) with noisy data."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import KW_ONLY, dataclass, field
from functools import cached_property
from typing import Any, ClassVar, NamedTuple

import torch

from itersolve.pde.pinn._autograd import _grad
from itersolve.pde.pinn._problem import PINNProblem, _count, _real
from itersolve.pde.pinn._references import burgers_cole_hopf


class SensorData(NamedTuple):
    """Noisy point observations ``u[k] ~ u(x[k], t[k])`` of a PINN problem.

    Attributes
    ----------
    x, t, u
        1-D float64 tensors of equal length: sensor positions, times and the
        observed values.
    noise_std
        Standard deviation of the Gaussian noise added to the exact values
        (0 for exact data).

    Examples
    --------
    >>> from itersolve.pde import BurgersProblem
    >>> data = BurgersProblem().with_noisy_data(5, noise=0.1, seed=0).observations
    >>> data.u.shape, round(data.noise_std, 3)
    (torch.Size([5]), 0.079)
    """

    x: torch.Tensor
    t: torch.Tensor
    u: torch.Tensor
    noise_std: float


def _check_data(data: Any) -> SensorData:
    if not isinstance(data, SensorData):
        raise TypeError(
            f"observations must be a SensorData (see with_noisy_data), got {data!r}"
        )
    n = data.u.shape
    for name in ("x", "t", "u"):
        value = getattr(data, name)
        if not isinstance(value, torch.Tensor) or value.ndim != 1:
            raise ValueError(f"observations.{name} must be a 1-D tensor")
        if value.shape != n or value.shape[0] == 0:
            raise ValueError(
                "observations.x, .t and .u must be non-empty and of equal length, "
                f"got {tuple(data.x.shape)}, {tuple(data.t.shape)}, {tuple(n)}"
            )
        if not bool(torch.isfinite(value).all()):
            raise ValueError(f"observations.{name} contains non-finite values")
    if not _real(data.noise_std, "observations.noise_std") >= 0:
        raise ValueError(f"observations.noise_std must be >= 0, got {data.noise_std}")
    return data


@dataclass(frozen=True, eq=False)
class BurgersProblem(PINNProblem):
    """``u_t + u u_x = nu u_xx`` on ``[-1, 1] x [0, t_final]``, ``u0 = -sin(pi x)``.

    The Dirichlet data ``u(+-1, t) = 0`` are those of the 2-periodic problem
    (its solution is odd about ``x = 0`` and ``x = 1``), so the models'
    periodic input embedding with ``length = 2`` fits it; the ``"bc"`` term
    still asks ``u(+-1, t) = 0`` at the collocation times. The reference is
    :func:`burgers_cole_hopf` (Cole--Hopf, Gauss--Hermite) on the
    ``eval_x x eval_t`` grid ``linspace(-1, 1) x linspace(0, t_final)``,
    computed once per problem. With :attr:`observations` (see
    :meth:`with_noisy_data`) the ``"data"`` term fits the noisy values.

    Parameters
    ----------
    nu
        Viscosity, ``> 0`` (default ``0.01 / pi``: the shock at ``x = 0``
        steepens to a slope of about -152 at ``t = 1 / pi``).
    n_x, n_t
        Collocation points per axis of the seeded jittered tensor grid
        (default 100 x 20 = 2000 points).
    t_final
        Time horizon.
    eval_x, eval_t
        Size of the error-evaluation grid.
    observations
        Optional :class:`SensorData` for the data term.

    Examples
    --------
    >>> import math
    >>> from itersolve.pde import BurgersProblem
    >>> problem = BurgersProblem(n_x=8, n_t=4)
    >>> x, t = problem.collocation(seed=0)
    >>> bool(x.min() >= -1 and x.max() < 1), problem.reference().shape
    (True, torch.Size([100, 256]))
    >>> BurgersProblem(nu=-0.1)
    Traceback (most recent call last):
    ...
    ValueError: nu must be > 0, got -0.1
    """

    nu: float = 0.01 / math.pi
    _: KW_ONLY
    n_x: int = 100
    n_t: int = 20
    t_final: float = 1.0
    eval_x: int = 256
    eval_t: int = 100
    observations: SensorData | None = None
    length: float = field(default=2.0, init=False)
    x_start: ClassVar[float] = -1.0

    def __post_init__(self) -> None:
        if not _real(self.nu, "nu") > 0:
            raise ValueError(f"nu must be > 0, got {self.nu!r}")
        if not _real(self.t_final, "t_final") > 0:
            raise ValueError(f"t_final must be > 0, got {self.t_final!r}")
        _count(self.n_x, "n_x", 2)
        _count(self.n_t, "n_t", 1)
        _count(self.eval_x, "eval_x", 2)
        _count(self.eval_t, "eval_t", 2)
        if self.observations is not None:
            _check_data(self.observations)

    def u0(self, x: torch.Tensor) -> torch.Tensor:
        """The initial condition ``-sin(pi x)``."""
        return -torch.sin(math.pi * x)

    def pde_residual(
        self, u: torch.Tensor, x: torch.Tensor, t: torch.Tensor
    ) -> torch.Tensor:
        """``u_t + u u_x - nu u_xx`` pointwise."""
        u_x = _grad(u, x)
        return _grad(u, t) + u * u_x - self.nu * _grad(u_x, x)

    def extra_residuals(
        self,
        field: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
        x: torch.Tensor,
        t: torch.Tensor,
    ) -> dict[str, torch.Tensor]:
        """``"bc"``: ``u(-1, t)`` and ``u(1, t)`` at the collocation times;
        ``"data"``: ``u(x_k, t_k) - u_k`` at the sensors (with observations)."""
        ends = torch.cat((-torch.ones_like(t), torch.ones_like(t)))
        out = {"bc": field(ends, torch.cat((t, t)))}
        if self.observations is not None:
            data = self.observations
            xs, ts, us = (v.to(dtype=x.dtype, device=x.device) for v in data[:3])
            out["data"] = field(xs, ts) - us
        return out

    def eval_grid(
        self, dtype: torch.dtype = torch.float64
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``linspace(-1, 1, eval_x)`` and ``linspace(0, t_final, eval_t)``."""
        x = torch.linspace(-1.0, 1.0, self.eval_x, dtype=dtype)
        t = torch.linspace(0.0, self.t_final, self.eval_t, dtype=dtype)
        return x, t

    @cached_property
    def _reference(self) -> torch.Tensor:
        # relative_l2 runs after every training step: Cole--Hopf once per problem
        return burgers_cole_hopf(*self.eval_grid(), self.nu)

    def reference(self) -> torch.Tensor:
        """:func:`burgers_cole_hopf` on :meth:`eval_grid` (float64)."""
        return self._reference.clone()

    def exact(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """The exact solution at the scattered points ``(x[k], t[k])`` (float64)."""
        x = torch.as_tensor(x, dtype=torch.float64)
        t = torch.as_tensor(t, dtype=torch.float64)
        if x.ndim != 1 or x.shape != t.shape:
            raise ValueError(
                "x and t must be 1-D of equal length, got shapes "
                f"{tuple(x.shape)} and {tuple(t.shape)}"
            )
        # the diagonal of the (t, x) Cole--Hopf grid: n^2 quadratures, cheap
        # for the ~100 sensors this is for
        return torch.diagonal(burgers_cole_hopf(x, t, self.nu)).clone()

    def with_noisy_data(
        self, n_sensors: int = 100, *, noise: float = 0.1, seed: int = 0
    ) -> BurgersProblem:
        """A copy with ``n_sensors`` noisy observations (:class:`SensorData`).

        Sensors are uniform in ``[-1, 1] x [0, t_final]`` (seeded); the values
        are the exact solution plus Gaussian noise of standard deviation
        ``noise * std(u_exact)`` over the sensors (Raissi et al.'s convention:
        ``noise = 0.1`` is "10% noise").

        Examples
        --------
        >>> from itersolve.pde import BurgersProblem
        >>> p = BurgersProblem().with_noisy_data(50, noise=0.0, seed=1)
        >>> data = p.observations
        >>> bool((p.exact(data.x, data.t) - data.u).abs().max() < 1e-12)
        True
        """
        _count(n_sensors, "n_sensors", 1)
        if not _real(noise, "noise") >= 0:
            raise ValueError(f"noise must be >= 0, got {noise!r}")
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise TypeError(f"seed must be an int, got {seed!r}")
        gen = torch.Generator().manual_seed(seed)
        x = 2 * torch.rand(n_sensors, generator=gen, dtype=torch.float64) - 1
        t = self.t_final * torch.rand(n_sensors, generator=gen, dtype=torch.float64)
        clean = self.exact(x, t)
        scale = float(clean.std()) if n_sensors > 1 else abs(float(clean[0]))
        std = noise * scale
        eps = torch.randn(n_sensors, generator=gen, dtype=torch.float64)
        data = SensorData(x, t, clean + std * eps, std)
        return dataclasses.replace(self, observations=data)
