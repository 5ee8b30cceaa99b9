"""Build-time generation of the API lists and the benchmark-claim tables.

``write_generated(docs)`` writes ``docs/api/<section>.rst`` (a page with an
``autosummary`` of the public classes and functions of one ``__all__``, each object
documented once, in the most specific section that exports it) and
``docs/_generated/suites_<family>.inc`` (each benchmark suite of the family: what
it runs and its claims with thresholds). The family pages link and include them, so
renaming or dropping a public name changes the site.
"""

from __future__ import annotations

import importlib
import inspect
import re
from pathlib import Path
from typing import Any

# (page, module, title); the family pages link to api/<page>.
SECTIONS = [
    ("linear", "itersolve.linear", "Linear systems"),
    ("linear.tuning", "itersolve.linear.tuning", "Relaxation-factor tuners"),
    ("optimize", "itersolve.optimize", "Minimization"),
    ("optimize.convex_relu", "itersolve.optimize.convex_relu", "Convex ReLU networks"),
    ("optim", "itersolve.optim", "Training optimizers"),
    ("optim.schedules", "itersolve.optim.schedules", "Learning-rate schedules"),
    ("ot", "itersolve.ot", "Optimal transport"),
    ("pde", "itersolve.pde", "PDE solvers"),
    ("pde.transport", "itersolve.pde.transport", "Slab S_N transport"),
    ("pde.pinn", "itersolve.pde.pinn", "Physics-informed networks"),
    ("control", "itersolve.control", "Optimal control"),
    ("rl", "itersolve.rl", "Policy search"),
    ("bilevel", "itersolve.bilevel", "Bilevel optimisation"),
    ("imaging", "itersolve.imaging", "Tomographic reconstruction"),
    ("nn.icl", "itersolve.nn.icl", "In-context learning probe"),
    ("problems", "itersolve.problems", "Test problems"),
    ("core", "itersolve", "Core types"),
]

# Suites are grouped by the prefix of their name ("linear-poisson" -> linear).
FAMILIES = [
    "linear",
    "optimize",
    "optim",
    "ot",
    "pde",
    "control",
    "fixed_point",
    "rl",
    "bilevel",
    "imaging",
    "nn",
    "core",
]
# Suite-name prefixes that differ from the family's module name.
PREFIXES = {"fixed": "fixed_point"}


def public_objects(module_name: str) -> list[tuple[str, Any]]:
    """The classes and functions named in ``module_name.__all__``."""
    module = importlib.import_module(module_name)
    found = []
    for name in getattr(module, "__all__", []):
        obj = getattr(module, name)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            found.append((name, obj))
    return found


def _home(obj: Any, candidates: list[str]) -> str:
    """The exporting module whose name shares the longest prefix with the
    object's defining module (``pde.transport`` for ``pde.transport._slab``)."""
    defined = getattr(obj, "__module__", "") or ""

    def shared(name: str) -> tuple[int, int]:
        prefix = 0
        for a, b in zip(name.split("."), defined.split("."), strict=False):
            if a != b:
                break
            prefix += 1
        return prefix, len(name)

    return max(candidates, key=shared)


def assign_sections() -> dict[str, list[str]]:
    """Section key -> sorted public names documented there (each object once)."""
    exporters: dict[int, list[str]] = {}
    names: dict[tuple[int, str], str] = {}
    objects: dict[int, Any] = {}
    for _, module_name, _ in SECTIONS:
        for name, obj in public_objects(module_name):
            exporters.setdefault(id(obj), []).append(module_name)
            names[(id(obj), module_name)] = name
            objects[id(obj)] = obj
    by_module: dict[str, list[str]] = {m: [] for _, m, _ in SECTIONS}
    for key, modules in exporters.items():
        home = _home(objects[key], modules)
        by_module[home].append(names[(key, home)])
    return {k: sorted(by_module[m], key=str.lower) for k, m, _ in SECTIONS}


def _api_page(module_name: str, title: str, names: list[str]) -> str:
    heading = f"{title}: ``{module_name}``"
    lines = [
        heading,
        "=" * len(heading),
        "",
        f".. automodule:: {module_name}",
        "   :no-members:",
        "   :no-index:",
        "",
        f".. currentmodule:: {module_name}",
        "",
        ".. autosummary::",
        "   :toctree: generated",
        "   :nosignatures:",
        "",
    ]
    lines += [f"   {name}" for name in names]
    return "\n".join(lines) + "\n"


_RST_SPECIAL = re.compile(r"([\\*`|_])")


def rst_escape(text: str) -> str:
    """Plain text that renders verbatim in reStructuredText."""
    return _RST_SPECIAL.sub(r"\\\1", " ".join(text.split()))


def _suites_block(family: str, suites: list[Any]) -> str:
    if not suites:
        return "No benchmark suite yet.\n"
    out: list[str] = []
    for suite in suites:
        title = f"``{suite.name}``"
        out += [title, "~" * len(title), "", rst_escape(suite.description), ""]
        out += [
            f"Run it with ``itersolve bench {suite.name} --scale quick``.",
            "",
        ]
        if suite.claims:
            out += [
                ".. list-table::",
                "   :header-rows: 1",
                "   :widths: 80 20",
                "",
                "   * - Claim",
                "     - Passes when",
            ]
            for claim in suite.claims:
                out += [
                    f"   * - {rst_escape(claim.name)}",
                    f"     - {rst_escape(claim.threshold)}",
                ]
            out.append("")
        else:
            out += ["This suite reports measurements only; it has no claims.", ""]
    return "\n".join(out) + "\n"


def _write_if_changed(path: Path, text: str) -> None:
    # An unchanged file keeps its time stamp, so incremental builds stay incremental.
    if not path.exists() or path.read_text() != text:
        path.write_text(text)


def write_generated(docs: Path) -> None:
    api, folder = docs / "api", docs / "_generated"
    api.mkdir(parents=True, exist_ok=True)
    folder.mkdir(parents=True, exist_ok=True)
    assigned = assign_sections()
    for key, module_name, title in SECTIONS:
        page = _api_page(module_name, title, assigned[key])
        _write_if_changed(api / f"{key}.rst", page)

    from itersolve.bench.registry import all_suites

    grouped: dict[str, list[Any]] = {f: [] for f in FAMILIES}
    for name, suite in sorted(all_suites().items()):
        prefix = name.split("-", 1)[0]
        grouped.setdefault(PREFIXES.get(prefix, prefix), []).append(suite)
    unknown = set(grouped) - set(FAMILIES)
    if unknown:
        raise RuntimeError(f"suites of no documented family: {sorted(unknown)}")
    for family, suites in grouped.items():
        text = _suites_block(family, suites)
        _write_if_changed(folder / f"suites_{family}.inc", text)
