"""HomoODE: the homotopy ODE between a DEQ cell and its equilibrium (paper 16)."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd.function import once_differentiable

from itersolve._core.errors import ConvergenceError, ConvergenceWarning
from itersolve._core.frontdoor import check_tolerances
from itersolve._core.iterate import IterativeMethod
from itersolve._core.operators import aslinearoperator
from itersolve._core.solution import Solution, Status
from itersolve.fixed_point import implicit_vjp
from itersolve.linear import GMRES, linear_solve
from itersolve.nn._runge_kutta import METHODS, Integration, dopri5, rk4

_FIELDS = ("learned", "newton")
_INITS = ("zeros", "input")


def _positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an int >= 1, got {value!r}")
    return value


class _Counted:
    """``cell(z, x)`` with a call counter (the forward evaluations reported)."""

    def __init__(self, cell: nn.Module, x: torch.Tensor) -> None:
        self.cell, self.x, self.calls = cell, x, 0

    def __call__(self, z: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        out = self.cell(z, self.x)
        if not isinstance(out, torch.Tensor) or out.shape != z.shape:
            shape = getattr(out, "shape", type(out).__name__)
            raise ValueError(
                f"cell(z, x) must return a tensor of z's shape {tuple(z.shape)}, "
                f"got {shape}"
            )
        return out


class _NewtonField:
    """``dz/dlambda = (I - J_f(z))^-1 (f(z0) - z0)``: one matrix-free
    :func:`~itersolve.linear.linear_solve` per evaluation, ``J_f v`` by
    autograd (one cell evaluation per right-hand side)."""

    def __init__(self, f: _Counted, r0: torch.Tensor, method: IterativeMethod) -> None:
        self.f, self.r0, self.method = f, r0, method
        self.jvps = self.linear_steps = 0
        self.failure: Status | None = None

    def __call__(self, z: torch.Tensor) -> torch.Tensor:
        shape, n = z.shape, z.numel()
        with torch.enable_grad():
            # J v by the double-VJP trick: u -> J^T u is linear in u, so its
            # VJP with v is J v; the cell runs once per right-hand side and
            # each product is one backward pass (forward-mode AD was 25x
            # slower per product on small cells).
            zr = z.detach().requires_grad_()
            y = self.f(zr)
            u = torch.zeros_like(y, requires_grad=True)
            jtu = None
            if y.requires_grad:
                (jtu,) = torch.autograd.grad(
                    y, zr, u, create_graph=True, allow_unused=True
                )
        if jtu is None:  # the cell does not depend on z: J = 0
            return self.r0.clone()

        def matvec(v: torch.Tensor) -> torch.Tensor:
            self.jvps += 1
            (jv,) = torch.autograd.grad(jtu, u, v.reshape(shape), retain_graph=True)
            return v - jv.reshape(-1)

        op = aslinearoperator(matvec, shape=(n, n), dtype=z.dtype, device=z.device)
        b = self.r0.reshape(-1)
        with warnings.catch_warnings():
            # The failure is reported once, by the layer, as its own status.
            warnings.simplefilter("ignore", ConvergenceWarning)
            sol = linear_solve(op, b, self.method, x0=b)
        self.linear_steps += sol.num_steps
        if not sol.success and self.failure is None:
            self.failure = sol.status
        return sol.x.reshape(shape)


class _ImplicitEndpoint(torch.autograd.Function):
    """Attach the implicit-function-theorem gradient of the fixed point to the
    Newton-homotopy endpoint (which is that fixed point)."""

    @staticmethod
    def forward(
        ctx: Any, layer: HomoODE, z: torch.Tensor, x: torch.Tensor, *params: Any
    ) -> torch.Tensor:
        ctx.layer = layer
        ctx.save_for_backward(z, x)
        return z.clone()

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad_z: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        layer: HomoODE = ctx.layer
        z, x = ctx.saved_tensors
        params = [p for p in layer.cell.parameters() if p.requires_grad]
        with torch.enable_grad():
            xr = x.detach().requires_grad_()
            u, sol = implicit_vjp(
                lambda v: layer.cell(v, xr), z.detach(), grad_z, throw=layer.throw
            )
            if layer.info is not None:
                layer.info.extras["adjoint"] = sol
            zr = z.detach().requires_grad_()
            y = layer.cell(zr, xr)
            wrt = [xr, *params]
            grads: tuple[torch.Tensor | None, ...] = (None,) * len(wrt)
            if y.requires_grad:
                grads = torch.autograd.grad(y, wrt, u.to(y.dtype), allow_unused=True)
        out: list[torch.Tensor | None] = [None, None]  # layer, z
        out.append(grads[0] if ctx.needs_input_grad[2] else None)
        out.extend(grads[1:])
        return tuple(out)


class SharedStart(nn.Module):
    """A learnable starting point shared by every sample: ``z_init`` for
    :class:`HomoODE` as paper 16's reference code's ``InitLayer`` (a layer on a
    constant input).

    ``forward(x)`` returns the point (zeros at construction) broadcast to
    ``x``'s shape, whose trailing dimensions must be ``shape``. Trained
    through :attr:`HomoODE.init_loss`, it moves towards the average endpoint,
    so that the ODE path from it is shorter.

    Parameters
    ----------
    *shape
        The shape of one sample (ints >= 1).

    Raises
    ------
    ValueError
        No shape, or a dimension that is not an int >= 1.

    Examples
    --------
    >>> import torch
    >>> from itersolve.nn import SharedStart
    >>> start = SharedStart(4)
    >>> start(torch.ones(3, 4)).shape, int(start.point.count_nonzero())
    (torch.Size([3, 4]), 0)
    """

    def __init__(self, *shape: int) -> None:
        super().__init__()
        if not shape:
            raise ValueError("shape must name at least one dimension, got ()")
        for i, n in enumerate(shape):
            _positive_int(n, f"shape[{i}]")
        self.point = nn.Parameter(torch.zeros(shape))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.point.to(x.dtype).expand_as(x)


class HomoODE(nn.Module):
    """The homotopy ODE between a deep equilibrium cell and its fixed point.

    A DEQ solves ``z* = f(z*, x)``. The Newton homotopy
    ``H(z, lam) = [z - f(z, x)] - (1 - lam) [z0 - f(z0, x)]`` runs from the
    easy problem ``H(z, 0) = 0`` (solved by ``z0``) to the equilibrium
    ``H(z*, 1) = 0``; following its zero path is the ODE::

        dz/dlam = (I - J_f(z))^-1 (f(z0, x) - z0),   z(0) = z0,   lam in [0, 1]

    whose endpoint ``z(1)`` is the DEQ's fixed point. Two fields:

    * ``field="newton"``: that exact ODE; each right-hand side is one
      matrix-free :func:`~itersolve.linear.linear_solve` (``linear_method``;
      one cell evaluation, then ``J_f v`` products by autograd). The endpoint
      is the fixed point up to the integration and inner-solve errors; gradients are the
      implicit ones of the fixed point (:func:`~itersolve.fixed_point.\
implicit_vjp` at the endpoint, as :class:`DEQLayer`'s), not backprop through
      the steps. A reference and analysis tool: it costs more cell
      evaluations than Anderson.
    * ``field="learned"`` (paper 16's HomoODE): the right-hand side is the cell
      itself, ``dz/dt = cell(z, x)`` (input injected as a condition, one cell
      evaluation per stage), trained so that its endpoint plays the
      equilibrium's role. Gradients: backprop through the integrator's steps
      (discretise-then-differentiate, no adjoint; adaptive step sizes are
      held fixed), memory grows with the steps.

    Starting point ``z0``: zeros, the input ``x`` itself (a plain Neural ODE),
    or a learnable ``z_init(x)`` (paper 16's acceleration: a point trained to
    predict the endpoint makes the path shorter and the adaptive integrator
    cheaper; :class:`SharedStart` is the paper's point shared by all
    samples). With a callable ``z_init``, each forward call sets
    :attr:`init_loss`, the smooth-L1 distance of ``z_init(x)`` to the detached
    endpoint; add it to the training loss to train ``z_init``. With
    ``detach_init=True`` the ODE starts from ``z_init(x).detach()``, so the
    task loss does not reach ``z_init`` (only :attr:`init_loss` does).

    Integrators (written once in ``_runge_kutta.py``): ``"dopri5"``,
    adaptive Dormand-Prince 5(4) with step acceptance
    ``rms(err / (atol + rtol max(|z_n|, |z_n+1|))) <= 1`` over the whole
    batch (as ``torchdiffeq.odeint``'s default), or ``"rk4"`` with ``steps``
    fixed steps (``4 steps`` field evaluations).

    Compare with: ``torchdiffeq.odeint`` on the same cell (Neural ODE), the
    reference code ``wadx2019/homoode`` (``homoint``), and
    :class:`itersolve.nn.DEQLayer` (the same equilibrium by Anderson).
    Paper: Ding, Cui, Wang, Shi, "Two Sides of The Same Coin: Bridging Deep
    Equilibrium Models and Neural ODEs via Homotopy Continuation", NeurIPS
    2023.

    Parameters
    ----------
    cell
        An :class:`torch.nn.Module` called as ``cell(z, x)`` returning a
        tensor of ``z``'s shape (the DEQ map ``f`` for ``"newton"``, the vector
        field for ``"learned"``).
    field
        ``"learned"`` or ``"newton"``.
    method
        ``"dopri5"`` or ``"rk4"``.
    steps
        Fixed steps of ``"rk4"`` (int >= 1).
    rtol, atol
        Tolerances of ``"dopri5"``'s step acceptance (paper 16: ``1e-3``).
    max_steps
        Most ``"dopri5"`` steps (accepted and rejected).
    z_init
        ``"zeros"``, ``"input"`` (``z0 = x``) or a callable ``z_init(x)``
        (an :class:`torch.nn.Module` is registered and trained with the layer).
    detach_init
        Start the ODE from ``z_init(x).detach()`` (callable ``z_init`` only).
    linear_method
        Inner solver of ``"newton"`` (a method of :mod:`itersolve.linear`;
        ``None``: ``GMRES(rtol=1e-10)``).
    throw
        Raise :class:`~itersolve.ConvergenceError` when the integration (or an
        inner solve) fails, instead of a :class:`~itersolve.ConvergenceWarning`.

    Attributes
    ----------
    info : Solution or None
        The last forward call: ``status``, ``num_steps`` (accepted steps),
        ``stats`` with ``fevals`` (cell evaluations),
        ``field_evals`` (right-hand sides), ``rejected`` and, for
        ``"newton"``, ``jvps`` and ``linear_steps``; ``x`` is the detached
        endpoint. ``extras["adjoint"]`` holds the adjoint solve once a
        ``"newton"`` backward ran.
    init_loss : torch.Tensor or None
        Smooth-L1 loss of ``z_init(x)`` against the detached endpoint (callable
        ``z_init`` only).

    Raises
    ------
    TypeError
        ``cell`` not an :class:`torch.nn.Module`, ``z_init`` neither a known
        string nor callable, ``linear_method`` not a linear solver; ``x`` not
        a floating tensor (at the call).
    ValueError
        An unknown ``field``, ``method`` or ``z_init`` string, ``steps`` or
        ``max_steps`` < 1, bad tolerances, a cell that changes ``z``'s shape.

    Examples
    --------
    >>> import torch
    >>> from itersolve.nn import HomoODE
    >>> class Cell(torch.nn.Module):  # z -> tanh(W z) / 2 + x: a contraction
    ...     def __init__(self, n=4):
    ...         super().__init__()
    ...         self.W = torch.nn.Parameter(torch.randn(n, n) / n)
    ...     def forward(self, z, x):
    ...         return 0.5 * torch.tanh(z @ self.W.T) + x
    >>> _ = torch.manual_seed(0)
    >>> cell, x = Cell().double(), torch.randn(3, 4, dtype=torch.float64)
    >>> z = HomoODE(cell, field="newton", method="rk4", steps=8)(x)
    >>> float((cell(z, x) - z).detach().abs().max()) < 1e-6  # the fixed point
    True
    >>> ode = HomoODE(cell, method="rk4", steps=2)  # the learned field
    >>> ode(x).sum().backward()
    >>> ode.info.stats["fevals"], cell.W.grad.shape
    (8, torch.Size([4, 4]))
    """

    info: Solution | None
    init_loss: torch.Tensor | None

    def __init__(
        self,
        cell: nn.Module,
        field: str = "learned",
        method: str = "dopri5",
        *,
        steps: int = 4,
        rtol: float = 1e-3,
        atol: float = 1e-3,
        max_steps: int = 1000,
        z_init: str | Callable[[torch.Tensor], torch.Tensor] = "zeros",
        detach_init: bool = True,
        linear_method: IterativeMethod | None = None,
        throw: bool = False,
    ) -> None:
        super().__init__()
        if not isinstance(cell, nn.Module):
            raise TypeError(
                f"cell must be a torch.nn.Module called as cell(z, x), got "
                f"{type(cell).__name__}"
            )
        if field not in _FIELDS:
            raise ValueError(f"field must be 'learned' or 'newton', got {field!r}")
        if method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {method!r}")
        _positive_int(steps, "steps")
        _positive_int(max_steps, "max_steps")
        check_tolerances(rtol, atol)
        if isinstance(z_init, str):
            if z_init not in _INITS:
                raise ValueError(
                    f"z_init must be 'zeros', 'input' or a callable z_init(x), got "
                    f"{z_init!r}"
                )
        elif not callable(z_init):
            raise TypeError(
                f"z_init must be 'zeros', 'input' or a callable z_init(x), got "
                f"{type(z_init).__name__}"
            )
        if linear_method is None:
            linear_method = GMRES(rtol=1e-10)
        elif not (
            isinstance(linear_method, IterativeMethod)
            and type(linear_method).__module__.startswith("itersolve.linear.")
        ):
            raise TypeError(
                "linear_method must be a method of itersolve.linear such as "
                f"GMRES(), got {type(linear_method).__name__}"
            )
        self.cell = cell
        self.field = field
        self.method = method
        self.steps = steps
        self.rtol, self.atol = float(rtol), float(atol)
        self.max_steps = max_steps
        self.z_init = z_init
        self.detach_init = bool(detach_init)
        self.linear_method = linear_method
        self.throw = throw
        self.info = None
        self.init_loss = None

    def _integrate(
        self, g: Callable[[torch.Tensor], torch.Tensor], z0: torch.Tensor
    ) -> tuple[torch.Tensor, Integration]:
        if self.method == "rk4":
            return rk4(g, z0, self.steps)
        return dopri5(g, z0, self.rtol, self.atol, self.max_steps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The endpoint ``z(1)``, differentiable in ``x`` and the cell's
        parameters."""
        if not isinstance(x, torch.Tensor) or not x.is_floating_point():
            raise TypeError(
                f"x must be a floating torch tensor, got "
                f"{getattr(x, 'dtype', type(x).__name__)}"
            )
        init = None
        if self.z_init == "zeros":
            z0 = torch.zeros_like(x)
        elif self.z_init == "input":
            z0 = x
        else:
            assert callable(self.z_init)
            init = self.z_init(x)
            z0 = init.detach() if self.detach_init else init
        f = _Counted(self.cell, x)
        stats: dict[str, float] = {}
        if self.field == "learned":
            z, run = self._integrate(f, z0)
            failure = None
        else:
            with torch.no_grad():
                r0 = f(z0.detach()) - z0.detach()
                newton = _NewtonField(f, r0, self.linear_method)
                z_end, run = self._integrate(newton, z0.detach())
            params = [p for p in self.cell.parameters() if p.requires_grad]
            z = _ImplicitEndpoint.apply(self, z_end, x, *params)
            stats = {"jvps": newton.jvps, "linear_steps": newton.linear_steps}
            failure = newton.failure
        status = run.status
        if status is Status.SUCCESS and failure is not None:
            status = failure
        stats = {
            "fevals": f.calls,
            "field_evals": run.fevals,
            "rejected": run.rejected,
            **stats,
        }
        self.info = Solution(z.detach(), status, run.steps, stats)
        self.init_loss = None if init is None else F.smooth_l1_loss(init, z.detach())
        if status is not Status.SUCCESS:
            if self.throw:
                raise ConvergenceError(self.info)
            warnings.warn(
                f"HomoODE: {status.name}: {self.info.message}",
                ConvergenceWarning,
                stacklevel=2,
            )
        return z

    def extra_repr(self) -> str:
        how = (
            f"steps={self.steps}"
            if self.method == "rk4"
            else (f"rtol={self.rtol:g}, atol={self.atol:g}")
        )
        return f"field={self.field!r}, method={self.method!r}, {how}"
