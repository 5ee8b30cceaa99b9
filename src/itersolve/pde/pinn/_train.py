"""``train_pinn`` and its method :class:`AdamThenLBFGS`, run by the shared driver."""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

import torch
from torch.nn.utils import parameters_to_vector, vector_to_parameters

from itersolve._core.frontdoor import check_method, solve
from itersolve._core.iterate import Callback, IterativeMethod
from itersolve._core.solution import Solution, Status
from itersolve._core.tensors import ArrayInfo, Kind, as_tensor
from itersolve.pde.pinn._models import PINNModel
from itersolve.pde.pinn._problem import PINNProblem


class TrainingRun(Protocol):
    """What :class:`AdamThenLBFGS` trains: parameters, a loss and its parts."""

    @property
    def params(self) -> list[torch.Tensor]:
        """The trained tensors (leaves with ``requires_grad``)."""
        ...

    def terms(self) -> dict[str, torch.Tensor]:
        """The loss (key ``"loss"``) and its parts, at the current parameters."""
        ...

    def metrics(self) -> dict[str, float]:
        """What the trace records beside the loss terms (errors, diagnostics)."""
        ...


@dataclass(frozen=True)
class PINNRun:
    """What the driver hands to :class:`AdamThenLBFGS`: a copy of the model, the
    problem and the collocation grid."""

    model: PINNModel
    problem: PINNProblem
    x: torch.Tensor
    t: torch.Tensor

    @property
    def params(self) -> list[torch.Tensor]:
        return list(self.model.parameters())

    def terms(self) -> dict[str, torch.Tensor]:
        return self.model.losses(self.problem, self.x, self.t)

    def metrics(self) -> dict[str, float]:
        out = {"relative_l2": relative_l2(self.model, self.problem)}
        out.update(self.model.diagnostics(self.problem, self.x, self.t))
        return out


@dataclass
class PINNState:
    x: torch.Tensor
    adam: torch.optim.Adam
    lbfgs: torch.optim.LBFGS
    steps: int = 0
    losses: dict[str, float] = field(default_factory=dict)
    step_time: float = math.nan
    evaluations: int = 0
    status: Status | None = None


class _NonFinite(Exception):
    """A non-finite loss inside an L-BFGS step (the step is undone)."""


def _check_count(value: Any, name: str, least: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise ValueError(f"{name} must be an int >= {least}, got {value!r}")


@dataclass(frozen=True, kw_only=True)
class AdamThenLBFGS(IterativeMethod):
    """``adam_steps`` of Adam, then ``lbfgs_steps`` of L-BFGS: the PINN schedule.

    It trains any :class:`TrainingRun` (parameters and a loss): the PINNs of
    :func:`train_pinn` and the graph Galerkin networks of
    :func:`~itersolve.pde.train_graph_galerkin`.

    A training loop like the :mod:`itersolve.optim` family's: the steps are
    ``torch.optim.Adam`` (``lr``) and ``torch.optim.LBFGS`` (unit step,
    strong-Wolfe line search of at most 24 trial points, ``history_size``;
    one driver step is one L-BFGS iteration, i.e.
    ``LBFGS(max_iter=1, max_eval=25).step``, whose history persists between
    steps). Equivalent to the Lagrangian PINN reference code's
    Adam-then-L-BFGS loop. Stopping rule: the budget::

        stop when  steps == adam_steps + lbfgs_steps   (SUCCESS)

    A non-finite loss or gradient stops the run with ``Status.NONFINITE``
    before the update, so ``x`` keeps the last finite parameters (an L-BFGS
    line search that lands on a non-finite point is undone).

    Parameters
    ----------
    adam_steps, lbfgs_steps
        Budget of each phase (``lbfgs_steps = 0``: Adam only).
    lr
        Adam's learning rate.
    history_size
        L-BFGS memory.

    Examples
    --------
    >>> from itersolve.pde import AdamThenLBFGS
    >>> AdamThenLBFGS(adam_steps=100, lbfgs_steps=10).lr
    0.001
    """

    adam_steps: int = 1500
    lbfgs_steps: int = 0
    lr: float = 1e-3
    history_size: int = 50

    ADVICE: ClassVar[dict[Status, str]] = {
        Status.NONFINITE: "lower lr, train in float64, or check the loss's "
        "inputs (PDE coefficients, initial and boundary values, load) for NaN",
        Status.MAX_STEPS: "raise max_steps to at least adam_steps + lbfgs_steps",
    }

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_count(self.adam_steps, "adam_steps", 0)
        _check_count(self.lbfgs_steps, "lbfgs_steps", 0)
        _check_count(self.history_size, "history_size", 1)
        if self.adam_steps + self.lbfgs_steps == 0:
            raise ValueError("adam_steps and lbfgs_steps cannot both be 0")
        if (
            isinstance(self.lr, bool)
            or not isinstance(self.lr, int | float)
            or not self.lr > 0
            or not math.isfinite(self.lr)
        ):
            raise ValueError(f"lr must be finite and > 0, got {self.lr!r}")

    def default_max_steps(self, problem: Any) -> int:
        return self.adam_steps + self.lbfgs_steps

    def default_stall_window(self, problem: Any) -> int | None:
        # The budget is the stopping rule; a converged L-BFGS phase that stops
        # moving is not a failure.
        return None

    def init(self, problem: TrainingRun, x0: torch.Tensor) -> PINNState:
        params = problem.params
        adam = torch.optim.Adam(params, lr=self.lr)
        lbfgs = torch.optim.LBFGS(
            params,
            lr=1.0,
            max_iter=1,
            # torch's default max_eval = 5 max_iter // 4 = 1 leaves the line
            # search no evaluation at all (the step would never move)
            max_eval=25,
            history_size=self.history_size,
            line_search_fn="strong_wolfe",
            tolerance_grad=0.0,
            tolerance_change=0.0,
        )
        return PINNState(x=x0.clone(), adam=adam, lbfgs=lbfgs)

    def converged(self, problem: TrainingRun, state: PINNState) -> bool:
        return state.steps >= self.adam_steps + self.lbfgs_steps

    def _evaluate(
        self, run: TrainingRun, state: PINNState, keep: bool = True
    ) -> torch.Tensor:
        terms = run.terms()
        state.evaluations += 1
        if keep:
            state.losses = {k: float(v.detach()) for k, v in terms.items()}
        return terms["loss"]

    def step(self, problem: TrainingRun, state: PINNState) -> PINNState:
        start = time.perf_counter()
        params = problem.params
        if state.steps < self.adam_steps:
            state.adam.zero_grad()
            loss = self._evaluate(problem, state)
            if not math.isfinite(float(loss.detach())):
                state.status = Status.NONFINITE
                return state
            loss.backward()
            grads = [p.grad for p in params if p.grad is not None]
            if not math.isfinite(float(sum(g.sum() for g in grads))):
                state.status = Status.NONFINITE
                return state
            state.adam.step()
        else:
            first = state.evaluations

            def closure() -> torch.Tensor:
                # The trace keeps the loss at the step's starting point (as for
                # Adam), not at a rejected line-search trial point.
                state.lbfgs.zero_grad()
                loss = self._evaluate(problem, state, keep=state.evaluations == first)
                if not torch.isfinite(loss):
                    # torch's strong-Wolfe search fails on a NaN trial value
                    raise _NonFinite
                loss.backward()
                return loss

            try:
                state.lbfgs.step(closure)
                moved = parameters_to_vector(params).detach()
                finite = bool(torch.isfinite(moved).all())
            except _NonFinite:
                finite = False
            if not finite:
                vector_to_parameters(state.x, params)
                state.status = Status.NONFINITE
                return state
        state.steps += 1
        state.x = parameters_to_vector(params).detach().clone()
        state.step_time = time.perf_counter() - start
        return state

    def metrics(self, problem: TrainingRun, state: PINNState) -> dict[str, float]:
        out = {f"loss_{k}" if k != "loss" else k: v for k, v in state.losses.items()}
        out["phase"] = 0.0 if state.steps <= self.adam_steps else 1.0
        out["step_time"] = state.step_time
        out.update(problem.metrics())
        return out

    def stats(self, problem: TrainingRun, state: PINNState) -> dict[str, float]:
        return {"loss_evaluations": state.evaluations}


def relative_l2(model: PINNModel, problem: PINNProblem) -> float:
    """Relative L2 error of ``model`` vs the problem's reference on its eval grid.

    Examples
    --------
    >>> import torch
    >>> from itersolve.pde import PINN, ConvectionProblem, relative_l2
    >>> _ = torch.manual_seed(0)
    >>> relative_l2(PINN(width=8, depth=2), ConvectionProblem(1.0)) > 0.1
    True
    """
    dtype = next(model.parameters()).dtype
    x, t = problem.eval_grid(dtype)
    return problem.relative_l2(model.predict(problem, x, t))


def _seed(seed: Any) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an int, got {seed!r}")
    return seed


def collocation_grid(
    model: PINNModel,
    problem: PINNProblem,
    collocation: tuple[Any, Any] | None,
    seed: int,
    dtype: torch.dtype | None,
) -> tuple[torch.Tensor, torch.Tensor, ArrayInfo]:
    """The training front doors' ``(x, t)`` axes and the answer's array kind:
    the given arrays (copied) or the problem's seeded grid in ``dtype`` (the
    model's by default)."""
    if collocation is None:
        work = dtype if dtype is not None else next(model.parameters()).dtype
        if not work.is_floating_point:
            raise ValueError(f"dtype must be a floating dtype, got {work}")
        x, t = problem.collocation(seed, work)
        info = ArrayInfo(Kind.TORCH, work, x.device)
    else:
        if not isinstance(collocation, tuple | list) or len(collocation) != 2:
            raise ValueError(
                f"collocation must be a pair (x, t) of 1-D arrays, got {collocation!r}"
            )
        x, info = as_tensor(collocation[0], "collocation x", dtype=dtype, copy=True)
        t, _ = as_tensor(collocation[1], "collocation t", dtype=x.dtype, copy=True)
        t = t.to(x.device)
    problem.check_collocation(x, t)
    return x, t, info


def train_pinn(
    model: PINNModel,
    problem: PINNProblem,
    method: IterativeMethod | None = None,
    *,
    collocation: tuple[Any, Any] | None = None,
    seed: int = 0,
    dtype: torch.dtype | None = None,
    callback: Callback | None = None,
    record: bool | int = False,
    throw: bool = False,
) -> Solution:
    """Train a physics-informed network on a 1-D time-dependent problem.

    The model is copied (the argument is never changed), cast to the working
    dtype and trained by ``method`` through the shared driver.

    Parameters
    ----------
    model
        A :class:`PINN` or :class:`LagrangianPINN` (or another
        :class:`PINNModel`).
    problem
        :class:`ConvectionProblem`, :class:`ConvectionDiffusionProblem` or
        :class:`BurgersProblem` (any :class:`PINNProblem` the model accepts).
    method
        :class:`AdamThenLBFGS` (``None``: ``AdamThenLBFGS()``, 1500 Adam steps
        at ``lr = 1e-3``).
    collocation
        ``(x, t)``: 1-D arrays, the axes of the tensor grid of residual
        points (the initial condition is taken at ``x``, ``t = 0``). Their
        array kind and dtype are those of the answer. ``None``: the problem's
        seeded jittered grid (:meth:`PINNProblem.collocation`).
    seed
        Seeds the collocation sampling (the model's initial weights are the
        ones it came with).
    dtype
        Working dtype when ``collocation`` is ``None`` (default: the model's);
        ``torch.float64`` for tight training.
    callback, record, throw
        As in every front door. Trace columns: ``loss`` and every weighted
        term ``loss_<name>`` at the point where the step's gradient was taken,
        ``relative_l2`` vs the reference at the new parameters, ``phase`` (0
        Adam, 1 L-BFGS), ``step_time`` (seconds of this step), the driver's
        cumulative ``time`` and the model's monitors (``min_spacing`` of
        :class:`LagrangianPINN`: ``min diff(X)`` over the labels, <= 0 once
        characteristics cross).

    Returns
    -------
    Solution
        ``x``: the trained parameters as one flat vector
        (``torch.nn.utils.parameters_to_vector`` order); ``extras["model"]``:
        the trained copy of the model; ``extras["relative_l2"]``: its final
        error; ``stats["loss_evaluations"]``.

    Examples
    --------
    >>> import torch
    >>> from itersolve.pde import (
    ...     AdamThenLBFGS, ConvectionProblem, LagrangianPINN, train_pinn)
    >>> _ = torch.manual_seed(0)
    >>> model = LagrangianPINN(width=8, depth_u=2, depth_x=1)
    >>> problem = ConvectionProblem(10.0, n_x=16, n_t=5)
    >>> sol = train_pinn(model, problem, AdamThenLBFGS(adam_steps=20), seed=0)
    >>> sol.success, sol.x.dtype, sol.num_steps
    (True, torch.float32, 20)
    """
    if not isinstance(model, PINNModel):
        raise TypeError(
            "model must be a PINNModel such as LagrangianPINN(), "
            f"got {type(model).__name__}"
        )
    model.check_problem(problem)
    method = check_method(
        AdamThenLBFGS() if method is None else method, "AdamThenLBFGS()"
    )
    seed = _seed(seed)
    x, t, info = collocation_grid(model, problem, collocation, seed, dtype)
    trained = copy.deepcopy(model).to(dtype=x.dtype, device=x.device)
    x0 = parameters_to_vector(trained.parameters()).detach().clone()
    solution = solve(
        method,
        PINNRun(trained, problem, x, t),
        x0,
        output=info,
        callback=callback,
        record=record,
        throw=throw,
        check_finite=(x, t),
    )
    if solution.status is not Status.NONFINITE_INPUT:
        vector_to_parameters(
            torch.as_tensor(solution.x, dtype=x.dtype, device=x.device),
            trained.parameters(),
        )
        solution.extras["model"] = trained
        solution.extras["relative_l2"] = relative_l2(trained, problem)
    return solution
