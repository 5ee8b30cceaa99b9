"""The BCD fast paths are chosen by the structure a problem declares (its
attributes), not by its class: a user's own classes get them."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import warnings
from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from itersolve import ConvergenceWarning, Objective
from itersolve.optimize import OptimizationProblem, minimize
from itersolve.optimize.bcd import (
    BlockCoordinateDescent,
    L1LeastSquaresStructure,
    L1Penalty,
    LeastSquaresStructure,
    QuadraticStructure,
)
from itersolve.optimize.bcd._state import BCDState, GreedyState
from itersolve.problems import LeastSquares, LogSumExp
from itersolve.problems.coordinate import (
    LabelPropagation,
    Lasso,
    lattice_label_propagation,
    sparse_regression_data,
)

needs_numba = pytest.mark.skipif(
    importlib.util.find_spec("numba") is None, reason="numba not installed"
)


class UserLasso:
    """``1/(2m) ||A w - b||^2 + alpha ||w||_1`` written by a user: the protocol's
    four attributes and a value; nothing from ``itersolve.problems``."""

    def __init__(self, A: Any, b: np.ndarray, alpha: float) -> None:
        self.A, self.b = A, b
        self.scale = 1.0 / A.shape[0]
        self.penalty = L1Penalty(alpha)
        self._dense = torch.as_tensor(A.toarray())

    def __call__(self, w: torch.Tensor) -> torch.Tensor:
        r = self._dense @ w - torch.as_tensor(self.b)
        return 0.5 * self.scale * (r @ r) + self.penalty.value(w)


class UserQuadratic:
    """``1/2 x^T Q x - c^T x`` declared by ``Q`` and ``c``."""

    def __init__(self, Q: Any, c: np.ndarray) -> None:
        self.Q, self.c = Q, c
        self._Q = torch.as_tensor(Q.toarray())

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return 0.5 * x @ (self._Q @ x) - torch.as_tensor(self.c) @ x


def _data(m: int = 60, n: int = 150) -> tuple[sp.csc_array, np.ndarray, float]:
    A, b, _ = sparse_regression_data(m, n, seed=8)
    return sp.csc_array(A), b, 0.1 * float(np.abs(A.T @ b).max()) / m


def _solve(problem: Any, n: int, **config: Any) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        method = BlockCoordinateDescent(**config)
        return minimize(problem, np.zeros(n), method, record=True)


def _state(problem: Any, n: int, method: BlockCoordinateDescent) -> Any:
    x0 = torch.zeros(n, dtype=torch.float64)
    wrapped = OptimizationProblem(Objective(lambda x: x.sum()), (n,), source=problem)
    return method.init(wrapped, x0)


def test_fixtures_and_user_classes_declare_structure_by_attributes() -> None:
    A, b, alpha = _data()
    assert isinstance(UserLasso(A, b, alpha), L1LeastSquaresStructure)
    assert isinstance(Lasso(A, b, alpha=alpha), L1LeastSquaresStructure)
    assert isinstance(LeastSquares(A.toarray(), b), LeastSquaresStructure)
    assert isinstance(lattice_label_propagation(4, 4, n_labelled=3), QuadraticStructure)
    # A, b and l2 alone are not a least-squares objective (no residual).
    assert not isinstance(LogSumExp(A.toarray(), b), LeastSquaresStructure)


@needs_numba
@pytest.mark.parametrize("selection", ["gs", "gsl"])
def test_user_lasso_runs_the_compiled_greedy_path_like_the_builtin(
    selection: str,
) -> None:
    A, b, alpha = _data()
    n = A.shape[1]
    ours, builtin = UserLasso(A, b, alpha), Lasso(A, b, alpha=alpha)
    method = BlockCoordinateDescent(
        selection=selection, update="gradient", block_size=1
    )
    assert isinstance(_state(ours, n, method), GreedyState)
    assert isinstance(_state(builtin, n, method), GreedyState)
    config = dict(selection=selection, update="gradient", block_size=1)
    user = _solve(ours, n, updates_per_step=7, max_steps=80, rtol=0.0, **config)
    ref = _solve(builtin, n, updates_per_step=7, max_steps=80, rtol=0.0, **config)
    assert user.stats["coordinate_updates"] == ref.stats["coordinate_updates"] > 0
    assert user.stats["full_gradients"] == ref.stats["full_gradients"]
    np.testing.assert_array_equal(user.x, ref.x)
    np.testing.assert_array_equal(user.trace["objective"], ref.trace["objective"])


@needs_numba
def test_user_lasso_stops_on_the_duality_gap_like_the_builtin() -> None:
    A, b, alpha = _data()
    n = A.shape[1]
    config = dict(selection="gs", update="gradient", block_size=1, gap_tol=1e-8)
    user = _solve(UserLasso(A, b, alpha), n, updates_per_step=10, **config)
    ref = _solve(Lasso(A, b, alpha=alpha), n, updates_per_step=10, **config)
    assert user.success and ref.success and user.num_steps == ref.num_steps
    np.testing.assert_array_equal(user.x, ref.x)


def test_user_quadratic_takes_the_incremental_model_like_label_propagation() -> None:
    p = lattice_label_propagation(6, 6, n_labelled=5)
    n = p.shape[0]
    ours = UserQuadratic(p.Q, p.c)
    method = BlockCoordinateDescent(selection="gsl", update="matrix", block_size=3)
    state = _state(ours, n, method)
    assert (
        isinstance(state, BCDState) and type(state.model).__name__ == "QuadraticModel"
    )
    config = dict(selection="gsl", update="matrix", block_size=3, max_steps=60)
    user, ref = _solve(ours, n, **config), _solve(p, n, **config)
    assert user.stats["full_gradients"] == ref.stats["full_gradients"]
    np.testing.assert_array_equal(user.x, ref.x)


def test_an_undeclared_problem_runs_the_generic_objective_path() -> None:
    A, b, _ = _data(30, 12)

    def f(x: torch.Tensor) -> torch.Tensor:
        r = torch.as_tensor(A.toarray()) @ x - torch.as_tensor(b)
        return 0.5 * (r @ r)

    method = BlockCoordinateDescent(update="newton", selection="cyclic")
    state = _state(f, 12, method)
    assert type(state.model).__name__ == "ObjectiveModel"


@pytest.mark.parametrize(
    ("selection", "epochs"), [("gs", 1), ("cyclic", 1), ("random", 4)]
)
def test_stall_window_covers_an_epoch(selection: str, epochs: int) -> None:
    problem = OptimizationProblem(Objective(lambda x: x.sum()), (100,))
    for block_size, per_step in [(1, 1), (5, 1), (5, 3), (200, 1)]:
        method = BlockCoordinateDescent(
            selection=selection, block_size=block_size, updates_per_step=per_step
        )
        blocks = -(-100 // min(block_size, 100))
        window = method.default_stall_window(problem)
        assert window is not None
        assert window * per_step >= epochs * blocks


def test_importing_optimize_leaves_the_compiled_bcd_kernels_unloaded() -> None:
    # The kernel module imports with the package; numba loads, and the kernels
    # compile, only when a greedy engine first calls one.
    code = (
        "import sys, itersolve.optimize; "
        "from itersolve.optimize.bcd import _greedy_kernels as k; "
        "print('numba' in sys.modules, type(k.select).__name__)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "False LazyKernel"


def test_moved_names_warn_from_their_old_path() -> None:
    import itersolve.problems.coordinate as old
    from itersolve.optimize.bcd import lasso_duality_gap

    with pytest.warns(DeprecationWarning, match="optimize.bcd.lasso_duality_gap"):
        assert old.lasso_duality_gap is lasso_duality_gap


def test_label_propagation_float32_twin_keeps_its_dtype() -> None:
    p = lattice_label_propagation(4, 4, n_labelled=3)
    q = p.to(dtype=torch.float32)
    assert isinstance(q, LabelPropagation) and q.dtype == torch.float32
    x = torch.zeros(p.shape, dtype=torch.float32)
    assert q.value(x).dtype == torch.float32
    assert "LabelPropagation(" in repr(q)
