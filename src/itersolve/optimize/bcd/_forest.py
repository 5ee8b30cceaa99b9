"""Forest-structured blocks: partitions, the forest check and exact tree solves.

A block ``b`` of a quadratic ``1/2 x^T Q x - c^T x`` is *forest-structured* when
the graph with an edge ``(i, j)`` for every non-zero ``Q_ij``, ``i != j``,
restricted to ``b`` has no cycle. Then ``Q_bb d = r`` is solved exactly in
``O(|b|)`` by Gaussian elimination from the leaves to the roots followed by
back-substitution (no fill-in): the message-passing update of Nutini, Laradji
& Schmidt (2022), Section 5.

The partition helpers work on a symmetric sparsity graph given as a scipy
sparse matrix (or anything :func:`scipy.sparse.csr_array` accepts); blocks are
``int64`` index arrays.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
import scipy.sparse.csgraph as csgraph
import torch

from itersolve._core.jit import lazy_njit


def _as_graph(graph: Any) -> sp.csr_array:
    """The symmetric off-diagonal sparsity pattern of ``graph`` as a CSR array."""
    if isinstance(graph, torch.Tensor):
        graph = graph.detach().cpu()
        graph = graph.to_dense().numpy() if graph.layout != torch.strided else graph
        graph = np.asarray(graph)
    G = sp.csr_array(graph, dtype=np.float64)
    if G.ndim != 2 or G.shape[0] != G.shape[1]:
        raise ValueError(f"graph must be a square matrix, got shape {G.shape}")
    G = sp.csr_array(G - sp.diags_array(G.diagonal()))
    G.eliminate_zeros()
    G = sp.csr_array((abs(G) + abs(G.T)) != 0, dtype=np.int8)
    return G


def check_partition(blocks: list[np.ndarray], n: int) -> list[np.ndarray]:
    """Validate that ``blocks`` partition ``range(n)``; returns int64 arrays.

    Raises
    ------
    ValueError
        With the missing, repeated or out-of-range indices.
    """
    out = [np.asarray(b, dtype=np.int64).reshape(-1) for b in blocks]
    if not out or any(b.size == 0 for b in out):
        raise ValueError("blocks must be a non-empty list of non-empty index arrays")
    flat = np.concatenate(out)
    bad = flat[(flat < 0) | (flat >= n)]
    if bad.size:
        raise ValueError(
            f"blocks contain indices outside [0, {n}): {bad[:10].tolist()}"
        )
    counts = np.bincount(flat, minlength=n)
    if (counts > 1).any():
        raise ValueError(
            "blocks must partition the coordinates; repeated indices: "
            f"{np.flatnonzero(counts > 1)[:10].tolist()}"
        )
    if (counts == 0).any():
        raise ValueError(
            "blocks must partition the coordinates; missing indices: "
            f"{np.flatnonzero(counts == 0)[:10].tolist()}"
        )
    return out


def partition_contiguous(n: int, block_size: int) -> list[np.ndarray]:
    """Blocks ``[0, s), [s, 2s), ...`` (the paper's "Order" partition).

    >>> [b.tolist() for b in partition_contiguous(5, 2)]
    [[0, 1], [2, 3], [4]]
    """
    _check_block_size(block_size, n)
    return [np.arange(i, min(i + block_size, n)) for i in range(0, n, block_size)]


def partition_sorted_by_lipschitz(lipschitz: Any, block_size: int) -> list[np.ndarray]:
    """Group coordinates with similar ``L_i`` (the paper's "Sort" partition).

    >>> [b.tolist() for b in partition_sorted_by_lipschitz([3.0, 1.0, 2.0, 9.0], 2)]
    [[1, 2], [0, 3]]
    """
    L = np.asarray(lipschitz, dtype=float).reshape(-1)
    _check_block_size(block_size, L.size)
    order = np.argsort(L, kind="stable")
    return [order[i : i + block_size] for i in range(0, L.size, block_size)]


def partition_balanced_lipschitz(lipschitz: Any, block_size: int) -> list[np.ndarray]:
    """Blocks with similar sums of ``L_i`` (the paper's "Avg" partition).

    Coordinates sorted by ``L_i`` are dealt to blocks in a serpentine order, so
    each block gets large and small constants alike.

    >>> [b.tolist() for b in partition_balanced_lipschitz([4.0, 1.0, 3.0, 2.0], 2)]
    [[0, 1], [2, 3]]
    """
    L = np.asarray(lipschitz, dtype=float).reshape(-1)
    _check_block_size(block_size, L.size)
    n_blocks = -(-L.size // block_size)
    order = np.argsort(-L, kind="stable")
    rounds = np.arange(L.size) // n_blocks
    pos = np.arange(L.size) % n_blocks
    owner = np.where(rounds % 2 == 0, pos, n_blocks - 1 - pos)
    return [np.sort(order[owner == k]) for k in range(n_blocks)]


def _check_block_size(block_size: Any, n: int) -> None:
    if not isinstance(block_size, (int, np.integer)) or not 0 < block_size <= n:
        raise ValueError(f"block_size must be an int in [1, n={n}], got {block_size!r}")


def is_forest(block: Any, graph: Any) -> bool:
    """True when the subgraph of ``graph`` induced by ``block`` has no cycle.

    A graph is a forest iff ``#edges = #nodes - #components``.

    >>> ring = sp.csr_array(np.roll(np.eye(4), 1, axis=1) + np.roll(np.eye(4), -1, 1))
    >>> is_forest([0, 1, 2], ring), is_forest([0, 1, 2, 3], ring)
    (True, False)
    """
    G = _as_graph(graph)
    b = np.asarray(block, dtype=np.int64).reshape(-1)
    sub = G[b][:, b]
    n_components = csgraph.connected_components(sub, directed=False)[0]
    return bool(sub.nnz // 2 == b.size - n_components)


def red_black_partition(graph: Any) -> list[np.ndarray]:
    """Colour classes of ``graph``: independent sets, so every block is diagonal.

    A bipartite graph (a lattice) gets the red-black 2-colouring from BFS depth
    parity; otherwise a greedy colouring in index order (more than 2 classes).

    >>> path = sp.diags_array([1.0, 1.0], offsets=[-1, 1], shape=(4, 4))
    >>> [b.tolist() for b in red_black_partition(path)]
    [[0, 2], [1, 3]]
    """
    G = _as_graph(graph)
    n = G.shape[0]
    depth = _bfs_depth(G)
    colour = depth % 2
    rows = np.repeat(np.arange(n), np.diff(G.indptr))
    if (colour[rows] == colour[G.indices]).any():
        colour = _greedy_colouring(G.indptr, G.indices, n)
    return [np.flatnonzero(colour == c) for c in np.unique(colour)]


def lattice_forest_partition(rows: int, cols: int) -> list[np.ndarray]:
    """Two forests covering a ``rows x cols`` lattice (column-major numbering).

    The comb pattern of the official code: block 0 holds every even column and
    the first row of every odd column (vertical paths joined into combs along the
    top), block 1 the rest of the odd columns (vertical paths). Node ``i`` sits
    at row ``i % rows``, column ``i // rows``.

    >>> [b.tolist() for b in lattice_forest_partition(3, 2)]
    [[0, 1, 2, 3], [4, 5]]
    """
    if rows < 1 or cols < 1:
        raise ValueError(f"rows and cols must be >= 1, got {rows}, {cols}")
    idx = np.arange(rows * cols)
    r, c = idx % rows, idx // rows
    first = (c % 2 == 0) | (r == 0)
    return [idx[first], idx[~first]]


def forest_partition(graph: Any, order: Any = None) -> list[np.ndarray]:
    """Greedy forest partition: grow maximal forests until every node is placed.

    Nodes are visited in ``order`` (index order by default); a node joins the
    current forest when its neighbours there lie in distinct trees (union-find),
    so no cycle is created. Works on any graph (two-moons kNN, lattices).

    >>> ring = sp.csr_array(np.roll(np.eye(4), 1, axis=1) + np.roll(np.eye(4), -1, 1))
    >>> [b.tolist() for b in forest_partition(ring)]
    [[0, 1, 2], [3]]
    """
    G = _as_graph(graph)
    n = G.shape[0]
    visit = np.arange(n) if order is None else np.asarray(order, dtype=np.int64)
    remaining = np.ones(n, dtype=np.bool_)
    blocks = []
    while remaining.any():
        candidates = visit[remaining[visit]]
        chosen = grow_forest(G, candidates, n)
        blocks.append(np.sort(chosen))
        remaining[chosen] = False
    return blocks


def grow_forest(graph: Any, candidates: Any, max_size: int) -> np.ndarray:
    """Greedy forest growth: take ``candidates`` in order, keep a node when it
    joins at most one node of each existing tree (union-find), stop at
    ``max_size`` nodes. Used with candidates sorted by Gauss-Southwell score.
    """
    G = graph if isinstance(graph, sp.csr_array) else _as_graph(graph)
    cand = np.ascontiguousarray(candidates, dtype=np.int64)
    return _grow_forest(
        G.indptr.astype(np.int64), G.indices.astype(np.int64), cand, int(max_size)
    )


# Sequential union-find loops: compiled by numba on first call when it is
# installed (the ``fast`` extra), plain Python otherwise.
@lazy_njit(cache=True)
def _grow_forest(
    indptr: np.ndarray, indices: np.ndarray, candidates: np.ndarray, max_size: int
) -> np.ndarray:
    n = indptr.size - 1
    parent = np.arange(n)
    inside = np.zeros(n, dtype=np.bool_)
    chosen = np.empty(min(max_size, candidates.size), dtype=np.int64)
    size = 0
    roots = np.empty(n, dtype=np.int64)
    for v in candidates:
        if size >= max_size:
            break
        k = 0
        ok = True
        for e in range(indptr[v], indptr[v + 1]):
            u = indices[e]
            if not inside[u]:
                continue
            while parent[u] != u:  # find with path halving
                parent[u] = parent[parent[u]]
                u = parent[u]
            for q in range(k):
                if roots[q] == u:
                    ok = False
                    break
            if not ok:
                break
            roots[k] = u
            k += 1
        if not ok:
            continue
        inside[v] = True
        for q in range(k):
            parent[roots[q]] = v
        chosen[size] = v
        size += 1
    return chosen[:size]


@lazy_njit(cache=True)
def _greedy_colouring(indptr: np.ndarray, indices: np.ndarray, n: int) -> np.ndarray:
    colour = np.full(n, -1, dtype=np.int64)
    used = np.full(n + 1, -1, dtype=np.int64)
    for v in range(n):
        for e in range(indptr[v], indptr[v + 1]):
            c = colour[indices[e]]
            if c >= 0:
                used[c] = v
        c = 0
        while used[c] == v:
            c += 1
        colour[v] = c
    return colour


def _bfs_depth(G: sp.csr_array) -> np.ndarray:
    """Depth of every node in a BFS forest (one root per component)."""
    n = G.shape[0]
    n_comp, labels = csgraph.connected_components(G, directed=False)
    roots = np.unique(labels, return_index=True)[1]
    # A virtual root joined to one node per component: one BFS covers the forest.
    aug = sp.block_array(
        [
            [G, sp.csr_array((np.ones(n_comp), (roots, np.zeros(n_comp))), (n, 1))],
            [
                sp.csr_array((np.ones(n_comp), (np.zeros(n_comp), roots)), (1, n)),
                None,
            ],
        ],
        format="csr",
    )
    dist = csgraph.shortest_path(aug, unweighted=True, indices=n, directed=False)
    return dist[:n].astype(np.int64) - 1


# -- exact solves on forest-structured blocks -----------------------------------


@dataclass(frozen=True)
class ForestPlan:
    """Elimination schedule of a forest block: the levels of a BFS forest.

    ``levels[k]`` holds ``(child, parent, slot)`` index tensors for the nodes of
    depth ``k + 1``; ``slot`` points into the edge list the plan was built from,
    so ``edge_values[slot]`` are the entries ``H_{child, parent}``. Roots have
    depth 0. Built once per fixed block and reused on every visit.
    """

    size: int
    roots: torch.Tensor
    levels: tuple[tuple[torch.Tensor, torch.Tensor, torch.Tensor], ...]


def forest_plan(size: int, rows: np.ndarray, cols: np.ndarray) -> ForestPlan:
    """Plan the leaf-to-root elimination for the forest with edges ``(rows, cols)``
    (local indices; each undirected edge listed once or twice).

    Raises
    ------
    ValueError
        When the edges contain a cycle (elimination would create fill-in).
    """
    rows = np.asarray(rows, dtype=np.int64)
    cols = np.asarray(cols, dtype=np.int64)
    keep = rows != cols
    slots = np.flatnonzero(keep)
    r0, c0 = rows[keep], cols[keep]
    # slot lookup for both orientations; duplicates keep the last slot
    S = sp.csr_array(
        (
            np.concatenate([slots, slots]) + 1,
            (np.concatenate([r0, c0]), np.concatenate([c0, r0])),
        ),
        shape=(size, size),
    )
    S.sum_duplicates()
    G = sp.csr_array(S != 0, dtype=np.int8)
    n_comp = csgraph.connected_components(G, directed=False)[0]
    n_edges = G.nnz // 2
    if n_edges != size - n_comp:
        raise ValueError(
            f"block is not a forest: {n_edges} edges on {size} nodes in "
            f"{n_comp} components (a forest has {size - n_comp}); message passing "
            "needs a forest-structured block"
        )
    # with duplicates summed, recover one valid slot per undirected edge
    first = sp.csr_array((slots + 1, (r0, c0)), shape=(size, size))
    first = sp.csr_array(first.maximum(first.T))
    depth = _bfs_depth(G)
    r = np.repeat(np.arange(size), np.diff(G.indptr))
    up = depth[G.indices] == depth[r] - 1
    parent = np.full(size, -1, dtype=np.int64)
    parent[r[up]] = G.indices[up]
    levels = []
    for d in range(1, int(depth.max(initial=0)) + 1):
        child = np.flatnonzero(depth == d)
        par = parent[child]
        slot = np.asarray(first[child, par]).reshape(-1).astype(np.int64) - 1
        levels.append(
            (torch.from_numpy(child), torch.from_numpy(par), torch.from_numpy(slot))
        )
    roots = torch.from_numpy(np.flatnonzero(depth == 0))
    return ForestPlan(size, roots, tuple(levels))


def tree_solve(
    diagonal: torch.Tensor,
    edge_values: torch.Tensor,
    plan: ForestPlan,
    rhs: torch.Tensor,
) -> torch.Tensor:
    """Solve ``H d = rhs`` for a forest-structured symmetric ``H`` in ``O(|b|)``.

    ``diagonal`` holds ``H_vv`` and ``edge_values`` the off-diagonal entries in
    the order of the edge list ``plan`` was built from. Leaf-to-root
    elimination level by level (vectorized within a level), then root-to-leaf
    back-substitution. A non-positive pivot (``H`` not positive definite) gives
    an all-NaN answer.
    """
    device = diagonal.device
    D = diagonal.clone()
    y = rhs.clone()
    levels = [
        (c.to(device), p.to(device), edge_values[s.to(device)])
        for c, p, s in plan.levels
    ]
    for child, parent, w in reversed(levels):
        ratio = w / D[child]
        D.index_add_(0, parent, -ratio * w)
        y.index_add_(0, parent, -ratio * y[child])
    x = torch.empty_like(y)
    roots = plan.roots.to(device)
    x[roots] = y[roots] / D[roots]
    for child, parent, w in levels:
        x[child] = (y[child] - w * x[parent]) / D[child]
    if bool((D <= 0).any()):
        x.fill_(float("nan"))
    return x


def tree_solve_matrix(H: Any, rhs: Any) -> torch.Tensor:
    """Exact solve of ``H d = rhs`` for a forest-structured SPD matrix ``H``.

    Compare with ``numpy.linalg.solve`` (dense, ``O(n^3)``); this is ``O(n)``
    once the plan is built. Raises ``ValueError`` when ``H``'s graph has a cycle.

    >>> H = torch.tensor([[2.0, -1, 0], [-1, 2, -1], [0, -1, 2]], dtype=torch.float64)
    >>> d = tree_solve_matrix(H, torch.ones(3, dtype=torch.float64))
    >>> torch.allclose(H @ d, torch.ones(3, dtype=torch.float64))
    True
    """
    if isinstance(H, torch.Tensor):
        Hd = H.to_dense() if H.layout != torch.strided else H
    else:
        Hd = torch.as_tensor(np.asarray(H.toarray() if sp.issparse(H) else H))
    b = torch.as_tensor(rhs, dtype=Hd.dtype)
    off = Hd.clone()
    off.fill_diagonal_(0)
    rows, cols = torch.nonzero(off.cpu(), as_tuple=True)
    plan = forest_plan(Hd.shape[0], rows.numpy(), cols.numpy())
    return tree_solve(Hd.diagonal(), off[rows, cols], plan, b)
