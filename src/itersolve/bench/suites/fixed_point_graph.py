"""fixed-point-graph: convergent graph solvers (Park, Choo and Park, ICLR 2022)
on graph value iteration, against torch_geometric's GCN and APPNP.

Task (the paper's GVI, spec 06): random deterministic MDPs with
``n_states`` in [20, 50), ``n_actions`` in [5, 10), rewards ``U[-1, 1]`` on the
transitions, discount 0.9 (:func:`itersolve.problems.random_mdp`). Target: the
optimal state values ``v*``, by policy iteration whose every evaluation is the
direct sparse solve ``(I - 0.9 P_pi) v = r_pi`` (exact to rounding). A model
sees node features (mean / max / min of the state's action rewards, the number
of actions / 10) on the message graph (an edge ``s' -> s`` per transition
``s -> s'``, since a value depends on its successors) and, for CGS, the reward
of each edge.

Models, with the same budget (same training pool and batches of graphs, Adam
at ``LR``, ``steps`` updates, MSE on standardised targets), trained on
graphs of the training range and tested on unseen graphs of [20, 50) and of
[50, 100] states (generalisation to larger graphs):

* ``cgs``: an MPNN encoder (node MLP, one message-passing layer over node
  and edge features) generating per-head edge logits and node biases ->
  :class:`itersolve.nn.ContractiveGraphFixedPoint` (``HEADS`` heads, contraction
  factor 0.5, in-degree normalisation, plain iteration to ``rtol = 1e-6``,
  implicit backward) -> MLP decoder;
* ``gcn``: node MLP -> 3 ``GCNConv`` layers (ReLU) -> MLP decoder;
* ``appnp``: node MLP -> ``APPNP(K=10, alpha=0.1)`` -> MLP decoder.

The timed part of a row is the prediction on the test graphs (one graph at a
time; the training runs once, untimed, in ``prepare``); no claim is on time.

Claims (issue 16 item 5; counts and errors only):

* CGS's forward solve needs ``<= 25`` iterations on every test graph (up to
  100 states). Derivation: from ``z_0 = 0`` plain iteration has
  ``z_{k+1} - z_k = (gamma A)^k b``, so ``||z_{k+1} - z_k||_inf <= gamma^k
  ||b||_inf``, while ``||z_k||_inf >= ||b||_inf / (1 + gamma)``; the 2-norm
  rule ``||f(z) - z||_2 <= rtol ||z||_2`` per head then holds once
  ``sqrt(n) gamma^k (1 + gamma) <= rtol``: ``k = 24`` at ``n = 100``, ``gamma
  = 0.5``, ``rtol = 1e-6`` (the issue's 25 is this bound, with room for the
  ``1`` of the final fresh evaluation not being a step).
* CGS's value MAPE (``mean |v_hat - v*| / |v*|`` over the test states, in %)
  is below the 3-layer GCN's (mean over training seeds, both test ranges
  pooled). APPNP is shown, not judged.
* CGS's greedy-policy accuracy (the share of test states whose greedy action
  under the predicted values is optimal) is ``>=`` the GCN's: spec 06's second
  reproduction criterion, with its threshold.
* The implicit gradient of CGS (adjoint fixed point ``u = gamma A^T u + g``)
  equals autograd through 200 unrolled iterations to ``1e-8`` relative, in
  float64, for every normalisation, on a 100-state MDP graph with 16 heads.
  The forward and adjoint solves run to ``rtol = 1e-12`` here: the gradient
  error of a solve stopped at ``rtol`` is of order ``rtol`` (the layer's
  default ``1e-6`` gives about ``1e-6``).
"""

from __future__ import annotations

import functools
import itertools
import statistics
import warnings
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import torch
from torch import nn

from itersolve import ConvergenceWarning
from itersolve.bench.results import Results
from itersolve.bench.suite import Case, Claim, ClaimOutcome, Method, RunOutput, Suite
from itersolve.fixed_point import FixedPointIteration
from itersolve.nn import ContractiveGraphFixedPoint
from itersolve.nn._graph import NORMALIZATIONS
from itersolve.problems import random_mdp

F64 = torch.float64
DISCOUNT = 0.9
CONTRACTION = 0.5
LR = 3e-3
ITERATION_LIMIT = 25
VJP_LIMIT = 1e-8
VJP_CASE = "vjp-mdp100-h16"


@dataclass(frozen=True)
class Config:
    steps: int
    batch: int
    pool: int
    tests: int
    seeds: int
    hidden: int
    heads: int


CONFIGS = {
    "smoke": Config(steps=4, batch=2, pool=4, tests=2, seeds=1, hidden=8, heads=4),
    "quick": Config(
        steps=300, batch=16, pool=128, tests=10, seeds=2, hidden=32, heads=16
    ),
    "full": Config(
        steps=2000, batch=32, pool=512, tests=50, seeds=3, hidden=64, heads=32
    ),
}


# -- data -------------------------------------------------------------------


@dataclass(frozen=True)
class Graph:
    """One MDP as model input: the message graph and its targets."""

    x: torch.Tensor
    """``(n, 4)`` node features."""
    edge_index: torch.Tensor
    """``(2, E)`` message edges ``s' -> s``."""
    edge_attr: torch.Tensor
    """``(E, 1)`` the transition's reward."""
    next_state: np.ndarray
    rewards: np.ndarray
    values: np.ndarray
    """``v*`` by policy iteration with direct solves."""
    policy: np.ndarray


def make_graph(n_states: int, n_actions: int, seed: int) -> Graph:
    """The model input and targets of one random MDP.

    Examples
    --------
    >>> g = make_graph(20, 5, seed=0)
    >>> g.x.shape, g.edge_index.shape, g.values.shape
    (torch.Size([20, 4]), torch.Size([2, 100]), (20,))
    """
    mdp = random_mdp(n_states, n_actions, DISCOUNT, seed)
    values, policy = mdp.optimal_values()
    r = mdp.rewards
    x = np.stack(
        [r.mean(1), r.max(1), r.min(1), np.full(n_states, n_actions / 10)], axis=1
    )
    src, dst = mdp.edge_index
    return Graph(
        torch.from_numpy(x),
        torch.from_numpy(np.stack([dst, src])),
        torch.from_numpy(mdp.edge_reward[:, None]),
        mdp.next_state,
        r,
        values,
        policy,
    )


def _draw(rng: np.random.Generator, states: tuple[int, int], count: int) -> list[Graph]:
    return [
        make_graph(
            int(rng.integers(*states)),
            int(rng.integers(5, 10)),
            int(rng.integers(2**31)),
        )
        for _ in range(count)
    ]


@dataclass(frozen=True)
class Batch:
    x: torch.Tensor
    edge_index: torch.Tensor
    edge_attr: torch.Tensor
    y: torch.Tensor


def collate(graphs: list[Graph]) -> Batch:
    """The disjoint union of ``graphs`` (node indices offset)."""
    offsets = np.cumsum([0] + [g.x.shape[0] for g in graphs[:-1]])
    return Batch(
        torch.cat([g.x for g in graphs]),
        torch.cat(
            [g.edge_index + int(o) for g, o in zip(graphs, offsets, strict=True)], 1
        ),
        torch.cat([g.edge_attr for g in graphs]),
        torch.from_numpy(np.concatenate([g.values for g in graphs])),
    )


@dataclass(frozen=True)
class GVIProblem:
    """Training pool, batch order and test graphs of one seed."""

    config: Config
    seed: int
    pool: list[Graph]
    order: np.ndarray
    """``(steps, batch)`` indices into the pool."""
    tests: dict[str, list[Graph]]
    """``"small"``: [20, 50) states; ``"large"``: [50, 100]."""

    @property
    def targets(self) -> np.ndarray:
        return np.concatenate(
            [g.values for k in ("small", "large") for g in self.tests[k]]
        )


@functools.lru_cache(maxsize=4)
def _gvi(scale: str, seed: int) -> GVIProblem:
    cfg = CONFIGS[scale]
    rng = np.random.default_rng(1000 + seed)
    pool = _draw(rng, (20, 50), cfg.pool)
    order = rng.integers(0, cfg.pool, size=(cfg.steps, cfg.batch))
    tests = {
        "small": _draw(rng, (20, 50), cfg.tests),
        "large": _draw(rng, (50, 101), cfg.tests),
    }
    return GVIProblem(cfg, seed, pool, order, tests)


# -- models -------------------------------------------------------------------


def _mlp(sizes: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for a, b in itertools.pairwise(sizes):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*layers[:-1])


class CGSModel(nn.Module):
    """Encoder (node MLP + one message-passing layer over node and edge
    features) -> per-head edge logits and node biases -> contractive fixed
    point -> decoder."""

    def __init__(self, hidden: int, heads: int) -> None:
        super().__init__()
        self.node = _mlp([4, hidden, hidden])
        self.message = _mlp([2 * hidden + 1, hidden, hidden])
        self.update = _mlp([2 * hidden, hidden])
        self.logits = _mlp([2 * hidden + 1, hidden, heads])
        self.bias = nn.Linear(hidden, heads)
        self.solver = ContractiveGraphFixedPoint(heads, CONTRACTION, "in-degree")
        self.decoder = _mlp([heads, hidden, 1])

    def forward(
        self, x: torch.Tensor, edge_index: torch.Tensor, edge_attr: torch.Tensor
    ) -> torch.Tensor:
        src, dst = edge_index
        h = self.node(x)
        m = self.message(torch.cat([h[src], h[dst], edge_attr], 1))
        count = torch.bincount(dst, minlength=x.shape[0]).clamp(min=1)[:, None]
        agg = torch.zeros_like(h).index_add(0, dst, m) / count
        h = h + self.update(torch.cat([h, agg], 1))
        logits = self.logits(torch.cat([h[src], h[dst], edge_attr], 1))
        z = self.solver(edge_index, logits, self.bias(h))
        return self.decoder(z).squeeze(-1)


def _pyg() -> Any:
    """``torch_geometric.nn``, imported on first use (an optional anchor); its
    import raises torch's ``torch.jit.script`` DeprecationWarning, which is not
    ours to act on."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import torch_geometric.nn as pyg_nn
    return pyg_nn


class GCNModel(nn.Module):
    """Node MLP -> 3 ``GCNConv`` (ReLU) -> decoder."""

    def __init__(self, hidden: int, heads: int) -> None:
        super().__init__()
        conv = _pyg().GCNConv
        self.node = _mlp([4, hidden, hidden])
        self.convs = nn.ModuleList(conv(hidden, hidden) for _ in range(3))
        self.decoder = _mlp([hidden, hidden, 1])

    def forward(
        self, x: torch.Tensor, edge_index: torch.Tensor, edge_attr: torch.Tensor
    ) -> torch.Tensor:
        h = self.node(x)
        for conv in self.convs:
            h = torch.relu(conv(h, edge_index))
        return self.decoder(h).squeeze(-1)


class APPNPModel(nn.Module):
    """Node MLP -> ``APPNP(K=10, alpha=0.1)`` propagation -> decoder."""

    def __init__(self, hidden: int, heads: int) -> None:
        super().__init__()
        self.node = _mlp([4, hidden, hidden])
        self.propagate = _pyg().APPNP(K=10, alpha=0.1)
        self.decoder = _mlp([hidden, hidden, 1])

    def forward(
        self, x: torch.Tensor, edge_index: torch.Tensor, edge_attr: torch.Tensor
    ) -> torch.Tensor:
        return self.decoder(self.propagate(self.node(x), edge_index)).squeeze(-1)


MODELS: dict[str, type[nn.Module]] = {
    "cgs": CGSModel,
    "gcn": GCNModel,
    "appnp": APPNPModel,
}


@dataclass
class Trained:
    problem: GVIProblem
    model: nn.Module
    scale: tuple[float, float]
    final_loss: float
    solve_failures: int


def train(name: str, problem: GVIProblem) -> Trained:
    """Adam on MSE of standardised targets, the same batches for every model."""
    cfg = problem.config
    torch.manual_seed(problem.seed)
    model = MODELS[name](cfg.hidden, cfg.heads).to(F64)
    all_y = np.concatenate([g.values for g in problem.pool])
    mean, std = float(all_y.mean()), float(all_y.std())
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    failures, loss = 0, torch.tensor(float("nan"))
    for step in range(cfg.steps):
        b = collate([problem.pool[i] for i in problem.order[step]])
        opt.zero_grad()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)
            pred = model(b.x, b.edge_index, b.edge_attr)
            loss = ((pred - (b.y - mean) / std) ** 2).mean()
            loss.backward()
        failures += sum(issubclass(w.category, ConvergenceWarning) for w in caught)
        opt.step()
    return Trained(problem, model, (mean, std), loss.item(), failures)


def _prepare(name: str, problem: Any) -> Any:
    return train(name, problem) if isinstance(problem, GVIProblem) else problem


def greedy_accuracy(g: Graph, v_hat: np.ndarray) -> float:
    """Share of states whose greedy action under ``v_hat`` is optimal (ties
    within 1e-9 of the best Q-value count as optimal)."""
    q_true = g.rewards + DISCOUNT * g.values[g.next_state]
    chosen = np.argmax(g.rewards + DISCOUNT * v_hat[g.next_state], axis=1)
    rows = np.arange(len(g.values))
    return float(np.mean(q_true[rows, chosen] >= q_true.max(1) - 1e-9))


def mape(pred: np.ndarray, target: np.ndarray) -> float:
    """Mean absolute percentage error, in %."""
    return float(100 * np.mean(np.abs(pred - target) / np.abs(target)))


def _predict(trained: Trained) -> RunOutput:
    model, (mean, std) = trained.model, trained.scale
    preds: dict[str, list[np.ndarray]] = {"small": [], "large": []}
    iterations: dict[str, list[int]] = {"small": [], "large": []}
    status = "SUCCESS" if trained.solve_failures == 0 else "MAX_STEPS"
    accuracy: list[float] = []
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for key, graphs in trained.problem.tests.items():
            for g in graphs:
                out = model(g.x, g.edge_index, g.edge_attr) * std + mean
                v_hat = out.numpy()
                preds[key].append(v_hat)
                accuracy.append(greedy_accuracy(g, v_hat))
                if isinstance(model, CGSModel):
                    info = model.solver.info
                    assert info is not None and info.forward is not None
                    iterations[key].append(info.forward.num_steps)
                    if not info.forward.success:
                        status = info.forward.status.name
    x = np.concatenate(preds["small"] + preds["large"])
    if not np.all(np.isfinite(x)):
        status = "NONFINITE"
    extras: dict[str, Any] = {
        "final_train_loss": trained.final_loss,
        "train_solve_failures": trained.solve_failures,
        "n_params": sum(p.numel() for p in model.parameters()),
        "greedy_accuracy": float(np.mean(accuracy)),
    }
    for key in ("small", "large"):
        target = np.concatenate([g.values for g in trained.problem.tests[key]])
        extras[f"mape_{key}"] = mape(np.concatenate(preds[key]), target)
        if iterations[key]:
            extras[f"iterations_max_{key}"] = max(iterations[key])
    steps = max(
        iterations["small"] + iterations["large"], default=trained.problem.config.steps
    )
    return RunOutput(x, steps, status, {}, extras)


# -- the gradient check -------------------------------------------------------


@dataclass(frozen=True)
class VjpProblem:
    edge_index: torch.Tensor
    logits: torch.Tensor
    bias: torch.Tensor
    target: torch.Tensor


def _build_vjp(n_states: int = 100, heads: int = 16) -> VjpProblem:
    g = make_graph(n_states, 9, seed=7)
    gen = torch.Generator().manual_seed(8)
    e = g.edge_index.shape[1]
    return VjpProblem(
        g.edge_index,
        torch.randn(e, heads, generator=gen, dtype=F64),
        torch.randn(n_states, heads, generator=gen, dtype=F64),
        torch.randn(n_states, heads, generator=gen, dtype=F64),
    )


def _loss_gradient(p: VjpProblem, normalization: str, unrolled: bool) -> torch.Tensor:
    """``d/d(logits, bias)`` of ``||z* - target||^2``, flattened."""
    tight = FixedPointIteration(rtol=1e-12, max_steps=200)
    layer = ContractiveGraphFixedPoint(
        p.bias.shape[1],
        CONTRACTION,
        normalization,
        forward=tight,
        backward_method=tight,
    )
    logits = p.logits.clone().requires_grad_()
    bias = p.bias.clone().requires_grad_()
    if unrolled:
        T = layer.fixed_point_map(p.edge_index, logits, bias)
        z = torch.zeros_like(bias)
        for _ in range(200):
            z = T(z)
    else:
        z = layer(p.edge_index, logits, bias)
    loss = ((z - p.target) ** 2).sum()
    return torch.cat([g.reshape(-1) for g in torch.autograd.grad(loss, (logits, bias))])


def _implicit_gradients(p: VjpProblem) -> RunOutput:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        grads = [_loss_gradient(p, norm, unrolled=False) for norm in NORMALIZATIONS]
    status = "SUCCESS" if not caught else "MAX_STEPS"
    return RunOutput(torch.cat(grads), 1, status)


def _vjp_error(p: VjpProblem, x: Any) -> float:
    """Largest relative error of the implicit gradients vs unrolled autograd,
    over the normalisations."""
    implicit = torch.as_tensor(x, dtype=F64).reshape(len(NORMALIZATIONS), -1)
    errors = []
    for row, norm in zip(implicit, NORMALIZATIONS, strict=True):
        ref = _loss_gradient(p, norm, unrolled=True)
        errors.append(
            float(torch.linalg.vector_norm(row - ref) / torch.linalg.vector_norm(ref))
        )
    return max(errors)


# -- suite --------------------------------------------------------------------


def _gvi_name(seed: int) -> str:
    return f"gvi-seed{seed}"


def cases(scale: str) -> list[Case]:
    cfg = CONFIGS[scale]
    out = [
        Case(
            _gvi_name(seed),
            partial(_gvi, scale, seed),
            {
                "steps": cfg.steps,
                "batch": cfg.batch,
                "pool": cfg.pool,
                "tests": cfg.tests,
                "hidden": cfg.hidden,
                "heads": cfg.heads,
                "lr": LR,
            },
        )
        for seed in range(cfg.seeds)
    ]
    out.append(Case(VJP_CASE, _build_vjp, {"n_states": 100, "heads": 16}))
    return out


def evaluate(problem: Any, x: Any) -> float:
    """GVI: value MAPE (%) over every test state; gradient check: the implicit
    gradients' largest relative error vs unrolled autograd."""
    if isinstance(problem, VjpProblem):
        return _vjp_error(problem, x)
    pred = np.asarray(
        x.detach().numpy() if isinstance(x, torch.Tensor) else x, dtype=np.float64
    )
    return mape(pred, problem.targets)


def _on_gvi(case: Case) -> bool:
    return case.name.startswith("gvi-")


def _model_method(name: str, requires: tuple[str, ...] = ()) -> Method:
    return Method(
        name,
        _predict,
        prepare=partial(_prepare, name),
        anchor=None if name == "cgs" else "cgs",
        requires=requires,
        applies=_on_gvi,
    )


METHODS = [
    _model_method("cgs"),
    _model_method("gcn", ("torch_geometric",)),
    _model_method("appnp", ("torch_geometric",)),
    Method(
        "cgs-implicit-vjp", _implicit_gradients, applies=lambda c: c.name == VJP_CASE
    ),
]


def _seeds(results: Results) -> list[str]:
    return sorted(
        {
            r["dataset_name"]
            for r in results.rows
            if r["dataset_name"].startswith("gvi-")
        }
    )


def _iterations(results: Results) -> ClaimOutcome:
    worst, ok, parts = None, True, []
    for case in _seeds(results):
        small = results.median(case, "cgs", "iterations_max_small")
        large = results.median(case, "cgs", "iterations_max_large")
        if small is None or large is None:
            continue
        ok = ok and results.all_succeeded(case, "cgs")
        worst = max(worst or 0, small, large)
        parts.append(f"{case}: [20,50) {int(small)}, [50,100] {int(large)}")
    if worst is None:
        return ClaimOutcome(None, None, "no cgs rows")
    return ClaimOutcome(worst, ok and worst <= ITERATION_LIMIT, "; ".join(parts))


def _mean_over_seeds(results: Results, method: str, column: str) -> float | None:
    values = [results.median(c, method, column) for c in _seeds(results)]
    if not values or any(v is None for v in values):
        return None
    return statistics.fmean(v for v in values if v is not None)


def _versus_gcn(results: Results) -> ClaimOutcome:
    ours = _mean_over_seeds(results, "cgs", "objective_value")
    gcn = _mean_over_seeds(results, "gcn", "objective_value")
    if ours is None or gcn is None:
        return ClaimOutcome(None, None, "no cgs or gcn rows (torch_geometric missing?)")
    parts = []
    for m in ("cgs", "gcn", "appnp"):
        cols = [
            _mean_over_seeds(results, m, c)
            for c in (
                "objective_value",
                "mape_small",
                "mape_large",
                "greedy_accuracy",
                "n_params",
            )
        ]
        if cols[0] is None:
            parts.append(f"{m}: no rows")
            continue
        mp, small, large, acc, params = cols
        parts.append(
            f"{m}: MAPE {mp:.2f}% ([20,50) {small:.2f}%, [50,100] {large:.2f}%), "
            f"greedy accuracy {acc:.3f}, {int(params or 0)} params"
        )
    ok = all(results.all_succeeded(c, "cgs") for c in _seeds(results))
    return ClaimOutcome(ours / gcn, ok and ours < gcn, "; ".join(parts))


def _greedy_vs_gcn(results: Results) -> ClaimOutcome:
    ours = _mean_over_seeds(results, "cgs", "greedy_accuracy")
    gcn = _mean_over_seeds(results, "gcn", "greedy_accuracy")
    if ours is None or gcn is None or gcn == 0:
        return ClaimOutcome(None, None, "no cgs or gcn rows (torch_geometric missing?)")
    appnp = _mean_over_seeds(results, "appnp", "greedy_accuracy")
    detail = f"cgs {ours:.3f}, gcn {gcn:.3f}" + (
        f", appnp {appnp:.3f}" if appnp is not None else ""
    )
    ok = all(results.all_succeeded(c, "cgs") for c in _seeds(results))
    return ClaimOutcome(ours / gcn, ok and ours >= gcn, detail)


def _vjp(results: Results) -> ClaimOutcome:
    err = results.median(VJP_CASE, "cgs-implicit-vjp", "objective_value")
    if err is None:
        return ClaimOutcome(None, None, "no gradient-check row")
    ok = results.all_succeeded(VJP_CASE, "cgs-implicit-vjp")
    return ClaimOutcome(
        err, ok and err <= VJP_LIMIT, f"worst of {', '.join(NORMALIZATIONS)}"
    )


SUITES = [
    Suite(
        name="fixed-point-graph",
        description=(
            "Graph value iteration (paper 06): random deterministic MDPs, 20-50 "
            "states for training, unseen 20-50 and 50-100 for testing, optimal "
            "values by policy iteration with direct solves. CGS (contraction 0.5, "
            "16 heads, plain iteration rtol 1e-6, implicit backward) vs a 3-layer "
            "GCN and APPNP (torch_geometric) with the same training budget; and "
            "CGS's implicit gradient vs unrolled autograd (float64)."
        ),
        objective_name="value MAPE % (gvi) / relative gradient error (vjp)",
        cases=cases,
        methods=METHODS,
        evaluate=evaluate,
        claims=[
            Claim(
                "CGS (contraction 0.5) forward iterations, max over test graphs of "
                "20-100 states",
                f"<= {ITERATION_LIMIT}",
                _iterations,
            ),
            Claim(
                "CGS value MAPE / 3-layer GCN's (same budget, mean over seeds)",
                "< 1.0",
                _versus_gcn,
            ),
            Claim(
                "CGS greedy-policy accuracy / 3-layer GCN's (mean over seeds)",
                ">= 1.0",
                _greedy_vs_gcn,
            ),
            Claim(
                "CGS implicit gradient vs 200-step unrolled autograd (float64, "
                "relative)",
                f"<= {VJP_LIMIT:g}",
                _vjp,
            ),
        ],
        repeats={"smoke": 1, "quick": 1, "full": 1},
        # Measured on the shared 2-core machine at load average 12: smoke 9.7 s
        # wall, quick 214 s wall for 49 s of CPU time (one thread).
        estimate_seconds={"smoke": 8, "quick": 90, "full": 1800},
    )
]
