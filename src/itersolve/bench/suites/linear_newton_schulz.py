"""linear-newton-schulz: iterative Newton vs gradient descent and direct least squares.

Spec 01 (Fu et al., arXiv:2310.17086), algorithmic part: least squares with d = 20
features and n = 40 points drawn from the ill-conditioned sampler (covariance with
half its eigenvalues kappa and half 1, random rotation, trace d), y = X w. Newton–
Schulz on S = X^T X needs about 2 log2 cond(S) + log2 log(1/eps) iterations, gradient
descent (eta = 1/L) about cond(S) log(1/eps). Anchors: numpy / torch lstsq, torch
pinv, scipy lsqr. A second group compares randomized Kaczmarz and block
sketch-and-project with scipy lsqr on consistent overdetermined systems.

Growth of gradient descent with kappa, from the spec's table (GD iterations to
1e-8 at kappa = 1, 10, 100: 476, 2024, 23252): GD(100) / GD(10) = 23252 / 2024 =
11.49. The spec suggests a +-10% band on each count (the draw of X moves them);
if both counts lie in their bands, the ratio lies in
[11.49 * 0.9 / 1.1, 11.49 * 1.1 / 0.9] = [9.40, 14.04], the claim's band (the
suite used ">= 5" before, which no kappa-linear method could miss). The table
itself follows GD ~ 17 cond(S) (476 / 29, 2024 / 121, 23252 / 1369 = 16.4, 16.7,
17.0), so the ratio is cond(S)'s growth on the sampled X: 11.3 on the spec's draw,
7.5 on ours (seed 0, cond(S) 124 -> 932), and over seeds 0..19 of this sampler
GD(100) / GD(10) ranged 8.1..12.3 (median 9.6), i.e. the spec's draw sits high and
about a third of draws fall below 9.40.

Newton–Schulz vs gradient descent is timed, not counted: the old "per flop"
claim divided two operation-count models driven by the iteration counts, so it
could not fail beside the iteration claim (the model's ratio is still shown as
context). Now each side's wall time to relative error 1e-8 (median of 5, one
thread) is compared at kappa = 10 and 100: ours is ``newton_schulz_lstsq`` with
its own stopping rule, as a user calls it; the anchor is the faster of the GD
loops a user writes in numpy or torch (Gram product and ``L = lambda_max(S)``
inside the timed region), run for exactly the number of steps that reaches 1e-8
(found untimed beforehand), so GD pays for no stopping test at all.
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
SPEC_GD = {1: 476, 10: 2024, 100: 23252}
"""Spec 01 quick-check table: gradient-descent iterations (eta = 1/L) to 1e-8."""
GD_GROWTH = SPEC_GD[100] / SPEC_GD[10]
"""11.49: the spec table's growth of GD iterations from kappa = 10 to 100."""
GD_GROWTH_BAND = (GD_GROWTH * 0.9 / 1.1, GD_GROWTH * 1.1 / 0.9)
"""(9.40, 14.04): the spec's suggested +-10% band on each count, carried to
their ratio (low count high, high count low, and the reverse)."""
TIMED_KAPPAS = (10, 100)
"""Where Newton–Schulz and GD are timed against each other (5 repeats)."""
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
            # the wall-time claims take a median of 5
            repeats=5 if k in TIMED_KAPPAS and scale != "smoke" else None,
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

    sol = itersolve.linear.newton_schulz_lstsq(
        X, y, itersolve.linear.NewtonSchulz(tol=1e-15, max_steps=200), callback=stop
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
    sol = itersolve.linear.newton_schulz_lstsq(X, y, itersolve.linear.NewtonSchulz())
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


@dataclass(frozen=True)
class FixedSteps:
    """A least-squares problem and the gradient-descent steps it needs to reach
    ``TARGET`` (found untimed by :func:`_gradient_descent`)."""

    X: Any
    y: Any
    steps: int
    problem: LeastSquares


def _fixed_steps_prepare(framework: str):
    def prepare(p: LeastSquares) -> FixedSteps:
        steps = _gradient_descent(p).num_steps
        if framework == "torch":
            return FixedSteps(torch.from_numpy(p.X), torch.from_numpy(p.y), steps, p)
        return FixedSteps(p.X, p.y, steps, p)

    return prepare


def _gd_fixed_numpy(f: FixedSteps) -> RunOutput:
    """GD as a user writes it in numpy, for exactly the steps it needs: Gram
    product, ``L = lambda_max(S)``, then ``w <- w - (S w - X^T y) / L``; no
    stopping test inside the loop (the oracle count favours GD)."""
    S, Xy = f.X.T @ f.X, f.X.T @ f.y
    step = 1.0 / np.linalg.eigvalsh(S)[-1]
    w = np.zeros(f.X.shape[1])
    for _ in range(f.steps):
        w -= step * (S @ w - Xy)
    return _fixed_steps_output(w, f)


def _gd_fixed_torch(f: FixedSteps) -> RunOutput:
    """The same loop in torch (float64), for a user whose data live in torch."""
    S, Xy = f.X.T @ f.X, f.X.T @ f.y
    step = 1.0 / torch.linalg.eigvalsh(S)[-1]
    w = torch.zeros(f.X.shape[1], dtype=f.X.dtype)
    for _ in range(f.steps):
        w -= step * (S @ w - Xy)
    return _fixed_steps_output(w, f)


def _fixed_steps_output(w: Any, f: FixedSteps) -> RunOutput:
    w = w.numpy() if isinstance(w, torch.Tensor) else w
    ok = _relative_error(w, f.problem.reference) <= TARGET
    return RunOutput(w, f.steps, "SUCCESS" if ok else "MAX_STEPS")


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
    ratio = high / low
    lo, hi = GD_GROWTH_BAND
    detail = (
        f"GD {int(low)} -> {int(high)}; spec table {SPEC_GD[10]} -> {SPEC_GD[100]} "
        f"({GD_GROWTH:.2f}x)"
    )
    return ClaimOutcome(ratio, lo <= ratio <= hi, detail)


def _gd_vs_newton(results: Results) -> ClaimOutcome:
    newton, gd = _steps(results, 100, NEWTON), _steps(results, 100, GD)
    if newton is None or gd is None:
        return ClaimOutcome(None, None, "no successful rows for kappa=100")
    return ClaimOutcome(
        gd / newton, gd / newton >= 100, f"GD {int(gd)} vs {int(newton)}"
    )


GD_TIMED = ("gd-numpy-fixed-steps", "gd-torch-fixed-steps")
OWN = "itersolve-newton-schulz"


def _worst_error(results: Results, case: str, method: str) -> float:
    spread = results.spread(case, method, "objective_value")
    return spread[2] if spread is not None else float("inf")


def _time_vs_gd(kappa: int):
    """Wall time of the fastest GD anchor / Newton–Schulz's, both to TARGET."""

    def check(results: Results) -> ClaimOutcome:
        case = _case(kappa)
        ours = results.median(case, OWN, "time")
        times = {m: results.median(case, m, "time") for m in GD_TIMED}
        found = {m: t for m, t in times.items() if t is not None}
        if ours is None or not found:
            return ClaimOutcome(None, None, f"no rows for kappa={kappa}")
        best = min(found, key=lambda m: found[m])
        # the same accuracy: every run of both reached TARGET vs lstsq
        accurate = all(
            results.all_succeeded(case, m) and _worst_error(results, case, m) <= TARGET
            for m in (OWN, *found)
        )
        detail = f"{best} {found[best] * 1e3:.3g} ms vs {ours * 1e3:.3g} ms"
        # the operation-count model, for context only: it cannot fail
        gd_flops = results.median(case, GD, "flops")
        newton_flops = results.median(case, NEWTON, "flops")
        if gd_flops and newton_flops:
            detail += f"; flop model GD/Newton {gd_flops / newton_flops:.2g}"
        ratio = found[best] / ours
        if not accurate:
            detail += f"; a run did not reach relative error {TARGET:g}"
        return ClaimOutcome(ratio, accurate and ratio >= 1.0, detail)

    return check


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
            "scipy lsqr as anchors; wall time of Newton–Schulz vs GD loops in numpy "
            f"and torch run for the steps they need; {BATCH} systems at once; "
            "randomized Kaczmarz and "
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
                "gd-numpy-fixed-steps",
                _gd_fixed_numpy,
                prepare=_fixed_steps_prepare("numpy"),
                anchor=OWN,
                applies=_is_lstsq,
            ),
            Method(
                "gd-torch-fixed-steps",
                _gd_fixed_torch,
                prepare=_fixed_steps_prepare("torch"),
                anchor=OWN,
                applies=_is_lstsq,
            ),
            Method(
                OWN,
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
                _sketch_run(itersolve.linear.RandomizedKaczmarz(rtol=SKETCH_RTOL)),
                prepare=_sketch_prepare,
                anchor="scipy-lsqr-consistent",
                applies=_is_consistent,
            ),
            Method(
                "itersolve-block-sketch-project",
                _sketch_run(
                    itersolve.linear.SketchAndProject(rtol=SKETCH_RTOL, sketch_size=64)
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
                "gradient descent iterations grow like kappa: GD(kappa=100)/GD(10) "
                f"(spec table {SPEC_GD[100]}/{SPEC_GD[10]} = {GD_GROWTH:.2f}, its "
                "+-10% per count carried to the ratio)",
                f"in [{GD_GROWTH_BAND[0]:.2f}, {GD_GROWTH_BAND[1]:.2f}]",
                _gd_linear_growth,
            ),
            Claim(
                "gradient descent needs >= 100x the Newton iterations at kappa=100",
                ">= 100",
                _gd_vs_newton,
            ),
            *[
                Claim(
                    f"wall time to relative error {TARGET:g}, kappa={k} (median of "
                    "5): fastest GD (numpy or torch, eta = 1/L, Gram product and "
                    "L included, run for exactly the steps it needs, no test) / "
                    "itersolve Newton-Schulz (own stopping rule)",
                    ">= 1",
                    _time_vs_gd(k),
                )
                for k in TIMED_KAPPAS
            ],
            Claim(
                "Newton-Schulz with its own stopping rule (||I - S M||_F <= "
                "sqrt(d eps)) reaches lstsq accuracy, kappa <= 100: worst rel. error",
                f"<= {TARGET:g}",
                _own_rule_accuracy,
            ),
        ],
        repeats={"smoke": 1, "quick": 3, "full": 5},
        estimate_seconds={"smoke": 5, "quick": 15, "full": 400},
    )
]
