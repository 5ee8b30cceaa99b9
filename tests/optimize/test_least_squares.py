"""``least_squares`` with ``LevenbergMarquardt`` and ``GaussNewton``.

Answers are checked against ``scipy.optimize.least_squares(method="lm")`` run
to its tightest tolerances; float64 tight, float32 loose. Batched runs are
checked row by row against unbatched runs. Statuses and bad input follow
DESIGN.md section 3.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
import scipy.optimize as so
import torch

from itersolve import ConvergenceError, ConvergenceWarning, Status
from itersolve.optimize import GaussNewton, LevenbergMarquardt, least_squares

F64 = torch.float64
METHODS = [LevenbergMarquardt, GaussNewton]


@dataclass(frozen=True)
class Case:
    """A residual in NumPy and torch form, a start and whether ``r(x*) = 0``."""

    name: str
    numpy: Callable[[np.ndarray], np.ndarray]
    torch: Callable[[torch.Tensor], torch.Tensor]
    x0: tuple[float, ...]
    zero_residual: bool
    rtol: float = 1e-9
    """The float64 comparison's tolerances (see :data:`RTOL64`)."""
    atol: float = 0.0


def _rosenbrock() -> Case:
    return Case(
        "rosenbrock",
        lambda x: np.array([10 * (x[1] - x[0] ** 2), 1 - x[0]]),
        lambda x: torch.stack([10 * (x[1] - x[0] ** 2), 1 - x[0]]),
        (-1.2, 1.0),
        True,
    )


def _exponential() -> Case:
    # y = 2.5 exp(-1.3 t) + 0.5 plus noise: a nonzero residual at the solution
    t = np.linspace(0.0, 4.0, 40)
    y = 2.5 * np.exp(-1.3 * t) + 0.5 + 0.05 * np.random.default_rng(0).normal(size=40)
    tt, yy = torch.from_numpy(t), torch.from_numpy(y)
    return Case(
        "exponential",
        lambda p: p[0] * np.exp(-p[1] * t) + p[2] - y,
        lambda p: p[0] * torch.exp(-p[1] * tt.to(p.dtype)) + p[2] - yy.to(p.dtype),
        (1.0, 1.0, 0.0),
        False,
    )


def _exact_exponential() -> Case:
    # two exponentials sampled without noise: zero residual, 4 unknowns
    t = np.linspace(0.0, 3.0, 25)
    y = 1.5 * np.exp(-0.7 * t) + 0.8 * np.exp(-3.0 * t)
    tt, yy = torch.from_numpy(t), torch.from_numpy(y)

    def r_np(p: np.ndarray) -> np.ndarray:
        return p[0] * np.exp(-p[1] * t) + p[2] * np.exp(-p[3] * t) - y

    def r_torch(p: torch.Tensor) -> torch.Tensor:
        s = tt.to(p.dtype)
        return (
            p[0] * torch.exp(-p[1] * s) + p[2] * torch.exp(-p[3] * s) - yy.to(p.dtype)
        )

    return Case("two_exponentials", r_np, r_torch, (1.0, 0.5, 1.0, 2.0), True)


def _bounded_nonlinear() -> Case:
    # Brown & Dennis style: more residuals than unknowns, nonzero optimum
    t = np.arange(1, 11) / 5.0
    tt = torch.from_numpy(t)

    def r_np(x: np.ndarray) -> np.ndarray:
        return (x[0] + x[1] * t - np.exp(t)) ** 2 + (x[2] + x[3] * np.sin(t)) ** 2 - 1

    def r_torch(x: torch.Tensor) -> torch.Tensor:
        s = tt.to(x.dtype)
        return (
            (x[0] + x[1] * s - torch.exp(s)) ** 2
            + (x[2] + x[3] * torch.sin(s)) ** 2
            - 1
        )

    # From this far start ||g_0|| = 6.4e5 and lambda_min(J^T J) = 0.37 at the
    # solution, so a relative rule of 1e-9 allows an error of up to
    # ||g|| / lambda_min = 1.7e-3; an absolute gradient 1e-7 bounds it by 3e-7.
    return Case(
        "brown_dennis",
        r_np,
        r_torch,
        (25.0, 5.0, -5.0, -1.0),
        False,
        rtol=0.0,
        atol=1e-7,
    )


CASES = [_rosenbrock(), _exponential(), _exact_exponential(), _bounded_nonlinear()]


def _scipy(case: Case) -> np.ndarray:
    ref = so.least_squares(
        case.numpy, np.array(case.x0), method="lm", xtol=1e-15, ftol=1e-15, gtol=1e-15
    )
    return ref.x


def _gradient(case: Case, x: np.ndarray) -> float:
    xt = torch.tensor(x, dtype=F64)
    J = torch.func.jacrev(case.torch)(xt)
    return float(torch.linalg.vector_norm(J.T @ case.torch(xt)))


#: The float64 tolerance of the comparisons. Why not 1e-12: acceptance tests
#: ``f(x + h) < f(x)``, and on a nonzero-residual fit ``f`` carries a rounding
#: error of about ``m eps max|y| ||r||_1``, ~1e-15 on the exponential fit (40
#: points, ``|r_i|`` ~0.05); a step whose predicted decrease ``g^T (J^T J)^-1 g
#: / 2`` is below that cannot be told from noise, so the gradient cannot be
#: driven much under ``sqrt(1e-15 lambda_max(J^T J))`` ~1e-7 absolute, i.e. a
#: relative ``1e-10`` of ``||g_0||`` ~1e3.
RTOL64 = 1e-9


@pytest.mark.parametrize("method", METHODS, ids=lambda m: m.__name__)
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_float64_matches_scipy_lm(case: Case, method: Any) -> None:
    x0 = torch.tensor(case.x0, dtype=F64)
    sol = least_squares(case.torch, x0, method(rtol=case.rtol, atol=case.atol))
    assert sol.success, sol.message
    ref = _scipy(case)
    scale = max(1.0, float(np.abs(ref).max()))
    assert np.abs(sol.x.numpy() - ref).max() <= 1e-6 * scale
    # the rule held on a fresh evaluation at the returned x
    g0 = _gradient(case, np.array(case.x0))
    assert _gradient(case, sol.x.numpy()) <= max(case.rtol * g0, case.atol)


def test_gauss_newton_large_residual() -> None:
    # Brown-Dennis has a large residual at the optimum: Gauss-Newton converges
    # linearly (slowly) but the line search keeps it monotone and it gets there
    case = _bounded_nonlinear()
    sol = least_squares(case.torch, torch.tensor(case.x0, dtype=F64), GaussNewton())
    assert sol.success
    assert np.abs(sol.x.numpy() - _scipy(case)).max() <= 1e-4 * 25


@pytest.mark.parametrize("method", METHODS, ids=lambda m: m.__name__)
@pytest.mark.parametrize("case", CASES[:3], ids=lambda c: c.name)
def test_float32_loose(case: Case, method: Any) -> None:
    x0 = torch.tensor(case.x0, dtype=torch.float32)
    sol = least_squares(case.torch, x0, method())
    assert sol.x.dtype == torch.float32
    assert sol.status in (Status.SUCCESS, Status.STAGNATION), sol.message
    ref = _scipy(case)
    assert np.abs(sol.x.double().numpy() - ref).max() <= 2e-3 * max(
        1.0, float(np.abs(ref).max())
    )


@pytest.mark.parametrize("method", METHODS, ids=lambda m: m.__name__)
def test_numpy_residual_finite_differences_and_jac(method: Any) -> None:
    case = _exponential()
    ref = _scipy(case)
    x0 = np.array(case.x0)
    # forward differences are accurate to ~sqrt(eps): the default rtol
    sol = least_squares(case.numpy, x0, method())
    assert isinstance(sol.x, np.ndarray) and sol.success
    assert np.abs(sol.x - ref).max() <= 1e-5
    assert sol.stats["jevals"] == 0 and sol.stats["fevals"] > 3 * sol.num_steps
    t = np.linspace(0.0, 4.0, 40)

    def jac(p: np.ndarray) -> np.ndarray:
        e = np.exp(-p[1] * t)
        return np.stack([e, -p[0] * t * e, np.ones_like(t)], axis=1)

    exact = least_squares(case.numpy, x0, method(rtol=RTOL64), jac=jac)
    assert exact.success and np.abs(exact.x - ref).max() <= 1e-6
    assert exact.stats["jevals"] >= 1
    np.testing.assert_array_equal(x0, np.array(case.x0))  # not mutated


def test_torch_jacobian_modes_agree_with_jacrev() -> None:
    from itersolve.optimize import LeastSquaresProblem

    g = torch.Generator().manual_seed(0)
    A = torch.randn(3, 5, 4, dtype=F64, generator=g)  # m=5 > n=4: forward mode
    x = torch.randn(3, 4, dtype=F64, generator=g)

    def tall(z: torch.Tensor) -> torch.Tensor:
        return torch.sin(torch.einsum("bmn,bn->bm", A, z))

    def wide(z: torch.Tensor) -> torch.Tensor:  # m=2 < n=4: reverse mode
        return torch.stack([(z**2).sum(1), torch.prod(z, 1)], dim=1)

    for fun in (tall, wide):
        problem = LeastSquaresProblem(fun, (3, 4), True, True, None)
        J = problem.jacobian(x)
        full = torch.func.jacrev(fun)(x)  # (B, m, B, n), block diagonal
        for b in range(3):
            torch.testing.assert_close(J[b], full[b, :, b, :])


@pytest.mark.parametrize("method", METHODS, ids=lambda m: m.__name__)
def test_batched_rows_solve_independently(method: Any) -> None:
    t = torch.linspace(0.0, 3.0, 30, dtype=F64)
    a = torch.tensor([0.5, 1.0, 2.0, 3.0], dtype=F64)

    def one(p: torch.Tensor, k: int) -> torch.Tensor:
        return p[0] * torch.exp(-p[1] * t) - 2.0 * torch.exp(-a[k] * t)

    def batch(P: torch.Tensor) -> torch.Tensor:
        return P[:, :1] * torch.exp(-P[:, 1:] * t) - 2.0 * torch.exp(-a[:, None] * t)

    X0 = torch.ones(4, 2, dtype=F64)
    sol = least_squares(batch, X0, method(rtol=1e-12), batch_dim=0)
    assert sol.success and sol.x.shape == (4, 2)
    steps = []
    for k in range(4):
        single = least_squares(lambda p, k=k: one(p, k), X0[k], method(rtol=1e-12))
        torch.testing.assert_close(sol.x[k], single.x, rtol=1e-10, atol=1e-12)
        steps.append(single.stats["sample_steps"][0])
    # each row stopped on its own rule: its step count is that of its own run
    assert sol.stats["sample_steps"] == steps
    objective = 0.5 * (batch(sol.x) ** 2).sum(dim=1)
    np.testing.assert_allclose(sol.stats["sample_objective"], objective.numpy())
    assert len(set(steps)) > 1
    torch.testing.assert_close(sol.x[:, 1], a)


def test_batched_failing_row_does_not_hold_back_the_others() -> None:
    # Rosenbrock rows: row 0 starts at the solution, row 1 far away, row 2 close
    def batch(X: torch.Tensor) -> torch.Tensor:
        return torch.stack([10 * (X[:, 1] - X[:, 0] ** 2), 1 - X[:, 0]], dim=1)

    X0 = torch.tensor([[1.0, 1.0], [-1.2, 1.0], [1.001, 1.0]], dtype=F64)
    with pytest.warns(ConvergenceWarning, match="MAX_STEPS"):
        sol = least_squares(batch, X0, LevenbergMarquardt(max_steps=8), batch_dim=0)
    assert sol.stats["sample_status"] == ["SUCCESS", "MAX_STEPS", "SUCCESS"]
    assert sol.stats["sample_steps"][0] == 0
    torch.testing.assert_close(sol.x[0], X0[0])
    torch.testing.assert_close(sol.x[2], torch.ones(2, dtype=F64))


def test_numpy_batched() -> None:
    t = np.linspace(0.0, 1.0, 8)
    c = np.array([[1.0], [2.0]])
    sol = least_squares(
        lambda P: P[:, :1] ** 3 * t - c * t, np.ones((2, 1)), batch_dim=0
    )
    assert sol.success
    np.testing.assert_allclose(sol.x[:, 0] ** 3, [1.0, 2.0], rtol=1e-6)


@pytest.mark.parametrize("method", METHODS, ids=lambda m: m.__name__)
def test_max_steps_one_row_trace(method: Any) -> None:
    case = _rosenbrock()
    with pytest.warns(ConvergenceWarning, match="MAX_STEPS"):
        sol = least_squares(
            case.torch,
            torch.tensor(case.x0, dtype=F64),
            method(max_steps=1),
            record=True,
        )
    assert sol.status is Status.MAX_STEPS and sol.num_steps == 1
    assert len(sol.trace) == 1
    assert {"objective", "grad_norm", "damping", "active"} <= set(sol.trace.as_dict())
    assert sol.stats["sample_status"] == ["MAX_STEPS"]
    with pytest.raises(ConvergenceError) as info:
        least_squares(
            case.torch,
            torch.tensor(case.x0, dtype=F64),
            method(max_steps=1),
            throw=True,
        )
    assert info.value.solution.stats["sample_status"] == ["MAX_STEPS"]


@pytest.mark.parametrize("method", METHODS, ids=lambda m: m.__name__)
def test_stagnation_when_the_rule_is_out_of_reach(method: Any) -> None:
    case = _exponential()
    with pytest.warns(ConvergenceWarning, match="STAGNATION"):
        sol = least_squares(
            case.torch, torch.tensor(case.x0, dtype=F64), method(rtol=0.0, atol=1e-30)
        )
    assert sol.status is Status.STAGNATION
    assert np.abs(sol.x.numpy() - _scipy(case)).max() <= 1e-6
    assert sol.num_steps < 200


@pytest.mark.parametrize("method", METHODS, ids=lambda m: m.__name__)
def test_nonfinite_trial_points_are_rejected(method: Any) -> None:
    # sqrt is NaN for x < 0: the first full step overshoots to negative x
    sol = least_squares(
        lambda x: torch.sqrt(x) - 0.1, torch.tensor([4.0], dtype=F64), method()
    )
    assert sol.success
    assert abs(float(sol.x[0]) - 0.01) <= 1e-8


def test_nonfinite_jacobian_keeps_last_finite_iterate() -> None:
    def jac(x: np.ndarray) -> np.ndarray:
        return np.array([[np.inf if x[0] < 1.5 else 1.0]])

    with pytest.warns(ConvergenceWarning, match="NONFINITE"):
        sol = least_squares(lambda x: np.asarray(x) - 1.0, np.array([2.0]), jac=jac)
    assert sol.status is Status.NONFINITE
    assert np.isfinite(sol.x).all() and sol.stats["sample_status"] == ["NONFINITE"]


def test_nan_x0_is_nonfinite_input() -> None:
    with pytest.warns(ConvergenceWarning, match="NONFINITE_INPUT"):
        sol = least_squares(lambda x: x - 1.0, torch.tensor([np.nan, 1.0]))
    assert sol.status is Status.NONFINITE_INPUT and sol.num_steps == 0


def test_callback_stops() -> None:
    case = _rosenbrock()
    seen: list[int] = []

    def callback(info: Any) -> bool:
        seen.append(info.step)
        return info.step >= 2

    sol = least_squares(case.torch, torch.tensor(case.x0, dtype=F64), callback=callback)
    assert sol.status is Status.STOPPED_BY_CALLBACK and seen == [1, 2]


def test_solved_start_takes_no_step() -> None:
    sol = least_squares(lambda x: x - 1.0, torch.ones(3, dtype=F64))
    assert sol.success and sol.num_steps == 0


# -- bad input ----------------------------------------------------------------


def test_nonfinite_residual_at_x0_raises() -> None:
    with pytest.raises(ValueError, match="residual is not finite at x0"):
        least_squares(lambda x: torch.log(x), torch.tensor([-1.0, 1.0]))
    with pytest.raises(ValueError, match=r"rows \[1\]"):
        least_squares(
            lambda x: torch.log(x), torch.tensor([[1.0], [-1.0]]), batch_dim=0
        )


def test_residual_changing_shape_raises() -> None:
    def r(x: np.ndarray) -> np.ndarray:
        return np.array([x[0] - 1.0] * (1 if x[0] == 0.0 else 2))

    with pytest.raises(ValueError, match="changed its shape"):
        least_squares(r, np.array([0.0]))


def test_batch_dimension_dropped_raises() -> None:
    with pytest.raises(ValueError, match="keep the batch dimension"):
        least_squares(lambda X: X.sum(0), torch.ones(3, 2), batch_dim=0)


def test_detached_residual_raises() -> None:
    with pytest.raises(ValueError, match="without an autograd graph"):
        least_squares(lambda x: torch.tensor([float(x[0]) - 1.0]), torch.zeros(1))


def test_bad_arguments_raise() -> None:
    r = lambda x: x - 1.0  # noqa: E731
    with pytest.raises(ValueError, match="batch_dim must be None or 0, got 1"):
        least_squares(r, torch.zeros(2), batch_dim=1)
    with pytest.raises(ValueError, match="x0 must have at least one entry"):
        least_squares(r, torch.zeros(0))
    with pytest.raises(TypeError, match="residual must be callable"):
        least_squares(3.0, torch.zeros(2))
    with pytest.raises(TypeError, match="jac must be a callable or None"):
        least_squares(r, torch.zeros(2), jac=True)
    with pytest.raises(TypeError, match="least-squares method"):
        from itersolve.optimize import Newton

        least_squares(r, torch.zeros(2), Newton())
    with pytest.raises(ValueError, match=r"jac must return 2 x 2 entries"):
        least_squares(r, np.zeros(2), jac=lambda x: np.eye(3))


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: LevenbergMarquardt(rtol=-1.0), r"rtol must be >= 0, got -1\.0"),
        (lambda: LevenbergMarquardt(atol=-1.0), r"atol must be >= 0, got -1\.0"),
        (
            lambda: LevenbergMarquardt(initial_damping=0.0),
            r"initial_damping must be positive and finite, got 0\.0",
        ),
        (lambda: GaussNewton(c1=1.5), r"c1 must be in \(0, 1\), got 1\.5"),
        (
            lambda: GaussNewton(max_backtracks=0),
            r"max_backtracks must be an int >= 1, got 0",
        ),
        (lambda: GaussNewton(max_steps=0), r"max_steps must be a positive int"),
    ],
)
def test_bad_hyperparameters(make: Callable[[], Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make()


@pytest.mark.gpu
def test_cuda_batched_run_stays_on_the_device() -> None:
    t = torch.linspace(0.0, 1.0, 20, dtype=F64, device="cuda")
    a = torch.tensor([[1.0], [2.0]], dtype=F64, device="cuda")

    def batch(P: torch.Tensor) -> torch.Tensor:
        return P[:, :1] * torch.exp(-P[:, 1:] * t) - torch.exp(-a * t)

    for method in (LevenbergMarquardt(), GaussNewton()):
        sol = least_squares(
            batch, torch.ones(2, 2, dtype=F64, device="cuda"), method, batch_dim=0
        )
        assert sol.success and sol.x.is_cuda
        torch.testing.assert_close(sol.x[:, 1].cpu(), a[:, 0].cpu())
