"""Newton–Schulz (iterative Newton) for the matrix inverse and pseudo-inverse."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from itersolve._core.iterate import Callback, IterativeMethod, finish, iterate
from itersolve._core.solution import Solution, Status
from itersolve._core.tensors import as_tensor, result_dtype, to_output
from itersolve._core.trace import IterInfo

_STARTS = ("frobenius", "spectral", "identity")
_TARGETS = ("inverse", "pseudoinverse")


@dataclass(frozen=True)
class InverseProblem:
    """Approximate ``S^{-1}`` (or ``S^+``) for ``S`` of shape ``(..., m, d)``."""

    S: torch.Tensor

    def __post_init__(self) -> None:
        if self.S.ndim < 2:
            raise ValueError(
                f"S must have shape (..., m, d) with at least 2 dimensions, got "
                f"{tuple(self.S.shape)}"
            )
        if min(self.S.shape[-2:]) < 1:
            raise ValueError(f"S must not be empty, got shape {tuple(self.S.shape)}")

    @property
    def batch_shape(self) -> torch.Size:
        return self.S.shape[:-2]

    def identity(self) -> torch.Tensor:
        m = self.S.shape[-2]
        return torch.eye(m, dtype=self.S.dtype, device=self.S.device)


@dataclass
class NewtonSchulzState:
    x: torch.Tensor
    """The current approximate inverse ``M_k``, shape ``(..., d, m)``."""
    error: torch.Tensor
    """``E_k = I - S M_k``, shape ``(..., m, m)``."""
    residual: torch.Tensor
    """The stopping quantity per matrix, shape ``batch_shape``."""
    identity_residual: torch.Tensor
    """``||I - S M_k||_F`` per matrix."""
    previous: torch.Tensor
    """The stopping quantity one step earlier (``inf`` before the first step)."""
    threshold: float
    eye: torch.Tensor
    all_active: bool = True
    steps: int = 0
    matmuls: int = 0
    status: Status | None = None


@dataclass(frozen=True, kw_only=True)
class NewtonSchulz(IterativeMethod):
    """Newton–Schulz iteration for the inverse or pseudo-inverse of a matrix.

    Iterates ``M_{k+1} = M_k (2 I - S M_k)``, so that the error
    ``E_k = I - S M_k`` squares every step (``E_{k+1} = E_k^2``): quadratic
    convergence once ``||E_k|| < 1``, after about ``2 log2 cond(S)`` steps from the
    safe start. Two matrix products per step; batched over leading dimensions of
    ``S`` (each matrix stops on its own and is then frozen). Run it with
    :func:`newton_schulz_inverse` or :func:`newton_schulz_lstsq`.

    Equivalent to ``torch.linalg.inv`` / ``torch.linalg.pinv`` (direct); compare
    with them for accuracy, and with this iteration when only products are cheap
    (GPU, batched, warm-started as in Shampoo/Muon-style preconditioners).

    Stopping rule, per matrix::

        target="inverse":        ||I - S M_k||_F <= tol
        target="pseudoinverse":  ||S - S M_k S||_F <= tol * ||S||_F

    The second quantity (the first Penrose condition) tends to zero also when
    ``S`` is rank deficient or rectangular, where ``E_k`` tends to the projector on
    the null space of ``S^T`` instead of zero; it costs a third product per step.
    A safe start makes the stopping quantity decrease at every step in exact
    arithmetic; if it does not, the run ends with ``STAGNATION`` (rounding floor:
    ``cond(S)`` too large for the dtype, or ``S`` singular with
    ``target="inverse"``) or ``DIVERGED`` (an unsafe ``start``).

    Parameters
    ----------
    tol
        Tolerance of the stopping rule; ``None`` takes ``sqrt(m * eps)`` of the
        dtype (about ``7e-8`` for m = 20 in float64; the step that crosses it
        usually lands near ``eps`` because convergence is quadratic).
    start
        ``M_0``: ``"frobenius"`` (default, always safe) ``S^T / ||S S^T||_F``, as
        the official code of Fu et al.; ``"spectral"``: ``S^T / ||S||_2^2`` (one
        SVD; saves at most ``log2(m) / 2`` steps; the paper's
        ``2 / ||S S^T||_2`` puts the top singular direction at ``E = -1`` where
        it never converges, so half of it is used); ``"identity"``:
        ``I / ||S||_F``, safe for symmetric positive definite ``S`` (in general
        it needs the eigenvalues ``z`` of ``S / ||S||_F`` inside the disc
        ``|1 - z| < 1``) and needs about half the steps there, since its error
        starts at ``1 - lambda_min / ||S||_F`` instead of
        ``1 - lambda_min^2 / ||S^2||_F``; a positive float ``alpha``:
        ``alpha S^T`` (safe when ``alpha < 2 / ||S||_2^2``).
        Starts proportional to ``S^T`` lie in the range of ``S^T``, so the iterates
        converge to the pseudo-inverse ``S^+``.
    target
        ``"inverse"`` (square nonsingular ``S``) or ``"pseudoinverse"``
        (any ``S``, rank deficient or rectangular).

    References
    ----------
    Schulz, "Iterative Berechnung der reziproken Matrix", ZAMM 13 (1933);
    Ben-Israel & Cohen, SIAM J. Numer. Anal. 3 (1966) (pseudo-inverse);
    Fu, Chen, Jia & Sharan, "Transformers Learn Higher-Order Optimization Methods
    for In-Context Learning", arXiv:2310.17086.

    Examples
    --------
    >>> import torch, itersolve
    >>> S = torch.tensor([[4.0, 1.0], [1.0, 3.0]], dtype=torch.float64)
    >>> method = itersolve.linear.NewtonSchulz(tol=1e-12)
    >>> sol = itersolve.linear.newton_schulz_inverse(S, method)
    >>> sol.success, torch.allclose(sol.x, torch.linalg.inv(S))
    (True, True)
    """

    tol: float | None = None
    start: str | float = "frobenius"
    target: str = "inverse"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.tol is not None and not self.tol > 0:
            raise ValueError(f"tol must be positive or None, got {self.tol!r}")
        if isinstance(self.start, str):
            if self.start not in _STARTS:
                raise ValueError(
                    f"start must be one of {_STARTS} or a positive float, "
                    f"got {self.start!r}"
                )
        elif isinstance(self.start, bool) or not isinstance(self.start, (int, float)):
            raise TypeError(
                f"start must be a string or a positive float, got {self.start!r}"
            )
        elif not self.start > 0:
            raise ValueError(f"start (alpha) must be positive, got {self.start!r}")
        if self.target not in _TARGETS:
            raise ValueError(f"target must be one of {_TARGETS}, got {self.target!r}")
        if self.target == "pseudoinverse" and self.start == "identity":
            raise ValueError(
                "start='identity' is not in the range of S^T, so it cannot converge "
                "to the pseudo-inverse; use start='frobenius' with "
                "target='pseudoinverse'"
            )

    def default_max_steps(self, problem: InverseProblem) -> int:
        # 2 log2 cond + log2 log(1/eps) < 120 for any cond the dtype can resolve.
        return 120

    def initial_inverse(self, S: torch.Tensor) -> torch.Tensor:
        """The starting point ``M_0`` chosen by ``start``."""
        m, d = S.shape[-2:]
        St = S.mT
        if self.start == "identity":
            if m != d:
                raise ValueError(
                    f"start='identity' needs a square S, got shape {tuple(S.shape)}"
                )
            scale = torch.linalg.matrix_norm(S)
            eye = torch.eye(d, dtype=S.dtype, device=S.device)
            return eye / _nonzero(scale)[..., None, None]
        if self.start == "frobenius":
            scale = torch.linalg.matrix_norm(S @ St)
        elif self.start == "spectral":
            scale = torch.linalg.matrix_norm(S, ord=2) ** 2
        else:
            return float(self.start) * St
        return St / _nonzero(scale)[..., None, None]

    def init(self, problem: InverseProblem, x0: torch.Tensor) -> NewtonSchulzState:
        S = problem.S
        m, d = S.shape[-2:]
        if self.target == "inverse" and m != d:
            raise ValueError(
                f"target='inverse' needs a square S, got shape {tuple(S.shape)}; "
                "use target='pseudoinverse' for rectangular matrices"
            )
        if tuple(x0.shape) != (*S.shape[:-2], d, m):
            raise ValueError(
                f"the starting inverse must have shape {(*S.shape[:-2], d, m)}, got "
                f"{tuple(x0.shape)}"
            )
        eps = torch.finfo(S.dtype).eps
        threshold = self.tol if self.tol is not None else math.sqrt(m * eps)
        M = x0.clone()
        eye = problem.identity()
        E = eye - S @ M
        fro = torch.linalg.matrix_norm(E)
        residual = self._residual(S, E, fro)
        state = NewtonSchulzState(
            M, E, residual, fro, torch.full_like(fro, math.inf), threshold, eye
        )
        state.matmuls = 1 if self.target == "inverse" else 2
        return state

    def step(
        self, problem: InverseProblem, state: NewtonSchulzState
    ) -> NewtonSchulzState:
        M = state.x + state.x @ state.error
        E = state.eye - problem.S @ M
        fro = torch.linalg.matrix_norm(E)
        residual = self._residual(problem.S, E, fro)
        if state.all_active:
            state.previous = state.residual
        else:  # freeze the matrices of the batch that have converged
            active = state.residual > state.threshold
            M = torch.where(active[..., None, None], M, state.x)
            E = torch.where(active[..., None, None], E, state.error)
            fro = torch.where(active, fro, state.identity_residual)
            residual = torch.where(active, residual, state.residual)
            state.previous = torch.where(active, state.residual, state.previous)
        state.x, state.error, state.residual, state.identity_residual = (
            M,
            E,
            residual,
            fro,
        )
        state.steps += 1
        state.matmuls += 2 if self.target == "inverse" else 3
        return state

    def _residual(
        self, S: torch.Tensor, E: torch.Tensor, fro: torch.Tensor
    ) -> torch.Tensor:
        if self.target == "inverse":
            return fro
        scale = _nonzero(torch.linalg.matrix_norm(S))
        return torch.linalg.matrix_norm(E @ S) / scale

    def terminate(
        self, problem: InverseProblem, state: NewtonSchulzState
    ) -> tuple[bool, Status]:
        if state.status is not None:
            return True, state.status
        active = state.residual > state.threshold
        # With a safe start the stopping quantity falls at every step in exact
        # arithmetic; a rise or a plateau is rounding (or an unsafe start).
        stuck = active & (state.residual >= state.previous)
        grew = stuck & (state.residual > 1.001 * state.previous)
        grew &= state.identity_residual > 1
        nonfinite = ~torch.isfinite(state.residual)
        flags = torch.stack(
            [active.any(), active.all(), nonfinite.any(), stuck.any(), grew.any()]
        ).tolist()  # one device sync per step
        any_active, state.all_active, any_nonfinite, any_stuck, any_grew = flags
        if not any_active:
            return True, Status.SUCCESS
        if state.steps > 0 and any_nonfinite:
            return True, Status.DIVERGED
        if state.steps > 0 and any_stuck:
            return True, Status.DIVERGED if any_grew else Status.STAGNATION
        return False, Status.SUCCESS

    def metrics(
        self, problem: InverseProblem, state: NewtonSchulzState
    ) -> dict[str, float]:
        return {
            "residual": float(state.residual.max()),
            "identity_residual": float(state.identity_residual.max()),
        }

    def stats(
        self, problem: InverseProblem, state: NewtonSchulzState
    ) -> dict[str, float]:
        return {"matmuls": state.matmuls}


def _nonzero(scale: torch.Tensor) -> torch.Tensor:
    # A zero matrix has zero scale; start from M_0 = 0 rather than dividing by zero.
    return torch.where(scale > 0, scale, torch.ones_like(scale))


def _run(
    S: torch.Tensor,
    method: NewtonSchulz | None,
    x0: torch.Tensor | None,
    callback: Callback | None,
    record: bool | int,
    check_finite: tuple[torch.Tensor, ...] = (),
) -> tuple[NewtonSchulzState | None, Solution]:
    method = NewtonSchulz() if method is None else method
    if not isinstance(method, NewtonSchulz):
        raise TypeError(
            f"method must be a NewtonSchulz(...) configuration, got "
            f"{type(method).__name__}"
        )
    problem = InverseProblem(S)
    start = method.initial_inverse(S) if x0 is None else x0
    state, solution = iterate(
        method,
        problem,
        start,
        callback=callback,
        record=record,
        check_finite=(S, *check_finite),
    )
    return state, solution


def newton_schulz_inverse(
    S: Any,
    method: NewtonSchulz | None = None,
    *,
    x0: Any = None,
    callback: Callback | None = None,
    record: bool | int = False,
    throw: bool = False,
) -> Solution:
    """Approximate ``S^{-1}`` (or ``S^+``) by the Newton–Schulz iteration.

    Parameters
    ----------
    S
        Matrix or batch of matrices, shape ``(..., m, d)`` (torch or numpy).
    method
        A :class:`NewtonSchulz` configuration; ``None`` uses ``NewtonSchulz()``.
    x0
        Warm start ``M_0`` of shape ``(..., d, m)``, e.g. the inverse of a nearby
        matrix; it must satisfy ``||I - S M_0||_2 < 1``. ``None`` uses
        ``method.start``.
    callback, record, throw
        As in :func:`~itersolve.linear_solve`; the callback's ``x`` is ``M_k``.

    Returns
    -------
    Solution
        ``x`` is ``M_k`` in the array kind and dtype of ``S``;
        ``stats["matmuls"]`` counts matrix products per matrix of the batch;
        ``extras["residual"]`` holds the final stopping quantity per matrix.

    Examples
    --------
    >>> import numpy as np, itersolve
    >>> S = np.array([[2.0, 0.0], [0.0, 0.0]])  # singular: pseudo-inverse
    >>> method = itersolve.linear.NewtonSchulz(target="pseudoinverse", tol=1e-12)
    >>> sol = itersolve.linear.newton_schulz_inverse(S, method)
    >>> sol.success, np.allclose(sol.x, np.linalg.pinv(S))
    (True, True)
    """
    S_t, info = as_tensor(S, "S")
    x0_t = None
    if x0 is not None:
        x0_t = as_tensor(x0, "x0", device=S_t.device)[0]
        dtype = result_dtype(S_t.dtype, x0_t.dtype)
        S_t, x0_t = S_t.to(dtype), x0_t.to(dtype)
    state, solution = _run(S_t, method, x0_t, callback, record)
    if state is not None:
        solution.extras["residual"] = to_output(state.residual, info)
    solution.x = to_output(solution.x, info)
    return finish(solution, throw=throw)


def newton_schulz_lstsq(
    X: Any,
    y: Any,
    method: NewtonSchulz | None = None,
    *,
    callback: Callback | None = None,
    record: bool | int = False,
    throw: bool = False,
) -> Solution:
    """Least squares ``min_w ||X w - y||`` by Newton–Schulz on the Gram matrix.

    With ``n >= d`` it inverts ``S = X^T X`` (``d x d``) and returns
    ``w_k = M_k X^T y``; with ``n < d`` it inverts the ``n x n`` Gram ``X X^T``
    and returns ``w_k = X^T M_k y``, the minimum-norm solution. Starts
    proportional to ``S^T`` converge to the pseudo-inverse, so rank-deficient
    ``X`` gives the minimum-norm least-squares solution (use
    ``target="pseudoinverse"`` to stop there).

    Equivalent to ``numpy.linalg.lstsq`` / ``torch.linalg.lstsq`` (direct); compare
    with ``scipy.sparse.linalg.lsqr`` (Krylov) and gradient descent, which needs
    ``O(cond(S) log(1/eps))`` steps against ``O(log cond(S) + log log(1/eps))``.

    Stopping rule: that of ``method`` on the Gram matrix (see
    :class:`NewtonSchulz`); pass a callback to stop on ``w_k`` instead. The error
    of ``w`` is up to ``cond(S) ||I - S M_k||`` with ``cond(S) = cond(X)^2``: in
    float32 (``eps ~ 1e-7``) expect a poor ``w`` once ``cond(X)`` passes ~100
    even when the rule is met; use float64 there.

    Parameters
    ----------
    X
        Design matrix, shape ``(..., n, d)`` (leading batch dimensions allowed).
    y
        Targets, shape ``(..., n)`` or ``(..., n, k)``.
    method, callback, record, throw
        As in :func:`newton_schulz_inverse`; the callback's ``x`` is ``w_k`` (so a
        callback can record the whole path ``w_1, w_2, ...``).

    Returns
    -------
    Solution
        ``x`` is ``w`` of shape ``(..., d)`` or ``(..., d, k)``;
        ``extras["inverse"]`` is the final ``M_k``; ``stats["matmuls"]`` counts the
        products of the iteration (the Gram product excluded).

    References
    ----------
    Fu, Chen, Jia & Sharan, arXiv:2310.17086 (iterative Newton for in-context
    linear regression).

    Examples
    --------
    >>> import numpy as np, itersolve
    >>> rng = np.random.default_rng(0)
    >>> X, y = rng.standard_normal((40, 20)), rng.standard_normal(40)
    >>> method = itersolve.linear.NewtonSchulz(tol=1e-12)
    >>> sol = itersolve.linear.newton_schulz_lstsq(X, y, method)
    >>> sol.success, np.allclose(sol.x, np.linalg.lstsq(X, y, rcond=None)[0])
    (True, True)
    """
    X_t, _ = as_tensor(X, "X")
    y_t, info = as_tensor(y, "y", device=X_t.device)
    dtype = result_dtype(X_t.dtype, y_t.dtype)
    X_t, y_t = X_t.to(dtype), y_t.to(dtype)
    if X_t.ndim < 2:
        raise ValueError(f"X must have shape (..., n, d), got {tuple(X_t.shape)}")
    n, d = X_t.shape[-2:]
    vector = y_t.ndim == X_t.ndim - 1
    if (
        y_t.ndim not in (X_t.ndim - 1, X_t.ndim)
        or y_t.shape[: X_t.ndim - 2] != X_t.shape[:-2]
        or y_t.shape[X_t.ndim - 2] != n
    ):
        raise ValueError(
            f"y must have shape {(*X_t.shape[:-2], n)} or {(*X_t.shape[:-2], n)} + "
            f"(k,) to match X of shape {tuple(X_t.shape)}, got {tuple(y_t.shape)}"
        )
    Y = y_t[..., None] if vector else y_t
    primal = n >= d
    S = X_t.mT @ X_t if primal else X_t @ X_t.mT
    rhs = X_t.mT @ Y if primal else Y

    def weights(M: torch.Tensor) -> torch.Tensor:
        w = M @ rhs if primal else X_t.mT @ (M @ rhs)
        return w[..., 0] if vector else w

    wrapped = None
    if callback is not None:
        user = callback

        def wrapped(it: IterInfo) -> bool | None:
            return user(IterInfo(it.step, weights(it.x), it.metrics, it.time, it.state))

    _, solution = _run(S, method, None, wrapped, record, (y_t,))
    solution.extras["inverse"] = to_output(solution.x, info)
    solution.x = to_output(weights(solution.x), info)
    return finish(solution, throw=throw)
