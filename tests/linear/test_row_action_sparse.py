"""Kaczmarz and sketch-and-project on sparse matrices (never densified) and CUDA."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as spla
import torch

import itersolve
from itersolve._core.operators import LinearOperator
from itersolve.linear import RandomizedKaczmarz, SketchAndProject

M_ROWS, N_COLS = 2000, 500


def _system():
    rng = np.random.default_rng(3)
    # 1% density plus a diagonal block: full column rank, consistent.
    A = sp.random_array((M_ROWS, N_COLS), density=0.01, random_state=4, format="csr")
    A = sp.csr_array(A + sp.eye_array(M_ROWS, N_COLS))
    x_true = rng.standard_normal(N_COLS)
    return A, A @ x_true


SPARSE, RHS = _system()
DENSE = SPARSE.toarray()  # the reference run's matrix, built before any spy

METHODS = [
    RandomizedKaczmarz(rtol=1e-10),
    RandomizedKaczmarz(rtol=1e-10, residual="incremental"),
    SketchAndProject(rtol=1e-10, sketch_size=50),
    SketchAndProject(rtol=1e-10, sketch="gaussian", sketch_size=50),
]
IDS = ["kaczmarz", "kaczmarz-incremental", "block-sketch", "gaussian-sketch"]


@pytest.fixture
def no_densify(monkeypatch):
    """Fail on any densification of a sparse matrix (torch or scipy)."""
    calls = []
    tensor_to_dense = torch.Tensor.to_dense

    def spy_tensor(self, *args, **kwargs):
        if self.layout != torch.strided and self.numel() >= M_ROWS * N_COLS:
            calls.append(("Tensor.to_dense", tuple(self.shape)))
        return tensor_to_dense(self, *args, **kwargs)

    def spy_operator(self):
        calls.append(("LinearOperator.to_dense", self.shape))
        raise AssertionError("a sparse operator was densified")

    def spy_scipy(self, *args, **kwargs):
        calls.append(("scipy toarray", self.shape))
        raise AssertionError("a scipy sparse matrix was densified")

    monkeypatch.setattr(torch.Tensor, "to_dense", spy_tensor)
    monkeypatch.setattr(LinearOperator, "to_dense", spy_operator)
    monkeypatch.setattr(sp.csr_array, "toarray", spy_scipy)
    monkeypatch.setattr(sp.csr_array, "todense", spy_scipy)
    return calls


@pytest.mark.parametrize("method", METHODS, ids=IDS)
def test_sparse_never_densified_and_matches_dense_run(method, no_densify):
    A, b, dense = SPARSE, RHS, DENSE
    # A first run loads the compiled kernels (their allocations are not the run's).
    first = itersolve.linear_solve(A, b, method)
    tracemalloc.start()
    sparse_sol = itersolve.linear_solve(A, b, method)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert no_densify == []
    np.testing.assert_array_equal(first.x, sparse_sol.x)  # seeded: reproducible
    # A dense m x n float64 array is 8 MB; the sparse run's numpy side stays far
    # below. The incremental residual keeps the sparse Gram A A^T (about 3 MB
    # here; the dense path's m x m Gram is 32 MB).
    incremental = getattr(method, "residual", "") == "incremental"
    assert peak < M_ROWS * N_COLS * 8 / (1 if incremental else 4), peak
    dense_sol = itersolve.linear_solve(dense, b, method)
    assert sparse_sol.success and dense_sol.success
    # Same seed, same rows: the iterates of the dense run, up to rounding.
    assert sparse_sol.num_steps == dense_sol.num_steps
    np.testing.assert_allclose(sparse_sol.x, dense_sol.x, rtol=0, atol=1e-12)
    reference = spla.lsqr(A, b, atol=1e-14, btol=1e-14, iter_lim=5000)[0]
    np.testing.assert_allclose(sparse_sol.x, reference, atol=1e-7)


@pytest.mark.parametrize("method", METHODS, ids=IDS)
def test_torch_sparse_csr_square_system_matches_spsolve(method, no_densify):
    n = 300
    A = sp.random_array((n, n), density=0.02, random_state=5, format="csr")
    A = sp.csr_array(A + 4 * sp.eye_array(n))
    b = np.cos(np.arange(n))
    At = torch.sparse_csr_tensor(
        torch.from_numpy(A.indptr.astype(np.int64)),
        torch.from_numpy(A.indices.astype(np.int64)),
        torch.from_numpy(A.data),
        size=A.shape,
        check_invariants=True,
    )
    sol = itersolve.linear_solve(At, torch.from_numpy(b), method)
    assert sol.success and isinstance(sol.x, torch.Tensor)
    assert no_densify == []
    np.testing.assert_allclose(sol.x.numpy(), spla.spsolve(A.tocsc(), b), atol=1e-8)


@pytest.mark.parametrize("method", METHODS, ids=IDS)
def test_sparse_float32_and_several_right_hand_sides(method):
    A, b = _system()
    B = np.stack([b, 2 * b], axis=1)
    sol = itersolve.linear_solve(A, B, method)
    assert sol.success
    np.testing.assert_allclose(sol.x[:, 1], 2 * sol.x[:, 0], rtol=1e-6)
    low = type(method)(rtol=1e-4, **_non_tolerance(method))
    single = itersolve.linear_solve(A.astype(np.float32), b.astype(np.float32), low)
    assert single.success and single.x.dtype == np.float32
    rel = np.linalg.norm(A @ single.x - b) / np.linalg.norm(b)
    assert rel <= 1e-4


def _non_tolerance(method):
    names = ("residual",) if isinstance(method, RandomizedKaczmarz) else ()
    names += ("sketch", "sketch_size") if isinstance(method, SketchAndProject) else ()
    return {name: getattr(method, name) for name in names}


def test_sparse_nonfinite_entries_reported():
    A, b = _system()
    A = A.copy()
    A.data[7] = np.nan
    for method in (RandomizedKaczmarz(), SketchAndProject()):
        with pytest.warns(itersolve.ConvergenceWarning, match="NONFINITE_INPUT"):
            sol = itersolve.linear_solve(A, b, method)
        assert sol.status is itersolve.Status.NONFINITE_INPUT


@pytest.mark.gpu
@pytest.mark.parametrize("method", METHODS, ids=IDS)
def test_cuda_sparse_and_dense_keep_device(method):
    A, b = _system()
    cpu = itersolve.linear_solve(A, b, method)
    csr = itersolve.aslinearoperator(A, device="cuda")
    b_cuda = torch.from_numpy(b).cuda()
    sparse = itersolve.linear_solve(csr, b_cuda, method)
    dense = itersolve.linear_solve(torch.from_numpy(A.toarray()).cuda(), b_cuda, method)
    for sol in (sparse, dense):
        assert sol.success and sol.x.is_cuda
        np.testing.assert_allclose(sol.x.cpu().numpy(), cpu.x, atol=1e-7)
