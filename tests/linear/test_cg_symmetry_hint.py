"""CG on a nonsymmetric matrix says so when it fails (issue 21, validation gaps).

The symmetry check costs a pass over the matrix, so it runs only after a run
that did not succeed, only for an explicit matrix, and never on success.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from itersolve import ConvergenceWarning, Status, aslinearoperator, linear_solve
from itersolve.linear import CG
from itersolve.linear import _cg as cg_module
from itersolve.problems import poisson


def _nonsymmetric(n=30, seed=0):
    rng = np.random.default_rng(seed)
    return np.eye(n) * 4 + rng.standard_normal((n, n)), rng.standard_normal(n)


@pytest.mark.parametrize("kind", ["numpy", "scipy-csr", "torch"])
def test_nonsymmetric_matrix_named_in_the_message(kind):
    A, b = _nonsymmetric()
    A_in = {"numpy": A, "scipy-csr": sp.csr_matrix(A), "torch": torch.as_tensor(A)}
    with pytest.warns(ConvergenceWarning, match="not symmetric") as caught:
        sol = linear_solve(A_in[kind], b, CG(max_steps=10))
    assert sol.status is Status.MAX_STEPS
    assert "A is not symmetric" in sol.message and "use GMRES" in sol.message
    assert "max|A - A^T| = " in sol.detail
    assert sol.message in str(caught[0].message)


def test_symmetric_matrix_failing_gets_no_symmetry_note():
    A = poisson(10, dim=2)
    b = np.ones(A.shape[0])
    with pytest.warns(ConvergenceWarning):
        sol = linear_solve(A, b, CG(max_steps=2))
    assert sol.status is Status.MAX_STEPS and sol.detail is None
    assert "not symmetric" not in sol.message


def test_matrix_free_operator_is_not_probed():
    A, b = _nonsymmetric()
    dense = torch.as_tensor(A)
    op = aslinearoperator(lambda x: dense @ x, shape=A.shape, dtype=torch.float64)
    with pytest.warns(ConvergenceWarning):
        sol = linear_solve(op, b, CG(max_steps=10))
    assert sol.status is Status.MAX_STEPS and sol.detail is None


def test_no_check_on_success(monkeypatch):
    def refuse(A):
        raise AssertionError("the symmetry check ran on a successful solve")

    monkeypatch.setattr(cg_module, "asymmetry", refuse)
    A = poisson(10, dim=2)
    assert linear_solve(A, np.ones(A.shape[0]), CG()).success
