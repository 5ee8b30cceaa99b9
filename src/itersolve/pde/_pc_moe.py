"""Physics-constrained basis networks: PI-SC, PI-HC and PI-HC-MoE.

Chalapathi, Du & Krishnapriyan (ICLR 2024). A backbone network maps the
space-time grid to ``n_basis`` basis functions ``psi_b(t, x)``; the output is
``u = sum_b w_b psi_b``. The three variants differ only in how ``w`` is found:

* ``constraint="soft"`` (PI-SC): ``w`` is a trained parameter and the PDE,
  initial and boundary residuals are the loss (a penalty);
* ``constraint="hard"``, ``experts=1`` (PI-HC): ``w*`` solves the
  constraint ``F(u) = 0`` on the whole grid in the least-squares sense per
  forward pass (:class:`~itersolve.pde.HardConstraintLayer`, batched
  Levenberg–Marquardt, implicit-function backward);
* ``constraint="hard"``, ``experts=K`` or ``(n_t, n_x)`` (PI-HC-MoE): each
  block of a fixed split of the grid (:func:`~itersolve.pde.partition_domain`)
  solves its own ``w*_k`` from the PDE rows at its block's nodes plus the
  whole domain's initial and boundary rows; the prediction on a block is
  that expert's ``sum_b w_kb psi_b`` (no overlap, no blending, no interface
  condition). This is the reference code's construction
  (``neptune/models/MoE/spatial_temporal_router.py``: the PDE residual terms
  are finite differences of the basis on the whole grid, then split by
  block; for diffusion–sorption the initial-condition and boundary terms
  are computed on the whole grid and replicated to every expert). The
  stencil of a node at a block edge reaches one node outside; that value
  is the expert's own combination there (the basis is global), as in the
  reference. The experts are the samples of one batched solve of a
  :class:`~itersolve.pde.HardConstraintLayer` (each stops on its own rule).
  (The layer's built-in ``experts=`` sees only its block: an interior
  block then has no boundary rows and its edge nodes no PDE rows.)

Training (:func:`train_constrained`) minimises the same loss for all three:
the mean square of the whole-grid PDE, initial and boundary rows of
:meth:`DiffusionSorptionProblem.residual` (weights 1, as in the reference
configuration) with Adam, through the shared driver.
"""

from __future__ import annotations

import copy
import math
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.utils import parameters_to_vector, vector_to_parameters

from itersolve._core.errors import ConvergenceWarning
from itersolve._core.frontdoor import solve
from itersolve._core.iterate import Callback, IterativeMethod
from itersolve._core.solution import Solution, Status
from itersolve._core.tensors import ArrayInfo, Kind
from itersolve.optimize import LeastSquaresMethod, LevenbergMarquardt
from itersolve.pde._diffusion_sorption import DiffusionSorptionProblem
from itersolve.pde._hard_constraint import (
    HardConstraintInfo,
    HardConstraintLayer,
    partition_domain,
)

Tensor = torch.Tensor

_CONSTRAINTS = ("soft", "hard")


def _count(value: Any, name: str, least: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise ValueError(f"{name} must be an int >= {least}, got {value!r}")
    return value


def _seeded(seed: int) -> torch.Generator:
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an int, got {seed!r}")
    return torch.Generator().manual_seed(seed)


def _halo(block: tuple[slice, ...], shape: tuple[int, int]) -> tuple[slice, slice]:
    """The block grown by the stencil's reach: one time level back, one column
    on each side in ``x`` (clipped to the grid)."""
    (i0, i1, _), (j0, j1, _) = block[0].indices(shape[0]), block[1].indices(shape[1])
    return slice(max(i0 - 1, 0), i1), slice(max(j0 - 1, 0), min(j1 + 1, shape[1]))


@dataclass(frozen=True)
class _Experts:
    """The experts' constraint nodes as one batch: expert ``k`` is sample
    ``k`` of the least-squares solve, so one batched Levenberg–Marquardt
    serves all of them (the reference runs them in parallel by ``vmap``),
    each stopping on its own rule.

    Expert ``k``'s nodes, flattened into one axis of length ``M`` (the
    layer's grid): its halo (zero-padded to the largest halo's shape), then
    the whole ``t = 0`` row, the whole ``x = 0`` column and the last three
    columns for ``t > 0``. As in the reference (``SpatialTemporalMoE``), the
    PDE rows are the expert's own block's and the initial and boundary rows
    are the whole domain's, replicated to every expert.
    """

    problem: DiffusionSorptionProblem
    halos: tuple[tuple[slice, slice], ...]

    @property
    def padded(self) -> tuple[int, int]:
        return (
            max(h[0].stop - h[0].start for h in self.halos),
            max(h[1].stop - h[1].start for h in self.halos),
        )

    def index(self) -> Tensor:
        """``(K, M)`` indices of each expert's nodes into the flattened grid
        (padding points at node 0; no row reads it)."""
        n_t, n_x = self.problem.shape
        grid = torch.arange(n_t * n_x).reshape(n_t, n_x)
        shared = torch.cat((grid[0], grid[1:, 0], grid[1:, n_x - 3 :].reshape(-1)))
        out = []
        for ts, xs in self.halos:
            halo = torch.zeros(self.padded, dtype=torch.long)
            halo[: ts.stop - ts.start, : xs.stop - xs.start] = grid[ts, xs]
            out.append(torch.cat((halo.reshape(-1), shared)))
        return torch.stack(out)

    def stack(self, psi: Tensor) -> Tensor:
        """``(K, M, n_basis)`` from the global ``psi`` ``(1, n_t, n_x,
        n_basis)``."""
        return psi[0].reshape(-1, psi.shape[-1])[self.index()]

    def halo_values(self, u: Tensor, k: int) -> Tensor:
        """Expert ``k``'s ``u`` ``(B, M)`` on its halo, ``(B, *halo_shape)``."""
        ts, xs = self.halos[k]
        pt, px = self.padded
        grid = u[:, : pt * px].reshape(-1, pt, px)
        return grid[:, : ts.stop - ts.start, : xs.stop - xs.start]

    def valid(self) -> Tensor:
        """``(K, (pt - 1)(px - 2))``: 1 where a Crank–Nicolson row of the
        padded halo is one of the expert's own (its stencil inside the true
        halo), else 0."""
        pt, px = self.padded
        out = torch.zeros(len(self.halos), pt - 1, px - 2, dtype=torch.float64)
        for k, (ts, xs) in enumerate(self.halos):
            out[k, : ts.stop - ts.start - 1, : xs.stop - xs.start - 2] = 1.0
        return out.reshape(len(self.halos), -1)

    def rows(self, u: Tensor, k: int | None = None) -> Tensor:
        """The experts' rows from their node values ``u`` ``(K, M)`` (or
        expert ``k``'s from ``(1, M)``): the Crank–Nicolson rows at each
        block's nodes (the stencil's reach into the halo reads the expert's
        own combination of the global basis; the padding's rows are zero),
        then the whole domain's initial, inflow and outflow rows."""
        problem = self.problem
        n_t, n_x = problem.shape
        pt, px = self.padded
        valid = self.valid().to(u.dtype)
        valid = valid if k is None else valid[k : k + 1]
        pde = problem.pde_rows(u[:, : pt * px].reshape(-1, pt, px)) * valid
        shared = u[:, pt * px :]
        end = shared[:, n_x + n_t - 1 :].reshape(-1, n_t - 1, 3)
        return torch.cat(
            (
                pde,
                problem.initial_rows(shared[:, :n_x]),
                problem.inflow_rows(shared[:, n_x : n_x + n_t - 1]),
                problem.outflow_rows(end),
            ),
            dim=1,
        )

    def __call__(self, u: Tensor, block: tuple[slice, ...]) -> Tensor:
        """Every expert's :meth:`rows` (sample ``k`` is expert ``k``)."""
        return self.rows(u)

    def assemble(self, u: Tensor, blocks: Sequence[tuple[slice, ...]]) -> Tensor:
        """The prediction ``(1, n_t, n_x)``: each expert's ``u`` ``(K, M)``
        on its own block (no overlap, no blending)."""
        out = u.new_empty((1, *self.problem.shape))
        for k, (block, halo) in enumerate(zip(blocks, self.halos, strict=True)):
            inner = tuple(
                slice(b.start - h.start, b.stop - h.start)
                for b, h in zip(block, halo, strict=True)
            )
            out[(slice(None), *block)] = self.halo_values(u[k : k + 1], k)[
                (slice(None), *inner)
            ]
        return out


class ConstrainedBasisModel(nn.Module):
    """A basis network whose coefficients are trained (soft) or solved per
    expert so that the PDE residual vanishes (hard, with experts).

    The backbone is an MLP of ``(2 t / t_final - 1, 2 x - 1)`` with ``depth``
    hidden ``tanh`` layers of ``width`` emitting ``n_basis`` functions on the
    problem's ``n_t x n_x`` grid (the spec's per-sample MLP backbone; the
    paper uses an FNO over a distribution of initial conditions). Float64
    throughout (the implicit gradient needs a converged solve).

    Compare with the reference stack's ``neptune`` models (JAX; optimistix
    Levenberg–Marquardt with implicit differentiation).

    Parameters
    ----------
    problem
        The :class:`DiffusionSorptionProblem` whose residual is the constraint.
    constraint
        ``"hard"`` (PI-HC / PI-HC-MoE) or ``"soft"`` (PI-SC).
    experts
        Hard constraint only: ``1``, ``K`` (``K`` blocks in ``x``) or
        ``(n_t_blocks, n_x_blocks)``.
    n_basis, width, depth
        Basis functions (16 in the paper's diffusion–sorption setting), MLP
        width and hidden layers.
    method
        The least-squares method of each expert (``None``:
        ``LevenbergMarquardt(rtol=1e-6)``: the gradient rule
        ``||J^T F|| <= 1e-6 ||J_0^T F_0||``; the reference configuration's
        ``1e-4`` on optimistix's step rule left the single-expert model at
        a relative error of 1.6e-2 after 40 steps on the 32 x 32 grid, against
        3.0e-3 with ``1e-6``).
    ridge
        Ridge of the implicit backward's Hessian solve.
    seed
        Seeds the initial weights (and the soft coefficients).
    throw
        Raise :class:`~itersolve.ConvergenceError` when an expert's solve
        fails instead of warning (the failure is in :attr:`info` either way).

    Examples
    --------
    >>> from itersolve.pde import ConstrainedBasisModel, DiffusionSorptionProblem
    >>> problem = DiffusionSorptionProblem(n_t=6, n_x=8)
    >>> model = ConstrainedBasisModel(problem, experts=2, n_basis=4, width=8)
    >>> u = model()
    >>> u.shape, [row[0] for row in model.info.status]
    (torch.Size([1, 6, 8]), ['SUCCESS', 'SUCCESS'])
    """

    def __init__(
        self,
        problem: DiffusionSorptionProblem,
        *,
        constraint: str = "hard",
        experts: int | Sequence[int] = 1,
        n_basis: int = 16,
        width: int = 32,
        depth: int = 3,
        method: LeastSquaresMethod | None = None,
        ridge: float = 0.0,
        seed: int = 0,
        throw: bool = False,
    ) -> None:
        super().__init__()
        if not isinstance(problem, DiffusionSorptionProblem):
            raise TypeError(
                "problem must be a DiffusionSorptionProblem, got "
                f"{type(problem).__name__}"
            )
        if constraint not in _CONSTRAINTS:
            raise ValueError(f"constraint must be 'hard' or 'soft', got {constraint!r}")
        if constraint == "soft" and experts != 1:
            raise ValueError(
                f"experts applies to the hard constraint only, got {experts!r} with "
                "constraint='soft'"
            )
        _count(n_basis, "n_basis")
        _count(width, "width")
        _count(depth, "depth")
        generator = _seeded(seed)
        self.problem = problem
        self.constraint = constraint
        self.experts = experts
        self.n_basis = n_basis
        layers: list[nn.Module] = [nn.Linear(2, width), nn.Tanh()]
        for _ in range(depth - 1):
            layers += [nn.Linear(width, width), nn.Tanh()]
        layers.append(nn.Linear(width, n_basis))
        self.backbone = nn.Sequential(*layers).double()
        with torch.no_grad():
            for p in self.backbone.parameters():
                # the default initialisation's bounds, drawn from the seed
                bound = 1 / math.sqrt(p.shape[-1] if p.ndim == 2 else width)
                p.uniform_(-bound, bound, generator=generator)
        self.blocks: list[tuple[slice, ...]] = []
        self.layer: HardConstraintLayer | None = None
        self.coefficients: nn.Parameter | None = None
        method = LevenbergMarquardt(rtol=1e-6) if method is None else method
        if constraint == "hard":
            self.blocks = partition_domain(problem.shape, experts)
            halos = tuple(_halo(block, problem.shape) for block in self.blocks)
            if min(h[1].stop - h[1].start for h in halos) < 3:
                raise ValueError(
                    f"experts {experts!r} leave a block of fewer than 3 columns "
                    f"on the grid {problem.shape}"
                )
            self._experts = _Experts(problem, halos)
            self.layer = HardConstraintLayer(
                self._experts, n_basis, method=method, ridge=ridge, throw=throw
            )
        else:
            w = torch.randn(n_basis, dtype=torch.float64, generator=generator)
            self.coefficients = nn.Parameter(w / math.sqrt(n_basis))

    @property
    def info(self) -> HardConstraintInfo:
        """What the last forward pass's solve did, one row per expert:
        ``status[k] == [name]``, ``converged`` and (after a backward pass)
        ``fallback`` of shape ``(experts, 1)``; ``solutions`` holds the one
        batched least-squares Solution (``x[k]`` is expert ``k``'s ``w*``).
        Empty when soft."""
        merged = HardConstraintInfo()
        if self.layer is None or not self.layer.info.status:
            return merged
        info = self.layer.info
        merged.solutions = list(info.solutions)
        merged.status = [[name] for name in info.status[0]]
        merged.converged = torch.tensor(
            [[name == Status.SUCCESS.name] for name in info.status[0]]
        )
        if info.fallback is not None:
            merged.fallback = info.fallback[0][:, None]
        return merged

    @property
    def expert_nodes(self) -> _Experts:
        """The experts' nodes and rows: ``stack(psi)`` ``(K, M, n_basis)``,
        ``rows(u, k)`` expert ``k``'s constraint rows from its node values
        ``u`` ``(1, M)``, ``assemble(u, blocks)`` the prediction (hard
        constraint only)."""
        if self.layer is None:
            raise ValueError("expert_nodes: the soft-constraint model has no experts")
        return self._experts

    @property
    def halos(self) -> tuple[tuple[slice, slice], ...]:
        """Each expert's block grown by the stencil's reach (one time level
        back, one column each side in ``x``, clipped): the nodes its rows
        read (empty when soft)."""
        return self._experts.halos if self.layer is not None else ()

    def grid_points(self) -> Tensor:
        """The problem's grid as collocation points ``(n_t, n_x, 2)`` of
        ``(t, x)``."""
        t, x = self.problem.axes()
        tt, xx = torch.meshgrid(t, x, indexing="ij")
        return torch.stack((tt, xx), dim=-1)

    def basis(self, points: Tensor | None = None) -> Tensor:
        """``psi`` of shape ``(1, n_t, n_x, n_basis)`` at the grid points."""
        problem = self.problem
        if points is None:
            points = self.grid_points()
        want = (problem.n_t, problem.n_x, 2)
        if not isinstance(points, Tensor) or tuple(points.shape) != want:
            shape = (
                tuple(points.shape)
                if isinstance(points, Tensor)
                else type(points).__name__
            )
            raise ValueError(
                f"points must be the (t, x) grid of shape {want} (the residual's "
                f"finite differences live on it), got {shape}"
            )
        scaled = torch.stack(
            (2 * points[..., 0] / problem.t_final - 1, 2 * points[..., 1] - 1), -1
        )
        return self.backbone(scaled.to(torch.float64))[None]

    def forward(self, points: Tensor | None = None) -> Tensor:
        """``u`` of shape ``(1, n_t, n_x)``."""
        psi = self.basis(points)
        if self.coefficients is not None:
            return psi @ self.coefficients
        assert self.layer is not None
        return self._experts.assemble(self.layer(self._experts.stack(psi)), self.blocks)

    def losses(self, u: Tensor) -> dict[str, Tensor]:
        """The mean square of each kind of whole-grid residual row of ``u``
        and their sum ``"loss"`` (weights 1)."""
        parts = self.problem.residual_parts(u)
        out = {name: rows.square().mean() for name, rows in parts.items()}
        out["loss"] = out["pde"] + out["initial"] + out["boundary"]
        return out


def relative_error(u: Any, reference: Any) -> float:
    """``||u - u_ref||_2 / ||u_ref||_2`` over the grid, in float64.

    Parameters
    ----------
    u, reference
        Arrays (or tensors) of the same number of entries; ``u`` is reshaped
        to the reference's shape.

    Examples
    --------
    >>> round(relative_error([1.0, 2.0], [1.0, 1.0]), 12)
    0.707106781187
    """
    a = np.asarray(u.detach() if isinstance(u, Tensor) else u, dtype=np.float64)
    b = np.asarray(reference, dtype=np.float64)
    a = a.reshape(b.shape) if a.size == b.size else a
    if a.shape != b.shape:
        raise ValueError(
            f"u has shape {a.shape}, the reference has shape {b.shape}; they must match"
        )
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


@dataclass(frozen=True)
class _Run:
    model: ConstrainedBasisModel
    reference: np.ndarray | None


@dataclass
class _State:
    x: Tensor
    adam: torch.optim.Adam
    steps: int = 0
    losses: dict[str, float] = field(default_factory=dict)
    relative_l2: float = math.nan
    step_time: float = math.nan
    failed_solves: int = 0
    status: Status | None = None


@dataclass(frozen=True, kw_only=True)
class _AdamSteps(IterativeMethod):
    """``steps`` Adam steps at ``lr`` on the model's loss; the loss, its terms,
    the error vs the reference at the step's starting point and the hard
    layer's failed solves go into the trace."""

    steps: int
    lr: float

    def default_max_steps(self, problem: Any) -> int:
        return self.steps

    def default_stall_window(self, problem: Any) -> int | None:
        return None

    def init(self, problem: _Run, x0: Tensor) -> _State:
        adam = torch.optim.Adam(problem.model.parameters(), lr=self.lr)
        return _State(x=x0.clone(), adam=adam)

    def converged(self, problem: _Run, state: _State) -> bool:
        return state.steps >= self.steps

    def step(self, problem: _Run, state: _State) -> _State:
        start = time.perf_counter()
        model = problem.model
        state.adam.zero_grad()
        with warnings.catch_warnings():
            # counted in stats["failed_solves"] and kept in model.info instead
            # of one warning per step
            warnings.simplefilter("ignore", ConvergenceWarning)
            u = model()
        state.failed_solves += (
            int((~model.info.converged).sum())
            if (model.info.converged is not None)
            else 0
        )
        terms = model.losses(u)
        loss = terms["loss"]
        if not math.isfinite(float(loss.detach())):
            state.status = Status.NONFINITE
            return state
        loss.backward()
        state.adam.step()
        state.steps += 1
        state.x = parameters_to_vector(model.parameters()).detach().clone()
        state.step_time = time.perf_counter() - start
        state.losses = {k: float(v.detach()) for k, v in terms.items()}
        if problem.reference is not None:
            state.relative_l2 = relative_error(u[0], problem.reference)
        return state

    def metrics(self, problem: _Run, state: _State) -> dict[str, float]:
        out = {k if k == "loss" else f"loss_{k}": v for k, v in state.losses.items()}
        out["relative_l2"] = state.relative_l2
        out["step_time"] = state.step_time
        out["failed_solves"] = float(state.failed_solves)
        return out

    def stats(self, problem: _Run, state: _State) -> dict[str, float]:
        return {"failed_solves": state.failed_solves}


def train_constrained(
    model: ConstrainedBasisModel,
    *,
    steps: int = 500,
    lr: float = 1e-3,
    reference: Any = None,
    callback: Callback | None = None,
    record: bool | int = False,
    throw: bool = False,
) -> Solution:
    """Train a :class:`ConstrainedBasisModel` by Adam on its residual loss.

    The model is copied (the argument is never changed); its seeded initial
    weights make the run reproducible (the constraint points are the fixed
    grid, so nothing else is random).

    Parameters
    ----------
    model
        Soft, hard or hard-with-experts model.
    steps, lr
        Adam steps and learning rate (the paper: ``lr = 1e-3``).
    reference
        Optional ``(n_t, n_x)`` reference solution: the trace gets the
        relative L2 error at each recorded step, ``extras`` the final one.
    callback, record, throw
        As in every front door; trace columns ``loss``, ``loss_pde``,
        ``loss_initial``, ``loss_boundary``, ``relative_l2`` (at the step's
        starting parameters), ``step_time`` and ``failed_solves`` (expert
        solves so far that did not end ``SUCCESS``).

    Returns
    -------
    Solution
        ``x``: the trained parameters as one flat vector; ``extras["model"]``
        the trained copy, ``extras["u"]`` its output ``(n_t, n_x)``,
        ``extras["relative_l2"]`` (with a reference); ``stats["time"]`` the
        seconds spent in the training steps, ``stats["failed_solves"]``.

    Examples
    --------
    >>> from itersolve.pde import (
    ...     ConstrainedBasisModel, DiffusionSorptionProblem, train_constrained)
    >>> problem = DiffusionSorptionProblem(n_t=6, n_x=8)
    >>> model = ConstrainedBasisModel(problem, constraint="soft", width=8)
    >>> sol = train_constrained(model, steps=5, record=True)
    >>> loss = sol.trace["loss"]
    >>> sol.success, sol.num_steps, bool(loss[-1] < loss[0])
    (True, 5, True)
    """
    if not isinstance(model, ConstrainedBasisModel):
        raise TypeError(
            f"model must be a ConstrainedBasisModel, got {type(model).__name__}"
        )
    _count(steps, "steps")
    if (
        isinstance(lr, bool)
        or not isinstance(lr, int | float)
        or not (lr > 0 and math.isfinite(lr))
    ):
        raise ValueError(f"lr must be finite and > 0, got {lr!r}")
    ref = None
    if reference is not None:
        ref = np.asarray(reference, dtype=np.float64)
        if ref.shape != model.problem.shape:
            raise ValueError(
                f"reference must have shape {model.problem.shape}, got {ref.shape}"
            )
    trained = copy.deepcopy(model)
    x0 = parameters_to_vector(trained.parameters()).detach().clone()
    solution = solve(
        _AdamSteps(steps=steps, lr=float(lr)),
        _Run(trained, ref),
        x0,
        output=ArrayInfo(Kind.TORCH, torch.float64, x0.device),
        callback=callback,
        record=record,
        throw=throw,
    )
    vector_to_parameters(torch.as_tensor(solution.x), trained.parameters())
    solution.extras["model"] = trained
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        with torch.no_grad():
            u = trained()[0]
    solution.extras["u"] = u
    if ref is not None:
        solution.extras["relative_l2"] = relative_error(u, ref)
    return solution
