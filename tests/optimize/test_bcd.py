"""Block coordinate descent: a catalogue of problems x a registry of rules/updates.

Every case has a reference optimum (lstsq / solve / spsolve / scikit-learn /
scipy) and lists the configurations expected to be slow on it (with the reason).
"""

from __future__ import annotations

import importlib.util
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
import scipy.optimize as so
import scipy.sparse as sp
import torch

from itersolve import ConvergenceWarning, Objective, Status
from itersolve.optimize import minimize
from itersolve.optimize.bcd._method import BCDState, BlockCoordinateDescent
from itersolve.optimize.bcd._selection import (
    GaussSouthwellDiagonalRule,
    GaussSouthwellRule,
    VariableBlockRule,
)
from itersolve.problems import LeastSquares, Logistic, Quadratic, Softmax
from itersolve.problems.coordinate import (
    LabelPropagation,
    Lasso,
    NonNegativeLeastSquaresL1,
    SparseLeastSquares,
    lattice_label_propagation,
    sparse_regression_data,
    two_moons_label_propagation,
)


def _quiet_minimize(problem: Any, x0: Any, method: Any, **kw: Any) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return minimize(problem, x0, method, **kw)


# -- catalogue ---------------------------------------------------------------------


@dataclass
class Case:
    name: str
    problem: Any
    x_star: np.ndarray
    smooth: bool = True
    update: str = "matrix"


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def _least_squares() -> Case:
    rng = _rng(1)
    A = rng.standard_normal((40, 12)) * rng.uniform(0.3, 3.0, 12)
    b = rng.standard_normal(40)
    return Case(
        "least-squares", LeastSquares(A, b), np.linalg.lstsq(A, b, rcond=None)[0]
    )


def _sparse_least_squares() -> Case:
    A = sp.random_array(
        (60, 12), density=0.3, rng=_rng(2), data_sampler=_rng(2).standard_normal
    )
    b = _rng(3).standard_normal(60)
    return Case(
        "sparse-least-squares", SparseLeastSquares(A, b, l2=1e-3), x_ridge(A, b)
    )


def x_ridge(A: Any, b: np.ndarray, l2: float = 1e-3) -> np.ndarray:
    Ad = A.toarray() if sp.issparse(A) else A
    return np.linalg.solve(Ad.T @ Ad + l2 * np.eye(Ad.shape[1]), Ad.T @ b)


def _quadratic() -> Case:
    rng = _rng(3)
    M = rng.standard_normal((12, 12))
    A = M @ M.T + 12 * np.eye(12)
    b = rng.standard_normal(12)
    return Case("quadratic", Quadratic(A, b), np.linalg.solve(A, b))


def _label_propagation() -> Case:
    p = lattice_label_propagation(4, 4, n_labelled=3, weight=1.0, seed=0)
    return Case("label-propagation", p, p.x_star.numpy())


def _logistic() -> Case:
    rng = _rng(4)
    X = rng.standard_normal((50, 8))
    y = np.sign(X @ rng.standard_normal(8) + 0.5 * rng.standard_normal(50))
    p = Logistic(X, y, l2=0.05)
    ref = so.minimize(
        lambda w: (
            float(p.value(torch.from_numpy(w))),
            p.grad(torch.from_numpy(w)).numpy(),
        ),
        np.zeros(8),
        jac=True,
        method="L-BFGS-B",
        options={"gtol": 1e-12, "ftol": 1e-15},
    )
    return Case("logistic", p, ref.x, update="newton")


def _softmax() -> Case:
    rng = _rng(5)
    X = rng.standard_normal((45, 4))
    y = rng.integers(0, 3, 45)
    p = Softmax(X, y, l2=0.05)
    ref = so.minimize(
        lambda w: (
            float(p.value(torch.from_numpy(w.reshape(4, 3)))),
            p.grad(torch.from_numpy(w.reshape(4, 3))).numpy().reshape(-1),
        ),
        np.zeros(12),
        jac=True,
        method="L-BFGS-B",
        options={"gtol": 1e-12, "ftol": 1e-15},
    )
    return Case("softmax", p, ref.x.reshape(4, 3), update="newton")


def _lasso() -> Case:
    from sklearn.linear_model import Lasso as SkLasso

    A, b, _ = sparse_regression_data(40, 15, seed=6)
    p = Lasso(A, b, alpha=0.0)
    p = Lasso(A, b, alpha=0.1 * p.alpha_max)
    sk = SkLasso(alpha=p.alpha, fit_intercept=False, tol=1e-14, max_iter=10**6)
    return Case("lasso", p, sk.fit(A, b).coef_, smooth=False, update="newton")


def _nnls_l1() -> Case:
    rng = _rng(7)
    A = rng.standard_normal((30, 10))
    b = rng.standard_normal(30)
    lam = 0.5
    ref = so.minimize(
        lambda x: (
            0.5 * np.sum((A @ x - b) ** 2) + lam * x.sum(),
            A.T @ (A @ x - b) + lam,
        ),
        np.zeros(10),
        jac=True,
        method="L-BFGS-B",
        bounds=[(0, None)] * 10,
        options={"gtol": 1e-13, "ftol": 1e-16},
    )
    p = NonNegativeLeastSquaresL1(A, b, lam=lam)
    return Case("nnls-l1", p, ref.x, smooth=False, update="newton")


CASES = {
    c.name: c
    for c in (
        _least_squares(),
        _sparse_least_squares(),
        _quadratic(),
        _label_propagation(),
        _logistic(),
        _softmax(),
        _lasso(),
        _nnls_l1(),
    )
}

SELECTIONS = ["cyclic", "random", "lipschitz", "gs", "gsl", "gsd", "gsq", "vb", "gs-vb"]
UPDATES = ["gradient", "lipschitz_adaptive", "matrix", "newton"]
# The default run crosses every rule with the dense least-squares case and a
# representative subset with the other cases; the full cross product is `slow`.
FAST_SELECTIONS = ["cyclic", "gsl", "gsq", "vb"]
FAST_UPDATES = ["gradient", "newton"]


def _grid(options: list[str], fast: list[str]) -> list[Any]:
    out = []
    for name in CASES:
        for option in options:
            quick = name == "least-squares" or option in fast
            if name in ("lasso", "nnls-l1") and option in (
                "cyclic",
                "random",
                "lipschitz",
            ):
                quick = False  # non-greedy proximal runs need thousands of steps
            marks = () if quick else (pytest.mark.slow,)
            out.append(pytest.param(name, option, marks=marks, id=f"{name}-{option}"))
    return out


def _x0(case: Case) -> np.ndarray:
    shape = case.x_star.shape
    return np.zeros(shape)


def _check_close(case: Case, x: np.ndarray, tol: float = 1e-5) -> None:
    scale = max(1.0, float(np.abs(case.x_star).max()))
    assert np.abs(x - case.x_star).max() <= tol * scale, (case.name, x, case.x_star)


@pytest.mark.parametrize(("name", "selection"), _grid(SELECTIONS, FAST_SELECTIONS))
def test_every_selection_converges_to_reference(name: str, selection: str) -> None:
    case = CASES[name]
    method = BlockCoordinateDescent(
        selection=selection,
        update=case.update,
        block_size=3,
        rtol=1e-11,
        max_steps=6000,
    )
    sol = minimize(case.problem, _x0(case), method)
    assert sol.success, (name, selection, sol)
    _check_close(case, sol.x)


@pytest.mark.parametrize(("name", "update"), _grid(UPDATES, FAST_UPDATES))
def test_every_update_converges_to_reference(name: str, update: str) -> None:
    case = CASES[name]
    method = BlockCoordinateDescent(
        selection="gsl", update=update, block_size=3, rtol=1e-11, max_steps=20000
    )
    sol = minimize(case.problem, _x0(case), method)
    assert sol.success, (name, update, sol)
    _check_close(case, sol.x)


def test_code_norms_and_rule_objects_converge() -> None:
    case = CASES["least-squares"]
    for rule in (
        GaussSouthwellRule(norm="code"),
        GaussSouthwellDiagonalRule(norm="code"),
        VariableBlockRule(scaling="none"),
    ):
        method = BlockCoordinateDescent(selection=rule, update="matrix", block_size=3)
        sol = minimize(case.problem, _x0(case), method)
        assert sol.success
        _check_close(case, sol.x, 1e-4)


@pytest.mark.parametrize("blocks", ["sorted", "balanced", "red_black", "forest"])
def test_partition_heuristics_converge(blocks: str) -> None:
    case = CASES["label-propagation"]
    method = BlockCoordinateDescent(
        selection="gs", update="matrix", blocks=blocks, block_size=3, rtol=1e-11
    )
    sol = minimize(case.problem, _x0(case), method)
    assert sol.success
    _check_close(case, sol.x)


# -- incremental gradients ---------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "least-squares",
        "sparse-least-squares",
        "logistic",
        "softmax",
        "lasso",
        "quadratic",
    ],
)
def test_incremental_gradient_matches_fresh_gradient(name: str) -> None:
    case = CASES[name]
    method = BlockCoordinateDescent(selection="gs", update="gradient", block_size=2)
    from itersolve.optimize import OptimizationProblem

    x0 = torch.zeros(case.x_star.shape, dtype=torch.float64)
    problem = OptimizationProblem(
        Objective(lambda x: x.sum()), tuple(x0.shape), source=case.problem
    )
    state = method.init(problem, x0)
    for _ in range(400):
        method.step(problem, state)
    assert isinstance(state, BCDState)  # a dense problem: the generic path
    model = state.model
    fresh = model.fresh_gradient()
    assert torch.allclose(model.gradient(), fresh, rtol=1e-10, atol=1e-10)
    if hasattr(case.problem, "grad"):
        try:
            g = case.problem.grad(state.x).reshape(-1)
        except TypeError:
            g = None
        if g is not None:
            assert torch.allclose(fresh, g, rtol=1e-10, atol=1e-12)


def test_sparse_and_dense_least_squares_take_identical_steps() -> None:
    A, b, _ = sparse_regression_data(50, 30, seed=9)
    runs = []
    for problem in (LeastSquares(A.toarray(), b), SparseLeastSquares(A, b)):
        sol = _quiet_minimize(
            problem,
            np.zeros(30),
            BlockCoordinateDescent(selection="gsl", block_size=4, max_steps=200),
            record=True,
        )
        runs.append(np.asarray(sol.trace["objective"]))
    np.testing.assert_allclose(runs[0], runs[1], rtol=1e-9)


# -- proximal problems -------------------------------------------------------------


def test_lasso_matches_sklearn_objective_and_reports_identification() -> None:
    case = CASES["lasso"]
    p = case.problem
    sol = minimize(
        p,
        np.zeros(15),
        BlockCoordinateDescent(
            selection="vb", update="newton", block_size=15, rtol=1e-12
        ),
    )
    f = float(p.value(torch.from_numpy(sol.x)))
    f_ref = float(p.value(torch.from_numpy(case.x_star)))
    assert f <= f_ref * (1 + 1e-12)
    support = np.flatnonzero(case.x_star)
    assert set(np.flatnonzero(sol.x)) == set(support)
    assert sol.stats["support_size"] == support.size
    assert 0 < sol.stats["active_set_identified_at"] <= sol.num_steps


def test_nnls_matches_scipy_nnls() -> None:
    rng = _rng(11)
    A = rng.standard_normal((25, 8))
    b = rng.standard_normal(25)
    x_ref, _ = so.nnls(A, b)
    sol = minimize(
        NonNegativeLeastSquaresL1(A, b),
        np.zeros(8),
        BlockCoordinateDescent(
            selection="gsq", update="newton", block_size=3, rtol=1e-12
        ),
    )
    assert sol.success
    assert (sol.x >= 0).all()
    np.testing.assert_allclose(sol.x, x_ref, atol=1e-8)


def test_nnls_rejects_negative_start() -> None:
    with pytest.raises(ValueError, match="x0 must be >= 0"):
        minimize(CASES["nnls-l1"].problem, -np.ones(10), BlockCoordinateDescent())


# -- the DESIGN section 6 battery ---------------------------------------------------


def test_inputs_unmutated_and_dtype_preserved() -> None:
    rng = _rng(12)
    A = rng.standard_normal((30, 9)).astype(np.float32)
    b = rng.standard_normal(30).astype(np.float32)
    A_copy, b_copy = A.copy(), b.copy()
    x0 = np.zeros(9, dtype=np.float32)
    sol = minimize(
        LeastSquares(A, b),
        x0,
        BlockCoordinateDescent(
            selection="gsq", update="matrix", block_size=3, rtol=1e-5
        ),
    )
    assert sol.x.dtype == np.float32
    assert np.array_equal(A, A_copy) and np.array_equal(b, b_copy)
    assert not x0.any()
    ref = np.linalg.lstsq(A.astype(float), b.astype(float), rcond=None)[0]
    np.testing.assert_allclose(sol.x, ref, atol=1e-3)


def test_torch_in_torch_out() -> None:
    case = CASES["logistic"]
    x0 = torch.zeros(8, dtype=torch.float64)
    sol = minimize(
        case.problem, x0, BlockCoordinateDescent(update="newton", rtol=1e-10)
    )
    assert isinstance(sol.x, torch.Tensor) and sol.x.dtype == torch.float64
    assert not x0.any()


def test_generic_objective_with_newton_and_adaptive_lipschitz() -> None:
    target = torch.arange(6, dtype=torch.float64)

    def f(x: torch.Tensor) -> torch.Tensor:
        return ((x - target) ** 2).sum() + 0.1 * (x**4).sum()

    ref = minimize(f, torch.zeros(6, dtype=torch.float64))
    for update in ("newton", "lipschitz_adaptive"):
        sol = minimize(
            f,
            torch.zeros(6, dtype=torch.float64),
            BlockCoordinateDescent(
                selection="gs", update=update, block_size=2, rtol=1e-10
            ),
        )
        assert sol.success
        assert torch.allclose(sol.x, ref.x, atol=1e-7)


def test_generic_objective_needs_structure_for_lipschitz_rules() -> None:
    with pytest.raises(ValueError, match="Lipschitz constants are unknown"):
        minimize(
            lambda x: (x**2).sum(),
            torch.zeros(10),
            BlockCoordinateDescent(block_size=2),
        )


# -- bad input ---------------------------------------------------------------------

ERROR_CONFIGS = [
    ({"selection": "bogus"}, "selection must be one of"),
    ({"update": "bogus"}, "update must be one of"),
    ({"block_size": 0}, "block_size must be a positive int"),
    ({"rtol": -1.0}, "rtol must be >= 0"),
    ({"blocks": "bogus"}, "blocks must be one of"),
    ({"refresh_every": 0}, "refresh_every must be >= 1"),
]


def test_bad_norm_raises() -> None:
    with pytest.raises(ValueError, match="norm must be one of"):
        GaussSouthwellRule(norm="l3")


@pytest.mark.parametrize(("config", "message"), ERROR_CONFIGS)
def test_bad_hyperparameters_raise(config: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        BlockCoordinateDescent(**config)


@pytest.mark.parametrize(
    ("blocks", "message"),
    [
        ([[0, 1], [2]], "missing indices: \\[3"),
        ([[0, 1, 2], [2, 3, 4, 5, 6, 7, 8, 9, 10, 11]], "repeated indices: \\[2\\]"),
        ([[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]], "outside \\[0, 12\\): \\[12\\]"),
    ],
)
def test_blocks_must_partition(blocks: list[list[int]], message: str) -> None:
    case = CASES["quadratic"]
    with pytest.raises(ValueError, match=message):
        minimize(case.problem, _x0(case), BlockCoordinateDescent(blocks=blocks))


def test_block_size_larger_than_n_raises() -> None:
    case = CASES["quadratic"]
    with pytest.raises(
        ValueError, match="block_size must be an int in \\[1, n=12\\], got 13"
    ):
        minimize(case.problem, _x0(case), BlockCoordinateDescent(block_size=13))


def test_message_passing_rejects_a_block_with_a_cycle() -> None:
    case = CASES["label-propagation"]
    n = case.x_star.size
    with pytest.raises(ValueError, match="block is not a forest"):
        minimize(
            case.problem,
            np.zeros(n),
            BlockCoordinateDescent(update="message_passing", blocks=[np.arange(n)]),
        )


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (
            lambda: Lasso(np.eye(2), [1.0, 2.0], alpha=-1.0),
            "alpha must be >= 0, got -1.0",
        ),
        (
            lambda: NonNegativeLeastSquaresL1(np.eye(2), [1.0, 2.0], lam=-0.5),
            "lam must be >= 0",
        ),
        (lambda: SparseLeastSquares(sp.eye(2), [1.0, 2.0], l2=-1.0), "l2 must be >= 0"),
        (
            lambda: LabelPropagation(-sp.eye(3), [1.0, np.nan, 0.0]),
            "weights must be >= 0",
        ),
        (lambda: LabelPropagation(sp.eye(3), [np.nan] * 3), "at least one labelled"),
    ],
)
def test_bad_problem_data_raises(make: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make()


# -- label propagation with forests --------------------------------------------------


@pytest.mark.parametrize("blocks", ["lattice", "forest"])
def test_forest_blocks_with_message_passing_solve_label_propagation(
    blocks: str,
) -> None:
    p = lattice_label_propagation(8, 7, n_labelled=6, weight=1.0, seed=1)
    x_ref = p.x_star.numpy()
    sol = minimize(
        p,
        np.zeros(p.shape[0]),
        BlockCoordinateDescent(
            selection="cyclic",
            update="message_passing",
            blocks=blocks,
            rtol=1e-12,
            max_steps=3000,
        ),
    )
    assert sol.success
    np.testing.assert_allclose(sol.x, x_ref, rtol=1e-8, atol=1e-8)


def test_greedy_forest_rule_on_two_moons() -> None:
    p = two_moons_label_propagation(60, n_labelled=6, seed=2)
    sol = minimize(
        p,
        np.zeros(p.shape[0]),
        BlockCoordinateDescent(
            selection="forest",
            update="message_passing",
            block_size=20,
            rtol=1e-10,
            max_steps=3000,
        ),
    )
    assert sol.success
    np.testing.assert_allclose(sol.x, p.x_star.numpy(), atol=1e-7)


def test_forest_message_passing_beats_red_black_on_lattice() -> None:
    p = lattice_label_propagation(10, 10, n_labelled=8, weight=1.0, seed=3)
    steps = {}
    for blocks, update in (("red_black", "matrix"), ("lattice", "message_passing")):
        sol = minimize(
            p,
            np.zeros(p.shape[0]),
            BlockCoordinateDescent(
                selection="cyclic",
                update=update,
                blocks=blocks,
                rtol=1e-10,
                max_steps=5000,
            ),
        )
        assert sol.success
        steps[blocks] = sol.num_steps
    assert steps["lattice"] < steps["red_black"]


# -- compiled greedy path, duality-gap rule ------------------------------------------

_HAVE_NUMBA = importlib.util.find_spec("numba") is not None
needs_numba = pytest.mark.skipif(not _HAVE_NUMBA, reason="numba not installed")


def _sparse_lasso(m: int = 60, n: int = 150, seed: int = 8) -> Lasso:
    A, b, _ = sparse_regression_data(m, n, seed=seed)
    alpha = 0.1 * float(np.abs(A.T @ b).max()) / m
    return Lasso(sp.csc_array(A), b, alpha=alpha)


def _sparse_nnls(m: int = 50, n: int = 80, seed: int = 9) -> NonNegativeLeastSquaresL1:
    A, b, _ = sparse_regression_data(m, n, seed=seed)
    return NonNegativeLeastSquaresL1(A, b, lam=0.05 * float(np.abs(A.T @ b).max()))


def _singletons(n: int) -> list[np.ndarray]:
    """The default partition spelled out: forces the generic (torch) path."""
    return [np.array([i]) for i in range(n)]


def _run(problem: Any, n: int, callback: Any = None, **config: Any) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        method = BlockCoordinateDescent(**config)
        return minimize(problem, np.zeros(n), method, callback=callback)


@needs_numba
@pytest.mark.parametrize("selection", ["gs", "gsl", "gsd", "vb", "gs-vb"])
@pytest.mark.parametrize("kind", ["lasso", "nnls-l1"])
def test_compiled_greedy_path_takes_the_generic_iterates(kind: str, selection: str):
    p = _sparse_lasso() if kind == "lasso" else _sparse_nnls()
    n = p.shape[0]
    common = dict(selection=selection, update="gradient", block_size=1, rtol=0.0)
    fast = _run(p, n, max_steps=40, updates_per_step=5, **common)
    slow = _run(p, n, max_steps=200, blocks=_singletons(n), **common)
    assert fast.stats["coordinate_updates"] == slow.stats["coordinate_updates"] == 200
    np.testing.assert_allclose(fast.x, slow.x, rtol=1e-10, atol=1e-12)
    assert fast.stats["support_size"] == slow.stats["support_size"]
    assert float(p.value(torch.from_numpy(fast.x))) == pytest.approx(
        float(p.value(torch.from_numpy(slow.x))), rel=1e-12
    )


def _gap_run(
    p: Lasso, tol: float, blocks: Any = None, record: bool = False, max_steps=5000
) -> Any:
    """Greedy GS on single coordinates to the duality-gap rule, tested every 10."""
    method = BlockCoordinateDescent(
        selection="gs", update="gradient", block_size=1, blocks=blocks,
        gap_tol=tol, updates_per_step=10, max_steps=max_steps,
    )  # fmt: skip
    return minimize(p, np.zeros(p.shape[0]), method, record=record)


def test_duality_gap_equals_scikit_learns() -> None:
    from sklearn.linear_model import Lasso as SkLasso

    p = _sparse_lasso(80, 200)
    for tol in (1e-2, 1e-4):
        sk = SkLasso(alpha=p.alpha, fit_intercept=False, tol=tol, max_iter=10**5)
        sk.fit(p.X, p.y)
        # sklearn's gap uses its maintained residual: agreement to its drift.
        assert p.duality_gap(sk.coef_) == pytest.approx(sk.dual_gap_, rel=1e-8)
    assert p.duality_gap(np.zeros(200)) > 0


@pytest.mark.parametrize("fast", [True, False], ids=["compiled", "generic"])
def test_gap_rule_stops_where_scikit_learn_would(fast: bool) -> None:
    if fast and not _HAVE_NUMBA:
        pytest.skip("numba not installed")
    from sklearn.linear_model import Lasso as SkLasso

    p = _sparse_lasso(80, 200)
    tol = 1e-5
    blocks = None if fast else _singletons(200)
    sol = _gap_run(p, tol, blocks=blocks)
    assert sol.success
    threshold = tol * float(p.y @ p.y) / 80
    assert p.duality_gap(sol.x) <= threshold
    # Tested every 10 updates: one test earlier it was not yet met.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        earlier = _gap_run(p, tol, blocks=blocks, max_steps=sol.num_steps - 1)
    assert not earlier.success and p.duality_gap(earlier.x) > threshold
    sk = SkLasso(alpha=p.alpha, fit_intercept=False, tol=tol, max_iter=10**5)
    sk.fit(p.X, p.y)
    f = float(p.value(torch.from_numpy(sol.x)))
    f_sk = float(p.value(torch.from_numpy(sk.coef_)))
    # Both within the gap of the optimum, so within the gap of each other.
    assert abs(f - f_sk) <= threshold


@needs_numba
@pytest.mark.parametrize("fast", [True, False], ids=["compiled", "generic"])
def test_nan_put_in_mid_run_ends_nonfinite(fast: bool) -> None:
    p = _sparse_lasso()
    n = p.shape[0]

    def poison(info: Any) -> None:
        if info.step == 3:
            info.x[np.flatnonzero(info.x.numpy())[0]] = float("nan")

    blocks = None if fast else _singletons(n)
    sol = _run(
        p, n, poison, selection="gs", update="gradient", block_size=1, blocks=blocks,
        updates_per_step=5, rtol=1e-12, max_steps=100,
    )  # fmt: skip
    assert sol.status is Status.NONFINITE and sol.num_steps == 4


@needs_numba
def test_compiled_state_reductions_equal_a_fresh_computation() -> None:
    from itersolve.optimize.bcd._greedy import greedy_engine
    from itersolve.optimize.bcd._structure import coordinate_terms

    p = _sparse_lasso()
    n = p.shape[0]
    method = BlockCoordinateDescent(selection="gs", update="gradient", block_size=1)
    x0 = torch.zeros(n, dtype=torch.float64)
    engine = greedy_engine(
        method.selection_rule,
        method.update_rule,
        coordinate_terms(p, x0),
        x0,
        single_coordinates=True,
    )
    assert engine is not None
    engine.run(300)
    red = engine.measure()
    w = engine.w.copy()
    r = p.X @ w - p.y
    g = p.X.T @ r / p.n_samples
    assert red.x_sum == pytest.approx(w.sum(), rel=1e-12)
    assert red.l1 == pytest.approx(np.abs(w).sum(), rel=1e-12)
    assert red.r_norm2 == pytest.approx(r @ r, rel=1e-10)
    assert red.g_max == pytest.approx(np.abs(g).max(), rel=1e-10)
    np.testing.assert_allclose(engine.g, g, rtol=1e-9, atol=1e-12 * np.abs(g).max())


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (dict(updates_per_step=0), "updates_per_step must be a positive int"),
        (dict(gap_tol=-1.0), "gap_tol must be > 0 or None"),
    ],
)
def test_bad_new_hyperparameters_raise(config: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        BlockCoordinateDescent(**config)


def test_gap_rule_needs_a_lasso() -> None:
    case = CASES["nnls-l1"]
    with pytest.raises(ValueError, match="gap_tol needs a Lasso problem"):
        minimize(case.problem, _x0(case), BlockCoordinateDescent(gap_tol=1e-6))


def test_updates_per_step_groups_the_same_updates() -> None:
    case = CASES["least-squares"]
    one = _run(case.problem, case.x_star.size, selection="gsl", max_steps=60, rtol=0.0)
    six = _run(
        case.problem,
        case.x_star.size,
        selection="gsl",
        max_steps=10,
        updates_per_step=6,
        rtol=0.0,
    )
    assert six.num_steps == 10 and one.num_steps == 60
    np.testing.assert_allclose(six.x, one.x, rtol=1e-12, atol=1e-14)


@needs_numba
def test_compiled_path_with_a_full_gram_cache_takes_the_same_iterates(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import itersolve.optimize.bcd._greedy as greedy

    p = _sparse_lasso()
    n = p.shape[0]
    common = dict(selection="gs", update="gradient", block_size=1, rtol=0.0)
    roomy = _run(p, n, max_steps=30, updates_per_step=5, **common)
    monkeypatch.setattr(greedy, "GRAM_COLUMNS", 2)  # later columns recomputed
    tight = _run(p, n, max_steps=30, updates_per_step=5, **common)
    assert roomy.stats["support_size"] > 2
    np.testing.assert_array_equal(tight.x, roomy.x)


@pytest.mark.parametrize("fast", [True, False], ids=["compiled", "generic"])
def test_trace_records_the_gap_it_stops_on(fast: bool) -> None:
    if fast and not _HAVE_NUMBA:
        pytest.skip("numba not installed")
    p = _sparse_lasso(80, 200)
    sol = _gap_run(p, 1e-6, blocks=None if fast else _singletons(200), record=True)
    assert sol.success and sol.trace is not None
    gaps = np.asarray(sol.trace["criterion"])
    assert gaps[-1] <= 1e-6 * p.gap_scale < gaps[0]
    # Maintained during the run, fresh at the end: the same to rounding.
    assert gaps[-1] == pytest.approx(p.duality_gap(sol.x), rel=1e-6)


def test_adaptive_lipschitz_never_raises_a_composite_objective() -> None:
    """The sufficient-decrease test compares F(x + d) with F(x), h included."""
    case = CASES["nnls-l1"]
    sol = _run(
        case.problem, 10, selection="gsl", update="lipschitz_adaptive", block_size=3,
        rtol=1e-11, max_steps=20000,
    )  # fmt: skip
    assert sol.success
    _check_close(case, sol.x)
    method = BlockCoordinateDescent(
        selection="gsl", update="lipschitz_adaptive", block_size=3, max_steps=50
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        traced = minimize(case.problem, np.zeros(10), method, record=True)
    assert traced.trace is not None
    f = np.asarray(traced.trace["objective"])
    assert np.all(np.diff(f) <= 1e-12 * np.abs(f[:-1]))


# -- the optimize-bcd benchmark's claims (issue 12) -----------------------------


def test_bench_nnls_reference_equals_scipy_active_set_nnls() -> None:
    """The suite's NNLS + L1 optimum against an exact reformulation.

    With ``A`` of full column rank, ``t = -A (A^T A)^{-1} lam 1`` has
    ``A^T t = -lam 1``, so ``0.5 ||Ax - b||^2 + lam 1^T x`` equals
    ``0.5 ||Ax - (b + t)||^2`` up to a constant: scipy's active-set ``nnls`` on
    ``(A, b + t)`` solves the same problem by another algorithm.
    """
    from itersolve.bench.suites.optimize_bcd import nnls_l1_reference

    rng = _rng(21)
    A = rng.standard_normal((60, 25))
    b = rng.standard_normal(60)
    lam = 0.2 * float(np.abs(A.T @ b).max())
    t = -A @ np.linalg.solve(A.T @ A, np.full(25, lam))
    exact, _ = so.nnls(A, b + t)
    x = nnls_l1_reference(NonNegativeLeastSquaresL1(A, b, lam=lam))
    assert 0 < np.count_nonzero(exact) < 25  # some bounds are active
    np.testing.assert_array_equal(np.flatnonzero(x), np.flatnonzero(exact))
    np.testing.assert_allclose(x, exact, rtol=1e-10, atol=1e-12)


def _claim_rows(case: str, method: str, **columns: Any) -> dict[str, Any]:
    return {"dataset_name": case, "solver_name": method, "status": "SUCCESS", **columns}


@pytest.mark.parametrize(
    ("stable_from", "mismatch", "passed"),
    [(17, 0, True), (59, 0, False), (17, 1, False), (31, 0, False)],
)
def test_bench_identification_claim_needs_an_early_and_correct_support(
    stable_from: int, mismatch: int, passed: bool
) -> None:
    """A support that changed one step before the end (the old check passed it)
    or that differs from the reference fails the claim."""
    from itersolve.bench.results import Results
    from itersolve.bench.suites.optimize_bcd import _active_set_and_superlinear

    row = _claim_rows(
        "nnls-l1-60x150",
        "bcd-vb-tmp-newton",
        num_steps=60,
        support_stable_from=stable_from,
        support_mismatch=mismatch,
        reference_support_size=19,
        curve={"objective": [1e-2, 1e-3, 1e-5, 1e-9, 0.0]},
    )
    outcome = _active_set_and_superlinear(Results([row]))
    assert outcome.passed is passed
    assert outcome.measured == pytest.approx(1e-4)


def test_bench_matrix_claim_needs_gsq_and_vb() -> None:
    from itersolve.bench.results import Results
    from itersolve.bench.suites.optimize_bcd import (
        _LS_GRADIENT,
        _matrix_beats_gradient,
    )

    def rows(gsq: float) -> Results:
        case = "dataset-a-60x200"
        out = [
            _claim_rows(case, f"bcd-{r}-gradient", objective_value=100.0)
            for r in _LS_GRADIENT
        ]
        out.append(_claim_rows(case, "bcd-vb-matrix", objective_value=1.0))
        out.append(_claim_rows(case, "bcd-gsq-matrix", objective_value=gsq))
        return Results(out)

    check = _matrix_beats_gradient("dataset-a")
    assert check(rows(50.0)).passed is True
    # VB + matrix alone beating every gradient rule is not enough
    failed = check(rows(200.0))
    assert failed.passed is False and failed.measured == pytest.approx(0.5)


@pytest.mark.skipif(
    importlib.util.find_spec("sklearn") is None, reason="scikit-learn not installed"
)
@pytest.mark.parametrize("kind", ["logistic", "softmax"])
def test_bench_datasets_b_c_anchor_minimises_the_identical_objective(
    kind: str,
) -> None:
    from itersolve.bench.suites.optimize_bcd import (
        _classification,
        _sklearn_logistic_fit,
        evaluate,
    )

    case = _classification(kind, 60, 40, 5, iterations=10)
    p = case.problem
    x = _sklearn_logistic_fit(p, tol=1e-10)
    # scikit-learn's minimiser is a stationary point of our objective ...
    g = p.grad(torch.from_numpy(x))
    assert float(g.abs().max()) <= 1e-6 * float(
        p.grad(torch.zeros(p.shape, dtype=torch.float64)).abs().max()
    )
    # ... and the reference f* is no higher than its value (suboptimality >= 0)
    assert -1e-12 <= evaluate(case, x) <= 1e-9
    sol = _quiet_minimize(
        p, np.zeros(p.shape), BlockCoordinateDescent(selection="gsl", max_steps=10)
    )
    assert evaluate(case, sol.x) > 0
