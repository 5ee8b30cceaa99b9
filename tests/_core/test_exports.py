"""The top-level export policy and lazy loading (issue 21, item 6).

Front doors and core types at the top level, methods in their family; every
name loads on first use, so ``import itersolve`` imports neither numba nor
torch; the linear methods that used to be top-level names still work for one
release, with a DeprecationWarning naming their new home.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

import itersolve
import itersolve.linear


def _fresh(code: str) -> str:
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    return out.stdout.strip()


def test_import_loads_neither_numba_nor_torch():
    loaded = _fresh(
        "import sys, itersolve; "
        "print(sorted(m for m in ('numba', 'torch', 'scipy') if m in sys.modules))"
    )
    assert loaded == "[]"


def test_all_lists_the_lazy_names_and_each_resolves():
    assert itersolve.__all__ == sorted([*itersolve._EXPORTS, *itersolve._FAMILIES])
    listed = dir(itersolve)
    for name in itersolve.__all__:
        assert name in listed
        assert getattr(itersolve, name) is not None
    assert itersolve.linear_solve is itersolve.linear.linear_solve
    assert itersolve.minimize is itersolve.optimize.minimize


@pytest.mark.parametrize("name", itersolve._MOVED_TO_LINEAR)
def test_moved_linear_names_warn_and_still_work(name):
    with pytest.warns(DeprecationWarning, match=rf"use itersolve\.linear\.{name}$"):
        value = getattr(itersolve, name)
    assert value is getattr(itersolve.linear, name)
    assert name not in itersolve.__all__


def test_from_import_of_a_moved_name_warns():
    with pytest.warns(DeprecationWarning, match="itersolve.linear.CG"):
        from itersolve import CG  # noqa: F401


def test_unknown_name_raises_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'NoSuchThing'"):
        itersolve.NoSuchThing  # noqa: B018


def test_numba_loads_on_the_first_compiled_call_not_on_import():
    code = (
        "import sys\n"
        "import itersolve.linear, itersolve.optimize\n"
        "itersolve.linear.CG()\n"
        "before = 'numba' in sys.modules\n"
        "import numpy as np\n"
        "from itersolve.linear import _cg_kernels\n"
        "from itersolve.problems import poisson\n"
        "sol = itersolve.linear_solve(poisson(8, dim=2), np.ones(64),\n"
        "                             itersolve.linear.CG(backend='numba'))\n"
        "print(before, 'numba' in sys.modules, sol.success,\n"
        "      type(_cg_kernels.cg_step).__name__)\n"
    )
    pytest.importorskip("numba")
    assert _fresh(code) == "False True True CPUDispatcher"
