"""linear-krylov: itersolve CG / MINRES / GMRES vs scipy.sparse.linalg, and batches.

* 2-D Poisson (5-point, Dirichlet), one random right-hand side, every solver run
  to the same rule ``||b - A x|| <= rtol ||b||``: CG vs ``scipy...cg``, MINRES vs
  ``scipy...minres``, GMRES(20) vs ``scipy...gmres`` (restart 20).
  scipy's ``minres`` has its own, looser test (``||r|| <= rtol (||A|| ||x|| +
  ||b||)``), so its anchor is stopped by ``maxiter`` at the first iteration whose
  *true* residual meets the shared rule (found in an untimed calibration run):
  the best case for scipy, with no cost for checking.
* 1000 independent 64 x 64 SPD systems (condition number 100) solved as one
  batch ``A`` of shape ``(1000, 64, 64)`` vs a Python loop of ``scipy...cg``.
* CG preconditioned by pyamg smoothed aggregation (one V-cycle as ``M``) vs
  pyamg's own ``solve(accel="cg")`` on the same hierarchy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
import torch

import itersolve
from itersolve.bench.anchors import scipy_cg, scipy_status
from itersolve.bench.results import Results, ratio_at_most, speedup_at_least
from itersolve.bench.suite import Case, Claim, ClaimOutcome, Method, RunOutput, Suite
from itersolve.problems import poisson, random_spd

RTOL = 1e-6
RESTART = 20
BATCH, BATCH_N, BATCH_COND = 1000, 64, 100.0


@dataclass
class PoissonSystem:
    A: sp.csr_array
    b: np.ndarray
    n: int
    calibration: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SPDBatch:
    A: np.ndarray  # (B, n, n)
    b: np.ndarray  # (B, n)
    device: str = "cpu"  # where our batched solve runs (the scipy loop: CPU)


def _poisson(n: int) -> PoissonSystem:
    return PoissonSystem(
        poisson(n, dim=2), np.random.default_rng(n).standard_normal(n * n), n
    )


def _batch(count: int, n: int, device: str = "cpu") -> SPDBatch:
    A = random_spd(n, condition_number=BATCH_COND, batch=count, seed=count)
    rhs = np.random.default_rng(count).standard_normal((count, n))
    return SPDBatch(A, rhs, device)


def cases(scale: str) -> list[Case]:
    sizes = {"smoke": [16], "quick": [64, 256], "full": [64, 256, 512]}[scale]
    # GMRES(20) on Poisson needs many times CG's matvecs (~5600 at 256^2, a few
    # seconds a run on each side): up to 256^2 at quick, 512^2 only at full.
    out = [
        Case(
            f"poisson2d-{n}",
            partial(_poisson, n),
            {"n": n * n, "gmres": n <= 256 or scale == "full"},
        )
        for n in sizes
    ]
    count, n = (20, 16) if scale == "smoke" else (BATCH, BATCH_N)
    out.append(
        Case(f"spd-batch-{count}x{n}", partial(_batch, count, n), {"n": n, "B": count})
    )
    if scale != "smoke" and torch.cuda.is_available():
        out.append(
            Case(
                f"spd-batch-{count}x{n}-cuda",
                partial(_batch, count, n, "cuda"),
                {"n": n, "B": count, "device": "cuda"},
            )
        )
    return out


def evaluate(problem: Any, x: Any) -> float:
    x = x.cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    if isinstance(problem, SPDBatch):
        r = problem.b - np.einsum("bij,bj->bi", problem.A, x)
        return float(
            np.max(np.linalg.norm(r, axis=1) / np.linalg.norm(problem.b, axis=1))
        )
    r = problem.b - problem.A @ x
    return float(np.linalg.norm(r) / np.linalg.norm(problem.b))


def _is_poisson(case: Case) -> bool:
    return case.name.startswith("poisson")


def _gmres_applies(case: Case) -> bool:
    return _is_poisson(case) and bool(case.params.get("gmres"))


# -- ours ----------------------------------------------------------------------

_OURS = {
    "itersolve-cg": lambda: itersolve.linear.CG(rtol=RTOL),
    "itersolve-minres": lambda: itersolve.linear.MINRES(rtol=RTOL),
    "itersolve-gmres": lambda: itersolve.linear.GMRES(rtol=RTOL, restart=RESTART),
}


def _ours_prepare(p: PoissonSystem) -> tuple[Any, torch.Tensor]:
    return itersolve.aslinearoperator(p.A), torch.from_numpy(p.b)


def _ours_run(name: str, prepared: tuple[Any, torch.Tensor]) -> RunOutput:
    op, rhs = prepared
    sol = itersolve.linear_solve(op, rhs, _OURS[name]())
    return RunOutput(
        sol.x, sol.num_steps, sol.status.name, {"matvecs": sol.stats["matvecs"]}
    )


def _ours_trace(name: str, prepared: tuple[Any, torch.Tensor]) -> dict[str, list]:
    op, rhs = prepared
    sol = itersolve.linear_solve(op, rhs, _OURS[name](), record=True)
    assert sol.trace is not None
    return {
        "step": sol.trace["step"].tolist(),
        "objective": sol.trace["relative_residual"].tolist(),
        "time": sol.trace["time"].tolist(),
    }


def _ours_method(name: str, anchor: str, applies: Any = _is_poisson) -> Method:
    return Method(
        name,
        partial(_ours_run, name),
        prepare=_ours_prepare,
        trace=partial(_ours_trace, name),
        anchor=anchor,
        applies=applies,
    )


def _batch_prepare(p: SPDBatch) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.from_numpy(p.A).to(p.device), torch.from_numpy(p.b).to(p.device)


def _batch_run(prepared: tuple[torch.Tensor, torch.Tensor]) -> RunOutput:
    A, b = prepared
    sol = itersolve.linear_solve(A, b, itersolve.linear.CG(rtol=RTOL))
    return RunOutput(
        sol.x, sol.num_steps, sol.status.name, {"matvecs": sol.stats["matvecs"]}
    )


# -- scipy ---------------------------------------------------------------------


def _scipy_cg(p: PoissonSystem) -> RunOutput:
    x, info, steps = scipy_cg(p.A, p.b, RTOL)
    return RunOutput(x, steps, scipy_status(info), {"matvecs": steps})


def _scipy_gmres(p: PoissonSystem) -> RunOutput:
    count = [0]

    def callback(residual: float) -> None:
        count[0] += 1

    x, info = spla.gmres(
        p.A,
        p.b,
        rtol=RTOL,
        atol=0.0,
        restart=RESTART,
        maxiter=p.A.shape[0],
        callback=callback,
        callback_type="pr_norm",
    )
    return RunOutput(x, count[0], scipy_status(info), {"matvecs": count[0]})


def _minres_calibrate(p: PoissonSystem) -> PoissonSystem:
    """Untimed: the first scipy MINRES iteration whose true residual meets RTOL."""
    if "minres_steps" not in p.calibration:
        target = RTOL * np.linalg.norm(p.b)
        hits: list[int] = []
        count = [0]

        def callback(xk: np.ndarray) -> None:
            count[0] += 1
            if not hits and np.linalg.norm(p.b - p.A @ xk) <= target:
                hits.append(count[0])

        spla.minres(p.A, p.b, rtol=1e-15, maxiter=5 * p.A.shape[0], callback=callback)
        p.calibration["minres_steps"] = hits[0] if hits else 5 * p.A.shape[0]
    return p


def _scipy_minres(p: PoissonSystem) -> RunOutput:
    steps = p.calibration["minres_steps"]
    count = [0]

    def callback(xk: np.ndarray) -> None:
        count[0] += 1

    x, _ = spla.minres(p.A, p.b, rtol=1e-15, maxiter=steps, callback=callback)
    # Stopped by maxiter at the calibrated iteration; success means the shared rule.
    ok = np.linalg.norm(p.b - p.A @ x) <= RTOL * np.linalg.norm(p.b)
    return RunOutput(x, count[0], "SUCCESS" if ok else "MAX_STEPS", {"matvecs": steps})


def _scipy_trace(solver: str, p: PoissonSystem) -> dict[str, list[float]]:
    bnorm = np.linalg.norm(p.b)
    curve: dict[str, list[float]] = {"step": [], "objective": []}

    def record(xk: np.ndarray) -> None:
        curve["step"].append(len(curve["step"]) + 1)
        curve["objective"].append(float(np.linalg.norm(p.b - p.A @ xk) / bnorm))

    if solver == "cg":
        scipy_cg(p.A, p.b, RTOL, callback=record)
    else:
        spla.minres(
            p.A, p.b, rtol=1e-15, maxiter=p.calibration["minres_steps"], callback=record
        )
    return curve


def _scipy_batch_loop(p: SPDBatch) -> RunOutput:
    xs, total, ok = np.empty_like(p.b), 0, True
    for i in range(p.b.shape[0]):
        xs[i], info, steps = scipy_cg(p.A[i], p.b[i], RTOL)
        total += steps
        ok &= info == 0
    return RunOutput(
        xs, total // p.b.shape[0], "SUCCESS" if ok else "MAX_STEPS", {"matvecs": total}
    )


# -- pyamg ---------------------------------------------------------------------


def _amg_prepare(p: PoissonSystem) -> tuple[Any, PoissonSystem]:
    import pyamg

    return pyamg.smoothed_aggregation_solver(p.A), p


def _pyamg_run(prepared: tuple[Any, PoissonSystem]) -> RunOutput:
    ml, p = prepared
    residuals: list[float] = []
    x = ml.solve(p.b, tol=RTOL, accel="cg", maxiter=500, residuals=residuals)
    steps = max(len(residuals) - 1, 0)
    ok = np.linalg.norm(p.b - p.A @ x) <= RTOL * np.linalg.norm(p.b)
    return RunOutput(x, steps, "SUCCESS" if ok else "MAX_STEPS", {"matvecs": steps})


def _ours_amg_prepare(p: PoissonSystem) -> tuple[Any, torch.Tensor, Any]:
    import pyamg  # noqa: F401  (requires)

    ml = _amg_prepare(p)[0]
    cycle = ml.aspreconditioner(cycle="V")

    def precondition(r: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(cycle @ r.numpy())

    return itersolve.aslinearoperator(p.A), torch.from_numpy(p.b), precondition


def _ours_amg_run(prepared: tuple[Any, torch.Tensor, Any]) -> RunOutput:
    op, rhs, precondition = prepared
    sol = itersolve.linear_solve(
        op, rhs, itersolve.linear.CG(rtol=RTOL, M=precondition)
    )
    return RunOutput(
        sol.x, sol.num_steps, sol.status.name, {"matvecs": sol.stats["matvecs"]}
    )


# -- claims --------------------------------------------------------------------

_PAIRS = [
    ("itersolve-cg", "scipy-cg"),
    ("itersolve-minres", "scipy-minres"),
    ("itersolve-gmres", "scipy-gmres"),
]


def _iteration_gap(results: Results) -> ClaimOutcome:
    gaps, failed = [], []
    for case in dict.fromkeys(r["dataset_name"] for r in results.rows):
        for ours, ref in _PAIRS:
            a = results.median(case, ours, "num_steps")
            b = results.median(case, ref, "num_steps")
            if a is None or not b:
                continue
            gaps.append(abs(a - b) / b)
            if not (
                results.all_succeeded(case, ours) and results.all_succeeded(case, ref)
            ):
                failed.append(f"{ours}@{case}")
    if not gaps:
        return ClaimOutcome(None, None, "no rows")
    detail = f"runs failed: {failed}" if failed else ""
    return ClaimOutcome(max(gaps), max(gaps) <= 0.02 and not failed, detail)


def _same_residual(results: Results) -> ClaimOutcome:
    """Every run of ours meets the rule (the batched and pyamg-preconditioned
    ones too), and the paired ones' final true residual is within a factor 2 of
    its scipy anchor's on the same case (no solver stops much earlier or later
    than the other)."""
    worst, detail = 0.0, []
    paired = {ours for ours, _ in _PAIRS}
    for case, method in dict.fromkeys(
        (r["dataset_name"], r["solver_name"]) for r in results.rows
    ):
        if method.startswith("itersolve") and method not in paired:
            a = results.median(case, method, "objective_value")
            if a is not None and not a <= RTOL:
                detail.append(f"{method}@{case} residual {a:.2e} > {RTOL:g}")
    for case in dict.fromkeys(r["dataset_name"] for r in results.rows):
        for ours, ref in _PAIRS:
            a = results.median(case, ours, "objective_value")
            b = results.median(case, ref, "objective_value")
            if a is None or b is None:
                continue
            if not a <= RTOL:
                detail.append(f"{ours}@{case} residual {a:.2e} > {RTOL:g}")
            factor = max(a, b) / max(min(a, b), 1e-300)
            worst = max(worst, factor)
            if factor > 2:
                detail.append(f"{ours}@{case} {a:.2e} vs scipy {b:.2e}")
    if worst == 0.0:
        return ClaimOutcome(None, None, "no rows")
    return ClaimOutcome(worst, not detail, "; ".join(detail))


def _time_claims() -> list[Claim]:
    # CG's single right-hand-side time claims are linear-poisson's (the CG
    # showcase, with its bandwidth figures); here MINRES and GMRES.
    out = []
    for ours, ref in _PAIRS[1:]:
        label = ours.removeprefix("itersolve-").upper()
        for n, limit in ((256, 1.0), (64, 1.5)):
            out.append(
                Claim(
                    f"{label} {n}^2: time ours/scipy",
                    f"<= {limit}",
                    ratio_at_most(f"poisson2d-{n}", ours, ref, limit),
                )
            )
    return out


SUITES = [
    Suite(
        name="linear-krylov",
        description=(
            "2-D Poisson (5-point, Dirichlet), one random right-hand side, to "
            f"||b - Ax|| <= {RTOL:g} ||b||: itersolve CG / MINRES / "
            f"GMRES({RESTART}) vs "
            "scipy.sparse.linalg cg / minres (stopped at the first iteration meeting "
            "the same true-residual rule) / gmres; CG with a pyamg smoothed-"
            f"aggregation V-cycle vs pyamg's own CG; {BATCH} SPD {BATCH_N}x{BATCH_N} "
            "systems (cond 100) as one batch vs a loop of scipy cg."
        ),
        objective_name="relative residual",
        cases=cases,
        evaluate=evaluate,
        methods=[
            Method(
                "scipy-cg",
                _scipy_cg,
                trace=partial(_scipy_trace, "cg"),
                applies=_is_poisson,
            ),
            _ours_method("itersolve-cg", "scipy-cg"),
            Method(
                "scipy-minres",
                _scipy_minres,
                prepare=_minres_calibrate,
                trace=partial(_scipy_trace, "minres"),
                applies=_is_poisson,
            ),
            _ours_method("itersolve-minres", "scipy-minres"),
            Method("scipy-gmres", _scipy_gmres, applies=_gmres_applies),
            _ours_method("itersolve-gmres", "scipy-gmres", _gmres_applies),
            Method(
                "pyamg-sa-cg",
                _pyamg_run,
                prepare=_amg_prepare,
                requires=("pyamg",),
                applies=_is_poisson,
            ),
            Method(
                "itersolve-cg-pyamg-sa",
                _ours_amg_run,
                prepare=_ours_amg_prepare,
                anchor="pyamg-sa-cg",
                requires=("pyamg",),
                applies=_is_poisson,
            ),
            Method(
                "scipy-cg-loop",
                _scipy_batch_loop,
                applies=lambda c: not _is_poisson(c),
            ),
            Method(
                "itersolve-cg-batch",
                _batch_run,
                prepare=_batch_prepare,
                anchor="scipy-cg-loop",
                applies=lambda c: not _is_poisson(c),
            ),
        ],
        claims=[
            Claim(
                "iteration counts equal scipy's within 2% "
                "(CG, MINRES, GMRES; all sizes)",
                "<= 0.02",
                _iteration_gap,
            ),
            Claim(
                f"every itersolve run reaches the true residual rule (<= {RTOL:g}) "
                "and ends within a factor 2 of scipy's true residual: worst factor",
                "<= 2",
                _same_residual,
            ),
            *_time_claims(),
            Claim(
                f"{BATCH} SPD {BATCH_N}x{BATCH_N} as one batch vs a loop of scipy cg: "
                "speed-up",
                ">= 3",
                speedup_at_least(
                    f"spd-batch-{BATCH}x{BATCH_N}",
                    "itersolve-cg-batch",
                    "scipy-cg-loop",
                    3.0,
                ),
            ),
            Claim(
                f"GPU: {BATCH} SPD {BATCH_N}x{BATCH_N} as one batch on CUDA vs a "
                "loop of scipy cg: speed-up",
                ">= 3",
                speedup_at_least(
                    f"spd-batch-{BATCH}x{BATCH_N}-cuda",
                    "itersolve-cg-batch",
                    "scipy-cg-loop",
                    3.0,
                ),
            ),
            Claim(
                "CG + pyamg SA V-cycle vs pyamg solve(accel='cg'), 256^2: time ratio",
                "<= 1.0",
                ratio_at_most(
                    "poisson2d-256", "itersolve-cg-pyamg-sa", "pyamg-sa-cg", 1.0
                ),
            ),
        ],
        repeats={"smoke": 1, "quick": 5, "full": 5},
        estimate_seconds={"smoke": 5, "quick": 70, "full": 900},
    )
]
