"""Runner (rows, resume after a kill, process pool) and report generation."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from itersolve.bench.cli import main
from itersolve.bench.registry import get_suites
from itersolve.bench.report import build_report
from itersolve.bench.results import load_rows, row_key
from itersolve.bench.runner import is_contended, other_cores, run_benchmarks

SUITE = "linear-poisson"


def _keys(path):
    return [row_key(r) for r in load_rows(path)]


def test_rows_have_benchopt_columns(tmp_path):
    run_benchmarks([SUITE], scale="smoke", out=tmp_path)
    rows = load_rows(tmp_path / "results.jsonl")
    methods = {m.name for m in get_suites([SUITE])[0].methods}
    assert {r["solver_name"] for r in rows} == methods
    for row in rows:
        for column in (
            "objective_name",
            "dataset_name",
            "solver_name",
            "idx_rep",
            "time",
            "objective_value",
            "status",
            "num_steps",
            "device",
            "dtype",
            "threads",
            "torch_version",
            "git_sha",
        ):
            assert column in row
        assert row["status"] == "SUCCESS"
        assert row["objective_value"] <= 1e-6 * 1.01  # recomputed true residual


def test_resume_after_kill_loses_and_duplicates_nothing(tmp_path):
    run_benchmarks([SUITE], scale="smoke", out=tmp_path, repeats=2)
    path = tmp_path / "results.jsonl"
    full = _keys(path)
    assert len(full) == len(set(full))
    lines = path.read_text().splitlines()
    # A kill mid-run: the last rows are gone and the final line is cut in half.
    path.write_text("\n".join(lines[:3]) + "\n" + lines[3][: len(lines[3]) // 2])
    run_benchmarks([SUITE], scale="smoke", out=tmp_path, repeats=2)
    resumed = _keys(path)
    assert Counter(resumed) == Counter(full)
    # Rerunning a finished run adds nothing.
    run_benchmarks([SUITE], scale="smoke", out=tmp_path, repeats=2)
    assert Counter(_keys(path)) == Counter(full)


def test_process_pool_executor(tmp_path):
    run_benchmarks([SUITE], scale="smoke", out=tmp_path, jobs=2, threads=1)
    rows = load_rows(tmp_path / "results.jsonl")
    assert rows and all(r["threads"] == 1 for r in rows)


def _row(case, method, time, anchor=None, status="SUCCESS", steps=100, **extra):
    return {
        **extra,
        "suite": SUITE,
        "scale": "quick",
        "objective_name": "relative residual",
        "dataset_name": case,
        "solver_name": method,
        "idx_rep": 0,
        "time": time,
        "objective_value": 1e-7,
        "status": status,
        "num_steps": steps,
        "anchor": anchor,
        "curve": {"step": [1, 2], "objective": [1e-1, 1e-7]},
        "device": "cpu",
        "dtype": "float64",
        "threads": 2,
    }


def test_report_from_tiny_results_file(tmp_path):
    rows = [
        _row("poisson2d-256", "scipy-cg", 2.0),
        _row("poisson2d-256", "itersolve-cg", 1.0, anchor="scipy-cg"),
        _row("poisson2d-256", "scipy-cg-x32", 3.0),
        _row("poisson2d-256", "itersolve-cg-batch32", 2.9, anchor="scipy-cg-x32"),
        _row("poisson2d-64", "scipy-cg", 1.0),
        _row("poisson2d-64", "itersolve-cg", 1.2, anchor="scipy-cg", steps=110),
    ]
    (tmp_path / "results.jsonl").write_text(
        "\n".join(json.dumps(r) for r in rows) + "\n"
    )
    html = build_report(tmp_path)
    claims = {c["claim"]: c for c in json.loads((tmp_path / "claims.json").read_text())}
    verdicts = {name.split(":")[0]: c["passed"] for name, c in claims.items()}
    assert verdicts["iteration count equals scipy CG's within 2% (all sizes)"] is False
    assert verdicts["single rhs, 256^2"] is True
    assert verdicts["32 rhs at once vs 32 scipy solves, 256^2"] is False
    assert verdicts["GPU"] is None
    ratio = claims["single rhs, 256^2: time ours/scipy"]["measured"]
    assert ratio == pytest.approx(0.5)
    text = (tmp_path / "report.md").read_text()
    assert "| poisson2d-256 | itersolve-cg | 1 | 1 / 1 | 0.5 | scipy-cg |" in text
    assert "FAIL" in text and "PASS" in text and "NOT RUN" in text
    page = html.read_text()
    assert page.count("data:image/png;base64,") == 2
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == [
        "linear-poisson--poisson2d-256.png",
        "linear-poisson--poisson2d-64.png",
    ]


def test_cli_list_and_report(tmp_path, capsys):
    assert main(["list"]) == 0
    assert SUITE in capsys.readouterr().out
    (tmp_path / "results.jsonl").write_text(
        json.dumps(_row("poisson2d-64", "scipy-cg", 1.0))
    )
    assert main(["report", str(tmp_path)]) == 0
    assert "report.html" in capsys.readouterr().out


def test_unknown_suite_is_an_error():
    with pytest.raises(ValueError, match="unknown suite"):
        get_suites(["no-such-suite"])


def _claims_for(tmp_path, rows):
    (tmp_path / "results.jsonl").write_text(
        "\n".join(json.dumps(r) for r in rows) + "\n"
    )
    build_report(tmp_path)
    return {c["claim"]: c for c in json.loads((tmp_path / "claims.json").read_text())}


CLAIM_256 = "single rhs, 256^2: time ours/scipy"


def test_contended_timing_claim_is_provisional(tmp_path):
    busy = {"contended": True, "contention": "load average 3.10 > 1.5"}
    claims = _claims_for(
        tmp_path,
        [
            _row("poisson2d-256", "scipy-cg", 2.0, **busy),
            _row("poisson2d-256", "itersolve-cg", 1.0, anchor="scipy-cg"),
        ],
    )
    claim = claims[CLAIM_256]
    assert claim["verdict"] == "PROVISIONAL" and claim["passed"] is True
    assert "load average 3.10" in claim["detail"] and "would be PASS" in claim["detail"]
    # The iteration-count claim does not rest on times: contention is irrelevant.
    same = claims["iteration count equals scipy CG's within 2% (all sizes)"]
    assert same["verdict"] == "PASS"


def test_error_row_fails_its_claims_with_the_error(tmp_path):
    claims = _claims_for(
        tmp_path,
        [
            _row("poisson2d-256", "scipy-cg", 2.0),
            {
                **_row("poisson2d-256", "itersolve-cg", None, anchor="scipy-cg"),
                "status": "ERROR",
                "note": "RuntimeError: kernel exploded",
            },
        ],
    )
    claim = claims[CLAIM_256]
    assert claim["verdict"] == "FAIL" and claim["passed"] is False
    assert "kernel exploded" in claim["detail"]


def test_strict_exits_one_on_fail(tmp_path, monkeypatch):
    import itersolve.bench.runner as runner

    def fake_run(names, *, out, **kwargs):
        rows = [
            _row("poisson2d-256", "scipy-cg", 1.0),
            _row("poisson2d-256", "itersolve-cg", 5.0, anchor="scipy-cg"),
        ]
        (tmp_path / "results.jsonl").write_text(
            "\n".join(json.dumps(r) for r in rows) + "\n"
        )
        return tmp_path

    monkeypatch.setattr(runner, "run_benchmarks", fake_run)
    args = ["bench", SUITE, "--scale", "smoke", "--out", str(tmp_path)]
    assert main(args) == 0
    assert main([*args, "--strict"]) == 1


def test_contention_rule():
    assert is_contended(1, 0.9, 1.2, 0.1) == (False, "")
    busy, why = is_contended(1, 1.0, 2.3, None)
    assert busy and "2.30 > 1.5" in why
    busy, why = is_contended(1, 1.0, 1.0, 0.9)
    assert busy and "0.90 cores" in why
    assert other_cores((10.0, 1.0), (11.0, 1.5), 1.0) == pytest.approx(0.5)
    assert other_cores((10.0, 1.0), (10.1, 1.05), 0.1) is None  # too short to tell


def test_timed_rows_record_load_and_keep_nonfinite(tmp_path):
    run_benchmarks([SUITE], scale="smoke", out=tmp_path, repeats=1)
    rows = load_rows(tmp_path / "results.jsonl")
    for row in rows:
        assert {"loadavg_before", "loadavg_after", "contended", "finite"} <= set(row)
        assert row["threads"] == 1


def test_headline_plan_and_summary_table(tmp_path):
    from dataclasses import replace

    from itersolve.bench.runner import plan

    suite = get_suites([SUITE])[0]
    every = plan([suite], "quick")
    assert len(every) >= 3
    only = plan([replace(suite, headline="256$")], "quick", headline=True)
    assert [u.case_name for u in only] == ["poisson2d-256"]
    smoke = plan([replace(suite, headline="256$")], "smoke", headline=True)
    assert smoke == plan([suite], "smoke")  # headline subsets are quick-scale only
    assert plan([suite], "quick", cases="-64$") == [every[0]]
    run_benchmarks([SUITE], scale="smoke", out=tmp_path, repeats=1)
    build_report(tmp_path)
    text = (tmp_path / "report.md").read_text()
    lines = text.splitlines()
    assert lines[2].startswith("| suite | PASS | FAIL | PROVISIONAL | NOT RUN |")
    assert lines[4].startswith(f"| [{SUITE}](#{SUITE}) |")
    seconds = float(lines[4].rstrip(" |").rsplit("|", 1)[-1])
    assert seconds > 0


def test_cli_errors_are_one_line(tmp_path, capsys):
    assert main(["report", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("itersolve: error: no such folder") and err.count("\n") == 1
    assert main(["report", str(tmp_path)]) == 1
    assert "holds no results.jsonl" in capsys.readouterr().err
    assert main(["bench", "no-such-suite", "--out", str(tmp_path)]) == 2
    assert "unknown suite" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == __import__("itersolve").__version__


def test_cli_list_fits_the_terminal(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    assert main(["list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines and max(len(line) for line in lines) <= 80
    assert main(["list", "-v"]) == 0
    assert len(capsys.readouterr().out.splitlines()) > len(lines)


def test_claim_on_a_left_out_case_says_why(tmp_path):
    rows = [
        _row("poisson2d-64", "scipy-cg", 1.0),
        _row("poisson2d-64", "itersolve-cg", 0.5, anchor="scipy-cg"),
    ]
    (tmp_path / "left_out.json").write_text(
        json.dumps({SUITE: {"poisson2d-256": "not a headline case (make bench-full)"}})
    )
    claims = _claims_for(tmp_path, rows)
    claim = claims[CLAIM_256]
    assert claim["verdict"] == "NOT RUN"
    assert "poisson2d-256: not a headline case" in claim["detail"]


def test_two_scales_in_one_folder_are_judged_apart(tmp_path):
    """Smoke rows left in the folder must not join a quick run's claims."""
    smoke = [
        {**_row("poisson2d-256", "scipy-cg", 1.0), "scale": "smoke"},
        {
            **_row("poisson2d-256", "itersolve-cg", 3.0, anchor="scipy-cg"),
            "scale": "smoke",
        },
    ]
    quick = [
        _row("poisson2d-256", "scipy-cg", 2.0),
        _row("poisson2d-256", "itersolve-cg", 1.0, anchor="scipy-cg"),
    ]
    (tmp_path / "results.jsonl").write_text(
        "\n".join(json.dumps(r) for r in smoke + quick) + "\n"
    )
    build_report(tmp_path)
    claims = [
        c
        for c in json.loads((tmp_path / "claims.json").read_text())
        if c["claim"] == CLAIM_256
    ]
    by_scale = {c["scale"]: c["measured"] for c in claims}
    assert by_scale == {"smoke": pytest.approx(3.0), "quick": pytest.approx(0.5)}
    text = (tmp_path / "report.md").read_text()
    assert f"## {SUITE} (smoke)" in text and f"## {SUITE} (quick)" in text
    assert f"[{SUITE} (quick)](#{SUITE}-quick)" in text
