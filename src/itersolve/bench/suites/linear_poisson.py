"""linear-poisson: itersolve CG vs scipy.sparse.linalg.cg on the 2-D Poisson matrix."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

import itersolve
from itersolve.bench.anchors import scipy_cg
from itersolve.bench.results import Results, ratio_at_most, speedup_at_least
from itersolve.bench.suite import Case, Claim, ClaimOutcome, Method, RunOutput, Suite
from itersolve.problems import poisson

RTOL = 1e-6
BATCH = 32


@dataclass(frozen=True)
class PoissonSystems:
    A: sp.csr_array
    b: np.ndarray
    B: np.ndarray
    device: str = "cpu"


def _build(n: int, device: str = "cpu") -> PoissonSystems:
    rng = np.random.default_rng(n)
    A = poisson(n, dim=2)
    return PoissonSystems(
        A, rng.standard_normal(n * n), rng.standard_normal((n * n, BATCH)), device
    )


def bytes_per_step(n: int) -> int:
    """Memory traffic of one CG step on the ``n x n`` grid, the physical reference.

    One SpMV (values 8 B and int32 column indices 4 B per nonzero, int32 row
    pointers, ``p`` read and ``q`` written once) plus the vector updates of
    itersolve's step (``r -= alpha q``: 3 vector touches; ``x += alpha p`` and
    ``p = r + beta p``: 5), 8 B per float64 entry.
    """
    rows = n * n
    nnz = 5 * rows - 4 * n  # the 5-point stencil minus the missing boundary arms
    return 12 * nnz + 4 * (rows + 1) + 8 * rows * (2 + 3 + 5)


def cases(scale: str) -> list[Case]:
    sizes = {"smoke": [16], "quick": [64, 128, 256], "full": [64, 128, 256, 512]}[scale]
    out = [
        Case(
            f"poisson2d-{n}",
            partial(_build, n),
            {"n": n * n, "bytes_per_step": bytes_per_step(n)},
        )
        for n in sizes
    ]
    if scale != "smoke" and torch.cuda.is_available():
        out.append(
            Case("poisson2d-256-cuda", lambda: _build(256, "cuda"), {"n": 256**2})
        )
    return out


def evaluate(problem: PoissonSystems, x: Any) -> float:
    x = x.cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    b = problem.B if x.ndim == 2 else problem.b
    r = b - problem.A @ x
    return float(np.max(np.linalg.norm(r, axis=0) / np.linalg.norm(b, axis=0)))


# -- ours ----------------------------------------------------------------------


def _ours_prepare(batched: bool):
    def prepare(p: PoissonSystems) -> tuple[Any, torch.Tensor]:
        op = itersolve.aslinearoperator(p.A, device=p.device)
        rhs = torch.from_numpy(p.B if batched else p.b).to(p.device)
        return op, rhs

    return prepare


def _ours_run(prepared: tuple[Any, torch.Tensor]) -> RunOutput:
    op, rhs = prepared
    sol = itersolve.linear_solve(op, rhs, itersolve.linear.CG(rtol=RTOL))
    return RunOutput(
        sol.x, sol.num_steps, sol.status.name, {"matvecs": sol.stats["matvecs"]}
    )


def _ours_trace(prepared: tuple[Any, torch.Tensor]) -> dict[str, list[float]]:
    op, rhs = prepared
    sol = itersolve.linear_solve(op, rhs, itersolve.linear.CG(rtol=RTOL), record=True)
    assert sol.trace is not None
    return {
        "step": sol.trace["step"].tolist(),
        "objective": sol.trace["relative_residual"].tolist(),
        "time": sol.trace["time"].tolist(),
    }


# -- scipy ---------------------------------------------------------------------


def _scipy_solve(
    A: sp.csr_array, b: np.ndarray, callback: Any = None
) -> tuple[np.ndarray, int, int]:
    return scipy_cg(A, b, RTOL, callback=callback)


def _scipy_run(p: PoissonSystems) -> RunOutput:
    x, info, steps = _scipy_solve(p.A, p.b)
    return RunOutput(
        x, steps, "SUCCESS" if info == 0 else "MAX_STEPS", {"matvecs": steps}
    )


def _scipy_run_sequential(p: PoissonSystems) -> RunOutput:
    xs, total, ok = [], 0, True
    for j in range(p.B.shape[1]):
        x, info, steps = _scipy_solve(p.A, p.B[:, j])
        xs.append(x)
        total += steps
        ok &= info == 0
    return RunOutput(
        np.stack(xs, axis=1),
        total // p.B.shape[1],
        "SUCCESS" if ok else "MAX_STEPS",
        {"matvecs": total},
    )


def _scipy_trace(p: PoissonSystems) -> dict[str, list[float]]:
    bnorm = np.linalg.norm(p.b)
    curve: dict[str, list[float]] = {"step": [], "objective": []}

    def record(xk: np.ndarray) -> None:
        curve["step"].append(len(curve["step"]) + 1)
        curve["objective"].append(float(np.linalg.norm(p.b - p.A @ xk) / bnorm))

    _scipy_solve(p.A, p.b, record)
    return curve


# -- claims --------------------------------------------------------------------


def _same_iterations(results: Results) -> ClaimOutcome:
    gaps = []
    for case in dict.fromkeys(r["dataset_name"] for r in results.rows):
        ours = results.median(case, "itersolve-cg", "num_steps")
        ref = results.median(case, "scipy-cg", "num_steps")
        if ours is not None and ref:
            gaps.append(abs(ours - ref) / ref)
    if not gaps:
        return ClaimOutcome(None, None, "no rows")
    return ClaimOutcome(max(gaps), max(gaps) <= 0.02)


def bandwidth(results: Results, case: str, method: str) -> float | None:
    """Achieved GB/s: :func:`bytes_per_step` x steps / median time."""
    rows = results.select(case, method)
    time = results.median(case, method)
    steps = results.median(case, method, "num_steps")
    if not rows or not time or steps is None:
        return None
    per_step = (rows[0].get("params") or {}).get("bytes_per_step")
    return None if per_step is None else per_step * steps / time / 1e9


def _ratio_with_bandwidth(case: str, limit: float):
    """Time ours/scipy <= limit; the detail gives both GB/s (same byte count)."""
    ratio = ratio_at_most(case, "itersolve-cg", "scipy-cg", limit)

    def check(results: Results) -> ClaimOutcome:
        outcome = ratio(results)
        rates = [bandwidth(results, case, m) for m in ("itersolve-cg", "scipy-cg")]
        if None in rates:
            return outcome
        note = f"CG {rates[0]:.1f} GB/s (scipy {rates[1]:.1f} GB/s on the same bytes)"
        detail = "; ".join(d for d in (note, outcome.detail) if d)
        return ClaimOutcome(outcome.measured, outcome.passed, detail)

    return check


SUITES = [
    Suite(
        name="linear-poisson",
        # make bench: 64^2 and 256^2 carry the timing claims; 128^2 runs in
        # make bench-full.
        headline="-(64|256)$",
        description=(
            "2-D Poisson (5-point, Dirichlet), random right-hand sides, CG to "
            f"||b - Ax|| <= {RTOL:g} ||b||: itersolve CG vs scipy.sparse.linalg.cg, "
            f"and {BATCH} right-hand sides at once vs {BATCH} scipy calls."
        ),
        objective_name="relative residual",
        cases=cases,
        evaluate=evaluate,
        methods=[
            Method(
                "scipy-cg",
                _scipy_run,
                trace=_scipy_trace,
                applies=lambda c: not c.name.endswith("cuda"),
            ),
            Method(
                "itersolve-cg",
                _ours_run,
                prepare=_ours_prepare(False),
                trace=_ours_trace,
                anchor="scipy-cg",
                applies=lambda c: not c.name.endswith("cuda"),
            ),
            Method(f"scipy-cg-x{BATCH}", _scipy_run_sequential),
            Method(
                f"itersolve-cg-batch{BATCH}",
                _ours_run,
                prepare=_ours_prepare(True),
                anchor=f"scipy-cg-x{BATCH}",
            ),
        ],
        claims=[
            Claim(
                "iteration count equals scipy CG's within 2% (all sizes)",
                "<= 0.02",
                _same_iterations,
            ),
            Claim(
                "single rhs, 256^2: time ours/scipy",
                "<= 0.8",
                _ratio_with_bandwidth("poisson2d-256", 0.8),
            ),
            Claim(
                f"{BATCH} rhs at once vs {BATCH} scipy solves, 256^2: speed-up",
                ">= 1.3",
                speedup_at_least(
                    "poisson2d-256",
                    f"itersolve-cg-batch{BATCH}",
                    f"scipy-cg-x{BATCH}",
                    1.3,
                ),
            ),
            Claim(
                "single rhs, 64^2 (per-call overhead): time ours/scipy",
                "<= 1.2",
                _ratio_with_bandwidth("poisson2d-64", 1.2),
            ),
            Claim(
                "single rhs, 512^2 (full scale; out of cache): time ours/scipy",
                "<= 1.0",
                _ratio_with_bandwidth("poisson2d-512", 1.0),
            ),
            Claim(
                f"GPU: {BATCH} rhs at once on CUDA vs {BATCH} scipy solves, 256^2",
                ">= 20",
                speedup_at_least(
                    "poisson2d-256-cuda",
                    f"itersolve-cg-batch{BATCH}",
                    f"scipy-cg-x{BATCH}",
                    20.0,
                ),
            ),
        ],
        repeats={"smoke": 1, "quick": 5, "full": 5},
        estimate_seconds={"smoke": 2, "quick": 90, "full": 1200, "headline": 80},
    )
]
