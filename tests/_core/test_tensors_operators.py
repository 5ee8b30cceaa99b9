"""The array boundary and LinearOperator over every supported input kind."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as spla
import torch

from itersolve import aslinearoperator
from itersolve._core.tensors import Kind, as_tensor, result_dtype, to_output

DENSE = np.array([[4.0, 1.0, 0.0], [1.0, 3.0, -1.0], [0.0, -1.0, 2.0]])


@pytest.mark.parametrize(
    ("value", "kind", "dtype"),
    [
        (np.array([1.0, 2.0], dtype=np.float32), Kind.NUMPY, torch.float32),
        (np.array([1, 2]), Kind.NUMPY, torch.float64),
        (torch.tensor([1.0, 2.0]), Kind.TORCH, torch.float32),
        (torch.tensor([True, False]), Kind.TORCH, torch.float64),
        ([1, 2], Kind.SEQUENCE, torch.float64),
    ],
)
def test_as_tensor_kinds_and_dtypes(value, kind, dtype):
    t, info = as_tensor(value, "b")
    assert info.kind is kind and t.dtype == dtype
    out = to_output(t, info)
    assert isinstance(out, torch.Tensor if kind is Kind.TORCH else np.ndarray)


def test_as_tensor_copy_never_aliases_input():
    a = np.ones(3)
    t, _ = as_tensor(a, "x0", copy=True)
    t += 1
    assert (a == 1).all()


@pytest.mark.parametrize(
    ("value", "error", "message"),
    [
        (sp.eye(2), TypeError, "b must be a dense array"),
        ("abc", TypeError, "b must be a torch.Tensor"),
        (np.array([object()]), TypeError, "dtype=object"),
        (torch.eye(2).to_sparse(), TypeError, "b must be dense"),
    ],
)
def test_as_tensor_rejects(value, error, message):
    with pytest.raises(error, match=message):
        as_tensor(value, "b")


def test_result_dtype_promotes_never_downcasts():
    assert result_dtype(torch.float32, torch.float64) == torch.float64
    assert result_dtype(torch.int64, torch.float32) == torch.float32
    assert result_dtype(torch.int64) == torch.float64


def _operators():
    t = torch.from_numpy(DENSE)
    coo = sp.coo_matrix(DENSE)
    return {
        "numpy": DENSE,
        "torch": t,
        "torch_csr": t.to_sparse_csr(),
        "torch_coo": t.to_sparse(),
        "scipy_csr": sp.csr_array(DENSE),
        "scipy_coo_matrix": coo,
        "scipy_linear_operator": spla.aslinearoperator(DENSE),
        "callable": lambda x: torch.from_numpy(DENSE) @ x,
    }


@pytest.mark.parametrize("name", list(_operators()))
def test_operator_matches_dense_and_counts(name):
    op = aslinearoperator(_operators()[name], shape=(3, 3))
    x = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    X = torch.arange(6, dtype=torch.float64).reshape(3, 2)
    torch.testing.assert_close(op.matvec(x), torch.from_numpy(DENSE @ x.numpy()))
    torch.testing.assert_close(op @ X, torch.from_numpy(DENSE @ X.numpy()))
    assert op.matvecs == 3
    assert op.shape == (3, 3)


@pytest.mark.parametrize(
    "name", ["numpy", "torch", "torch_csr", "torch_coo", "scipy_csr"]
)
def test_operator_diagonal_and_transpose(name):
    op = aslinearoperator(_operators()[name])
    torch.testing.assert_close(op.diagonal(), torch.from_numpy(np.diag(DENSE).copy()))
    y = torch.tensor([1.0, 0.0, 2.0], dtype=torch.float64)
    torch.testing.assert_close(op.T @ y, torch.from_numpy(DENSE.T @ y.numpy()))


def test_sparse_diagonal_with_missing_entries():
    A = sp.csr_array(np.array([[0.0, 1.0], [2.0, 5.0]]))
    torch.testing.assert_close(
        aslinearoperator(A).diagonal(), torch.tensor([0.0, 5.0], dtype=torch.float64)
    )


def test_matrix_free_operator_errors():
    op = aslinearoperator(lambda x: x, shape=(2, 2))
    with pytest.raises(ValueError, match="diagonal"):
        op.diagonal()
    with pytest.raises(ValueError, match="cannot be applied to an array of shape"):
        op.matvec(torch.ones(3, dtype=torch.float64))


@pytest.mark.parametrize(
    ("value", "kwargs", "error", "message"),
    [
        (lambda x: x, {}, ValueError, "callable matvec needs shape"),
        (np.ones(3), {}, ValueError, "2-D matrix"),
        ("A", {}, TypeError, "A must be a tensor"),
    ],
)
def test_aslinearoperator_rejects(value, kwargs, error, message):
    with pytest.raises(error, match=message):
        aslinearoperator(value, **kwargs)


def test_integer_matrix_becomes_float64():
    assert aslinearoperator(np.eye(2, dtype=int)).dtype == torch.float64
    assert aslinearoperator(sp.eye(2, dtype=int, format="csr")).dtype == torch.float64


def test_read_only_numpy_input_is_accepted():
    a = np.ones(3)
    a.flags.writeable = False
    t, _ = as_tensor(a, "b")
    assert t.sum() == 3
    assert aslinearoperator(np.diag(DENSE)[None, :].repeat(3, 0)).shape == (3, 3)


def test_structure_tags_declared_copied_and_checked():
    A = sp.csr_array(np.diag([2.0, 3.0]))
    plain = aslinearoperator(A)
    assert (plain.symmetric, plain.positive_definite) == (None, None)
    spd = aslinearoperator(A, positive_definite=True)
    assert (spd.symmetric, spd.positive_definite) == (True, True)
    assert "positive_definite=True" in repr(spd)
    sym = plain.with_tags(symmetric=True)
    assert (sym.symmetric, sym.positive_definite) == (True, None)
    assert sym.matrix is plain.matrix and plain.symmetric is None  # a copy
    assert aslinearoperator(sym) is sym  # tags survive re-wrapping
    x = torch.ones(2, dtype=torch.float64)
    torch.testing.assert_close(sym.matvec(x), plain.matvec(x))
    assert sym.matvecs == 1 and plain.matvecs == 1
    with pytest.raises(ValueError, match="contradicts symmetric=False"):
        aslinearoperator(A, symmetric=False, positive_definite=True)
    with pytest.raises(ValueError, match="only a square operator"):
        aslinearoperator(np.ones((2, 3)), symmetric=True)
    with pytest.raises(TypeError, match="symmetric must be True, False or None"):
        plain.with_tags(symmetric="yes")
