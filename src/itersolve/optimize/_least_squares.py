"""``least_squares``: the front door for ``min 1/2 ||r(x)||^2``.

:class:`LeastSquaresProblem` is what the methods (:class:`LevenbergMarquardt`,
:class:`GaussNewton`) see: the residual and its Jacobian on the flat, batched
layout ``(B, n) -> (B, m)`` and ``(B, m, n)``, ``B = 1`` unbatched.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from itersolve._core.errors import ConvergenceError
from itersolve._core.frontdoor import check_method, solve
from itersolve._core.iterate import Callback, IterativeMethod
from itersolve._core.objective import detached_message, probe
from itersolve._core.solution import Solution
from itersolve._core.tensors import as_tensor
from itersolve.optimize._levenberg_marquardt import (
    GaussNewton,
    LeastSquaresMethod,
    LevenbergMarquardt,
)
from itersolve.optimize._problem import is_torch_function

Tensor = torch.Tensor


def _is_numpy_array(value: Any) -> bool:
    return isinstance(value, (int, float, np.number, np.ndarray, list, tuple)) and (
        np.isrealobj(np.asarray(value))
    )


@dataclass
class LeastSquaresProblem:
    """``r: R^n -> R^m`` on ``B`` independent rows (``B = 1`` unbatched).

    ``residual`` maps rows ``(B, n)`` to ``(B, m)`` through the user's function
    (called on the user's layout: ``shape``, with the batch dimension first when
    ``batched``); ``jacobian`` returns the per-row Jacobians ``(B, m, n)``:
    the user's ``jac``, autograd (forward mode when ``n <= m``, reverse mode
    otherwise, vectorized with :func:`torch.func.vmap` over the ``n`` or ``m``
    unit directions, each applied to every row at once since the rows are
    independent), or forward differences for a NumPy residual (``n`` calls per
    Jacobian, steps ``h_j = sqrt(eps) max(1, |x_j|)``, as MINPACK). ``fevals``
    and ``jevals`` count calls of the residual (finite differences included)
    and of ``jac`` or autograd.

    Examples
    --------
    >>> p = LeastSquaresProblem(lambda x: x**2 - 1.0, (2,), False, True, None)
    >>> x = torch.tensor([[2.0, 3.0]], dtype=torch.float64)
    >>> p.residual(x).tolist(), p.jacobian(x).tolist()
    ([[3.0, 8.0]], [[[4.0, 0.0], [0.0, 6.0]]])
    """

    fun: Callable[[Any], Any]
    shape: tuple[int, ...]
    batched: bool
    is_torch: bool
    jac: Callable[[Any], Any] | None
    m: int | None = None
    r_shape: tuple[int, ...] | None = None
    fevals: int = 0
    jevals: int = 0

    def to_user(self, x: Tensor) -> Any:
        z = x.reshape(self.shape)
        if self.is_torch:
            return z
        return z.detach().cpu().numpy().copy()

    def _rows(self, out: Any, x: Tensor, what: str) -> Tensor:
        t = out if isinstance(out, Tensor) else torch.as_tensor(np.asarray(out))
        if t.is_complex():
            raise TypeError(f"{what} must be real, got dtype {t.dtype}")
        t = t.to(dtype=x.dtype, device=x.device)
        rows = x.shape[0]
        if self.batched and (t.ndim == 0 or t.shape[0] != rows):
            raise ValueError(
                f"{what} must keep the batch dimension: x has {rows} rows, "
                f"{what} has shape {tuple(t.shape)}"
            )
        return t.reshape(rows, -1)

    def _check_shape(self, shape: tuple[int, ...]) -> None:
        if self.r_shape is None:
            self.r_shape = shape
            self.m = int(np.prod(shape[1:] if self.batched else shape))
            if self.m == 0:
                raise ValueError("the residual must have at least one entry, got 0")
        elif shape != self.r_shape:
            raise ValueError(
                "the residual changed its shape: r(x0) had shape "
                f"{self.r_shape}, now {shape}"
            )

    def residual(self, x: Tensor) -> Tensor:
        """``r`` of every row of ``x`` (shape ``(B, n)``), shape ``(B, m)``."""
        out = self.fun(self.to_user(x))
        self.fevals += 1
        shape = (
            tuple(np.shape(out)) if not isinstance(out, Tensor) else tuple(out.shape)
        )
        self._check_shape(shape)
        return self._rows(out, x, "the residual")

    def jacobian(self, x: Tensor, r: Tensor | None = None) -> Tensor:
        """The Jacobians of the rows of ``x``, shape ``(B, m, n)`` (``r``: the
        residual at ``x`` when known, for finite differences)."""
        rows, n = x.shape
        m = self.m if self.m is not None else self.residual(x).shape[1]
        if self.jac is not None:
            out = self.jac(self.to_user(x))
            self.jevals += 1
            J = self._rows(out, x, "jac")
            if J.shape[1] != m * n:
                raise ValueError(
                    f"jac must return {m} x {n} entries per row (residual entries "
                    f"times x entries), got shape {tuple(np.shape(out))}"
                )
            return J.reshape(rows, m, n)
        if not self.is_torch:
            return self._differences(x, r)
        self.jevals += 1
        return self._autograd(x, m)

    def _autograd(self, x: Tensor, m: int) -> Tensor:
        rows, n = x.shape
        x = x.detach().requires_grad_()
        with torch.enable_grad():
            r = self.fun(x.reshape(self.shape)).to(x.dtype).reshape(rows, -1)
            if not r.requires_grad:  # r does not depend on x
                return torch.zeros(rows, m, n, dtype=x.dtype, device=x.device)
            if n <= m:
                eye = torch.eye(n, dtype=x.dtype, device=x.device)
                directions = eye[:, None, :].expand(n, rows, n)
                columns = jacobian_products(r, x, directions)  # (n, B, m)
                return columns.permute(1, 2, 0)
            eye = torch.eye(m, dtype=x.dtype, device=x.device)
            cotangents = eye[:, None, :].expand(m, rows, m)
            (rows_j,) = torch.autograd.grad(
                r, x, cotangents, is_grads_batched=True, allow_unused=True
            )
            if rows_j is None:
                return torch.zeros(rows, m, n, dtype=x.dtype, device=x.device)
            return rows_j.permute(1, 0, 2).detach()  # (m, B, n) -> (B, m, n)

    def _differences(self, x: Tensor, r: Tensor | None) -> Tensor:
        if r is None:
            r = self.residual(x)
        rows, n = x.shape
        eps = torch.finfo(x.dtype).eps
        steps = eps**0.5 * x.abs().clamp(min=1.0)
        J = torch.empty(rows, r.shape[1], n, dtype=x.dtype, device=x.device)
        for j in range(n):
            up = x.clone()
            up[:, j] += steps[:, j]
            # the step actually taken (x_j + h rounded), not the nominal h
            taken = (up[:, j] - x[:, j])[:, None]
            J[:, :, j] = (self.residual(up) - r) / taken
        return J

    def answer(self, x: Tensor) -> Tensor:
        return x.reshape(self.shape)


def jacobian_products(r: Tensor, x: Tensor, directions: Tensor) -> Tensor:
    """``J d`` for each of ``k`` directions ``d = directions[i]`` (shaped like
    ``x``), ``J = dr/dx`` of ``r`` recorded by autograd from ``x``; shape
    ``(k, *r.shape)``, detached.

    The double-vjp trick: ``c -> J^T c`` is linear, and its vector-Jacobian
    product along ``d`` is ``J d``; reverse mode only, since torch's forward mode
    (``jvp``) measured 3x slower on CPU through ``einsum``. The ``k``
    directions run as one batched backward pass.

    >>> x = torch.tensor([1.0, 2.0], requires_grad=True)
    >>> jacobian_products(x**2, x, torch.eye(2)).tolist()
    [[2.0, 0.0], [0.0, 4.0]]
    """
    c = torch.zeros_like(r, requires_grad=True)
    (g,) = torch.autograd.grad(r, x, c, create_graph=True)
    (products,) = torch.autograd.grad(
        g, c, directions.to(g.dtype), is_grads_batched=True, allow_unused=True
    )
    if products is None:  # J^T c does not depend on c: J = 0
        return r.new_zeros((directions.shape[0], *r.shape)).detach()
    return products.detach()


def _least_squares_problem(
    residual: Any, x: Tensor, jac: Any, batched: bool
) -> LeastSquaresProblem:
    if not callable(residual):
        raise TypeError(f"residual must be callable, got {type(residual).__name__}")
    if jac is not None and not callable(jac):
        raise TypeError(f"jac must be a callable or None, got {type(jac).__name__}")
    shape = tuple(x.shape)
    if not bool(torch.isfinite(x).all()):
        # the driver reports NONFINITE_INPUT before any evaluation
        return LeastSquaresProblem(residual, shape, batched, True, jac)
    torch_kind = is_torch_function(
        residual,
        x,
        _is_numpy_array,
        "the residual must return a torch tensor (or, as a NumPy function, a "
        "real array)",
    )
    if torch_kind and jac is None:
        value = probe(residual, x)
        if value.is_floating_point() and not value.requires_grad:
            raise ValueError(detached_message(residual))
    problem = LeastSquaresProblem(residual, shape, batched, torch_kind, jac)
    rows = shape[0] if batched else 1
    r0 = problem.residual(x.reshape(rows, -1))
    problem.fevals = 0
    bad = ~torch.isfinite(r0).all(dim=1)
    if bool(bad.any()):
        which = torch.nonzero(bad).flatten().tolist()
        where = f" (rows {which})" if batched else ""
        raise ValueError(
            f"the residual is not finite at x0{where}: start from a point where "
            "r(x0) is finite"
        )
    return problem


def least_squares(
    residual: Any,
    x0: Any,
    method: IterativeMethod | None = None,
    *,
    jac: Any = None,
    batch_dim: int | None = None,
    callback: Callback | None = None,
    record: bool | int = False,
    throw: bool = False,
) -> Solution:
    """Solve ``min_x 1/2 ||r(x)||_2^2`` (nonlinear least squares).

    Equivalent to ``scipy.optimize.least_squares(fun, x0, method="lm")``
    (MINPACK's Levenberg–Marquardt) and to ``optimistix.least_squares``; in
    torch, to a hand-written Gauss–Newton loop over ``torch.func.jacrev``.

    Parameters
    ----------
    residual
        ``r(x)``: a torch function of ``x`` returning a tensor of any fixed
        shape (its Jacobian comes from autograd: no ``.detach()``, ``.item()``
        or ``.numpy()`` inside), or a NumPy function returning an array (the
        Jacobian from ``jac`` or forward differences). Told apart by one call
        at ``x0``, as :func:`~itersolve.optimize.minimize` does.
    x0
        Starting point (torch tensor, NumPy array or sequence), any shape.
    method
        ``LevenbergMarquardt()`` (the default) or ``GaussNewton()``.
    jac
        Optional ``jac(x)``, the Jacobian of shape ``r.shape + x.shape``
        (batched: ``(B,) + r.shape[1:] + x.shape[1:]``, one Jacobian per row).
        NumPy residual without ``jac``: forward differences, ``n`` residual
        calls per Jacobian.
    batch_dim
        ``None`` or ``0``: the leading dimension of ``x0`` indexes independent
        problems (``residual`` maps the whole batch at once, keeps the batch
        dimension first and must treat the rows independently). Each row stops
        on its own rule and is frozen once finished; ``stats["sample_status"]``
        lists each row's outcome.
    callback, record, throw
        As for :func:`~itersolve.optimize.minimize`.

    Returns
    -------
    Solution
        ``x`` in ``x0``'s kind, shape and dtype: each row's last accepted
        iterate (the objective never increases, so it is the best seen).
        ``stats``: ``fevals`` and ``jevals`` (calls of the residual and of
        ``jac`` / autograd Jacobians), ``sample_status`` (each row's status
        name; rows still running when the run ended take the run's status),
        ``sample_steps`` (accepted steps per row), ``sample_objective``
        (``1/2 ||r||^2`` per row at the returned ``x``) and the method's
        counters. The stopping rule, per row, on the gradient of
        ``1/2 ||r||^2`` freshly evaluated at the accepted iterate::

            ||J(x_k)^T r(x_k)||_2 <= max(rtol ||J(x_0)^T r(x_0)||_2, atol)

    Raises
    ------
    TypeError
        ``residual`` or ``jac`` not callable, a result that is not an array.
    ValueError
        Empty ``x0``, ``batch_dim`` not ``None`` or ``0``, a residual that is
        not finite at ``x0``, that changes its shape between calls, drops the
        batch dimension or breaks the autograd graph; a ``jac`` of the wrong
        size.

    Examples
    --------
    >>> import torch
    >>> from itersolve.optimize import least_squares
    >>> t = torch.linspace(0, 1, 20, dtype=torch.float64)
    >>> y = 2.0 * torch.exp(-1.5 * t)
    >>> fit = lambda p: p[0] * torch.exp(-p[1] * t) - y
    >>> sol = least_squares(fit, torch.tensor([1.0, 1.0], dtype=torch.float64))
    >>> sol.success, [round(v, 6) for v in sol.x.tolist()]
    (True, [2.0, 1.5])

    A NumPy residual (NumPy in, NumPy out), Rosenbrock as residuals:

    >>> import numpy as np
    >>> rosen = lambda x: np.array([10 * (x[1] - x[0] ** 2), 1 - x[0]])
    >>> np.round(least_squares(rosen, np.array([-1.2, 1.0])).x, 4).tolist()
    [1.0, 1.0]
    """
    if batch_dim not in (None, 0):
        raise ValueError(f"batch_dim must be None or 0, got {batch_dim!r}")
    x, info = as_tensor(x0, "x0", copy=True)
    x = x.reshape(x0.shape if isinstance(x0, torch.Tensor) else np.shape(x0))
    if x.is_complex():
        raise TypeError(f"x0 must be real, got dtype {x.dtype}")
    if x.numel() == 0:
        raise ValueError(f"x0 must have at least one entry, got shape {tuple(x.shape)}")
    if batch_dim == 0 and x.ndim < 1:
        raise ValueError("batch_dim=0 needs x0 with a leading batch dimension")
    method = check_method(
        LevenbergMarquardt() if method is None else method, "LevenbergMarquardt()"
    )
    if not isinstance(method, LeastSquaresMethod):
        raise TypeError(
            "method must be a least-squares method (LevenbergMarquardt(), "
            f"GaussNewton()), got {type(method).__name__}"
        )
    problem = _least_squares_problem(residual, x, jac, batch_dim == 0)
    rows = x.shape[0] if batch_dim == 0 else 1
    try:
        solution = solve(
            method,
            problem,
            x.reshape(rows, -1),
            output=info,
            callback=callback,
            record=record,
            throw=throw,
            counters=lambda: {"fevals": problem.fevals, "jevals": problem.jevals},
            to_x=problem.answer,
        )
    except ConvergenceError as error:
        _label_unfinished(error.solution)
        raise
    return _label_unfinished(solution)


def _label_unfinished(solution: Solution) -> Solution:
    """Rows still running when the run ended take the run's status."""
    stats: dict[str, Any] = solution.stats
    names = stats.get("sample_status")
    if names is not None:
        stats["sample_status"] = [
            solution.status.name if name is None else name for name in names
        ]
    return solution


__all__ = ["GaussNewton", "LevenbergMarquardt", "least_squares"]
