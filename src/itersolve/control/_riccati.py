"""Batched continuous-time Lyapunov and algebraic Riccati solvers in pure torch."""

from __future__ import annotations

from typing import Any

import torch

from itersolve._core.tensors import as_tensor


def _square(name: str, M: torch.Tensor, n: int | None = None) -> int:
    if M.ndim < 2 or M.shape[-1] != M.shape[-2]:
        raise ValueError(f"{name} must be square (..., n, n), got {tuple(M.shape)}")
    if n is not None and M.shape[-1] != n:
        raise ValueError(f"{name} must be {n}x{n}, got {tuple(M.shape[-2:])}")
    return int(M.shape[-1])


def _norm1(M: torch.Tensor) -> torch.Tensor:
    """Matrix 1-norm (max column sum), batched."""
    return M.abs().sum(-2).amax(-1)


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


def _lyapunov_sign(
    A: torch.Tensor, Q: torch.Tensor, tol: float = 1e-13, max_iter: int = 100
) -> torch.Tensor:
    # Roberts' sign-function iteration; valid for Hurwitz A.
    n = A.shape[-1]
    Ak, Qk = A, Q
    for _ in range(max_iter):
        inv = torch.linalg.inv(Ak)
        c = torch.exp(torch.linalg.slogdet(Ak).logabsdet / n)[..., None, None]
        A_new = 0.5 * (Ak / c + c * inv)
        Qk = 0.5 * (Qk / c + c * inv.mT @ Qk @ inv)
        change = _norm1(A_new - Ak) / _norm1(Ak)
        Ak = A_new
        if bool((change <= tol).all()):
            break
    return 0.5 * Qk


def lyapunov(A: Any, Q: Any, *, method: str = "auto") -> torch.Tensor:
    """Solve ``A^T X + X A + Q = 0`` for ``X``, batched over leading dimensions.

    Equivalent to ``scipy.linalg.solve_continuous_lyapunov(A.T, -Q)`` and to
    ``control.lyap(A.T, Q)``. ``method="kron"`` solves the ``n^2 x n^2``
    Kronecker system (any ``A`` with no pair ``lambda_i + lambda_j = 0``; chosen
    by ``"auto"`` for ``n <= 16``); ``"sign"`` uses Roberts' scaled
    matrix-sign-function iteration (``A`` Hurwitz; quadratic convergence, stops
    when ``||A_{k+1} - A_k||_1 <= 1e-13 ||A_k||_1``). Float64 by default; no
    Fortran.

    Examples
    --------
    >>> A = torch.tensor([[-1.0, 2.0], [0.0, -3.0]], dtype=torch.float64)
    >>> X = lyapunov(A, torch.eye(2, dtype=torch.float64))
    >>> bool(torch.allclose(A.T @ X + X @ A, -torch.eye(2, dtype=torch.float64)))
    True
    """
    A_t = as_tensor(A, "A")[0]
    Q_t = as_tensor(Q, "Q")[0]
    dtype = torch.promote_types(A_t.dtype, Q_t.dtype)
    A_t, Q_t = A_t.to(dtype), Q_t.to(dtype)
    n = _square("A", A_t)
    _square("Q", Q_t, n)
    A_t, Q_t = torch.broadcast_tensors(A_t, Q_t)
    if method == "auto":
        method = "kron" if n <= 16 else "sign"
    if method == "kron":
        return _lyapunov_kron(A_t, Q_t)
    if method == "sign":
        return _lyapunov_sign(A_t, Q_t)
    raise ValueError(f"method must be 'auto', 'kron' or 'sign', got {method!r}")


def care_residual(
    A: torch.Tensor, B: torch.Tensor, Q: torch.Tensor, R: torch.Tensor, P: torch.Tensor
) -> torch.Tensor:
    """``||A^T P + P A - P B R^{-1} B^T P + Q||_F / max(1, ||Q||_F)`` per system."""
    G = B @ torch.linalg.solve(R, B.mT)
    res = A.mT @ P + P @ A - P @ G @ P + Q
    return torch.linalg.matrix_norm(res) / torch.linalg.matrix_norm(Q).clamp(min=1.0)


def care(
    A: Any,
    B: Any,
    Q: Any,
    R: Any,
    *,
    tol: float = 1e-13,
    max_iter: int = 100,
    refine: int = 2,
) -> torch.Tensor:
    """Stabilising solution of ``A^T P + P A - P B R^{-1} B^T P + Q = 0``, batched.

    Equivalent to ``scipy.linalg.solve_continuous_are(A, B, Q, R)`` and
    ``control.care``; pure torch (no SLICOT/Fortran), batched over leading
    dimensions and float64 by default. Method: the scaled matrix sign function
    of the Hamiltonian ``H = [[A, -G], [-Q, -A^T]]``, ``G = B R^{-1} B^T``
    (Roberts 1971; Byers 1987, determinant scaling), iterated until
    ``||Z_{k+1} - Z_k||_1 <= tol ||Z_k||_1``; ``P`` from the least-squares
    solve of ``[W12; W22 + I] P = -[W11 + I; W21]``, then ``refine`` Newton
    (Kleinman) steps, each one Lyapunov solve, to reach a residual ~1e-13.

    Raises
    ------
    ValueError
        Bad shapes, or ``R`` not symmetric positive definite.
    torch.linalg.LinAlgError
        No stabilising solution (Hamiltonian eigenvalues on the imaginary axis:
        ``(A, B)`` not stabilisable or ``(Q, A)`` not detectable), as scipy does.

    Examples
    --------
    >>> A = torch.tensor([[0.0, 1.0], [0.0, 0.0]], dtype=torch.float64)
    >>> B = torch.tensor([[0.0], [1.0]], dtype=torch.float64)
    >>> I2, I1 = torch.eye(2, dtype=torch.float64), torch.eye(1, dtype=torch.float64)
    >>> P = care(A, B, I2, I1)
    >>> [round(v, 6) for v in P.flatten().tolist()]
    [1.732051, 1.0, 1.0, 1.732051]
    """
    A_t, B_t, Q_t, R_t = (
        as_tensor(M, name)[0] for M, name in ((A, "A"), (B, "B"), (Q, "Q"), (R, "R"))
    )
    dtype = torch.promote_types(
        torch.promote_types(A_t.dtype, B_t.dtype),
        torch.promote_types(Q_t.dtype, R_t.dtype),
    )
    A_t, B_t, Q_t, R_t = (M.to(dtype) for M in (A_t, B_t, Q_t, R_t))
    n = _square("A", A_t)
    _square("Q", Q_t, n)
    if B_t.ndim < 2 or B_t.shape[-2] != n:
        raise ValueError(f"B must be (..., {n}, m), got {tuple(B_t.shape)}")
    m = int(B_t.shape[-1])
    _square("R", R_t, m)
    if not torch.allclose(R_t, R_t.mT) or int(torch.linalg.cholesky_ex(R_t).info.max()):
        raise ValueError("R must be symmetric positive definite")
    if not torch.allclose(Q_t, Q_t.mT):
        raise ValueError("Q must be symmetric")
    batch = torch.broadcast_shapes(
        A_t.shape[:-2], B_t.shape[:-2], Q_t.shape[:-2], R_t.shape[:-2]
    )
    A_t = A_t.expand(*batch, n, n)
    B_t = B_t.expand(*batch, n, m)
    Q_t = Q_t.expand(*batch, n, n)
    R_t = R_t.expand(*batch, m, m)
    G = B_t @ torch.linalg.solve(R_t, B_t.mT)
    Z = torch.cat([torch.cat([A_t, -G], -1), torch.cat([-Q_t, -A_t.mT], -1)], -2)
    converged = False
    identity = torch.eye(2 * n, dtype=dtype, device=Z.device).expand_as(Z)
    for _ in range(max_iter):
        LU, pivots, info = torch.linalg.lu_factor_ex(Z)
        if int(info.max()) != 0:
            break
        inv = torch.linalg.lu_solve(LU, pivots, identity)
        logdet = LU.diagonal(dim1=-2, dim2=-1).abs().log().sum(-1)
        c = torch.exp(logdet / (2 * n))[..., None, None]
        Z_new = 0.5 * (Z / c + c * inv)
        if not bool(torch.isfinite(Z_new).all()):
            break
        change = _norm1(Z_new - Z) / _norm1(Z)
        Z = Z_new
        if bool((change <= tol).all()):
            converged = True
            break
    eye = torch.eye(n, dtype=dtype, device=Z.device)
    if not converged:
        raise torch.linalg.LinAlgError(
            "care: no stabilising solution found (the Hamiltonian has eigenvalues "
            "on or near the imaginary axis: check that (A, B) is stabilisable and "
            "(Q, A) detectable)"
        )
    W11, W12 = Z[..., :n, :n], Z[..., :n, n:]
    W21, W22 = Z[..., n:, :n], Z[..., n:, n:]
    lhs = torch.cat([W12, W22 + eye], -2)
    rhs = -torch.cat([W11 + eye, W21], -2)
    P = torch.linalg.lstsq(lhs, rhs).solution
    P = 0.5 * (P + P.mT)
    for _ in range(refine):
        K = torch.linalg.solve(R_t, B_t.mT @ P)
        Ak = A_t - B_t @ K
        P = lyapunov(Ak, Q_t + K.mT @ R_t @ K)
        P = 0.5 * (P + P.mT)
    if not bool(torch.isfinite(P).all()):
        raise torch.linalg.LinAlgError("care: the solution is not finite")
    closed = A_t - B_t @ torch.linalg.solve(R_t, B_t.mT @ P)
    worst = float(torch.linalg.eigvals(closed).real.max())
    if worst >= 0:
        raise torch.linalg.LinAlgError(
            "care: no stabilising solution (A - B K has an eigenvalue with real "
            f"part {worst:.3g} >= 0): (A, B) is not stabilisable"
        )
    return P
