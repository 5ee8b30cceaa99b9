"""Forest partitions, the forest check and exact tree solves."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.csgraph as csgraph
import torch
from hypothesis import given
from hypothesis import strategies as st

from itersolve.optimize.bcd._forest import (
    check_partition,
    forest_partition,
    forest_plan,
    grow_forest,
    is_forest,
    lattice_forest_partition,
    partition_balanced_lipschitz,
    partition_contiguous,
    partition_sorted_by_lipschitz,
    red_black_partition,
    tree_solve,
    tree_solve_matrix,
)
from itersolve.problems import poisson
from itersolve.problems.coordinate import two_moons_label_propagation


def _random_tree_spd(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    H = np.zeros((n, n))
    for v in range(1, n):
        u = rng.integers(0, v)
        w = rng.standard_normal()
        H[u, v] = H[v, u] = w
    H += np.diag(np.abs(H).sum(1) + rng.uniform(0.1, 1.0, n))
    return H


@given(st.integers(2, 40), st.integers(0, 10_000))
def test_tree_solve_equals_dense_solve(n: int, seed: int) -> None:
    H = _random_tree_spd(n, seed)
    rhs = np.random.default_rng(seed + 1).standard_normal(n)
    d = tree_solve_matrix(torch.from_numpy(H), torch.from_numpy(rhs))
    np.testing.assert_allclose(
        d.numpy(), np.linalg.solve(H, rhs), rtol=1e-9, atol=1e-10
    )


def test_tree_solve_on_a_forest_with_many_components() -> None:
    H = sp.block_diag([_random_tree_spd(k, k) for k in (1, 5, 2, 9)]).toarray()
    perm = np.random.default_rng(0).permutation(H.shape[0])
    H = H[perm][:, perm]
    rhs = np.arange(H.shape[0], dtype=float)
    d = tree_solve_matrix(H, rhs)
    np.testing.assert_allclose(d.numpy(), np.linalg.solve(H, rhs), rtol=1e-10)


def test_tree_solve_not_positive_definite_gives_nan() -> None:
    H = np.array([[1.0, 2.0], [2.0, 1.0]])
    assert torch.isnan(tree_solve_matrix(H, np.ones(2))).all()


def test_forest_check_rejects_a_cycle() -> None:
    ring = sp.csr_array(np.roll(np.eye(5), 1, 1) + np.roll(np.eye(5), -1, 1))
    assert not is_forest(np.arange(5), ring)
    assert is_forest(np.arange(4), ring)
    with pytest.raises(ValueError, match="not a forest: 5 edges on 5 nodes"):
        forest_plan(5, *np.nonzero(ring.toarray()))
    with pytest.raises(ValueError, match="not a forest"):
        tree_solve_matrix(ring.toarray() + 3 * np.eye(5), np.ones(5))


def test_plan_reused_with_new_values() -> None:
    H = _random_tree_spd(12, 4)
    rows, cols = np.nonzero(np.triu(H, 1))
    plan = forest_plan(12, rows, cols)
    for scale in (1.0, 2.5):
        Hs = H * scale
        vals = torch.from_numpy(Hs[rows, cols])
        d = tree_solve(
            torch.from_numpy(np.diag(Hs).copy()),
            vals,
            plan,
            torch.ones(12, dtype=torch.float64),
        )
        np.testing.assert_allclose(
            d.numpy(), np.linalg.solve(Hs, np.ones(12)), rtol=1e-10
        )


def test_red_black_blocks_are_independent_sets() -> None:
    A = poisson(7)
    blocks = red_black_partition(A)
    assert len(blocks) == 2
    check_partition(blocks, 49)
    for b in blocks:
        assert A[b][:, b].nnz == b.size  # only the diagonal


def test_red_black_on_non_bipartite_graph_colours_greedily() -> None:
    tri = sp.csr_array(np.ones((3, 3)) - np.eye(3))
    blocks = red_black_partition(tri)
    assert len(blocks) == 3


def test_lattice_comb_partition_is_two_forests() -> None:
    A = poisson(9)  # 9x9 lattice, same numbering (symmetric in rows/cols)
    blocks = lattice_forest_partition(9, 9)
    check_partition(blocks, 81)
    assert all(is_forest(b, A) for b in blocks)


def test_greedy_forest_partition_of_two_moons_graph() -> None:
    p = two_moons_label_propagation(300, n_labelled=20, seed=0)
    blocks = forest_partition(p.Q)
    check_partition(blocks, p.shape[0])
    assert all(is_forest(b, p.Q) for b in blocks)
    assert len(blocks) <= 6


def test_grow_forest_respects_size_and_acyclicity() -> None:
    A = poisson(6)
    order = np.random.default_rng(1).permutation(36)
    chosen = grow_forest(sp.csr_array(A), order, 20)
    assert chosen.size == 20 and np.unique(chosen).size == 20
    assert is_forest(chosen, A)
    sub = A[chosen][:, chosen]
    assert csgraph.connected_components(sub)[0] >= 1


def test_partition_helpers() -> None:
    assert [b.tolist() for b in partition_contiguous(7, 3)] == [
        [0, 1, 2],
        [3, 4, 5],
        [6],
    ]
    L = np.array([5.0, 1.0, 4.0, 2.0, 3.0, 6.0])
    assert [b.tolist() for b in partition_sorted_by_lipschitz(L, 2)] == [
        [1, 3],
        [4, 2],
        [0, 5],
    ]
    balanced = partition_balanced_lipschitz(L, 2)
    sums = [L[b].sum() for b in balanced]
    assert max(sums) - min(sums) <= 2.0
    with pytest.raises(
        ValueError, match="block_size must be an int in \\[1, n=7\\], got 0"
    ):
        partition_contiguous(7, 0)
    with pytest.raises(ValueError, match="got 8"):
        partition_contiguous(7, 8)
