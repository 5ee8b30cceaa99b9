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
    jac: Any = None,
    constraints: Any = None,
    callback: Callback | None = None,
    record: bool | int = False,
    throw: bool = False,
) -> Solution:
    """Minimize a smooth function of ``x``.

    Equivalent to ``scipy.optimize.minimize(fun, x0, method=..., jac=...)`` and
    to a full-batch ``torch.optim.LBFGS`` loop, with derivatives from autograd.

    Parameters
    ----------
    objective
        One of

        * a torch function of ``x`` returning a scalar tensor: gradients,
          Hessian-vector products and Hessians come from autograd. A function
          that breaks the graph (``.detach()``, ``.item()``, ``.numpy()``) is
          rejected with one ``ValueError`` before the first step;
        * a SciPy-style NumPy function ``fun(x: ndarray) -> float`` (see ``jac``);
        * an :class:`~itersolve.Objective` (closed-form oracles);
        * a :class:`~itersolve.optimize.SmoothProblem`, e.g. the fixtures of
          :mod:`itersolve.problems` (``Logistic``, ``Softmax``, ...): its ``L``
          and ``mu`` are handed to the method, its dtype follows ``x0``.

        A plain function is told apart by one call at ``x0`` (not counted): it
        is a torch function if it returns a torch tensor for ``x0`` as a torch
        tensor; otherwise (it raises, or returns a Python or NumPy number) a
        NumPy function if it returns a real scalar for ``x0`` as a NumPy array.
    x0
        Starting point, any shape with at least one entry; ``x`` keeps it.
        Integers become float64.
    method
        A configured method such as ``Nesterov(L=..., mu=...)`` or
        ``RegularizedNewton(hessian="gauss_newton")``. ``None``: ``Newton()``
        up to 2000 variables, ``Nesterov(restart="gradient")`` above.
    jac
        For a NumPy ``objective`` only, as in SciPy: ``True`` (``objective``
        returns ``(value, gradient)``), a callable ``jac(x) -> gradient``, or
        ``None``: central finite differences, ``2 n`` calls of ``objective`` per
        gradient (``solution.stats["fevals"]`` counts every call,
        ``stats["jevals"]`` those of ``jac``). Methods that need Hessians or
        Hessian-vector products get central differences of the gradient
        (``2 n`` gradients per Hessian, ``2`` per product): the default
        ``Newton()`` works, at that cost; over a finite-difference gradient
        they are accurate to about ``sqrt(eps)`` only, so pass ``jac`` for
        Newton methods.
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
        run), ``fevals`` / ``jevals`` for a NumPy objective, and the method's own
        counters.

    Raises
    ------
    ValueError
        ``x0`` empty or of the wrong shape, an objective that is not scalar or
        breaks the autograd graph, ``jac`` with a non-NumPy objective,
        ``constraints`` for an unconstrained method.

    Examples
    --------
    >>> import torch, itersolve
    >>> from itersolve.optimize import minimize, Newton
    >>> f = lambda x: ((x - 1.0) ** 4 + (x - 1.0) ** 2).sum()
    >>> sol = minimize(f, torch.zeros(2, dtype=torch.float64), Newton(atol=1e-10))
    >>> sol.success, round(float(sol.x[0]), 6)
    (True, 1.0)

    A SciPy-style NumPy objective (NumPy in, NumPy out):

    >>> import numpy as np
    >>> from scipy.optimize import rosen, rosen_der
    >>> sol = minimize(rosen, np.array([-1.2, 1.0]), jac=rosen_der)
    >>> sol.success, np.round(sol.x, 6).tolist()
    (True, [1.0, 1.0])
    """
    x0_t, info = as_tensor(x0, "x0", copy=True)
    problem = optimization_problem(objective, x0_t, jac=jac, constraints=constraints)
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
