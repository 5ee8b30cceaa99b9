"""Physics-informed graph neural Galerkin networks (Gao, Zahr & Wang 2022)."""

from __future__ import annotations

import copy
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.utils import parameters_to_vector, vector_to_parameters

from itersolve._core.frontdoor import solve
from itersolve._core.iterate import Callback
from itersolve._core.solution import Solution
from itersolve._core.tensors import ArrayInfo, Kind, as_tensor
from itersolve.nn._chebconv import ChebConv
from itersolve.pde._fe_residual import LOSSES, FEResidual
from itersolve.pde.pinn._train import AdamThenLBFGS

ACTIVATIONS = {"tanh": torch.tanh, "relu": torch.relu, "silu": nn.functional.silu}
OBSERVATION_MODES = ("penalty", "hard")


def mesh_graph(basis: Any) -> torch.Tensor:
    """Edges between every two dofs that share an element, both directions.

    The graph of a graph Galerkin network: one node per degree of freedom of
    the scikit-fem ``basis`` (P2 edge nodes included), no self loops.

    Examples
    --------
    >>> from skfem import Basis, ElementTriP1, MeshTri
    >>> mesh_graph(Basis(MeshTri(), ElementTriP1())).shape  # 4 nodes, 5 edges
    torch.Size([2, 10])
    """
    element_dofs = np.asarray(basis.element_dofs)
    per = element_dofs.shape[0]
    source = np.repeat(element_dofs, per, axis=0).ravel()
    target = np.tile(element_dofs, (per, 1)).ravel()
    pairs = np.unique(np.stack([source, target]), axis=1)
    return torch.from_numpy(pairs[:, pairs[0] != pairs[1]].astype(np.int64))


def node_features(
    basis: Any, residual: FEResidual | None = None, *, source: Any = None
) -> torch.Tensor:
    """Node features ``(N, F)``, float64: the dof coordinates, then a 0/1
    Dirichlet flag when ``residual`` is given, then ``source`` (one value per
    dof) when given.

    Examples
    --------
    >>> from skfem import Basis, ElementTriP2, MeshTri
    >>> node_features(Basis(MeshTri(), ElementTriP2())).shape
    torch.Size([9, 2])
    """
    columns = [torch.as_tensor(np.asarray(basis.doflocs).T, dtype=torch.float64)]
    n = columns[0].shape[0]
    if residual is not None:
        if residual.n_dofs != n:
            raise ValueError(
                f"residual has {residual.n_dofs} dofs, the basis {n}; they must match"
            )
        flag = torch.zeros(n, 1, dtype=torch.float64)
        flag[residual.dirichlet_dofs] = 1.0
        columns.append(flag)
    if source is not None:
        values = torch.as_tensor(np.asarray(source, dtype=np.float64))
        if values.shape != (n,):
            raise ValueError(
                f"source must have shape ({n},), got {tuple(values.shape)}"
            )
        columns.append(values[:, None])
    return torch.cat(columns, 1)


class GraphGalerkinNet(nn.Module):
    """A stack of :class:`~itersolve.nn.ChebConv` layers per field on the
    mesh graph: node features in, nodal dof values out.

    Layer ``i`` maps ``channels[i]`` to ``channels[i + 1]`` features with a
    ``K``-term Chebyshev filter, followed by ``activation`` except after the
    last; ``n_fields`` parallel stacks (u, v, p for Navier--Stokes), each with
    ``channels[-1] == 1``. The paper's network is the default: 8 layers,
    ``K = 10``, ``2 -> 32 -> 64 -> 128 -> 256 -> 128 -> 64 -> 32 -> 1``.
    Reference: Gao, Zahr & Wang, "Physics-informed graph neural Galerkin
    networks", CMAME 390 (2022) 114502.

    Parameters
    ----------
    channels
        Feature sizes, first = number of node features, last = 1.
    K
        Chebyshev terms per layer.
    n_fields
        Number of output fields.
    activation
        ``"tanh"``, ``"relu"`` or ``"silu"``.

    Examples
    --------
    >>> import torch
    >>> from skfem import Basis, ElementTriP2, MeshTri
    >>> from itersolve.nn import chebyshev_laplacian
    >>> basis = Basis(MeshTri().refined(1), ElementTriP2())
    >>> _ = torch.manual_seed(0)
    >>> net = GraphGalerkinNet(channels=(2, 8, 1), K=3).double()
    >>> lap = chebyshev_laplacian(mesh_graph(basis), basis.N)
    >>> net(node_features(basis), lap).shape
    torch.Size([25])
    """

    def __init__(
        self,
        channels: Sequence[int] = (2, 32, 64, 128, 256, 128, 64, 32, 1),
        K: int = 10,
        n_fields: int = 1,
        activation: str = "tanh",
    ) -> None:
        super().__init__()
        channels = tuple(channels)
        if len(channels) < 2 or channels[-1] != 1:
            raise ValueError(
                f"channels must have >= 2 entries ending in 1, got {channels!r}"
            )
        if isinstance(n_fields, bool) or not isinstance(n_fields, int) or n_fields < 1:
            raise ValueError(f"n_fields must be an int >= 1, got {n_fields!r}")
        if activation not in ACTIVATIONS:
            raise ValueError(
                f"activation must be one of {tuple(ACTIVATIONS)}, got {activation!r}"
            )
        self.channels = channels
        self.K = K
        self.n_fields = n_fields
        self.activation = activation
        self.stacks = nn.ModuleList(
            nn.ModuleList(ChebConv(a, b, K) for a, b in itertools.pairwise(channels))
            for _ in range(n_fields)
        )
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Glorot weights, and a zero last layer: the untrained network
        outputs zero, not an ``O(1)`` field far from a small solution."""
        for stack in self.stacks:
            assert isinstance(stack, nn.ModuleList)
            convs = [conv for conv in stack if isinstance(conv, ChebConv)]
            for conv in convs:
                conv.reset_parameters()
            with torch.no_grad():
                convs[-1].weight.zero_()

    def forward(self, features: torch.Tensor, laplacian: torch.Tensor) -> torch.Tensor:
        """Nodal values ``(N,)`` (``(N, n_fields)`` for several fields)."""
        act = ACTIVATIONS[self.activation]
        outputs = []
        for stack in self.stacks:
            assert isinstance(stack, nn.ModuleList)
            h = features
            for i, conv in enumerate(stack):
                h = conv(h, laplacian)
                if i < len(stack) - 1:
                    h = act(h)
            outputs.append(h)
        out = torch.cat(outputs, 1)
        return out[:, 0] if self.n_fields == 1 else out


@dataclass(eq=False)
class GalerkinRun:
    """What the driver hands to :class:`~itersolve.pde.AdamThenLBFGS`: the network copy,
    the residual, the graph and the inverse-problem pieces."""

    net: GraphGalerkinNet
    residual: FEResidual
    features: torch.Tensor
    laplacian: torch.Tensor
    loss: str
    source: nn.Parameter | None
    obs_dofs: torch.Tensor | None
    obs_values: torch.Tensor | None
    obs_mode: str
    penalty: float
    reference: torch.Tensor | None
    params: list[nn.Parameter] = field(default_factory=list)

    def fields(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(v, u)``: the network's dof vector with Dirichlet (and hard
        observed) values imposed, and the answer ``u`` (``s v`` for an
        inverse run with the energy loss, else ``v``)."""
        v = self.residual.impose(self.net(self.features, self.laplacian))
        if self.source is None:
            return v, v
        assert self.obs_dofs is not None and self.obs_values is not None
        if self.loss == "energy":
            if self.obs_mode == "hard":
                v = v.index_put((self.obs_dofs,), self.obs_values / self.source)
            return v, self.source * v
        if self.obs_mode == "hard":
            v = v.index_put((self.obs_dofs,), self.obs_values)
        return v, v

    def dofs(self) -> torch.Tensor:
        """The answer ``u`` (see :meth:`fields`)."""
        return self.fields()[1]

    def terms(self) -> dict[str, torch.Tensor]:
        """``loss = physics + penalty misfit`` and its parts."""
        v, u = self.fields()
        r = self.residual
        if self.source is None:
            physics = r.loss(u, self.loss)
            return {"loss": physics, "physics": physics}
        assert self.obs_dofs is not None and self.obs_values is not None
        if self.loss == "energy":
            # u = s v with v the unit-load response: E(u; s) = s^2 E(v; 1)
            physics = r.energy(v)
        elif self.obs_mode == "hard":
            load = self.source * r.load
            rows = r.residual(u, load=load)[self.keep_rows]
            if self.loss == "preconditioned":
                rows = rows / r.diagonal[self.keep_rows]
            physics = torch.linalg.vector_norm(rows)
        else:
            physics = r.loss(u, self.loss, load=self.source * r.load)
        out = {"physics": physics}
        if self.obs_mode == "penalty":
            misfit = (u[self.obs_dofs] - self.obs_values).square().mean()
            out["misfit"] = misfit / self.obs_values.square().mean()
            out["loss"] = physics + self.penalty * out["misfit"]
        else:
            out["loss"] = physics
        return out

    def metrics(self) -> dict[str, float]:
        """The learned source constant and the error vs the reference, when
        there are."""
        out = {}
        if self.source is not None:
            out["source"] = float(self.source.detach())
        if self.reference is not None:
            with torch.no_grad():
                out["relative_l2"] = _relative(self.dofs(), self.reference)
        return out

    @property
    def keep_rows(self) -> torch.Tensor:
        """Rows of ``R_free`` that are not hard observations."""
        assert self.obs_dofs is not None
        return ~torch.isin(self.residual.free_dofs, self.obs_dofs)


def _relative(u: torch.Tensor, reference: torch.Tensor) -> float:
    return float(
        torch.linalg.vector_norm(u - reference) / torch.linalg.vector_norm(reference)
    )


def _tensor(value: Any, name: str, shape: tuple[int, ...]) -> torch.Tensor:
    """``value`` as a float64 CPU copy of the given shape (the shared
    conversion, plus the shape check)."""
    out, _ = as_tensor(value, name, dtype=torch.float64, device="cpu", copy=True)
    if out.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {tuple(out.shape)}")
    return out


def train_graph_galerkin(
    net: GraphGalerkinNet,
    residual: FEResidual,
    features: Any,
    laplacian: torch.Tensor,
    *,
    loss: str = "energy",
    adam_steps: int = 200,
    lbfgs_steps: int = 600,
    lr: float = 3e-3,
    source: float | None = None,
    observations: tuple[Any, Any] | None = None,
    obs_mode: str = "penalty",
    penalty: float = 1.0,
    reference: Any = None,
    seed: int | None = 0,
    callback: Callback | None = None,
    record: bool | int = False,
    throw: bool = False,
) -> Solution:
    """Train a graph Galerkin network on a finite-element residual, no labels.

    The network maps node features to the dof vector ``u``; the Dirichlet
    values are written into ``u`` before the loss (hard boundary
    conditions), which is :meth:`FEResidual.loss` of kind ``loss``:
    ``"energy"`` (``1/2 u^T K u - f^T u``, the default: its Hessian in ``u``
    is ``K``, not ``K^2`` as for the residual norm, so it trains much
    faster), ``"residual-norm"`` (the paper's ``||R_free||``) or
    ``"preconditioned"`` (Jacobi). Optimiser: Adam (``lr``) then L-BFGS
    (strong Wolfe), in float64, through the shared driver; stopping rule: the
    budget ``adam_steps + lbfgs_steps``.

    **Inverse mode** (``source`` given): the load is ``s f`` with an unknown
    constant ``s`` (initial guess ``source``) learned jointly with the
    network from ``observations = (dofs, values)``. ``obs_mode="penalty"``
    adds ``penalty * mean((u[dofs] - values)^2) / mean(values^2)`` to the
    loss; ``"hard"`` writes the values into ``u`` (the paper's Poisson demo,
    which appends them to the Dirichlet set). The energy ``E(u; s)`` is
    unbounded below in ``s``, so with ``loss="energy"`` the network
    represents the unit-load response ``v`` and ``u = s v`` (the problem is
    linear in ``s``; this needs zero Dirichlet values), and the physics term
    is ``E(v; 1)``.

    Compare with :meth:`FEResidual.solve` (``scipy.sparse.linalg.spsolve``),
    which gives the forward answer in milliseconds; the network's use is in
    inverse and parametric problems. Reference: Gao, Zahr & Wang,
    "Physics-informed graph neural Galerkin networks", CMAME 390 (2022).

    Parameters
    ----------
    net
        A :class:`GraphGalerkinNet` with one field; it is copied and cast to
        float64, never changed.
    residual
        The :class:`FEResidual` of the problem.
    features
        ``(N, channels[0])`` node features (:func:`node_features`).
    laplacian
        The scaled Laplacian of the mesh graph
        (``chebyshev_laplacian(mesh_graph(basis), N)``).
    loss
        ``"energy"``, ``"residual-norm"`` or ``"preconditioned"``.
    adam_steps, lbfgs_steps, lr
        The budget and Adam's learning rate.
    source
        Initial guess of the unknown source constant (``None``: forward).
    observations
        ``(dofs, values)`` of the inverse problem.
    obs_mode, penalty
        How observations enter (``"penalty"`` or ``"hard"``) and the weight.
    reference
        A dof vector (e.g. ``residual.solve()``); the trace then has
        ``relative_l2`` and ``extras["relative_l2"]`` the final one.
    seed
        Re-initialises the copied network's weights from this seed
        (``None``: keep the weights it came with).
    callback, record, throw
        As in every front door. Trace columns: ``loss``, ``physics``,
        ``misfit`` (inverse, penalty), ``source`` (inverse), ``relative_l2``
        (with a reference), ``phase`` (0 Adam, 1 L-BFGS).

    Returns
    -------
    Solution
        ``x``: the trained dof vector (torch, float64); ``extras``:
        ``"model"`` (the trained copy), ``"parameters"`` (flat vector),
        ``"source"`` (the learned constant, inverse mode) and
        ``"relative_l2"`` (with a reference); ``stats["loss_evaluations"]``.

    Examples
    --------
    >>> import numpy as np
    >>> from skfem import Basis, BilinearForm, ElementTriP2, LinearForm, MeshTri
    >>> from skfem.helpers import dot, grad
    >>> from itersolve.nn import chebyshev_laplacian
    >>> laplace = BilinearForm(lambda u, v, w: dot(grad(u), grad(v)))
    >>> load = LinearForm(lambda v, w: 2.0 * v)
    >>> basis = Basis(MeshTri().refined(1), ElementTriP2())
    >>> residual = FEResidual.from_skfem(basis, laplace, load=load)
    >>> lap = chebyshev_laplacian(mesh_graph(basis), basis.N)
    >>> net = GraphGalerkinNet(channels=(2, 8, 8, 1), K=3)
    >>> sol = train_graph_galerkin(net, residual, node_features(basis), lap,
    ...     adam_steps=20, lbfgs_steps=20, reference=residual.solve())
    >>> sol.success, sol.x.shape, bool(sol.extras["relative_l2"] < 0.5)
    (True, torch.Size([25]), True)
    """
    if not isinstance(net, GraphGalerkinNet):
        raise TypeError(f"net must be a GraphGalerkinNet, got {type(net).__name__}")
    if net.n_fields != 1:
        raise ValueError(f"net must have one field, got n_fields={net.n_fields}")
    if not isinstance(residual, FEResidual):
        raise TypeError(
            f"residual must be an FEResidual, got {type(residual).__name__}"
        )
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
    if obs_mode not in OBSERVATION_MODES:
        raise ValueError(
            f"obs_mode must be one of {OBSERVATION_MODES}, got {obs_mode!r}"
        )
    method = AdamThenLBFGS(adam_steps=adam_steps, lbfgs_steps=lbfgs_steps, lr=lr)
    if (
        isinstance(penalty, bool)
        or not isinstance(penalty, int | float)
        or not (math.isfinite(penalty) and penalty > 0)
    ):
        raise ValueError(f"penalty must be finite and > 0, got {penalty!r}")
    n = residual.n_dofs
    x = _tensor(features, "features", (n, net.channels[0]))
    if laplacian.shape != (n, n):
        raise ValueError(
            f"laplacian must have shape ({n}, {n}), got {tuple(laplacian.shape)}"
        )
    ref = None if reference is None else _tensor(reference, "reference", (n,))
    trained = copy.deepcopy(net).to(torch.float64)
    if seed is not None:
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise TypeError(f"seed must be an int or None, got {seed!r}")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            trained.reset_parameters()
    unknown: nn.Parameter | None = None
    obs_dofs = obs_values = None
    if source is not None:
        if (
            isinstance(source, bool)
            or not isinstance(source, int | float)
            or not (math.isfinite(source) and source != 0)
        ):
            raise ValueError(f"source must be a finite nonzero number, got {source!r}")
        if observations is None:
            raise ValueError("an inverse run (source given) needs observations")
        if loss == "energy" and bool(residual.dirichlet_values.any()):
            raise ValueError(
                "the energy inverse mode trains u = s v and needs zero Dirichlet "
                "values; use loss='residual-norm' or 'preconditioned'"
            )
        unknown = nn.Parameter(torch.tensor(float(source), dtype=torch.float64))
        obs_dofs, obs_values = _observations(observations, residual)
    elif observations is not None:
        raise ValueError("observations are only used with an unknown source")
    run = GalerkinRun(
        trained,
        residual,
        x,
        laplacian,
        loss,
        unknown,
        obs_dofs,
        obs_values,
        obs_mode,
        float(penalty),
        ref,
    )
    run.params = list(trained.parameters()) + ([unknown] if unknown else [])
    x0 = parameters_to_vector(run.params).detach().clone()

    def to_dofs(params: torch.Tensor) -> torch.Tensor:
        vector_to_parameters(params, run.params)
        with torch.no_grad():
            return run.dofs()

    solution = solve(
        method,
        run,
        x0,
        output=ArrayInfo(Kind.TORCH, torch.float64, torch.device("cpu")),
        callback=callback,
        record=record,
        throw=throw,
        check_finite=(x,),
        to_x=to_dofs,
    )
    solution.extras["model"] = trained
    solution.extras["parameters"] = parameters_to_vector(run.params).detach().clone()
    if unknown is not None:
        solution.extras["source"] = float(unknown.detach())
    if ref is not None:
        solution.extras["relative_l2"] = _relative(solution.x, ref)
    return solution


def _observations(
    observations: Any, residual: FEResidual
) -> tuple[torch.Tensor, torch.Tensor]:
    if not isinstance(observations, tuple | list) or len(observations) != 2:
        raise ValueError(
            f"observations must be a pair (dofs, values), got {observations!r}"
        )
    dofs = torch.as_tensor(np.asarray(observations[0]))
    if dofs.ndim != 1 or dofs.numel() == 0 or dofs.is_floating_point():
        raise ValueError("observations dofs must be a non-empty 1-D integer array")
    if int(dofs.min()) < 0 or int(dofs.max()) >= residual.n_dofs:
        raise ValueError(f"observations dofs must be in [0, {residual.n_dofs})")
    if bool(torch.isin(dofs, residual.dirichlet_dofs).any()):
        raise ValueError("observations dofs must not be Dirichlet dofs")
    values = _tensor(observations[1], "observations values", (dofs.numel(),))
    if not bool(torch.isfinite(values).all()) or not bool(values.any()):
        raise ValueError("observations values must be finite and not all zero")
    return dofs.long(), values
