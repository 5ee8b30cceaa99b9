"""optimize-newton: the cubic-Newton context row (the spec's cubic_newton
baseline) runs and meets the suite's rule; it is not among the methods the
claims compare."""

from __future__ import annotations

from itersolve.bench.suite import Case
from itersolve.bench.suites import optimize_newton as on


def _method(name: str):
    (found,) = [m for m in on.SUITES[0].methods if m.name == name]
    return found


def test_cubic_newton_row_meets_the_rule():
    fit = on._build("synthetic", 200)
    out = _method("itersolve-cubic-newton").run(fit)
    assert out.status == "SUCCESS"
    assert out.extras["grad_norm"] <= on.GTOL
    assert 0 < out.num_steps <= fit.newton_max_steps
    assert out.counters["factorizations"] >= out.num_steps


def test_cubic_newton_is_context_only():
    method = _method("itersolve-cubic-newton")
    assert method.name not in on.OURS
    assert not method.applies(Case(on.LSE_CASE, lambda: None))
    assert method.applies(Case("logistic-breast_cancer", lambda: None))
