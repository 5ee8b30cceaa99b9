"""linear-newton-schulz: iterative Newton vs gradient descent and direct least squares.

Spec 01 (Fu et al., arXiv:2310.17086), algorithmic part: least squares with d = 20
features and n = 40 points drawn from the ill-conditioned sampler (covariance with
half its eigenvalues kappa and half 1, random rotation, trace d), y = X w. Newton–
Schulz on S = X^T X needs about 2 log2 cond(S) + log2 log(1/eps) iterations, gradient
descent (eta = 1/L) about cond(S) log(1/eps). Anchors: numpy / torch lstsq, torch
pinv, scipy lsqr. A second group compares randomized Kaczmarz and block
sketch-and-project with scipy lsqr on consistent overdetermined systems.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import scipy.sparse.linalg as spla
import torch

import itersolve
from itersolve.bench.results import Results
from itersolve.bench.suite import Case, Claim, ClaimOutcome, Method, RunOutput, Suite

TARGET = 1e-8
"""Relative error of w vs the float64 lstsq solution that ends the oracle runs."""
D, N = 20, 40
KAPPAS = (1, 10, 100, 1000)
SPEC_NEWTON = {1: 15, 100: 26}
"""Spec 01 quick-check table: Newton iterations to 1e-8 at d = 20, n = 40."""
BATCH = 256
GD_MAX_STEPS = 1_000_000
SKETCH_RTOL = 1e-8


@dataclass(frozen=True)
class LeastSquares:
    X: np.ndarray
    y: np.ndarray
    reference: np.ndarray
    """float64 ``numpy.linalg.lstsq`` solution (per system for a batch)."""
    kind: str = "lstsq"


@dataclass(frozen=True)
class Consistent:
    A: np.ndarray
    b: np.ndarray
    reference: np.ndarray
    kind: str = "consistent"


def sample_regression(
    kappa: float, d: int = D, n: int = N, *, batch: int | None = None, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """The spec's ill-conditioned sampler: cov eigenvalues half kappa, half 1."""
    rng = np.random.default_rng(seed)
    Q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    eig = np.r_[np.full(d // 2, float(kappa)), np.ones(d - d // 2)]
    cov = (Q * eig) @ Q.T
    cov /= np.trace(cov) / d
    shape = (n, d) if batch is None else (batch, n, d)
    X = rng.standard_normal(shape) @ np.linalg.cholesky(cov).T
    w = rng.standard_normal((*shape[:-2], d))
    return X, np.einsum("...nd,...d->...n", X, w)


def _build_lstsq(kappa: float, batch: int | None = None) -> LeastSquares:
    X, y = sample_regression(kappa, batch=batch)
    if batch is None:
        reference = np.linalg.lstsq(X, y, rcond=None)[0]
    else:
        reference = np.stack(
            [np.linalg.lstsq(X[i], y[i], rcond=None)[0] for i in range(batch)]
        )
    return LeastSquares(X, y, reference)


def _build_consistent(m: int, n: int) -> Consistent:
    rng = np.random.default_rng(m + n)
    A = rng.standard_normal((m, n)) * rng.uniform(0.5, 2.0, size=(m, 1))
    x = rng.standard_normal(n)
    return Consistent(A, A @ x, x)


def cases(scale: str) -> list[Case]:
    kappas = {"smoke": (1, 10), "quick": KAPPAS, "full": KAPPAS}[scale]
    out = [
        Case(
            f"lstsq-d{D}-n{N}-kappa{k}",
            partial(_build_lstsq, float(k)),
            {"d": D, "n": N, "kappa": k},
        )
        for k in kappas
    ]
    batch = 8 if scale == "smoke" else BATCH
    out.append(
        Case(
            f"lstsq-batch{batch}-d{D}-n{N}-kappa10",
            partial(_build_lstsq, 10.0, batch),
            {"d": D, "n": N, "kappa": 10, "batch": batch},
        )
    )
    sizes = {
        "smoke": [(200, 20)],
        "quick": [(2000, 100)],
        "full": [(2000, 100), (10000, 200)],
    }
    out += [
        Case(f"consistent-{m}x{n}", partial(_build_consistent, m, n), {"m": m, "n": n})
        for m, n in sizes[scale]
    ]
    return out


def evaluate(problem: Any, x: Any) -> float:
    """Relative error ``||x - x_ref|| / ||x_ref||`` in float64 (worst system)."""
    x = x.cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    x = x.astype(np.float64)
    ref = problem.reference
    err = np.linalg.norm(x - ref, axis=-1) / np.linalg.norm(ref, axis=-1)
    return float(np.max(err))


def _is_lstsq(case: Case) -> bool:
    return case.name.startswith("lstsq-") and "batch" not in case.name


def _is_batch(case: Case) -> bool:
    return "batch" in case.name


def _is_consistent(case: Case) -> bool:
    return case.name.startswith("consistent-")


def _relative_error(w: np.ndarray, ref: np.ndarray) -> float:
    return float(np.linalg.norm(w - ref) / np.linalg.norm(ref))


# -- ours: Newton–Schulz -------------------------------------------------------------


def _newton_flops(steps: int, n: int, d: int) -> float:
    return 2.0 * n * d * d + (2 * steps + 1) * 2.0 * d**3 + 2.0 * d * d


def _torch_prepare(dtype: torch.dtype = torch.float64):
    def prepare(p: LeastSquares) -> tuple[torch.Tensor, torch.Tensor, LeastSquares]:
        return torch.from_numpy(p.X).to(dtype), torch.from_numpy(p.y).to(dtype), p

    return prepare


def _newton_oracle(prepared: Any, curve: list[float] | None = None) -> RunOutput:
    """Newton–Schulz until ||w_k - w*|| <= TARGET ||w*|| (the spec's count)."""
    X, y, p = prepared
    ref = torch.from_numpy(p.reference)
    ref_norm = float(torch.linalg.vector_norm(ref))

    def stop(info: itersolve.IterInfo) -> bool:
        err = float(torch.linalg.vector_norm(info.x - ref)) / ref_norm
        if curve is not None:
            curve.append(err)
        return err <= TARGET

    sol = itersolve.newton_schulz_lstsq(
        X, y, itersolve.NewtonSchulz(tol=1e-15, max_steps=200), callback=stop
    )
    status = (
        "SUCCESS"
        if sol.status is itersolve.Status.STOPPED_BY_CALLBACK
        else (sol.status.name)
    )
    n, d = p.X.shape[-2:]
    return RunOutput(
        sol.x,
        sol.num_steps,
        status,
        {
            "matmuls": sol.stats["matmuls"],
            "flops": _newton_flops(sol.num_steps, n, d),
        },
    )


def _newton_oracle_trace(prepared: Any) -> dict[str, list[float]]:
    curve: list[float] = []
    _newton_oracle(prepared, curve)
    return {"step": list(range(1, len(curve) + 1)), "objective": curve}


def _newton_own_rule(prepared: Any) -> RunOutput:
    """What a user runs: the default stopping rule on ||I - S M_k||_F."""
    X, y, p = prepared
    sol = itersolve.newton_schulz_lstsq(X, y, itersolve.NewtonSchulz())
    n, d = p.X.shape[-2:]
    return RunOutput(
        sol.x,
        sol.num_steps,
        sol.status.name,
        {"matmuls": sol.stats["matmuls"], "flops": _newton_flops(sol.num_steps, n, d)},
    )


# -- gradient descent (the spec's comparator) ---------------------------------------


def _gradient_descent(p: LeastSquares, curve: list[float] | None = None) -> RunOutput:
    """w <- w - (1/L) X^T (X w - y), w_0 = 0, until the relative error <= TARGET."""
    X, y, ref = p.X, p.y, p.reference
    S, Xy = X.T @ X, X.T @ y
    step = 1.0 / np.linalg.eigvalsh(S)[-1]
    ref_norm = np.linalg.norm(ref)
    w = np.zeros(X.shape[1])
    k = 0
    every = 100
    while k < GD_MAX_STEPS:
        w -= step * (S @ w - Xy)
        k += 1
        err = np.linalg.norm(w - ref) / ref_norm
        if curve is not None and k % every == 0:
            curve.append(float(err))
        if err <= TARGET:
            break
    status = "SUCCESS" if err <= TARGET else "MAX_STEPS"
    n, d = X.shape
    # The Gram product once, then one d x d matvec per step (as for Newton).
    return RunOutput(w, k, status, {"flops": 2.0 * n * d * d + 2.0 * d * d * k})


def _gradient_descent_trace(p: LeastSquares) -> dict[str, list[float]]:
    curve: list[float] = []
    _gradient_descent(p, curve)
    return {"step": [100.0 * (i + 1) for i in range(len(curve))], "objective": curve}


# -- direct and Krylov anchors ------------------------------------------------------


def _numpy_lstsq(p: LeastSquares) -> RunOutput:
    return RunOutput(np.linalg.lstsq(p.X, p.y, rcond=None)[0], 1, "SUCCESS")


def _numpy_lstsq_loop(p: LeastSquares) -> RunOutput:
    w = np.stack(
        [np.linalg.lstsq(p.X[i], p.y[i], rcond=None)[0] for i in range(len(p.X))]
    )
    return RunOutput(w, 1, "SUCCESS")


def _torch_lstsq(prepared: Any) -> RunOutput:
    X, y, _ = prepared
    return RunOutput(torch.linalg.lstsq(X, y[..., None]).solution[..., 0], 1, "SUCCESS")


def _torch_pinv(prepared: Any) -> RunOutput:
    X, y, _ = prepared
    return RunOutput((torch.linalg.pinv(X) @ y[..., None])[..., 0], 1, "SUCCESS")


def _lsqr(A: np.ndarray, b: np.ndarray, tol: float) -> RunOutput:
    out = spla.lsqr(A, b, atol=0.0, btol=tol, iter_lim=100 * A.shape[1])
    x, istop, steps = out[0], out[1], out[2]
    return RunOutput(
        x, steps, "SUCCESS" if istop in (1, 2) else "MAX_STEPS", {"matvecs": 2 * steps}
    )


def _lsqr_lstsq(p: LeastSquares) -> RunOutput:
    # The system is consistent (y = X w), so ||r|| <= btol ||y|| is lstsq accuracy.
    return _lsqr(p.X, p.y, 1e-12)


# -- sketching vs lsqr on consistent systems ----------------------------------------


def _sketch_prepare(p: Consistent) -> tuple[Any, torch.Tensor]:
    return itersolve.aslinearoperator(p.A), torch.from_numpy(p.b)


def _sketch_run(method: itersolve.IterativeMethod):
    def run(prepared: tuple[Any, torch.Tensor]) -> RunOutput:
        op, b = prepared
        sol = itersolve.linear_solve(op, b, method)
        counters = {k: float(v) for k, v in sol.stats.items() if k != "time"}
        return RunOutput(sol.x, sol.num_steps, sol.status.name, counters)

    return run


def _lsqr_consistent(p: Consistent) -> RunOutput:
    return _lsqr(p.A, p.b, SKETCH_RTOL)


# -- claims --------------------------------------------------------------------------


def _case(kappa: int) -> str:
    return f"lstsq-d{D}-n{N}-kappa{kappa}"


NEWTON = "newton-schulz-to-1e-8"
GD = "gradient-descent-to-1e-8"


def _steps(results: Results, kappa: int, method: str) -> float | None:
    case = _case(kappa)
    if not results.all_succeeded(case, method):
        return None
    return results.median(case, method, "num_steps")


def _newton_matches_spec(kappa: int):
    expected = SPEC_NEWTON[kappa]

    def check(results: Results) -> ClaimOutcome:
        steps = _steps(results, kappa, NEWTON)
        if steps is None:
            return ClaimOutcome(None, None, f"no successful rows for kappa={kappa}")
        ok = abs(steps - expected) <= 0.1 * expected
        return ClaimOutcome(steps, ok, f"spec {expected}")

    return check


def _newton_log_growth(results: Results) -> ClaimOutcome:
    points = [(k, _steps(results, k, NEWTON)) for k in KAPPAS]
    found = [(np.log10(k), s) for k, s in points if s is not None]
    if len(found) < 3:
        return ClaimOutcome(None, None, "needs kappa 1..1000 (quick scale)")
    logk, steps = (np.array(v, dtype=float) for v in zip(*found, strict=True))
    slope, intercept = np.polyfit(logk, steps, 1)
    worst = float(np.max(np.abs(steps - (slope * logk + intercept))))
    detail = (
        f"iterations {[int(s) for s in steps]} at kappa {[int(10**v) for v in logk]}; "
        f"slope {slope:.1f} per decade"
    )
    return ClaimOutcome(worst, worst <= 2.0 and 0 < slope <= 10, detail)


def _gd_linear_growth(results: Results) -> ClaimOutcome:
    low, high = _steps(results, 10, GD), _steps(results, 100, GD)
    if not low or high is None:
        return ClaimOutcome(None, None, "needs kappa 10 and 100 (quick scale)")
    return ClaimOutcome(high / low, high / low >= 5.0, f"GD {int(low)} -> {int(high)}")


def _gd_vs_newton(results: Results) -> ClaimOutcome:
    newton, gd = _steps(results, 100, NEWTON), _steps(results, 100, GD)
    if newton is None or gd is None:
        return ClaimOutcome(None, None, "no successful rows for kappa=100")
    return ClaimOutcome(
        gd / newton, gd / newton >= 100, f"GD {int(gd)} vs {int(newton)}"
    )


def _flops_ratio(results: Results) -> ClaimOutcome:
    ratios = {}
    for k in KAPPAS:
        newton = results.median(_case(k), NEWTON, "flops")
        gd = results.median(_case(k), GD, "flops")
        if newton and gd is not None:
            ratios[k] = gd / newton
    if 100 not in ratios:
        return ClaimOutcome(None, None, "no rows for kappa=100")
    detail = ", ".join(f"kappa {k}: {r:.2g}" for k, r in ratios.items())
    return ClaimOutcome(ratios[100], ratios[100] >= 1.0, f"GD/Newton flops {detail}")


def _own_rule_accuracy(results: Results) -> ClaimOutcome:
    worst = None
    for k in KAPPAS[:3]:
        case = _case(k)
        rows = results.select(case, "itersolve-newton-schulz")
        if not rows:
            continue
        if not results.all_succeeded(case, "itersolve-newton-schulz"):
            return ClaimOutcome(None, False, f"a run did not succeed at kappa={k}")
        value = max(float(r["objective_value"]) for r in rows)
        worst = value if worst is None else max(worst, value)
    if worst is None:
        return ClaimOutcome(None, None, "no rows")
    return ClaimOutcome(worst, worst <= TARGET)


SUITES = [
    Suite(
        name="linear-newton-schulz",
        description=(
            f"Least squares d={D}, n={N} from the spec-01 ill-conditioned sampler "
            f"(kappa {', '.join(map(str, KAPPAS))}), y = Xw: iterations of Newton–"
            f"Schulz and of gradient descent (eta = 1/L) to relative error {TARGET:g} "
            "vs the float64 lstsq solution, with numpy/torch lstsq, torch pinv and "
            f"scipy lsqr as anchors; {BATCH} systems at once; randomized Kaczmarz and "
            f"block sketch-and-project vs scipy lsqr to ||b - Ax|| <= {SKETCH_RTOL:g}"
            " ||b|| on consistent overdetermined systems."
        ),
        objective_name="relative error vs lstsq solution",
        cases=cases,
        evaluate=evaluate,
        methods=[
            Method("numpy-lstsq", _numpy_lstsq, applies=_is_lstsq),
            Method(
                "torch-lstsq",
                _torch_lstsq,
                prepare=_torch_prepare(),
                applies=lambda c: _is_lstsq(c) or _is_batch(c),
            ),
            Method(
                "torch-pinv", _torch_pinv, prepare=_torch_prepare(), applies=_is_lstsq
            ),
            Method("scipy-lsqr", _lsqr_lstsq, applies=_is_lstsq),
            Method(
                NEWTON,
                _newton_oracle,
                prepare=_torch_prepare(),
                trace=_newton_oracle_trace,
                anchor="numpy-lstsq",
                applies=_is_lstsq,
            ),
            Method(
                GD,
                _gradient_descent,
                trace=_gradient_descent_trace,
                anchor=NEWTON,
                applies=_is_lstsq,
            ),
            Method(
                "itersolve-newton-schulz",
                _newton_own_rule,
                prepare=_torch_prepare(),
                anchor="numpy-lstsq",
                applies=_is_lstsq,
            ),
            Method(
                "itersolve-newton-schulz-float32",
                _newton_own_rule,
                prepare=_torch_prepare(torch.float32),
                anchor="itersolve-newton-schulz",
                applies=_is_lstsq,
            ),
            Method(f"numpy-lstsq-x{BATCH}", _numpy_lstsq_loop, applies=_is_batch),
            Method(
                f"itersolve-newton-schulz-batch{BATCH}",
                _newton_own_rule,
                prepare=_torch_prepare(),
                anchor=f"numpy-lstsq-x{BATCH}",
                applies=_is_batch,
            ),
            Method("scipy-lsqr-consistent", _lsqr_consistent, applies=_is_consistent),
            Method(
                "itersolve-kaczmarz",
                _sketch_run(itersolve.RandomizedKaczmarz(rtol=SKETCH_RTOL)),
                prepare=_sketch_prepare,
                anchor="scipy-lsqr-consistent",
                applies=_is_consistent,
            ),
            Method(
                "itersolve-block-sketch-project",
                _sketch_run(
                    itersolve.SketchAndProject(rtol=SKETCH_RTOL, sketch_size=64)
                ),
                prepare=_sketch_prepare,
                anchor="scipy-lsqr-consistent",
                applies=_is_consistent,
            ),
        ],
        claims=[
            Claim(
                "Newton-Schulz iterations to 1e-8, kappa=1 (spec 15, +-10%)",
                "in [13.5, 16.5]",
                _newton_matches_spec(1),
            ),
            Claim(
                "Newton-Schulz iterations to 1e-8, kappa=100 (spec 26, +-10%)",
                "in [23.4, 28.6]",
                _newton_matches_spec(100),
            ),
            Claim(
                "Newton-Schulz iterations grow like log(kappa), kappa 1..1000: worst "
                "deviation from a line in log10(kappa) (iterations)",
                "<= 2 (slope in (0, 10])",
                _newton_log_growth,
            ),
            Claim(
                "gradient descent iterations grow like kappa: GD(kappa=100)/GD(10)",
                ">= 5",
                _gd_linear_growth,
            ),
            Claim(
                "gradient descent needs >= 100x the Newton iterations at kappa=100",
                ">= 100",
                _gd_vs_newton,
            ),
            Claim(
                "per flop too (2 d^3 per Newton step vs 2 d^2 per GD step): GD "
                "flops / Newton flops at kappa=100",
                ">= 1",
                _flops_ratio,
            ),
            Claim(
                "Newton-Schulz with its own stopping rule (||I - S M||_F <= "
                "sqrt(d eps)) reaches lstsq accuracy, kappa <= 100: worst rel. error",
                f"<= {TARGET:g}",
                _own_rule_accuracy,
            ),
        ],
        repeats={"smoke": 1, "quick": 3, "full": 5},
        estimate_seconds={"smoke": 5, "quick": 150, "full": 400},
    )
]
