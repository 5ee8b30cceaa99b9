"""Relaxation on CUDA: the torch backend (dense triangular solves) keeps the device."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from itersolve import linear_solve
from itersolve.linear import SOR, SSOR, SSORPCG, Jacobi, SSORPreconditioner
from itersolve.problems import poisson


@pytest.mark.gpu
@pytest.mark.parametrize(
    "method",
    [
        Jacobi(rtol=1e-8),
        SOR(omega=1.5, rtol=1e-8),
        SSOR(omega=1.3, rtol=1e-8),
        SSORPCG(omega=1.5, rtol=1e-8),
    ],
    ids=["jacobi", "sor", "ssor", "ssor-pcg"],
)
def test_cuda_matches_cpu(method):
    A = torch.from_numpy(poisson(8, dim=2).toarray())
    b = torch.from_numpy(np.random.default_rng(0).standard_normal(64))
    cpu = linear_solve(A, b, method)
    gpu = linear_solve(A.cuda(), b.cuda(), method)
    assert gpu.success and gpu.x.is_cuda
    assert abs(gpu.num_steps - cpu.num_steps) <= 1
    torch.testing.assert_close(gpu.x.cpu(), cpu.x, rtol=1e-6, atol=1e-8)


@pytest.mark.gpu
def test_ssor_preconditioner_on_cuda():
    A = torch.from_numpy(poisson(6, dim=2).toarray()).cuda()
    P = SSORPreconditioner(A, 1.4)
    assert P.backend == "torch" and P.to_dense().is_cuda
    cpu = SSORPreconditioner(A.cpu(), 1.4, backend="torch").to_dense()
    torch.testing.assert_close(P.to_dense().cpu(), cpu)
