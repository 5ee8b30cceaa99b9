"""``itersolve`` command line: ``bench``, ``list``, ``report``."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from itersolve.bench.suite import SCALES


def _progress(items: Iterable[Any], total: int) -> Iterable[Any]:
    if not sys.stderr.isatty():
        return items
    try:
        from tqdm import tqdm
    except ImportError:
        return items
    return tqdm(items, total=total, unit="case", file=sys.stderr)


def _bench(args: argparse.Namespace) -> int:
    from itersolve.bench.registry import get_suites
    from itersolve.bench.report import build_report, format_claims, verdict_of
    from itersolve.bench.runner import run_benchmarks

    suites = get_suites(args.suites)
    estimate = sum(s.estimate(args.scale, args.headline) for s in suites)
    print(
        f"itersolve bench: {len(suites)} suite(s) at scale {args.scale!r}, "
        f"estimated {estimate / 60:.1f} min on 2 CPU cores; "
        f"rows -> {args.out}/results.jsonl",
        flush=True,
    )
    interrupted = False
    try:
        run_benchmarks(
            [s.name for s in suites],
            scale=args.scale,
            out=args.out,
            jobs=args.jobs,
            threads=args.threads,
            repeats=args.repeats,
            progress=_progress,
            cases=args.cases,
            headline=args.headline,
        )
    except KeyboardInterrupt:
        interrupted = True
        print(
            "interrupted: writing a partial report (rerun to resume)", file=sys.stderr
        )
    html = build_report(args.out)
    claims = json.loads((Path(args.out) / "claims.json").read_text())
    if claims:
        print(format_claims(claims))
    print(f"report: {html}")
    if interrupted:
        return 130
    failed = [c for c in claims if verdict_of(c) == "FAIL"]
    if args.strict and failed:
        print(f"--strict: {len(failed)} claim(s) FAIL", file=sys.stderr)
        return 1
    return 0


def _list(args: argparse.Namespace) -> int:
    from itersolve.bench.registry import all_suites

    for name, suite in all_suites().items():
        print(f"{name:28s} {suite.description}")
    return 0


def _report(args: argparse.Namespace) -> int:
    from itersolve.bench.report import build_report, format_claims

    html = build_report(args.dir)
    claims = json.loads((Path(args.dir) / "claims.json").read_text())
    if claims:
        print(format_claims(claims))
    print(f"report: {html}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="itersolve", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    bench = sub.add_parser("bench", help="run benchmark suites and write a report")
    bench.add_argument("suites", nargs="*", help="suite names (default: all)")
    bench.add_argument("--scale", choices=SCALES, default="quick")
    bench.add_argument("--out", default="bench-results")
    bench.add_argument(
        "-j", "--jobs", type=int, default=1, help="parallel worker processes"
    )
    bench.add_argument(
        "--threads",
        type=int,
        default=1,
        help="threads per worker for every method, anchors included (default 1)",
    )
    bench.add_argument(
        "--cases", default=None, help="only cases whose name matches this regex"
    )
    bench.add_argument(
        "--headline",
        action="store_true",
        help="only the cases each suite's headline claims need (make bench)",
    )
    bench.add_argument(
        "--strict", action="store_true", help="exit 1 when any claim FAILs"
    )
    bench.add_argument(
        "--repeats", type=int, default=None, help="override timed repeats"
    )
    bench.set_defaults(func=_bench)
    lister = sub.add_parser("list", help="list the benchmark suites")
    lister.set_defaults(func=_list)
    report = sub.add_parser("report", help="rebuild the report of a results folder")
    report.add_argument("dir")
    report.set_defaults(func=_report)
    args = parser.parse_args(argv)
    return int(args.func(args))
