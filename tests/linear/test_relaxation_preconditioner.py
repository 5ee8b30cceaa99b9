"""Relaxation methods as Krylov preconditioners through ``M`` (issue 14)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse.linalg as spla
import torch

import itersolve
from itersolve.linear import (
    CG,
    GMRES,
    MINRES,
    SOR,
    SSOR,
    FlexibleCG,
    GaussSeidel,
    Jacobi,
    SSORPreconditioner,
)
from itersolve.linear._relaxation_preconditioner import RelaxationPreconditioner
from itersolve.problems import convection_diffusion, poisson

CONVECTION = convection_diffusion(24, dim=2, peclet=50.0)
RHS = np.sin(np.arange(CONVECTION.shape[0]) + 1.0)


def _gmres_reference(A, b):
    x, info = spla.gmres(A, b, rtol=1e-13, atol=0.0, restart=100, maxiter=500)
    assert info == 0
    return x


@pytest.mark.parametrize(
    "M",
    [
        SSOR(omega=1.3),
        SOR(omega=1.2),
        GaussSeidel(),
        Jacobi(omega=0.8).as_preconditioner(CONVECTION, sweeps=3),
        SSOR(omega=1.0, backend="torch").as_preconditioner(CONVECTION, sweeps=2),
    ],
    ids=["ssor", "sor", "gauss-seidel", "jacobi-3-sweeps", "ssor-torch-2-sweeps"],
)
def test_gmres_relaxation_preconditioner_fewer_steps_same_answer(M):
    plain = itersolve.linear_solve(CONVECTION, RHS, GMRES(rtol=1e-11))
    pre = itersolve.linear_solve(CONVECTION, RHS, GMRES(rtol=1e-11, M=M))
    assert plain.success and pre.success
    assert pre.num_steps < 0.6 * plain.num_steps, (pre.num_steps, plain.num_steps)
    np.testing.assert_allclose(pre.x, _gmres_reference(CONVECTION, RHS), atol=1e-8)


def test_gmres_jacobi_by_instance_matches_string_jacobi():
    # One Jacobi sweep from zero is omega D^{-1} r: the 'jacobi' preconditioner
    # scaled, hence the same Krylov space and the same iterates.
    A = poisson(12, dim=2)
    b = np.ones(A.shape[0])
    by_name = itersolve.linear_solve(A, b, GMRES(rtol=1e-10, M="jacobi"))
    by_method = itersolve.linear_solve(A, b, GMRES(rtol=1e-10, M=Jacobi()))
    assert by_method.num_steps == by_name.num_steps
    np.testing.assert_allclose(by_method.x, by_name.x, atol=1e-12)


def test_flexible_cg_with_ssor_fewer_steps_same_answer():
    A = poisson(20, dim=2)
    b = np.cos(np.arange(A.shape[0]))
    plain = itersolve.linear_solve(A, b, FlexibleCG(rtol=1e-10))
    pre = itersolve.linear_solve(A, b, FlexibleCG(rtol=1e-10, M=SSOR(omega=1.5)))
    assert plain.success and pre.success
    assert pre.num_steps < 0.5 * plain.num_steps, (pre.num_steps, plain.num_steps)
    np.testing.assert_allclose(pre.x, spla.spsolve(A.tocsc(), b), atol=1e-8)


@pytest.mark.parametrize("M", [Jacobi(omega=0.9), SSOR(omega=1.4)])
def test_cg_accepts_symmetric_relaxations(M):
    A = poisson(16, dim=2)
    b = np.ones(A.shape[0])
    sol = itersolve.linear_solve(A, b, CG(rtol=1e-10, M=M))
    assert sol.success
    np.testing.assert_allclose(sol.x, spla.spsolve(A.tocsc(), b), atol=1e-8)


@pytest.mark.parametrize("method", [CG, MINRES])
@pytest.mark.parametrize("M", [SOR(omega=1.2), GaussSeidel()])
def test_symmetric_solvers_reject_forward_sweeps(method, M):
    A = poisson(6, dim=2)
    name = type(M).__name__
    with pytest.raises(ValueError, match=f"M={name} is a nonsymmetric preconditioner"):
        itersolve.linear_solve(A, np.ones(36), method(M=M))
    with pytest.raises(ValueError, match="needs a symmetric one"):
        itersolve.linear_solve(A, np.ones(36), method(M=M.as_preconditioner(A)))


def test_one_ssor_sweep_is_the_ssor_preconditioner():
    A = poisson(10, dim=2)
    r = torch.linspace(-1.0, 2.0, 100, dtype=torch.float64)
    expected = SSORPreconditioner(A, omega=1.5)(r)
    for backend in ("numba", "torch", "scipy"):
        M = SSOR(omega=1.5, backend=backend).as_preconditioner(A)
        torch.testing.assert_close(M(r), expected, rtol=1e-12, atol=1e-14)


def test_sweeps_are_the_solver_steps_and_block_columns_independent():
    A = convection_diffusion(6, dim=2, peclet=5.0)
    r = np.linspace(1.0, 2.0, 36)
    M = SOR(omega=1.1).as_preconditioner(A, sweeps=4)
    # Four preconditioner sweeps from 0 are the solver's first four steps.
    with pytest.warns(itersolve.ConvergenceWarning, match="MAX_STEPS"):
        steps = itersolve.linear_solve(A, r, SOR(omega=1.1, max_steps=4))
    z = M(torch.from_numpy(r))
    np.testing.assert_allclose(z.numpy(), steps.x, rtol=1e-13)
    block = torch.stack([torch.from_numpy(r), torch.from_numpy(2 * r)], dim=1)
    Z = M(block)
    torch.testing.assert_close(Z[:, 1], 2 * z, rtol=1e-13, atol=0.0)
    assert M.applications == 3 and M.symmetric is False


def test_preconditioner_leaves_input_and_solver_counts_alone():
    A = itersolve.aslinearoperator(poisson(8, dim=2))
    M = Jacobi().as_preconditioner(A, sweeps=2)
    r = torch.ones(64, dtype=torch.float64)
    before = r.clone()
    M(r)
    assert torch.equal(r, before)
    assert A.matvecs == 0 and M.matvecs == 1  # the first sweep needs none


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"sweeps": 0}, "sweeps must be a positive int, got 0"),
        ({"sweeps": 1.5}, "sweeps must be a positive int, got 1.5"),
    ],
)
def test_bad_sweeps(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Jacobi().as_preconditioner(poisson(4, dim=1), **kwargs)


def test_matrix_free_and_zero_diagonal_rejected():
    free = itersolve.aslinearoperator(lambda x: 2 * x, shape=(4, 4))
    with pytest.raises(ValueError, match="needs an explicit matrix"):
        itersolve.linear_solve(free, np.ones(4), GMRES(M=SSOR()))
    A = np.array([[0.0, 1.0], [1.0, 2.0]])
    with pytest.raises(ValueError, match=r"diagonal without zeros, got A\[0, 0\]"):
        RelaxationPreconditioner(Jacobi(), A)
