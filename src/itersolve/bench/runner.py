"""Runs suites: identical problem per case, warm-up + timed repeats, resumable rows."""

from __future__ import annotations

import json
import os
import platform
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from itersolve import __version__
from itersolve.bench.registry import get_suites
from itersolve.bench.results import drop_partial_tail, load_rows, row_key
from itersolve.bench.suite import Suite


@dataclass(frozen=True)
class Unit:
    """One (suite, case): the problem is built once and shared by every method."""

    suite: str
    scale: str
    case_index: int
    case_name: str


def pin_threads(threads: int) -> None:
    """Pin torch, BLAS/OpenMP and numba to ``threads`` (recorded in every row)."""
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(threads)
    import torch

    torch.set_num_threads(threads)
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(threads)
    except ImportError:
        pass
    if "numba" in sys.modules:
        sys.modules["numba"].set_num_threads(
            min(threads, sys.modules["numba"].config.NUMBA_NUM_THREADS)
        )


def environment(threads: int) -> dict[str, Any]:
    import numpy
    import scipy
    import torch

    try:
        sha = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=False,
            cwd=Path(__file__).parent,
        ).stdout.strip()
    except OSError:
        sha = ""
    return {
        "threads": threads,
        "host": platform.node(),
        "cpu": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "torch_version": torch.__version__,
        "numpy_version": numpy.__version__,
        "scipy_version": scipy.__version__,
        "itersolve_version": __version__,
        "git_sha": sha,
    }


def _device_of(x: Any) -> str:
    device = getattr(x, "device", None)
    if device is None or str(device) == "cpu":
        return "cpu"
    import torch

    return f"{device} ({torch.cuda.get_device_name(device)})"


def _append(path: Path, row: dict[str, Any]) -> None:
    # One write per row on an O_APPEND file: rows from parallel workers never
    # interleave, and a killed run loses at most the row being written.
    with open(path, "a") as fh:
        fh.write(json.dumps(row, default=float) + "\n")


def run_unit(
    unit: Unit,
    out: str,
    repeats: int | None,
    done: frozenset[tuple[Any, ...]],
    env: dict[str, Any],
) -> int:
    """Run every method of one case; returns the number of rows written.

    The case's wall time (problem build, warm-ups, traces and repeats) is
    appended to ``out/durations.jsonl``, which the report sums per suite.
    """
    start = time.perf_counter()
    suite = get_suites([unit.suite])[0]
    case = suite.cases(unit.scale)[unit.case_index]
    n_reps = repeats or case.repeats or suite.repeats[unit.scale]
    path = Path(out) / "results.jsonl"
    problem = None
    written = 0
    for method in suite.methods:
        if not method.applies(case):
            continue
        keys = [
            (suite.name, unit.scale, case.name, method.name, rep)
            for rep in range(n_reps)
        ]
        todo = [k for k in keys if k not in done]
        if not todo:
            continue
        base = {
            "suite": suite.name,
            "scale": unit.scale,
            "objective_name": suite.objective_name,
            "dataset_name": case.name,
            "solver_name": method.name,
            "anchor": method.anchor,
            "params": case.params,
            **env,
        }
        missing = method.missing()
        if missing:
            for key in todo:
                _append(
                    path,
                    {
                        **base,
                        "idx_rep": key[-1],
                        "skipped": True,
                        "status": "SKIPPED",
                        "note": f"missing package(s): {missing}",
                    },
                )
                written += 1
            continue
        if problem is None:
            problem = case.build()
        finished = 0
        try:
            for row in _timed_runs(suite, method, problem, base, todo):
                _append(path, row)
                finished += 1
        except Exception as exc:  # one broken method must not sink the whole run
            for key in todo[finished:]:
                _append(
                    path,
                    {
                        **base,
                        "idx_rep": key[-1],
                        "time": None,
                        "objective_value": None,
                        "status": "ERROR",
                        "note": f"{type(exc).__name__}: {exc}",
                    },
                )
        written += len(todo)
    if written:
        _append(
            Path(out) / "durations.jsonl",
            {
                "suite": unit.suite,
                "scale": unit.scale,
                "case": unit.case_name,
                "seconds": time.perf_counter() - start,
            },
        )
    return written


def _timed_runs(
    suite: Suite,
    method: Any,
    problem: Any,
    base: dict[str, Any],
    todo: list[tuple[Any, ...]],
) -> Iterator[dict[str, Any]]:
    import numpy as np

    prepared = method.prepare(problem) if method.prepare else problem
    method.run(prepared)  # warm-up: caches, JIT, allocator
    curve = method.trace(prepared) if method.trace else None
    threads = int(base.get("threads") or 1)
    for key in todo:
        load_before = _loadavg()
        busy_before = machine_busy()
        _cuda_sync()
        start = time.perf_counter()
        output = method.run(prepared)
        _cuda_sync()
        elapsed = time.perf_counter() - start
        busy_after = machine_busy()
        load_after = _loadavg()
        others = other_cores(busy_before, busy_after, elapsed)
        contended, why = is_contended(threads, load_before, load_after, others)
        # A non-finite objective is kept as such (NaN/inf in the JSON): it is a
        # failed seed, never a missing one.
        value = float(suite.evaluate(problem, output.x))
        x = output.x
        yield {
            **base,
            "idx_rep": key[-1],
            "time": elapsed,
            "objective_value": value,
            "finite": bool(np.isfinite(value)),
            "loadavg_before": load_before,
            "loadavg_after": load_after,
            "other_cores": others,
            "contended": contended,
            "contention": why,
            "status": output.status,
            "num_steps": output.num_steps,
            **output.counters,
            **{
                k: v
                for k, v in output.extras.items()
                if isinstance(v, (int, float, str))
            },
            "device": _device_of(x),
            "dtype": str(getattr(x, "dtype", "")).removeprefix("torch."),
            "curve": curve if key[-1] == 0 else None,
        }


def _record_left_out(
    out: Path,
    suites: Iterable[Suite],
    scale: str,
    units: list[Unit],
    cases: str | None,
    headline: bool,
) -> None:
    """Write ``out/left_out.json``: the cases of the chosen suites this run
    leaves out and why, so the report can say why a claim was NOT RUN."""
    kept = {(u.suite, u.case_name) for u in units}
    why = (
        "not a headline case (make bench-full runs it)"
        if headline
        else f"case filter --cases {cases!r}"
    )
    left = {
        s.name: {c.name: why for c in s.cases(scale) if (s.name, c.name) not in kept}
        for s in suites
    }
    (out / "left_out.json").write_text(json.dumps(left, indent=1))


# -- contention ------------------------------------------------------------------

CONTENTION_MARGIN = 0.5
"""A row is contended when the machine's load exceeds the thread budget by this."""

_SHORT_ROW = 0.25
"""Below this many seconds /proc/stat's 10 ms ticks are too coarse to count the
CPU time of other processes; only the load average judges such a row."""


def _loadavg() -> float | None:
    try:
        return os.getloadavg()[0]
    except OSError:
        return None


def machine_busy() -> tuple[float, float] | None:
    """(busy CPU seconds of the whole machine, CPU seconds of this process).

    From ``/proc/stat`` (Linux); ``None`` where it is not available.
    """
    try:
        with open("/proc/stat") as fh:
            fields = fh.readline().split()[1:]
    except OSError:
        return None
    ticks = [int(v) for v in fields]
    # user nice system idle iowait irq softirq steal ...: busy = all - idle - iowait
    busy = sum(ticks) - ticks[3] - (ticks[4] if len(ticks) > 4 else 0)
    return busy / os.sysconf("SC_CLK_TCK"), time.process_time()


def other_cores(
    before: tuple[float, float] | None, after: tuple[float, float] | None, wall: float
) -> float | None:
    """Cores kept busy by other processes during a row (``None``: not measurable)."""
    if before is None or after is None or wall < _SHORT_ROW:
        return None
    machine = after[0] - before[0]
    own = after[1] - before[1]
    return max(0.0, (machine - own) / wall)


def is_contended(
    threads: int,
    load_before: float | None,
    load_after: float | None,
    others: float | None,
) -> tuple[bool, str]:
    """Whether a timed row shared the machine, and why (empty when it did not).

    Busy means a 1-minute load average above ``threads + 0.5`` around the row, or
    other processes using more than half a core while it ran.
    """
    limit = threads + CONTENTION_MARGIN
    loads = [v for v in (load_before, load_after) if v is not None]
    if loads and max(loads) > limit:
        return True, f"load average {max(loads):.2f} > {limit:g}"
    if others is not None and others > CONTENTION_MARGIN:
        return True, f"other processes used {others:.2f} cores"
    return False, ""


def _cuda_sync() -> None:
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()


def _init_worker(threads: int) -> None:
    pin_threads(threads)


def make_executor(jobs: int, threads: int) -> Executor:
    """The executor seam: a local process pool; swap for dask.distributed's Client."""
    return ProcessPoolExecutor(
        max_workers=jobs,
        mp_context=get_context("spawn"),
        initializer=_init_worker,
        initargs=(threads,),
    )


def plan(
    suites: Iterable[Suite],
    scale: str,
    cases: str | None = None,
    headline: bool = False,
) -> list[Unit]:
    """Every (suite, case) to run.

    ``cases`` is a regular expression searched in the case names (e.g. ``"cuda"``
    for the GPU cases only); ``headline`` keeps, at quick scale, only the cases
    each suite's headline claims need (:attr:`Suite.headline`).
    """
    pattern = re.compile(cases) if cases else None
    units = []
    for s in suites:
        # The headline subset is a quick-scale notion (make bench).
        pick = s.headline if headline and scale == "quick" else None
        keep = re.compile(pick) if pick else None
        for i, case in enumerate(s.cases(scale)):
            if pattern is not None and not pattern.search(case.name):
                continue
            if keep is not None and not keep.search(case.name):
                continue
            units.append(Unit(s.name, scale, i, case.name))
    return units


def run_benchmarks(
    suite_names: list[str] | None,
    *,
    scale: str,
    out: str | Path,
    jobs: int = 1,
    threads: int | None = None,
    repeats: int | None = None,
    progress: Callable[[Iterable[Any], int], Iterable[Any]] | None = None,
    executor: Executor | None = None,
    cases: str | None = None,
    headline: bool = False,
) -> Path:
    """Run suites and append rows to ``out/results.jsonl`` (resuming a killed run)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    threads = threads or 1
    pin_threads(threads)
    suites = get_suites(suite_names)
    drop_partial_tail(out / "results.jsonl")
    done = frozenset(row_key(r) for r in load_rows(out / "results.jsonl"))
    units = plan(suites, scale, cases, headline)
    _record_left_out(out, suites, scale, units, cases, headline)
    env = environment(threads)
    wrap = progress or (lambda it, total: it)
    if jobs <= 1 and executor is None:
        for unit in wrap(units, len(units)):
            run_unit(unit, str(out), repeats, done, env)
        return out
    pool = executor or make_executor(jobs, threads)
    try:
        futures = [
            pool.submit(run_unit, u, str(out), repeats, done, env) for u in units
        ]
        for future in wrap(as_completed(futures), len(futures)):
            future.result()
    finally:
        if executor is None:
            pool.shutdown(cancel_futures=True)
    return out
