"""ot-sinkhorn: Sinkhorn-Newton-Sparse and log-domain Sinkhorn vs POT.

Anchors: POT's ``ot.sinkhorn(method="sinkhorn_log")`` and ``ot.emd2`` (exact OT).
Every method gets the identical ``(a, b, C, reg)``; the table's objective is the
L1 marginal error ``||P 1 - a||_1 + ||P^T 1 - b||_1`` of the returned plan,
recomputed in float64.

**Time-to-convergence cases** (kind ``speed``: random assignment, MNIST-like L2
and L1, Gaussian mixtures). Every solver runs to the same tolerance, none
capped (POT ``numItermax`` and our ``max_steps`` are guards of 10^6 sweeps,
far above what any case needs). POT stops on ``||P^T 1 - b||_2 < stopThr``
(checked every 10 iterations, rows exact after its ``u`` update); with
``stopThr = tol / sqrt(m)`` that implies our L1 rule ``<= tol`` (Cauchy-Schwarz),
so both stop at the same guaranteed accuracy; the table shows the L1 error POT
actually reached. POT runs on its torch backend for these cases: on this CPU
that is ~4x faster per iteration than its numpy backend (scipy's logsumexp), so
the comparison is against the faster POT. The per-iteration case keeps POT's
default numpy backend.

The warm-up run the runner makes before the timed ones (to prime caches) is
capped at 20 sweeps for POT and our Sinkhorn: on the assignment case their
converged runs take minutes, and a warm-up only has to touch the same code.

Sizes at quick, and why they are not the paper's everywhere (Tang et al.,
ICLR 2024, Table 1):

* random assignment n = 500, reg = 1/1200 (the paper's). Sinkhorn converges
  linearly to 1e-10 in ~26 000 sweeps here (the paper reports 56 199 to
  machine precision); at n = 300 and below its error decays sublinearly
  (n = 300: 1.6e-7 after 40 000 sweeps), so shrinking n would make a
  converged POT run longer, not shorter. Our Sinkhorn is capped at 5 000
  sweeps on this case only (a lower bound on its time, see ``cases``).
* MNIST-like images (``load_digits`` upsampled) on a 20x20 grid (n = 400)
  instead of 28x28 (n = 784), reg = 1e-3, so that POT's converged runs fit in
  the quick budget; the L1 case on a 16x16 grid with ``n_sinkhorn = 700`` (the
  paper's N1 for L1), whose Sinkhorn crosses a long plateau (~25 000 sweeps
  at 20x20).
* Gaussian mixtures (2-D, 20x20 grid, W2 cost), reg = 1e-3.

**Small reg** (kind ``small``): SNS alone, with its default step budget
(``n_sinkhorn + 10 000``), at reg = 1e-4 on the MNIST-like L2/L1 and
Gaussian-mixture cases; the claim reports per case whether it converged and,
if not, its status, error and how its steps split between Sinkhorn and
Newton. Measured before the run (loaded machine): L2 and the mixtures converge
(570 and 1 213 steps, Newton taking over after 13-15 doubling Sinkhorn
phases); the L1 case ends MAX_STEPS at 2.3e-2 (10 700 Sinkhorn sweeps, 6
Newton steps): on the L1 dual plateau the Newton steps collapse (alpha ~
1e-10, see :class:`~itersolve.ot.SinkhornNewtonSparse`), so SNS progresses
like Sinkhorn, and Sinkhorn at reg 1e-3 already needs ~25 000 sweeps to cross
that plateau at this size. Beside plain SNS the small-reg cases run
``itersolve-sns-continuation`` (not judged, shown in the claim's detail):
epsilon scaling through the public API, SNS at 100, 31.6, 10, 3.16 and 1 times
reg, each warm-started from the previous potentials; measured outside the
suite (loaded machine) it converges on all three quick cases: L2 139 steps
(1.1 s), L1 918 steps (1.3 s) where plain SNS stops at MAX_STEPS, mixtures 168
steps (1.7 s).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np

from itersolve import ot as itot
from itersolve._core.errors import ConvergenceError
from itersolve.bench.results import Results
from itersolve.bench.suite import Case, Claim, ClaimOutcome, Method, RunOutput, Suite
from itersolve.problems.transport import (
    TransportInstance,
    gaussian_mixtures,
    mnist_like,
    random_assignment,
)

TOL = 1e-10
GUARD = 1_000_000
"""Iteration guard of the converged runs: far above any case's need."""
WARMUP_SWEEPS = 20
SPEED, PER_ITERATION, EMD_GAP, SMALL = "speed", "per-iteration", "emd-gap", "small"


@dataclass(frozen=True)
class OTProblem:
    instance: TransportInstance
    reg: float
    tol: float = TOL
    sinkhorn_steps: int | None = None
    """Set for the per-iteration cases: every solver runs exactly this many sweeps."""
    sns: dict[str, Any] = field(default_factory=dict)
    pot_backend: str = "torch"
    sinkhorn_cap: int = GUARD
    """Our Sinkhorn's max_steps on a speed case (see the assignment case)."""


class _Runs:
    """A problem plus how often it has been run: the first run is the warm-up."""

    def __init__(self, problem: OTProblem) -> None:
        self.problem = problem
        self.calls = 0

    def warmup(self) -> bool:
        self.calls += 1
        return self.calls == 1


def _assignment(n: int, reg: float, sinkhorn_cap: int = GUARD) -> OTProblem:
    return OTProblem(random_assignment(n, seed=0), reg, sinkhorn_cap=sinkhorn_cap)


def _mnist(metric: str, size: int, reg: float, **sns: Any) -> OTProblem:
    return OTProblem(mnist_like(0, 1, metric=metric, size=size), reg, sns=sns)


def _per_iteration(n: int, steps: int) -> OTProblem:
    return OTProblem(
        random_assignment(n, seed=1), 0.01, sinkhorn_steps=steps, pot_backend="numpy"
    )


def _mixture(n: int, dim: int, reg: float, tol: float = 1e-9, **sns: Any) -> OTProblem:
    inst = gaussian_mixtures(n, dim=dim, power=2, seed=0)
    return OTProblem(inst, reg, tol=tol, sns=sns)


EMD_REGS = {"smoke": [0.05, 0.02], "quick": [0.05, 0.02, 0.01, 0.005]}
EMD_REGS["full"] = [*EMD_REGS["quick"], 0.002]

# (assignment n, assignment reg, image size L2, image size L1, mixture n, reg)
SPEED_SIZES = {
    "smoke": (60, 0.01, 8, 8, 8, 5e-2),
    "quick": (500, 1 / 1200, 20, 16, 20, 1e-3),
    "full": (500, 1 / 1200, 28, 28, 30, 1e-3),
}
SMALL_REGS = {"smoke": 2e-2, "quick": 1e-4, "full": 1e-4}


def cases(scale: str) -> list[Case]:
    n_lap, reg_lap, l2, l1, n_mix, reg = SPEED_SIZES[scale]
    # One timed run of the cases whose converged POT runs take minutes (the
    # ratios they are judged on are far from the line) and of the untimed
    # small-reg cases.
    once = 1 if scale == "quick" else None
    # Our Sinkhorn is capped on the assignment case (5 000 of its ~26 000
    # sweeps): a capped run's time is a lower bound on its time to converge,
    # so min(POT, ours) over it is a lower bound too and the "within 1.5x of
    # the best" claim only gets harder; POT itself runs to convergence.
    lap_cap = 5_000 if scale != "smoke" else GUARD
    speed = {"kind": SPEED}
    out = [
        Case(
            f"assignment-{n_lap}",
            partial(_assignment, n_lap, reg_lap, lap_cap),
            {**speed, "n": n_lap, "reg": reg_lap, "sinkhorn_cap": lap_cap},
            repeats=once,
        ),
        Case(
            f"mnist-l2-{l2}",
            partial(_mnist, "l2", l2, reg),
            {**speed, "n": l2 * l2, "reg": reg},
        ),
        Case(
            f"mnist-l1-{l1}",
            partial(_mnist, "l1", l1, reg, n_sinkhorn=700),
            {**speed, "n": l1 * l1, "reg": reg, "n_sinkhorn": 700},
            repeats=once,
        ),
        Case(
            f"gmm2d-{n_mix**2}-W2",
            partial(_mixture, n_mix, 2, reg, TOL),
            {**speed, "n": n_mix**2, "reg": reg},
        ),
    ]
    small = SMALL_REGS[scale]
    tiny = {"kind": SMALL, "reg": small}
    out += [
        # SNS with its default budget (n_sinkhorn + 10 000 steps), as a user
        # runs it: the L1 case does not converge within it (see the docstring).
        Case(
            f"mnist-l2-{l2}-reg{small:g}",
            partial(_mnist, "l2", l2, small, max_steps=None),
            tiny,
            repeats=once,
        ),
        Case(
            f"mnist-l1-{l1}-reg{small:g}",
            partial(_mnist, "l1", l1, small, n_sinkhorn=700, max_steps=None),
            tiny,
            repeats=once,
        ),
        Case(
            f"gmm2d-{n_mix**2}-W2-reg{small:g}",
            partial(_mixture, n_mix, 2, small, TOL, max_steps=None),
            tiny,
            repeats=once,
        ),
    ]
    per_it = (100, 20) if scale == "smoke" else (1000, 50 if scale == "quick" else 200)
    out.append(
        Case(
            f"per-iteration-{per_it[0]}",
            partial(_per_iteration, *per_it),
            {"kind": PER_ITERATION, "n": per_it[0], "reg": 0.01},
        )
    )
    n, dim = (15, 2) if scale == "smoke" else (20, 2)
    for reg_gap in EMD_REGS[scale]:
        out.append(
            Case(
                f"emd-gap-gmm{dim}d-{n**dim}-reg{reg_gap:g}",
                partial(_mixture, n, dim, reg_gap),
                {"kind": EMD_GAP, "n": n**dim, "reg": reg_gap},
            )
        )
    return out


def evaluate(problem: OTProblem, plan: Any) -> float:
    P = np.asarray(plan, dtype=np.float64)
    inst = problem.instance
    return float(np.abs(P.sum(1) - inst.a).sum() + np.abs(P.sum(0) - inst.b).sum())


def _kind(case: Case) -> str:
    return str(case.params.get("kind"))


# -- ours ----------------------------------------------------------------------


def _sns_method(problem: OTProblem) -> itot.SinkhornNewtonSparse:
    # The same guard as the Sinkhorn runs: where Newton stalls (L1 plateaus)
    # SNS's growing Sinkhorn phases need as many sweeps as Sinkhorn itself.
    return itot.SinkhornNewtonSparse(
        tol=problem.tol, **{"max_steps": GUARD, **problem.sns}
    )


def _sns_run(problem: OTProblem) -> RunOutput:
    inst = problem.instance
    method = _sns_method(problem)
    sol = itot.transport(inst.a, inst.b, inst.cost, method, reg=problem.reg)
    return RunOutput(
        sol.x,
        sol.num_steps,
        sol.status.name,
        {
            k: sol.stats[k]
            for k in (
                "sinkhorn_steps",
                "newton_steps",
                "cg_steps",
                "fallbacks",
                "keep_per_row",
            )
        },
        {"transport_cost": sol.extras["transport_cost"]},
    )


def _sns_continuation_run(problem: OTProblem) -> RunOutput:
    """SNS down a reg ladder 100, 31.6, ..., 1 times reg, each stage warm-started
    from the previous potentials (``x0``) with 20 Sinkhorn sweeps (the first with
    the case's own): epsilon scaling through the public API, reported beside
    plain SNS on the small-reg cases."""
    inst = problem.instance
    x0, steps, newton = None, 0, 0
    settings = problem.sns
    for factor in 10.0 ** (np.arange(4, -1, -1) / 2):
        method = itot.SinkhornNewtonSparse(tol=problem.tol, **settings)
        # Warm-started stages need only the default short warm start.
        settings = {**problem.sns, "n_sinkhorn": 20}
        sol = itot.transport(
            inst.a, inst.b, inst.cost, method, reg=problem.reg * factor, x0=x0
        )
        x0 = sol.extras["potentials"]
        steps += sol.num_steps
        newton += int(sol.stats["newton_steps"])
    return RunOutput(
        sol.x, steps, sol.status.name, {"newton_steps": newton, "stages": 5}
    )


def _sns_trace(problem: OTProblem) -> dict[str, list[float]]:
    inst = problem.instance
    method = _sns_method(problem)
    sol = itot.transport(
        inst.a, inst.b, inst.cost, method, reg=problem.reg, record=True
    )
    assert sol.trace is not None
    return {
        "step": sol.trace["step"].tolist(),
        "objective": sol.trace["marginal_error"].tolist(),
        "time": sol.trace["time"].tolist(),
    }


def _prepare_runs(problem: OTProblem) -> _Runs:
    return _Runs(problem)


def _sinkhorn_run(runs: _Runs) -> RunOutput:
    problem = runs.problem
    inst = problem.instance
    fixed = problem.sinkhorn_steps
    if fixed is not None:
        # A fixed number of sweeps: tol out of reach and no frozen-iterate
        # check, MAX_STEPS expected.
        method = itot.Sinkhorn(tol=1e-300, max_steps=fixed, stall_window=0)
    else:
        steps = WARMUP_SWEEPS if runs.warmup() else problem.sinkhorn_cap
        method = itot.Sinkhorn(tol=problem.tol, max_steps=steps)
    try:
        sol = itot.transport(
            inst.a, inst.b, inst.cost, method, reg=problem.reg, throw=True
        )
    except ConvergenceError as exc:  # the fixed-sweep and warm-up outcome
        sol = exc.solution
    return RunOutput(sol.x, sol.num_steps, sol.status.name)


# -- POT -------------------------------------------------------------------------


def _pot_run(runs: _Runs) -> RunOutput:
    import ot

    problem = runs.problem
    inst = problem.instance
    fixed = problem.sinkhorn_steps
    if fixed is not None:
        max_iter, stop = fixed, 0.0
    else:
        max_iter = WARMUP_SWEEPS if runs.warmup() else GUARD
        # ||e||_1 <= sqrt(m) ||e||_2: POT's L2 test at tol / sqrt(m) implies
        # our L1 rule at tol.
        stop = problem.tol / math.sqrt(inst.b.shape[0])
    args: tuple[Any, ...] = (inst.a, inst.b, inst.cost)
    if problem.pot_backend == "torch":
        import torch

        args = tuple(torch.from_numpy(t) for t in args)
    plan, log = ot.sinkhorn(
        *args,
        problem.reg,
        method="sinkhorn_log",
        numItermax=max_iter,
        stopThr=stop,
        log=True,
        warn=False,
    )
    plan = np.asarray(plan)
    reached = fixed is None and evaluate(problem, plan) <= problem.tol
    return RunOutput(plan, int(log["niter"]) + 1, "SUCCESS" if reached else "MAX_STEPS")


def _emd_run(problem: OTProblem) -> RunOutput:
    import ot

    inst = problem.instance
    plan, log = ot.emd(inst.a, inst.b, inst.cost, log=True)
    return RunOutput(plan, 0, "SUCCESS", extras={"transport_cost": float(log["cost"])})


# -- claims --------------------------------------------------------------------


def _row(results: Results, case: str, method: str, column: str) -> float | None:
    return results.median(case, method, column)


def _cases_of(results: Results, kind: str) -> list[str]:
    names = (
        r["dataset_name"]
        for r in results.rows
        if (r.get("params") or {}).get("kind") == kind
    )
    return list(dict.fromkeys(names))


def _case_with_prefix(results: Results, prefix: str, kind: str = SPEED) -> str | None:
    for case in _cases_of(results, kind):
        if case.startswith(prefix):
            return case
    return None


def _sns_iterations(prefix: str, at_most: int):
    def check(results: Results) -> ClaimOutcome:
        case = _case_with_prefix(results, prefix)
        if case is None:
            return ClaimOutcome(None, None, f"no rows for {prefix}")
        steps = _row(results, case, "itersolve-sns", "num_steps")
        error = _row(results, case, "itersolve-sns", "objective_value")
        if steps is None or error is None:
            return ClaimOutcome(None, None, f"no rows for {case}")
        ok = results.all_succeeded(case, "itersolve-sns") and error <= TOL
        seconds = _row(results, case, "itersolve-sns", "time")
        return ClaimOutcome(
            steps,
            ok and steps <= at_most,
            f"{case}: final L1 error {error:.2e}, {seconds:.2f} s",
        )

    return check


def _pot_slowdown(prefix: str, at_least: float):
    """POT time / SNS time, both converged to the same tolerance."""

    def check(results: Results) -> ClaimOutcome:
        case = _case_with_prefix(results, prefix)
        if case is None:
            return ClaimOutcome(None, None, f"no rows for {prefix}")
        ratio = results.ratio(case, "pot-sinkhorn-log", "itersolve-sns")
        if ratio is None:
            return ClaimOutcome(None, None, f"no rows for {case}")
        pot_error = _row(results, case, "pot-sinkhorn-log", "objective_value")
        pot_steps = _row(results, case, "pot-sinkhorn-log", "num_steps")
        pot_time = _row(results, case, "pot-sinkhorn-log", "time")
        converged = results.all_succeeded(case, "pot-sinkhorn-log")
        sns_ok = results.all_succeeded(case, "itersolve-sns")
        detail = (
            f"{case}: POT {'converged' if converged else 'did NOT converge'} in "
            f"{pot_steps:.0f} iterations, {pot_time:.1f} s, final L1 error "
            f"{pot_error:.2e}"
        )
        return ClaimOutcome(ratio, converged and sns_ok and ratio >= at_least, detail)

    return check


def _sns_within_best(at_most: float):
    """SNS time / min(POT time, our Sinkhorn time) on every speed case."""

    def check(results: Results) -> ClaimOutcome:
        cases = _cases_of(results, SPEED)
        if not cases:
            return ClaimOutcome(None, None, "no speed cases ran")
        worst, ok, parts = 0.0, True, []
        for case in cases:
            sns = _row(results, case, "itersolve-sns", "time")
            error = _row(results, case, "itersolve-sns", "objective_value")
            others = {
                m: _row(results, case, m, "time")
                for m in ("pot-sinkhorn-log", "itersolve-sinkhorn")
            }
            times = {m: t for m, t in others.items() if t is not None}
            if sns is None or error is None or not times:
                parts.append(f"{case}: no rows")
                ok = False
                continue
            best = min(times, key=lambda m: times[m])
            # A Sinkhorn run that did not converge took less time than it
            # would need: min() over such times is still a lower bound.
            unconverged = [m for m in times if not results.all_succeeded(case, m)]
            ratio = sns / times[best]
            converged = results.all_succeeded(case, "itersolve-sns") and error <= TOL
            ok = ok and converged and ratio <= at_most
            worst = max(worst, ratio)
            parts.append(
                f"{case}: SNS {sns:.2f} s (L1 {error:.1e}"
                f"{'' if converged else ', NOT converged'}) / {best} "
                f"{times[best]:.2f} s = {ratio:.2f}"
                + (f" [{', '.join(unconverged)} not converged]" if unconverged else "")
            )
        return ClaimOutcome(worst, ok, "; ".join(parts))

    return check


def _small_reg_converges(results: Results) -> ClaimOutcome:
    cases = _cases_of(results, SMALL)
    if not cases:
        return ClaimOutcome(None, None, "no small-reg cases ran")
    done, parts = 0, []
    for case in cases:
        rows = results.select(case, "itersolve-sns")
        if not rows:
            parts.append(f"{case}: no rows")
            continue
        row = rows[-1]
        error = float(row["objective_value"])
        ok = row["status"] == "SUCCESS" and error <= TOL
        done += ok
        why = (
            ""
            if ok
            else f" (Sinkhorn {row.get('sinkhorn_steps', 0):.0f} / Newton "
            f"{row.get('newton_steps', 0):.0f} steps, "
            f"{row.get('fallbacks', 0):.0f} fallbacks)"
        )
        ladder = results.select(case, "itersolve-sns-continuation")
        if ladder:
            other = ladder[-1]
            why += (
                f" [not judged: SNS down a reg ladder from 100x reg, warm "
                f"starts: {other['status']} at L1 "
                f"{float(other['objective_value']):.1e} in {other['num_steps']} "
                f"steps, {float(other['time']):.2f} s vs {float(row['time']):.2f} s]"
            )
        parts.append(
            f"{case}: {row['status']} at L1 {error:.1e} in {row['num_steps']} "
            f"steps, keep_per_row {row.get('keep_per_row', float('nan')):g}"
            f"{why}"
        )
    return ClaimOutcome(float(done), done == len(cases), "; ".join(parts))


def _per_iteration_ratio(at_most: float):
    def check(results: Results) -> ClaimOutcome:
        names = _cases_of(results, PER_ITERATION)
        if not names:
            return ClaimOutcome(None, None, "no per-iteration case ran")
        case = names[0]
        per_step = {}
        for method in ("itersolve-sinkhorn", "pot-sinkhorn-log"):
            time = results.median(case, method, "time")
            steps = results.median(case, method, "num_steps")
            if time is None or not steps:
                return ClaimOutcome(None, None, f"no rows for {case}")
            per_step[method] = time / steps
        ratio = per_step["itersolve-sinkhorn"] / per_step["pot-sinkhorn-log"]
        detail = ", ".join(f"{k} {v * 1e3:.2f} ms/it" for k, v in per_step.items())
        return ClaimOutcome(ratio, ratio <= at_most, f"{case}: {detail}")

    return check


def _emd_gap_decreasing(results: Results) -> ClaimOutcome:
    gaps: list[tuple[float, float]] = []
    for case in _cases_of(results, EMD_GAP):
        ours = results.median(case, "itersolve-sns", "transport_cost")
        exact = results.median(case, "pot-emd2", "transport_cost")
        if ours is None or exact is None:
            continue
        reg = float(case.rsplit("reg", 1)[1])
        gaps.append((reg, abs(ours - exact)))
    if len(gaps) < 2:
        return ClaimOutcome(None, None, "fewer than two regularisations ran")
    gaps.sort(reverse=True)
    ratios = [g2 / g1 for (_, g1), (_, g2) in itertools.pairwise(gaps)]
    detail = ", ".join(f"reg {r:g}: {g:.2e}" for r, g in gaps)
    return ClaimOutcome(max(ratios), max(ratios) < 1.0, detail)


SUITES = [
    Suite(
        name="ot-sinkhorn",
        # make bench: the random-assignment headline, per-iteration cost and the
        # reg -> 0 sweep.
        headline="^(assignment|per-iteration|emd-gap)",
        description=(
            "Entropic OT to L1 marginal error 1e-10, every solver converged: "
            "Sinkhorn-Newton-Sparse vs POT sinkhorn_log and our log-domain "
            "Sinkhorn on random assignment (n=500, reg=1/1200), MNIST-like "
            "load_digits images (L2 and L1 pixel costs) and 2-D Gaussian "
            "mixtures; SNS alone at reg=1e-4; Sinkhorn per-iteration cost vs POT "
            "at n=1000; entropic cost vs ot.emd2 as reg -> 0."
        ),
        objective_name="L1 marginal error",
        cases=cases,
        evaluate=evaluate,
        methods=[
            Method(
                "pot-sinkhorn-log",
                _pot_run,
                prepare=_prepare_runs,
                requires=("ot",),
                applies=lambda c: _kind(c) in (SPEED, PER_ITERATION),
            ),
            Method(
                "itersolve-sns",
                _sns_run,
                trace=_sns_trace,
                anchor="pot-sinkhorn-log",
                applies=lambda c: _kind(c) != PER_ITERATION,
            ),
            Method(
                "itersolve-sns-continuation",
                _sns_continuation_run,
                applies=lambda c: _kind(c) == SMALL,
            ),
            Method(
                "itersolve-sinkhorn",
                _sinkhorn_run,
                prepare=_prepare_runs,
                anchor="pot-sinkhorn-log",
                applies=lambda c: _kind(c) in (SPEED, PER_ITERATION),
            ),
            Method(
                "pot-emd2",
                _emd_run,
                requires=("ot",),
                applies=lambda c: _kind(c) == EMD_GAP,
            ),
        ],
        claims=[
            Claim(
                "random assignment n=500, reg=1/1200: SNS total iterations to "
                "L1 marginal error <= 1e-10",
                "<= 60",
                _sns_iterations("assignment-", 60),
            ),
            Claim(
                "random assignment n=500, reg=1/1200: POT sinkhorn_log time to "
                "1e-10 (converged, torch backend) / SNS time",
                ">= 10",
                _pot_slowdown("assignment-", 10.0),
            ),
            Claim(
                "MNIST-like L2 (20x20, reg=1e-3): POT sinkhorn_log time to 1e-10 "
                "(converged, torch backend) / SNS time",
                ">= 5",
                _pot_slowdown("mnist-l2-", 5.0),
            ),
            Claim(
                "SNS time to 1e-10 / min(POT sinkhorn_log, our Sinkhorn) on every "
                "speed case (assignment, MNIST-like L2 and L1, Gaussian mixtures; "
                "largest ratio)",
                "<= 1.5",
                _sns_within_best(1.5),
            ),
            Claim(
                "SNS converges to 1e-10 at reg=1e-4 (MNIST-like L2 and L1, "
                "Gaussian mixtures; cases converged)",
                "all",
                _small_reg_converges,
            ),
            Claim(
                "log-domain Sinkhorn per-iteration time, ours / POT sinkhorn_log "
                "(numpy backend), n=1000",
                "<= 1.0",
                _per_iteration_ratio(1.0),
            ),
            Claim(
                "|<C,P> - emd2| decreases as reg -> 0 (largest ratio of consecutive "
                "gaps)",
                "< 1",
                _emd_gap_decreasing,
            ),
        ],
        # quick: 3 timed repeats; the assignment case 1 (its converged POT run
        # takes minutes).
        repeats={"smoke": 1, "quick": 3, "full": 5},
        # quick measured on a loaded machine (load 4-14 on 2 cores): 16 min,
        # 11 of them POT's converged assignment run (32 261 iterations at
        # ~20 ms); idle ~5 ms per POT iteration gives the estimates below.
        estimate_seconds={"smoke": 20, "quick": 330, "full": 1800, "headline": 240},
    )
]
