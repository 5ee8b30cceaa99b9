"""float32 twins of the linear reference tests, with default tolerances (issue 21).

A default ``rtol`` below what float32 resolves (1e-8 for relaxation, 1e-6 for
the row-action methods) used to end in STAGNATION or MAX_STEPS on good answers;
defaults are now lifted to ``100 eps(dtype)``, while an ``rtol`` the user gives is
kept as given.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from itersolve import Status, linear_solve
from itersolve._core.frontdoor import (
    DTYPE_RTOL_ULPS,
    DefaultTolerance,
    default_rtol,
    resolve_rtol,
)
from itersolve.linear import (
    CG,
    GMRES,
    MINRES,
    SOR,
    SSOR,
    SSORPCG,
    FlexibleCG,
    GaussSeidel,
    Jacobi,
    RandomizedKaczmarz,
    SketchAndProject,
    newton_schulz_inverse,
)
from itersolve.problems import poisson

FLOAT32_FLOOR = DTYPE_RTOL_ULPS * float(np.finfo(np.float32).eps)


def spd(n: int, seed: int = 0, cond: float = 100.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    Q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    return (Q * np.geomspace(1.0, cond, n)) @ Q.T


SQUARE = {
    "poisson1d": lambda: poisson(30, dim=1),
    "poisson2d": lambda: poisson(12, dim=2),
    "random_spd": lambda: spd(40),
}
SQUARE_METHODS = {
    "CG": CG,
    "MINRES": MINRES,
    "GMRES": GMRES,
    "FlexibleCG": FlexibleCG,
    "Jacobi": Jacobi,
    "GaussSeidel": GaussSeidel,
    "SOR": lambda: SOR(omega=1.5),
    "SSOR": SSOR,
    "SSORPCG": SSORPCG,
}
# Jacobi needs a diagonally dominant matrix; the random SPD one is not (it
# diverges in float64 as well: not a float32 matter).
SKIP = {("Jacobi", "random_spd")}


def _check(A, b, x, dtype):
    dense = A.toarray() if sp.issparse(A) else np.asarray(A)
    exact = np.linalg.solve(dense.astype(np.float64), b.astype(np.float64))
    assert x.dtype == dtype
    np.testing.assert_allclose(x, exact, atol=2e-3 * np.abs(exact).max())


@pytest.mark.parametrize(
    ("name", "case"),
    [(n, c) for n in SQUARE_METHODS for c in SQUARE if (n, c) not in SKIP],
)
def test_float32_defaults_succeed_on_square_systems(name, case):
    A = SQUARE[case]().astype(np.float32)
    b = np.random.default_rng(1).standard_normal(A.shape[0]).astype(np.float32)
    sol = linear_solve(A, b, SQUARE_METHODS[name]())
    assert sol.status is Status.SUCCESS, sol.message
    _check(A, b, sol.x, np.float32)


@pytest.mark.parametrize(
    "method", [RandomizedKaczmarz(), SketchAndProject(sketch_size=10)]
)
def test_float32_defaults_succeed_on_consistent_rectangular_systems(method):
    rng = np.random.default_rng(0)
    A = rng.standard_normal((80, 20)).astype(np.float32)
    x_true = rng.standard_normal(20)
    b = (A.astype(np.float64) @ x_true).astype(np.float32)
    sol = linear_solve(A, b, method)
    assert sol.status is Status.SUCCESS, sol.message
    assert sol.x.dtype == np.float32
    np.testing.assert_allclose(sol.x, x_true, atol=1e-3 * np.abs(x_true).max())


def test_float32_newton_schulz_inverse_default_succeeds():
    S = torch.as_tensor(spd(20), dtype=torch.float32)
    sol = newton_schulz_inverse(S)
    assert sol.status is Status.SUCCESS, sol.message
    inverse = torch.linalg.inv(S.double())
    assert torch.allclose(sol.x.double(), inverse, atol=1e-3 * inverse.abs().max())


def test_defaults_are_lifted_per_dtype_and_given_values_are_kept():
    for make, default in ((CG, 1e-5), (RandomizedKaczmarz, 1e-6), (SOR, 1e-8)):
        method = make()
        assert method.rtol == default and isinstance(method.rtol, DefaultTolerance)
        assert repr(method.rtol) == repr(default)
        assert resolve_rtol(method.rtol, torch.float64) == default
        assert resolve_rtol(method.rtol, torch.float32) == max(default, FLOAT32_FLOOR)
        # None asks for the same dtype-aware default.
        assert isinstance(make(rtol=None).rtol, DefaultTolerance)
        # The same number given explicitly is the user's: never lifted.
        given = make(rtol=default)
        assert resolve_rtol(given.rtol, torch.float32) == default
    assert default_rtol(torch.float32, 1e-3) == 1e-3
    assert default_rtol(torch.float64, 1e-8) == 1e-8


def test_explicit_tolerance_below_float32_resolution_is_not_loosened():
    A = poisson(30, dim=1).astype(np.float32)
    b = np.random.default_rng(1).standard_normal(30).astype(np.float32)
    with pytest.warns(Warning):
        sol = linear_solve(A, b, SOR(omega=1.5, rtol=1e-9))
    assert sol.status is Status.STAGNATION
    assert "float32" in sol.message
    # The default reaches SUCCESS on the same system.
    assert linear_solve(A, b, SOR(omega=1.5)).success


def test_float64_defaults_unchanged():
    A = poisson(12, dim=2)
    b = np.random.default_rng(1).standard_normal(A.shape[0])
    sol = linear_solve(A, b, SOR(omega=1.5))
    assert sol.success
    assert np.linalg.norm(b - A @ sol.x) <= 1e-8 * np.linalg.norm(b)
