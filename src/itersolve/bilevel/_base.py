"""What every multi-block bilevel method shares: the run, sampling, budget."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from itersolve._core.iterate import IterativeMethod
from itersolve._core.solution import Status
from itersolve.bilevel._problem import MultiBlockBilevelProblem, check_positive_int


@dataclass
class BilevelRun:
    """One run of a method: the problem, the lower start, the seed and budget.

    The driver hands this to the method as its ``problem``; ``budget`` is the
    number of steps the run is asked for (epochs times steps per epoch).
    """

    problem: MultiBlockBilevelProblem
    y0: Tensor
    seed: int
    budget: int


@dataclass
class BilevelState:
    """The fields every method's state has (and ``metrics`` reads)."""

    x: Tensor
    y: Tensor
    z: Tensor
    generator: torch.Generator
    k: int = 0
    status: Status | None = None


def check_step_size(value: Any, name: str, *, allow_zero: bool = False) -> None:
    """A finite step size > 0 (>= 0 with ``allow_zero``)."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if (
        not ok
        or not math.isfinite(value)
        or value < 0
        or (value == 0 and not allow_zero)
    ):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be a finite number {bound}, got {value!r}")


@dataclass(frozen=True, kw_only=True)
class BilevelMethod(IterativeMethod):
    """Shared hyperparameters of the multi-block bilevel methods.

    The stopping rule is the budget :func:`~itersolve.bilevel.solve` asks for
    (``k == budget`` steps, ``SUCCESS``); ``max_steps`` is the driver's hard
    limit (``MAX_STEPS`` when it is below the budget). One epoch is
    ``ceil(m n_lower / (I B s))`` steps (every block sees as many lower-level
    samples as it has, in expectation; ``s`` lower samples per block per
    step, 1 except for inner-loop methods).

    Parameters
    ----------
    blocks_per_iter
        Blocks sampled per iteration, ``I`` (``None``: all ``m``).
    batch_size
        Samples per sampled block, ``B`` (``None``: the full sets, a
        deterministic method).
    eta
        Upper-level step size.

    Examples
    --------
    >>> from itersolve.bilevel import BSVRB
    >>> from itersolve.problems import quadratic_bilevel
    >>> BSVRB(blocks_per_iter=2, batch_size=8).steps_per_epoch(quadratic_bilevel())
    32
    """

    blocks_per_iter: int | None = None
    batch_size: int | None = 32
    eta: float = 1e-3

    def __post_init__(self) -> None:
        super().__post_init__()
        check_positive_int(self.blocks_per_iter, "blocks_per_iter", allow_none=True)
        check_positive_int(self.batch_size, "batch_size", allow_none=True)
        check_step_size(self.eta, "eta")

    # -- sizes ------------------------------------------------------------------

    def check_problem(self, problem: MultiBlockBilevelProblem) -> None:
        """Reject settings the problem cannot meet (``blocks_per_iter > m``)."""
        if self.blocks_per_iter is not None and self.blocks_per_iter > problem.m:
            raise ValueError(
                f"blocks_per_iter must be <= the problem's {problem.m} blocks, "
                f"got {self.blocks_per_iter}"
            )
        if self.batch_size is not None and self.batch_size > problem.n_lower:
            raise ValueError(
                f"batch_size must be <= the {problem.n_lower} lower-level samples, "
                f"got {self.batch_size}"
            )

    def blocks(self, problem: MultiBlockBilevelProblem) -> int:
        return problem.m if self.blocks_per_iter is None else self.blocks_per_iter

    def lower_samples_per_step(self) -> int:
        """Lower-level minibatches each sampled block uses per step."""
        return 1

    def steps_per_epoch(self, problem: MultiBlockBilevelProblem) -> int:
        batch = problem.n_lower if self.batch_size is None else self.batch_size
        per_step = self.blocks(problem) * batch * self.lower_samples_per_step()
        return max(1, math.ceil(problem.m * problem.n_lower / per_step))

    def default_max_steps(self, problem: BilevelRun) -> int:
        return problem.budget

    def default_stall_window(self, problem: Any) -> int | None:
        # The budget is the stopping rule; a stochastic iterate that stops
        # moving is no failure of it.
        return None

    # -- sampling ---------------------------------------------------------------

    def sample_blocks(
        self, problem: MultiBlockBilevelProblem, gen: torch.Generator
    ) -> Tensor:
        count = self.blocks(problem)
        if count == problem.m:
            return torch.arange(problem.m)
        return torch.randperm(problem.m, generator=gen)[:count]

    def sample(self, count: int, n: int, gen: torch.Generator) -> Tensor | None:
        """``count`` independent minibatches of ``batch_size`` indices out of
        ``n`` (without replacement within one), or ``None`` for full sets."""
        if self.batch_size is None:
            return None
        size = min(self.batch_size, n)
        return torch.rand(count, n, generator=gen).argsort(dim=1)[:, :size]

    # -- driver hooks -----------------------------------------------------------

    def converged(self, problem: BilevelRun, state: Any) -> bool:
        return bool(state.k >= problem.budget)

    def metrics(self, problem: BilevelRun, state: Any) -> dict[str, float]:
        """``upper_loss``: ``(1/m) sum_i f_i(x, y_i)`` on the full upper set at
        the tracked lower iterates; ``lower_loss``: ``(1/m) sum_i g_i(x, y_i)``
        on the full lower set; ``epoch``; ``hypergradient_norm`` of the search
        direction."""
        p = problem.problem
        per_epoch = self.steps_per_epoch(p)
        with torch.no_grad():
            lower = p.lower_value(p.all_blocks(), state.x, state.y, None).mean()
        return {
            "upper_loss": p.hyperobjective_at(state.x, state.y),
            "lower_loss": float(lower),
            "epoch": state.k / per_epoch,
            "hypergradient_norm": float(torch.linalg.vector_norm(state.z)),
        }


def project_hessians(
    H: Tensor,
    mu: Tensor,
    L: Tensor,
    mode: str,
    bound: float,
) -> Tensor:
    """Hessian estimates made safely invertible.

    ``"eig"``: eigenvalues clipped to ``[mu_i, L_i]`` (the lower level's
    curvature bounds); ``"frobenius"``: the reference code's ``proj_mat``,
    which rescales ``H`` up to Frobenius norm ``bound`` when it is smaller (a
    lower bound on ``||H||_F``, not on ``lambda_min``).
    """
    if mode == "frobenius":
        norms = torch.linalg.matrix_norm(H).clamp_min(torch.finfo(H.dtype).tiny)
        scale = torch.where(norms < bound, bound / norms, torch.ones_like(norms))
        return H * scale[:, None, None]
    sym = 0.5 * (H + H.transpose(1, 2))
    values, vectors = torch.linalg.eigh(sym)
    values = torch.minimum(torch.maximum(values, mu[:, None]), L[:, None])
    return (vectors * values[:, None, :]) @ vectors.transpose(1, 2)


def solve_spd(H: Tensor, b: Tensor) -> Tensor:
    """``H_i^-1 b_i`` by Cholesky (``H`` projected, hence positive definite);
    ``NaN`` where a factorization fails, which the driver then reports."""
    factor, info = torch.linalg.cholesky_ex(H)
    out = torch.cholesky_solve(b.unsqueeze(-1), factor).squeeze(-1)
    if bool((info != 0).any()):
        out = torch.where((info != 0)[:, None], torch.full_like(out, math.nan), out)
    return out


HESSIAN_PROJECTIONS = ("eig", "frobenius")


def check_projection(mode: Any) -> None:
    if mode not in HESSIAN_PROJECTIONS:
        raise ValueError(
            f"hessian_projection must be one of {HESSIAN_PROJECTIONS}, got {mode!r}"
        )
