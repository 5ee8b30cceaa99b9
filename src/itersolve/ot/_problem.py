"""The entropic transport problem and the log-domain kernels both solvers share.

Conventions (POT's): ``reg`` is the entropic regularisation epsilon = 1/eta and the
plan is ``P_ij = exp(u_i + v_j - C_ij / reg)``, where ``u, v`` are the
*log-scalings* (POT's ``log_u``, ``log_v``). The dual potentials in cost units are
``f = reg * u`` and ``g = reg * v``, so that ``P_ij = exp((f_i + g_j - C_ij) / reg)``.
The paper's form ``exp(eta (x_i + y_j - C_ij) - 1)`` is the same plan with
``x = f + reg / 2`` and ``y = g + reg / 2``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch

from itersolve._core.tensors import ArrayInfo, as_tensor, result_dtype


@dataclass(frozen=True)
class TransportProblem:
    """Entropic OT between ``a`` (n,) and ``b`` (m,) for ``cost`` (n, m).

    A batch of problems sharing a size has ``a`` (B, n), ``b`` (B, m) and ``cost``
    (n, m) or (B, n, m). ``neg_cost`` is ``-cost / reg`` (the log of the Gibbs
    kernel), formed once.

    Examples
    --------
    >>> import torch
    >>> from itersolve.ot import TransportProblem
    >>> a = torch.full((3,), 1 / 3, dtype=torch.float64)
    >>> cost = torch.rand(3, 3, dtype=torch.float64)
    >>> problem = TransportProblem(a, a, cost, reg=0.1)
    >>> problem.cost.shape, problem.reg
    (torch.Size([3, 3]), 0.1)
    """

    a: torch.Tensor
    b: torch.Tensor
    cost: torch.Tensor
    reg: float
    neg_cost: torch.Tensor = field(init=False, repr=False)
    log_a: torch.Tensor = field(init=False, repr=False)
    log_b: torch.Tensor = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "neg_cost", self.cost / -self.reg)
        object.__setattr__(self, "log_a", self.a.log())
        object.__setattr__(self, "log_b", self.b.log())

    @property
    def n(self) -> int:
        return self.a.shape[-1]

    @property
    def m(self) -> int:
        return self.b.shape[-1]

    @property
    def batched(self) -> bool:
        return self.a.ndim == 2

    @property
    def plan_shape(self) -> tuple[int, ...]:
        return (*self.a.shape[:-1], self.n, self.m)

    def split(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Views ``(u, v)`` of the stacked log-scalings ``x = [u, v]``."""
        return x[..., : self.n], x[..., self.n :]


def gibbs_plan(
    problem: TransportProblem,
    u: torch.Tensor,
    v: torch.Tensor,
    out: torch.Tensor | None = None,
    *,
    floor: bool = False,
) -> torch.Tensor:
    """``exp(u_i + v_j - C_ij / reg)``, written into ``out`` when given.

    ``floor=True`` raises exponents below ``log(tiny) + 8`` to that value before
    ``exp``: entries that would be (near-)subnormal become ``~3000 * tiny``
    instead. That changes any row or column sum by at most ``3000 * tiny * len``
    (far below rounding, see :func:`log_marginal`) but avoids the slow scalar
    path of ``exp`` for underflowing arguments, which is 25x slower per entry
    and hit by almost every entry of a converged plan at small ``reg``.
    """
    t = torch.add(problem.neg_cost, v.unsqueeze(-2), out=out)
    t.add_(u.unsqueeze(-1))
    if floor:
        t.clamp_(min=_exponent_floor(t.dtype))
    return t.exp_()


def _exponent_floor(dtype: torch.dtype) -> float:
    return math.log(torch.finfo(dtype).tiny) + 8.0


def log_marginal(
    problem: TransportProblem,
    u: torch.Tensor,
    v: torch.Tensor,
    dim: int,
    buf: torch.Tensor,
) -> tuple[torch.Tensor, bool]:
    """``log sum_dim exp(u_i + v_j - C_ij / reg)`` in the log domain.

    Fast path: one fused pass ``sum(exp(...))`` into ``buf``, exact whenever the
    sum is finite and far enough above the underflow threshold that the entries
    flushed to zero cannot matter (each lost entry is below ``tiny``, so the
    relative loss is at most ``len * tiny / sum <= eps``). After a Sinkhorn
    half-step one marginal is met exactly, so every entry is <= 1 and the fast
    path always applies near convergence. (Entries are floored at
    ``exp(log(tiny) + 8)``, see :func:`gibbs_plan`; the bound uses that value.)
    Rows (or columns) that fail the test are recomputed with ``torch.logsumexp``
    (max-shifted), so nothing overflows or underflows at any ``reg``. Returns
    the log-sums and whether ``buf`` now holds the plan (no fallback needed).
    """
    plan = gibbs_plan(problem, u, v, out=buf, floor=True)
    s = plan.sum(dim)
    info = torch.finfo(s.dtype)
    length = plan.shape[dim]
    low = math.exp(_exponent_floor(s.dtype)) / info.eps * length
    ok = torch.isfinite(s) & (s >= low)
    if bool(ok.all()):
        return s.log(), True
    # max-shifted logsumexp; the clamp keeps exp off its slow underflow path.
    t = problem.neg_cost + u.unsqueeze(-1) + v.unsqueeze(-2)
    shift = t.amax(dim, keepdim=True)
    shift = torch.where(torch.isfinite(shift), shift, torch.zeros_like(shift))
    t.sub_(shift).clamp_(min=_exponent_floor(t.dtype)).exp_()
    exact = t.sum(dim).log() + shift.squeeze(dim)
    return torch.where(ok, s.log(), exact), False


def sinkhorn_sweep(
    problem: TransportProblem,
    u: torch.Tensor,
    v: torch.Tensor,
    log_rowsum: torch.Tensor,
    buf: torch.Tensor,
) -> tuple[torch.Tensor, bool]:
    """One log-domain Sinkhorn sweep, in place on ``u`` and ``v``.

    ``log_rowsum`` must hold ``log P(u, v) 1`` for the current ``u, v``. Updates
    ``u <- u + log a - log(P 1)`` (rows met), then ``v <- v + log b - log(P^T 1)``
    (columns met), and returns the new ``log P(u, v) 1`` (which gives the row
    error of the new iterate for free) and whether ``buf`` holds ``P(u, v)``.
    """
    u.add_(problem.log_a - log_rowsum)
    log_colsum, _ = log_marginal(problem, u, v, -2, buf)
    v.add_(problem.log_b - log_colsum)
    return log_marginal(problem, u, v, -1, buf)


def row_error(problem: TransportProblem, log_rowsum: torch.Tensor) -> torch.Tensor:
    """``||P 1 - a||_1`` per problem, from ``log(P 1)``."""
    return (log_rowsum.exp() - problem.a).abs().sum(-1)


def lyapunov_potential(
    a: torch.Tensor,
    b: torch.Tensor,
    cost: torch.Tensor,
    reg: float,
    f: torch.Tensor,
    g: torch.Tensor,
) -> torch.Tensor:
    """The concave entropic dual ``<a, f> + <b, g> - reg * sum_ij P_ij``.

    ``P_ij = exp((f_i + g_j - C_ij) / reg)``. Its gradient is
    ``(a - P 1, b - P^T 1)`` and Sinkhorn is exact alternating maximisation of it;
    the maximum equals the entropic OT value minus ``reg`` (times the mass).
    This is the paper's Lyapunov function ``f(x, y)`` with the ``-1`` in the
    exponent absorbed into the potentials.

    Examples
    --------
    >>> import torch
    >>> C = torch.tensor([[0.0, 1.0], [1.0, 0.0]], dtype=torch.float64)
    >>> a = torch.tensor([0.5, 0.5], dtype=torch.float64)
    >>> z = torch.zeros(2, dtype=torch.float64)
    >>> round(float(lyapunov_potential(a, a, C, 1.0, z, z)), 6)  # -2 - 2/e
    -2.735759
    """
    plan = torch.exp((f.unsqueeze(-1) + g.unsqueeze(-2) - cost) / reg)
    return (a * f).sum(-1) + (b * g).sum(-1) - reg * plan.sum((-2, -1))


def sparsify_plan(plan: torch.Tensor, keep: int) -> torch.Tensor:
    """The ``keep`` largest entries of ``plan`` (n, m) as a sparse COO tensor.

    This is the paper's sparsification with threshold rho = the ``keep``-th
    largest entry (density lambda = ``keep / (n m)``); ties are broken so that
    exactly ``keep`` entries are kept.

    Examples
    --------
    >>> import torch
    >>> P = torch.tensor([[0.5, 0.1], [0.0, 0.4]])
    >>> sparsify_plan(P, 2).to_dense()
    tensor([[0.5000, 0.0000],
            [0.0000, 0.4000]])
    """
    if plan.ndim != 2:
        raise ValueError(f"plan must be 2-D, got shape {tuple(plan.shape)}")
    n, m = plan.shape
    if not 1 <= keep <= n * m:
        raise ValueError(f"keep must be in [1, {n * m}], got {keep}")
    values, index = torch.topk(plan.reshape(-1), keep, sorted=False)
    rows, cols = index // m, index % m
    return torch.sparse_coo_tensor(torch.stack([rows, cols]), values, (n, m)).coalesce()


def build_problem(
    a: Any, b: Any, cost: Any, reg: Any
) -> tuple[TransportProblem, ArrayInfo, dict[str, Any]]:
    """Validate and convert ``transport``'s inputs into a :class:`TransportProblem`.

    Returns the problem, the array kind of ``cost`` (the answer's) and what
    :func:`~itersolve.ot.transport` needs to put dropped zero-weight rows and
    columns back (``restore``: full sizes, kept masks).
    """
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
    if n == 0 or m == 0:
        raise ValueError(f"cost must not be empty, got shape {tuple(C.shape)}")
    a_t = weights(a, "a", n, C)
    b_t = weights(b, "b", m, C)
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


def weights(w: Any, name: str, size: int, like: torch.Tensor) -> torch.Tensor:
    if w is None or (isinstance(w, (list, tuple)) and len(w) == 0):
        return torch.full((size,), 1.0 / size, dtype=like.dtype, device=like.device)
    t, _ = as_tensor(w, name, device=like.device)
    if t.ndim not in (1, 2):
        raise ValueError(f"{name} must have shape (n,) or (B, n), got {tuple(t.shape)}")
    return t
