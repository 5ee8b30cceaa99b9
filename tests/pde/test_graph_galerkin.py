"""Graph Galerkin networks: the mesh graph, the network, training on the FE
energy without labels (error vs the FEM solve falls by a stated factor),
seeded reproducibility, the inverse source mode, bad input."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from skfem import Basis, BilinearForm, ElementTriP1, ElementTriP2, LinearForm, MeshTri
from skfem.helpers import dot, grad

from itersolve import ConvergenceError, ConvergenceWarning, Status
from itersolve.nn import chebyshev_laplacian
from itersolve.pde import (
    FEResidual,
    GraphGalerkinNet,
    mesh_graph,
    node_features,
    train_graph_galerkin,
)

F64 = torch.float64


@BilinearForm
def laplace(u, v, _):
    return dot(grad(u), grad(v))


@LinearForm
def unit(v, _):
    return 1.0 * v


@pytest.fixture(scope="module")
def setup():
    basis = Basis(MeshTri().refined(2), ElementTriP2())  # 81 dofs, 49 free
    residual = FEResidual.from_skfem(basis, laplace, load=unit)
    lap = chebyshev_laplacian(mesh_graph(basis), basis.N)
    return basis, residual, lap, residual.solve()


def _net() -> GraphGalerkinNet:
    return GraphGalerkinNet(channels=(2, 16, 16, 1), K=3)


def test_mesh_graph_links_the_dofs_of_each_element():
    mesh = MeshTri().refined(1)
    p1 = mesh_graph(Basis(mesh, ElementTriP1())).numpy()
    # P1: the graph is the mesh's edge graph, both directions
    expected = {tuple(e) for e in mesh.facets.T} | {
        tuple(e) for e in mesh.facets.T[:, ::-1]
    }
    assert {tuple(e) for e in p1.T} == expected
    basis = Basis(mesh, ElementTriP2())
    p2 = mesh_graph(basis).numpy()
    pairs = {tuple(e) for e in p2.T}
    assert all((b, a) in pairs for a, b in pairs) and not any(a == b for a, b in pairs)
    for element in basis.element_dofs.T:  # every two dofs of an element linked
        assert all((a, b) in pairs for a in element for b in element if a != b)


def test_network_shapes_zero_start_and_fields(setup):
    basis, residual, lap, _ = setup
    features = node_features(basis, residual)
    assert features.shape == (basis.N, 3)
    assert float(features[residual.dirichlet_dofs, 2].min()) == 1.0
    net = GraphGalerkinNet(channels=(3, 8, 1), K=4, n_fields=3).double()
    out = net(features, lap).detach()
    assert out.shape == (basis.N, 3)
    # the zero last layer: an untrained network outputs zero
    assert float(out.abs().max()) == 0.0
    with_source = node_features(basis, source=np.ones(basis.N))
    assert with_source.shape == (basis.N, 3)


def test_training_on_the_energy_reduces_the_error_tenfold(setup):
    basis, residual, lap, reference = setup
    sol = train_graph_galerkin(
        _net(),
        residual,
        node_features(basis),
        lap,
        adam_steps=20,
        lbfgs_steps=40,
        reference=reference,
        record=True,
    )
    assert sol.status is Status.SUCCESS and sol.num_steps == 60
    trace = sol.trace.as_dict()
    # the zero start has relative error 1; the trained field is 10x closer
    assert sol.extras["relative_l2"] <= 0.1
    assert trace["relative_l2"][-1] == pytest.approx(sol.extras["relative_l2"])
    assert trace["loss"][-1] < trace["loss"][0]
    # hard boundary values, whatever the network says there
    assert float(sol.x[residual.dirichlet_dofs].abs().max()) == 0.0
    assert sol.x.dtype == F64 and sol.x.shape == (basis.N,)
    assert sol.stats["loss_evaluations"] >= 60


def test_seeded_runs_are_reproducible_and_the_net_is_not_changed(setup):
    basis, residual, lap, _ = setup
    net = _net()
    before = [p.detach().clone() for p in net.parameters()]
    runs = [
        train_graph_galerkin(
            net, residual, node_features(basis), lap, adam_steps=10, lbfgs_steps=5
        )
        for _ in range(2)
    ]
    torch.testing.assert_close(runs[0].x, runs[1].x, rtol=0, atol=0)
    for p, q in zip(before, net.parameters(), strict=True):
        torch.testing.assert_close(p, q.detach(), rtol=0, atol=0)


@pytest.mark.parametrize("mode", ["hard", "penalty"])
def test_inverse_mechanics(setup, mode):
    basis, residual, lap, reference = setup
    obs = residual.free_dofs.numpy()[[5, 15, 25, 35, 45]]
    data = 2.0 * reference[obs]
    sol = train_graph_galerkin(
        _net(),
        residual,
        node_features(basis),
        lap,
        adam_steps=3,
        lbfgs_steps=0,
        source=1.0,
        observations=(obs, data),
        obs_mode=mode,
        record=True,
    )
    trace = sol.trace.as_dict()
    assert sol.success and sol.extras["source"] != 1.0
    assert ("loss_misfit" in trace) == (mode == "penalty")
    if mode == "hard":  # observed values are written into the answer
        np.testing.assert_allclose(sol.x[obs].numpy(), data, rtol=1e-14)


@pytest.mark.parametrize(
    ("loss", "mode", "penalty"),
    [
        ("energy", "hard", 1.0),
        pytest.param("residual-norm", "penalty", 1.0, marks=pytest.mark.slow),
    ],
)
def test_inverse_mode_learns_the_source_constant(setup, loss, mode, penalty):
    basis, residual, lap, reference = setup
    truth = 2.0
    obs = residual.free_dofs.numpy()[[5, 15, 25, 35, 45]]
    data = truth * reference[obs]
    sol = train_graph_galerkin(
        _net(),
        residual,
        node_features(basis),
        lap,
        loss=loss,
        adam_steps=20 if loss == "energy" else 100,
        lbfgs_steps=60 if loss == "energy" else 200,
        source=1.0,
        observations=(obs, data),
        obs_mode=mode,
        penalty=penalty,
        reference=truth * reference,
        record=True,
    )
    assert sol.success
    # from 1.0 the constant moves to within 5% of the truth (noise-free data)
    assert abs(sol.extras["source"] - truth) <= 0.05 * truth
    assert "source" in sol.trace.as_dict()


def test_inverse_residual_loss_with_hard_observations_runs(setup):
    basis, residual, lap, reference = setup
    obs = residual.free_dofs.numpy()[[5, 25]]
    sol = train_graph_galerkin(
        _net(),
        residual,
        node_features(basis),
        lap,
        loss="preconditioned",
        adam_steps=3,
        lbfgs_steps=2,
        source=1.0,
        observations=(obs, reference[obs]),
        obs_mode="hard",
    )
    # the observed values are written into the answer
    np.testing.assert_allclose(sol.x[obs].numpy(), reference[obs], rtol=1e-15)
    assert sol.success and np.isfinite(sol.extras["source"])


def test_nan_features_stop_with_nonfinite_input(setup):
    basis, residual, lap, _ = setup
    features = node_features(basis)
    features[0, 0] = float("nan")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        sol = train_graph_galerkin(_net(), residual, features, lap, adam_steps=5)
    assert sol.status is Status.NONFINITE_INPUT and not sol.success


def test_nonfinite_loss_stops_and_keeps_the_last_finite_parameters(setup):
    basis, _, lap, _ = setup
    broken = FEResidual.from_skfem(basis, laplace, load=unit)
    broken.load = torch.full_like(broken.load, float("nan"))  # a NaN-producing loss
    with pytest.warns(ConvergenceWarning):
        sol = train_graph_galerkin(
            _net(), broken, node_features(basis), lap, adam_steps=5
        )
    assert sol.status is Status.NONFINITE and not sol.success
    assert bool(torch.isfinite(sol.x).all())
    with pytest.raises(ConvergenceError):
        train_graph_galerkin(
            _net(), broken, node_features(basis), lap, adam_steps=5, throw=True
        )


def test_bad_input(setup):
    basis, residual, lap, _ = setup
    features = node_features(basis)
    net = _net()
    obs = (np.array([20]), np.array([0.1]))
    with pytest.raises(ValueError, match="channels"):
        GraphGalerkinNet(channels=(2, 8, 2))
    with pytest.raises(ValueError, match="activation"):
        GraphGalerkinNet(activation="gelu")
    with pytest.raises(ValueError, match="n_fields"):
        GraphGalerkinNet(n_fields=0)
    with pytest.raises(TypeError, match="GraphGalerkinNet"):
        train_graph_galerkin(torch.nn.Linear(2, 1), residual, features, lap)
    with pytest.raises(TypeError, match="FEResidual"):
        train_graph_galerkin(net, None, features, lap)
    with pytest.raises(ValueError, match="loss"):
        train_graph_galerkin(net, residual, features, lap, loss="l1")
    with pytest.raises(ValueError, match="features"):
        train_graph_galerkin(net, residual, features[:, :1], lap)
    with pytest.raises(ValueError, match="laplacian"):
        train_graph_galerkin(net, residual, features, lap.to_dense()[:5, :5])
    with pytest.raises(ValueError, match="lr"):
        train_graph_galerkin(net, residual, features, lap, lr=-1.0)
    with pytest.raises(ValueError, match="cannot both be 0"):
        train_graph_galerkin(net, residual, features, lap, adam_steps=0, lbfgs_steps=0)
    with pytest.raises(ValueError, match="needs observations"):
        train_graph_galerkin(net, residual, features, lap, source=1.0)
    with pytest.raises(ValueError, match="unknown source"):
        train_graph_galerkin(net, residual, features, lap, observations=obs)
    with pytest.raises(ValueError, match="obs_mode"):
        train_graph_galerkin(
            net, residual, features, lap, source=1.0, observations=obs, obs_mode="x"
        )
    boundary = int(residual.dirichlet_dofs[0])
    with pytest.raises(ValueError, match="Dirichlet dofs"):
        train_graph_galerkin(
            net,
            residual,
            features,
            lap,
            source=1.0,
            observations=(np.array([boundary]), np.array([0.1])),
        )
    shifted = FEResidual.from_skfem(basis, laplace, load=unit, dirichlet_values=1.0)
    with pytest.raises(ValueError, match="zero Dirichlet"):
        train_graph_galerkin(net, shifted, features, lap, source=1.0, observations=obs)
    with pytest.raises(ValueError, match="source"):
        train_graph_galerkin(net, residual, features, lap, source=0.0, observations=obs)
