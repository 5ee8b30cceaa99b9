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


def _softmax_model(seed: int = 3) -> Any:
    from itersolve.optimize.bcd._models import LinearPredictorModel

    rng = np.random.default_rng(seed)
    X = rng.standard_normal((40, 6))
    Y = torch.nn.functional.one_hot(torch.from_numpy(rng.integers(0, 5, 40)), 5)
    x0 = torch.from_numpy(rng.standard_normal((6, 5)))
    return LinearPredictorModel(X, Y, x0, loss="softmax", scale=1 / 40, l2=0.01)


@pytest.mark.parametrize(
    "block",
    [[0, 1, 2, 3, 4], [0, 1, 7, 8], [3, 8, 13, 18, 23], [2, 9, 14, 20, 29], [11]],
)
def test_softmax_block_bound_dominates_the_block_hessian(block: list[int]) -> None:
    """Boehning's bound with K' = min(K, c + 1) classes: H_b - Hessian is PSD
    at a random point; along a single class (one feature) it is 1/4 ||a_j||^2."""
    model = _softmax_model()
    b = torch.tensor(block)
    gap = model.block_bound(b) - model.block_hessian(b)
    assert float(torch.linalg.eigvalsh(gap)[0]) >= -1e-12
    j, k = b // 5, b % 5
    if torch.unique(k).numel() == 1 and torch.unique(j).numel() == 1:
        col = model.cols.columns(j[:1])[:, 0]
        expected = 0.25 * float(col @ col) / 40 + 0.01
        assert float(model.block_bound(b)[0, 0]) == pytest.approx(expected)
    # the coordinate constants are the diagonal of a one-coordinate block bound
    L = model.coordinate_lipschitz()
    for i in block:
        one = torch.tensor([i])
        assert float(L[i]) == pytest.approx(float(model.block_bound(one)[0, 0]))


def test_softmax_block_bound_uses_the_block_classes() -> None:
    """Five classes of one feature: K' = 5 (= K here), so the all-ones
    direction is bounded by (1 - 5/5)/2 = 0 times ||a_j||^2, plus l2."""
    model = _softmax_model()
    b = torch.arange(5)
    ones = torch.ones(5, dtype=torch.float64) / 5**0.5
    assert float(ones @ model.block_bound(b) @ ones) == pytest.approx(0.01)


@pytest.mark.skipif(
    importlib.util.find_spec("sklearn") is None, reason="scikit-learn not installed"
)
@pytest.mark.parametrize("selection", ["vb", "gsl", "cyclic"])
def test_elastic_net_matches_sklearn_elastic_net(selection: str) -> None:
    from sklearn.linear_model import ElasticNet as SkElasticNet

    from itersolve.problems.coordinate import ElasticNet

    A, b, _ = _data(50, 80)
    alpha = 0.1 * float(np.abs(A.T @ b).max()) / (50 * 0.3)
    p = ElasticNet(A, b, alpha=alpha, l1_ratio=0.3)
    assert p.l2 == pytest.approx(0.7 * alpha)
    assert p.penalty.lam == pytest.approx(0.3 * alpha)
    sk = SkElasticNet(
        alpha=alpha, l1_ratio=0.3, fit_intercept=False, tol=1e-13, max_iter=10**5
    )
    sk.fit(A, b)
    update = "newton" if selection == "vb" else "gradient"
    block = 10 if selection == "vb" else 1
    sol = _solve(
        p,
        80,
        selection=selection,
        update=update,
        block_size=block,
        rtol=1e-11,
        max_steps=20_000,
    )
    assert sol.status.name == "SUCCESS"
    f_sk = float(p.value(torch.from_numpy(sk.coef_)))
    f = float(p.value(torch.as_tensor(sol.x)))
    assert abs(f - f_sk) <= 1e-9 * f_sk
    np.testing.assert_allclose(np.asarray(sol.x), sk.coef_, atol=1e-7)
    # the ridge term is in the objective BCD minimised: without it the
    # minimiser is the Lasso's, a different point
    lasso = _solve(
        Lasso(A, b, alpha=0.3 * alpha),
        80,
        selection="vb",
        update="newton",
        block_size=10,
    )
    assert float(np.abs(np.asarray(lasso.x) - sk.coef_).max()) > 1e-3


def test_elastic_net_rejects_bad_weights() -> None:
    from itersolve.problems.coordinate import ElasticNet

    A, b, _ = _data(10, 20)
    with pytest.raises(ValueError, match="l1_ratio"):
        ElasticNet(A, b, alpha=0.1, l1_ratio=1.5)
    with pytest.raises(ValueError, match="alpha"):
        ElasticNet(A, b, alpha=-1.0)
    one = ElasticNet(A, b, alpha=0.1, l1_ratio=1.0)
    x = torch.linspace(-1, 1, 20, dtype=torch.float64)
    assert float(one.value(x)) == pytest.approx(
        float(Lasso(A, b, alpha=0.1).value(x)), rel=1e-14
    )
