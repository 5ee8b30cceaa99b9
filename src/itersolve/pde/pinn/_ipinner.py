"""Ensemble Kalman training of a PINN ensemble and an NSGA-III architecture search.

A reconstruction of iPINNER (Lu, Mou & Lin, arXiv 2506.00731) from its
abstract and secondary summaries: no official code exists. The ensemble is
one ``(E, d)`` tensor of flat parameter vectors; every member's field, PDE
residual and data prediction is one batched call (``torch.func.vmap`` over
``functional_call``), and one Adam over the stacked tensor is ``E``
independent Adams (Adam is elementwise).
"""

from __future__ import annotations

import copy
import dataclasses
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn
from torch.func import functional_call, vmap
from torch.nn.utils import parameters_to_vector

from itersolve._core.frontdoor import check_method, solve
from itersolve._core.iterate import Callback, IterativeMethod
from itersolve._core.solution import Solution, Status
from itersolve.pde._enkf import enkf_update, load_ensemble, model_observer
from itersolve.pde.pinn._burgers import SensorData
from itersolve.pde.pinn._models import PINN
from itersolve.pde.pinn._problem import PINNProblem
from itersolve.pde.pinn._train import AdamThenLBFGS, collocation_grid, train_pinn


class _Field(nn.Module):
    """``u(x, t)`` of a :class:`PINN` as a module ``forward(x, t)`` (what
    ``functional_call`` and :func:`model_observer` call)."""

    def __init__(self, model: PINN, length: float) -> None:
        super().__init__()
        self.model = model
        self.length = length

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.model.field(x, t, self.length)


def _batched(module: nn.Module) -> Callable[..., torch.Tensor]:
    """``fields(flat, x, t) -> (E, n)``: every member's ``module(x, t)``;
    ``x``, ``t`` are shared ``(n,)`` or per member ``(E, n)`` (per-member
    copies make ``d u_e / d x_e`` a pointwise autograd gradient)."""
    names = [n for n, _ in module.named_parameters()]
    shapes = [p.shape for _, p in module.named_parameters()]
    sizes = [math.prod(s) for s in shapes]

    def one(row: torch.Tensor, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        parts = torch.split(row, sizes)
        params = {n: p.reshape(s) for n, p, s in zip(names, parts, shapes, strict=True)}
        return functional_call(module, params, (x, t))

    def fields(flat: torch.Tensor, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        dims = 0 if x.ndim == 2 else None
        return vmap(one, in_dims=(0, dims, dims))(flat, x, t)

    return fields


def _positive(value: Any, name: str) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or not value > 0
    ):
        raise ValueError(f"{name} must be finite and > 0, got {value!r}")


def _count(value: Any, name: str, least: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise ValueError(f"{name} must be an int >= {least}, got {value!r}")


@dataclass(frozen=True)
class EnsembleRun:
    """What the driver hands to :class:`EnsembleKalmanPINN`."""

    template: PINN
    problem: PINNProblem
    x: torch.Tensor
    t: torch.Tensor
    data: SensorData
    seed: int


@dataclass
class EnsembleState:
    x: torch.Tensor
    params: torch.Tensor
    adam: torch.optim.Adam
    target: torch.Tensor
    generator: torch.Generator
    steps: int = 0
    loss: float = math.nan
    spread_before: float = math.nan
    spread_after: float = math.nan
    step_time: float = math.nan
    member_steps: int = 0
    status: Status | None = None
    forecast: torch.Tensor | None = None


@dataclass(frozen=True, kw_only=True)
class EnsembleKalmanPINN(IterativeMethod):
    """Iterative ensemble Kalman training of ``E`` PINNs (iPINNER-style hybrid).

    The ensemble starts as ``E`` perturbations of the template network,
    ``theta_j = theta_0 + init_spread * s * xi_j`` (``s`` the RMS of each
    parameter tensor, ``xi_j ~ N(0, I)``), so that the members share one
    basin and a Kalman update, a linear combination of their anomalies, is
    meaningful. One driver step is one outer iteration:

    1. ``adam_steps`` of Adam on every member's PINN loss (PDE, initial,
       boundary and data terms, weights of the template), all members in one
       batched call;
    2. a Kalman step (:func:`~itersolve.pde.enkf_update`, ``inflation``),
       by ``update``:

       * ``"outputs"`` (the spec's pipeline): before every phase but the
         first, the analysis of the members' predictions at the sensors
         against the noisy data (noise ``data_std``); its mean (the
         "denoised data") replaces the data in the next phase's loss and the
         parameters do not jump;
       * ``"parameters"``: after every phase, the update of the parameter
         ensemble on the observation vector: the noisy data, the PDE residual
         at ``residual_points`` random collocation points with target 0 (a
         pseudo-observation of noise ``residual_std``) and the initial and
         boundary residuals with target 0 (noise ``boundary_std``), every
         noise scaled by ``sqrt(iterations)`` (ES-MDA: the repeated updates
         count the data once); with ``refine_data`` the next phase fits the
         analysis ensemble's mean prediction at the sensors.

    The Kalman steps always use the original data and noise.

    Stopping rule: the budget, ``steps == iterations`` (SUCCESS); a
    non-finite loss stops with ``Status.NONFINITE`` before the update (``x``
    keeps the last finite ensemble). With ``adam_steps = 0`` and
    ``update="parameters"`` it is plain iterated EnKF (ensemble Kalman
    inversion) on the PINN parameters.
    Reconstructed from the iPINNER abstract (Lu, Mou & Lin, arXiv
    2506.00731), not from code; compare with a single Adam-trained PINN of
    ``E * adam_steps * iterations`` steps (:func:`train_pinn`).

    Parameters
    ----------
    ensemble_size
        ``E >= 2`` members.
    iterations
        Outer iterations (Adam phase + Kalman update).
    adam_steps
        Adam steps per member per iteration (0: pure EnKF).
    lr
        Adam's learning rate.
    inflation
        Multiplicative anomaly inflation of the Kalman step (``>= 1``).
    residual_points
        PDE-residual pseudo-observations per update (a seeded random subset
        of the collocation grid, redrawn each iteration).
    residual_std, boundary_std
        Noise of the residual and of the initial/boundary pseudo-observations.
    data_std
        Noise of the data (``None``: the :class:`SensorData`'s
        ``noise_std``, which must then be > 0).
    init_spread
        Relative spread of the initial ensemble.
    refine_data
        Fit the analysis mean at the sensors in the next Adam phase
        (``update="parameters"``; the outputs update always does).
    update
        ``"outputs"`` (default) or ``"parameters"``, see step 2.

    Examples
    --------
    >>> from itersolve.pde import EnsembleKalmanPINN
    >>> EnsembleKalmanPINN(ensemble_size=8).inflation
    1.05
    >>> EnsembleKalmanPINN(ensemble_size=1)
    Traceback (most recent call last):
    ...
    ValueError: ensemble_size must be an int >= 2, got 1
    """

    ensemble_size: int = 20
    iterations: int = 3
    adam_steps: int = 200
    lr: float = 1e-3
    inflation: float = 1.05
    residual_points: int = 256
    residual_std: float = 0.1
    boundary_std: float = 0.01
    data_std: float | None = None
    init_spread: float = 0.05
    refine_data: bool = True
    update: str = "outputs"

    ADVICE: ClassVar[dict[Status, str]] = {
        Status.NONFINITE: "lower lr or init_spread, or train in float64",
        Status.MAX_STEPS: "raise max_steps to at least iterations",
    }

    def __post_init__(self) -> None:
        super().__post_init__()
        _count(self.ensemble_size, "ensemble_size", 2)
        _count(self.iterations, "iterations", 1)
        _count(self.adam_steps, "adam_steps", 0)
        _count(self.residual_points, "residual_points", 1)
        for name in ("lr", "residual_std", "boundary_std", "init_spread"):
            _positive(getattr(self, name), name)
        if self.data_std is not None:
            _positive(self.data_std, "data_std")
        if (
            isinstance(self.inflation, bool)
            or not isinstance(self.inflation, int | float)
            or not math.isfinite(self.inflation)
            or self.inflation < 1
        ):
            raise ValueError(
                f"inflation must be finite and >= 1, got {self.inflation!r}"
            )
        if not isinstance(self.refine_data, bool):
            raise TypeError(f"refine_data must be a bool, got {self.refine_data!r}")
        if self.update not in ("outputs", "parameters"):
            raise ValueError(
                f"update must be 'outputs' or 'parameters', got {self.update!r}"
            )

    def default_max_steps(self, problem: Any) -> int:
        return self.iterations

    def default_stall_window(self, problem: Any) -> int | None:
        return None  # the budget is the stopping rule

    # -- batched pieces ------------------------------------------------------

    def _module(self, run: EnsembleRun) -> _Field:
        return _Field(run.template, run.problem.length)

    def _residuals(
        self,
        run: EnsembleRun,
        flat: torch.Tensor,
        x: torch.Tensor,
        t: torch.Tensor,
        problem: PINNProblem,
    ) -> dict[str, torch.Tensor]:
        """Every member's named residuals, each ``(E, n_term)``; the PDE term
        on the points ``(x[k], t[k])``."""
        fields = _batched(self._module(run))
        n = flat.shape[0]
        xs = x.expand(n, -1).detach().clone().requires_grad_(True)
        ts = t.expand(n, -1).detach().clone().requires_grad_(True)
        out = {"pde": problem.pde_residual(fields(flat, xs, ts), xs, ts)}
        x0 = run.x
        out["ic"] = fields(flat, x0, torch.zeros_like(x0)) - problem.u0(x0)
        out.update(
            problem.extra_residuals(lambda a, b: fields(flat, a, b), run.x, run.t)
        )
        return out

    def _with_target(self, run: EnsembleRun, target: torch.Tensor) -> PINNProblem:
        data = run.data._replace(u=target)
        return dataclasses.replace(run.problem, observations=data)  # type: ignore[type-var]

    def _grid(self, run: EnsembleRun) -> tuple[torch.Tensor, torch.Tensor]:
        tt, xx = torch.meshgrid(run.t, run.x, indexing="ij")
        return xx.reshape(-1), tt.reshape(-1)

    # -- driver hooks ----------------------------------------------------------

    def init(self, problem: EnsembleRun, x0: torch.Tensor) -> EnsembleState:
        gen = torch.Generator().manual_seed(problem.seed)
        rows = []
        for p in problem.template.parameters():
            scale = float(p.detach().square().mean().sqrt()) or 1.0
            noise = torch.randn(
                (self.ensemble_size, p.numel()), generator=gen, dtype=torch.float64
            )
            rows.append(
                p.detach().reshape(1, -1) + self.init_spread * scale * noise.to(p.dtype)
            )
        params = torch.cat(rows, dim=1).requires_grad_(True)
        adam = torch.optim.Adam([params], lr=self.lr)
        target = problem.data.u.to(dtype=x0.dtype)
        return EnsembleState(
            x=params.detach().clone(),
            params=params,
            adam=adam,
            target=target,
            generator=gen,
        )

    def converged(self, problem: EnsembleRun, state: EnsembleState) -> bool:
        return state.steps >= self.iterations

    def _adam_phase(self, run: EnsembleRun, state: EnsembleState) -> bool:
        weights = run.template.weights
        refined = self._with_target(run, state.target)
        xg, tg = self._grid(run)
        for _ in range(self.adam_steps):
            state.adam.zero_grad()
            terms = self._residuals(run, state.params, xg, tg, refined)
            per_member = sum(
                weights[run.template.WEIGHT_OF[name]] * r.square().mean(-1)
                for name, r in terms.items()
            )
            loss = per_member.sum()  # type: ignore[union-attr]
            if not math.isfinite(float(loss.detach())):
                return False
            loss.backward()
            grad = state.params.grad
            if grad is None or not math.isfinite(float(grad.sum())):
                return False
            state.adam.step()
            state.loss = float(loss.detach()) / self.ensemble_size
            state.member_steps += self.ensemble_size
        return True

    def _observe(
        self, run: EnsembleRun, xr: torch.Tensor, tr: torch.Tensor
    ) -> Callable[[torch.Tensor], torch.Tensor]:
        data = run.data
        sensors = model_observer(
            self._module(run),
            data.x.to(run.x.dtype),
            data.t.to(run.x.dtype),
        )

        def observe(flat: torch.Tensor) -> torch.Tensor:
            # enkf_update calls this under no_grad; the residual needs the
            # input derivatives (never the parameters')
            with torch.enable_grad():
                terms = self._residuals(run, flat, xr, tr, run.problem)
            parts = [sensors(flat)]
            parts += [terms[k].detach() for k in sorted(terms) if k != "data"]
            return torch.cat(parts, dim=1)

        return observe

    def _kalman(self, run: EnsembleRun, state: EnsembleState) -> None:
        xg, tg = self._grid(run)
        pick = torch.randperm(xg.shape[0], generator=state.generator)
        pick = pick[: min(self.residual_points, xg.shape[0])]
        xr, tr = xg[pick], tg[pick]
        observe = self._observe(run, xr, tr)
        flat = state.params.detach()
        with torch.no_grad():
            sizes = {k: v.shape[1] for k, v in self._sizes(run, flat, xr, tr).items()}
        data = run.data
        std_d = self.data_std if self.data_std is not None else data.noise_std
        # ES-MDA: the same observations assimilated `iterations` times, each
        # with its covariance times `iterations` (sum of 1 / alpha_k = 1), so
        # the repeated updates do not count the data more than once
        mda = math.sqrt(self.iterations)
        y = [data.u.to(flat.dtype)]
        std = [torch.full_like(y[0], std_d)]
        for name in sorted(sizes):
            if name == "data":
                continue
            noise = self.residual_std if name == "pde" else self.boundary_std
            y.append(torch.zeros(sizes[name], dtype=flat.dtype))
            std.append(torch.full((sizes[name],), noise, dtype=flat.dtype))
        seed = int(torch.randint(2**62, (1,), generator=state.generator))
        # the analysis in float64 whatever the working dtype: the same
        # perturbations (torch draws differ between dtypes) and a k x k solve
        # that a float32 R of small noise would make inaccurate
        result = enkf_update(
            flat.double(),
            torch.cat(y).double(),
            lambda e: observe(e.to(flat.dtype)).double(),
            mda * torch.cat(std).double(),
            inflation=self.inflation,
            seed=seed,
        )
        with torch.no_grad():
            state.params.copy_(result.ensemble)
        state.spread_before = result.spread_before
        state.spread_after = result.spread_after
        if self.refine_data:
            m = data.u.shape[0]
            with torch.no_grad():
                analysis = result.ensemble.to(flat.dtype)
                state.target = observe(analysis)[:, :m].mean(0)

    def _sizes(
        self, run: EnsembleRun, flat: torch.Tensor, xr: torch.Tensor, tr: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        with torch.enable_grad():
            return self._residuals(run, flat[:2], xr, tr, run.problem)

    def _outputs_kalman(self, run: EnsembleRun, state: EnsembleState) -> None:
        """The analysis of the members' predictions at the sensors; its mean
        becomes the data term's target (the parameters do not move)."""
        data = run.data
        flat = state.params.detach()
        with torch.no_grad():
            forecast = _batched(self._module(run))(
                flat, data.x.to(flat.dtype), data.t.to(flat.dtype)
            )
        std = self.data_std if self.data_std is not None else data.noise_std
        seed = int(torch.randint(2**62, (1,), generator=state.generator))
        result = enkf_update(
            forecast.double(),
            data.u.double(),
            lambda e: e,
            std,
            inflation=self.inflation,
            seed=seed,
        )
        state.spread_before = result.spread_before
        state.spread_after = result.spread_after
        state.target = result.mean.to(flat.dtype)

    def step(self, problem: EnsembleRun, state: EnsembleState) -> EnsembleState:
        start = time.perf_counter()
        try:
            if self.update == "outputs" and state.steps > 0:
                # analysis of the previous phase's ensemble, then retrain on it
                self._outputs_kalman(problem, state)
            if not self._adam_phase(problem, state):
                state.status = Status.NONFINITE
                return state
            state.forecast = state.params.detach().clone()
            if self.update == "parameters":
                self._kalman(problem, state)
        except ValueError as err:
            if "non-finite" not in str(err):
                raise
            state.status = Status.NONFINITE
            return state
        state.steps += 1
        state.x = state.params.detach().clone()
        state.step_time = time.perf_counter() - start
        return state

    def _mean_error(self, run: EnsembleRun, flat: torch.Tensor | None) -> float:
        """Relative L2 of the ensemble's mean field (NaN without an ensemble)."""
        if flat is None:
            return math.nan
        fields = _batched(self._module(run))
        ex, et = run.problem.eval_grid(flat.dtype)
        tt, xx = torch.meshgrid(et, ex, indexing="ij")
        with torch.no_grad():
            mean_field = fields(flat, xx.reshape(-1), tt.reshape(-1)).mean(0)
        return run.problem.relative_l2(mean_field.reshape(tt.shape))

    def metrics(self, problem: EnsembleRun, state: EnsembleState) -> dict[str, float]:
        flat = state.params.detach()
        data = problem.data
        with torch.no_grad():
            pred = _batched(self._module(problem))(
                flat, data.x.to(flat.dtype), data.t.to(flat.dtype)
            ).mean(0)
        misfit = float((pred - data.u.to(flat.dtype)).square().mean().sqrt())
        return {
            "loss": state.loss,
            "relative_l2": self._mean_error(problem, flat),
            "relative_l2_forecast": self._mean_error(problem, state.forecast),
            "data_misfit": misfit,
            "spread_before": state.spread_before,
            "spread_after": state.spread_after,
            "step_time": state.step_time,
        }

    def stats(self, problem: EnsembleRun, state: EnsembleState) -> dict[str, float]:
        return {"member_steps": state.member_steps}


def ensemble_mean_field(
    models: Sequence[PINN], problem: PINNProblem, x: torch.Tensor, t: torch.Tensor
) -> torch.Tensor:
    """The mean of the members' fields on the grid ``x`` times ``t``.

    Examples
    --------
    >>> import torch
    >>> from itersolve.pde import PINN, BurgersProblem, ensemble_mean_field
    >>> models = [PINN(width=4, depth=1).double() for _ in range(3)]
    >>> x, t = BurgersProblem().eval_grid()
    >>> ensemble_mean_field(models, BurgersProblem(), x, t).shape
    torch.Size([100, 256])
    """
    if len(models) == 0:
        raise ValueError("models must not be empty")
    return torch.stack([m.predict(problem, x, t) for m in models]).mean(0)


def train_enkf_pinn(
    model: PINN,
    problem: PINNProblem,
    method: EnsembleKalmanPINN | None = None,
    *,
    collocation: tuple[Any, Any] | None = None,
    seed: int = 0,
    dtype: torch.dtype | None = None,
    callback: Callback | None = None,
    record: bool | int = False,
    throw: bool = False,
) -> Solution:
    """Train an ensemble of PINNs by iterated ensemble Kalman updates (iPINNER).

    Parameters
    ----------
    model
        The template :class:`PINN` (architecture and centre of the initial
        ensemble; not changed).
    problem
        A :class:`PINNProblem` with noisy :class:`SensorData` in
        ``observations`` (e.g. ``BurgersProblem().with_noisy_data(100)``).
    method
        :class:`EnsembleKalmanPINN` (``None``: its defaults, ``E = 20``).
    collocation, dtype
        As in :func:`train_pinn`: the axes of the collocation tensor grid
        (their kind and dtype are the answer's) or the problem's seeded grid.
    seed
        Seeds the collocation grid, the initial ensemble, the residual
        subsets and the Kalman perturbations.
    callback, record, throw
        As in every front door. Trace columns per iteration: ``loss`` (mean
        member loss at the last Adam step), ``relative_l2`` of the ensemble
        mean field vs the reference, ``data_misfit`` (RMS of the mean
        prediction minus the noisy data), ``spread_before`` /
        ``spread_after`` of the Kalman step, ``step_time``.

    Returns
    -------
    Solution
        ``x``: the ``(E, d)`` ensemble of flat parameter vectors;
        ``extras["models"]``: the ``E`` trained copies of ``model``;
        ``extras["relative_l2"]``: the error of their mean field;
        ``stats["member_steps"]``: gradient steps summed over members.

    Examples
    --------
    >>> import torch
    >>> from itersolve.pde import (
    ...     PINN, BurgersProblem, EnsembleKalmanPINN, train_enkf_pinn)
    >>> _ = torch.manual_seed(0)
    >>> problem = BurgersProblem(n_x=16, n_t=4, eval_x=32, eval_t=8)
    >>> problem = problem.with_noisy_data(20, noise=0.1, seed=0)
    >>> method = EnsembleKalmanPINN(ensemble_size=4, iterations=2, adam_steps=5)
    >>> sol = train_enkf_pinn(PINN(width=8, depth=2), problem, method, seed=0)
    >>> sol.success, tuple(sol.x.shape), sol.stats["member_steps"]
    (True, (4, 113), 40)
    """
    if not isinstance(model, PINN):
        raise TypeError(f"model must be a PINN, got {type(model).__name__}")
    model.check_problem(problem)
    data = getattr(problem, "observations", None)
    if not isinstance(data, SensorData):
        raise ValueError(
            "problem must carry noisy observations (a SensorData, e.g. "
            "BurgersProblem().with_noisy_data(100)), got observations="
            f"{data!r}"
        )
    method = EnsembleKalmanPINN() if method is None else method
    check_method(method, "EnsembleKalmanPINN()")
    if not isinstance(method, EnsembleKalmanPINN):
        raise TypeError(
            f"method must be an EnsembleKalmanPINN, got {type(method).__name__}"
        )
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an int, got {seed!r}")
    if method.data_std is None and not data.noise_std > 0:
        raise ValueError(
            "observations.noise_std is 0: give EnsembleKalmanPINN(data_std=...)"
        )
    x, t, info = collocation_grid(model, problem, collocation, seed, dtype)
    template = copy.deepcopy(model).to(dtype=x.dtype, device=x.device)
    run = EnsembleRun(template, problem, x, t, data, seed)
    x0 = parameters_to_vector(template.parameters()).detach()
    x0 = x0.expand(method.ensemble_size, -1).clone()
    solution = solve(
        method,
        run,
        x0,
        output=info,
        callback=callback,
        record=record,
        throw=throw,
        check_finite=(x, t),
    )
    if solution.status is not Status.NONFINITE_INPUT:
        flat = torch.as_tensor(solution.x, dtype=x.dtype, device=x.device)
        models = [copy.deepcopy(template) for _ in range(method.ensemble_size)]
        load_ensemble(models, flat)
        solution.extras["models"] = models
        ex, et = problem.eval_grid(x.dtype)
        mean = ensemble_mean_field(models, problem, ex, et)
        solution.extras["relative_l2"] = problem.relative_l2(mean)
    return solution


# -- NSGA-III architecture search ------------------------------------------------


@dataclass(frozen=True)
class ArchitectureSearch:
    """Outcome of :func:`ipinner_search`.

    Attributes
    ----------
    pareto
        Non-dominated ``(depth, width)`` architectures of the final population.
    objectives
        ``(len(pareto), 3)`` array: data misfit (mean square), physics loss
        (PDE + initial + boundary mean squares) after the short training, and
        the parameter count.
    evaluated
        Every architecture trained during the search and its objectives.
    best
        The Pareto member with the smallest sum of data misfit and physics
        loss, each divided by its smallest value on the front.

    Examples
    --------
    >>> import numpy as np
    >>> s = ArchitectureSearch([(2, 8)], np.ones((1, 3)), {(2, 8): (1, 1, 1)}, (2, 8))
    >>> s.best
    (2, 8)
    """

    pareto: list[tuple[int, int]]
    objectives: np.ndarray
    evaluated: dict[tuple[int, int], tuple[float, float, float]]
    best: tuple[int, int]


def ipinner_search(
    problem: PINNProblem,
    *,
    depths: Sequence[int] = (1, 2, 3, 4),
    widths: Sequence[int] = (8, 12, 16, 20, 24, 32, 40),
    population: int = 8,
    generations: int = 3,
    adam_steps: int = 100,
    lr: float = 1e-3,
    seed: int = 0,
) -> ArchitectureSearch:
    """NSGA-III (pymoo) over PINN architectures: data misfit, physics loss, size.

    Each candidate ``(depth, width)`` is a :class:`PINN` trained for
    ``adam_steps`` Adam steps (:func:`train_pinn`, seeded) on ``problem``,
    which must carry observations; its objectives are the final data
    misfit, the physics loss (PDE + initial + boundary terms) and the
    parameter count, minimised jointly by pymoo's ``NSGA3`` (Das--Dennis
    reference directions, 3 objectives, integer variables by rounding). The
    objective the abstract of iPINNER names; the population, generations
    and training budget are ours (small).

    Parameters
    ----------
    problem
        A :class:`PINNProblem` with :class:`SensorData`.
    depths, widths
        The candidate hidden-layer counts and widths.
    population, generations
        NSGA-III population size (>= 3) and number of generations.
    adam_steps, lr
        Training of each candidate.
    seed
        Seeds NSGA-III, the networks' initial weights and the collocation.

    Returns
    -------
    ArchitectureSearch

    Examples
    --------
    >>> from itersolve.pde import BurgersProblem, ipinner_search
    >>> problem = BurgersProblem(n_x=8, n_t=3, eval_x=16, eval_t=4)
    >>> problem = problem.with_noisy_data(10, seed=0)
    >>> s = ipinner_search(problem, depths=(1, 2), widths=(4, 8),
    ...                    population=4, generations=2, adam_steps=3)
    >>> s.best in s.pareto and s.objectives.shape[1]
    3
    """
    from pymoo.algorithms.moo.nsga3 import NSGA3
    from pymoo.core.problem import ElementwiseProblem
    from pymoo.operators.crossover.sbx import SBX
    from pymoo.operators.mutation.pm import PM
    from pymoo.operators.repair.rounding import RoundingRepair
    from pymoo.operators.sampling.rnd import IntegerRandomSampling
    from pymoo.optimize import minimize as pymoo_minimize
    from pymoo.util.ref_dirs import get_reference_directions

    if not isinstance(getattr(problem, "observations", None), SensorData):
        raise ValueError("problem must carry observations (a SensorData)")
    for name, choices in (("depths", depths), ("widths", widths)):
        if len(choices) == 0:
            raise ValueError(f"{name} must not be empty")
        for v in choices:
            _count(v, name[:-1], 1)
    _count(population, "population", 3)
    _count(generations, "generations", 1)
    _count(adam_steps, "adam_steps", 1)
    _positive(lr, "lr")
    evaluated: dict[tuple[int, int], tuple[float, float, float]] = {}

    def objectives(depth: int, width: int) -> tuple[float, float, float]:
        key = (depth, width)
        if key not in evaluated:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                model = PINN(width=width, depth=depth).double()
            sol = train_pinn(
                model,
                problem,
                AdamThenLBFGS(adam_steps=adam_steps, lr=lr),
                seed=seed,
                record=adam_steps,
            )
            last = {k: v[-1] for k, v in sol.trace.as_dict().items()}  # type: ignore[union-attr]
            physics = sum(
                float(last.get(f"loss_{k}", 0.0)) for k in ("pde", "ic", "bc")
            )
            size = sum(p.numel() for p in model.parameters())
            value = (float(last["loss_data"]), physics, float(size))
            evaluated[key] = tuple(v if math.isfinite(v) else 1e30 for v in value)  # type: ignore[assignment]
        return evaluated[key]

    class _Search(ElementwiseProblem):
        def __init__(self) -> None:
            super().__init__(
                n_var=2,
                n_obj=3,
                xl=[0, 0],
                xu=[len(depths) - 1, len(widths) - 1],
                vtype=int,
            )

        def _evaluate(self, z: Any, out: dict[str, Any], *args: Any, **kw: Any) -> None:
            out["F"] = list(objectives(depths[int(z[0])], widths[int(z[1])]))

    # the most Das--Dennis directions the population covers ((p+1)(p+2)/2 of
    # them for p partitions): pymoo warns when there are more than members
    partitions = 1
    while (partitions + 2) * (partitions + 3) // 2 <= population:
        partitions += 1
    ref_dirs = get_reference_directions("das-dennis", 3, n_partitions=partitions)
    algorithm = NSGA3(
        ref_dirs=ref_dirs,
        pop_size=population,
        sampling=IntegerRandomSampling(),
        crossover=SBX(prob=0.9, eta=3.0, vtype=float, repair=RoundingRepair()),
        mutation=PM(eta=3.0, vtype=float, repair=RoundingRepair()),
        eliminate_duplicates=True,
    )
    result = pymoo_minimize(
        _Search(), algorithm, ("n_gen", generations), seed=seed, verbose=False
    )
    front = np.atleast_2d(np.asarray(result.X, dtype=int))
    pareto = [(depths[int(z[0])], widths[int(z[1])]) for z in front]
    pareto = list(dict.fromkeys(pareto))
    values = np.array([evaluated[a] for a in pareto], dtype=float)
    scaled = values[:, :2] / np.maximum(values[:, :2].min(0), 1e-300)
    best = pareto[int(np.argmin(scaled.sum(1)))]
    return ArchitectureSearch(pareto, values, dict(evaluated), best)
