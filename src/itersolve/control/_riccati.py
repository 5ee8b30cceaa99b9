"""Batched continuous-time Lyapunov and algebraic Riccati solvers in pure torch."""

from __future__ import annotations

import math
from typing import Any

import torch

from itersolve._core.errors import ConvergenceError
from itersolve._core.frontdoor import DefaultTolerance
from itersolve._core.iterate import iterate
from itersolve._core.solution import Solution, Status
from itersolve._core.tensors import ArrayInfo, as_tensor, to_output
from itersolve.control._problem import SignProblem, lqr_problem, square
from itersolve.control._sign import MatrixSign


def _kron_sum(M: torch.Tensor) -> torch.Tensor:
    """``kron(M, I) + kron(I, M)`` for a batch of square ``M`` (row-major vec)."""
    n = M.shape[-1]
    eye = torch.eye(n, dtype=M.dtype, device=M.device)
    left = torch.einsum("...ik,jl->...ijkl", M, eye)
    right = torch.einsum("ik,...jl->...ijkl", eye, M)
    return (left + right).reshape(*M.shape[:-2], n * n, n * n)


def _lyapunov_kron(A: torch.Tensor, Q: torch.Tensor) -> torch.Tensor:
    n = A.shape[-1]
    L = _kron_sum(A.mT)
    x = torch.linalg.solve(L, -Q.reshape(*Q.shape[:-2], n * n, 1))
    return x.reshape(Q.shape)


def _auto_method(n: int) -> str:
    """``lyapunov``'s ``method="auto"``: the Kronecker solve up to 16 states."""
    return "kron" if n <= 16 else "sign"


def _raise_or_return(
    solution: Solution, full_output: bool, info: ArrayInfo | None = None
) -> Any:
    """``X`` (or the Solution with ``full_output``), in ``info``'s array kind."""
    if info is not None:
        solution.x = to_output(solution.x, info)
    if full_output:
        return solution
    if not solution.success:
        raise ConvergenceError(solution)
    return solution.x


def _lyapunov_solution(
    A: torch.Tensor, Q: torch.Tensor, method: str, tol: float, max_steps: int | None
) -> Solution:
    if method == "kron":
        X = _lyapunov_kron(A, Q)
        status = Status.SUCCESS if bool(torch.isfinite(X).all()) else Status.NONFINITE
        return Solution(X, status, 0, {"factorizations": 1})
    sign = MatrixSign(tol=tol, max_steps=max_steps)
    state, solution = iterate(sign, SignProblem(Q), A, check_finite=(Q,))
    if state is not None:
        # [[A^T, Q], [0, -A]] has sign [[-I, 2 X], [0, I]]; Q_k tracks its
        # (1, 2) block up to sign: X = Q_inf / 2.
        solution.x = 0.5 * state.q
        # sign(A) = -I exactly when A is Hurwitz; otherwise Q_inf / 2 solves
        # nothing and must not be returned.
        eye = torch.eye(A.shape[-1], dtype=A.dtype, device=A.device)
        if solution.success and not bool(((state.x + eye).abs() <= 1e-6).all()):
            raise ValueError(
                "lyapunov(method='sign') needs a Hurwitz A (every eigenvalue with "
                "negative real part); use method='kron'"
            )
    solution.stats["sign_steps"] = solution.num_steps
    return solution


def lyapunov(
    A: Any,
    Q: Any,
    *,
    method: str = "auto",
    tol: float = DefaultTolerance(1e-13),
    max_steps: int | None = None,
    full_output: bool = False,
) -> Any:
    """Solve ``A^T X + X A + Q = 0`` for ``X``, batched over leading dimensions.

    Equivalent to ``scipy.linalg.solve_continuous_lyapunov(A.T, -Q)`` and to
    ``control.lyap(A.T, Q)``. ``method="kron"`` solves the ``n^2 x n^2``
    Kronecker system directly (any ``A`` with no pair ``lambda_i + lambda_j =
    0``; chosen by ``"auto"`` for ``n <= 16``); ``"sign"`` runs Roberts' scaled
    matrix-sign-function iteration (:class:`MatrixSign`, ``A`` Hurwitz;
    quadratic convergence) through the driver, stopping when
    ``||A_{k+1} - A_k||_1 <= tol ||A_k||_1`` for every matrix of the batch
    (at most ``max_steps`` steps, 100 by default). Float64 by default; no
    Fortran.

    Returns
    -------
    array or Solution
        ``X`` in the array kind of ``A``; with ``full_output=True`` the
        :class:`~itersolve.Solution`
        (``x`` = ``X``, ``status``, ``num_steps`` = sign steps, 0 for
        ``"kron"``), which never raises for a numerical outcome.

    Raises
    ------
    ValueError
        Bad shapes or method; ``method="sign"`` with an ``A`` that is not
        Hurwitz (detected from ``sign(A) != -I``).
    ConvergenceError
        (``full_output=False``) the sign iteration did not converge; the
        unconverged :class:`~itersolve.Solution` is in ``.solution`` and its
        status says why (``MAX_STEPS``; ``BREAKDOWN``: a singular iterate, ``A``
        has an eigenvalue on the imaginary axis; ``NONFINITE``).

    Examples
    --------
    >>> A = torch.tensor([[-1.0, 2.0], [0.0, -3.0]], dtype=torch.float64)
    >>> X = lyapunov(A, torch.eye(2, dtype=torch.float64))
    >>> bool(torch.allclose(A.T @ X + X @ A, -torch.eye(2, dtype=torch.float64)))
    True
    >>> lyapunov(A, torch.eye(2, dtype=torch.float64), method="sign",
    ...          full_output=True).status.name
    'SUCCESS'
    """
    A_t, info = as_tensor(A, "A")
    Q_t = as_tensor(Q, "Q", device=A_t.device)[0]
    dtype = torch.promote_types(A_t.dtype, Q_t.dtype)
    A_t, Q_t = A_t.to(dtype), Q_t.to(dtype)
    n = square("A", A_t)
    square("Q", Q_t, n)
    A_t, Q_t = torch.broadcast_tensors(A_t, Q_t)
    if method == "auto":
        method = _auto_method(n)
    if method not in ("kron", "sign"):
        raise ValueError(f"method must be 'auto', 'kron' or 'sign', got {method!r}")
    solution = _lyapunov_solution(A_t, Q_t, method, tol, max_steps)
    return _raise_or_return(solution, full_output, info)


def _two_sum(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``a + b = s + e`` exactly (Knuth's TwoSum)."""
    s = a + b
    bb = s - a
    return s, (a - (s - bb)) + (b - bb)


def _digits(dtype: torch.dtype) -> int:
    """Significand bits of ``dtype`` (53 for float64)."""
    return 1 - round(math.log2(torch.finfo(dtype).eps))


def _grid_split(
    M: torch.Tensor, dim: int, bits: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """``M = hi + lo`` exactly, ``hi`` on a grid fixed per row (``dim=-1``) or per
    column (``dim=-2``): every entry of ``hi`` is an integer of at most
    ``bits`` bits times ``2^(e - bits + 1)``, where ``2^e`` bounds that row's
    (column's) entries, and ``|lo| <= 2^(e - bits)``.

    Adding and subtracting ``sigma = 1.5 * 2^(e + 53 - bits)`` rounds every
    entry to that grid (Rump, Ogita & Oishi's ExtractScalar): the sum stays in
    one binade, whose spacing is the grid.
    """
    top = M.abs().amax(dim=dim, keepdim=True)
    exponent = torch.frexp(top).exponent  # top < 2^exponent
    digits = _digits(M.dtype)
    sigma = torch.ldexp(torch.full_like(top, 1.5), exponent + (digits - bits))
    hi = (M + sigma) - sigma
    return hi, M - hi


def _dot2(X: torch.Tensor, Y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``X @ Y`` as ``hi + lo``, with an error of about ``k u 2^-t |X| |Y|``.

    Ozaki's error-free splitting (Ozaki, Ogita, Oishi & Rump, Numer. Algorithms
    59, 2012): ``X = Xh + Xl`` by rows and ``Y = Yh + Yl`` by columns, with
    ``Xh``, ``Yh`` on grids of ``t = (p - ceil(log2 k)) // 2`` bits (``p``
    significand bits, ``k`` the inner dimension), so that every entry of
    ``Xh @ Yh`` is a sum of ``k`` products of at most ``2 t`` bits on one grid:
    exact in any summation order. ``hi = Xh @ Yh`` exactly; ``lo`` the three
    remaining products, each ``2^-t`` smaller, so their rounding is
    ``O(u 2^-t |X| |Y|)``. Four batched matrix products, no loop.
    """
    digits = _digits(X.dtype)
    bits = (digits - math.ceil(math.log2(max(X.shape[-1], 1)))) // 2
    Xh, Xl = _grid_split(X, -1, bits)
    Yh, Yl = _grid_split(Y, -2, bits)
    return Xh @ Yh, Xh @ Yl + Xl @ (Yh + Yl)


def _riccati_residual(
    A: torch.Tensor, B: torch.Tensor, R: torch.Tensor, Q: torch.Tensor, P: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``A^T P + P A - P B R^{-1} B^T P + Q`` in compensated arithmetic.

    Also returns the gain ``K = R^{-1} B^T P`` and the scale ``||A^T P|| +
    ||P A|| + ||K^T R K|| + ||Q||`` (Frobenius, per system), which sets the
    rounding floor any ``P`` stored in this dtype sits on. The plain
    evaluation errs by about ``u (||A^T P|| + ||P G P||)``, and so does
    forming ``G = B R^{-1} B^T`` first (``P`` times its rounding times ``P``):
    on well-scaled but large ``P`` (``||P|| ~ 5e3``) either is ~1e-9 relative
    to ``||Q||``, as large as the residual one wants to measure or correct.
    Only the solve with ``R`` stays in working precision (exact for ``R = I``).
    """
    h1, l1 = _dot2(A.mT, P)
    h2, l2 = _dot2(P, A)
    wh, wl = _dot2(B.mT, P)
    vh, vl = torch.linalg.solve(R, wh), torch.linalg.solve(R, wl)
    h3, l3 = _dot2(wh.mT, vh)
    # the low parts are 2^-t of the high ones (see _dot2): their products
    # need no compensation, but none of them may be dropped
    l3 = l3 + wh.mT @ vl + wl.mT @ (vh + vl)
    s, e = _two_sum(h1, h2)
    lo = e + l1 + l2
    s, e = _two_sum(s, -h3)
    lo = lo + e - l3
    s, e = _two_sum(s, Q)
    res = s + (lo + e)
    norm = torch.linalg.matrix_norm
    scale = norm(h1) + norm(h2) + norm(h3) + norm(Q)
    return res, vh + vl, scale


def care_residual(
    A: torch.Tensor, B: torch.Tensor, Q: torch.Tensor, R: torch.Tensor, P: torch.Tensor
) -> torch.Tensor:
    """``||A^T P + P A - P B R^{-1} B^T P + Q||_F / max(1, ||Q||_F)`` per system.

    The residual matrix is evaluated in compensated arithmetic (error-free
    split products and TwoSum: errors about ``1e-22`` relative to the terms
    in float64; only the solve with ``R`` is in working precision), so the
    value measures ``P``, not the rounding of the evaluation. A plain float64
    evaluation (``G`` formed first) errs by about
    ``u (||A^T P|| + ||P G P||)``: on one of the benchmark's random 10 x 10
    systems (``||P||_F = 5.2e3``) it reports 1.5e-9 for a ``P`` whose residual
    in exact rational arithmetic is 2.4e-11 (this function: the same 2.4e-11).

    Examples
    --------
    >>> import torch
    >>> from itersolve.control import care, care_residual
    >>> A = torch.tensor([[0.0, 1.0], [0.0, 0.0]], dtype=torch.float64)
    >>> B = torch.tensor([[0.0], [1.0]], dtype=torch.float64)
    >>> Q, R = torch.eye(2, dtype=torch.float64), torch.eye(1, dtype=torch.float64)
    >>> bool(care_residual(A, B, Q, R, care(A, B, Q, R)) < 1e-12)
    True
    """
    res = _riccati_residual(A, B, R, Q, P)[0]
    return torch.linalg.matrix_norm(res) / torch.linalg.matrix_norm(Q).clamp(min=1.0)


def care(
    A: Any,
    B: Any,
    Q: Any,
    R: Any,
    *,
    tol: float = DefaultTolerance(1e-13),
    max_steps: int | None = None,
    refine: int = 2,
    full_output: bool = False,
) -> Any:
    """Stabilising solution of ``A^T P + P A - P B R^{-1} B^T P + Q = 0``, batched.

    Equivalent to ``scipy.linalg.solve_continuous_are(A, B, Q, R)`` and
    ``control.care``; pure torch (no SLICOT/Fortran), batched over leading
    dimensions and float64 by default. Method: the scaled matrix sign function
    of the Hamiltonian ``H = [[A, -G], [-Q, -A^T]]``, ``G = B R^{-1} B^T``
    (:class:`MatrixSign` through the driver: Roberts 1971; Byers 1987,
    determinant scaling), iterated until ``||Z_{k+1} - Z_k||_1 <= tol
    ||Z_k||_1`` for every system (at most ``max_steps`` steps, 100 by
    default); ``P`` from the least-squares solve of ``[W12; W22 + I] P =
    -[W11 + I; W21]``, then at most ``refine`` Newton steps in correction
    form: ``(A - G P)^T D + D (A - G P) = -R(P)``, ``P <- P + D``, with the
    residual ``R(P)`` evaluated in compensated arithmetic (see
    :func:`care_residual`), each one Lyapunov solve through the
    eigendecomposition of ``A - G P`` (which also certifies, by Bauer–Fike,
    that the refined ``P`` is stabilising; ill-conditioned eigenvectors fall
    back to the sign iteration). They stop early once
    every residual is below ``n u (||A^T P|| + ||P A|| + ||K^T R K|| + ||Q||)``,
    the rounding floor of ``P`` in its dtype (one step on the benchmark's
    1000 random 10 x 10 systems: worst residual 2.4e-11, where the sign
    iteration alone leaves 6.8e-9).

    Returns
    -------
    array or Solution
        ``P`` in the array kind of ``A`` (numpy in, numpy out; torch in, torch
        out on the same device); with ``full_output=True`` the
        :class:`~itersolve.Solution`
        (``x`` = ``P``, ``status`` of the sign iteration, ``num_steps`` its
        steps, ``stats["lyapunov_solves"]`` and ``stats["care_residual"]``,
        the largest :func:`care_residual` of the batch), which never raises for
        a numerical outcome (its ``x`` is then the unconverged estimate).

    Raises
    ------
    ValueError
        Bad shapes or empty matrices; ``refine`` not a non-negative int; ``Q``
        or ``R`` not symmetric (SciPy's test: ``||M - M^T||_1`` above 100 ulp of
        ``||M||_1``); ``R`` not positive definite; or no stabilising solution:
        the computed ``P`` leaves ``A - B K`` unstable (``(A, B)`` not
        stabilisable), as scipy's ``LinAlgError``.
    ConvergenceError
        (``full_output=False``) the sign iteration did not converge; the
        :class:`~itersolve.Solution` is in ``.solution`` and its status says
        why: ``MAX_STEPS``, ``BREAKDOWN`` (a singular iterate: the Hamiltonian
        has eigenvalues on the imaginary axis, so ``(A, B)`` is not
        stabilisable or ``(Q, A)`` not detectable), ``NONFINITE``,
        ``NONFINITE_INPUT``.

    Examples
    --------
    >>> A = torch.tensor([[0.0, 1.0], [0.0, 0.0]], dtype=torch.float64)
    >>> B = torch.tensor([[0.0], [1.0]], dtype=torch.float64)
    >>> I2, I1 = torch.eye(2, dtype=torch.float64), torch.eye(1, dtype=torch.float64)
    >>> P = care(A, B, I2, I1)
    >>> [round(v, 6) for v in P.flatten().tolist()]
    [1.732051, 1.0, 1.0, 1.732051]
    >>> care(A, B, I2, I1, max_steps=1, full_output=True).status.name
    'MAX_STEPS'
    """
    if isinstance(refine, bool) or not isinstance(refine, int) or refine < 0:
        raise ValueError(f"refine must be a non-negative int, got {refine!r}")
    problem, info = lqr_problem(A, B, Q, R)
    A_t, B_t, Q_t, R_t = problem.A, problem.B, problem.Q, problem.R
    n, dtype = A_t.shape[-1], A_t.dtype
    G = B_t @ torch.linalg.solve(R_t, B_t.mT)
    Z = torch.cat([torch.cat([A_t, -G], -1), torch.cat([-Q_t, -A_t.mT], -1)], -2)
    sign = MatrixSign(tol=tol, max_steps=max_steps)
    state, solution = iterate(sign, SignProblem(), Z, check_finite=(Z,))
    solution.stats["lyapunov_solves"] = 0
    if state is None:
        solution.x = torch.full_like(Q_t, torch.nan)
        return _raise_or_return(solution, full_output, info)
    W = state.x
    eye = torch.eye(n, dtype=dtype, device=W.device)
    W11, W12 = W[..., :n, :n], W[..., :n, n:]
    W21, W22 = W[..., n:, :n], W[..., n:, n:]
    lhs = torch.cat([W12, W22 + eye], -2)
    rhs = -torch.cat([W11 + eye, W21], -2)
    P = torch.linalg.lstsq(lhs, rhs).solution
    P = 0.5 * (P + P.mT)
    solution.x = P
    if not solution.success:
        return _raise_or_return(solution, full_output, info)
    residual, K, scale = _riccati_residual(A_t, B_t, R_t, Q_t, P)
    floor = n * torch.finfo(dtype).eps * scale
    certified = False
    for _ in range(refine):
        if bool((torch.linalg.matrix_norm(residual) <= floor).all()):
            break
        # Newton in correction form: solve for the small update from the
        # compensated residual. Solving for P itself from Q + K^T R K (Kleinman's
        # form) rounds at u ||K^T R K||: two such steps left 1.0e-10 on the
        # benchmark's worst system, one step in this form 2.4e-11.
        step = _correction(A_t - B_t @ K, residual, tol)
        solution.stats["lyapunov_solves"] += 1
        if not step.success:
            solution.status = step.status
            return _raise_or_return(solution, full_output, info)
        D = 0.5 * (step.x + step.x.mT)
        P = P + D
        certified = _stable_after(step, B_t @ torch.linalg.solve(R_t, B_t.mT @ D))
        residual, K, scale = _riccati_residual(A_t, B_t, R_t, Q_t, P)
        floor = n * torch.finfo(dtype).eps * scale
    solution.x = P
    relative = torch.linalg.matrix_norm(residual) / torch.linalg.matrix_norm(Q_t).clamp(
        min=1.0
    )
    solution.stats["care_residual"] = float(relative.max())
    if not bool(torch.isfinite(P).all()):
        solution.status = Status.NONFINITE
        return _raise_or_return(solution, full_output, info)
    if not certified:
        _check_stabilising(A_t, B_t, R_t, P)
    return _raise_or_return(solution, full_output, info)


def _stable_after(step: Solution, change: torch.Tensor) -> bool:
    """Whether ``closed - change`` is Hurwitz for every system, from the
    eigendecomposition of ``closed`` that :func:`_correction` made (Bauer–Fike:
    each eigenvalue moves by at most ``cond(V) (||change||_2 + ||E||)``, ``E``
    the backward error of ``eig`` (taken as ``10 n u ||closed||_F``), with
    ``cond(V) <= ||V||_F ||V^-1||_F``); False when that bound cannot tell."""
    norm = torch.linalg.matrix_norm
    # the computed V, lam are exact for closed + E with ||E|| about the
    # backward error of eig (eig_backward), so that moves them too
    spread = step.stats["eig_condition"] * (norm(change) + step.stats["eig_backward"])
    return bool((step.stats["eig_abscissa"] + spread < 0).all())


CORRECTION_ACCURACY = 1e-8
"""Largest relative residual of the eigenvector solve of a Newton correction;
a system above it is solved again by the sign iteration. The correction only
has to be accurate relative to itself: an error ``delta ||D||`` leaves a
Riccati residual of about ``delta`` times the one it corrects."""


def _correction(closed: torch.Tensor, residual: torch.Tensor, tol: float) -> Solution:
    """``D`` with ``closed^T D + D closed = -residual`` for every system.

    ``closed = A - B K`` is diagonalised once, ``closed = V diag(lam) V^-1``
    (``torch.linalg.eig``): its eigenvalues show whether ``P`` is stabilising
    (raises otherwise, saying why), and ``D = V^-T Y V^-1`` with
    ``Y_ij = -(V^T residual V)_ij / (lam_i + lam_j)`` is a direct solve, where
    the sign iteration takes some ten inversions. Where ``V`` is too
    ill-conditioned for that (the solve's own residual above
    :data:`CORRECTION_ACCURACY`) those systems go through the sign iteration.
    """
    lam, V = torch.linalg.eig(closed)
    worst = float(lam.real.max())
    if worst >= 0:
        raise ValueError(
            "care: no stabilising solution (A - B K has an eigenvalue with real "
            f"part {worst:.3g} >= 0): (A, B) is not stabilisable"
        )
    C = residual.to(V.dtype)
    Y = -(V.mT @ C @ V) / (lam[..., :, None] + lam[..., None, :])
    Vinv = torch.linalg.inv(V)
    D = (Vinv.mT @ Y @ Vinv).real
    norm = torch.linalg.matrix_norm
    check = closed.mT @ D + D @ closed + residual
    bad = norm(check) > CORRECTION_ACCURACY * norm(residual)
    if bool(bad.any()):
        again = _lyapunov_solution(closed[bad], residual[bad], "sign", tol, None)
        if not again.success:
            return again
        D[bad] = again.x
    n = closed.shape[-1]
    stats = {
        "eig_abscissa": lam.real.amax(-1),
        "eig_condition": norm(V) * norm(Vinv),
        "eig_backward": 10 * n * torch.finfo(closed.dtype).eps * norm(closed),
    }
    return Solution(D, Status.SUCCESS, 0, stats)


def _check_stabilising(
    A: torch.Tensor, B: torch.Tensor, R: torch.Tensor, P: torch.Tensor
) -> None:
    closed = A - B @ torch.linalg.solve(R, B.mT @ P)
    worst = float(torch.linalg.eigvals(closed).real.max())
    if worst >= 0:
        raise ValueError(
            "care: no stabilising solution (A - B K has an eigenvalue with real "
            f"part {worst:.3g} >= 0): (A, B) is not stabilisable"
        )
