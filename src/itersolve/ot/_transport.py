"""``transport``: the front door for entropic optimal transport."""

from __future__ import annotations

import math
from typing import Any

import torch

from itersolve._core.iterate import Callback, IterativeMethod, finish, iterate
from itersolve._core.solution import Solution, Status
from itersolve._core.tensors import ArrayInfo, as_tensor, result_dtype, to_output
from itersolve.ot._problem import TransportProblem, gibbs_plan
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
    problem, info, restore = _build_problem(a, b, cost, reg)
    if method is None:
        method = Sinkhorn() if problem.batched else SinkhornNewtonSparse()
    if not isinstance(method, (Sinkhorn, SinkhornNewtonSparse)):
        raise TypeError(
            "method must be Sinkhorn(...) or SinkhornNewtonSparse(...), got "
            f"{type(method).__name__}"
        )
    x0_t = _start(problem, x0, restore)
    inputs = (problem.a, problem.b, problem.cost)
    state, solution = iterate(
        method, problem, x0_t, callback=callback, record=record, check_finite=inputs
    )
    if state is None:  # non-finite input: nothing computed
        x_final = torch.full_like(x0_t, float("nan"))
    else:
        x_final = state.x
    _attach_plan(solution, problem, x_final, info, restore)
    return finish(solution, throw=throw)


def _build_problem(
    a: Any, b: Any, cost: Any, reg: Any
) -> tuple[TransportProblem, ArrayInfo, dict[str, Any]]:
    if isinstance(reg, bool) or not isinstance(reg, (int, float)):
        raise TypeError(f"reg must be a positive number, got {type(reg).__name__}")
    if not (math.isfinite(reg) and reg > 0):
        raise ValueError(f"reg must be a positive finite number, got {reg}")
    C, info = as_tensor(cost, "cost")
    if C.ndim not in (2, 3):
        raise ValueError(
            f"cost must have shape (n, m) or (B, n, m), got {tuple(C.shape)}"
        )
    n, m = C.shape[-2:]
    a_t = _weights(a, "a", n, C)
    b_t = _weights(b, "b", m, C)
    dtype = result_dtype(C.dtype, a_t.dtype, b_t.dtype)
    C, a_t, b_t = C.to(dtype), a_t.to(dtype), b_t.to(dtype)
    if a_t.ndim != b_t.ndim:
        raise ValueError(
            f"a and b must both be 1-D or both 2-D (batch), got shapes "
            f"{tuple(a_t.shape)} and {tuple(b_t.shape)}"
        )
    if a_t.shape[-1] != n or b_t.shape[-1] != m:
        raise ValueError(
            f"cost of shape {tuple(C.shape)} needs a of length {n} and b of length "
            f"{m}, got shapes {tuple(a_t.shape)} and {tuple(b_t.shape)}"
        )
    batch = a_t.shape[:-1]
    if b_t.shape[:-1] != batch or (C.ndim == 3 and C.shape[:1] != batch):
        raise ValueError(
            f"batch sizes differ: a {tuple(a_t.shape)}, b {tuple(b_t.shape)}, "
            f"cost {tuple(C.shape)}"
        )
    restore: dict[str, Any] = {"n": n, "m": m}
    finite = all(bool(torch.isfinite(t).all()) for t in (a_t, b_t, C))
    if finite:
        for name, w in (("a", a_t), ("b", b_t)):
            if bool((w < 0).any()):
                raise ValueError(
                    f"{name} must be non-negative, got min {float(w.min())}"
                )
        mass_a, mass_b = a_t.sum(-1), b_t.sum(-1)
        if bool((mass_a <= 0).any() | (mass_b <= 0).any()):
            raise ValueError("a and b must have positive total mass")
        gap = (mass_a - mass_b).abs() / torch.maximum(mass_a, mass_b)
        if bool((gap > torch.finfo(dtype).eps ** 0.5).any()):
            raise ValueError(
                "a and b must have equal total mass, got sum(a) = "
                f"{mass_a.tolist()} and sum(b) = {mass_b.tolist()}"
            )
        b_t = b_t * (mass_a / mass_b).unsqueeze(-1)
        keep_a, keep_b = a_t > 0, b_t > 0
        if not bool(keep_a.all() & keep_b.all()):
            if a_t.ndim == 2:
                raise ValueError(
                    "zero weights are supported for a single problem only; a batch "
                    "needs strictly positive a and b"
                )
            restore["rows"], restore["cols"] = keep_a, keep_b
            a_t, b_t = a_t[keep_a], b_t[keep_b]
            C = C[keep_a][:, keep_b]
    return TransportProblem(a_t, b_t, C, float(reg)), info, restore


def _weights(w: Any, name: str, size: int, like: torch.Tensor) -> torch.Tensor:
    if w is None or (isinstance(w, (list, tuple)) and len(w) == 0):
        return torch.full((size,), 1.0 / size, dtype=like.dtype, device=like.device)
    t, _ = as_tensor(w, name, device=like.device)
    if t.ndim not in (1, 2):
        raise ValueError(f"{name} must have shape (n,) or (B, n), got {tuple(t.shape)}")
    return t


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


def _attach_plan(
    solution: Solution,
    problem: TransportProblem,
    x: torch.Tensor,
    info: ArrayInfo,
    restore: dict[str, Any],
) -> None:
    u, v = problem.split(x)
    plan = gibbs_plan(problem, u, v)
    if solution.success and not bool(torch.isfinite(plan).all()):
        solution.status = Status.NONFINITE
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
    solution.x = to_output(plan, info)
    scalar = not problem.batched
    solution.extras.update(
        {
            "potentials": (to_output(f, info), to_output(g, info)),
            "transport_cost": float(cost) if scalar else to_output(cost, info),
            "marginal_error": float(error) if scalar else to_output(error, info),
            "reg": problem.reg,
        }
    )
