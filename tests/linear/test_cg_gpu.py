"""CG on CUDA: device and dtype preserved, same answer as on the CPU."""

import pytest
import torch

from itersolve import CG, aslinearoperator, linear_solve
from itersolve.problems import poisson


@pytest.mark.gpu
def test_cg_on_cuda_matches_cpu():
    A = poisson(32, dim=2)
    B = torch.randn(
        A.shape[0], 8, dtype=torch.float64, generator=torch.Generator().manual_seed(0)
    )
    cpu = linear_solve(A, B, CG(rtol=1e-10))
    op = aslinearoperator(A, device="cuda")
    gpu = linear_solve(op, B.cuda(), CG(rtol=1e-10))
    assert gpu.success and gpu.x.device.type == "cuda" and gpu.x.dtype == torch.float64
    torch.testing.assert_close(gpu.x.cpu(), cpu.x, rtol=1e-8, atol=1e-8)
