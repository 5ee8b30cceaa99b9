"""Batched CARE and Lyapunov sign iterations on CUDA: same answers as scipy."""

import numpy as np
import pytest
import scipy.linalg as sla
import torch

from itersolve import Status
from itersolve.control import care, lyapunov


@pytest.mark.gpu
def test_batched_care_and_lyapunov_on_cuda_match_scipy():
    rng = np.random.default_rng(0)
    A = rng.standard_normal((200, 10, 10))
    B = rng.standard_normal((200, 10, 3))
    C = rng.standard_normal((200, 10, 10))
    Q = C @ C.transpose(0, 2, 1) / 10 + 0.1 * np.eye(10)
    R = 0.5 * np.eye(3)
    cuda = [torch.from_numpy(M).cuda() for M in (A, B, Q, R)]
    sol = care(*cuda, full_output=True)
    assert sol.status is Status.SUCCESS and sol.x.device.type == "cuda"
    P = sol.x.cpu().numpy()
    for i in range(0, 200, 20):
        ref = sla.solve_continuous_are(A[i], B[i], Q[i], R)
        np.testing.assert_allclose(P[i], ref, rtol=1e-10, atol=1e-10)
    one = care(*cuda, max_steps=1, full_output=True)
    assert one.status is Status.MAX_STEPS
    H = torch.from_numpy(rng.standard_normal((50, 20, 20)) - 6 * np.eye(20)).cuda()
    X = lyapunov(H, torch.eye(20, dtype=torch.float64, device="cuda"), method="sign")
    assert X.device.type == "cuda"
    for i in range(0, 50, 10):
        ref = sla.solve_continuous_lyapunov(H[i].T.cpu().numpy(), -np.eye(20))
        np.testing.assert_allclose(X[i].cpu().numpy(), ref, rtol=1e-10, atol=1e-12)
