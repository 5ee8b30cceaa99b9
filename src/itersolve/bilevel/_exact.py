"""The exact hypergradient by implicit differentiation (the reference oracle).

``grad F(x) = (1/m) sum_i [grad_x f_i - grad^2_xy g_i (grad^2_yy g_i)^-1 grad_y f_i]``
at ``y_i = y_i*(x)``: the lower problems are solved by Newton's method with
block-diagonal Hessians (:func:`itersolve.minimize`), the adjoint systems
``grad^2_yy g_i v_i = grad_y f_i`` by CG (:func:`itersolve.linear_solve`) on the
block-diagonal operator of all blocks at once.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from itersolve._core.frontdoor import default_rtol
from itersolve._core.objective import Objective
from itersolve._core.operators import aslinearoperator
from itersolve._core.solution import Solution, Status
from itersolve.bilevel._problem import MultiBlockBilevelProblem
from itersolve.linear import CG, linear_solve
from itersolve.optimize import Newton, minimize


@dataclass
class Hypergradient:
    """What :func:`exact_hypergradient` computed at ``x``.

    ``grad`` (shape ``(dim_x,)``), ``value`` ``F(x)`` on the full upper-level
    set, the lower solutions ``y`` ``(m, dim_y)``, the adjoint vectors ``v``
    ``(m, dim_y)``, the overall ``status`` (``SUCCESS`` only when both inner
    solves succeeded; otherwise the first failing one's, with ``grad`` and
    ``value`` NaN) and the two inner :class:`~itersolve.Solution` objects.

    Examples
    --------
    >>> import torch
    >>> from itersolve.bilevel import exact_hypergradient
    >>> from itersolve.problems import quadratic_bilevel
    >>> hg = exact_hypergradient(quadratic_bilevel(m=2), torch.zeros(5))
    >>> hg.success, tuple(hg.y.shape), hg.adjoint.stats["matvecs"] > 0
    (True, (2, 10), True)
    """

    grad: Tensor
    value: float
    y: Tensor
    v: Tensor
    status: Status
    lower: Solution
    adjoint: Solution | None

    @property
    def success(self) -> bool:
        return self.status is Status.SUCCESS


def _check_problem(problem: object) -> MultiBlockBilevelProblem:
    if not isinstance(problem, MultiBlockBilevelProblem):
        raise TypeError(
            "problem must be a MultiBlockBilevelProblem (BilevelProblem(...) or "
            f"itersolve.problems.quadratic_bilevel(...)), got {type(problem).__name__}"
        )
    return problem


def _as_x(problem: MultiBlockBilevelProblem, x: object) -> Tensor:
    if not isinstance(x, Tensor):
        x = torch.as_tensor(x)
    x = x.to(problem.dtype).reshape(-1)
    if x.numel() != problem.dim_x:
        raise ValueError(f"x must have {problem.dim_x} entries, got {x.numel()}")
    return x


def solve_lower(
    problem: MultiBlockBilevelProblem,
    x: Tensor,
    *,
    y0: Tensor | None = None,
    rtol: float | None = None,
) -> Solution:
    """All ``m`` lower problems at ``x`` as one separable minimisation.

    Newton with Cholesky solves of the block-diagonal Hessian, from
    ``y0`` (zeros by default); stopping rule ``||grad_y g|| <= rtol
    ||grad_y g(y0)||`` over all blocks (``rtol=None``: ``1e-10``, lifted to
    ``100 eps`` in float32). ``solution.x`` has shape ``(m, dim_y)``.

    Examples
    --------
    >>> import torch
    >>> from itersolve.bilevel import solve_lower
    >>> from itersolve.problems import quadratic_bilevel
    >>> p = quadratic_bilevel(m=3, dim_x=2, dim_y=4, n=10)
    >>> x = torch.ones(2, dtype=torch.float64)
    >>> sol = solve_lower(p, x)
    >>> sol.success, bool(torch.allclose(sol.x, p.lower_solution(x)))
    (True, True)
    """
    problem = _check_problem(problem)
    x = _as_x(problem, x)
    blocks = problem.all_blocks(x.device)
    shape = (problem.m, problem.dim_y)
    tol = default_rtol(problem.dtype, 1e-10) if rtol is None else rtol

    def fun(y: Tensor) -> Tensor:
        return problem.lower_value(blocks, x, y.reshape(shape), None).sum()

    def grad(y: Tensor) -> Tensor:
        return problem.lower_grad(blocks, x, y.reshape(shape), None).reshape(-1)

    def hvp(y: Tensor, v: Tensor) -> Tensor:
        return problem.lower_hvp(
            blocks, x, y.reshape(shape), v.reshape(shape), None
        ).reshape(-1)

    def hessian(y: Tensor) -> Tensor:
        return torch.block_diag(
            *problem.lower_hessian(blocks, x, y.reshape(shape), None)
        )

    start = torch.zeros(shape, dtype=problem.dtype) if y0 is None else y0
    sol = minimize(
        Objective(fun, grad=grad, hvp=hvp, hessian=hessian),
        start.reshape(-1).to(problem.dtype),
        Newton(rtol=tol, atol=0.1 * tol),
    )
    sol.x = sol.x.reshape(shape)
    return sol


def exact_hypergradient(
    problem: MultiBlockBilevelProblem,
    x: object,
    *,
    y0: Tensor | None = None,
    rtol: float | None = None,
) -> Hypergradient:
    """The hypergradient ``grad F(x)`` by implicit differentiation (for tests).

    Solves every lower problem to ``rtol`` (:func:`solve_lower`, warm-started
    from ``y0``), then the adjoint systems ``grad^2_yy g_i(x, y_i*) v_i =
    grad_y f_i(x, y_i*)`` by CG to ``rtol`` on the block-diagonal operator,
    and returns ``(1/m) sum_i [grad_x f_i - grad^2_xy g_i v_i]`` on the full
    sample sets. A lower level that is not strongly convex shows in
    ``status`` (the failing inner solve's, e.g. ``NOT_POSITIVE_DEFINITE`` from
    CG), never as a finite gradient with success.

    Compare with: torchopt's ``implicit_diff.custom_root`` on the lower
    optimality condition, jaxopt's implicit differentiation.

    Examples
    --------
    >>> import torch
    >>> from itersolve.bilevel import exact_hypergradient
    >>> from itersolve.problems import quadratic_bilevel
    >>> p = quadratic_bilevel(m=4, dim_x=3, dim_y=5, n=20, seed=2)
    >>> x = torch.ones(3, dtype=torch.float64)
    >>> hg = exact_hypergradient(p, x)
    >>> hg.success, bool(torch.allclose(hg.grad, p.hypergradient(x), atol=1e-10))
    (True, True)
    """
    problem = _check_problem(problem)
    x = _as_x(problem, x)
    tol = default_rtol(problem.dtype, 1e-10) if rtol is None else rtol
    nan_grad = torch.full((problem.dim_x,), float("nan"), dtype=problem.dtype)
    shape = (problem.m, problem.dim_y)
    lower = solve_lower(problem, x, y0=y0, rtol=tol)
    y = lower.x
    if not lower.success:
        nan_v = torch.full(shape, float("nan"), dtype=problem.dtype)
        return Hypergradient(
            nan_grad, float("nan"), y, nan_v, lower.status, lower, None
        )
    blocks = problem.all_blocks(x.device)
    gx, gy = problem.upper_grads(blocks, x, y, None)

    def matvec(v: Tensor) -> Tensor:
        return problem.lower_hvp(blocks, x, y, v.reshape(shape), None).reshape(-1)

    n = problem.m * problem.dim_y
    op = aslinearoperator(matvec, shape=(n, n), dtype=problem.dtype)
    adjoint = linear_solve(op, gy.reshape(-1), CG(rtol=tol, max_steps=10 * n))
    v = adjoint.x.reshape(shape)
    if not adjoint.success:
        return Hypergradient(
            nan_grad, float("nan"), y, v, adjoint.status, lower, adjoint
        )
    cross = problem.lower_cross(blocks, x, y, v, None)
    grad = (gx - cross).mean(0)
    value = problem.hyperobjective_at(x, y)
    return Hypergradient(grad, value, y, v, Status.SUCCESS, lower, adjoint)
