"""Every registered suite runs end to end at smoke scale without an error row."""

from __future__ import annotations

import pytest

from itersolve.bench.registry import all_suites
from itersolve.bench.report import build_report
from itersolve.bench.results import load_rows
from itersolve.bench.runner import run_benchmarks


@pytest.mark.benchmark
@pytest.mark.parametrize("name", sorted(all_suites()))
def test_suite_smoke(name, tmp_path):
    run_benchmarks([name], scale="smoke", out=tmp_path, repeats=1)
    rows = load_rows(tmp_path / "results.jsonl")
    assert rows, f"suite {name} produced no rows at smoke scale"
    errors = [r for r in rows if r["status"] == "ERROR"]
    assert not errors, errors[0].get("note")
    ran = [r for r in rows if not r.get("skipped")]
    assert ran and all(
        r["objective_value"] is not None or r["status"] != "SUCCESS" for r in ran
    )
    build_report(tmp_path)
    assert (tmp_path / "claims.json").exists()
