"""Suite registry: every module in ``itersolve.bench.suites`` exposing ``SUITES``."""

from __future__ import annotations

import importlib
import pkgutil

import itersolve.bench.suites as package
from itersolve.bench.suite import Suite


def all_suites() -> dict[str, Suite]:
    found: dict[str, Suite] = {}
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        for suite in getattr(module, "SUITES", ()):
            if suite.name in found:
                raise RuntimeError(f"two suites are named {suite.name!r}")
            found[suite.name] = suite
    return found


def get_suites(names: list[str] | None = None) -> list[Suite]:
    suites = all_suites()
    if not names:
        return list(suites.values())
    unknown = [n for n in names if n not in suites]
    if unknown:
        raise ValueError(f"unknown suite(s) {unknown}; available: {sorted(suites)}")
    return [suites[n] for n in names]
