"""itersolve command line: run the benchmark suites, list them, rebuild a report."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import textwrap
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from itersolve import __version__
from itersolve.bench.suite import SCALES


def _progress(items: Iterable[Any], total: int) -> Iterable[Any]:
    if not sys.stderr.isatty():
        return items
    try:
        from tqdm import tqdm
    except ImportError:
        return items
    return tqdm(items, total=total, unit="case", file=sys.stderr)


def _error(message: str, code: int = 2) -> int:
    print(f"itersolve: error: {message}", file=sys.stderr)
    return code


def _bench(args: argparse.Namespace) -> int:
    from itersolve.bench.registry import get_suites
    from itersolve.bench.report import build_report, format_claims, verdict_of
    from itersolve.bench.runner import run_benchmarks

    try:
        suites = get_suites(args.suites)
    except ValueError as exc:
        return _error(f"{exc} (see `itersolve list`)")
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

    width = shutil.get_terminal_size((100, 24)).columns
    for name, suite in all_suites().items():
        if args.verbose:
            print(name)
            print(textwrap.indent(textwrap.fill(suite.description, width - 4), "    "))
            continue
        room = max(width - 25, 20)
        text = textwrap.shorten(suite.description, width=room, placeholder=" ...")
        print(f"{name:24s} {text}")
    return 0


def _report(args: argparse.Namespace) -> int:
    from itersolve.bench.report import build_report, format_claims

    folder = Path(args.dir)
    if not folder.is_dir():
        return _error(f"no such folder: {folder}")
    if not (folder / "results.jsonl").exists():
        return _error(
            f"{folder} holds no results.jsonl: run `itersolve bench --out {folder}` "
            "first",
            code=1,
        )
    html = build_report(args.dir)
    claims = json.loads((Path(args.dir) / "claims.json").read_text())
    if claims:
        print(format_claims(claims))
    print(f"report: {html}")
    return 0


SCALE_HELP = (
    "problem sizes: smoke = seconds, to check that a suite runs; quick = the "
    "CPU-sized reproduction the claims are judged on (default); full = the "
    "papers' sizes, as far as the machine allows"
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="itersolve",
        description=__doc__,
    )
    parser.add_argument("--version", action="version", version=__version__)
    sub = parser.add_subparsers(dest="command", required=True)
    bench = sub.add_parser(
        "bench",
        help="run benchmark suites and write a report",
        description=(
            "Run each suite's methods (ours and the anchors) on identical problems, "
            "check the claims and write results.jsonl, report.md and report.html "
            "into the output folder. A rerun with the same arguments resumes."
        ),
    )
    bench.add_argument(
        "suites", nargs="*", help="suite names, see `itersolve list` (default: all)"
    )
    bench.add_argument("--scale", choices=SCALES, default="quick", help=SCALE_HELP)
    bench.add_argument(
        "--out", default="bench-results", help="output folder (default: bench-results)"
    )
    bench.add_argument(
        "-j",
        "--jobs",
        type=int,
        default=1,
        help="parallel worker processes (default: 1)",
    )
    bench.add_argument(
        "--threads",
        type=int,
        default=1,
        help="threads per worker for every method, anchors included (default: 1)",
    )
    bench.add_argument(
        "--cases",
        default=None,
        help="only cases whose name matches this regular expression",
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
        "--repeats",
        type=int,
        default=None,
        help="timed repeats per method (default: the suite's own, >= 5 at quick)",
    )
    bench.set_defaults(func=_bench)
    lister = sub.add_parser("list", help="list the benchmark suites")
    lister.add_argument(
        "-v", "--verbose", action="store_true", help="full descriptions"
    )
    lister.set_defaults(func=_list)
    report = sub.add_parser("report", help="rebuild the report of a results folder")
    report.add_argument("dir", help="a folder written by `itersolve bench`")
    report.set_defaults(func=_report)
    args = parser.parse_args(argv)
    return int(args.func(args))
