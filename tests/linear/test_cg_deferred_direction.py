"""CG on one right-hand side skips ``z = M r`` on the step that meets its test."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
import torch

from itersolve import aslinearoperator
from itersolve.linear import CG, linear_solve
from itersolve.linear._problem import LinearProblem
from itersolve.problems import poisson


def _counting_jacobi(A: sp.csr_array) -> tuple[list[int], object]:
    inverse = torch.from_numpy(1.0 / A.diagonal())
    calls = [0]

    def apply(r: torch.Tensor) -> torch.Tensor:
        calls[0] += 1
        return inverse * r

    return calls, apply


def test_one_preconditioner_application_per_step_and_none_after_the_last():
    A = sp.csr_array(poisson(20))
    b = np.ones(A.shape[0])
    calls, M = _counting_jacobi(A)
    sol = linear_solve(A, b, CG(rtol=1e-10, M=M))
    assert sol.success
    # one at the start, one after every step but the one that met the test
    assert calls[0] == sol.num_steps
    np.testing.assert_allclose(sol.x, spla.spsolve(A.tocsc(), b), rtol=1e-8)


def test_a_step_after_a_deferred_direction_completes_it_first():
    # The driver stops at the step that meets the test; a step that still
    # follows it (the safety net) must finish the skipped update and take the
    # same iterates as a run that never deferred.
    A = sp.csr_array(poisson(12))
    b = torch.ones(A.shape[0], dtype=torch.float64)
    _, M = _counting_jacobi(A)
    problem = LinearProblem(aslinearoperator(A), b)
    method = CG(rtol=1e-10, M=M)
    deferred = method.init(problem, torch.zeros_like(b))
    plain = method.init(problem, torch.zeros_like(b))
    assert deferred.scalar
    deferred.limit = float("inf")  # every step "meets the test" and defers
    for _ in range(6):
        deferred = method.step(problem, deferred)
        plain = method.step(problem, plain)
        assert deferred.direction_pending
        torch.testing.assert_close(deferred.x, plain.x, rtol=1e-12, atol=1e-14)
