"""CG on CUDA: device and dtype preserved, CPU answers, no host sync per step."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from itersolve import aslinearoperator, linear_solve
from itersolve.linear import CG
from itersolve.linear._cg import CUDA_CHECK_EVERY
from itersolve.linear._problem import LinearProblem
from itersolve.problems import poisson, random_spd


def _rhs(n: int, k: int | None) -> torch.Tensor:
    shape = (n,) if k is None else (n, k)
    gen = torch.Generator().manual_seed(0)
    return torch.randn(shape, dtype=torch.float64, generator=gen)


@pytest.mark.gpu
@pytest.mark.parametrize("k", [None, 8])
@pytest.mark.parametrize("M", [None, "jacobi"])
def test_cg_on_cuda_matches_cpu(k, M):
    A = poisson(32, dim=2)
    B = _rhs(A.shape[0], k)
    cpu = linear_solve(A, B, CG(rtol=1e-10, M=M))
    op = aslinearoperator(A, device="cuda")
    gpu = linear_solve(op, B.cuda(), CG(rtol=1e-10, M=M))
    assert gpu.success and gpu.x.device.type == "cuda" and gpu.x.dtype == torch.float64
    torch.testing.assert_close(gpu.x.cpu(), cpu.x, rtol=1e-8, atol=1e-8)
    # tests every CUDA_CHECK_EVERY steps: at most that many steps more
    assert cpu.num_steps <= gpu.num_steps < cpu.num_steps + CUDA_CHECK_EVERY


@pytest.mark.gpu
def test_batched_dense_cg_on_cuda_matches_cpu():
    A = torch.from_numpy(random_spd(32, batch=50, seed=1))
    b = torch.randn(
        50, 32, dtype=torch.float64, generator=torch.Generator().manual_seed(1)
    )
    cpu = linear_solve(A, b, CG(rtol=1e-10))
    gpu = linear_solve(A.cuda(), b.cuda(), CG(rtol=1e-10))
    assert gpu.success and gpu.x.is_cuda
    torch.testing.assert_close(gpu.x.cpu(), cpu.x, rtol=1e-8, atol=1e-8)


@pytest.mark.gpu
@pytest.mark.parametrize("k", [None, 4])
@pytest.mark.parametrize("layout", ["dense", "csr"])
def test_no_host_sync_between_check_points(k, layout):
    A = poisson(16, dim=2)
    matrix = A if layout == "csr" else np.asarray(A.toarray())
    op = aslinearoperator(matrix, device="cuda")
    b = _rhs(A.shape[0], k).cuda()
    method = CG(rtol=1e-12)
    problem = LinearProblem(op, b)
    assert method.default_check_every(problem) == CUDA_CHECK_EVERY > 1
    state = method.init(problem, torch.zeros_like(b))
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for _ in range(CUDA_CHECK_EVERY - 1):
            state = method.step(problem, state)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    done, _ = method.terminate(problem, state)  # the check point syncs once
    assert not done and state.steps == CUDA_CHECK_EVERY - 1
