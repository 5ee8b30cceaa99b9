"""linear-relaxation: Gauss–Seidel, SOR, SSOR-PCG vs pyamg relaxation and scipy CG.

2-D Poisson (5-point, Dirichlet), one random right-hand side, stopping rule
``||b - A x|| <= 1e-8 ||b||`` checked after every sweep for every method: pyamg's
``gauss_seidel``/``sor`` have no stopping rule, so the anchor is the loop a user
writes — one pyamg sweep, then the residual norm. The bare-sweep pair runs a fixed
number of sweeps without residuals on both sides (pure sweep cost). SOR uses Young's
optimal ``omega* = 2 / (1 + sin(pi / (n + 1)))``.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
import torch

import itersolve
from itersolve.bench.results import Results
from itersolve.bench.suite import Case, Claim, ClaimOutcome, Method, RunOutput, Suite
from itersolve.problems import poisson

RTOL = 1e-8
BARE_SWEEPS = 200
SSOR_OMEGA = 1.5


@dataclass(frozen=True)
class RelaxationProblem:
    A: sp.csr_matrix
    b: np.ndarray
    omega: float
    n: int


def _build(n: int) -> RelaxationProblem:
    A = sp.csr_matrix(poisson(n, dim=2))
    b = np.random.default_rng(n).standard_normal(n * n)
    return RelaxationProblem(A, b, 2.0 / (1.0 + math.sin(math.pi / (n + 1))), n)


def cases(scale: str) -> list[Case]:
    sizes = {"smoke": [16], "quick": [64, 256], "full": [64, 256, 512]}[scale]
    return [Case(f"poisson2d-{n}", partial(_build, n), {"n": n * n}) for n in sizes]


def evaluate(p: RelaxationProblem, x: Any) -> float:
    x = x.cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    return float(np.linalg.norm(p.b - p.A @ x) / np.linalg.norm(p.b))


def _small(case: Case) -> bool:
    return int(case.params["n"]) <= 64 * 64


# -- ours ----------------------------------------------------------------------


def _prepare(p: RelaxationProblem) -> tuple[Any, torch.Tensor, float]:
    return itersolve.aslinearoperator(p.A), torch.from_numpy(p.b), p.omega


def _ours(kind: str, prepared: tuple[Any, torch.Tensor, float]) -> RunOutput:
    op, b, omega = prepared
    method: Any
    if kind == "gauss-seidel":
        method = itersolve.GaussSeidel(rtol=RTOL, max_steps=20_000)
    elif kind == "sor":
        method = itersolve.SOR(omega=omega, rtol=RTOL, max_steps=20_000)
    elif kind == "ssor-pcg":
        method = itersolve.SSORPCG(omega=SSOR_OMEGA, rtol=RTOL)
    else:  # bare sweeps: no residual until the last one
        method = itersolve.SOR(
            omega=omega, rtol=RTOL, max_steps=BARE_SWEEPS, check_every=BARE_SWEEPS
        )
        with warnings.catch_warnings():  # MAX_STEPS is the point of a fixed count
            warnings.simplefilter("ignore", itersolve.ConvergenceWarning)
            sol = itersolve.linear_solve(op, b, method)
        return RunOutput(sol.x, sol.num_steps, "SUCCESS", {"sweeps": sol.num_steps})
    sol = itersolve.linear_solve(op, b, method)
    return RunOutput(sol.x, sol.num_steps, sol.status.name, {"sweeps": sol.num_steps})


# -- anchors -------------------------------------------------------------------


def _pyamg_loop(kind: str, p: RelaxationProblem) -> RunOutput:
    from pyamg.relaxation.relaxation import gauss_seidel, sor

    x = np.zeros_like(p.b)
    threshold = RTOL * np.linalg.norm(p.b)
    for k in range(1, 20_001):
        if kind == "gauss-seidel":
            gauss_seidel(p.A, x, p.b, iterations=1)
        else:
            sor(p.A, x, p.b, p.omega, iterations=1)
        if np.linalg.norm(p.b - p.A @ x) <= threshold:
            return RunOutput(x, k, "SUCCESS", {"sweeps": k})
    return RunOutput(x, k, "MAX_STEPS", {"sweeps": k})


def _pyamg_bare(p: RelaxationProblem) -> RunOutput:
    from pyamg.relaxation.relaxation import sor

    x = np.zeros_like(p.b)
    sor(p.A, x, p.b, p.omega, iterations=BARE_SWEEPS)
    return RunOutput(x, BARE_SWEEPS, "SUCCESS", {"sweeps": BARE_SWEEPS})


def _scipy_cg(p: RelaxationProblem) -> RunOutput:
    count = [0]

    def tick(_: Any) -> None:
        count[0] += 1

    x, info = spla.cg(
        p.A, p.b, rtol=RTOL, atol=0.0, maxiter=10 * p.A.shape[0], callback=tick
    )
    return RunOutput(x, count[0], "SUCCESS" if info == 0 else "MAX_STEPS")


def _pyamg_sa_prepare(p: RelaxationProblem) -> tuple[RelaxationProblem, Any]:
    import pyamg

    return p, pyamg.smoothed_aggregation_solver(p.A).aspreconditioner(cycle="V")


def _pyamg_sa_cg(prepared: tuple[RelaxationProblem, Any]) -> RunOutput:
    p, M = prepared
    count = [0]

    def tick(_: Any) -> None:
        count[0] += 1

    x, info = spla.cg(p.A, p.b, rtol=RTOL, atol=0.0, M=M, maxiter=1000, callback=tick)
    return RunOutput(x, count[0], "SUCCESS" if info == 0 else "MAX_STEPS")


# -- claims --------------------------------------------------------------------


def _fewer_sweeps(case: str, at_least: float):
    def check(results: Results) -> ClaimOutcome:
        ratio = results.ratio(
            case, "itersolve-gauss-seidel", "itersolve-sor", "num_steps"
        )
        if ratio is None:
            return ClaimOutcome(None, None, f"no rows for {case}")
        ok = results.all_succeeded(case, "itersolve-sor") and results.all_succeeded(
            case, "itersolve-gauss-seidel"
        )
        return ClaimOutcome(
            ratio, ok and ratio >= at_least, "" if ok else "a run failed"
        )

    return check


def _per_sweep(case: str, method: str, anchor: str, limit: float):
    def check(results: Results) -> ClaimOutcome:
        values = []
        for name in (method, anchor):
            t = results.median(case, name, "time")
            k = results.median(case, name, "num_steps")
            if t is None or not k:
                return ClaimOutcome(None, None, f"no rows for {case}")
            values.append(t / k)
        ok = results.all_succeeded(case, method) and results.all_succeeded(case, anchor)
        ratio = values[0] / values[1]
        return ClaimOutcome(ratio, ok and ratio <= limit, "" if ok else "a run failed")

    return check


SUITES = [
    Suite(
        name="linear-relaxation",
        description=(
            "2-D Poisson, one random rhs, ||b - Ax|| <= 1e-8 ||b|| checked each sweep: "
            "itersolve Gauss-Seidel / SOR(omega*) vs pyamg gauss_seidel / sor in a "
            "residual-checked loop; bare sweeps (no residual) vs pyamg sor; "
            f"SSOR-PCG (omega = {SSOR_OMEGA}) vs scipy CG and pyamg SA-AMG-PCG."
        ),
        objective_name="relative residual",
        cases=cases,
        evaluate=evaluate,
        methods=[
            Method(
                "pyamg-gauss-seidel",
                partial(_pyamg_loop, "gauss-seidel"),
                requires=("pyamg",),
                applies=_small,
            ),
            Method(
                "itersolve-gauss-seidel",
                partial(_ours, "gauss-seidel"),
                prepare=_prepare,
                anchor="pyamg-gauss-seidel",
                applies=_small,
            ),
            Method("pyamg-sor", partial(_pyamg_loop, "sor"), requires=("pyamg",)),
            Method(
                "itersolve-sor",
                partial(_ours, "sor"),
                prepare=_prepare,
                anchor="pyamg-sor",
            ),
            Method("pyamg-sor-bare", _pyamg_bare, requires=("pyamg",)),
            Method(
                "itersolve-sor-bare",
                partial(_ours, "bare"),
                prepare=_prepare,
                anchor="pyamg-sor-bare",
            ),
            Method("scipy-cg", _scipy_cg),
            Method(
                "pyamg-sa-cg",
                _pyamg_sa_cg,
                prepare=_pyamg_sa_prepare,
                requires=("pyamg",),
            ),
            Method(
                "itersolve-ssor-pcg",
                partial(_ours, "ssor-pcg"),
                prepare=_prepare,
                anchor="scipy-cg",
            ),
        ],
        claims=[
            Claim(
                "2-D Poisson 64^2: Gauss-Seidel sweeps / SOR(omega*) sweeps",
                ">= 5",
                _fewer_sweeps("poisson2d-64", 5.0),
            ),
            Claim(
                "SOR time per sweep ours / pyamg (residual checked each sweep), 64^2",
                "<= 1.0",
                _per_sweep("poisson2d-64", "itersolve-sor", "pyamg-sor", 1.0),
            ),
            Claim(
                "SOR time per sweep ours / pyamg (residual checked each sweep), 256^2",
                "<= 1.0",
                _per_sweep("poisson2d-256", "itersolve-sor", "pyamg-sor", 1.0),
            ),
            Claim(
                f"bare SOR sweeps ({BARE_SWEEPS}, no residual) ours / pyamg sor, 256^2",
                "<= 1.0",
                _per_sweep(
                    "poisson2d-256", "itersolve-sor-bare", "pyamg-sor-bare", 1.0
                ),
            ),
        ],
        repeats={"smoke": 1, "quick": 3, "full": 5},
        estimate_seconds={"smoke": 5, "quick": 120, "full": 600},
    )
]
