"""Reading results rows, and the helpers claims are written with."""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

from itersolve.bench.suite import ClaimOutcome


def load_rows(path: Path) -> list[dict[str, Any]]:
    """Rows of a ``results.jsonl``; a truncated last line (killed run) is ignored."""
    rows: list[dict[str, Any]] = []
    if not path.exists():
        return rows
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows


def drop_partial_tail(path: Path) -> None:
    """Cut a half-written last line left by a killed run, so appends start clean."""
    if not path.exists():
        return
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        path.write_bytes(data[: data.rfind(b"\n") + 1])


def row_key(row: dict[str, Any]) -> tuple[str, str, str, str, int]:
    return (
        row["suite"],
        row["scale"],
        row["dataset_name"],
        row["solver_name"],
        int(row["idx_rep"]),
    )


class Results:
    """The rows of one suite, with lookups by (case, method).

    Every lookup is remembered in ``touched`` as ``(case, method, column)``, so
    the report can tell which rows a claim rested on: a timing claim over rows
    measured on a busy machine is PROVISIONAL, one over an ERROR row FAILs.
    Skipped rows (an optional package missing) are invisible; ERROR rows are
    not: they make ``all_succeeded`` false.
    """

    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self.rows = rows
        self.touched: set[tuple[str, str, str | None]] = set()

    def select(self, case: str, method: str) -> list[dict[str, Any]]:
        self.touched.add((case, method, None))
        return [
            r
            for r in self.rows
            if r["dataset_name"] == case
            and r["solver_name"] == method
            and not r.get("skipped")
        ]

    def median(self, case: str, method: str, column: str = "time") -> float | None:
        self.touched.add((case, method, column))
        values = [
            float(r[column])
            for r in self.select(case, method)
            if r.get(column) is not None
        ]
        return statistics.median(values) if values else None

    def spread(
        self, case: str, method: str, column: str = "time"
    ) -> tuple[float, float, float] | None:
        """``(min, median, max)`` of a column, or ``None`` without values."""
        values = [
            float(r[column])
            for r in self.select(case, method)
            if r.get(column) is not None
        ]
        if not values:
            return None
        return min(values), statistics.median(values), max(values)

    def rows_touched(self, column: str | None = None) -> list[dict[str, Any]]:
        """The rows of every (case, method) looked up (for ``column`` only, if
        given)."""
        pairs = {(c, m) for c, m, col in self.touched if column in (None, col)}
        return [
            r
            for r in self.rows
            if (r["dataset_name"], r["solver_name"]) in pairs and not r.get("skipped")
        ]

    def first(self, case: str, method: str, column: str) -> Any:
        self.touched.add((case, method, column))
        rows = self.select(case, method)
        return rows[0].get(column) if rows else None

    def ratio(
        self, case: str, method: str, anchor: str, column: str = "time"
    ) -> float | None:
        num, den = self.median(case, method, column), self.median(case, anchor, column)
        if num is None or den is None or den == 0:
            return None
        return num / den

    def all_succeeded(self, case: str, method: str) -> bool:
        rows = self.select(case, method)
        return bool(rows) and all(r["status"] == "SUCCESS" for r in rows)


def ratio_at_most(
    case: str, method: str, anchor: str, limit: float, column: str = "time"
) -> Any:
    """Claim check: median(method) / median(anchor) <= limit, both successful."""
    return _ratio_claim(case, method, anchor, column, lambda r: r <= limit)


def speedup_at_least(
    case: str, method: str, anchor: str, at_least: float, column: str = "time"
) -> Any:
    """Claim check: median(anchor) / median(method) >= at_least, both successful."""
    return _ratio_claim(case, anchor, method, column, lambda r: r >= at_least)


def _ratio_claim(case: str, num: str, den: str, column: str, holds: Any) -> Any:
    def check(results: Results) -> ClaimOutcome:
        ratio = results.ratio(case, num, den, column)
        if ratio is None:
            return ClaimOutcome(None, None, f"no rows for {case}")
        ok = results.all_succeeded(case, num) and results.all_succeeded(case, den)
        detail = "" if ok else "a run did not succeed"
        return ClaimOutcome(ratio, ok and holds(ratio), detail)

    return check
