"""``minimize``: the front door for smooth unconstrained minimization."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch

from itersolve._core.iterate import Callback, IterativeMethod, finish, iterate
from itersolve._core.objective import Objective, as_objective
from itersolve._core.solution import Solution
from itersolve._core.tensors import as_tensor, to_output

#: Problems up to this many variables default to Newton (dense Hessians).
NEWTON_DEFAULT_MAX_SIZE = 2000


@dataclass
class OptimizationProblem:
    """What methods see: the objective, the shape of ``x`` and what is known.

    Attributes
    ----------
    objective
        The :class:`~itersolve.Objective` (counted oracles).
    shape
        Shape of ``x`` (that of ``x0``).
    L, mu
        Smoothness and strong-convexity constants when the source problem
        knows them (``None`` otherwise); methods use them when their own ``L``
        / ``mu`` are not given.
    constraints
        Passed through for methods that accept constraints.
    source
        The object given to :func:`minimize` (a problem, an ``Objective`` or a
        function).
    """

    objective: Objective
    shape: tuple[int, ...]
    L: float | None = None
    mu: float | None = None
    constraints: Any = None
    source: Any = None

    @property
    def size(self) -> int:
        n = 1
        for s in self.shape:
            n *= s
        return n


@contextmanager
def uncounted(objective: Objective) -> Iterator[Objective]:
    """Evaluate ``objective`` for metrics without changing its counters."""
    saved = dict(objective.counts)
    try:
        yield objective
    finally:
        objective.counts.update(saved)


def _known(problem: Any, name: str) -> float | None:
    value = getattr(problem, name, None)
    if isinstance(value, (int, float)) and value == value:
        return float(value)
    return None


def default_method(problem: OptimizationProblem) -> IterativeMethod:
    """``Newton()`` up to :data:`NEWTON_DEFAULT_MAX_SIZE` variables, else
    ``Nesterov()`` (adaptive restart, backtracking on ``L``)."""
    from itersolve.optimize._nesterov import Nesterov
    from itersolve.optimize._newton import Newton

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
    from itersolve.problems.optimization import SmoothProblem

    x0_t, info = as_tensor(x0, "x0", copy=True)
    if x0_t.is_complex():
        raise TypeError(f"x0 must be real, got dtype {x0_t.dtype}")
    source = objective
    if isinstance(objective, SmoothProblem):
        if tuple(x0_t.shape) != objective.shape:
            raise ValueError(
                f"x0 must have shape {objective.shape} for {objective!r}, got "
                f"{tuple(x0_t.shape)}"
            )
        if objective.dtype != x0_t.dtype or objective.device != x0_t.device:
            objective = objective.to(dtype=x0_t.dtype, device=x0_t.device)
    obj = as_objective(objective)
    if method is None:
        pass
    elif not isinstance(method, IterativeMethod):
        raise TypeError(
            f"method must be a method such as Newton(), got {type(method).__name__}"
        )
    if constraints is not None and not getattr(method, "accepts_constraints", False):
        raise ValueError(
            f"{type(method).__name__ if method else 'the default method'} does not "
            "accept constraints; pass constraints=None or use a constrained method"
        )
    problem = OptimizationProblem(
        obj,
        tuple(x0_t.shape),
        L=_known(objective, "L"),
        mu=_known(objective, "mu"),
        constraints=constraints,
        source=source,
    )
    if torch.isfinite(x0_t).all():
        with uncounted(obj):
            value = _checked_value(obj, x0_t)
        del value
    method = default_method(problem) if method is None else method
    before = dict(obj.counts)
    _, solution = iterate(method, problem, x0_t, callback=callback, record=record)
    for key, count in obj.counts.items():
        solution.stats[key] = count - before[key]
    solution.x = to_output(solution.x, info)
    return finish(solution, throw=throw)


def _checked_value(obj: Objective, x: torch.Tensor) -> torch.Tensor:
    """Evaluate once at ``x0`` to reject non-scalar objectives up front."""
    try:
        value = obj.value(x)
    except RuntimeError as exc:
        raise ValueError(
            f"the objective could not be evaluated at x0 of shape "
            f"{tuple(x.shape)}: {exc}"
        ) from exc
    if not isinstance(value, torch.Tensor):
        raise TypeError(
            f"the objective must return a torch scalar, got {type(value).__name__}"
        )
    if value.numel() != 1:
        raise ValueError(
            f"the objective must return a scalar, got shape {tuple(value.shape)}"
        )
    return value
