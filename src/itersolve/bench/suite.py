"""What a benchmark suite declares: cases, methods (ours and anchors) and claims."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch

SCALES = ("smoke", "quick", "full")


@dataclass
class RunOutput:
    """What one timed run of a method reports back to the runner.

    ``status`` is an :class:`itersolve.Status` name (``"SUCCESS"``, ``"MAX_STEPS"``,
    ...); anchors map their own flags onto those names.
    """

    x: Any
    num_steps: int
    status: str
    counters: dict[str, float] = field(default_factory=dict)
    extras: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Case:
    """One problem instance; ``build()`` must be deterministic (seeded)."""

    name: str
    build: Callable[[], Any]
    params: dict[str, Any] = field(default_factory=dict)
    repeats: int | None = None
    """Timed repeats for this case, overriding the suite's (a timing claim on a
    case of a suite that otherwise runs once needs its median of >= 5)."""


@dataclass(frozen=True)
class Method:
    """A solver run on every applicable case of a suite.

    ``prepare(problem)`` (untimed) converts the shared problem to the method's
    native format, as a user would once; ``run(prepared)`` is the timed solve;
    ``trace(prepared)`` (untimed, optional) returns a convergence curve as columns
    ``{"step": [...], "objective": [...]}`` (and ``"time"`` when measured).
    ``anchor`` names the method this one is compared to in the ratio column;
    ``requires`` lists importable modules (a missing one skips the method with a
    note).
    """

    name: str
    run: Callable[[Any], RunOutput]
    prepare: Callable[[Any], Any] | None = None
    trace: Callable[[Any], dict[str, list[float]]] | None = None
    anchor: str | None = None
    requires: tuple[str, ...] = ()
    applies: Callable[[Case], bool] = lambda case: True

    def missing(self) -> list[str]:
        return [mod for mod in self.requires if importlib.util.find_spec(mod) is None]


@dataclass(frozen=True)
class ClaimOutcome:
    measured: float | None
    passed: bool | None
    """``None`` when the rows the claim needs were not produced at this scale."""
    detail: str = ""


@dataclass(frozen=True)
class Claim:
    """A check over a suite's results: the paper's headline or our speed goal."""

    name: str
    threshold: str
    check: Callable[[Any], ClaimOutcome]


@dataclass(frozen=True)
class Suite:
    """A family's benchmark: the same problem object for every method on a case.

    ``evaluate(problem, x)`` recomputes the reported objective (e.g. true relative
    residual) in float64 from the returned answer; solvers' own numbers are never
    trusted for the table.
    """

    name: str
    description: str
    objective_name: str
    cases: Callable[[str], Sequence[Case]]
    methods: Sequence[Method]
    evaluate: Callable[[Any, Any], float]
    claims: Sequence[Claim] = ()
    repeats: dict[str, int] = field(
        default_factory=lambda: {"smoke": 1, "quick": 5, "full": 5}
    )
    estimate_seconds: dict[str, float] = field(
        default_factory=lambda: {"smoke": 5, "quick": 120, "full": 600}
    )
    headline: str | None = None
    """Regular expression of the case names the headline claims need: what
    ``itersolve bench --headline`` (``make bench``) runs at quick scale. ``None``:
    every case. Its expected time is ``estimate_seconds["headline"]``."""

    def estimate(self, scale: str, headline: bool = False) -> float:
        """Expected seconds of a run on 2 CPU cores (printed before it starts)."""
        if headline and scale == "quick" and "headline" in self.estimate_seconds:
            return self.estimate_seconds["headline"]
        return self.estimate_seconds.get(scale, 0.0)

    def method(self, name: str) -> Method:
        for m in self.methods:
            if m.name == name:
                return m
        raise KeyError(f"suite {self.name!r} has no method {name!r}")


@dataclass
class Memo:
    """A case's prepared problem plus what methods computed on it, by key.

    For suites whose methods run every seed inside one ``run`` call: the
    runner's warm-up call does the work (:func:`memoised`) and the timed calls
    return it, so no claim of such a suite may rest on the row's time.
    """

    case: Any
    results: dict[str, Any] = field(default_factory=dict)


def memoised(
    compute: Callable[[Any], RunOutput], key: str
) -> Callable[[Memo], RunOutput]:
    """A ``Method.run`` that computes ``compute(memo.case)`` once per case and key."""

    def run(memo: Memo) -> RunOutput:
        if key not in memo.results:
            memo.results[key] = compute(memo.case)
        return memo.results[key]

    return run


@contextmanager
def one_thread() -> Iterator[None]:
    """Run the block with one torch intra-op thread, then restore the count.

    For methods made of many tiny tensor operations (coordinate updates,
    small factorizations): the thread pool's synchronization on every
    operation costs more than it saves, and the anchors they are compared
    with (scikit-learn's coordinate descent, Clarabel) are single-threaded.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)
