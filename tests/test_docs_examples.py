"""Every public object has a runnable example in its docstring.

Public objects are the classes and functions named in ``itersolve.__all__`` and,
recursively, in the ``__all__`` of every subpackage listed there. The examples
themselves run as doctests: ``make test`` collects ``src/itersolve`` with
``--doctest-modules`` (pyproject's pytest options).
"""

from __future__ import annotations

import importlib
import inspect
import re
import types
from typing import Any

import pytest

import itersolve

_EXAMPLES = re.compile(r"^Examples\n-{8,}\n", re.MULTILINE)
_NEXT_SECTION = re.compile(r"^\S[^\n]*\n-{3,}\n", re.MULTILINE)


def public_objects() -> dict[str, Any]:
    """Qualified public name -> object, each object once (first name found)."""
    found: dict[str, Any] = {}
    seen: set[int] = set()
    modules = [itersolve]
    visited: set[str] = set()
    while modules:
        module = modules.pop(0)
        if module.__name__ in visited:
            continue
        visited.add(module.__name__)
        for name in module.__all__:
            obj = getattr(module, name)
            if isinstance(obj, types.ModuleType):
                modules.append(importlib.import_module(obj.__name__))
            elif (inspect.isclass(obj) or inspect.isfunction(obj)) and id(
                obj
            ) not in seen:
                seen.add(id(obj))
                found[f"{module.__name__}.{name}"] = obj
    return found


def examples_section(doc: str) -> str | None:
    """The text of the numpydoc ``Examples`` section, ``None`` when absent."""
    match = _EXAMPLES.search(doc)
    if match is None:
        return None
    rest = doc[match.end() :]
    following = _NEXT_SECTION.search(rest)
    return rest[: following.start()] if following else rest


PUBLIC = public_objects()


def test_the_walk_finds_every_family() -> None:
    families = {name.split(".")[1] for name in PUBLIC if name.count(".") >= 2}
    assert {"linear", "optimize", "optim", "ot", "pde", "control"} <= families
    assert len(PUBLIC) > 150


@pytest.mark.parametrize("name", sorted(PUBLIC))
def test_public_object_has_a_runnable_example(name: str) -> None:
    obj = PUBLIC[name]
    # Only objects defined in the package are collected by --doctest-modules.
    assert obj.__module__.startswith("itersolve"), obj.__module__
    doc = inspect.cleandoc(obj.__doc__ or "")
    section = examples_section(doc)
    assert section is not None, f"{name}: the docstring has no Examples section"
    assert any(line.lstrip().startswith(">>> ") for line in section.splitlines()), (
        f"{name}: the Examples section has no doctest line (>>>)"
    )


def test_examples_section_parser() -> None:
    doc = "Summary.\n\nExamples\n--------\n>>> 1 + 1\n2\n\nNotes\n-----\nText.\n"
    assert examples_section(doc) == ">>> 1 + 1\n2\n\n"
    assert examples_section("Summary.\n\n>>> 1 + 1\n2\n") is None
