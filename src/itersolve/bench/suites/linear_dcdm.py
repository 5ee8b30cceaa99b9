"""linear-dcdm: the deep conjugate direction method on pressure-Poisson systems
with obstacles, against CG, IC(0)-preconditioned CG and AMG-preconditioned CG.

Kaneda et al., *A Deep Conjugate Direction Method for Iteratively Solving
Linear Systems* (ICML 2023), 2-D analogue (spec 05, CPU-small): one
:class:`~itersolve.nn.DCDMNet` is trained unsupervised
(:func:`~itersolve.nn.train_dcdm`, Ritz-vector right-hand sides) on a few
``64^2`` obstacle layouts (:func:`~itersolve.problems.obstacle_poisson`,
seeds 100+), then tested on unseen layouts (seeds 0+) rasterised at ``32^2``,
``64^2`` and ``128^2``: :class:`~itersolve.linear.FlexibleCG` with
``truncation=2`` and ``M=LearnedPreconditioner(net, mask=fluid)`` (the
shared Krylov engine; DCDM's "last two directions" window).

Every method solves each test system ``A x = b`` (``b`` a smooth source field,
:meth:`ObstaclePoisson.rhs`) from ``x0 = 0`` to ``||b - A x|| <= 1e-4 ||b||``
(scipy ``cg``: ``rtol=1e-4, atol=0``, the same rule since ``r0 = b``);
:func:`evaluate` recomputes the worst true relative residual in float64.

Network used for the claims: ``DCDMNet(activation=None)``, a *linear*
fully convolutional U-Net (per-level weights), trained with the ``"energy"``
loss. During development the paper's ReLU network, trained for the few CPU
minutes of the quick scale, stalled inside FlexibleCG(2) on most test systems
(relative residual stuck near 1), while the linear one converged; the ReLU
network runs as ``dcdm-relu`` at full scale, without a claim.

Rows: one per (size, method), every test layout solved once inside the
method's warm-up call (:func:`~itersolve.bench.suite.memoised`): iteration
counts do not depend on the clock. The row's ``time`` is therefore not a
solve time; ``seconds_per_solve`` (median over layouts, each solve timed once,
setup excluded) and ``setup_seconds`` (IC(0) factorisation, AMG hierarchy) are.
The training cost (``train_seconds``, ``train_samples``) is reported apart.

Claims (thresholds fixed before any run):

* DCDM mean iterations <= 1/4 of CG's on unseen ``64^2`` layouts (the
  training size), and the same at ``128^2`` with the ``64^2``-trained net.
* Growth: ``it(128)/it(32)`` of DCDM <= half of CG's (CG's ratio is about 4:
  its iterations grow like ``sqrt(cond) ~ n``), i.e. DCDM's count grows at most
  half as fast over the 4x refinement.
* Wall time per solve, DCDM / AMG-PCG at ``128^2``: REPORTED, no verdict (a
  timing figure; on CPU one CNN application costs far more than one V-cycle,
  so DCDM is expected to be slower).

A DCDM solve that hits the step cap (``Config.cap``: 300 at quick) counts
with the cap and FAILS the iteration claims through its status.
"""

from __future__ import annotations

import statistics
import time
import warnings
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from itersolve import ConvergenceWarning
from itersolve.bench.anchors import scipy_cg
from itersolve.bench.results import Results
from itersolve.bench.suite import (
    Case,
    Claim,
    ClaimOutcome,
    Memo,
    Method,
    RunOutput,
    Suite,
    memoised,
)
from itersolve.linear import FlexibleCG, LearnedPreconditioner, linear_solve
from itersolve.nn import DCDMNet, DCDMTraining, train_dcdm
from itersolve.problems import ObstaclePoisson, obstacle_poisson

RTOL = 1e-4


@dataclass(frozen=True)
class Config:
    train_n: int
    train_layouts: int
    n_samples: int
    epochs: int
    n_lanczos: int
    channels: int
    levels: int
    lr: float
    sizes: tuple[int, int, int]
    """(small, training size, large) test grids."""
    test_layouts: int
    cap: int
    """Most DCDM steps per solve: above every count the claims could accept
    (CG's count at the large size is about 550 at quick scale)."""


CONFIGS = {
    "smoke": Config(16, 2, 40, 1, 20, 4, 2, 1e-3, (8, 16, 32), 1, 40),
    "quick": Config(64, 4, 2000, 3, 200, 8, 4, 1e-3, (32, 64, 128), 5, 300),
    "full": Config(64, 8, 20000, 10, 1000, 16, 4, 1e-4, (32, 64, 128), 20, 600),
}
ROLES = ("small", "train", "large")

_TRAINED: dict[tuple[str, str | None], tuple[DCDMNet, DCDMTraining]] = {}


def trained(scale: str, activation: str | None = None) -> tuple[Any, DCDMTraining]:
    """The network of this scale, trained once per process (seeded)."""
    key = (scale, activation)
    if key not in _TRAINED:
        cfg = CONFIGS[scale]
        layouts = [
            obstacle_poisson(cfg.train_n, "mixed", seed=100 + i)
            for i in range(cfg.train_layouts)
        ]
        net = DCDMNet(cfg.channels, cfg.levels, activation=activation, seed=0)
        report = train_dcdm(
            net,
            [p.A for p in layouts],
            mask=[p.fluid for p in layouts],
            n_samples=cfg.n_samples,
            epochs=cfg.epochs,
            lr=cfg.lr,
            n_lanczos=cfg.n_lanczos,
            loss="energy",
            seed=0,
        )
        _TRAINED[key] = (net, report)
    return _TRAINED[key]


@dataclass
class Instance:
    scale: str
    n: int
    systems: list[tuple[ObstaclePoisson, np.ndarray]]


def _build(scale: str, n: int) -> Instance:
    cfg = CONFIGS[scale]
    systems = []
    for seed in range(cfg.test_layouts):
        p = obstacle_poisson(n, "mixed", seed=seed)
        systems.append((p, p.rhs(seed)))
    return Instance(scale, n, systems)


def cases(scale: str) -> list[Case]:
    cfg = CONFIGS[scale]
    return [
        Case(
            f"obstacles-{n}",
            partial(_build, scale, n),
            {"n": n, "role": role, "layouts": cfg.test_layouts, "scale": scale},
        )
        for n, role in zip(cfg.sizes, ROLES, strict=True)
    ]


def _instance(problem: Any) -> Instance:
    return problem.case if isinstance(problem, Memo) else problem


def evaluate(problem: Any, x: Any) -> float:
    """Worst true relative residual ``||b - A x|| / ||b||`` over the layouts."""
    inst = _instance(problem)
    worst = 0.0
    for (p, b), xi in zip(inst.systems, x, strict=True):
        xi = np.asarray(xi, dtype=np.float64)
        worst = max(worst, float(np.linalg.norm(b - p.A @ xi) / np.linalg.norm(b)))
    return worst


def _summary(
    xs: list[np.ndarray],
    steps: list[int],
    statuses: list[str],
    seconds: list[float],
    setup: list[float],
    extra: dict[str, float] | None = None,
) -> RunOutput:
    failed = [s for s in statuses if s != "SUCCESS"]
    counters = {
        "mean_iterations": float(np.mean(steps)),
        "max_iterations": float(max(steps)),
        "solved": float(len(steps) - len(failed)),
        "seconds_per_solve": statistics.median(seconds),
        "setup_seconds": statistics.median(setup),
        **(extra or {}),
    }
    return RunOutput(
        xs, int(max(steps)), failed[0] if failed else "SUCCESS", counters, {}
    )


def _scipy_pcg(make_m: Any, inst: Instance) -> RunOutput:
    xs, steps, statuses, seconds, setup = [], [], [], [], []
    for p, b in inst.systems:
        start = time.perf_counter()
        M = make_m(p.A)
        setup.append(time.perf_counter() - start)
        start = time.perf_counter()
        x, info, k = scipy_cg(p.A, b, RTOL, M=M)
        seconds.append(time.perf_counter() - start)
        xs.append(x)
        steps.append(k)
        statuses.append("SUCCESS" if info == 0 else "MAX_STEPS")
    return _summary(xs, steps, statuses, seconds, setup)


def _no_preconditioner(A: Any) -> None:
    return None


def ic0(A: Any) -> sp.csr_array:
    """Incomplete Cholesky IC(0) ``L`` (``L L^T ~ A`` on the pattern of ``A``).

    For a 5-point matrix in row-major order the two lower neighbours of a
    cell (left, up) are never neighbours of each other, so IC(0) drops every
    update but the diagonal's: ``L_ij = A_ij / L_jj``,
    ``L_ii = sqrt(A_ii - sum_j L_ij^2)``. scipy has no incomplete Cholesky,
    and its ``spilu`` with the memory of IC(0) (``fill_factor=1``) diverged
    inside CG on these matrices (with ``fill_factor=10`` it is a near-direct
    solve at ``32^2`` and stalls at ``64^2``), so IC(0) is built here.

    Examples
    --------
    >>> from itersolve.problems import obstacle_poisson
    >>> A = obstacle_poisson(8, "disks", seed=0).A
    >>> L = ic0(A)
    >>> bool(abs((L @ L.T - A).multiply(A != 0)).max() < 1e-12)
    True
    """
    L = sp.csr_array(sp.tril(A, format="csr"), dtype=np.float64)
    L.sort_indices()
    indptr, indices, data = L.indptr, L.indices, L.data.copy()
    diag = np.empty(A.shape[0])
    for i in range(A.shape[0]):
        lo, hi = indptr[i], indptr[i + 1] - 1  # the diagonal is the row's last
        vals = data[lo:hi] / diag[indices[lo:hi]]
        data[lo:hi] = vals
        diag[i] = np.sqrt(data[hi] - vals @ vals)
        data[hi] = diag[i]
    return sp.csr_array((data, indices, indptr), shape=A.shape)


def _ic0(A: Any) -> spla.LinearOperator:
    """``r -> L^{-T} L^{-1} r`` with IC(0) (:func:`ic0`); the triangular solves
    by SuperLU on the triangular factors in natural order (no fill)."""
    L = ic0(A)
    opts = {
        "permc_spec": "NATURAL",
        "diag_pivot_thresh": 0.0,
        "options": {"SymmetricMode": True},
    }
    lower = spla.splu(sp.csc_matrix(L), **opts)
    upper = spla.splu(sp.csc_matrix(L.T), **opts)
    return spla.LinearOperator(A.shape, lambda r: upper.solve(lower.solve(r)))


def _amg(A: Any) -> Any:
    import pyamg

    return pyamg.smoothed_aggregation_solver(A).aspreconditioner(cycle="V")


def _dcdm(activation: str | None, inst: Instance) -> RunOutput:
    net, report = trained(inst.scale, activation)
    xs, steps, statuses, seconds, evals = [], [], [], [], []
    for p, b in inst.systems:
        M = LearnedPreconditioner(net, mask=p.fluid)
        cap = CONFIGS[inst.scale].cap
        method = FlexibleCG(rtol=RTOL, truncation=2, M=M, max_steps=cap)
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            sol = linear_solve(p.A, b, method)
        seconds.append(time.perf_counter() - start)
        xs.append(sol.x)
        steps.append(sol.num_steps)
        statuses.append(sol.status.name)
        evals.append(M.calls)
    extra = {
        "net_evals": float(np.mean(evals)),
        "train_seconds": report.seconds,
        "train_samples": float(report.n_samples),
        "train_loss": report.best_loss,
    }
    return _summary(xs, steps, statuses, seconds, [0.0], extra)


# -- claims --------------------------------------------------------------------


def _case_of(results: Results, role: str) -> str | None:
    for r in results.rows:
        if (r.get("params") or {}).get("role") == role:
            return str(r["dataset_name"])
    return None


def _iterations(results: Results, case: str, method: str) -> float | None:
    return results.median(case, method, "mean_iterations")


def _anchors_note(results: Results, case: str) -> str:
    parts = []
    for m in ("scipy-cg", "ic0-pcg", "pyamg-sa-pcg", "dcdm"):
        it = _iterations(results, case, m)
        if it is not None:
            parts.append(f"{m} {it:.1f}")
    return f"{case} mean iterations: " + ", ".join(parts)


def _fraction_of_cg(role: str) -> Any:
    def check(results: Results) -> ClaimOutcome:
        case = _case_of(results, role)
        if case is None:
            return ClaimOutcome(None, None, "no rows")
        ours = _iterations(results, case, "dcdm")
        cg = _iterations(results, case, "scipy-cg")
        if ours is None or not cg:
            return ClaimOutcome(None, None, f"no dcdm/scipy-cg rows on {case}")
        ratio = ours / cg
        solved = results.all_succeeded(case, "dcdm")
        detail = _anchors_note(results, case)
        if not solved:
            detail += "; DCDM did not solve every layout (step cap)"
        return ClaimOutcome(ratio, ratio <= 0.25 and solved, detail)

    return check


def _growth(results: Results) -> ClaimOutcome:
    small, large = _case_of(results, "small"), _case_of(results, "large")
    if small is None or large is None:
        return ClaimOutcome(None, None, "no rows")
    its = {
        m: (_iterations(results, small, m), _iterations(results, large, m))
        for m in ("dcdm", "scipy-cg")
    }
    if any(a is None or not b or not a for a, b in its.values()):
        return ClaimOutcome(None, None, "missing rows")
    growth = {m: b / a for m, (a, b) in its.items()}  # type: ignore[operator]
    measured = growth["dcdm"] / growth["scipy-cg"]
    solved = results.all_succeeded(large, "dcdm")
    detail = (
        f"it({large})/it({small}): DCDM {its['dcdm'][1]:.1f}/{its['dcdm'][0]:.1f} "
        f"= {growth['dcdm']:.2f}, CG {its['scipy-cg'][1]:.1f}/"
        f"{its['scipy-cg'][0]:.1f} = {growth['scipy-cg']:.2f}"
    )
    if not solved:
        detail += f"; DCDM hit the step cap on {large}: its growth is a floor"
    return ClaimOutcome(measured, measured <= 0.5 and solved, detail)


def _time_vs_amg(results: Results) -> ClaimOutcome:
    case = _case_of(results, "large")
    if case is None:
        return ClaimOutcome(None, None, "no rows")
    ours = results.median(case, "dcdm", "seconds_per_solve")
    amg = results.median(case, "pyamg-sa-pcg", "seconds_per_solve")
    amg_setup = results.median(case, "pyamg-sa-pcg", "setup_seconds")
    train = results.median(case, "dcdm", "train_seconds")
    if ours is None or not amg:
        return ClaimOutcome(None, None, "no dcdm/pyamg rows (pyamg missing?)")
    ratio = ours / amg
    detail = (
        f"reported, no verdict (expected > 1 on CPU); {case}: DCDM {ours:.3g} s "
        f"per solve, AMG-PCG {amg:.3g} s (+ {amg_setup or 0:.3g} s setup per "
        f"matrix); DCDM training {train or 0:.3g} s once; timing figure: judge "
        "on an idle machine"
    )
    return ClaimOutcome(ratio, None, detail)


SUITES = [
    Suite(
        name="linear-dcdm",
        description=(
            "Deep conjugate direction method (Kaneda et al., ICML 2023), 2-D: a "
            "CNN trained unsupervised on 64^2 obstacle layouts as the M of "
            "FlexibleCG(truncation=2), tested on unseen layouts at 32^2, 64^2, "
            f"128^2 to ||b - Ax|| <= {RTOL:g} ||b||, vs scipy cg, IC(0)-PCG and "
            "pyamg SA-PCG."
        ),
        objective_name="worst true relative residual",
        cases=cases,
        evaluate=evaluate,
        methods=[
            Method(
                "scipy-cg",
                memoised(partial(_scipy_pcg, _no_preconditioner), "cg"),
                prepare=Memo,
            ),
            Method(
                "ic0-pcg",
                memoised(partial(_scipy_pcg, _ic0), "ic0"),
                prepare=Memo,
            ),
            Method(
                "pyamg-sa-pcg",
                memoised(partial(_scipy_pcg, _amg), "amg"),
                prepare=Memo,
                requires=("pyamg",),
            ),
            Method(
                "dcdm",
                memoised(partial(_dcdm, None), "dcdm"),
                prepare=Memo,
                anchor="scipy-cg",
            ),
            Method(
                "dcdm-relu",
                memoised(partial(_dcdm, "relu"), "dcdm-relu"),
                prepare=Memo,
                applies=lambda c: c.params.get("scale") == "full",
            ),
        ],
        claims=[
            Claim(
                "DCDM mean iterations / CG's, unseen 64^2 layouts (training size)",
                "<= 0.25",
                _fraction_of_cg("train"),
            ),
            Claim(
                "DCDM mean iterations / CG's, 128^2 (64^2-trained net)",
                "<= 0.25",
                _fraction_of_cg("large"),
            ),
            Claim(
                "growth it(128^2)/it(32^2): DCDM's / CG's",
                "<= 0.5",
                _growth,
            ),
            Claim(
                "wall time per solve DCDM / AMG-PCG at 128^2 (reported)",
                "reported",
                _time_vs_amg,
            ),
        ],
        repeats={"smoke": 1, "quick": 1, "full": 1},
        estimate_seconds={"smoke": 10, "quick": 40, "full": 3600},
    )
]
