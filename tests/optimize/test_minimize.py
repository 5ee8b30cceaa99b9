"""The DESIGN.md section 6 battery for ``minimize`` and every optimize method.

A catalogue of problems crossed with a registry of method configurations. Every
pair is run: one that converges is checked against scipy's optimum; a
configuration the problem cannot serve must raise its ValueError (message
checked); a real failure runs the solver and its failure mode (status, warning,
what the iterate still satisfies) is asserted. Every method also gets the
contract checks (max_steps=1, NaN input, unmutated inputs, dtype/kind preserved,
reproducibility, error configurations).
"""

from __future__ import annotations

import dataclasses
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
import scipy.optimize as so
import torch

from itersolve import (
    ConvergenceError,
    ConvergenceWarning,
    LinearOperator,
    Objective,
    Status,
)
from itersolve.linear import CG, MINRES, inner_solve, linear_solve
from itersolve.optimize import (
    DiagonalPlusRankOne,
    GradientDescent,
    HeavyBall,
    Nesterov,
    Newton,
    RegularizedNewton,
    SmoothProblem,
    TripleMomentum,
    fisher_rank_one,
    minimize,
    torch_momentum_parameters,
)
from itersolve.problems import (
    LeastSquares,
    Logistic,
    LogSumExp,
    Rosenbrock,
    Softmax,
    lessard_counterexample,
    quadratic_logspaced,
    synthetic_classification,
)

F64 = torch.float64


@dataclass(frozen=True)
class Case:
    name: str
    build: Callable[[], Any]


def _logistic():
    X, y = synthetic_classification(120, 5, condition_number=10.0, seed=1)
    return Logistic(X, y, l2=1e-2)


def _softmax():
    X, y = synthetic_classification(120, 4, n_classes=3, condition_number=10.0, seed=2)
    return Softmax(X, y, l2=1e-2)


def _least_squares():
    g = torch.Generator().manual_seed(3)
    A = torch.randn(30, 6, generator=g, dtype=F64)
    return LeastSquares(A, torch.randn(30, generator=g, dtype=F64), l2=0.1)


CATALOGUE = [
    Case("quadratic", lambda: quadratic_logspaced(12, 50.0)),
    Case("least_squares", _least_squares),
    Case("logistic", _logistic),
    Case("softmax", _softmax),
    Case("logsumexp", lambda: LogSumExp.random(40, 4, mu=0.5, l2=0.05)),
    Case("rosenbrock", lambda: Rosenbrock(4)),
    Case("lessard", lessard_counterexample),
]


@dataclass(frozen=True)
class Config:
    name: str
    make: Callable[[], Any]
    hide_constants: bool = False
    """Pass ``problem.objective()`` so L/mu are unknown to the method."""
    xtol: float = 1e-6


REGISTRY = [
    Config("gd", lambda: GradientDescent(rtol=1e-9, max_steps=20000)),
    # Armijo compares function values: it resolves ||g|| only to ~sqrt(eps).
    Config(
        "gd-armijo",
        lambda: GradientDescent(rtol=1e-6, line_search="armijo", max_steps=5000),
        xtol=1e-4,
    ),
    Config(
        "gd-backtracking", lambda: GradientDescent(rtol=1e-9, max_steps=20000), True
    ),
    Config("heavy-ball", lambda: HeavyBall(rtol=1e-9, max_steps=5000)),
    Config("nesterov", lambda: Nesterov(rtol=1e-9, max_steps=5000)),
    Config(
        "nesterov-restart",
        lambda: Nesterov(rtol=1e-9, restart="gradient", max_steps=5000),
        True,
    ),
    Config(
        "nesterov-function-restart",
        lambda: Nesterov(rtol=1e-9, restart="function", momentum="t-sequence"),
    ),
    Config("tmm", lambda: TripleMomentum(rtol=1e-9, max_steps=5000)),
    Config("newton", lambda: Newton(rtol=1e-10)),
    Config("newton-cg", lambda: Newton(rtol=1e-10, linear_solver=CG(rtol=0.5))),
    Config("regnewton", lambda: RegularizedNewton(rtol=1e-10, atol=0.0)),
    Config(
        "regnewton-gn",
        lambda: RegularizedNewton(rtol=1e-10, atol=0.0, hessian="gauss_newton"),
    ),
    Config(
        "regnewton-fisher",
        lambda: RegularizedNewton(
            rtol=1e-10, atol=0.0, hessian="fisher", max_steps=3000
        ),
    ),
    Config(
        "regnewton-cg",
        lambda: RegularizedNewton(rtol=1e-10, atol=0.0, linear_solver=CG(rtol=1e-10)),
    ),
    Config(
        "regnewton-fixed-gamma",
        lambda: RegularizedNewton(rtol=1e-10, atol=0.0, adaptive=False, gamma0=1.0),
    ),
]


def _no_approximation(problem: str, kind: str, available: str) -> str:
    return rf"{problem} has no Hessian approximation '{kind}'; available: " + re.escape(
        available
    )


# (case, config) -> the ValueError's message: configurations the problem cannot
# serve (no Gauss-Newton / Fisher model, no L and mu for a method that needs them).
UNSUPPORTED = {
    ("quadratic", "regnewton-gn"): _no_approximation("Quadratic", "gauss_newton", "[]"),
    ("quadratic", "regnewton-fisher"): _no_approximation("Quadratic", "fisher", "[]"),
    # Gauss-Newton models but no Fisher one.
    **{
        (case, "regnewton-fisher"): _no_approximation(
            problem, "fisher", "['gauss_newton']"
        )
        for case, problem in (
            ("least_squares", "LeastSquares"),
            ("softmax", "Softmax"),
            ("logsumexp", "LogSumExp"),
            ("rosenbrock", "Rosenbrock"),
        )
    },
    ("lessard", "regnewton-gn"): _no_approximation(
        "LessardCounterexample", "gauss_newton", "[]"
    ),
    ("lessard", "regnewton-fisher"): _no_approximation(
        "LessardCounterexample", "fisher", "[]"
    ),
    # Rosenbrock is not convex: there is no mu > 0 to tune momentum with.
    ("rosenbrock", "heavy-ball"): r"HeavyBall needs L and mu > 0 .*L=None, mu=None",
    ("rosenbrock", "tmm"): r"TripleMomentum needs L and mu > 0 .*L=None, mu=None",
}


def _cycles(problem, sol, trace) -> None:
    """Tuned heavy ball cycles on Lessard's function (Lessard, Recht & Packard
    2016): the gradient never shrinks and the objective is not monotone."""
    g0 = float(torch.linalg.vector_norm(problem.grad(problem.x0())))
    assert np.asarray(trace["grad_norm"])[-100:].min() > 0.1 * g0
    assert np.any(np.diff(np.asarray(trace["objective"])) > 0)


def _slow_descent(problem, sol, trace) -> None:
    """Armijo GD on the Rosenbrock valley: monotone descent, still far from the
    minimiser (1, ..., 1) after the budget."""
    f = np.asarray(trace["objective"])
    assert np.all(np.diff(f) <= 0) and f[-1] < float(problem.value(problem.x0()))
    assert np.abs(sol.x.numpy() - 1.0).max() > 0.1


def _linear_rate(problem, sol, trace) -> None:
    """The Gauss-Newton model drops -p p^T per sample and with it the cross-class
    coupling (the W -> W + v 1^T direction is curved only by l2): convergence
    is linear and slow, not quadratic, yet heads for the optimum."""
    g = np.asarray(trace["grad_norm"])
    rate = (g[-1] / g[-101]) ** (1 / 100)
    assert 0.9 < rate < 1.0
    np.testing.assert_allclose(sol.x.numpy(), _reference(problem), atol=1e-3)


@dataclass(frozen=True)
class Failure:
    status: Status
    check: Callable[[Any, Any, Any], None]


# (case, config) -> the failure it really has, checked on the finished run.
FAILURES = {
    ("lessard", "heavy-ball"): Failure(Status.MAX_STEPS, _cycles),
    ("rosenbrock", "gd-armijo"): Failure(Status.MAX_STEPS, _slow_descent),
    ("softmax", "regnewton-gn"): Failure(Status.MAX_STEPS, _linear_rate),
}


def _reference(problem) -> np.ndarray:
    shape = problem.shape

    def fun(w):
        f, g = problem.value_and_grad(torch.from_numpy(w.reshape(shape)))
        return float(f), g.reshape(-1).numpy()

    def hess(w):
        return problem.hessian(torch.from_numpy(w.reshape(shape))).numpy()

    x0 = problem.x0().reshape(-1).numpy()
    res = so.minimize(
        fun, x0, jac=True, hess=hess, method="trust-exact", options={"gtol": 1e-12}
    )
    return res.x.reshape(shape)


def _pairs(keep: Callable[[tuple[str, str]], bool]) -> list[Any]:
    return [
        pytest.param(case, config, id=f"{case.name}-{config.name}")
        for case in CATALOGUE
        for config in REGISTRY
        if keep((case.name, config.name))
    ]


def _expected_to_converge(pair: tuple[str, str]) -> bool:
    return pair not in UNSUPPORTED and pair not in FAILURES


def test_every_pair_has_one_expectation():
    names = {(c.name, r.name) for c in CATALOGUE for r in REGISTRY}
    assert set(UNSUPPORTED) <= names and set(FAILURES) <= names
    assert not set(UNSUPPORTED) & set(FAILURES)


@pytest.mark.parametrize(("case", "config"), _pairs(_expected_to_converge))
def test_converges_and_agrees_with_scipy(case, config):
    problem = case.build()
    target = problem.objective() if config.hide_constants else problem
    sol = minimize(target, problem.x0(), config.make())
    assert sol.success, f"{sol.status}: {sol.num_steps} steps"
    x_ref = _reference(problem)
    np.testing.assert_allclose(sol.x.numpy(), x_ref, rtol=config.xtol, atol=config.xtol)


@pytest.mark.parametrize(("case", "config"), _pairs(lambda p: p in UNSUPPORTED))
def test_unsupported_configuration_raises(case, config):
    problem = case.build()
    target = problem.objective() if config.hide_constants else problem
    with pytest.raises(ValueError, match=UNSUPPORTED[case.name, config.name]):
        minimize(target, problem.x0(), config.make())


@pytest.mark.parametrize(("case", "config"), _pairs(lambda p: p in FAILURES))
def test_real_failure_reports_its_status(case, config):
    failure = FAILURES[case.name, config.name]
    problem = case.build()
    target = problem.objective() if config.hide_constants else problem
    with pytest.warns(ConvergenceWarning, match=failure.status.name):
        sol = minimize(target, problem.x0(), config.make(), record=True)
    assert sol.status is failure.status and not sol.success
    assert failure.status.name.lower() in sol.message.lower()
    assert torch.isfinite(sol.x).all()
    failure.check(problem, sol, sol.trace)


@pytest.mark.parametrize("config", REGISTRY, ids=lambda c: c.name)
def test_float32_converges_loosely(config):
    if config.name in ("regnewton-gn", "regnewton-fisher"):
        problem = _logistic().to(torch.float32)
    else:
        problem = quadratic_logspaced(12, 50.0, dtype=torch.float32)
    method = config.make()
    # Armijo compares float32 values: it resolves ||g|| to ~sqrt(eps32) only.
    rtol = 1e-2 if config.name == "gd-armijo" else 1e-4
    method = dataclasses.replace(method, rtol=rtol)
    target = problem.objective() if config.hide_constants else problem
    sol = minimize(target, problem.x0(), method)
    assert sol.success and sol.x.dtype == torch.float32
    g0 = float(torch.linalg.vector_norm(problem.grad(problem.x0())))
    grad = problem.grad(sol.x)
    assert float(torch.linalg.vector_norm(grad)) <= 2 * rtol * g0


F32_DEFAULT_CASES = [
    ("quadratic", Newton),
    ("quadratic", RegularizedNewton),
    ("quadratic", Nesterov),
    ("quadratic", GradientDescent),
    ("quadratic", HeavyBall),
    ("quadratic", TripleMomentum),
    ("logistic", Newton),
    ("logistic", RegularizedNewton),
    ("rosenbrock", Newton),
    ("rosenbrock", RegularizedNewton),
]


@pytest.mark.parametrize(
    ("case", "cls"), F32_DEFAULT_CASES, ids=lambda v: getattr(v, "__name__", v)
)
def test_float32_twin_with_default_tolerances_ends_success(case, cls):
    build = {c.name: c.build for c in CATALOGUE}[case]
    problem = build()
    if case == "rosenbrock":
        problem = Rosenbrock(5)  # issue 21's case: Newton froze at step 16
    reference = minimize(problem, problem.x0(), cls(), throw=True)
    p32 = problem.to(dtype=torch.float32)
    sol = minimize(p32, p32.x0(), cls(), throw=True)
    assert sol.success and sol.x.dtype == torch.float32
    # float32 answers within float32's reach of a minimizer (sqrt(eps32) ~ 3e-4)
    err = float((sol.x.double() - reference.x).abs().max())
    assert err <= 1e-3 * max(1.0, float(reference.x.abs().max()))


def test_default_rtol_follows_the_dtype():
    from itersolve.optimize._first_order import default_rtol

    assert Newton().rtol is None and Nesterov().rtol is None
    assert default_rtol(1e-8, torch.float64) == 1e-8
    assert default_rtol(1e-8, torch.float32) == 10 * torch.finfo(torch.float32).eps
    with pytest.raises(ValueError, match="rtol must be >= 0"):
        Newton(rtol=-1.0)


# -- the contract battery (one quick problem per method) -----------------------


def test_bad_inputs_to_minimize():
    problem = _softmax()
    with pytest.raises(ValueError, match=r"x0 must have shape \(4, 3\)"):
        minimize(problem, np.zeros(12))
    with pytest.raises(ValueError, match="must return a scalar"):
        minimize(lambda x: x**2, torch.zeros(3, dtype=F64))
    with pytest.raises(TypeError, match="method must be"):
        minimize(problem, problem.x0(), "newton")
    with pytest.raises(ValueError, match="does not accept constraints"):
        minimize(problem, problem.x0(), Newton(), constraints=[lambda x: x.sum()])
    with pytest.raises(ValueError, match=r"mu must be <= L"):
        minimize(problem, problem.x0(), Nesterov(mu=1e6))
    with pytest.raises(ValueError, match="TripleMomentum needs L and mu"):
        minimize(lambda x: (x**2).sum(), torch.ones(2, dtype=F64), TripleMomentum())
    with pytest.raises(ValueError, match="HeavyBall needs L and mu"):
        minimize(lambda x: (x**2).sum(), torch.ones(2, dtype=F64), HeavyBall(L=2.0))
    with pytest.raises(ValueError, match=r"needs a SmoothProblem \(itersolve"):
        minimize(
            lambda x: (x**2).sum(), torch.ones(2, dtype=F64), Newton(hessian="fisher")
        )


class _UserRosenbrock(SmoothProblem):
    """A user's own problem: value and gradient only, one named approximation."""

    shape, dtype, device = (2,), F64, torch.device("cpu")
    approximations = ("gauss_newton",)

    def value(self, x):
        return 100.0 * (x[1] - x[0] ** 2) ** 2 + (1.0 - x[0]) ** 2

    def grad(self, x):
        t = x[1] - x[0] ** 2
        return torch.stack([-400.0 * x[0] * t - 2.0 * (1.0 - x[0]), 200.0 * t])

    def gauss_newton(self, x):
        J = torch.stack(
            [
                torch.stack([-20.0 * x[0], torch.ones_like(x[0]) * 10.0]),
                torch.stack([-torch.ones_like(x[0]), torch.zeros_like(x[0])]),
            ]
        )
        return 2.0 * J.T @ J


def test_user_smooth_problem_gets_autograd_hessians_and_its_approximation():
    problem = _UserRosenbrock()
    x0 = torch.tensor([-1.2, 1.0], dtype=F64)
    exact = minimize(problem, x0, Newton(rtol=1e-10))
    assert exact.success and exact.stats["hessians"] == exact.num_steps
    torch.testing.assert_close(exact.x, torch.ones(2, dtype=F64))
    gn = minimize(problem, x0, RegularizedNewton(hessian="gauss_newton", max_steps=500))
    assert gn.success
    torch.testing.assert_close(gn.x, torch.ones(2, dtype=F64), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match=r"_UserRosenbrock has dtype torch.float64"):
        minimize(problem, x0.float())
    with pytest.raises(TypeError, match="abstract"):
        type("Incomplete", (SmoothProblem,), {"value": lambda self, x: x})()


def test_moved_names_resolve_with_a_deprecation_warning():
    import itersolve.optimize as optimize
    import itersolve.optimize._minimize as front_door
    import itersolve.problems as problems

    for module, name, new in [
        (problems, "SmoothProblem", optimize.SmoothProblem),
        (problems, "ProblemObjective", optimize.ProblemObjective),
        (front_door, "OptimizationProblem", optimize.OptimizationProblem),
    ]:
        with pytest.warns(DeprecationWarning, match=f"{name} is deprecated"):
            assert getattr(module, name) is new
    with pytest.raises(AttributeError, match="no attribute 'Nothing'"):
        _ = problems.Nothing


ROSEN_X0 = np.array([1.3, 0.7, 0.8, 1.9, 1.2])


def _rosen_value_and_grad(x):
    return so.rosen(x), so.rosen_der(x)


@pytest.mark.parametrize(
    ("fun", "jac"),
    [(so.rosen, so.rosen_der), (_rosen_value_and_grad, True), (so.rosen, None)],
    ids=["jac-callable", "jac-true", "finite-differences"],
)
def test_numpy_objective_agrees_with_scipy_bfgs(fun, jac):
    reference = so.minimize(
        so.rosen, ROSEN_X0, method="BFGS", jac=so.rosen_der, options={"gtol": 1e-10}
    )
    sol = minimize(fun, ROSEN_X0, jac=jac)
    assert sol.success and isinstance(sol.x, np.ndarray)
    np.testing.assert_allclose(sol.x, reference.x, atol=1e-6)
    n = ROSEN_X0.size
    if jac is None:
        # every gradient 2 n calls; every Hessian 2 n finite-difference gradients
        expected = sol.stats["values"] + 2 * n * (
            sol.stats["grads"] + 2 * n * sol.stats["hessians"]
        )
        assert sol.stats["fevals"] == expected and sol.stats["jevals"] == 0
    elif jac is True:
        # one call serves a value_and_grad; 2 n calls serve a Hessian
        hessian_calls = 2 * n * sol.stats["hessians"]
        assert sol.stats["jevals"] == 0
        assert hessian_calls + sol.stats["grads"] <= sol.stats["fevals"]
        assert sol.stats["fevals"] <= (
            hessian_calls + sol.stats["grads"] + sol.stats["values"]
        )
    else:
        assert sol.stats["jevals"] == sol.stats["grads"] + 2 * n * sol.stats["hessians"]
    assert np.array_equal(ROSEN_X0, [1.3, 0.7, 0.8, 1.9, 1.2])


def test_numpy_function_without_jac_is_told_apart_from_torch():
    # np.sum calls x.sum(axis=...), which a torch tensor rejects: a NumPy function
    sol = minimize(lambda x: np.sum((x - 2.0) ** 2), torch.zeros(3, dtype=F64))
    assert sol.success and isinstance(sol.x, torch.Tensor)
    torch.testing.assert_close(sol.x, torch.full((3,), 2.0, dtype=F64))
    assert sol.stats["fevals"] > 0


def test_torch_objective_that_breaks_the_graph_gets_one_clear_error():
    def detached(x):
        return ((x.detach() - 1.0) ** 2).sum()

    def rebuilt(x):
        return torch.tensor(float(((x - 1.0) ** 2).sum()))

    for fun in (detached, rebuilt, Objective(detached)):
        with pytest.raises(ValueError, match="without an autograd graph back to x"):
            minimize(fun, torch.zeros(3, dtype=F64))


def test_bad_numpy_inputs_raise():
    with pytest.raises(ValueError, match="x0 must have at least one entry"):
        minimize(so.rosen, np.zeros(0))
    with pytest.raises(ValueError, match="x0 must have at least one entry"):
        minimize(lambda x: (x**2).sum(), torch.zeros(2, 0))
    with pytest.raises(ValueError, match="jac= is for a NumPy function"):
        minimize(Rosenbrock(2), torch.zeros(2, dtype=F64), jac=True)
    with pytest.raises(TypeError, match="jac must be True, a callable or None"):
        minimize(so.rosen, np.zeros(2), jac="2-point")
    with pytest.raises(ValueError, match=r"must return \(value, gradient\)"):
        minimize(so.rosen, np.zeros(2), jac=True)
    with pytest.raises(ValueError, match="the gradient must have 2 entries"):
        minimize(so.rosen, np.zeros(2), jac=lambda x: np.zeros(3))
    with pytest.raises(ValueError, match="could not be evaluated at x0"):
        minimize(lambda x: x["key"], np.zeros(2))


def _nan_beyond(x: torch.Tensor) -> torch.Tensor:
    value = ((x - 10.0) ** 2).sum()
    return torch.where(x.sum() < 4.0, value, torch.full_like(value, float("nan")))


@pytest.mark.parametrize(
    "method",
    [
        GradientDescent(L=2.0, max_steps=100),
        HeavyBall(L=2.0, mu=2.0, max_steps=100),
        Nesterov(L=2.0, mu=2.0, max_steps=100),
        TripleMomentum(L=2.0, mu=1.0, max_steps=100),
    ],
    ids=lambda m: type(m).__name__,
)
def test_nan_objective_during_run_is_nonfinite_with_last_finite_iterate(method):
    with pytest.warns(ConvergenceWarning, match="NONFINITE"):
        sol = minimize(_nan_beyond, torch.zeros(2, dtype=F64), method)
    assert sol.status is Status.NONFINITE
    assert torch.isfinite(sol.x).all() and float(sol.x.sum()) < 4.0
    with pytest.raises(ConvergenceError):
        minimize(_nan_beyond, torch.zeros(2, dtype=F64), method, throw=True)


def test_plain_function_and_objective_inputs_keep_shape():
    target = torch.arange(6, dtype=F64).reshape(2, 3)

    def f(x):
        return ((x - target) ** 2).sum() + 0.1 * (x**4).sum()

    sol = minimize(f, torch.zeros(2, 3, dtype=F64), Newton(rtol=1e-12))
    assert sol.x.shape == (2, 3) and sol.success
    grad = torch.func.grad(f)(sol.x)
    assert float(grad.abs().max()) < 1e-9
    assert (
        sol.stats["grads"] >= sol.num_steps and sol.stats["hessians"] == sol.num_steps
    )
    other = minimize(Objective(f), np.zeros((2, 3)), RegularizedNewton())
    np.testing.assert_allclose(other.x, sol.x.numpy(), atol=1e-8)


def test_default_method_is_newton_for_small_problems():
    problem = _logistic()
    sol = minimize(problem, problem.x0())
    assert sol.success and "factorizations" in sol.stats


# -- method-specific checks -------------------------------------------------------


def test_nesterov_matches_torch_sgd_nesterov():
    q = quadratic_logspaced(10, 25.0)
    beta = (5.0 - 1.0) / (5.0 + 1.0)
    iterates = [q.x0()]
    with pytest.warns(ConvergenceWarning, match="MAX_STEPS"):
        minimize(
            q,
            q.x0(),
            Nesterov(L=q.L, mu=q.mu, rtol=1e-14, max_steps=30),
            callback=lambda info: (
                iterates.append(info.x + beta * (info.x - info.state.x_prev)) or False
            ),
        )
    w = q.x0().requires_grad_(True)
    opt = torch.optim.SGD([w], **torch_momentum_parameters(q.L, beta))
    torch_points = []
    for _ in range(30):
        w.grad = q.grad(w.detach())
        opt.step()
        torch_points.append(w.detach().clone())
    # torch's parameter is Nesterov's extrapolated point y_k.
    for ours, theirs in zip(iterates[1:26], torch_points[:25], strict=True):
        torch.testing.assert_close(ours, theirs, rtol=1e-10, atol=1e-12)


def _fitted_rate(errors):
    seg = np.log(np.asarray(errors[-100:]))
    return float(np.exp(np.polyfit(np.arange(len(seg)), seg, 1)[0]))


def test_triple_momentum_and_heavy_ball_rates_on_a_quadratic():
    q = quadratic_logspaced(40, 100.0)
    rates = {}
    for name, method in [
        ("hb", HeavyBall(rtol=1e-13, max_steps=300)),
        ("tmm", TripleMomentum(rtol=1e-13, max_steps=300)),
    ]:
        errors = []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            minimize(
                q,
                q.x0(),
                method,
                callback=lambda i, errors=errors: (
                    errors.append(float(torch.linalg.vector_norm(i.x - q.x_star)))
                    or errors[-1] < 1e-11 * float(torch.linalg.vector_norm(q.x_star))
                ),
            )
        rates[name] = _fitted_rate(errors)
    assert 1 - rates["hb"] == pytest.approx(2 / 11, rel=0.1)
    assert 1 - rates["tmm"] == pytest.approx(0.1, rel=0.1)


def test_heavy_ball_cycles_on_lessard_while_nesterov_and_tmm_converge():
    p = lessard_counterexample()
    with pytest.warns(ConvergenceWarning, match="MAX_STEPS"):
        hb = minimize(p, p.x0(), HeavyBall(atol=1e-10, rtol=0.0, max_steps=2000))
    tail = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        minimize(
            p,
            p.x0(),
            HeavyBall(atol=1e-10, rtol=0.0, max_steps=2000),
            callback=lambda i: tail.append(abs(float(i.x[0]))) or False,
        )
    assert hb.status is Status.MAX_STEPS and max(tail[-100:]) > 0.1
    for method in (
        Nesterov(atol=1e-10, rtol=0.0),
        TripleMomentum(atol=1e-10, rtol=0.0),
    ):
        sol = minimize(p, p.x0(), method)
        assert sol.success and abs(float(sol.x[0])) < 1e-9


def test_newton_modified_hessian_fallback_on_indefinite_start():
    p = Rosenbrock(2)
    x0 = torch.tensor([0.0, 1.0], dtype=F64)  # Hessian indefinite here
    assert torch.linalg.eigvalsh(p.hessian(x0)).min() < 0
    sol = minimize(p, x0, Newton(rtol=1e-12))
    assert sol.success and sol.stats["modified_hessians"] >= 1
    torch.testing.assert_close(sol.x, torch.ones(2, dtype=F64))


def test_regularized_newton_few_inner_trials_on_logistic():
    problem = _logistic()
    sol = minimize(problem, problem.x0(), RegularizedNewton(atol=1e-8), record=True)
    assert sol.success and sol.num_steps <= 30
    assert sol.stats["inner_steps"] / sol.num_steps <= 2.0
    assert sol.stats["factorizations"] == sol.stats["inner_steps"]
    gammas = sol.trace["gamma"]
    assert gammas[-1] > gammas[0]  # gamma persists and grows near the solution


def test_rank_one_fast_path_equals_dense_solve():
    b = torch.linspace(-1.0, 2.0, 8, dtype=F64)

    def f(x):
        return ((x - b) ** 2).sum() ** 2 / 4  # ||u||^4 / 4, u = x - b

    obj = Objective(f)

    def scale(x):
        return 2.0 / float(((x - b) ** 2).sum()) ** 2  # (p - 2) / ||u||^p, p = 4

    def base(x):
        return float(((x - b) ** 2).sum())

    def rank_one(x):
        approx = fisher_rank_one(obj, damping=0.0, scale=scale)(x)
        return DiagonalPlusRankOne(
            torch.full_like(x, base(x)), approx.u, approx.coefficient
        )

    x0 = torch.zeros(8, dtype=F64)
    fast = minimize(
        obj, x0, RegularizedNewton(hessian=rank_one, atol=1e-10, max_steps=200)
    )
    exact = minimize(Objective(f), x0, RegularizedNewton(atol=1e-10, max_steps=200))
    dense = minimize(
        Objective(f),
        x0,
        RegularizedNewton(
            hessian=lambda x: rank_one(x).dense(), atol=1e-10, max_steps=200
        ),
    )
    assert fast.success and exact.success and dense.success
    torch.testing.assert_close(fast.x, dense.x, rtol=1e-10, atol=1e-10)
    assert fast.num_steps == dense.num_steps
    # diag + rank one is exactly this function's Hessian.
    x = torch.linspace(0.0, 1.0, 8, dtype=F64)
    torch.testing.assert_close(rank_one(x).dense(), obj.hessian(x))


def test_regularized_newton_with_norm_matrix():
    problem = _logistic()
    diag = torch.linspace(0.5, 2.0, 5, dtype=F64)
    for B in (diag, torch.diag(diag)):
        sol = minimize(problem, problem.x0(), RegularizedNewton(B=B, atol=1e-9))
        assert sol.success
        np.testing.assert_allclose(sol.x.numpy(), _reference(problem), atol=1e-7)
    with pytest.raises(ValueError, match="B must have shape"):
        minimize(problem, problem.x0(), RegularizedNewton(B=torch.ones(3)))


# -- Krylov inner solves through the shared engine (issue 11) ------------------

# (outer steps, CG steps) of Newton-CG and of RegularizedNewton-CG with the inline
# truncated CG they ran before the move to itersolve.linear.inner_solve, recorded
# at commit 2e09166 on the catalogue problems with the registry configurations:
# the shared CG must take the same path (the minimizers agreed to 1e-15).
INLINE_CG_RECORD = {
    "quadratic": ((8, 52), (6, 72)),
    "least_squares": ((8, 18), (5, 30)),
    "logistic": ((6, 17), (7, 35)),
    "softmax": ((7, 23), (8, 60)),
    "logsumexp": ((5, 13), (4, 16)),
    "rosenbrock": ((52, 109), (43, 344)),
    "lessard": ((2, 2), (6, 7)),
}


def _config(name: str) -> Config:
    return next(c for c in REGISTRY if c.name == name)


@pytest.mark.parametrize("case", CATALOGUE, ids=lambda c: c.name)
def test_krylov_newton_methods_follow_the_inline_cg_path(case):
    problem = case.build()
    x_ref = _reference(problem)
    record = INLINE_CG_RECORD[case.name]
    runs = {}
    for name, (outer, krylov) in zip(
        ("newton-cg", "regnewton-cg"), record, strict=True
    ):
        sol = runs[name] = minimize(problem, problem.x0(), _config(name).make())
        assert sol.success, (name, sol.status)
        assert abs(sol.num_steps - outer) <= 1, (name, sol.num_steps, outer)
        assert abs(sol.stats["krylov_steps"] - krylov) <= 0.05 * krylov + 1
        # every operator application of the inner solves is one Hessian-vector
        # product (the shared CG confirms convergence on one more of them)
        assert sol.stats["matvecs"] == sol.stats["hvps"] >= sol.stats["krylov_steps"]
        np.testing.assert_allclose(sol.x.numpy(), x_ref, rtol=1e-8, atol=1e-8)
    if case.name == "rosenbrock":
        # indefinite Hessians on the way: truncated (Steihaug) directions
        assert runs["newton-cg"].stats["truncated_solves"] > 0


def test_shared_cg_stops_at_nonpositive_curvature_on_the_previous_iterate():
    g = torch.Generator().manual_seed(5)
    Qm, _ = torch.linalg.qr(torch.randn(8, 8, generator=g, dtype=F64))
    H = Qm @ torch.diag(torch.tensor([9.0, 7, 5, 3, 2, 1, -1, -4], dtype=F64)) @ Qm.T
    b = torch.randn(8, generator=g, dtype=F64)
    assert float(b @ H @ b) > 0  # positive curvature along the first direction
    stopped = inner_solve(CG(rtol=1e-12), H, b)
    assert stopped.status is Status.NOT_POSITIVE_DEFINITE and stopped.num_steps >= 2
    before = inner_solve(CG(rtol=1e-12), H, b, max_steps=stopped.num_steps - 1)
    assert before.status is Status.MAX_STEPS
    torch.testing.assert_close(stopped.x, before.x, rtol=0, atol=0)
    # the truncated direction is a descent direction for 0.5 x^T H x - b^T x
    assert float(stopped.x @ b) > 0


def test_truncated_newton_from_a_nonconvex_start_on_rosenbrock():
    p = Rosenbrock(2)
    x0 = torch.tensor([-0.474, 0.2322], dtype=F64)
    g = p.grad(x0)
    assert float(g @ p.hessian(x0) @ g) < 0  # negative curvature along -g itself
    iterates: list[torch.Tensor] = []

    def keep(info):
        iterates.append(info.x.clone())

    method = Newton(rtol=0.0, atol=1e-10, linear_solver=CG(rtol=0.5))
    sol = minimize(p, x0, method, record=True, callback=keep)
    assert sol.success and sol.stats["truncated_solves"] >= 1
    np.testing.assert_allclose(sol.x.numpy(), [1.0, 1.0], rtol=0, atol=1e-8)
    # the first step is steepest descent (Nocedal & Wright, Alg. 7.1)
    t = float(sol.trace["step_size"][0])
    torch.testing.assert_close(iterates[0], x0 - t * g, rtol=1e-15, atol=1e-15)
    # the inline CG (commit 2e09166, shift search) took 25 outer steps from here
    assert abs(sol.num_steps - 25) <= 1


def test_inner_cg_counts_the_matvecs_of_a_full_linear_solve():
    problem = _logistic()
    x0 = problem.x0()
    g = problem.grad(x0)
    n = g.numel()
    eta = min(0.5, float(torch.linalg.vector_norm(g)) ** 0.5)

    def hvp(v):
        return problem.hvp(x0, v)

    operator = LinearOperator(hvp, (n, n), dtype=F64)
    full = linear_solve(operator, -g, CG(rtol=eta))
    inner = inner_solve(CG(rtol=eta), hvp, -g)
    assert full.success and inner.status is Status.SUCCESS
    assert inner.stats["matvecs"] == full.stats["matvecs"] > full.num_steps
    torch.testing.assert_close(inner.x, full.x, rtol=1e-12, atol=1e-12)
    with pytest.warns(ConvergenceWarning, match="MAX_STEPS"):
        one = minimize(
            problem, x0, Newton(linear_solver=CG(rtol=0.5), max_steps=1, rtol=1e-12)
        )
    assert one.stats["krylov_steps"] == full.num_steps
    assert one.stats["matvecs"] == one.stats["hvps"] == full.stats["matvecs"]


def test_any_krylov_solver_object_serves_the_newton_methods():
    problem = _logistic()
    x_ref = _reference(problem)
    for method in (
        Newton(rtol=1e-10, linear_solver=MINRES(rtol=0.5)),
        RegularizedNewton(
            rtol=1e-10, atol=0.0, hessian="gauss_newton", linear_solver=CG(rtol=1e-10)
        ),
    ):
        sol = minimize(problem, problem.x0(), method)
        assert sol.success and sol.stats["matvecs"] > 0
        np.testing.assert_allclose(sol.x.numpy(), x_ref, rtol=1e-8, atol=1e-8)
    dense = minimize(
        problem,
        problem.x0(),
        RegularizedNewton(rtol=1e-10, atol=0.0, hessian="gauss_newton"),
    )
    assert abs(sol.num_steps - dense.num_steps) <= 1
