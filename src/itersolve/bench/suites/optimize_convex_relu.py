"""optimize-convex-relu: two-layer ReLU networks trained to global optimality
through their convex program (Bai, Gautam & Sojoudi 2022; Pilanci & Ergen 2020).

Data: breast_cancer (569 x 30) and digits 3-vs-8 (357 x 64), columns
standardised (constant pixel columns left at 0), labels +-1, a bias column
appended; ``P`` = 25 and 50 sampled, de-duplicated arrangements (seed 0). The
program is ``1/2 ||sum_i D_i X (v_i - w_i) - y||^2 + beta sum (||v_i|| +
||w_i||)`` under ``(2 D_i - I) X v_i >= 0``, ``(2 D_i - I) X w_i >= 0``.

``beta``: the spec's ``beta = 1e-3`` is stated for pyscnn's normalisation, whose
squared loss is divided by ``n``; our loss is the paper's plain ``1/2 ||.||^2``,
so the same program has ``beta = 1e-3 n`` here (0.569 for breast_cancer, 0.357
for digits 3-vs-8). The objective's scale does not change the relative gap.

Methods, all on the identical ``(X, y, arrangements, beta)``:

* ``admm``: :class:`~itersolve.optimize.convex_relu.ConvexReLUADMM` at its
  defaults (``rho = 0.1``, over-relaxation 1.6, residual balancing), 1000 steps
  at most (``rtol = 1e-6``). Its untimed trace records the objective of every
  iterate ``z`` and the time spent in ``step`` (measured, metrics excluded).
* ``clarabel``: the same program as a conic problem (quadratic objective, a
  zero cone for the residual ``r = F u - y``, a non-negative cone for the
  ``2 n P`` arrangement constraints, one second-order cone per block), built
  once with scipy.sparse (untimed) and solved by Clarabel at its default
  tolerances; the reference optimum ``p*`` of every claim is this row's
  objective, recomputed from its ``x``.
* ``adam``: the non-convex network of the same width (``2 P`` hidden units,
  first-layer bias) trained by full-batch torch Adam on the identical
  regularised objective (:func:`~itersolve.optimize.convex_relu.
  network_objective`) from PyTorch's default initialisation, 5 evaluated seeds
  (0-4), ``ADAM_STEPS`` steps; the learning rate is chosen from ``ADAM_LRS`` on
  seed 100 (not evaluated). The row reports the best seed's final objective,
  each seed's in ``adam_losses``. The training runs once in the method's
  (untimed) ``prepare``: the row's ``time`` is not Adam's training time, which
  is in ``train_seconds`` (no claim reads it).

Claims (the gap is ``|f(z) - p*| / p*``; an ADMM iterate may be slightly
infeasible, so its objective can sit below ``p*``; the detail shows the
constraint violation):

* count: ADMM's gap falls to ``<= 1e-3`` within 1000 steps and stays there, on
  every case;
* timing (judged on an idle machine): the step time ADMM needs for that is
  below Clarabel's solve time, on every case;
* the network recovered from Clarabel's solution reproduces the convex
  objective to ``1e-8`` (relative); ADMM's recovery error is shown (it is the
  size of its remaining infeasibility);
* the certified optimum ``p*`` is at or below Adam's best seed. This is an
  empirical claim: for the sampled program ``p*`` is only the optimum over
  networks whose units fire with the sampled patterns, an upper bound on the
  global optimum of the width-``2P`` network (the two coincide when every
  arrangement is included), so Adam could in principle find a lower value.

Measured at quick on the shared 2-core machine (load average 9-14, 892 s for
the suite; every timed row contended), recorded, not tuned on:

* ADMM gap at 1000 steps: breast_cancer 5.1e-3 (P 25) and 1.2e-2 (P 50), never
  <= 1e-3 for good (the iterates stay infeasible by ~4e-3, objective below
  ``p*``; residual balancing never moved ``rho = 0.1``); digits 3-vs-8 reaches
  it at steps 376 (P 25) and 653 (P 50). Count claim FAIL.
* time to the gap on digits: 2.9 s vs Clarabel 31 s (P 25), 8.4 s vs 66 s
  (P 50); breast_cancer not reached, so the timing claim's worst case is inf.
* recovery error at Clarabel's optimum <= 2.9e-10 (PASS); ADMM's own answers
  1.5e-5 to 1.5e-3 (their constraint violation).
* Adam's best seed is 3.5x (breast_cancer) and 2.8-3.3x (digits) below ``p*``:
  25-50 random arrangements in 31 / 65 dimensions make a far weaker model than
  the learned first layer of the same width (FAIL).
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from itersolve._core.errors import ConvergenceWarning
from itersolve.bench.results import Results
from itersolve.bench.suite import (
    Case,
    Claim,
    ClaimOutcome,
    Method,
    RunOutput,
    Suite,
    one_thread,
)

# Many small tensor operations per step: one intra-op thread (as optimize-bcd).
from itersolve.optimize.convex_relu import (
    ConvexReLUADMM,
    ConvexReLUProblem,
    network_objective,
    recover_relu_network,
    solve_convex_relu,
)

GAP = 1e-3
ADMM_STEPS = 1000
RECOVERY = 1e-8
ADAM_SEEDS = (0, 1, 2, 3, 4)
TUNING_SEED = 100
ADAM_LRS = (1e-3, 1e-2, 1e-1)
ADAM_STEPS = {"smoke": 50, "quick": 1500, "full": 5000}


@dataclass
class Instance:
    """One program and the settings of the methods run on it."""

    problem: ConvexReLUProblem
    X: np.ndarray
    y: np.ndarray
    adam_steps: int


def _standardise(X: np.ndarray) -> np.ndarray:
    std = X.std(axis=0)
    return (X - X.mean(axis=0)) / np.where(std > 0, std, 1.0)


def _dataset(name: str) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_breast_cancer, load_digits

    if name == "breast_cancer":
        X, y = load_breast_cancer(return_X_y=True)
        return _standardise(X), 2.0 * y - 1.0
    if name == "digits-3v8":
        X, y = load_digits(return_X_y=True)
        keep = (y == 3) | (y == 8)
        return _standardise(X[keep]), np.where(y[keep] == 3, 1.0, -1.0)
    rng = np.random.default_rng(0)  # "synthetic": smoke scale
    X = rng.standard_normal((40, 3))
    return X, np.sign(X[:, 0] * X[:, 1] + 0.1)


def _build(name: str, P: int, scale: str) -> Instance:
    X, y = _dataset(name)
    beta = 1e-3 * X.shape[0]
    problem = ConvexReLUProblem(X, y, beta=beta, arrangements=P, seed=0)
    return Instance(problem, X, y, ADAM_STEPS[scale])


def cases(scale: str) -> list[Case]:
    if scale == "smoke":
        specs = [("synthetic", 3), ("synthetic", 12)]
    else:
        specs = [(d, P) for d in ("breast_cancer", "digits-3v8") for P in (25, 50)]
    return [
        Case(f"{d}-P{P}", partial(_build, d, P, scale), {"dataset": d, "P": P})
        for d, P in specs
    ]


def evaluate(inst: Instance, x: Any) -> float:
    """The convex objective at ``x`` (a ``(2, P, d)`` array), or the network
    objective of a trained network (Adam's rows), in float64."""
    if isinstance(x, torch.nn.Module):
        with torch.no_grad():
            return float(network_objective(x, inst.X, inst.y, inst.problem.beta))
    return float(inst.problem.objective(np.asarray(x, dtype=np.float64)))


def recovery_error(inst: Instance, x: np.ndarray) -> float:
    """``|network objective - convex objective| / convex objective`` of the
    network recovered from ``x``."""
    convex = evaluate(inst, x)
    net = recover_relu_network(x, bias=True)
    return abs(evaluate(inst, net) - convex) / convex


def _extras(inst: Instance, x: np.ndarray) -> dict[str, Any]:
    return {
        "constraint_violation": inst.problem.constraint_violation(x),
        "recovery_error": recovery_error(inst, x),
    }


# -- ours ------------------------------------------------------------------


def _admm_method() -> ConvexReLUADMM:
    return ConvexReLUADMM(rtol=1e-6, max_steps=ADMM_STEPS)


def _admm(inst: Instance) -> RunOutput:
    with one_thread(), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        sol = solve_convex_relu(inst.problem, _admm_method())
    counters = {
        "factorizations": float(sol.stats["factorizations"]),
        "step_time": float(sol.stats["time"]),
    }
    return RunOutput(
        sol.x, sol.num_steps, sol.status.name, counters, _extras(inst, sol.x)
    )


def _admm_trace(inst: Instance) -> dict[str, list[float]]:
    with one_thread(), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        sol = solve_convex_relu(inst.problem, _admm_method(), record=True)
    assert sol.trace is not None
    columns = sol.trace.as_dict()
    return {
        "step": [float(v) for v in columns["step"]],
        "time": [float(v) for v in columns["time"]],
        "objective": [float(v) for v in columns["objective"]],
    }


# -- Clarabel --------------------------------------------------------------


@dataclass
class Conic:
    """The program as Clarabel's ``min 1/2 x'Px + q'x, b - A x in K``."""

    P: sp.csc_matrix
    q: np.ndarray
    A: sp.csc_matrix
    b: np.ndarray
    cones: list[Any]
    n_u: int
    shape: tuple[int, int, int]


def conic_form(problem: ConvexReLUProblem) -> Conic:
    """Variables ``(u, r, t)``: ``u`` the ``2 P d`` weights, ``r = F u - y``,
    ``t_k >= ||u_k||``; objective ``1/2 ||r||^2 + beta sum t``.

    >>> import numpy as np
    >>> X = np.random.default_rng(0).standard_normal((8, 2))
    >>> c = conic_form(ConvexReLUProblem(X, X[:, 0], beta=1.0, arrangements=2))
    >>> c.A.shape == (8 + 2 * 8 * 2 + 4 * 4, c.n_u + 8 + 4)
    True
    """
    import clarabel

    X = problem.X.cpu().numpy().astype(np.float64)
    D = problem.D.cpu().numpy()
    y = problem.y.cpu().numpy().astype(np.float64)
    K, P, d = problem.shape
    n = problem.n
    n_u, blocks = K * P * d, K * P
    signs = problem.signs.cpu().numpy()
    # F: column block (k, i) is sign_k D_i X.
    F = (
        signs[None, :, None, None] * D[:, None, :, None] * X[:, None, None, :]
    ).reshape(n, n_u)
    S = 2.0 * D - 1.0
    # G: block-diagonal, block (k, i) = (2 D_i - I) X.
    G = sp.block_diag(
        [sp.csr_matrix(S[:, i, None] * X) for _ in range(K) for i in range(P)]
    )
    zeros_t = sp.csr_matrix((n, blocks))
    rows = [
        sp.hstack([sp.csr_matrix(F), -sp.eye(n), zeros_t]),
        sp.hstack([-G, sp.csr_matrix((G.shape[0], n + blocks))]),
    ]
    soc = []
    for k in range(blocks):
        t_row = sp.csr_matrix(
            ([-1.0], ([0], [n_u + n + k])), shape=(1, n_u + n + blocks)
        )
        u_rows = sp.hstack(
            [
                sp.csr_matrix((d, k * d)),
                -sp.eye(d),
                sp.csr_matrix((d, n_u - (k + 1) * d + n + blocks)),
            ]
        )
        soc.append(sp.vstack([t_row, u_rows]))
    A = sp.vstack(rows + soc).tocsc()
    b = np.concatenate([y, np.zeros(G.shape[0] + blocks * (d + 1))])
    Pm = sp.block_diag(
        [sp.csr_matrix((n_u, n_u)), sp.eye(n), sp.csr_matrix((blocks, blocks))]
    ).tocsc()
    q = np.concatenate([np.zeros(n_u + n), np.full(blocks, problem.beta)])
    cones = [clarabel.ZeroConeT(n), clarabel.NonnegativeConeT(G.shape[0])] + [
        clarabel.SecondOrderConeT(d + 1) for _ in range(blocks)
    ]
    return Conic(sp.triu(Pm).tocsc(), q, A, b, cones, n_u, (K, P, d))


def _clarabel_prepare(inst: Instance) -> tuple[Instance, Conic]:
    return inst, conic_form(inst.problem)


_STATUS = {"Solved": "SUCCESS", "AlmostSolved": "SUCCESS", "MaxIterations": "MAX_STEPS"}


def _clarabel(prepared: tuple[Instance, Conic]) -> RunOutput:
    import clarabel

    inst, c = prepared
    settings = clarabel.DefaultSettings()
    settings.verbose = False
    solver = clarabel.DefaultSolver(c.P, c.q, c.A, c.b, c.cones, settings)
    result = solver.solve()
    x = np.asarray(result.x[: c.n_u]).reshape(c.shape)
    status = _STATUS.get(str(result.status), "BREAKDOWN")
    extras = {**_extras(inst, x), "clarabel_status": str(result.status)}
    return RunOutput(x, int(result.iterations), status, {}, extras)


# -- Adam on the non-convex network ----------------------------------------


def _network(inst: Instance, seed: int) -> torch.nn.Sequential:
    torch.manual_seed(seed)
    width = 2 * inst.problem.P
    d_in = inst.X.shape[1]
    return torch.nn.Sequential(
        torch.nn.Linear(d_in, width, dtype=torch.float64),
        torch.nn.ReLU(),
        torch.nn.Linear(width, 1, bias=False, dtype=torch.float64),
    )


def train_adam(inst: Instance, seed: int, lr: float) -> torch.nn.Sequential:
    """Full-batch Adam on :func:`network_objective` (the convex program's
    regularised objective in network form), ``inst.adam_steps`` steps."""
    net = _network(inst, seed)
    X = torch.from_numpy(inst.X)
    y = torch.from_numpy(inst.y)
    optimizer = torch.optim.Adam(net.parameters(), lr=lr)
    with one_thread():
        for _ in range(inst.adam_steps):
            optimizer.zero_grad()
            loss = network_objective(net, X, y, inst.problem.beta)
            loss.backward()
            optimizer.step()
    return net


@dataclass
class Trained:
    """Adam's networks of the evaluated seeds, trained once in ``prepare``."""

    nets: list[torch.nn.Sequential]
    losses: list[float]
    lr: float
    seconds: float


def _adam_prepare(inst: Instance) -> Trained:
    """Pick the learning rate of ``ADAM_LRS`` with the lowest final objective on
    the tuning seed (a non-finite objective never wins), then train the
    evaluated seeds with it. Training happens here, once, because no claim
    reads Adam's time and the runner's warm-up would train everything twice;
    the measured training time of the 5 seeds is in ``train_seconds``."""
    scores = []
    for lr in ADAM_LRS:
        value = evaluate(inst, train_adam(inst, TUNING_SEED, lr))
        scores.append(value if np.isfinite(value) else np.inf)
    lr = ADAM_LRS[int(np.argmin(scores))]
    start = time.perf_counter()
    nets = [train_adam(inst, seed, lr) for seed in ADAM_SEEDS]
    seconds = time.perf_counter() - start
    return Trained(nets, [evaluate(inst, net) for net in nets], lr, seconds)


def _adam(trained: Trained) -> RunOutput:
    """The best evaluated seed's network (trained in :func:`_adam_prepare`)."""
    losses = trained.losses
    best = int(np.nanargmin(losses))
    status = "SUCCESS" if all(np.isfinite(losses)) else "NONFINITE"
    extras = {
        "adam_lr": trained.lr,
        "adam_losses": " ".join(f"{v:.6g}" for v in losses),
        "adam_best_seed": ADAM_SEEDS[best],
        "train_seconds": trained.seconds,
    }
    return RunOutput(trained.nets[best], 0, status, {}, extras)


METHODS = [
    Method("admm", _admm, trace=_admm_trace, anchor="clarabel"),
    Method("clarabel", _clarabel, prepare=_clarabel_prepare, requires=("clarabel",)),
    Method("adam", _adam, prepare=_adam_prepare),
]


# -- claims ----------------------------------------------------------------


def _case_names(results: Results) -> list[str]:
    return sorted({r["dataset_name"] for r in results.rows})


def _gap_step(curve: dict[str, list[float]], p_star: float) -> int | None:
    """Index into the curve from which ``|f - p*| / p* <= GAP`` holds to the
    end (``None`` when the last point misses it)."""
    values = np.asarray(curve["objective"], dtype=float)
    ok = np.abs(values - p_star) <= GAP * abs(p_star)
    if not len(ok) or not ok[-1]:
        return None
    misses = np.nonzero(~ok)[0]
    return int(misses[-1] + 1) if len(misses) else 0


def _per_case(results: Results) -> dict[str, dict[str, Any]]:
    """Per case: ``p*``, ADMM's curve, the step and step time where it meets
    the gap for good, its final gap and violation; ``None`` entries where a row
    is missing."""
    out: dict[str, dict[str, Any]] = {}
    for case in _case_names(results):
        p_star = results.first(case, "clarabel", "objective_value")
        curve = results.first(case, "admm", "curve")
        info: dict[str, Any] = {"p_star": p_star, "curve": curve}
        if p_star is not None and curve:
            index = _gap_step(curve, p_star)
            info["step"] = None if index is None else int(curve["step"][index])
            info["time"] = None if index is None else float(curve["time"][index])
            info["final_gap"] = abs(curve["objective"][-1] - p_star) / abs(p_star)
        info["violation"] = results.first(case, "admm", "constraint_violation")
        out[case] = info
    return out


def _count_claim(results: Results) -> ClaimOutcome:
    cases = _per_case(results)
    if not cases or any(
        c.get("curve") is None or c["p_star"] is None for c in cases.values()
    ):
        return ClaimOutcome(None, None, "needs admm (with trace) and clarabel rows")
    ok = all(results.all_succeeded(case, "clarabel") for case in cases)
    steps = [c.get("step") for c in cases.values()]
    reached = [float(s) for s in steps if s is not None]
    worst = float(max(reached)) if len(reached) == len(steps) else None
    passed = ok and worst is not None and worst <= ADMM_STEPS
    detail = "; ".join(
        f"{case}: step {c.get('step')}, gap at {ADMM_STEPS} steps "
        f"{c.get('final_gap', float('nan')):.1e}, violation "
        f"{c['violation'] if c['violation'] is not None else float('nan'):.1e}"
        for case, c in cases.items()
    )
    if not ok:
        detail = "a Clarabel run did not succeed; " + detail
    return ClaimOutcome(worst if worst is not None else float("inf"), passed, detail)


def _timing_claim(results: Results) -> ClaimOutcome:
    cases = _per_case(results)
    ratios: list[float] = []
    parts = []
    for case, c in cases.items():
        clarabel_time = results.median(case, "clarabel", "time")
        admm_time = results.median(case, "admm", "time")
        if clarabel_time is None or c.get("curve") is None:
            return ClaimOutcome(None, None, f"no admm/clarabel rows for {case}")
        if c.get("time") is None:
            parts.append(f"{case}: gap {GAP:g} not reached")
            ratios.append(float("inf"))
            continue
        ratios.append(c["time"] / clarabel_time)
        parts.append(
            f"{case}: {c['time']:.3g} s (step {c['step']}) vs Clarabel "
            f"{clarabel_time:.3g} s; full {ADMM_STEPS}-step run {admm_time:.3g} s"
        )
    if not ratios:
        return ClaimOutcome(None, None, "no cases")
    worst = max(ratios)
    return ClaimOutcome(worst, worst < 1.0, "; ".join(parts))


def _recovery_claim(results: Results) -> ClaimOutcome:
    parts, errors = [], []
    for case in _case_names(results):
        err = results.first(case, "clarabel", "recovery_error")
        ours = results.first(case, "admm", "recovery_error")
        if err is None:
            return ClaimOutcome(None, None, f"no clarabel row for {case}")
        errors.append(float(err))
        ours = float("nan") if ours is None else ours
        parts.append(f"{case}: Clarabel {err:.1e}, ADMM {ours:.1e}")
    if not errors:
        return ClaimOutcome(None, None, "no cases")
    worst = max(errors)
    return ClaimOutcome(worst, worst <= RECOVERY, "; ".join(parts))


def _adam_claim(results: Results) -> ClaimOutcome:
    parts, margins = [], []
    for case in _case_names(results):
        p_star = results.first(case, "clarabel", "objective_value")
        adam = results.median(case, "adam", "objective_value")
        losses = results.first(case, "adam", "adam_losses")
        lr = results.first(case, "adam", "adam_lr")
        if p_star is None or adam is None:
            return ClaimOutcome(None, None, f"needs clarabel and adam rows for {case}")
        margins.append(p_star / adam)
        parts.append(
            f"{case}: p* {p_star:.6g} vs Adam (lr {lr}) best {adam:.6g} [{losses}]"
        )
    if not margins:
        return ClaimOutcome(None, None, "no cases")
    worst = max(margins)
    return ClaimOutcome(worst, worst <= 1.0, "; ".join(parts))


SUITES = [
    Suite(
        name="optimize-convex-relu",
        description=(
            "Convex program of a two-layer ReLU network (squared loss, group "
            "lasso, sampled arrangements): ADMM with factor-once linear systems "
            "vs Clarabel (conic form, default tolerances) on breast_cancer and "
            "digits 3-vs-8 with P = 25 and 50 arrangements (beta = 1e-3 n), the "
            "recovered ReLU network, and torch Adam (5 seeds) on the non-convex "
            "network of the same width and objective."
        ),
        objective_name="convex objective (networks: the same objective)",
        cases=cases,
        methods=METHODS,
        evaluate=evaluate,
        claims=[
            Claim(
                f"ADMM steps until |f - p*| / p* <= {GAP:g} for good (worst case; "
                "p* = Clarabel's optimum)",
                f"<= {ADMM_STEPS}",
                _count_claim,
            ),
            Claim(
                f"ADMM step time to gap {GAP:g} / Clarabel solve time (worst case; "
                "timing claim)",
                "< 1.0",
                _timing_claim,
            ),
            Claim(
                "recovered network's objective vs the convex objective at "
                "Clarabel's optimum (relative, worst case)",
                f"<= {RECOVERY:g}",
                _recovery_claim,
            ),
            Claim(
                "certified optimum p* / Adam's best of 5 seeds (same width, same "
                "regularised objective; worst case)",
                "<= 1.0",
                _adam_claim,
            ),
        ],
        repeats={"smoke": 1, "quick": 1, "full": 5},
        # smoke 13 s and quick 892 s measured at load 9-14 on 2 cores; the
        # idle figures are estimates (about a fifth of the loaded ones).
        estimate_seconds={"smoke": 5, "quick": 200, "full": 900},
    )
]
