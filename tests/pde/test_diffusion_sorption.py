"""DiffusionSorptionProblem and its method-of-lines reference: convergence
orders under refinement, the constraint rows, bad input."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from itersolve.pde import DiffusionSorptionProblem, diffusion_sorption_reference

#: Both discretisations are second order (central differences in x,
#: Crank-Nicolson in t); 10% below 2 leaves room for the pre-asymptotic
#: part of the measured rates.
ORDER = 1.8


def _orders(errors: list[float]) -> list[float]:
    return [math.log2(a / b) for a, b in itertools.pairwise(errors)]


def test_reference_converges_at_second_order() -> None:
    problem = DiffusionSorptionProblem(n_t=5, n_x=9)
    finest = diffusion_sorption_reference(problem, refine=64)
    errors = [
        float(np.abs(diffusion_sorption_reference(problem, refine=r) - finest).max())
        for r in (2, 4, 8)
    ]
    assert min(_orders(errors)) >= ORDER, errors


def test_reference_meets_the_conditions() -> None:
    problem = DiffusionSorptionProblem(n_t=5, n_x=9)
    u = diffusion_sorption_reference(problem, refine=4)
    _, x = problem.axes()
    np.testing.assert_array_equal(u[:, 0], 1.0)
    np.testing.assert_allclose(u[0], problem.u0(x).numpy(), atol=1e-14)
    # the outflow keeps the right end near zero (u = -D u_x, D = 5e-4)
    assert np.abs(u[:, -1]).max() < 1e-2
    # the front moves in: u grows with t at every interior node
    assert (np.diff(u[:, 1:-1], axis=0) > 0).all()


def test_residual_of_the_reference_vanishes_at_second_order() -> None:
    # rows from t_final / 4 on: before that the Freundlich factor's singular
    # derivative at u -> 0 (near x = 1, where u0 ~ (1 - x)^2) is resolved
    # differently on each grid
    late = []
    for n in (17, 33, 65):
        problem = DiffusionSorptionProblem(n_t=n, n_x=n)
        u = torch.from_numpy(diffusion_sorption_reference(problem, refine=8))[None]
        parts = problem.residual_parts(u)
        pde = parts["pde"].reshape(n - 1, n - 2)
        late.append(float(pde[(n - 1) // 4 :].abs().max()))
        assert float(parts["initial"].abs().max()) <= 1e-14
        assert float(parts["boundary"].abs().max()) <= 1e-4
    assert min(_orders(late)) >= ORDER, late


def test_residual_rows_and_blocks() -> None:
    problem = DiffusionSorptionProblem(n_t=6, n_x=8)
    u = torch.rand(2, 6, 8, dtype=torch.float64)
    rows = problem.residual(u)
    assert rows.shape == (2, 6 * 8)
    parts = problem.residual_parts(u)
    assert [p.shape[1] for p in parts.values()] == [5 * 6, 8, 2 * 5]
    # an inner block: Crank-Nicolson rows only, at the nodes with their stencil
    inner = (slice(2, 6), slice(3, 7))
    assert problem.residual(u[:, 2:6, 3:7], inner).shape == (2, 3 * 2)
    # the rows of a block equal the whole grid's rows at the same nodes
    whole = parts["pde"].reshape(2, 5, 6)
    block = problem.residual(u[:, 2:6, 3:7], inner).reshape(2, 3, 2)
    torch.testing.assert_close(block, whole[:, 2:5, 3:5])
    # rows of a row-wise batch are independent
    torch.testing.assert_close(problem.residual(u[1:]), rows[1:])


def test_retardation_is_guarded_at_zero() -> None:
    problem = DiffusionSorptionProblem()
    u = torch.tensor([-1.0, 0.0, 1e-12, 1.0], dtype=torch.float64)
    R = problem.retardation(u)
    assert torch.isfinite(R).all()
    assert float(R[0]) == float(R[1])
    assert float(R[-1]) < float(R[1])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"diffusivity": -1e-3}, "diffusivity must be finite and > 0, got -0.001"),
        ({"porosity": 1.5}, r"porosity must be in \(0, 1\), got 1.5"),
        ({"n_t": 2}, "n_t must be an int >= 3, got 2"),
        ({"initial": "random"}, "initial must be 'pdebench' or 'smooth'"),
        ({"t_final": math.inf}, "t_final must be finite and > 0"),
    ],
)
def test_bad_parameters(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        DiffusionSorptionProblem(**kwargs)


def test_bad_residual_input() -> None:
    problem = DiffusionSorptionProblem(n_t=6, n_x=8)
    with pytest.raises(ValueError, match=r"u must have shape \(batch, 6, 8\)"):
        problem.residual(torch.zeros(6, 8, dtype=torch.float64))
    with pytest.raises(ValueError, match=">= 3 columns"):
        problem.residual(
            torch.zeros(1, 6, 2, dtype=torch.float64), (slice(0, 6), slice(0, 2))
        )
    with pytest.raises(TypeError, match="DiffusionSorptionProblem"):
        diffusion_sorption_reference("problem")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="refine must be an int >= 1, got 0"):
        diffusion_sorption_reference(problem, refine=0)


def test_pdebench_start() -> None:
    problem = DiffusionSorptionProblem(n_t=4, n_x=9, initial="pdebench")
    u = diffusion_sorption_reference(problem, refine=2)
    assert (u[0, 1:] == 0).all() and (u[:, 0] == 1).all()
    assert 0 < u[-1, 1] < 1
