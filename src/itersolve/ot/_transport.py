"""``transport``: the front door for entropic optimal transport."""

from __future__ import annotations

import math
from typing import Any

import torch

from itersolve._core.frontdoor import check_method, solve
from itersolve._core.iterate import Callback, IterativeMethod
from itersolve._core.solution import Solution
from itersolve._core.tensors import ArrayInfo, as_tensor, is_finite, to_output
from itersolve.ot._problem import TransportProblem, build_problem, gibbs_plan
from itersolve.ot._sinkhorn import Sinkhorn
from itersolve.ot._sinkhorn_newton_sparse import SinkhornNewtonSparse


def transport(
    a: Any,
    b: Any,
    cost: Any,
    method: IterativeMethod | None = None,
    *,
    reg: float,
    x0: tuple[Any, Any] | None = None,
    callback: Callback | None = None,
    record: bool | int = False,
    throw: bool = False,
) -> Solution:
    """Entropic optimal transport: the plan ``P`` minimising ``<C, P> - reg H(P)``.

    Compare with ``ot.sinkhorn(a, b, M, reg)`` (POT): same problem, same meaning
    of ``reg`` (epsilon = 1/eta), so plans are directly comparable. The exact
    (unregularised) value is ``ot.emd2``; ``<C, P>`` approaches it as
    ``reg -> 0``.

    Parameters
    ----------
    a, b
        Source and target weights, shape ``(n,)`` and ``(m,)``, non-negative
        with equal total mass (compared to ``sqrt(eps)`` relative; ``b`` is then
        rescaled to ``a``'s mass exactly, as the Newton system requires). ``None``
        or an empty sequence means uniform, as in POT. A batch of problems
        sharing a size: ``(B, n)`` and ``(B, m)``. Zero weights are allowed for
        a single problem (those rows/columns of the plan are zero and their
        potentials ``-inf``).
    cost
        Ground cost ``C``, shape ``(n, m)`` (or ``(B, n, m)`` for a batch).
    method
        ``Sinkhorn(...)`` or ``SinkhornNewtonSparse(...)``; ``None`` picks
        ``SinkhornNewtonSparse()`` for one problem and ``Sinkhorn()`` for a batch.
    reg
        Entropic regularisation epsilon > 0 (POT's ``reg``).
    x0
        Warm start: dual potentials ``(f, g)`` in cost units, e.g. the
        ``extras["potentials"]`` of an earlier solve.
    callback, record, throw
        As for every front door (see :func:`itersolve.linear_solve`); the
        callback's ``IterInfo.x`` is the stacked log-scalings ``[f, g] / reg``.

    Returns
    -------
    Solution
        ``x`` is the plan ``P``, in the array kind of ``cost``. ``extras``:

        * ``"potentials"``: ``(f, g)`` with ``P_ij = exp((f_i + g_j - C_ij) / reg)``
          (POT's ``reg * log_u``, ``reg * log_v``);
        * ``"transport_cost"``: ``<C, P>``;
        * ``"marginal_error"``: ``||P 1 - a||_1 + ||P^T 1 - b||_1`` of the
          returned plan, recomputed;
        * ``"reg"``.

        For a batch the last three are arrays of length ``B``.

    Examples
    --------
    >>> import numpy as np
    >>> from itersolve import ot
    >>> C = np.array([[0.0, 1.0], [1.0, 0.0]])
    >>> sol = ot.transport([0.5, 0.5], [0.5, 0.5], C, reg=0.05)
    >>> sol.success, np.round(sol.x, 4)
    (True, array([[0.5, 0. ],
           [0. , 0.5]]))
    >>> float(sol.extras["transport_cost"]) < 1e-8
    True
    """
    problem, info, restore = build_problem(a, b, cost, reg)
    if method is None:
        method = Sinkhorn() if problem.batched else SinkhornNewtonSparse()
    check_method(method, "Sinkhorn()")
    if not isinstance(method, (Sinkhorn, SinkhornNewtonSparse)):
        raise TypeError(
            "method must be Sinkhorn(...) or SinkhornNewtonSparse(...), got "
            f"{type(method).__name__}"
        )
    x0_t = _start(problem, x0, restore)
    inputs = (problem.a, problem.b, problem.cost)
    finite = is_finite(*inputs)
    extras: dict[str, Any] = {}

    def plan(x: torch.Tensor) -> torch.Tensor:
        # The driver hands back x0 when an input is not finite: nothing computed.
        if not finite:
            x = torch.full_like(x, torch.nan)
        return _plan_and_extras(problem, x, info, restore, extras)

    solution = solve(
        method,
        problem,
        x0_t,
        output=info,
        callback=callback,
        record=record,
        throw=throw,
        check_finite=inputs,
        to_x=plan,
    )
    solution.extras.update(extras)
    return solution


def _start(problem: TransportProblem, x0: Any, restore: dict[str, Any]) -> torch.Tensor:
    shape = (*problem.a.shape[:-1], problem.n + problem.m)
    dtype, device = problem.a.dtype, problem.a.device
    if x0 is None:
        return torch.zeros(shape, dtype=dtype, device=device)
    if not isinstance(x0, (tuple, list)) or len(x0) != 2:
        raise TypeError("x0 must be a pair (f, g) of dual potentials")
    full_n, full_m = restore["n"], restore["m"]
    batch = tuple(problem.a.shape[:-1])
    f, _ = as_tensor(x0[0], "x0[0]", dtype=dtype, device=device)
    g, _ = as_tensor(x0[1], "x0[1]", dtype=dtype, device=device)
    if tuple(f.shape) != (*batch, full_n) or tuple(g.shape) != (*batch, full_m):
        raise ValueError(
            f"x0 must be potentials of shapes {(*batch, full_n)} and "
            f"{(*batch, full_m)}, got {tuple(f.shape)} and {tuple(g.shape)}"
        )
    if "rows" in restore:
        f, g = f[restore["rows"]], g[restore["cols"]]
    # Potentials of dropped (zero-weight) points may be -inf; they are not used.
    return torch.cat([f, g], -1) / problem.reg


def _plan_and_extras(
    problem: TransportProblem,
    x: torch.Tensor,
    info: ArrayInfo,
    restore: dict[str, Any],
    extras: dict[str, Any],
) -> torch.Tensor:
    """The plan of the log-scalings ``x`` (full size), its extras into ``extras``.

    The plan of a successful run is finite: the marginals are within ``tol``
    of ``a`` and ``b``, so no entry of ``exp(u_i + v_j - C_ij / reg)`` exceeds
    their mass, and the driver has checked ``x`` itself.
    """
    u, v = problem.split(x)
    plan = gibbs_plan(problem, u, v)
    rows, cols = plan.sum(-1), plan.sum(-2)
    error = (rows - problem.a).abs().sum(-1) + (cols - problem.b).abs().sum(-1)
    cost = (problem.cost * plan).sum((-2, -1))
    f, g = u * problem.reg, v * problem.reg
    if "rows" in restore:
        n, m = restore["n"], restore["m"]
        full = plan.new_zeros((n, m))
        full[torch.outer(restore["rows"], restore["cols"])] = plan.reshape(-1)
        plan = full
        f = f.new_full((n,), -math.inf).masked_scatter(restore["rows"], f)
        g = g.new_full((m,), -math.inf).masked_scatter(restore["cols"], g)
    scalar = not problem.batched
    extras.update(
        {
            "potentials": (to_output(f, info), to_output(g, info)),
            "transport_cost": float(cost) if scalar else to_output(cost, info),
            "marginal_error": float(error) if scalar else to_output(error, info),
            "reg": problem.reg,
        }
    )
    return plan
