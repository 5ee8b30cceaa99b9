"""``minimize``: the front door for smooth unconstrained minimization.

The problem type and the validation of the inputs live in
:mod:`itersolve.optimize._problem`; this module only picks the default method and
runs the shared front-door tail (:func:`itersolve._core.frontdoor.solve`).
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

from itersolve._core.frontdoor import check_method, solve
from itersolve._core.iterate import Callback, IterativeMethod
from itersolve._core.solution import Solution
from itersolve._core.tensors import as_tensor
from itersolve.optimize import _problem
from itersolve.optimize._nesterov import Nesterov
from itersolve.optimize._newton import Newton
from itersolve.optimize._problem import optimization_problem

if TYPE_CHECKING:
    from itersolve.optimize._problem import OptimizationProblem

_MOVED = {
    "OptimizationProblem": "itersolve.optimize",
    "uncounted": "itersolve.optimize._problem",
}

#: Problems up to this many variables default to Newton (dense Hessians).
NEWTON_DEFAULT_MAX_SIZE = 2000


def default_method(problem: OptimizationProblem) -> IterativeMethod:
    """``Newton()`` up to :data:`NEWTON_DEFAULT_MAX_SIZE` variables, else
    ``Nesterov()`` (adaptive restart, backtracking on ``L``).

    Examples
    --------
    >>> from itersolve import Objective
    >>> from itersolve.optimize import OptimizationProblem
    >>> f = Objective(lambda x: (x**2).sum())
    >>> type(default_method(OptimizationProblem(f, (10,)))).__name__
    'Newton'
    """
    if problem.size <= NEWTON_DEFAULT_MAX_SIZE:
        return Newton()
    return Nesterov(restart="gradient")


def minimize(
    objective: Any,
    x0: Any,
    method: IterativeMethod | None = None,
    *,
    constraints: Any = None,
    callback: Callback | None = None,
    record: bool | int = False,
    throw: bool = False,
) -> Solution:
    """Minimize a smooth function of ``x``.

    Equivalent to ``scipy.optimize.minimize(fun, x0, method=..., jac=True)`` and
    to a full-batch ``torch.optim.LBFGS`` loop, with derivatives from autograd.

    Parameters
    ----------
    objective
        A torch function of ``x`` returning a scalar (gradients, Hessian-vector
        products and Hessians come from autograd), an
        :class:`~itersolve.Objective` (closed-form oracles), or a problem from
        :mod:`itersolve.problems` (``Logistic``, ``Softmax``, ...; its ``L`` and
        ``mu`` are handed to the method, its dtype follows ``x0``).
    x0
        Starting point, any shape; ``x`` keeps it. Integers become float64.
    method
        A configured method such as ``Nesterov(L=..., mu=...)`` or
        ``RegularizedNewton(hessian="gauss_newton")``. ``None``: ``Newton()``
        up to 2000 variables, ``Nesterov(restart="gradient")`` above.
    constraints
        Only for methods that accept constraints; the unconstrained methods
        here raise ``ValueError`` when it is given.
    callback
        Called after every step with an :class:`~itersolve.IterInfo`; returning
        ``True`` stops the run.
    record
        ``True`` records every step in ``solution.trace``; an int ``k`` every k-th.
    throw
        Raise :class:`~itersolve.ConvergenceError` instead of warning when the
        run does not succeed.

    Returns
    -------
    Solution
        ``x`` in the kind, dtype and device of ``x0``; ``stats`` holds
        ``values``, ``grads``, ``hvps``, ``hessians`` (oracle calls during the
        run) and the method's own counters.

    Examples
    --------
    >>> import torch, itersolve
    >>> from itersolve.optimize import minimize, Newton
    >>> f = lambda x: ((x - 1.0) ** 4 + (x - 1.0) ** 2).sum()
    >>> sol = minimize(f, torch.zeros(2, dtype=torch.float64), Newton(atol=1e-10))
    >>> sol.success, round(float(sol.x[0]), 6)
    (True, 1.0)
    """
    x0_t, info = as_tensor(x0, "x0", copy=True)
    problem = optimization_problem(objective, x0_t, constraints=constraints)
    if method is None:
        method = default_method(problem)
    else:
        method = check_method(method, "Newton()")
    if constraints is not None and not getattr(method, "accepts_constraints", False):
        raise ValueError(
            f"{type(method).__name__} does not accept constraints; pass "
            "constraints=None or use a constrained method"
        )
    return solve(
        method,
        problem,
        x0_t,
        output=info,
        callback=callback,
        record=record,
        throw=throw,
        counters=lambda: problem.objective.counts,
    )


def __getattr__(name: str) -> Any:
    # OptimizationProblem and uncounted lived here before the front door was split
    # from the problem type; the old path works for one release.
    if name in _MOVED:
        warnings.warn(
            f"itersolve.optimize._minimize.{name} is deprecated; import it from "
            f"{_MOVED[name]}",
            DeprecationWarning,
            stacklevel=2,
        )
        return getattr(_problem, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
