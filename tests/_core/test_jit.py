"""The deferred numba decorator: compiles on first call, resolves callees,
falls back to Python without numba."""

from __future__ import annotations

import subprocess
import sys
import types

import numpy as np
import pytest

from itersolve._core import jit


def _module(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    """A module with two lazy kernels, one calling the other by global name."""
    module = types.ModuleType("lazy_probe")
    monkeypatch.setitem(sys.modules, "lazy_probe", module)
    exec(
        "def square(v):\n"
        "    return v * v\n"
        "def total(x):\n"
        "    s = 0.0\n"
        "    for v in x:\n"
        "        s += square(v)\n"
        "    return s\n",
        module.__dict__,
    )
    for name in ("square", "total"):
        setattr(module, name, jit.lazy_njit(nogil=True)(getattr(module, name)))
    return module


def test_first_call_compiles_the_kernel_and_its_callees(monkeypatch):
    numba = pytest.importorskip("numba")
    module = _module(monkeypatch)
    lazy = module.total
    assert isinstance(lazy, jit.LazyKernel)
    assert "not yet compiled" in repr(lazy)
    assert lazy(np.arange(4.0)) == 14.0
    # Both names now hold dispatchers, so numba could type the nested call.
    assert isinstance(module.total, numba.core.registry.CPUDispatcher)
    assert isinstance(module.square, numba.core.registry.CPUDispatcher)
    assert "(compiled)" in repr(lazy)
    assert lazy(np.ones(3)) == 3.0  # a bound reference forwards to the dispatcher
    assert jit.compiled(lazy) is module.total
    assert jit.compiled(module.total) is module.total


def test_without_numba_the_kernel_runs_as_python(monkeypatch):
    monkeypatch.setattr(jit, "HAVE_NUMBA", False)
    module = _module(monkeypatch)
    assert module.total(np.arange(4.0)) == 14.0
    assert isinstance(module.total, types.FunctionType)
    assert module.square is module.total.__globals__["square"]
    assert isinstance(module.square, types.FunctionType)


def test_options_reach_numba():
    pytest.importorskip("numba")
    kernel = jit.lazy_njit(fastmath=True, nogil=True)(lambda a, b: a + b)
    assert kernel.options == {"fastmath": True, "nogil": True}
    assert kernel(1.0, 2.0) == 3.0
    assert kernel.compiled().targetoptions["fastmath"]


_HIDDEN_NUMBA = """
import sys
sys.modules["numba"] = None  # find_spec answers None: numba looks uninstalled
import numpy as np, scipy.sparse as sp, itersolve
from itersolve import linear
from itersolve.optimize.bcd._forest import forest_partition
from itersolve.problems import poisson
A, b = poisson(8, dim=2), np.ones(64)
methods = linear.CG(), linear.MINRES(), linear.GMRES(), linear.SOR(omega=1.5)
ok = [itersolve.linear_solve(A, b, m).success for m in methods]
ring = sp.csr_array(np.roll(np.eye(5), 1, axis=1) + np.roll(np.eye(5), -1, 1))
print(ok, [f.tolist() for f in forest_partition(ring)])
"""


def test_solvers_fall_back_when_numba_is_missing():
    out = subprocess.run(
        [sys.executable, "-c", _HIDDEN_NUMBA],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[True, True, True, True] [[0, 1, 2, 3], [4]]"
