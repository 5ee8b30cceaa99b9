"""core-overhead: what the driver loop costs per step over a bare Python loop.

Every method runs through :func:`itersolve._core.iterate.iterate`, so its cost per
step is paid by every family. The suite runs a method whose ``step`` does no work
(the driver's cost is then all there is to see) for ``K`` steps on vectors of
``n = 10^3`` and ``n = 10^5`` entries, two ways:

* ``bare-loop``: ``for _ in range(K): state = method.step(problem, state)``;
* ``iterate``: the driver with the same method, ``max_steps=K`` (stopping test,
  finiteness check, timing of each step, all included).

The no-op's state carries its finiteness certificate (``x_sum``), as every fused
method does; a second variant carries none, so the driver falls back to one
``sum`` of ``x`` per step. Its step moves to the next of three iterates built in
``init`` (``x0``, ``x0 + 1``, ``x0 + 2``): no work, but ``x`` keeps moving, so the
driver's frozen-iterate check runs as on a real run and is part of the measured
cost (a no-op that kept ``x`` fixed would rightly end with ``STAGNATION``).

The claim (issue "fast core"): the driver adds at most ``20% + 2 us`` per step
over the bare loop, claimed at both sizes for both variants: a method whose step
computes no certificate pays one ``sum`` per step, which at ``n = 10^5`` is far
above the 2 us allowance (that claim is expected to FAIL; the hot methods
certify).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any

import torch

from itersolve._core.iterate import IterativeMethod, iterate
from itersolve.bench.results import Results
from itersolve.bench.suite import Case, Claim, ClaimOutcome, Method, RunOutput, Suite

ABSOLUTE_US, RELATIVE = 2.0, 0.2


@dataclass
class NoopState:
    x: torch.Tensor
    x_sum: float | None
    status: Any = None
    following: NoopState | None = None


@dataclass(frozen=True, kw_only=True)
class NoopMethod(IterativeMethod):
    """A method whose step computes nothing (it moves to the next of three
    iterates built in ``init``); its stopping rule never holds."""

    certificate: bool = True

    def init(self, problem: Any, x0: torch.Tensor) -> NoopState:
        cycle = [
            NoopState(x, float(x.sum()) if self.certificate else None)
            for x in (x0, x0 + 1, x0 + 2)
        ]
        for state, following in zip(cycle, cycle[1:] + cycle[:1], strict=True):
            state.following = following
        return cycle[0]

    def step(self, problem: Any, state: NoopState) -> NoopState:
        assert state.following is not None
        return state.following

    def converged(self, problem: Any, state: NoopState) -> bool:
        return False


@dataclass(frozen=True)
class OverheadCase:
    x0: torch.Tensor
    steps: int


def cases(scale: str) -> list[Case]:
    sizes = {"smoke": [(1000, 200)], "quick": [(1000, 20000), (100_000, 20000)]}
    sizes["full"] = sizes["quick"]
    return [
        Case(
            f"n={n:.0e}".replace("+0", ""),
            partial(_build, n, steps),
            {"n": n, "steps": steps},
        )
        for n, steps in sizes[scale]
    ]


def _build(n: int, steps: int) -> OverheadCase:
    return OverheadCase(torch.linspace(-1.0, 1.0, n, dtype=torch.float64), steps)


def evaluate(problem: OverheadCase, x: Any) -> float:
    """Max change of ``x`` from ``x0`` (0, 1 or 2: where the cycle stopped)."""
    return float((torch.as_tensor(x) - problem.x0).abs().max())


def _bare(certificate: bool, p: OverheadCase) -> RunOutput:
    method = NoopMethod(certificate=certificate)
    state = method.init(None, p.x0)
    step = method.step
    for _ in range(p.steps):
        state = step(None, state)
    return RunOutput(state.x, p.steps, "SUCCESS")


def _driver(certificate: bool, p: OverheadCase) -> RunOutput:
    method = NoopMethod(certificate=certificate, max_steps=p.steps)
    _, sol = iterate(method, None, p.x0)
    # The no-op never converges: running exactly the K steps asked is success.
    ok = sol.num_steps == p.steps and sol.status.name == "MAX_STEPS"
    return RunOutput(sol.x, sol.num_steps, "SUCCESS" if ok else sol.status.name)


def _per_step_us(results: Results, case: str, method: str) -> float | None:
    time = results.median(case, method)
    steps = results.median(case, method, "num_steps")
    return None if time is None or not steps else 1e6 * time / steps


def _overhead(case: str, certified: bool) -> Any:
    """Extra time per step of ``iterate`` over the bare loop of the same step."""
    suffix = "" if certified else "-sum-fallback"

    def check(results: Results) -> ClaimOutcome:
        bare = _per_step_us(results, case, f"bare-loop{suffix}")
        ours = _per_step_us(results, case, f"iterate{suffix}")
        if bare is None or ours is None:
            return ClaimOutcome(None, None, f"no rows for {case}")
        ok = results.all_succeeded(case, f"iterate{suffix}")
        extra = ours - bare
        limit = RELATIVE * bare + ABSOLUTE_US
        detail = (
            f"bare {bare:.3f} us/step, driver {ours:.3f} us/step, allowed extra "
            f"{limit:.2f} us"
        )
        if not ok:
            detail += "; the driver did not run the K steps"
        return ClaimOutcome(extra, ok and extra <= limit, detail)

    return check


SUITES = [
    Suite(
        name="core-overhead",
        description=(
            "The driver's cost per step: a no-op method for K steps through "
            "iterate() vs a bare Python loop calling the same step, n = 1e3 and "
            "1e5 (float64, CPU, one thread)."
        ),
        objective_name="max change of x",
        cases=cases,
        evaluate=evaluate,
        methods=[
            Method("bare-loop", partial(_bare, True)),
            Method("iterate", partial(_driver, True), anchor="bare-loop"),
            Method("bare-loop-sum-fallback", partial(_bare, False)),
            Method(
                "iterate-sum-fallback",
                partial(_driver, False),
                anchor="bare-loop-sum-fallback",
            ),
        ],
        claims=[
            Claim(
                f"n = {n}, {kind}: driver extra time per step, us "
                f"(<= {RELATIVE:.0%} of the bare step + {ABSOLUTE_US:g} us)",
                f"<= {RELATIVE:g} * bare + {ABSOLUTE_US:g}",
                _overhead(case, certified),
            )
            for certified, kind in (
                (True, "step certifies finiteness (x_sum)"),
                (False, "no certificate (the driver sums x)"),
            )
            for n, case in (("1e3", "n=1e3"), ("1e5", "n=1e5"))
        ],
        repeats={"smoke": 1, "quick": 7, "full": 9},
        estimate_seconds={"smoke": 2, "quick": 5, "full": 30},
    )
]
