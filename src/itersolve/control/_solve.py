"""The control front doors: ``solve_lqr`` (Kleinman), ``policy_iteration`` (IntRL)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from itersolve._core.frontdoor import check_method, solve
from itersolve._core.iterate import Callback, IterativeMethod
from itersolve._core.solution import Solution
from itersolve._core.tensors import ArrayInfo, Kind, as_tensor, is_finite, to_output
from itersolve._core.trace import IterInfo
from itersolve.control._intrl import IntegralPolicyIteration, linear_gain, simulate
from itersolve.control._kleinman import Kleinman
from itersolve.control._problem import ControlAffineSystem, lqr_problem


def solve_lqr(
    A: Any,
    B: Any,
    Q: Any,
    R: Any,
    method: IterativeMethod | None = None,
    *,
    K0: Any = None,
    callback: Callback | None = None,
    record: bool | int = False,
    throw: bool = False,
) -> Solution:
    """Continuous-time LQR by policy iteration: ``P`` (``x``) and ``K`` (extras).

    Parameters
    ----------
    A, B, Q, R
        System and weights, shapes ``(..., n, n)``, ``(..., n, m)``,
        ``(..., n, n)``, ``(..., m, m)``; batched over leading dimensions.
    method
        ``Kleinman()`` (the default).
    K0
        Initial gain, shape ``(..., m, n)``; it must stabilise ``A - B K0``. When
        omitted, zeros (valid only when ``A`` is Hurwitz).
    callback, record, throw
        As in :func:`itersolve.linear_solve`.

    Returns
    -------
    Solution
        ``x`` = ``P`` in the array kind of ``A``; ``extras["K"]`` the gain.

    Raises
    ------
    ValueError
        Bad shapes or empty matrices; ``Q`` or ``R`` not symmetric (SciPy's
        tolerance: ``||M - M^T||_1`` above 100 ulp of ``||M||_1``); ``R`` not
        positive definite; ``K0`` (or the zero gain) not stabilising ``A - B K0``.

    Examples
    --------
    >>> import numpy as np, scipy.linalg
    >>> from itersolve.control import solve_lqr
    >>> A = np.array([[0.0, 1.0], [-1.0, -1.0]]); B = np.array([[0.0], [1.0]])
    >>> sol = solve_lqr(A, B, np.eye(2), np.eye(1))
    >>> P = scipy.linalg.solve_continuous_are(A, B, np.eye(2), np.eye(1))
    >>> sol.success, bool(np.allclose(sol.x, P, atol=1e-10)), sol.extras["K"].shape
    (True, True, (1, 2))
    """
    problem, info = lqr_problem(A, B, Q, R)
    A_t, B_t = problem.A, problem.B
    batch, (n, m) = A_t.shape[:-2], B_t.shape[-2:]
    if K0 is None:
        K0_t = torch.zeros(*batch, m, n, dtype=A_t.dtype, device=A_t.device)
    else:
        K0_t = as_tensor(K0, "K0", dtype=A_t.dtype, device=A_t.device)[0]
        if K0_t.ndim < 2 or tuple(K0_t.shape[-2:]) != (m, n):
            raise ValueError(f"K0 must be (..., {m}, {n}), got {tuple(K0_t.shape)}")
        K0_t = K0_t.expand(*batch, m, n)
    inputs = (A_t, B_t, problem.Q, problem.R, K0_t)
    finite = is_finite(*inputs)
    if finite:
        worst = float(torch.linalg.eigvals(A_t - B_t @ K0_t).real.max())
        if worst >= 0:
            raise ValueError(
                "the initial policy does not stabilise the system: A - B K0 has an "
                f"eigenvalue with real part {worst:.4g} >= 0; pass a stabilising K0"
            )
    method = check_method(Kleinman() if method is None else method, "Kleinman()")
    gains: list[torch.Tensor] = []

    def answer(P: torch.Tensor) -> torch.Tensor:
        # The driver returns x0 (= K0) when an input is not finite: no P then.
        if not finite:
            return torch.full_like(problem.Q, torch.nan)
        gains.append(problem.gain(P))
        return P

    solution = solve(
        method,
        problem,
        K0_t,
        output=info,
        callback=callback,
        record=record,
        throw=throw,
        check_finite=inputs,
        to_x=answer,
    )
    if gains:
        solution.extras["K"] = to_output(gains[0], info)
    return solution


def policy_iteration(
    system: ControlAffineSystem,
    method: IterativeMethod | None = None,
    *,
    w0: Any = None,
    callback: Callback | None = None,
    record: bool | int = False,
    throw: bool = False,
) -> Solution:
    """Learn the value weights ``w`` of a :class:`ControlAffineSystem` by IntRL.

    Parameters
    ----------
    system
        The plant, cost, start state and feature basis (see
        :func:`third_order_linear`, :func:`sin_system`).
    method
        :class:`IntegralPolicyIteration` (default: trapezoid, 10 points).
    w0
        Value weights defining the initial policy (default ``system.w0``); the
        policy must stabilise the system.

    Returns
    -------
    Solution
        ``x`` = learned ``w`` in float64 (the data are simulated in float64),
        in the array kind of ``w0`` (a torch ``w0`` gives a tensor on its
        device; NumPy or the default ``system.w0`` gives a NumPy array);
        ``extras["history"]`` the iterates ``w_k``; ``extras["K"]`` the gain
        for linear systems.

    Raises
    ------
    ValueError
        When the initial policy does not stabilise the system (closed-loop
        eigenvalue with real part >= 0, or the simulated state blows up).

    Examples
    --------
    >>> from itersolve.control import (
    ...     IntegralPolicyIteration, policy_iteration, third_order_linear)
    >>> method = IntegralPolicyIteration(n_points=5, tol=1e-8)
    >>> sol = policy_iteration(third_order_linear(), method)
    >>> sol.success, tuple(sol.x.shape)  # the 6 weights of the quadratic value
    (True, (6,))
    """
    if not isinstance(system, ControlAffineSystem):
        raise TypeError(
            f"system must be a ControlAffineSystem, got {type(system).__name__}"
        )
    method = check_method(
        IntegralPolicyIteration() if method is None else method,
        "IntegralPolicyIteration()",
    )
    given = system.w0 if w0 is None else w0
    kind = Kind.TORCH if isinstance(given, torch.Tensor) else Kind.NUMPY
    device = given.device if isinstance(given, torch.Tensor) else torch.device("cpu")
    if isinstance(given, torch.Tensor):
        given = given.detach().cpu().numpy()
    w_start = np.asarray(given, dtype=np.float64)
    p = system.n * (system.n + 1) // 2
    if w_start.shape != (p,):
        raise ValueError(f"w0 must have shape ({p},), got {w_start.shape}")
    if np.all(np.isfinite(w_start)):
        window = getattr(method, "window", 0.1)
        probe = simulate(
            system, w_start, window, system.n_windows, np.array([0.0, window]), 1e-6
        )
        if probe is None:
            raise ValueError(
                "the initial policy does not stabilise the system (closed loop "
                "unstable or the simulated state exceeds 1000 times its start); "
                "pass a stabilising w0"
            )
    history: list[np.ndarray] = []

    def collect(info: IterInfo) -> bool | None:
        history.append(info.x.numpy().copy())
        return None if callback is None else callback(info)

    solution = solve(
        method,
        system,
        torch.from_numpy(w_start.copy()),
        output=ArrayInfo(kind, torch.float64, device),
        callback=collect,
        record=record,
        throw=throw,
    )
    solution.extras["history"] = np.array(history)
    if system.A is not None and history:
        solution.extras["K"] = linear_gain(system, history[-1])
    return solution
