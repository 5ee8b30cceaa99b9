"""DCDMNet, the Ritz-vector training data, the DCDM loss and train_dcdm."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg as sla
import torch

from itersolve.linear import FlexibleCG, LearnedPreconditioner, linear_solve
from itersolve.nn import (
    DCDMNet,
    dcdm_loss,
    lanczos_ritz,
    ritz_rhs_dataset,
    train_dcdm,
)
from itersolve.problems import obstacle_poisson, poisson


@pytest.mark.parametrize("levels", [0, 2, None])
def test_net_is_fully_convolutional(levels):
    net = DCDMNet(channels=4, levels=levels, seed=0)
    for shape in [(8, 8), (13, 20), (32, 32)]:
        out = net(torch.randn(2, 2, *shape))
        assert out.shape == (2, 1, *shape)


def test_net_3d_and_linear_and_homogeneous():
    net3 = DCDMNet(channels=2, levels=1, dim=3, in_channels=1, seed=0)
    assert net3(torch.randn(1, 6, 6, 6)).shape == (1, 1, 6, 6, 6)
    lin = DCDMNet(channels=3, levels=2, activation=None, bias=False, seed=0)
    x, y = torch.randn(1, 2, 8, 8), torch.randn(1, 2, 8, 8)
    torch.testing.assert_close(lin(x + 2 * y), lin(x) + 2 * lin(y))
    relu = DCDMNet(channels=3, levels=2, in_channels=1, bias=False, seed=0)
    torch.testing.assert_close(relu(3.0 * x[:, :1]), 3.0 * relu(x[:, :1]))


def test_net_seeded_init_and_bad_arguments():
    a, b = DCDMNet(4, 2, seed=3), DCDMNet(4, 2, seed=3)
    assert all(
        torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True)
    )
    with pytest.raises(ValueError, match="channels must be an int >= 1"):
        DCDMNet(0)
    with pytest.raises(ValueError, match="dim must be 2 or 3"):
        DCDMNet(dim=4)
    with pytest.raises(ValueError, match="activation must be"):
        DCDMNet(activation="tanh")
    with pytest.raises(ValueError, match="expects input of shape"):
        DCDMNet(4, 2)(torch.zeros(1, 3, 8, 8))


def test_lanczos_ritz_matches_eigenvalues_when_complete():
    A = poisson(6, dim=2)
    values, vectors = lanczos_ritz(A, 36, seed=0)
    exact = np.linalg.eigvalsh(A.toarray())
    # Repeated eigenvalues of the square grid: Lanczos sees each once.
    assert np.allclose(values, np.unique(np.round(exact, 10))[: values.size]) or (
        np.all(np.min(np.abs(values[:, None] - exact[None]), axis=1) < 1e-8)
    )
    np.testing.assert_allclose(vectors.T @ vectors, np.eye(values.size), atol=1e-8)
    resid = A @ vectors - vectors * values
    assert np.abs(resid).max() < 1e-6


def test_ritz_dataset_boosts_low_modes_and_drops_null_space():
    A = poisson(10, dim=1, bc="neumann")  # singular: constants are the null space
    B = ritz_rhs_dataset(A, n_lanczos=10, n_samples=200, seed=1)
    assert B.shape == (200, 10)
    assert np.abs(B.sum(axis=1)).max() < 1e-8  # no null-space component
    _, vectors = np.linalg.eigh(A.toarray())
    weights = ((B @ vectors) ** 2).mean(axis=0)
    assert weights[1:4].mean() > 10 * weights[-3:].mean()  # low modes x9
    same = ritz_rhs_dataset(A, n_lanczos=10, n_samples=200, seed=1)
    assert np.array_equal(B, same)
    B2, E = ritz_rhs_dataset(
        poisson(8, dim=1), n_lanczos=8, n_samples=5, seed=0, energies=True
    )
    exact = np.einsum("ij,ij->i", B2, sla.solve(poisson(8, dim=1).toarray(), B2.T).T)
    np.testing.assert_allclose(E, exact, rtol=1e-8)  # complete Lanczos: exact
    with pytest.raises(ValueError, match="n_samples must be an int"):
        ritz_rhs_dataset(A, n_lanczos=5, n_samples=0)
    with pytest.raises(ValueError, match="boost_low must be a positive"):
        ritz_rhs_dataset(A, n_lanczos=5, n_samples=3, boost_low=-1.0)


def test_loss_is_scale_invariant_and_zero_at_the_inverse():
    A = torch.from_numpy(poisson(5, dim=1).toarray())
    b = torch.randn(
        4, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(0)
    )
    exact = torch.linalg.solve(A, b.T).T
    assert float(dcdm_loss(A, b, -7.0 * exact)) < 1e-24
    y = torch.randn(4, 5, dtype=torch.float64)
    torch.testing.assert_close(dcdm_loss(A, b, y), dcdm_loss(A, b, 5.0 * y))
    energy = (b * exact).sum(1)
    assert abs(float(dcdm_loss(A, b, exact, energy))) < 1e-12
    assert 0 < float(dcdm_loss(A, b, y, energy)) <= 1


def _train(seed, **kw):
    p = obstacle_poisson(12, "disks", seed=0)
    net = DCDMNet(channels=3, levels=2, seed=seed)
    report = train_dcdm(
        net,
        p.A,
        mask=p.fluid,
        n_samples=30,
        epochs=2,
        lr=1e-3,
        n_lanczos=20,
        seed=seed,
        **kw,
    )
    return net, report


def test_training_is_reproducible_bit_for_bit():
    net1, rep1 = _train(0)
    net2, rep2 = _train(0)
    assert rep1.losses == rep2.losses
    for a, b in zip(
        net1.state_dict().values(), net2.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b)
    _, rep3 = _train(1)
    assert rep3.losses != rep1.losses
    assert not net1.training
    assert rep1.best_loss == min(rep1.losses)


@pytest.mark.slow
def test_training_lowers_the_loss_and_helps_flexible_cg():
    p = obstacle_poisson(16, "mixed", seed=3)
    net = DCDMNet(channels=6, levels=2, activation=None, seed=0)
    report = train_dcdm(
        net,
        p.A,
        mask=p.fluid,
        n_samples=300,
        epochs=3,
        lr=3e-3,
        n_lanczos=60,
        loss="energy",
        seed=0,
    )
    assert report.losses[-1] < report.losses[0]
    b = p.rhs(1)
    plain = linear_solve(p.A, b, FlexibleCG(rtol=1e-4, truncation=2))
    M = LearnedPreconditioner(net, mask=p.fluid)
    learned = linear_solve(p.A, b, FlexibleCG(rtol=1e-4, truncation=2, M=M))
    assert learned.success
    assert learned.num_steps < plain.num_steps


def test_train_several_systems_and_bad_input():
    a, b = obstacle_poisson(8, "disks", seed=0), obstacle_poisson(8, "boxes", seed=1)
    net = DCDMNet(channels=2, levels=1, seed=0)
    rep = train_dcdm(
        net, [a.A, b.A], mask=[a.fluid, b.fluid], n_samples=11, epochs=1, n_lanczos=5
    )
    assert rep.n_samples == 11 and len(rep.losses) == 1
    with pytest.raises(ValueError, match="one entry per system"):
        train_dcdm(net, [a.A, b.A], mask=[a.fluid], n_samples=4, epochs=1)
    with pytest.raises(ValueError, match="but the mask/grid_shape has"):
        train_dcdm(net, a.A, mask=b.fluid, n_samples=4, epochs=1)
    with pytest.raises(ValueError, match="loss must be"):
        train_dcdm(net, a.A, mask=a.fluid, n_samples=4, epochs=1, loss="l1")
    with pytest.raises(ValueError, match="lr must be a positive"):
        train_dcdm(net, a.A, mask=a.fluid, n_samples=4, epochs=1, lr=-1.0)
    with pytest.raises(ValueError, match="epochs must be an int"):
        train_dcdm(net, a.A, mask=a.fluid, n_samples=4, epochs=0)
    with pytest.raises(TypeError, match=r"net must be a torch\.nn\.Module"):
        train_dcdm(lambda x: x, a.A, n_samples=4, epochs=1)
    with pytest.raises(ValueError, match="A must be square"):
        train_dcdm(net, np.ones((3, 4)), n_samples=4, epochs=1)
