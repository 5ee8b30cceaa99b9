"""Implicit differentiation of fixed points: :func:`implicit_vjp` and
:func:`fixed_point_layer`.

At a fixed point ``z* = f(z*, x; theta)`` the implicit function theorem gives
``dz*/dtheta = (I - J)^-1 df/dtheta`` with ``J = df/dz`` at ``z*``, so a
loss gradient ``g = dL/dz*`` pulls back through the adjoint vector ``u``::

    u = J^T u + g          (equivalently (I - J^T) u = g)
    dL/dtheta = (df/dtheta)^T u,    dL/dx = (df/dx)^T u

``J^T u`` is one autograd vector-Jacobian product; no Jacobian is formed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch.autograd.function import once_differentiable

from itersolve._core.iterate import Callback, IterativeMethod
from itersolve._core.operators import aslinearoperator
from itersolve._core.solution import Solution
from itersolve.fixed_point._anderson import Anderson
from itersolve.fixed_point._base import FixedPointMethod
from itersolve.fixed_point._newton_krylov import NewtonKrylov
from itersolve.fixed_point._solve import fixed_point
from itersolve.linear import linear_solve

Vjp = Callable[[torch.Tensor], torch.Tensor]

_BACKWARDS = ("implicit", "phantom")


def _check_tensor(value: Any, name: str) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a torch tensor, got {type(value).__name__}")
    if not value.is_floating_point():
        raise TypeError(f"{name} must be a real floating tensor, got {value.dtype}")
    return value


def _is_fixed_point_method(method: Any) -> bool:
    return isinstance(method, FixedPointMethod | NewtonKrylov)


def _is_linear_method(method: Any) -> bool:
    return isinstance(method, IterativeMethod) and type(method).__module__.startswith(
        "itersolve.linear."
    )


def _check_adjoint_method(method: Any, name: str) -> IterativeMethod:
    if method is None:
        return Anderson()
    if _is_fixed_point_method(method) or _is_linear_method(method):
        return method
    raise TypeError(
        f"{name} must be a method of itersolve.fixed_point (Anderson(), ...) or a "
        f"linear solver of itersolve.linear (GMRES(rtol=1e-10), ...), got "
        f"{type(method).__name__}"
    )


def _vjp(y: torch.Tensor, z: torch.Tensor) -> Vjp:
    """``v -> J^T v`` for ``y = f(z)`` recorded with ``z`` requiring grad."""

    def vjp(v: torch.Tensor) -> torch.Tensor:
        if not y.requires_grad:  # f does not depend on z: J = 0
            return torch.zeros_like(z)
        (out,) = torch.autograd.grad(
            y, z, v.to(y.dtype), retain_graph=True, allow_unused=True
        )
        return torch.zeros_like(z) if out is None else out.to(z.dtype)

    return vjp


def _adjoint_solve(
    vjp: Vjp,
    g: torch.Tensor,
    method: IterativeMethod,
    *,
    batch_dim: int | None,
    callback: Callback | None,
    record: bool | int,
    throw: bool,
) -> tuple[torch.Tensor, Solution]:
    """Solve ``u = J^T u + g`` from ``u0 = g`` (the one-term Neumann series)."""
    g = g.detach()
    if _is_fixed_point_method(method):
        if isinstance(method, NewtonKrylov):
            # The adjoint is linear: one Krylov solve over the whole batch is
            # exact, only the stopping rule becomes one for the whole batch.
            batch_dim = None
        sol = fixed_point(
            lambda u: vjp(u) + g,
            g,
            method,
            batch_dim=batch_dim,
            callback=callback,
            record=record,
            throw=throw,
        )
    else:
        sol = _linear_adjoint(vjp, g, method, callback, record, throw)
    u = sol.x
    # The residual of the returned u, measured here (one more product) so that
    # every adjoint method reports it the same way.
    sol.stats["adjoint_residual"] = float(torch.linalg.vector_norm(vjp(u) + g - u))
    return u, sol


def _linear_adjoint(
    vjp: Vjp,
    g: torch.Tensor,
    method: IterativeMethod,
    callback: Callback | None,
    record: bool | int,
    throw: bool,
) -> Solution:
    """``(I - J^T) u = g`` by a linear solver on the matrix-free operator."""
    shape, n = g.shape, g.numel()

    def matvec(v: torch.Tensor) -> torch.Tensor:
        if v.ndim == 2:
            return torch.stack([matvec(c) for c in v.T], dim=1)
        return v - vjp(v.reshape(shape)).reshape(-1)

    op = aslinearoperator(matvec, shape=(n, n), dtype=g.dtype, device=g.device)
    b = g.reshape(-1)
    sol = linear_solve(
        op, b, method, x0=b, callback=callback, record=record, throw=throw
    )
    sol.x = sol.x.reshape(shape)
    return sol


def implicit_vjp(
    f: Callable[[torch.Tensor], torch.Tensor],
    z_star: torch.Tensor,
    grad_out: torch.Tensor,
    method: IterativeMethod | None = None,
    *,
    batch_dim: int | None = None,
    callback: Callback | None = None,
    record: bool | int = False,
    throw: bool = False,
) -> tuple[torch.Tensor, Solution]:
    """The adjoint vector ``u`` of a fixed point: ``u = J_f(z*)^T u + grad_out``.

    With ``u``, the gradient of a loss ``L(z*)`` through the fixed point
    ``z* = f(z*; theta)`` is ``dL/dtheta = (df/dtheta)^T u`` (one more
    vector-Jacobian product, e.g. ``torch.autograd.grad(f(z*), theta, u)``).
    ``J_f^T v`` is an autograd vector-Jacobian product through one recorded
    evaluation of ``f`` at ``z*``; no Jacobian is formed. ``u`` exists and is
    unique when ``I - J_f(z*)`` is invertible; plain iteration on the adjoint
    converges when the spectral radius of ``J_f(z*)`` is below 1 (the same
    condition as for the forward iteration).

    Compare with: torchdeq's implicit backward (``ift=True``), jaxopt's
    ``custom_fixed_point``, torchopt's implicit differentiation.

    Parameters
    ----------
    f
        The map, differentiable by torch autograd in its argument (it closes
        over its inputs and parameters).
    z_star
        The fixed point (torch tensor, any shape).
    grad_out
        ``dL/dz*``, the shape of ``z_star``.
    method
        ``None``: ``Anderson()``. A method of :mod:`itersolve.fixed_point`
        solves the adjoint fixed point through
        :func:`~itersolve.fixed_point.fixed_point` from ``u0 = grad_out``
        (stopping rule ``||J^T u + g - u|| <= max(rtol ||u||, atol)``); a
        solver of :mod:`itersolve.linear` (``GMRES(rtol=1e-10)``) solves
        ``(I - J^T) u = grad_out`` with the matrix-free operator through
        :func:`~itersolve.linear_solve` (its default ``rtol`` is ``1e-5``: pass
        the accuracy you need).
    batch_dim
        ``0``: the leading dimension indexes independent samples (``f`` must
        treat them independently); a fixed-point method stops each sample on
        its own. ``NewtonKrylov`` and the linear solvers treat the batch as one
        block-diagonal system (one stopping test for the whole batch).
    callback, record, throw
        As for :func:`~itersolve.fixed_point.fixed_point`; ``throw=True``
        raises :class:`~itersolve.ConvergenceError` when the adjoint solve
        fails, otherwise it warns (:class:`~itersolve.ConvergenceWarning`).

    Returns
    -------
    u : torch.Tensor
        The adjoint vector, shape and dtype of ``z_star``; when the solve
        failed, the lowest-residual iterate (fixed-point methods) or the last
        iterate (linear solvers).
    solution : Solution
        The adjoint solve: its status, steps and ``stats`` (``fevals`` counts
        vector-Jacobian products for the fixed-point methods, ``matvecs`` for
        the linear solvers; ``adjoint_residual`` is ``||J^T u + g - u||_2`` of
        the returned ``u``, over the whole batch).

    Raises
    ------
    TypeError
        ``z_star`` or ``grad_out`` not a floating torch tensor, ``f(z_star)``
        not a tensor, or ``method`` of another family.
    ValueError
        ``grad_out`` or ``f(z_star)`` of another shape than ``z_star``.

    Examples
    --------
    >>> import torch
    >>> from itersolve.fixed_point import implicit_vjp
    >>> A = torch.tensor([[0.5, 0.2], [0.0, 0.3]], dtype=torch.float64)
    >>> f = lambda z: A @ z + 1.0
    >>> u, sol = implicit_vjp(f, torch.zeros(2, dtype=torch.float64),
    ...                       torch.ones(2, dtype=torch.float64))
    >>> exact = torch.linalg.solve(torch.eye(2, dtype=torch.float64) - A.T,
    ...                            torch.ones(2, dtype=torch.float64))
    >>> sol.success, bool(torch.allclose(u, exact, atol=1e-8))
    (True, True)
    """
    if not callable(f):
        raise TypeError(f"f must be callable, got {type(f).__name__}")
    z = _check_tensor(z_star, "z_star")
    g = _check_tensor(grad_out, "grad_out")
    if g.shape != z.shape:
        raise ValueError(
            f"grad_out must have the shape of z_star {tuple(z.shape)}, got "
            f"{tuple(g.shape)}"
        )
    method = _check_adjoint_method(method, "method")
    with torch.enable_grad():
        zr = z.detach().requires_grad_()
        y = _evaluate(lambda: f(zr), zr)
    return _adjoint_solve(
        _vjp(y, zr),
        g.detach().to(z.dtype),
        method,
        batch_dim=batch_dim,
        callback=callback,
        record=record,
        throw=throw,
    )


def _evaluate(call: Callable[[], Any], z: torch.Tensor) -> torch.Tensor:
    y = call()
    if not isinstance(y, torch.Tensor):
        raise TypeError(f"f must return a torch tensor, got {type(y).__name__}")
    if y.shape != z.shape:
        raise ValueError(
            f"f must keep the shape of z: z has shape {tuple(z.shape)}, f(z) has "
            f"shape {tuple(y.shape)}"
        )
    return y


def _phantom(
    vjp: Vjp, g: torch.Tensor, steps: int, damping: float
) -> tuple[torch.Tensor, float | None]:
    """``steps`` damped Picard steps on the adjoint from ``u0 = g``: with
    ``damping = 1`` the truncated Neumann series ``sum_{i<=steps} (J^T)^i g``.
    Returns ``u`` and the norm of the adjoint residual ``J^T u + g - u``
    before the last step (``None`` for ``steps = 0``)."""
    u, residual = g, None
    for _ in range(steps):
        r = vjp(u) + g - u
        residual = float(torch.linalg.vector_norm(r))
        u = u + damping * r
    return u, residual


@dataclass
class FixedPointLayerInfo:
    """What :func:`fixed_point_layer` did: ``forward`` is the forward solve's
    Solution; ``backward`` the adjoint solve's (implicit backward, filled in
    when the backward pass runs); ``phantom_residual`` the phantom backward's
    adjoint residual ``||J^T u + g - u||`` before its last step, a measure of
    how far the phantom gradient is from the implicit one.

    Examples
    --------
    >>> FixedPointLayerInfo(forward=None).backward is None
    True
    """

    forward: Solution | None
    backward: Solution | None = None
    phantom_residual: float | None = None


@dataclass
class _LayerConfig:
    f: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    z0: torch.Tensor | None
    forward: IterativeMethod
    backward: str
    backward_method: IterativeMethod
    phantom_steps: int
    phantom_damping: float
    batch_dim: int | None
    throw: bool
    info: FixedPointLayerInfo


class _FixedPointFunction(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: Any, cfg: _LayerConfig, x: torch.Tensor, *params: torch.Tensor
    ) -> torch.Tensor:
        z0 = torch.zeros_like(x) if cfg.z0 is None else cfg.z0.detach()
        sol = fixed_point(
            lambda z: _evaluate(lambda: cfg.f(z, x), z),
            z0,
            cfg.forward,
            batch_dim=cfg.batch_dim,
            throw=cfg.throw,
        )
        cfg.info.forward = sol
        ctx.cfg = cfg
        ctx.save_for_backward(sol.x, x, *params)
        return sol.x

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad_z: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        cfg: _LayerConfig = ctx.cfg
        z, x, *params = ctx.saved_tensors
        with torch.enable_grad():
            zr = z.detach().requires_grad_()
            xr = x.detach().requires_grad_()
            y = _evaluate(lambda: cfg.f(zr, xr), zr)
        vjp = _vjp(y, zr)
        g = grad_z.detach().to(z.dtype)
        if cfg.backward == "implicit":
            u, sol = _adjoint_solve(
                vjp,
                g,
                cfg.backward_method,
                batch_dim=cfg.batch_dim,
                callback=None,
                record=False,
                throw=cfg.throw,
            )
            cfg.info.backward = sol
        else:
            u, cfg.info.phantom_residual = _phantom(
                vjp, g, cfg.phantom_steps, cfg.phantom_damping
            )
        wanted = list(ctx.needs_input_grad[1:])
        wrt = [t for t, need in zip([xr, *params], wanted, strict=True) if need]
        found: Sequence[torch.Tensor | None] = ()
        if wrt and y.requires_grad:
            found = torch.autograd.grad(y, wrt, u.to(y.dtype), allow_unused=True)
        grads = iter(found)
        out: list[torch.Tensor | None] = [None]  # cfg
        for need in wanted:
            out.append(next(grads, None) if need else None)
        return tuple(out)


def check_layer_options(
    forward: Any,
    backward: str,
    backward_method: Any,
    phantom_steps: int,
    phantom_damping: float,
) -> tuple[IterativeMethod, Any]:
    """Validate a fixed-point layer's solver settings (shared by
    :func:`fixed_point_layer` and :class:`itersolve.nn.DEQLayer`); returns the
    forward method (``Anderson()`` for ``None``) and the checked adjoint method."""
    if backward not in _BACKWARDS:
        raise ValueError(f"backward must be 'implicit' or 'phantom', got {backward!r}")
    if (
        isinstance(phantom_steps, bool)
        or not isinstance(phantom_steps, int)
        or phantom_steps < 0
    ):
        raise ValueError(f"phantom_steps must be an int >= 0, got {phantom_steps!r}")
    if not (isinstance(phantom_damping, int | float) and 0 < phantom_damping <= 1):
        raise ValueError(f"phantom_damping must be in (0, 1], got {phantom_damping!r}")
    forward = Anderson() if forward is None else forward
    if not _is_fixed_point_method(forward):
        raise TypeError(
            "forward must be a method of itersolve.fixed_point such as Anderson(), "
            f"got {type(forward).__name__}"
        )
    return forward, _check_adjoint_method(backward_method, "backward_method")


def fixed_point_layer(
    f: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    *params: torch.Tensor,
    z0: torch.Tensor | None = None,
    forward: IterativeMethod | None = None,
    backward: str = "implicit",
    backward_method: IterativeMethod | None = None,
    phantom_steps: int = 5,
    phantom_damping: float = 1.0,
    batch_dim: int | None = None,
    throw: bool = False,
    return_info: bool = False,
) -> Any:
    """The fixed point ``z* = f(z*, x)`` as a differentiable function of ``x``
    and of ``f``'s parameters.

    The forward pass solves ``z = f(z, x)`` without recording a graph (memory
    independent of the number of iterations); the backward pass evaluates
    ``f`` once more at ``z*`` with a graph and pulls the incoming gradient
    ``g`` back through the adjoint vector ``u``:

    * ``backward="implicit"``: ``u = J^T u + g`` solved to the tolerance of
      ``backward_method`` (see :func:`implicit_vjp`), the exact gradient of
      the exact fixed point;
    * ``backward="phantom"``: ``phantom_steps = k`` damped steps
      ``u <- u + tau (J^T u + g - u)`` from ``u = g`` (``tau = 1``: the
      truncated Neumann series ``sum_{i<=k} (J^T)^i g``; ``k = 0``: the
      Jacobian-free backward), an approximation that is cheap and accurate
      when ``f`` is strongly contractive;

    then ``dL/dx = (df/dx)^T u`` and ``dL/dtheta = (df/dtheta)^T u``.

    Compare with: torchdeq's ``DEQIndexing`` / ``ift=True`` backward and its
    phantom gradient (``grad=k``); jaxopt's ``custom_fixed_point``.

    Parameters
    ----------
    f
        The cell ``f(z, x)``, differentiable by torch autograd; ``f`` must not
        modify its arguments.
    x
        The input (torch tensor); it receives a gradient when it requires one.
    *params
        The tensors ``f`` reads besides ``z`` and ``x`` (through a closure)
        that should receive gradients. When ``f`` is a :class:`torch.nn.Module`
        and none are given, its parameters that require grad.
    z0
        Starting point of the forward solve; zeros of ``x``'s shape by default
        (give ``z0`` when ``z`` has another shape than ``x``).
    forward
        A method of :mod:`itersolve.fixed_point` for the forward solve
        (``None``: ``Anderson()``).
    backward
        ``"implicit"`` or ``"phantom"``.
    backward_method
        The adjoint solver of the implicit backward (``None``: ``Anderson()``;
        any method :func:`implicit_vjp` accepts).
    phantom_steps, phantom_damping
        ``k >= 0`` and ``tau`` in ``(0, 1]`` of the phantom backward.
    batch_dim
        ``0``: the leading dimension of ``z`` indexes independent samples, each
        stopping on its own in the forward and the adjoint solves.
    throw
        Raise :class:`~itersolve.ConvergenceError` when the forward or the
        adjoint solve fails; otherwise each failure emits a
        :class:`~itersolve.ConvergenceWarning` and keeps its status in the
        info.
    return_info
        Also return a :class:`FixedPointLayerInfo` with the forward solve's
        Solution and, once ``backward()`` ran, the adjoint solve's.

    Returns
    -------
    torch.Tensor or (torch.Tensor, FixedPointLayerInfo)
        ``z*`` (the lowest-residual iterate when the forward solve failed).

    Raises
    ------
    TypeError
        ``f`` not callable, ``x``, ``z0`` or a parameter not a floating
        tensor, a method of the wrong family.
    ValueError
        An unknown ``backward``, ``phantom_steps < 0``, ``phantom_damping``
        outside ``(0, 1]``, or ``f`` changing the shape of ``z``.

    Examples
    --------
    >>> import torch
    >>> from itersolve.fixed_point import fixed_point_layer
    >>> W = torch.tensor([[0.3, 0.1], [-0.2, 0.4]], dtype=torch.float64,
    ...                  requires_grad=True)
    >>> x = torch.tensor([0.5, -1.0], dtype=torch.float64, requires_grad=True)
    >>> f = lambda z, x: torch.tanh(W @ z + x)
    >>> z = fixed_point_layer(f, x, W)
    >>> z.sum().backward()
    >>> bool(torch.allclose(z, f(z, x))), x.grad.shape, W.grad.shape
    (True, torch.Size([2]), torch.Size([2, 2]))
    """
    if not callable(f):
        raise TypeError(f"f must be callable, got {type(f).__name__}")
    x = _check_tensor(x, "x")
    if z0 is not None:
        _check_tensor(z0, "z0")
    if not params and isinstance(f, torch.nn.Module):
        params = tuple(p for p in f.parameters() if p.requires_grad)
    for i, p in enumerate(params):
        _check_tensor(p, f"params[{i}]")
    forward, backward_method = check_layer_options(
        forward, backward, backward_method, phantom_steps, phantom_damping
    )
    info = FixedPointLayerInfo(forward=None)
    cfg = _LayerConfig(
        f=f,
        z0=z0,
        forward=forward,
        backward=backward,
        backward_method=backward_method,
        phantom_steps=phantom_steps,
        phantom_damping=float(phantom_damping),
        batch_dim=batch_dim,
        throw=throw,
        info=info,
    )
    z = _FixedPointFunction.apply(cfg, x, *params)
    return (z, info) if return_info else z
