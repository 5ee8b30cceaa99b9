"""``report.md``, self-contained ``report.html``, ``claims.json`` and PNG plots."""

from __future__ import annotations

import base64
import html
import json
import math
from collections import defaultdict
from pathlib import Path
from typing import Any

from itersolve.bench.registry import all_suites
from itersolve.bench.results import Results, load_rows
from itersolve.bench.suite import Suite


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return f"{value:.{digits}g}"
    return str(value)


def evaluate_claims(
    suite: Suite, rows: list[dict[str, Any]], left_out: dict[str, str] | None = None
) -> list[dict[str, Any]]:
    """Each claim's outcome and verdict.

    The verdict is the check's PASS/FAIL, except: a claim resting on an ERROR row
    FAILs with the error text; a claim that compared times measured on a busy
    machine (rows marked ``contended``) is PROVISIONAL, with the reason.
    """
    out = []
    for claim in suite.claims:
        results = Results(rows)
        try:
            outcome = claim.check(results)
            measured, passed, detail = outcome.measured, outcome.passed, outcome.detail
        except Exception as exc:  # a broken check is reported, not hidden
            measured, passed, detail = None, False, f"check failed: {exc}"
        notes = [detail] if detail else []
        errors = sorted(
            {
                f"{r['solver_name']} on {r['dataset_name']}: {r.get('note', '')}"
                for r in results.rows_touched()
                if r.get("status") == "ERROR"
            }
        )
        if errors:
            passed = False
            notes.append("ERROR " + "; ".join(errors))
        verdict = _verdict(passed)
        skipped = sorted({c for c, _, _ in results.touched if c in (left_out or {})})
        if verdict == "NOT RUN" and skipped:
            notes.append(f"{', '.join(skipped)}: {(left_out or {})[skipped[0]]}")
        busy = [r for r in results.rows_touched("time") if r.get("contended")]
        if busy and verdict in ("PASS", "FAIL"):
            verdict = "PROVISIONAL"
            notes.append(
                f"{verdict.lower()}: {len(busy)} timed row(s) measured on a busy "
                f"machine ({busy[0].get('contention', '')}); would be "
                f"{_verdict(passed)}"
            )
        out.append(
            {
                "suite": suite.name,
                "claim": claim.name,
                "measured": measured,
                "threshold": claim.threshold,
                "passed": passed,
                "verdict": verdict,
                "detail": "; ".join(notes),
            }
        )
    return out


def _verdict(passed: bool | None) -> str:
    return {True: "PASS", False: "FAIL", None: "NOT RUN"}[passed]


def verdict_of(claim: dict[str, Any]) -> str:
    """PASS / FAIL / PROVISIONAL / NOT RUN (older claims.json files lack it)."""
    return claim.get("verdict") or _verdict(claim["passed"])


def summary_table(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One line per (case, method): medians, status, ratio to the method's anchor."""
    results = Results(rows)
    seen: dict[tuple[str, str], dict[str, Any]] = {}
    for r in rows:
        key = (r["dataset_name"], r["solver_name"])
        if key in seen:
            continue
        if r.get("skipped"):
            seen[key] = {
                "case": key[0],
                "method": key[1],
                "status": r["status"],
                "note": r.get("note", ""),
            }
            continue
        case, method = key
        statuses = sorted({x["status"] for x in results.select(case, method)})
        anchor = r.get("anchor")
        seen[key] = {
            "case": case,
            "method": method,
            "time": results.median(case, method),
            "spread": results.spread(case, method),
            "contended": sum(
                bool(x.get("contended")) for x in results.select(case, method)
            ),
            "ratio": results.ratio(case, method, anchor) if anchor else None,
            "anchor": anchor,
            "objective": results.median(case, method, "objective_value"),
            "steps": results.median(case, method, "num_steps"),
            "status": "/".join(statuses),
            "reps": len(results.select(case, method)),
            "device": r.get("device", ""),
            "dtype": r.get("dtype", ""),
            "note": "",
        }
    return list(seen.values())


NOISY = 2.0
"""max/min of a row's repeats above which its timing is flagged noisy."""


def _spread(line: dict[str, Any]) -> str:
    spread = line.get("spread")
    if not spread:
        return ""
    low, _, high = spread
    text = f"{_fmt(low, 3)} / {_fmt(high, 3)}"
    if low > 0 and high / low > NOISY:
        text += " noisy"
    if line.get("contended"):
        text += f" ({line['contended']} contended)"
    return text


def plot_case(rows: list[dict[str, Any]], path: Path, title: str) -> bool:
    """Objective vs iterations and vs seconds, one line per method with a curve."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curves = [(r["solver_name"], r["curve"], r) for r in rows if r.get("curve")]
    if not curves:
        return False
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.8))
    for name, curve, row in curves:
        steps = curve.get("step", [])
        values = curve.get("objective", [])
        if not steps:
            continue
        ax1.semilogy(steps, values, label=name)
        if "time" in curve:
            ax2.semilogy(curve["time"], values, label=name)
        else:  # no measured times per step: only the measured end point
            median = Results(rows).median(row["dataset_name"], name)
            if median is not None:
                ax2.semilogy([median], [values[-1]], "o", label=f"{name} (end)")
    objective = rows[0].get("objective_name", "objective")
    ax1.set(xlabel="iteration", ylabel=objective, title=title)
    ax2.set(xlabel="seconds", ylabel=objective)
    ax1.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return True


VERDICTS = ("PASS", "FAIL", "PROVISIONAL", "NOT RUN")


def _durations(out: Path) -> dict[tuple[str, str | None], float]:
    """Measured wall seconds per suite and scale (sum over its cases, resumed
    runs added; rows of older runs carry no scale)."""
    total: dict[tuple[str, str | None], float] = defaultdict(float)
    for row in load_rows(out / "durations.jsonl"):
        total[(row["suite"], row.get("scale"))] += float(row["seconds"])
    return dict(total)


def _summary(
    sections: list[tuple[str, str]],
    claims: list[dict[str, Any]],
    durations: dict[tuple[str, str | None], float],
) -> tuple[list[str], list[str]]:
    """The opening table: one line per suite (and scale, when a suite ran at
    several), verdict counts and duration."""
    header = ["suite", *VERDICTS, "duration [s]"]
    md = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    page = ["<table><tr>" + "".join(f"<th>{h}</th>" for h in header) + "</tr>"]
    several = {n for n, _ in sections if sum(m == n for m, _ in sections) > 1}
    for name, scale in sections:
        label, anchor = name, name
        if name in several:
            label, anchor = f"{name} ({scale})", f"{name}-{scale}"
        counts = {v: 0 for v in VERDICTS}
        for c in claims:
            if c["suite"] == name and c.get("scale", scale) == scale:
                counts[verdict_of(c)] += 1
        seconds = durations.get((name, scale), durations.get((name, None)))
        cells = [str(counts[v]) for v in VERDICTS] + [_fmt(seconds, 3)]
        md.append(f"| [{label}](#{anchor}) | " + " | ".join(cells) + " |")
        page.append(
            f"<tr><td><a href='#{html.escape(anchor)}'>{html.escape(label)}</a></td>"
            + "".join(f"<td>{c}</td>" for c in cells)
            + "</tr>"
        )
    page.append("</table>")
    return [*md, ""], page


def build_report(out: str | Path) -> Path:
    """(Re)build the report from ``out/results.jsonl``; returns the HTML path."""
    out = Path(out)
    rows = load_rows(out / "results.jsonl")
    suites = all_suites()
    left_path = out / "left_out.json"
    left_out = json.loads(left_path.read_text()) if left_path.exists() else {}
    # A suite run at two scales into one folder gets a section per scale: its
    # claims must not pool smoke rows with quick ones.
    by_suite: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        by_suite[(r["suite"], r["scale"])].append(r)
    scales_of: dict[str, int] = defaultdict(int)
    for name, _ in by_suite:
        scales_of[name] += 1
    plots = out / "plots"
    plots.mkdir(exist_ok=True)
    md: list[str] = []
    body: list[str] = []
    claims: list[dict[str, Any]] = []
    for (name, scale), suite_rows in by_suite.items():
        suite = suites.get(name)
        env = suite_rows[0]
        anchor = name if scales_of[name] == 1 else f"{name}-{scale}"
        md += [f'<a id="{anchor}"></a>', "", f"## {name} ({scale})", ""]
        body.append(
            f"<h2 id='{html.escape(anchor)}'>{html.escape(name)} "
            f"({html.escape(scale)})</h2>"
        )
        if suite is not None:
            md += [suite.description, ""]
            body.append(f"<p>{html.escape(suite.description)}</p>")
        info = (
            f"threads={env.get('threads')} torch={env.get('torch_version')} "
            f"scipy={env.get('scipy_version')} git={env.get('git_sha')}"
        )
        md += [info, ""]
        body.append(f"<p><code>{html.escape(info)}</code></p>")
        left = left_out.get(name, {})
        suite_claims = evaluate_claims(suite, suite_rows, left) if suite else []
        for c in suite_claims:
            c["scale"] = scale
        claims += suite_claims
        if suite_claims:
            md += ["| claim | measured | threshold | verdict |", "|---|---|---|---|"]
            body.append(
                "<table><tr><th>claim</th><th>measured</th><th>threshold</th>"
                "<th>verdict</th></tr>"
            )
            for c in suite_claims:
                verdict = verdict_of(c) + (f" ({c['detail']})" if c["detail"] else "")
                md.append(
                    f"| {c['claim']} | {_fmt(c['measured'])} | {c['threshold']} "
                    f"| {verdict} |"
                )
                body.append(
                    f"<tr><td>{html.escape(c['claim'])}</td><td>{_fmt(c['measured'])}</td>"
                    f"<td>{html.escape(c['threshold'])}</td>"
                    f"<td class='{verdict_of(c).replace(' ', '')}'>"
                    f"{html.escape(verdict)}</td></tr>"
                )
            md.append("")
            body.append("</table>")
        header = [
            "case",
            "method",
            "median time [s]",
            "min / max [s]",
            "ratio to anchor",
            "anchor",
            suite_rows[0]["objective_name"],
            "steps",
            "status",
            "reps",
            "device",
            "dtype",
        ]
        md += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        body.append(
            "<table><tr>"
            + "".join(f"<th>{html.escape(h)}</th>" for h in header)
            + "</tr>"
        )
        for line in summary_table(suite_rows):
            cells = [
                line["case"],
                line["method"],
                _fmt(line.get("time"), 4),
                _spread(line),
                _fmt(line.get("ratio")),
                line.get("anchor") or "",
                _fmt(line.get("objective")),
                _fmt(line.get("steps")),
                line["status"] + (f": {line['note']}" if line.get("note") else ""),
                _fmt(line.get("reps")),
                line.get("device", ""),
                line.get("dtype", ""),
            ]
            md.append("| " + " | ".join(cells) + " |")
            body.append(
                "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>"
            )
        md.append("")
        body.append("</table>")
        for case in dict.fromkeys(r["dataset_name"] for r in suite_rows):
            png = plots / f"{anchor}--{case}.png"
            case_rows = [r for r in suite_rows if r["dataset_name"] == case]
            if plot_case(case_rows, png, f"{name}: {case}"):
                md += [f"![{case}](plots/{png.name})", ""]
                data = base64.b64encode(png.read_bytes()).decode()
                body.append(
                    f"<img alt='{html.escape(case)}' "
                    f"src='data:image/png;base64,{data}'>"
                )
    head_md, head_html = _summary(list(by_suite), claims, _durations(out))
    md = ["# itersolve benchmark report", "", *head_md, *md]
    body = ["<h1>itersolve benchmark report</h1>", *head_html, *body]
    (out / "claims.json").write_text(json.dumps(claims, indent=2, default=float))
    (out / "report.md").write_text("\n".join(md) + "\n")
    style = (
        "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;"
        "margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px}"
        ".PASS{color:#070}.FAIL{color:#b00}img{max-width:100%}"
    )
    page = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>itersolve "
        f"benchmarks</title><style>{style}</style></head><body>{''.join(body)}"
        "</body></html>"
    )
    (out / "report.html").write_text(page)
    return out / "report.html"


def format_claims(claims: list[dict[str, Any]]) -> str:
    """One line per claim; the scale is named when the claims span several."""
    several = len({c.get("scale") for c in claims}) > 1

    def where(c: dict[str, Any]) -> str:
        return f"{c['suite']} ({c['scale']})" if several else c["suite"]

    return "\n".join(
        f"[{verdict_of(c)}] {where(c)}: {c['claim']} — measured "
        f"{_fmt(c['measured'])} (threshold {c['threshold']})"
        + (f" [{c['detail']}]" if c["detail"] else "")
        for c in claims
    )
