"""Empty inputs to the pde front doors: a ValueError naming the parameter, worded
as linear_solve and minimize word theirs (issue 21, item 4)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from itersolve.optimize import minimize
from itersolve.pde import (
    Grid,
    VariationalProblem,
    log_gradient_energy,
    solve_variational,
)
from itersolve.pde.transport import SlabProblem, homogeneous_slab, transport_solve

EMPTY = [[], np.zeros(0), np.zeros((0, 8)), torch.zeros(0, dtype=torch.float64)]


@pytest.mark.parametrize("u0", EMPTY)
def test_solve_variational_refuses_an_empty_u0(u0):
    with pytest.raises(
        ValueError, match=r"^u0 must have at least one entry, got shape"
    ):
        solve_variational(log_gradient_energy(8), u0=u0)


@pytest.mark.parametrize("x0", EMPTY)
def test_transport_solve_refuses_an_empty_x0(x0):
    with pytest.raises(
        ValueError, match=r"^x0 must have at least one entry, got shape"
    ):
        transport_solve(homogeneous_slab(10.0, 5, c=0.5), x0=x0)


def test_the_wording_is_that_of_minimize():
    with pytest.raises(ValueError) as by_minimize:
        minimize(lambda x: (x**2).sum(), np.zeros(0))
    with pytest.raises(ValueError) as by_transport:
        transport_solve(homogeneous_slab(10.0, 5, c=0.5), x0=np.zeros(0))
    assert str(by_minimize.value) == str(by_transport.value)


def test_an_empty_grid_or_right_hand_side_is_refused_before_the_front_door():
    with pytest.raises(ValueError, match=r"need at least 3 nodes per axis.*got 0"):
        Grid((0, 0))
    flux = log_gradient_energy(8).flux
    with pytest.raises(ValueError, match=r"f must have the grid's shape \(8, 8\)"):
        VariationalProblem(Grid((8, 8)), np.zeros(0), flux)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"edges": []}, "edges must have at least 2 entries"),
        ({"q": []}, r"q must have one value per cell \(1\), got 0"),
        ({"sigma_t": []}, r"sigma_t must have one value per cell \(1\), got 0"),
    ],
)
def test_an_empty_slab_is_refused_before_the_front_door(fields, message):
    kwargs = {"edges": [0.0, 1.0], "sigma_t": 1.0, "sigma_s": 0.5, "q": 1.0}
    with pytest.raises(ValueError, match=message):
        SlabProblem(**(kwargs | fields))


def test_a_full_u0_and_x0_still_solve():
    problem = log_gradient_energy(8)
    assert solve_variational(problem, u0=np.zeros(problem.grid.shape)).success
    assert transport_solve(homogeneous_slab(10.0, 5, c=0.5), x0=np.ones(5)).success
