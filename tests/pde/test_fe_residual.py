"""FEResidual: the torch residual equals the assembled K u - f, vanishes at
spsolve's answer, is the gradient of the energy; Dirichlet values imposed
first; Jacobi preconditioning; bad input."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from skfem import (
    Basis,
    BilinearForm,
    ElementTriP1,
    ElementTriP2,
    LinearForm,
    MeshTri,
)
from skfem.helpers import dot, grad

from itersolve.pde import FEResidual

F64 = torch.float64


@BilinearForm
def laplace(u, v, _):
    return dot(grad(u), grad(v))


@BilinearForm
def advection(u, v, _):
    # a non-symmetric form: grad(u) . (1, 0) v
    return grad(u)[0] * v


@LinearForm
def source(v, w):
    return (1.0 + w.x[0] * w.x[1]) * v


def _basis(n: int = 4, element=ElementTriP2) -> Basis:
    grid = np.linspace(0.0, 1.0, n + 1)
    return Basis(MeshTri.init_tensor(grid, grid), element())


def _random(n: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, generator=torch.Generator().manual_seed(seed), dtype=F64)


@pytest.mark.parametrize("element", [ElementTriP1, ElementTriP2])
def test_residual_is_assembled_matrix_times_vector_minus_load(element):
    basis = _basis(element=element)
    r = FEResidual.from_skfem(basis, laplace, load=source, dirichlet_values=0.5)
    K = laplace.assemble(basis)
    f = source.assemble(basis)
    u = _random(basis.N)
    full = u.numpy().copy()
    boundary = basis.get_dofs().all()
    full[boundary] = 0.5
    interior = np.setdiff1d(np.arange(basis.N), boundary)
    expected = (K @ full - f)[interior]
    got = r.residual(u).numpy()
    assert np.abs(got - expected).max() <= 1e-12 * max(1.0, np.abs(expected).max())
    pre = r.preconditioned_residual(u).numpy()
    np.testing.assert_allclose(pre, expected / K.diagonal()[interior], rtol=1e-12)
    assert r.residual(u).shape == (len(interior),)


def test_residual_vanishes_at_the_direct_solution_with_nonzero_dirichlet_values():
    basis = _basis(6)
    boundary = basis.get_dofs().all()
    g = np.cos(basis.doflocs[0, boundary]) + basis.doflocs[1, boundary]
    r = FEResidual.from_skfem(
        basis, laplace, load=source, dirichlet_dofs=boundary, dirichlet_values=g
    )
    u = r.solve()
    np.testing.assert_array_equal(u[boundary], g)
    residual = r.residual(torch.as_tensor(u))
    # rounding of K u - f: a small multiple of eps (|K| |u| + |f|) row by row
    K, load = laplace.assemble(basis), source.assemble(basis)
    free = r.free_dofs.numpy()
    bound = 100 * np.finfo(float).eps * (abs(K) @ np.abs(u) + np.abs(load))[free]
    assert np.all(residual.abs().numpy() <= bound)
    # whatever the Dirichlet entries hold, they are overwritten first
    scrambled = torch.as_tensor(u).clone()
    scrambled[torch.as_tensor(boundary)] = 1e3
    torch.testing.assert_close(r.residual(scrambled), residual, rtol=0, atol=0)


def test_energy_gradient_is_the_residual_and_excess_is_the_k_norm():
    basis = _basis()
    r = FEResidual.from_skfem(basis, laplace, load=source)
    u = _random(basis.N, 3).requires_grad_(True)
    (gradient,) = torch.autograd.grad(r.energy(u), u)
    torch.testing.assert_close(
        gradient[r.free_dofs], r.residual(u.detach()), rtol=1e-12, atol=1e-12
    )
    assert float(gradient[r.dirichlet_dofs].abs().max()) == 0.0
    # E(u) - E(u*) = 1/2 ||u - u*||_K^2
    star = torch.as_tensor(r.solve())
    d = r.impose(u.detach()) - star
    k_norm = float(d @ torch.as_tensor(laplace.assemble(basis) @ d.numpy()))
    excess = float(r.energy(u.detach()) - r.energy(star))
    assert excess == pytest.approx(0.5 * k_norm, rel=1e-10)


def test_loss_kinds_and_load_override_are_differentiable():
    basis = _basis(3)
    r = FEResidual.from_skfem(basis, laplace, load=1.0)
    star = torch.as_tensor(r.solve())
    unit = torch.ones(basis.N, dtype=F64)
    # the load is linear: (2 f) has solution 2 u*
    s = torch.tensor(2.0, dtype=F64, requires_grad=True)
    loss = r.loss(2 * star, "residual-norm", load=s * r.load)
    loss.backward()
    assert float(loss.detach()) <= 1e-13 and s.grad is not None
    for kind in ("energy", "residual-norm", "preconditioned"):
        assert torch.isfinite(r.loss(unit, kind))
    assert float(r.loss(star, "preconditioned")) <= 1e-13


def test_loads_values_and_inputs_unchanged():
    basis = _basis(3)
    f = source.assemble(basis)
    f_copy = f.copy()
    r = FEResidual.from_skfem(basis, laplace, load=f)
    u = _random(basis.N)
    u_copy = u.clone()
    r.residual(u)
    r.energy(u)
    torch.testing.assert_close(u, u_copy, rtol=0, atol=0)
    np.testing.assert_array_equal(f, f_copy)
    zero = FEResidual.from_skfem(basis, laplace)
    assert float(zero.load.abs().max()) == 0.0
    np.testing.assert_array_equal(zero.solve(), np.zeros(basis.N))


def test_non_symmetric_forms_have_no_energy():
    basis = _basis(3)
    stiffness = laplace.assemble(basis) + advection.assemble(basis)
    r = FEResidual(stiffness, np.ones(basis.N), basis.get_dofs().all())
    assert not r.symmetric
    u = torch.as_tensor(r.solve())
    assert float(r.residual(u).abs().max()) <= 1e-12
    with pytest.raises(ValueError, match="symmetric"):
        r.energy(u)


def test_bad_input():
    basis = _basis(2)
    K = laplace.assemble(basis)
    n = basis.N
    with pytest.raises(TypeError, match="BilinearForm"):
        FEResidual.from_skfem(basis, source)
    with pytest.raises(ValueError, match="square"):
        FEResidual(sp.random(3, 4, density=0.5), np.ones(3))
    with pytest.raises(ValueError, match="load"):
        FEResidual(K, np.ones(n + 1))
    with pytest.raises(ValueError, match="dirichlet_dofs"):
        FEResidual(K, np.ones(n), [0, n])
    with pytest.raises(ValueError, match="repeat"):
        FEResidual(K, np.ones(n), [0, 0])
    with pytest.raises(TypeError, match="dirichlet_dofs"):
        FEResidual(K, np.ones(n), [0.5])
    with pytest.raises(ValueError, match="dirichlet_values"):
        FEResidual(K, np.ones(n), [0, 1], [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="nothing is left"):
        FEResidual(K, np.ones(n), np.arange(n))
    with pytest.raises(ValueError, match="finite"):
        FEResidual(K, np.full(n, np.nan))
    r = FEResidual(K, np.ones(n), basis.get_dofs().all())
    with pytest.raises(ValueError, match="shape"):
        r.residual(torch.zeros(n + 1, dtype=F64))
    with pytest.raises(TypeError, match="float64"):
        r.residual(torch.zeros(n, dtype=torch.float32))
    with pytest.raises(ValueError, match="kind"):
        r.loss(torch.zeros(n, dtype=F64), "l1")
    with pytest.raises(ValueError, match="load"):
        r.residual(torch.zeros(n, dtype=F64), load=torch.zeros(2, dtype=F64))


def test_classical_newton_krylov_solves_the_wrapped_residual():
    # the same torch residual drives a classical solver: Newton-Krylov on the
    # Jacobi fixed-point map z = z - D^{-1} R(z) over the free dofs
    from itersolve.fixed_point import NewtonKrylov, fixed_point

    basis = _basis(4)
    r = FEResidual.from_skfem(basis, laplace, load=source)
    free = r.free_dofs

    def jacobi(z: torch.Tensor) -> torch.Tensor:
        u = torch.zeros(r.n_dofs, dtype=F64).index_put((free,), z)
        return z - r.preconditioned_residual(u)

    sol = fixed_point(
        jacobi, torch.zeros(len(free), dtype=F64), NewtonKrylov(rtol=1e-12)
    )
    assert sol.success
    np.testing.assert_allclose(sol.x.numpy(), r.solve()[free.numpy()], rtol=1e-9)
