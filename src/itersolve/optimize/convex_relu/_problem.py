"""The sampled convex program of a two-layer ReLU network (Pilanci & Ergen, 2020).

Data ``X`` (``n x d``, a ones column appended when ``bias=True``), targets
``y``, and ``P`` activation arrangements ``D_i = diag(1[X g_i >= 0])``. The
variables are ``x = (v, w)``, two stacks of ``P`` vectors in ``R^d`` (shape
``(2, P, d)``), and the program is

    min  1/2 ||sum_i D_i X (v_i - w_i) - y||^2 + beta sum_i (||v_i|| + ||w_i||)
    s.t. (2 D_i - I) X v_i >= 0,  (2 D_i - I) X w_i >= 0.

Its optimum is the least regularised loss of the two-layer ReLU network whose
hidden units fire with the sampled patterns (:func:`recover_relu_network`).
Without the constraints (``gated=True``) it is the gated-ReLU program with one
stack ``u`` (shape ``(1, P, d)``), which the paper solves by a first-order
method (its second algorithm).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from itersolve._core.tensors import ArrayInfo, as_tensor


def _with_bias(X: torch.Tensor, bias: bool) -> torch.Tensor:
    if not bias:
        return X
    return torch.cat(
        [X, torch.ones(X.shape[0], 1, dtype=X.dtype, device=X.device)], dim=1
    )


def sample_arrangements(
    X: Any, P: int, *, seed: int = 0, bias: bool = True, dedupe: bool = True
) -> np.ndarray:
    """Sample ``P`` activation patterns ``1[X g >= 0]`` with ``g ~ N(0, I)``.

    With ``bias=True`` a ones column is appended to ``X`` first (``g`` then
    includes the threshold). With ``dedupe`` repeated patterns and the all-zero
    pattern (a unit that never fires) are skipped and sampling continues, up to
    ``100 P`` draws; fewer than ``P`` columns come back only when the data admit
    fewer distinct patterns within that budget.

    Parameters
    ----------
    X
        Data, shape ``(n, d)``.
    P
        Number of patterns, ``>= 1``.
    seed
        Seed of the generator drawing ``g``.
    bias
        Append a ones column to ``X`` before sampling.
    dedupe
        Skip duplicate and all-zero patterns.

    Returns
    -------
    numpy.ndarray
        ``(n, P)`` array of 0.0/1.0: column ``i`` is the diagonal of ``D_i``.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.random.default_rng(0).standard_normal((20, 3))
    >>> D = sample_arrangements(X, 5, seed=0)
    >>> D.shape, len({tuple(c) for c in D.T})
    ((20, 5), 5)
    """
    if isinstance(P, bool) or not isinstance(P, int) or P < 1:
        raise ValueError(f"P (number of arrangements) must be an int >= 1, got {P!r}")
    Xt, _ = as_tensor(X, "X", dtype=torch.float64)
    if Xt.ndim != 2:
        raise ValueError(f"X must be 2-D (n, d), got shape {tuple(Xt.shape)}")
    Xb = _with_bias(Xt.cpu(), bias)
    generator = torch.Generator().manual_seed(int(seed))
    if not dedupe:
        g = torch.randn(Xb.shape[1], P, generator=generator, dtype=torch.float64)
        return (Xb @ g >= 0).to(torch.float64).numpy()
    kept: list[torch.Tensor] = []
    seen: set[bytes] = set()
    drawn = 0
    while len(kept) < P and drawn < 100 * P:
        batch = max(P, 16)
        g = torch.randn(Xb.shape[1], batch, generator=generator, dtype=torch.float64)
        drawn += batch
        for column in (Xb @ g >= 0).T:
            key = column.numpy().tobytes()
            if key in seen or not bool(column.any()):
                continue
            seen.add(key)
            kept.append(column)
            if len(kept) == P:
                break
    return torch.stack(kept, dim=1).to(torch.float64).numpy()


class ConvexReLUProblem:
    """The sampled convex program of a two-layer ReLU network, squared loss.

    Equivalent to training ``f(X) = sum_j relu(X u_j) alpha_j`` on
    ``1/2 ||f(X) - y||^2 + beta/2 sum_j (||u_j||^2 + alpha_j^2)`` over the
    networks whose units fire with the sampled patterns; compare with
    ``scnn`` (pyscnn) and with a conic solver (cvxpy + Clarabel).

    Parameters
    ----------
    X
        Data, shape ``(n, d)``; numpy or torch, its array kind and floating dtype
        are those of the answer.
    y
        Targets, shape ``(n,)``.
    beta
        Group-lasso weight ``> 0``.
    arrangements
        ``P``, the number of patterns to sample (:func:`sample_arrangements`
        with ``seed``), or a ``(n, P)`` 0/1 array of patterns.
    seed
        Seed of the sampled patterns.
    bias
        Append a ones column to ``X`` (first-layer biases, regularised like the
        weights).
    gated
        Drop the constraints: the gated-ReLU program in one stack ``u``.

    Attributes
    ----------
    X, y
        The data as float tensors (``X`` with the bias column).
    D
        ``(n, P)`` patterns; ``S = 2 D - 1`` the constraint signs.
    shape
        Shape of ``x``: ``(2, P, d)``, or ``(1, P, d)`` when gated.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X, y = rng.standard_normal((30, 4)), rng.standard_normal(30)
    >>> problem = ConvexReLUProblem(X, y, beta=0.1, arrangements=8)
    >>> problem.shape
    (2, 8, 5)
    >>> float(problem.objective(np.zeros(problem.shape))) == 0.5 * float(y @ y)
    True
    """

    def __init__(
        self,
        X: Any,
        y: Any,
        beta: float,
        arrangements: int | Any = 25,
        *,
        seed: int = 0,
        bias: bool = True,
        gated: bool = False,
    ) -> None:
        Xt, info = as_tensor(X, "X")
        if Xt.ndim != 2:
            raise ValueError(f"X must be 2-D (n, d), got shape {tuple(Xt.shape)}")
        yt, _ = as_tensor(y, "y", dtype=info.dtype, device=Xt.device)
        if yt.ndim != 1 or yt.shape[0] != Xt.shape[0]:
            raise ValueError(
                f"y must have shape ({Xt.shape[0]},) to match X {tuple(Xt.shape)}, "
                f"got {tuple(yt.shape)}"
            )
        if not (isinstance(beta, (int, float)) and beta > 0 and np.isfinite(beta)):
            raise ValueError(f"beta must be a finite number > 0, got {beta!r}")
        if isinstance(arrangements, (int, np.integer)) and not isinstance(
            arrangements, bool
        ):
            D = sample_arrangements(Xt.cpu(), int(arrangements), seed=seed, bias=bias)
        else:
            D = np.asarray(
                arrangements.detach().cpu()
                if isinstance(arrangements, torch.Tensor)
                else arrangements,
                dtype=np.float64,
            )
            if D.ndim != 2 or D.shape[0] != Xt.shape[0] or D.shape[1] < 1:
                raise ValueError(
                    f"arrangements must be an int P >= 1 or an (n, P) = "
                    f"({Xt.shape[0]}, P) array, got shape {D.shape}"
                )
            if not np.isin(D, (0.0, 1.0)).all():
                raise ValueError("arrangements must hold only 0 and 1")
        self.info: ArrayInfo = info
        self.X = _with_bias(Xt, bias)
        self.y = yt
        self.beta = float(beta)
        self.bias = bool(bias)
        self.gated = bool(gated)
        self.D = torch.as_tensor(D, dtype=self.X.dtype).to(self.X.device)
        self.S = 2.0 * self.D - 1.0
        self.n, self.d = self.X.shape
        self.P = self.D.shape[1]
        self.signs = torch.tensor(
            [1.0] if self.gated else [1.0, -1.0], dtype=self.X.dtype
        ).to(self.X.device)

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(K, P, d)``: ``K = 2`` stacks (``v``, ``w``), 1 when gated."""
        return (len(self.signs), self.P, self.d)

    @property
    def dtype(self) -> torch.dtype:
        """The floating dtype of the data and of every iterate."""
        return self.X.dtype

    def _x(self, x: Any) -> torch.Tensor:
        t, _ = as_tensor(x, "x", dtype=self.dtype, device=self.X.device)
        if tuple(t.shape) != self.shape:
            raise ValueError(f"x must have shape {self.shape}, got {tuple(t.shape)}")
        return t

    # -- the linear maps of the program --------------------------------------

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``F x = sum_k sign_k sum_i D_i X x_{k,i}``, shape ``(n,)``."""
        combined = torch.einsum("k,kpd->pd", self.signs, x)
        return ((self.X @ combined.T) * self.D).sum(dim=1)

    def adjoint(self, r: torch.Tensor) -> torch.Tensor:
        """``F^T r``, shape ``self.shape``."""
        block = (self.X.T @ (self.D * r[:, None])).T
        return self.signs[:, None, None] * block

    def gate(self, x: torch.Tensor) -> torch.Tensor:
        """``G x``: ``S * (X x_{k,i})`` per block, shape ``(K, n, P)``; the
        constraints are ``G x >= 0``."""
        return torch.einsum("nd,kpd->knp", self.X, x) * self.S

    def gate_adjoint(self, s: torch.Tensor) -> torch.Tensor:
        """``G^T s`` for ``s`` of shape ``(K, n, P)``."""
        return torch.einsum("nd,knp->kpd", self.X, s * self.S)

    # -- evaluation ----------------------------------------------------------

    def group_norms(self, x: torch.Tensor) -> torch.Tensor:
        """``||x_{k,i}||`` of every block, shape ``(K, P)``."""
        return torch.linalg.vector_norm(x, dim=-1)

    def value(self, x: torch.Tensor) -> torch.Tensor:
        """The objective on a torch ``x`` of :attr:`shape` (no conversion)."""
        r = self.forward(x) - self.y
        return 0.5 * (r @ r) + self.beta * self.group_norms(x).sum()

    def objective(self, x: Any) -> Any:
        """``1/2 ||F x - y||^2 + beta sum ||x_{k,i}||`` (constraints not
        checked: see :meth:`constraint_violation`)."""
        return self.value(self._x(x))

    def constraint_violation(self, x: Any) -> float:
        """``max(0, -min (2 D_i - I) X x_{k,i})``: 0 when feasible (always 0 for
        the gated program)."""
        if self.gated:
            return 0.0
        return float(torch.clamp(-self.gate(self._x(x)), min=0.0).max())

    def data_scale(self) -> float:
        """``||F^T y||``, the size of the loss gradient at ``x = 0``."""
        return float(torch.linalg.vector_norm(self.adjoint(self.y)))
