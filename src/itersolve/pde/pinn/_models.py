"""The Eulerian PINN baseline and the Lagrangian (characteristic) PINN.

Both take the periodic input embedding ``(cos(2 pi x / L), sin(2 pi x / L), t)``,
so periodicity in ``x`` holds exactly and no boundary loss is needed. A model
turns a problem and a collocation grid into named residual vectors
(:meth:`PINNModel.residuals`); :meth:`PINNModel.losses` reduces them with the
model's norm and weights; :meth:`PINNModel.predict` gives the Eulerian field on
a grid, which is what the relative L2 error is measured on.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, ClassVar, cast

import numpy as np
import torch
from torch import nn

from itersolve.pde.pinn._autograd import _grad
from itersolve.pde.pinn._problem import ConvectionProblem, PINNProblem


def _mlp(width: int, depth: int) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Linear(3, width), nn.Tanh()]
    for _ in range(depth - 1):
        layers += [nn.Linear(width, width), nn.Tanh()]
    layers.append(nn.Linear(width, 1))
    return nn.Sequential(*layers)


def _embed(x: torch.Tensor, t: torch.Tensor, length: float) -> torch.Tensor:
    angle = (2 * math.pi / length) * x
    return torch.stack((torch.cos(angle), torch.sin(angle), t), dim=-1)


def _product(x: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Flattened tensor grid ``(x_j, t_i)``, rows ``t``, both requiring grad."""
    tt, xx = torch.meshgrid(t, x, indexing="ij")
    return (
        xx.reshape(-1).detach().requires_grad_(True),
        tt.reshape(-1).detach().requires_grad_(True),
    )


def _check_int(value: Any, name: str, least: int = 1) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise ValueError(f"{name} must be an int >= {least}, got {value!r}")


class PINNModel(nn.Module):
    """Base of the models :func:`~itersolve.pde.train_pinn` trains.

    Parameters
    ----------
    weights
        Weight of each residual in the loss (keys: :attr:`TERMS`).
    squared
        ``True``: each term is the mean square of its residual; ``False``: the
        root mean square (the unsquared norm of the Lagrangian PINN paper,
        divided by ``sqrt(n)`` so that the weights do not depend on the
        number of collocation points).

    Examples
    --------
    >>> from itersolve.pde import PINN, PINNModel
    >>> isinstance(PINN(width=8, depth=2), PINNModel)
    True
    """

    #: Residual names (a weight key may cover several, see ``WEIGHT_OF``).
    TERMS: ClassVar[tuple[str, ...]] = ()
    WEIGHT_OF: ClassVar[Mapping[str, str]] = {}

    def __init__(self, weights: Mapping[str, float], squared: bool) -> None:
        super().__init__()
        keys = set(self.WEIGHT_OF.values())
        unknown = set(weights) - keys
        if unknown:
            raise ValueError(
                f"weights has unknown keys {sorted(unknown)}; known: {sorted(keys)}"
            )
        for key, value in weights.items():
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not value >= 0
                or not math.isfinite(value)
            ):
                raise ValueError(f"weights[{key!r}] must be >= 0, got {value!r}")
        if not isinstance(squared, bool):
            raise TypeError(f"squared must be a bool, got {squared!r}")
        self.weights = dict(weights)
        self.squared = squared

    def residuals(
        self, problem: PINNProblem, x: torch.Tensor, t: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """Named residual vectors on the collocation grid ``x`` times ``t``."""
        raise NotImplementedError

    def predict(
        self, problem: PINNProblem, x: torch.Tensor, t: torch.Tensor
    ) -> torch.Tensor:
        """The Eulerian field ``u(x_j, t_i)``, shape ``(len(t), len(x))``."""
        raise NotImplementedError

    def diagnostics(
        self, problem: PINNProblem, x: torch.Tensor, t: torch.Tensor
    ) -> dict[str, float]:
        """Model-specific monitors for the trace (none by default)."""
        return {}

    def check_problem(self, problem: Any) -> None:
        """Raise ``TypeError`` unless the model can train on ``problem``."""
        if not isinstance(problem, PINNProblem):
            raise TypeError(
                "problem must be a PINNProblem (ConvectionProblem, "
                f"ConvectionDiffusionProblem, BurgersProblem), got "
                f"{type(problem).__name__}"
            )

    def losses(
        self, problem: PINNProblem, x: torch.Tensor, t: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """Each term's reduced (unweighted) value and the weighted ``"loss"``."""
        out: dict[str, torch.Tensor] = {}
        total = torch.zeros((), dtype=x.dtype, device=x.device)
        for name, r in self.residuals(problem, x, t).items():
            value = r.square().mean()
            if not self.squared:
                # sqrt has an infinite derivative at 0: a residual that is
                # exactly zero (an exact branch) must not give 0 * inf = NaN
                value = value.clamp_min(torch.finfo(value.dtype).tiny).sqrt()
            out[name] = value
            total = total + self.weights[self.WEIGHT_OF[name]] * value
        out["loss"] = total
        return out


class PINN(PINNModel):
    """Eulerian physics-informed network ``u(x, t)``: the baseline that fails.

    Loss ``w_pde ||u_t + c u_x - nu u_xx|| + w_ic ||u(x, 0) - u0(x)||`` on the
    collocation grid (periodicity exact through the input embedding); the
    PDE residual is the problem's (:meth:`PINNProblem.pde_residual`, e.g.
    ``u_t + u u_x - nu u_xx`` for :class:`BurgersProblem`), plus the
    problem's boundary and data terms ``w_bc ||.||``, ``w_data ||.||``
    (:meth:`PINNProblem.extra_residuals`; none for convection). For
    ``c >= 30`` on ``[0, 2 pi) x [0, 1]`` it trains to a smooth wrong solution
    (relative L2 of order 1, Krishnapriyan et al. 2021): the failure the
    Lagrangian PINN removes.

    Parameters
    ----------
    width, depth
        Hidden width and number of hidden ``tanh`` layers.
    weights
        ``{"pde": 1, "ic": 1, "bc": 1, "data": 1}`` by default.
    squared
        Mean-square terms (default, the usual PINN loss) or root mean square.

    Examples
    --------
    >>> import torch
    >>> from itersolve.pde import PINN, ConvectionProblem
    >>> _ = torch.manual_seed(0)
    >>> model = PINN(width=8, depth=2).double()
    >>> x, t = ConvectionProblem(1.0, n_x=4, n_t=3).collocation()
    >>> sorted(model.losses(ConvectionProblem(1.0), x, t))
    ['ic', 'loss', 'pde']
    """

    TERMS: ClassVar[tuple[str, ...]] = ("pde", "ic", "bc", "data")
    WEIGHT_OF: ClassVar[Mapping[str, str]] = {
        "pde": "pde",
        "ic": "ic",
        "bc": "bc",
        "data": "data",
    }

    def __init__(
        self,
        width: int = 32,
        depth: int = 4,
        *,
        weights: Mapping[str, float] | None = None,
        squared: bool = True,
    ) -> None:
        _check_int(width, "width")
        _check_int(depth, "depth")
        defaults = {"pde": 1.0, "ic": 1.0, "bc": 1.0, "data": 1.0}
        super().__init__({**defaults, **(weights or {})}, squared)
        self.net = _mlp(width, depth)

    def field(self, x: torch.Tensor, t: torch.Tensor, length: float) -> torch.Tensor:
        """``u`` at the points ``(x_k, t_k)`` (equal shapes)."""
        return self.net(_embed(x, t, length)).squeeze(-1)

    def residuals(
        self, problem: PINNProblem, x: torch.Tensor, t: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        xx, tt = _product(x, t)
        u = self.field(xx, tt, problem.length)
        pde = problem.pde_residual(u, xx, tt)
        ic = self.field(x, torch.zeros_like(x), problem.length) - problem.u0(x)
        out = {"pde": pde, "ic": ic}
        out.update(
            problem.extra_residuals(
                lambda xs, ts: self.field(xs, ts, problem.length), x, t
            )
        )
        return out

    def predict(
        self, problem: PINNProblem, x: torch.Tensor, t: torch.Tensor
    ) -> torch.Tensor:
        tt, xx = torch.meshgrid(t, x, indexing="ij")
        with torch.no_grad():
            return self.field(xx, tt, problem.length)


class LagrangianPINN(PINNModel):
    """Lagrangian PINN: the state ``U`` carried along characteristics ``X``.

    Two branches on the label ``xi`` (the initial position) and ``t``:
    ``U(xi, t)`` and the displacement form of the characteristic
    ``X(xi, t) = xi + s t N_X(xi, t)`` with ``s = c`` (``s = 1`` for
    ``c = 0``); ``hard_ic=False`` drops the factor ``t``
    (``X = xi + s N_X``) and enforces ``X(xi, 0) = xi`` by the loss instead.
    Letting the branch output ``X`` directly fails (relative L2 1.27 at
    ``c = 30``, issue 19's measurement); scaled by ``c`` the exact branch is
    ``N_X = 1`` (``N_X = t`` for the soft form) whatever the speed. Measured
    at ``c = 50`` (64 x 25 points, width 32, 1500 Adam steps at
    ``lr = 1e-3``, float32): relative L2 0.032 with the hard initial
    condition, 0.47 with the soft one, whose ``R_x`` and ``IC_x`` terms pull
    the same branch against each other. Residuals (Mojgani, Balajewicz &
    Hassanzadeh 2023)::

        R_x = X_t - c              R_u = U_t - nu U_xx,
        U_xx = (U_xixi X_xi - U_xi X_xixi) / X_xi^3   (chain rule through X)
        IC:  X(xi, 0) - xi,  U(xi, 0) - u0(xi)

    For ``nu > 0`` the loss takes ``X_xi^3 R_u``, which has no division by
    ``X_xi`` (near zero where an untrained branch lets characteristics
    cross) and equals ``R_u`` on the exact characteristics (``X_xi = 1``).

    and loss ``w_rx ||R_x|| + w_ru ||R_u|| + w_ic (||IC_x|| + ||IC_u||)``,
    norms not squared by default as in the paper. :meth:`predict` scatters
    ``(X mod L, U)`` back to the Eulerian grid by periodic linear
    interpolation.

    Parameters
    ----------
    width
        Hidden width of both branches.
    depth_u, depth_x
        Hidden ``tanh`` layers of the ``U`` and ``X`` branches.
    weights
        ``{"rx": 10, "ru": 1, "ic": 1000}`` by default (the paper's).
    squared
        Root-mean-square terms (``False``, default) or mean squares.
    hard_ic
        ``X = xi + s t N_X`` (default; ``IC_x`` is zero and left out of the
        loss) or ``X = xi + s N_X`` with the ``IC_x`` loss term.

    Examples
    --------
    >>> import torch
    >>> from itersolve.pde import LagrangianPINN, ConvectionProblem
    >>> _ = torch.manual_seed(0)
    >>> model = LagrangianPINN(width=8, depth_u=2, depth_x=1).double()
    >>> problem = ConvectionProblem(50.0, n_x=4, n_t=3)
    >>> sorted(model.losses(problem, *problem.collocation()))
    ['ic_u', 'loss', 'ru', 'rx']
    """

    TERMS: ClassVar[tuple[str, ...]] = ("rx", "ru", "ic_x", "ic_u")
    WEIGHT_OF: ClassVar[Mapping[str, str]] = {
        "rx": "rx",
        "ru": "ru",
        "ic_x": "ic",
        "ic_u": "ic",
    }

    def __init__(
        self,
        width: int = 32,
        depth_u: int = 4,
        depth_x: int = 2,
        *,
        weights: Mapping[str, float] | None = None,
        squared: bool = False,
        hard_ic: bool = True,
    ) -> None:
        if not isinstance(hard_ic, bool):
            raise TypeError(f"hard_ic must be a bool, got {hard_ic!r}")
        self.hard_ic = hard_ic
        _check_int(width, "width")
        _check_int(depth_u, "depth_u")
        _check_int(depth_x, "depth_x")
        defaults = {"rx": 10.0, "ru": 1.0, "ic": 1000.0}
        super().__init__({**defaults, **(weights or {})}, squared)
        self.net_u = _mlp(width, depth_u)
        self.net_x = _mlp(width, depth_x)

    def check_problem(self, problem: Any) -> None:
        """Only constant-speed convection(-diffusion): the characteristics
        ``X_t = c`` are built into the ``X`` branch."""
        if not isinstance(problem, ConvectionProblem):
            raise TypeError(
                "LagrangianPINN trains on a ConvectionProblem or "
                f"ConvectionDiffusionProblem, got {type(problem).__name__}"
            )

    def _convection(self, problem: PINNProblem) -> ConvectionProblem:
        self.check_problem(problem)
        return cast(ConvectionProblem, problem)

    @staticmethod
    def _scale(problem: ConvectionProblem) -> float:
        return problem.c if problem.c != 0 else 1.0

    def characteristics(
        self, problem: ConvectionProblem, xi: torch.Tensor, t: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(X, U)`` at the points ``(xi_k, t_k)`` (equal shapes)."""
        z = _embed(xi, t, problem.length)
        shift = self._scale(problem) * self.net_x(z).squeeze(-1)
        if self.hard_ic:
            shift = t * shift
        return xi + shift, self.net_u(z).squeeze(-1)

    def residuals(
        self, problem: PINNProblem, x: torch.Tensor, t: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        problem = self._convection(problem)
        xi, tt = _product(x, t)
        X, U = self.characteristics(problem, xi, tt)
        rx = _grad(X, tt) - problem.c
        ru = _grad(U, tt)
        if problem.nu > 0:
            # X_xi^3 R_u with U_xx by the chain rule, free of the division by
            # X_xi: an untrained X branch has X_xi ~ 0 (crossing
            # characteristics), where R_u itself blows up and its gradient
            # wrecks the X branch (measured: relative L2 1.08 at c = 50,
            # nu = 0.01, against 6e-3 in this form).
            x_xi = _grad(X, xi)
            u_xi = _grad(U, xi)
            u_xixi = _grad(u_xi, xi)
            ru = x_xi**3 * ru - problem.nu * (u_xixi * x_xi - u_xi * _grad(x_xi, xi))
        X0, U0 = self.characteristics(problem, x, torch.zeros_like(x))
        out = {"rx": rx, "ru": ru, "ic_x": X0 - x, "ic_u": U0 - problem.u0(x)}
        if self.hard_ic:
            del out["ic_x"]  # zero by construction
        return out

    def predict(
        self, problem: PINNProblem, x: torch.Tensor, t: torch.Tensor
    ) -> torch.Tensor:
        problem = self._convection(problem)
        # Labels on the same uniform grid as x: the scatter then has one
        # characteristic per output point, which linear interpolation needs.
        tt, xi = torch.meshgrid(t, x, indexing="ij")
        with torch.no_grad():
            X, U = self.characteristics(problem, xi, tt)
        Xn = X.detach().cpu().double().numpy()
        Un = U.detach().cpu().double().numpy()
        xn = x.detach().cpu().double().numpy()
        rows = [
            np.interp(xn, np.mod(Xn[i], problem.length), Un[i], period=problem.length)
            for i in range(Xn.shape[0])
        ]
        return torch.as_tensor(np.stack(rows), dtype=x.dtype, device=x.device)

    def diagnostics(
        self, problem: PINNProblem, x: torch.Tensor, t: torch.Tensor
    ) -> dict[str, float]:
        """``min_spacing`` on the collocation grid (:meth:`min_spacing`)."""
        return {"min_spacing": self.min_spacing(self._convection(problem), x, t)}

    def min_spacing(
        self, problem: ConvectionProblem, x: torch.Tensor, t: torch.Tensor
    ) -> float:
        """``min diff(X)`` over sorted labels: the crossing monitor (<= 0 when
        characteristics cross)."""
        tt, xi = torch.meshgrid(t, torch.sort(x).values, indexing="ij")
        with torch.no_grad():
            X, _ = self.characteristics(problem, xi, tt)
        return float(torch.diff(X, dim=1).min())
