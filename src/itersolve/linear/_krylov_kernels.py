"""Compiled CPU kernels for MINRES and GMRES (numba; optional).

A Krylov step on one right-hand side does a few microseconds of arithmetic at
small sizes, so a step here is one or two compiled calls:

* MINRES: ``minres_step`` takes ``A y`` (``minres_step_csr`` computes it
  first with the CG kernels' SpMV), forms ``v = y / beta``, the new Lanczos
  vector and ``alpha``, the three-term update with ``y . M y``, the QR rotation
  on scalars, and ``w``, ``x`` with ``sum(x)`` as the finiteness certificate.
* GMRES: ``arnoldi_csr`` writes ``A M v_i`` into the next basis row;
  ``arnoldi`` orthogonalizes it by modified Gram-Schmidt (scipy's order), scales
  it and applies the Givens rotations to the new Hessenberg column;
  ``combine_into`` adds the cycle's update ``sum_j y_j v_j`` to ``x``.

``lanczos_rotation`` and ``givens_column`` are the scalar recurrences, written
once and used by the single-vector kernels and by the block paths (column by
column). The scalar state of MINRES lives in one float64 array ``S`` of shape
``(SLOTS, k)`` indexed by the slot constants below.
"""

from __future__ import annotations

import numpy as np

from itersolve._core.jit import HAVE_NUMBA as HAVE_NUMBA
from itersolve._core.jit import lazy_njit

# The row product of the CG kernels (one SpMV implementation for every Krylov
# method).
from itersolve.linear._cg_kernels import spmv

# Rows of the MINRES scalar array S (one column per right-hand side).
BETA, OLDB, ANORM, DBAR, EPSLN, PHIBAR, CS, SN, SCALE, RESIDUAL = range(10)
OLDEPS, DELTA, INV_GAMMA, PHI = range(10, 14)
SLOTS = 14
# Return codes of the scalar recurrences.
OK, NOT_POSITIVE_DEFINITE, BREAKDOWN = 0, 1, 2


def minres_scalars(k: int) -> np.ndarray:
    """A zeroed scalar state for ``k`` MINRES recurrences."""
    return np.zeros((SLOTS, k))


# Without numba the scalar recurrences still run (as Python, for the block
# paths); the vector kernels are then unused.
jit = lazy_njit(cache=True, nogil=True)
jit_fast = lazy_njit(cache=True, nogil=True, fastmath=True)


@jit
def lanczos_rotation(S, c, alfa, beta_sq, eps):  # pragma: no cover - compiled
    """One Lanczos/QR update of column ``c`` of ``S`` (Paige-Saunders).

    Takes ``alpha = v . A v`` and ``beta^2 = y . M y`` of the step; leaves in
    ``S`` the coefficients of ``w = (v - oldeps w1 - delta w2) / gamma`` and
    of ``x += phi w``. Returns OK, NOT_POSITIVE_DEFINITE or BREAKDOWN.
    """
    if beta_sq < 0.0:
        return NOT_POSITIVE_DEFINITE
    S[OLDB, c] = S[BETA, c]
    beta = np.sqrt(beta_sq)
    anorm = max(S[ANORM, c], max(abs(alfa), beta))
    S[ANORM, c] = anorm
    # Lanczos is exhausted when beta vanishes relative to ||A||: an exact
    # invariant subspace was found.
    if beta <= 10.0 * eps * anorm:
        beta = 0.0
    S[BETA, c] = beta
    cs, sn, dbar = S[CS, c], S[SN, c], S[DBAR, c]
    S[OLDEPS, c] = S[EPSLN, c]
    S[DELTA, c] = cs * dbar + sn * alfa
    gbar = sn * dbar - cs * alfa
    S[EPSLN, c] = sn * beta
    S[DBAR, c] = -cs * beta
    gamma = np.hypot(gbar, beta)
    if gamma == 0.0:
        return BREAKDOWN
    cs = gbar / gamma
    sn = beta / gamma
    S[CS, c], S[SN, c] = cs, sn
    S[INV_GAMMA, c] = 1.0 / gamma
    S[PHI, c] = cs * S[PHIBAR, c]
    S[PHIBAR, c] = sn * S[PHIBAR, c]
    S[RESIDUAL, c] = S[PHIBAR, c] * S[SCALE, c]
    return OK


@jit
def lanczos_rotation_block(S, active, alfa, beta_sq, eps):  # pragma: no cover
    """:func:`lanczos_rotation` on every active column; inactive columns get
    ``beta = 0`` and coefficients that leave ``x`` and ``w`` finite and still."""
    k = S.shape[1]
    for c in range(k):
        if active[c] and beta_sq[c] < 0.0:
            return NOT_POSITIVE_DEFINITE
    for c in range(k):
        if active[c]:
            code = lanczos_rotation(S, c, alfa[c], beta_sq[c], eps)
            if code != OK:
                return code
        else:
            S[OLDB, c] = S[BETA, c]
            S[BETA, c] = 0.0
            S[OLDEPS, c] = 0.0
            S[DELTA, c] = 0.0
            S[INV_GAMMA, c] = 1.0
            S[PHI, c] = 0.0
    return OK


@jit
def minres_step(Ay, y, r1, r2, v, dinv, w, w2, x, S, eps):  # pragma: no cover
    """One MINRES step of one right-hand side after the product ``Ay = A y``.

    ``y = M r2`` is the unscaled Lanczos vector; with ``v = y / beta``:
    ``r1 <- A v - (beta / oldb) r1 - (alpha / beta) r2`` with
    ``alpha = v . (A v - (beta / oldb) r1)`` (the new Lanczos vector),
    ``y <- D^{-1} r1`` when ``dinv`` has length n (Jacobi; otherwise the caller
    aliases ``y`` to ``r2``), ``beta^2 = r1 . M r1``; the QR rotation; then
    ``w2 <- (v - oldeps w2 - delta w) / gamma`` (the new ``w``) and
    ``x += phi w_new``. ``Ay`` may be ``v``'s buffer. Returns
    ``(code, sum(x))``.
    """
    n = y.shape[0]
    beta, oldb = S[BETA, 0], S[OLDB, 0]
    inv_beta = 1.0 / beta
    ratio = beta / oldb if oldb > 0.0 else 0.0
    alfa = 0.0
    for i in range(n):
        ti = Ay[i] * inv_beta - ratio * r1[i]
        vi = y[i] * inv_beta
        v[i] = vi
        r1[i] = ti
        alfa += vi * ti
    precondition = dinv.shape[0] == n
    coef = alfa * inv_beta
    beta_sq = 0.0
    for i in range(n):
        yi = r1[i] - coef * r2[i]
        r1[i] = yi
        if precondition:
            zi = dinv[i] * yi
            y[i] = zi
            beta_sq += yi * zi
        else:
            beta_sq += yi * yi
    code = lanczos_rotation(S, 0, alfa, beta_sq, eps)
    if code != OK:
        return code, 0.0
    oldeps, delta = S[OLDEPS, 0], S[DELTA, 0]
    inv_gamma, phi = S[INV_GAMMA, 0], S[PHI, 0]
    x_sum = 0.0
    for i in range(n):
        wi = (v[i] - oldeps * w2[i] - delta * w[i]) * inv_gamma
        w2[i] = wi
        xi = x[i] + phi * wi
        x[i] = xi
        x_sum += xi
    return code, x_sum


@jit
def givens_column(H, cs, sn, g, i, c):  # pragma: no cover - compiled
    """Rotate Hessenberg column ``i`` of right-hand side ``c`` into R.

    Applies the earlier rotations, forms the new one from ``H[i, i]`` and
    ``H[i + 1, i]``, and rotates ``g``; returns ``|g[i + 1]|``, the residual
    norm of the minimizer over the current Krylov space.
    """
    for j in range(i):
        top = cs[j, c] * H[j, i, c] + sn[j, c] * H[j + 1, i, c]
        H[j + 1, i, c] = -sn[j, c] * H[j, i, c] + cs[j, c] * H[j + 1, i, c]
        H[j, i, c] = top
    a, b = H[i, i, c], H[i + 1, i, c]
    denom = np.hypot(a, b)
    if denom > 0.0:
        cs[i, c] = a / denom
        sn[i, c] = b / denom
    else:
        cs[i, c] = 1.0
        sn[i, c] = 0.0
    H[i, i, c] = denom
    H[i + 1, i, c] = 0.0
    g[i + 1, c] = -sn[i, c] * g[i, c]
    g[i, c] = cs[i, c] * g[i, c]
    return abs(g[i + 1, c])


@jit
def givens_block(H, cs, sn, g, i, estimate):  # pragma: no cover - compiled
    for c in range(H.shape[2]):
        estimate[c] = givens_column(H, cs, sn, g, i, c)


@jit_fast
def arnoldi(V, i, H, cs, sn, g):  # pragma: no cover - compiled
    """Orthogonalize ``V[i + 1]`` against ``V[:i + 1]`` (modified Gram-Schmidt,
    scipy's order), store the Hessenberg column, normalize, rotate.

    ``H``, ``cs``, ``sn``, ``g`` are the ``(..., 1)`` arrays of one
    right-hand side. Returns the residual estimate ``|g[i + 1]|``.
    """
    w = V[i + 1]
    n = w.shape[0]
    for j in range(i + 1):
        u = V[j]
        h = 0.0
        for r in range(n):
            h += u[r] * w[r]
        for r in range(n):
            w[r] -= h * u[r]
        H[j, i, 0] = h
    hn = 0.0
    for r in range(n):
        hn += w[r] * w[r]
    hn = np.sqrt(hn)
    H[i + 1, i, 0] = hn
    if hn > 0.0:
        scale = 1.0 / hn
        for r in range(n):
            w[r] *= scale
    return givens_column(H, cs, sn, g, i, 0)


@jit
def combine_into(V, y, x):  # pragma: no cover - compiled
    """``x += sum_j y[j] V[j]`` over the first ``len(y)`` basis vectors."""
    for j in range(y.shape[0]):
        c = y[j]
        u = V[j]
        for r in range(x.shape[0]):
            x[r] += c * u[r]


@jit
def minres_step_csr(
    indptr, indices, data, y, r1, r2, v, dinv, w, w2, x, S, eps
):  # pragma: no cover - compiled
    """:func:`minres_step` with ``A y`` computed into ``v`` first."""
    spmv(indptr, indices, data, y, v)
    return minres_step(v, y, r1, r2, v, dinv, w, w2, x, S, eps)


@jit
def arnoldi_csr(
    indptr, indices, data, dinv, scratch, V, i, H, cs, sn, g
):  # pragma: no cover - compiled
    """``V[i + 1] = A M V[i]`` (``M`` None or Jacobi, ``D^{-1}`` in ``dinv``),
    then :func:`arnoldi`."""
    src = V[i]
    if dinv.shape[0] == src.shape[0]:
        for r in range(src.shape[0]):
            scratch[r] = dinv[r] * src[r]
        src = scratch
    spmv(indptr, indices, data, src, V[i + 1])
    return arnoldi(V, i, H, cs, sn, g)
