"""Convex two-layer ReLU program: ADMM and FISTA against cvxpy + Clarabel on tiny
instances, the factor-once linear system against a dense solve, the recovered
network's objective, and bad input."""

from __future__ import annotations

import warnings

import cvxpy as cp
import numpy as np
import pytest
import torch

from itersolve import ConvergenceWarning, Status
from itersolve.optimize.convex_relu import (
    ConvexReLUADMM,
    ConvexReLUFISTA,
    ConvexReLUProblem,
    group_soft_threshold,
    network_objective,
    recover_relu_network,
    sample_arrangements,
    solve_convex_relu,
)
from itersolve.optimize.convex_relu._system import FactoredSystem


def _data(n: int = 24, d: int = 2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    y = np.sin(2.0 * X[:, 0]) + 0.1 * rng.standard_normal(n)
    return X, y


def cvxpy_optimum(problem: ConvexReLUProblem) -> float:
    """The program's optimum by cvxpy + Clarabel (written independently of the
    problem's own operators)."""
    X, y, D = problem.X.numpy(), problem.y.numpy(), problem.D.numpy()
    P, d = problem.P, problem.d
    V = cp.Variable((P, d))
    if problem.gated:
        pred = cp.sum(cp.multiply(D, X @ V.T), axis=1)
        reg = cp.sum(cp.norm(V, 2, axis=1))
        constraints = []
    else:
        W = cp.Variable((P, d))
        pred = cp.sum(cp.multiply(D, X @ (V - W).T), axis=1)
        reg = cp.sum(cp.norm(V, 2, axis=1)) + cp.sum(cp.norm(W, 2, axis=1))
        S = 2 * D - 1
        constraints = [cp.multiply(S, X @ V.T) >= 0, cp.multiply(S, X @ W.T) >= 0]
    objective = 0.5 * cp.sum_squares(pred - y) + problem.beta * reg
    program = cp.Problem(cp.Minimize(objective), constraints)
    program.solve(
        solver=cp.CLARABEL, tol_gap_abs=1e-10, tol_gap_rel=1e-10, tol_feas=1e-10
    )
    return float(program.value)


@pytest.mark.parametrize("P", [3, 12])
def test_admm_matches_clarabel(P):
    # P = 3 takes the direct Cholesky path (K P d = 18 <= n), P = 12 Woodbury.
    X, y = _data()
    problem = ConvexReLUProblem(X, y, beta=0.5, arrangements=P, seed=1)
    sol = solve_convex_relu(
        problem, ConvexReLUADMM(rho=1.0, rtol=1e-10, max_steps=20000)
    )
    assert sol.success, sol.message
    assert sol.stats["woodbury"] == int(P == 12)
    reference = cvxpy_optimum(problem)
    assert sol.extras["objective"] == pytest.approx(reference, rel=1e-6)
    assert sol.extras["constraint_violation"] <= 1e-7


@pytest.mark.parametrize(
    "method",
    [ConvexReLUFISTA(rtol=1e-10), ConvexReLUADMM(rtol=1e-10, max_steps=20000)],
    ids=["fista", "admm"],
)
def test_gated_program_matches_clarabel(method):
    X, y = _data(seed=2)
    problem = ConvexReLUProblem(X, y, beta=0.5, arrangements=6, seed=2, gated=True)
    sol = solve_convex_relu(problem, method)
    assert sol.success, sol.message
    assert sol.x.shape == (1, 6, 3)
    assert sol.extras["objective"] == pytest.approx(cvxpy_optimum(problem), rel=1e-6)


def test_gated_optimum_is_at_most_the_constrained_one():
    X, y = _data(seed=3)
    relu = ConvexReLUProblem(X, y, beta=0.5, arrangements=5, seed=3)
    gated = ConvexReLUProblem(X, y, beta=0.5, arrangements=5, seed=3, gated=True)
    assert cvxpy_optimum(gated) <= cvxpy_optimum(relu) + 1e-9


@pytest.mark.parametrize(("P", "gated"), [(2, False), (9, False), (9, True)])
def test_factored_system_solves_the_dense_system(P, gated):
    X, y = _data(n=20, d=2, seed=4)
    problem = ConvexReLUProblem(X, y, beta=0.1, arrangements=P, seed=4, gated=gated)
    rho = 0.7
    system = FactoredSystem(problem, rho)
    K, _, d = problem.shape
    cols = []
    for e in torch.eye(K * P * d, dtype=torch.float64):
        u = e.reshape(problem.shape)
        out = problem.adjoint(problem.forward(u)) + rho * u
        if not gated:
            out = out + rho * problem.gate_adjoint(problem.gate(u))
        cols.append(out.reshape(-1))
    M = torch.stack(cols, dim=1)
    r = torch.randn(
        problem.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(0)
    )
    expected = torch.linalg.solve(M, r.reshape(-1))
    torch.testing.assert_close(
        system.solve(r).reshape(-1), expected, rtol=1e-10, atol=1e-12
    )
    assert system.woodbury == (K * P * d > problem.n)


def test_recovered_network_reproduces_the_convex_objective():
    X, y = _data(n=20, seed=5)
    problem = ConvexReLUProblem(X, y, beta=1.0, arrangements=4, seed=5)
    sol = solve_convex_relu(problem, ConvexReLUADMM(rtol=1e-11, max_steps=20000))
    assert sol.success and sol.extras["constraint_violation"] < 1e-9
    net = recover_relu_network(sol)
    assert isinstance(net, torch.nn.Sequential)
    loss = network_objective(net, X, y, beta=1.0).item()
    assert loss == pytest.approx(sol.extras["objective"], rel=1e-8)
    # Balanced layers: each unit's weight decay equals beta times its block norm.
    first, second = net[0], net[2]
    unit = torch.cat([first.weight, first.bias[:, None]], dim=1)
    torch.testing.assert_close(
        unit.norm(dim=1) ** 2, second.weight[0] ** 2, rtol=1e-12, atol=1e-14
    )
    # From the array with the bias flag: the same network.
    again = recover_relu_network(sol.x, bias=True)
    torch.testing.assert_close(again(torch.from_numpy(X)), net(torch.from_numpy(X)))


def test_recovered_network_without_bias_and_all_zero():
    X, y = _data(seed=6)
    problem = ConvexReLUProblem(X, y, beta=0.2, arrangements=4, seed=6, bias=False)
    sol = solve_convex_relu(problem, ConvexReLUADMM(rtol=1e-11, max_steps=20000))
    net = recover_relu_network(sol)
    assert net[0].bias is None and net[0].in_features == 2
    loss = network_objective(net, X, y, beta=0.2).item()
    assert loss == pytest.approx(sol.extras["objective"], rel=1e-7)
    zero = recover_relu_network(np.zeros((2, 3, 3)), bias=True)
    assert network_objective(zero, X, y, 0.2).item() == pytest.approx(0.5 * y @ y)


def test_large_beta_gives_zero_network():
    X, y = _data(seed=7)
    beta = 10.0 * float(np.abs(X.T @ y).sum() + np.abs(y).sum())
    problem = ConvexReLUProblem(X, y, beta=beta, arrangements=4)
    sol = solve_convex_relu(problem)
    assert sol.success and np.abs(sol.x).max() == 0.0


def test_sample_arrangements_are_distinct_patterns_of_hyperplanes():
    X, _ = _data(n=30, d=3, seed=8)
    D = sample_arrangements(X, 10, seed=3)
    assert D.shape == (30, 10) and set(np.unique(D)) <= {0.0, 1.0}
    assert len({c.tobytes() for c in D.T}) == 10 and D.any(axis=0).all()
    np.testing.assert_array_equal(D, sample_arrangements(X, 10, seed=3))
    assert not np.array_equal(D, sample_arrangements(X, 10, seed=4))
    # Each column is 1[X g >= 0] for some g: a linear separator of the points.
    Xb = np.hstack([X, np.ones((30, 1))])
    for col in D.T:
        g, *_ = np.linalg.lstsq(Xb, 2 * col - 1, rcond=None)
        assert ((Xb @ g >= 0) == (col > 0)).mean() > 0.5
    # Few points admit few patterns: fewer columns, never a duplicate.
    few = sample_arrangements(np.array([[1.0], [2.0]]), 50, seed=0)
    assert 1 <= few.shape[1] < 50 and len({c.tobytes() for c in few.T}) == few.shape[1]


def test_given_arrangements_are_used_as_given():
    X, y = _data(seed=9)
    D = sample_arrangements(X, 5, seed=9)
    problem = ConvexReLUProblem(X, y, beta=0.1, arrangements=D)
    np.testing.assert_array_equal(problem.D.numpy(), D)
    torch.testing.assert_close(problem.S, 2 * problem.D - 1)


def test_max_steps_is_an_honest_status():
    X, y = _data(seed=10)
    problem = ConvexReLUProblem(X, y, beta=0.1, arrangements=5)
    with pytest.warns(ConvergenceWarning, match="MAX_STEPS"):
        sol = solve_convex_relu(problem, ConvexReLUADMM(max_steps=3), record=True)
    assert sol.status is Status.MAX_STEPS and not sol.success
    assert np.isfinite(sol.x).all() and len(sol.trace) == 3
    assert {"objective", "primal_residual", "dual_residual"} <= set(sol.trace.as_dict())


def test_nan_data_gives_nonfinite_input():
    X, y = _data(seed=11)
    X[0, 0] = np.nan
    problem = ConvexReLUProblem(X, y, beta=0.1, arrangements=3)
    with pytest.warns(ConvergenceWarning, match="NONFINITE_INPUT"):
        sol = solve_convex_relu(problem)
    assert sol.status is Status.NONFINITE_INPUT and sol.num_steps == 0


def test_array_kind_and_dtype_kept_and_inputs_unmutated():
    X, y = _data(seed=12)
    X0, y0 = X.copy(), y.copy()
    method = ConvexReLUADMM(rho=1.0, rtol=1e-4, max_steps=5000)
    sol = solve_convex_relu(ConvexReLUProblem(X, y, beta=0.5, arrangements=3), method)
    assert sol.success and isinstance(sol.x, np.ndarray) and sol.x.dtype == np.float64
    np.testing.assert_array_equal(X, X0)
    np.testing.assert_array_equal(y, y0)
    Xt = torch.tensor(X, dtype=torch.float32)
    yt = torch.tensor(y, dtype=torch.float32)
    sol32 = solve_convex_relu(
        ConvexReLUProblem(Xt, yt, beta=0.5, arrangements=3),
        ConvexReLUADMM(rho=1.0, rtol=1e-4, max_steps=5000),
    )
    assert sol32.success
    assert isinstance(sol32.x, torch.Tensor) and sol32.x.dtype == torch.float32
    np.testing.assert_allclose(sol32.x.numpy(), sol.x, atol=1e-2)


def test_group_soft_threshold_is_the_prox():
    x = torch.tensor([[3.0, 4.0], [0.0, 0.0], [0.6, 0.8]], dtype=torch.float64)
    out = group_soft_threshold(x, 1.0)
    torch.testing.assert_close(
        out, torch.tensor([[2.4, 3.2], [0.0, 0.0], [0.0, 0.0]], dtype=torch.float64)
    )


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"rho": 0.0}, r"rho must be > 0, got 0\.0"),
        ({"rho": -1.0}, r"rho must be > 0, got -1\.0"),
        ({"rho": float("nan")}, r"rho must be a finite number > 0"),
        ({"relaxation": 2.0}, r"relaxation must be in \(0, 2\), got 2\.0"),
        ({"adapt_every": 0}, r"adapt_every must be a positive int, got 0"),
        ({"adapt_factor": 1.0}, r"adapt_factor must be > 1, got 1\.0"),
        ({"rtol": -1.0}, r"rtol must be >= 0, got -1\.0"),
    ],
)
def test_admm_bad_hyperparameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ConvexReLUADMM(**kwargs)


def test_bad_problem_input():
    X, y = _data()
    with pytest.raises(
        ValueError, match=r"P \(number of arrangements\) must be an int >= 1, got 0"
    ):
        ConvexReLUProblem(X, y, beta=0.1, arrangements=0)
    with pytest.raises(ValueError, match=r"P \(number of arrangements\).*got -3"):
        sample_arrangements(X, -3)
    with pytest.raises(
        ValueError, match=r"y must have shape \(24,\) to match X \(24, 2\), got \(23,\)"
    ):
        ConvexReLUProblem(X, y[:-1], beta=0.1)
    with pytest.raises(ValueError, match=r"X must be 2-D"):
        ConvexReLUProblem(y, y, beta=0.1)
    with pytest.raises(ValueError, match=r"beta must be a finite number > 0, got 0"):
        ConvexReLUProblem(X, y, beta=0)
    with pytest.raises(
        ValueError, match=r"arrangements must be an int P >= 1 or an \(n, P\)"
    ):
        ConvexReLUProblem(X, y, beta=0.1, arrangements=np.ones((5, 2)))
    with pytest.raises(ValueError, match=r"arrangements must hold only 0 and 1"):
        ConvexReLUProblem(X, y, beta=0.1, arrangements=np.full((24, 2), 0.5))


def test_bad_solver_input():
    X, y = _data()
    problem = ConvexReLUProblem(X, y, beta=0.1, arrangements=3)
    with pytest.raises(
        ValueError, match=r"ConvexReLUFISTA solves the gated program only"
    ):
        solve_convex_relu(problem, ConvexReLUFISTA())
    with pytest.raises(
        ValueError, match=r"x0 must have shape \(2, 3, 3\), got \(3, 3\)"
    ):
        solve_convex_relu(problem, x0=np.zeros((3, 3)))
    with pytest.raises(TypeError, match=r"problem must be a ConvexReLUProblem"):
        solve_convex_relu((X, y))  # type: ignore[arg-type]
    gated = ConvexReLUProblem(X, y, beta=0.1, arrangements=3, gated=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        sol = solve_convex_relu(gated, ConvexReLUFISTA(max_steps=2))
    with pytest.raises(ValueError, match=r"gated-ReLU solution has no equivalent ReLU"):
        recover_relu_network(sol)
    with pytest.raises(ValueError, match=r"bias must be given"):
        recover_relu_network(np.zeros((2, 3, 3)))


@pytest.mark.parametrize(
    "gated",
    [
        pytest.param(True, id="gated-rfista"),
        # pyscnn's AL takes ~25 s on this tiny problem (loaded machine).
        pytest.param(False, id="relu-al", marks=pytest.mark.slow),
    ],
)
def test_pyscnn_reaches_the_same_optimum(gated):
    """pyscnn (not in the anchors extra: its torchvision requirement pulls a CUDA
    torch) on the same gates: its objective ``||.||^2 / (2n) + lam R`` with
    ``lam = beta / n`` is ours divided by ``n``."""
    pytest.importorskip("scnn.optimize")
    from scnn.metrics import Metrics
    from scnn.models import ConvexGatedReLU, ConvexReLU
    from scnn.optimize import optimize_model
    from scnn.regularizers import NeuronGL1
    from scnn.solvers import AL, RFISTA

    X, y = _data(n=30, seed=13)
    n, beta = 30, 0.5
    Xb = np.hstack([X, np.ones((n, 1))])
    G = np.random.default_rng(13).standard_normal((3, 5))
    D = (Xb @ G >= 0).astype(np.float64)
    problem = ConvexReLUProblem(X, y, beta=beta, arrangements=D, gated=gated)
    method = (
        ConvexReLUFISTA(rtol=1e-10)
        if gated
        else ConvexReLUADMM(rho=1.0, rtol=1e-10, max_steps=20000)
    )
    ours = solve_convex_relu(problem, method)
    assert ours.success
    model = ConvexGatedReLU(G, c=1) if gated else ConvexReLU(G, c=1)
    solver = (
        RFISTA(model, tol=1e-10)
        if gated
        else AL(model, tol=1e-10, constraint_tol=1e-10)
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fitted, _ = optimize_model(
            model,
            solver,
            Metrics(),
            Xb,
            y,
            regularizer=NeuronGL1(beta / n),
            unitize_data=False,
            dtype="float64",
            return_convex=True,
        )
    # pyscnn may reorder its gates: score its model by its own forward pass.
    residual = fitted(Xb).reshape(-1) - y
    norms = sum(np.linalg.norm(p, axis=-1).sum() for p in fitted.parameters[:2])
    theirs = 0.5 * residual @ residual + beta * norms
    if gated:
        assert theirs == pytest.approx(ours.extras["objective"], rel=1e-6)
    else:
        # pyscnn's AL stops on its own KKT test: 3.93911 against the optimum
        # 3.93887 (cvxpy + Clarabel and ours agree to 1e-9 here).
        p_star = cvxpy_optimum(problem)
        assert ours.extras["objective"] == pytest.approx(p_star, rel=1e-6)
        assert p_star * (1 - 1e-6) <= theirs <= p_star * (1 + 1e-4)


@pytest.mark.gpu
def test_cuda_tensors_stay_on_the_device():
    X, y = _data(seed=14)
    Xc = torch.tensor(X, device="cuda")
    yc = torch.tensor(y, device="cuda")
    problem = ConvexReLUProblem(Xc, yc, beta=1.0, arrangements=3)
    sol = solve_convex_relu(problem, ConvexReLUADMM(rho=1.0, rtol=1e-8))
    assert sol.success and sol.x.device.type == "cuda"
    net = recover_relu_network(sol)
    assert next(net.parameters()).device.type == "cuda"
    loss = network_objective(net, Xc, yc, beta=1.0).item()
    assert loss == pytest.approx(sol.extras["objective"], rel=1e-6)
    cpu = solve_convex_relu(
        ConvexReLUProblem(X, y, beta=1.0, arrangements=3),
        ConvexReLUADMM(rho=1.0, rtol=1e-8),
    )
    np.testing.assert_allclose(sol.x.cpu().numpy(), cpu.x, atol=1e-6)
