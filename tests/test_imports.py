"""No import circles: every itersolve module imports first, on its own.

The dynamic check imports each module as the first itersolve module of a fresh
interpreter state (one subprocess clears the ``itersolve`` entries of
``sys.modules`` before each module, so the heavy third-party imports are paid
once), which fails on any circle whatever the order a user's imports take. The
static check forbids the usual way of hiding a circle: an ``import itersolve...``
inside a function body, which only works because the module is loaded later.
Function-level imports of heavy optional third-party packages are fine.
"""

from __future__ import annotations

import ast
import json
import pkgutil
import subprocess
import sys
import textwrap
from pathlib import Path

import itersolve

PACKAGE = Path(itersolve.__file__).parent

# ``python -m itersolve`` runs the CLI on import; it is not a library module.
NOT_IMPORTABLE = {"itersolve.__main__"}

# (module, imported itersolve module) -> why a function-level import is right
# there. Dodging an import circle is never a reason.
ALLOWED_LOCAL_IMPORTS: dict[tuple[str, str], str] = {
    # (The numba kernel modules import at module level: numba itself loads when
    # a kernel is first called, see itersolve._core.jit.)
    # The CLI answers --help, --version and argument errors without importing
    # torch: each subcommand imports the machinery it runs.
    ("itersolve.bench.cli", "itersolve.bench.registry"): "CLI startup",
    ("itersolve.bench.cli", "itersolve.bench.report"): "CLI startup",
    ("itersolve.bench.cli", "itersolve.bench.runner"): "CLI startup",
}


def _modules(path: Path = PACKAGE, prefix: str = "itersolve.") -> list[str]:
    """Every module under ``path``, found without importing any of them."""
    names = []
    for info in pkgutil.iter_modules([str(path)], prefix):
        names.append(info.name)
        if info.ispkg:
            sub = path / info.name.rsplit(".", 1)[-1]
            names.extend(_modules(sub, info.name + "."))
    return names


_FIRST_IMPORT = textwrap.dedent(
    """
    import importlib, json, sys, tempfile, traceback
    import numpy, scipy, torch  # third-party state is shared; itersolve is not

    # Bytecode in a private cache even where PYTHONDONTWRITEBYTECODE is set:
    # each module is compiled once, not once per fresh import of the package.
    sys.dont_write_bytecode = False
    sys.pycache_prefix = tempfile.mkdtemp()

    failures = {}
    for name in json.loads(sys.argv[1]):
        for loaded in [m for m in sys.modules if m.split(".")[0] == "itersolve"]:
            del sys.modules[loaded]
        try:
            importlib.import_module(name)
        except Exception:
            failures[name] = traceback.format_exc(limit=-3)
    print(json.dumps(failures))
    """
)


def test_every_module_imports_first():
    names = ["itersolve"] + [m for m in _modules() if m not in NOT_IMPORTABLE]
    assert len(names) > 50  # the walk found the package
    done = subprocess.run(
        [sys.executable, "-c", _FIRST_IMPORT, json.dumps(names)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    failures = json.loads(done.stdout.strip().splitlines()[-1])
    report = "\n".join(f"{name}:\n{tb}" for name, tb in failures.items())
    assert not failures, f"modules that fail when imported first:\n{report}"


def _module_name(path: Path, root: Path = PACKAGE) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _submodule(root: Path, package: str, name: str) -> str | None:
    """``package.name`` when that is a module of the tree at ``root``."""
    path = root.parent.joinpath(*package.split("."), name)
    if path.with_suffix(".py").is_file() or (path / "__init__.py").is_file():
        return f"{package}.{name}"
    return None


def _local_itersolve_imports(path: Path, root: Path = PACKAGE) -> list[tuple[int, str]]:
    """``(line, imported module)`` of itersolve imports inside function bodies
    of the file ``path`` of the package at ``root``."""
    module = _module_name(path, root)
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found = []
    for func in ast.walk(ast.parse(path.read_text(), str(path))):
        if not isinstance(func, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        for node in ast.walk(func):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative: resolve against the package
                    above = package.rsplit(".", node.level - 1)[0]
                    base = f"{above}.{base}" if base else above
                # ``from package import submodule`` imports the submodule.
                targets = [
                    _submodule(root, base, alias.name) or base for alias in node.names
                ]
            else:
                continue
            found.extend(
                (node.lineno, t) for t in targets if t.split(".")[0] == "itersolve"
            )
    return sorted(set(found))  # a nested function is walked with its parent


def test_no_function_level_imports_of_itersolve():
    offenders = []
    used = set()
    for path in sorted(PACKAGE.rglob("*.py")):
        module = _module_name(path)
        for line, target in _local_itersolve_imports(path):
            if (module, target) in ALLOWED_LOCAL_IMPORTS:
                used.add((module, target))
                continue
            offenders.append(f"{path.relative_to(PACKAGE.parent)}:{line}: {target}")
    assert not offenders, (
        "function-level imports of itersolve modules (a hidden import circle; "
        "move the shared code so that a module-level import works):\n"
        + "\n".join(offenders)
    )
    assert used == set(ALLOWED_LOCAL_IMPORTS), "stale allow-list entries"


def test_the_static_check_sees_local_imports(tmp_path):
    root = tmp_path / "itersolve"
    probe = root / "pkg" / "mod.py"
    probe.parent.mkdir(parents=True)
    (root / "pkg" / "_other.py").write_text("")
    probe.write_text(
        "import itersolve.linear\n"  # module level: fine
        "def f():\n"
        "    from itersolve.linear import CG\n"
        "    import numba\n"  # a heavy optional dependency: fine
        "class C:\n"
        "    def g(self):\n"
        "        from . import _other\n"
        "        from ..ot import transport\n"
    )
    assert _local_itersolve_imports(probe, root) == [
        (3, "itersolve.linear"),
        (7, "itersolve.pkg._other"),
        (8, "itersolve.ot"),
    ]
