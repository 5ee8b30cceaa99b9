"""The problem type of :mod:`itersolve.optimize` and the interface users implement.

* :class:`SmoothProblem` -- the abstract base a problem with closed-form oracles
  implements (``value``, ``grad``; optionally ``hessian``, ``hvp`` and named Hessian
  approximations). The fixtures of :mod:`itersolve.problems` are implementations.
* :class:`ProblemObjective` -- the counted :class:`~itersolve.Objective` built from
  a ``SmoothProblem``.
* :class:`OptimizationProblem` -- what every method receives: the objective, the
  shape of ``x`` and the constants the source problem knows.
* :func:`optimization_problem` -- the validation ``minimize`` runs on its inputs.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from itersolve._core.objective import (
    NumpyObjective,
    Objective,
    as_objective,
    probe,
)

Tensor = torch.Tensor


class SmoothProblem(abc.ABC):
    """A smooth objective with closed-form oracles, the interface users implement.

    Subclasses set ``shape`` (the shape of ``x``), ``dtype`` and ``device`` and
    implement :meth:`value` and :meth:`grad` (torch in, torch out). Optional:

    * :meth:`hessian` (dense ``(n, n)``) and/or :meth:`hvp`; without either the
      Hessian-vector products are autograd's through :meth:`grad` (so ``grad`` must
      then be differentiable torch code);
    * :meth:`value_and_grad` when both share work;
    * named Hessian approximations: list them in ``approximations`` and define a
      method of that name returning a matrix (``"gauss_newton"``, ``"fisher"``);
      ``RegularizedNewton(hessian="gauss_newton")`` finds them;
    * ``L`` / ``mu`` (smoothness and strong convexity constants) and ``x_star``
      when known: ``minimize`` hands ``L`` and ``mu`` to the method;
    * :meth:`to` for a dtype / device twin (``minimize`` calls it when ``x0`` has
      another dtype or device).

    Examples
    --------
    >>> class Shifted(SmoothProblem):
    ...     shape, dtype, device = (2,), torch.float64, torch.device("cpu")
    ...     def value(self, x):
    ...         return 0.5 * ((x - 1.0) ** 2).sum()
    ...     def grad(self, x):
    ...         return x - 1.0
    >>> from itersolve.optimize import minimize
    >>> minimize(Shifted(), torch.zeros(2, dtype=torch.float64)).x.tolist()
    [1.0, 1.0]
    """

    shape: tuple[int, ...]
    dtype: torch.dtype
    device: torch.device
    approximations: tuple[str, ...] = ()

    @abc.abstractmethod
    def value(self, x: Tensor) -> Tensor:
        """``f(x)`` as a 0-d tensor."""

    @abc.abstractmethod
    def grad(self, x: Tensor) -> Tensor:
        """``grad f(x)``, shaped like ``x``."""

    def value_and_grad(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return self.value(x), self.grad(x)

    def hessian(self, x: Tensor) -> Tensor:
        """The dense Hessian ``(x.numel(), x.numel())``; not given by default."""
        raise NotImplementedError(f"{type(self).__name__} has no closed-form Hessian")

    def hvp(self, x: Tensor, v: Tensor) -> Tensor:
        """``H(x) v``; by default ``hessian(x) @ v``."""
        return (self.hessian(x) @ v.reshape(-1)).reshape(x.shape)

    def objective(self) -> ProblemObjective:
        """The :class:`~itersolve.Objective` solvers run on (fresh counters)."""
        return ProblemObjective(self)

    def x0(self) -> Tensor:
        """The default starting point: zeros of the right shape and dtype."""
        return torch.zeros(self.shape, dtype=self.dtype, device=self.device)

    @property
    def L(self) -> float | None:
        return None

    @property
    def mu(self) -> float | None:
        return None

    @property
    def x_star(self) -> Tensor | None:
        return None

    def to(
        self, dtype: torch.dtype | None = None, device: torch.device | str | None = None
    ) -> SmoothProblem:
        """A copy with its tensors cast to ``dtype`` / moved to ``device``."""
        raise NotImplementedError(
            f"{type(self).__name__} does not implement to(dtype=, device=)"
        )

    def _check(self, x: Tensor) -> None:
        if tuple(x.shape) != self.shape:
            raise ValueError(
                f"x must have shape {self.shape} for {type(self).__name__}, got "
                f"{tuple(x.shape)}"
            )


def _overrides(problem: SmoothProblem, name: str) -> bool:
    return getattr(type(problem), name) is not getattr(SmoothProblem, name)


class ProblemObjective(Objective):
    """An :class:`~itersolve.Objective` that also carries its problem.

    Oracles the problem does not override come from autograd (Hessians of
    ``value``, Hessian-vector products through ``grad``). Solvers reach Hessian
    approximations through :meth:`approximation` (``"gauss_newton"``,
    ``"fisher"``, ...); each call is counted under ``counts["hessians"]``.

    Examples
    --------
    >>> from itersolve.problems import Rosenbrock
    >>> f = Rosenbrock(2).objective()
    >>> f.grad(torch.zeros(2, dtype=torch.float64)).tolist(), f.counts["grads"]
    ([-2.0, 0.0], 1)
    """

    def __init__(self, problem: SmoothProblem) -> None:
        has_hessian = _overrides(problem, "hessian")
        super().__init__(
            problem.value,
            grad=problem.grad,
            hvp=problem.hvp if has_hessian or _overrides(problem, "hvp") else None,
            hessian=problem.hessian if has_hessian else None,
        )
        self.problem = problem

    def value_and_grad(self, x: Tensor) -> tuple[Tensor, Tensor]:
        self.counts["values"] += 1
        self.counts["grads"] += 1
        return self.problem.value_and_grad(x)

    def approximation(self, name: str) -> Callable[[Tensor], Any]:
        """The Hessian approximation ``name`` as a function of ``x``."""
        fn = getattr(self.problem, name, None)
        if name not in self.problem.approximations or fn is None:
            raise ValueError(
                f"{type(self.problem).__name__} has no Hessian approximation "
                f"{name!r}; available: {sorted(self.problem.approximations)}"
            )

        def counted(x: Tensor) -> Any:
            self.counts["hessians"] += 1
            return fn(x)

        return counted

    def __repr__(self) -> str:
        return f"ProblemObjective({self.problem!r})"


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
        The object given to :func:`~itersolve.optimize.minimize` (a problem, an
        ``Objective`` or a function).

    Examples
    --------
    >>> p = OptimizationProblem(Objective(lambda x: (x**2).sum()), (3, 2))
    >>> p.size
    6
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
    """Evaluate ``objective`` for metrics without changing its counters.

    >>> f = Objective(lambda x: (x**2).sum())
    >>> with uncounted(f):
    ...     _ = f.value(torch.ones(2))
    >>> f.counts["values"]
    0
    """
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


def _matching(problem: SmoothProblem, x0: Tensor) -> SmoothProblem:
    """``problem`` in the dtype and on the device of ``x0``."""
    if tuple(x0.shape) != tuple(problem.shape):
        raise ValueError(
            f"x0 must have shape {tuple(problem.shape)} for {problem!r}, got "
            f"{tuple(x0.shape)}"
        )
    if problem.dtype == x0.dtype and problem.device == x0.device:
        return problem
    try:
        return problem.to(dtype=x0.dtype, device=x0.device)
    except NotImplementedError as exc:
        raise ValueError(
            f"x0 has dtype {x0.dtype} on {x0.device} but {type(problem).__name__} "
            f"has dtype {problem.dtype} on {problem.device} and no to(): pass x0 "
            "in the problem's dtype and device"
        ) from exc


def _evaluation_error(x: Tensor, exc: Exception) -> ValueError:
    return ValueError(
        f"the objective could not be evaluated at x0 of shape {tuple(x.shape)}: "
        f"{type(exc).__name__}: {exc}"
    )


def _is_numpy_scalar(value: Any) -> bool:
    return isinstance(value, (int, float, np.number, np.ndarray)) and (
        np.asarray(value).size == 1 and np.isrealobj(value)
    )


def _plain_function(fun: Callable[..., Any], x0: Tensor) -> Objective:
    """A torch or a NumPy objective, by how ``fun`` answers at ``x0``.

    The rule: ``fun`` is a torch function when, called on ``x0`` as a torch
    tensor, it returns a torch tensor; otherwise (it raises, or returns a Python
    or NumPy number) it is a NumPy function when, called on ``x0`` as a NumPy
    array, it returns a real scalar. Neither: the torch call's error is raised.
    """
    expected = (
        "the objective must return a torch scalar (or, as a NumPy function, a "
        "real number)"
    )
    if is_torch_function(fun, x0, _is_numpy_scalar, expected):
        objective = Objective(fun)
        objective.check_at(x0)
        return objective
    return NumpyObjective(fun)


def is_torch_function(
    fun: Callable[..., Any],
    x0: Tensor,
    numpy_result: Callable[[Any], bool],
    expected: str,
) -> bool:
    """The rule of :func:`_plain_function` for any kind of result (shared with
    ``least_squares``): ``True`` when ``fun`` returns a torch tensor for ``x0``
    as a torch tensor, ``False`` when it is a NumPy function (its result for
    ``x0`` as a NumPy array passes ``numpy_result``); otherwise the torch
    call's error, or a ``TypeError`` starting with ``expected``.
    """
    try:
        value = probe(fun, x0)
    except Exception as exc:
        torch_error: Exception | None = exc
    else:
        if isinstance(value, Tensor):
            return True
        torch_error = None
    try:
        as_numpy = fun(x0.detach().cpu().numpy().copy())
    except Exception as exc:
        raise _evaluation_error(x0, torch_error or exc) from (torch_error or exc)
    if not numpy_result(as_numpy):
        if torch_error is not None:
            raise _evaluation_error(x0, torch_error) from torch_error
        raise TypeError(f"{expected}, got {type(as_numpy).__name__}")
    return False


def _objective(objective: Any, x0: Tensor, jac: Any, *, probe: bool) -> Objective:
    """The counted Objective for ``minimize``'s ``objective`` and ``jac``, checked
    at ``x0`` when ``probe``."""
    plain = callable(objective) and not (
        isinstance(objective, Objective) or hasattr(objective, "objective")
    )
    if jac is not None:
        if not plain:
            raise ValueError(
                "jac= is for a NumPy function fun(x) -> float, got "
                f"{type(objective).__name__}"
            )
        obj: Objective = NumpyObjective(objective, jac=jac)
    elif plain and probe:
        return _plain_function(objective, x0)
    else:
        obj = as_objective(objective)
    if not probe:
        return obj
    try:
        obj.check_at(x0)
    except RuntimeError as exc:
        raise _evaluation_error(x0, exc) from exc
    return obj


def optimization_problem(
    objective: Any, x0: Tensor, *, jac: Any = None, constraints: Any = None
) -> OptimizationProblem:
    """Validate ``minimize``'s inputs and build the problem its methods see.

    ``objective`` is a :class:`SmoothProblem` (moved to ``x0``'s dtype and device),
    an :class:`~itersolve.Objective`, a torch function of ``x`` or a NumPy
    function (``jac`` as in :func:`~itersolve.optimize.minimize`). A finite ``x0``
    is evaluated once (uncounted), so a non-scalar objective, a torch objective
    that breaks the autograd graph or a NumPy/torch mix-up fails here, with one
    error.

    >>> p = optimization_problem(lambda x: (x**2).sum(), torch.zeros(2))
    >>> p.shape, p.L
    ((2,), None)
    """
    if x0.is_complex():
        raise TypeError(f"x0 must be real, got dtype {x0.dtype}")
    if x0.numel() == 0:
        raise ValueError(
            f"x0 must have at least one entry, got shape {tuple(x0.shape)}"
        )
    source = objective
    if isinstance(objective, SmoothProblem):
        objective = _matching(objective, x0)
    # a non-finite x0 ends the run (NONFINITE_INPUT) before any evaluation
    obj = _objective(objective, x0, jac, probe=bool(torch.isfinite(x0).all()))
    return OptimizationProblem(
        obj,
        tuple(x0.shape),
        L=_known(objective, "L"),
        mu=_known(objective, "mu"),
        constraints=constraints,
        source=source,
    )
