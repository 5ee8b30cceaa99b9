"""The shared Krylov engine: inner entry vs full solve, compiled single-vector
paths vs block paths, and the families moved onto it (SNS, DSA-GMRES)."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as spla
import torch

from itersolve import Status, aslinearoperator, linear_solve
from itersolve import ot as itot
from itersolve.linear import CG, GMRES, MINRES, FlexibleCG, inner_solve
from itersolve.pde.transport import (
    TransportGMRES,
    direct_transport_solve,
    homogeneous_slab,
    reed_problem,
    transport_solve,
)
from itersolve.problems import (
    convection_diffusion,
    poisson,
    random_assignment,
    symmetric_indefinite,
)

# -- catalogue: systems x operator kinds x methods -------------------------------

SYSTEMS: dict[str, Callable[[], Any]] = {
    "poisson2d-12": lambda: poisson(12, dim=2),
    "indefinite-40": lambda: sp.csr_array(symmetric_indefinite(40, seed=5)),
    "convection-8": lambda: convection_diffusion(8, dim=2, peclet=20.0),
}

METHODS: dict[str, tuple[Callable[[], Any], tuple[str, ...]]] = {
    # name: (solver, systems it applies to)
    "minres": (lambda: MINRES(rtol=1e-10), ("poisson2d-12", "indefinite-40")),
    "minres-jacobi": (lambda: MINRES(rtol=1e-10, M="jacobi"), ("poisson2d-12",)),
    "gmres": (lambda: GMRES(rtol=1e-10, restart=15), ("poisson2d-12", "convection-8")),
    # restarted GMRES can stall on an indefinite matrix: a full Krylov space
    "gmres-full": (lambda: GMRES(rtol=1e-10, restart=40), ("indefinite-40",)),
    "gmres-jacobi": (
        lambda: GMRES(rtol=1e-10, restart=15, M="jacobi"),
        ("convection-8",),
    ),
    "flexible-cg": (lambda: FlexibleCG(rtol=1e-10, truncation=2), ("poisson2d-12",)),
}

OPERATORS: dict[str, Callable[[sp.csr_array], Any]] = {
    "csr": lambda A: aslinearoperator(A),
    "dense": lambda A: torch.from_numpy(A.toarray()),
    "callable": lambda A: _matrix_free(A),
}

PAIRS = [
    (method, system) for method, (_, systems) in METHODS.items() for system in systems
]


def _matrix_free(A: sp.csr_array) -> Any:
    dense = torch.from_numpy(A.toarray())
    return aslinearoperator(lambda x: dense @ x, shape=A.shape, dtype=torch.float64)


def _rhs(n: int, k: int | None, seed: int = 0) -> torch.Tensor:
    shape = (n,) if k is None else (n, k)
    return torch.from_numpy(np.random.default_rng(seed).standard_normal(shape))


def _skip_jacobi_matrix_free(method: str, operator: str) -> None:
    if "jacobi" in method and operator == "callable":
        pytest.skip("M='jacobi' needs the diagonal of an explicit matrix")


@pytest.mark.parametrize("k", [None, 3], ids=["vector", "block3"])
@pytest.mark.parametrize("operator", OPERATORS)
@pytest.mark.parametrize(("method", "system"), PAIRS)
def test_inner_solve_repeats_the_full_solve(method, system, operator, k):
    """Same recurrence through both entries: same matvecs, same steps, same x."""
    _skip_jacobi_matrix_free(method, operator)
    A = SYSTEMS[system]()
    b = _rhs(A.shape[0], k)
    make = METHODS[method][0]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the inner entry never warns
        inner = inner_solve(make(), OPERATORS[operator](A), b)
    full = linear_solve(OPERATORS[operator](A), b, make())
    assert inner.status is Status.SUCCESS and full.status is Status.SUCCESS
    assert inner.num_steps == full.num_steps
    assert inner.stats["matvecs"] == full.stats["matvecs"]
    scale = float(full.x.abs().max())
    assert float((inner.x - full.x).abs().max()) <= 1e-12 * scale
    # ... and it is the answer: the direct solve of each column.
    reference = spla.spsolve(A.tocsc(), b.numpy())
    np.testing.assert_allclose(
        full.x.numpy(),
        reference.reshape(full.x.shape),
        atol=1e-7 * np.abs(reference).max(),
    )


@pytest.mark.parametrize(("method", "system"), PAIRS)
def test_single_vector_path_matches_block_path(method, system):
    """b of shape (n,) takes the compiled single-vector kernels, (n, 1) the block
    path: one recurrence, so nearly the same steps and the same iterate."""
    A = SYSTEMS[system]()
    b = _rhs(A.shape[0], None, seed=4)
    make = METHODS[method][0]
    single = linear_solve(A, b, make())
    block = linear_solve(A, b[:, None], make())
    assert single.status is Status.SUCCESS and block.status is Status.SUCCESS
    # Rounding differs (fused passes vs separate vector operations), so the
    # stopping test may trip a step or two apart.
    assert abs(single.num_steps - block.num_steps) <= max(2, 0.05 * block.num_steps)
    np.testing.assert_allclose(
        single.x.numpy(), block.x[:, 0].numpy(), atol=1e-8 * float(single.x.abs().max())
    )


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("make", [lambda: MINRES(rtol=1e-5), lambda: GMRES(rtol=1e-5)])
def test_single_vector_path_dtypes(make, dtype):
    A = poisson(10, dim=2)
    b = _rhs(A.shape[0], None).to(dtype)
    sol = linear_solve(aslinearoperator(A, dtype=dtype), b, make())
    assert sol.success and sol.x.dtype == dtype
    r = b.double().numpy() - A @ sol.x.double().numpy()
    assert np.linalg.norm(r) <= 1e-5 * np.linalg.norm(b.double().numpy()) * 1.01


def _scipy_gmres_steps(A: Any, b: np.ndarray, rtol: float, restart: int) -> int:
    count = [0]

    def callback(_: float) -> None:
        count[0] += 1

    _, info = spla.gmres(
        A,
        b,
        rtol=rtol,
        atol=0.0,
        restart=restart,
        callback=callback,
        callback_type="pr_norm",
        maxiter=10_000,
    )
    assert info == 0
    return count[0]


def _scipy_minres_steps(A: Any, b: np.ndarray, rtol: float) -> int:
    """scipy's first MINRES iterate whose true residual meets the shared rule."""
    hits: list[int] = []
    count = [0]

    def callback(xk: np.ndarray) -> None:
        count[0] += 1
        if not hits and np.linalg.norm(b - A @ xk) <= rtol * np.linalg.norm(b):
            hits.append(count[0])

    spla.minres(A, b, rtol=1e-15, maxiter=5 * A.shape[0], callback=callback)
    return hits[0]


@pytest.mark.parametrize("n", [16, 40])
def test_iteration_counts_match_scipy(n):
    A = poisson(n, dim=2)
    b = np.random.default_rng(n).standard_normal(n * n)
    rtol = 1e-6
    ours = linear_solve(A, b, GMRES(rtol=rtol, restart=20))
    theirs = _scipy_gmres_steps(A, b, rtol, 20)
    assert ours.success and abs(ours.num_steps - theirs) <= 0.02 * theirs
    ours = linear_solve(A, b, MINRES(rtol=rtol))
    theirs = _scipy_minres_steps(A, b, rtol)
    assert ours.success and abs(ours.num_steps - theirs) <= 0.02 * theirs


def test_inner_solve_stops_at_max_steps_without_warning():
    A = poisson(20, dim=2)
    b = _rhs(A.shape[0], None)
    for method in (MINRES(rtol=1e-12), GMRES(rtol=1e-12), FlexibleCG(rtol=1e-12)):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            sol = inner_solve(method, aslinearoperator(A), b, max_steps=5)
        assert sol.status is Status.MAX_STEPS and sol.num_steps == 5


@pytest.mark.parametrize("k", [None, 1], ids=["vector", "block1"])
def test_minres_reports_an_indefinite_jacobi_preconditioner(k):
    # A symmetric with a diagonal of both signs: M = D^{-1} is indefinite, and
    # r^T M r turns negative within a few Lanczos steps.
    n = 40
    d = np.where(np.arange(n) < 30, 2.0 + np.arange(n), -3.0 - np.arange(n))
    A = sp.diags([d, np.ones(n - 1), np.ones(n - 1)], [0, 1, -1]).tocsr()
    b = _rhs(n, k, seed=1)
    sol = inner_solve(MINRES(rtol=1e-12, M="jacobi"), aslinearoperator(A), b)
    assert sol.status is Status.NOT_POSITIVE_DEFINITE


def test_gmres_inconsistent_singular_system_does_not_claim_success():
    # A singular (zero last row/column); b has a component outside the range.
    A = sp.diags([1.0, 2.0, 3.0, 0.0]).tocsr()
    b = torch.tensor([1.0, 1.0, 1.0, 1.0], dtype=torch.float64)
    for method in (GMRES(rtol=1e-10, restart=3), MINRES(rtol=1e-10)):
        sol = inner_solve(method, aslinearoperator(A), b, max_steps=50)
        assert sol.status is not Status.SUCCESS


# -- families on the engine ---------------------------------------------------------


@pytest.mark.parametrize(
    "solver",
    [None, CG(rtol=1e-6, M="jacobi"), MINRES(rtol=1e-3, M="jacobi")],
    ids=["default", "cg-tight", "minres"],
)
def test_sinkhorn_newton_sparse_matches_pot(solver):
    pot = pytest.importorskip("ot")
    inst = random_assignment(60, seed=2)
    reg = 0.02
    kwargs = {} if solver is None else {"linear_solver": solver}
    method = itot.SinkhornNewtonSparse(tol=1e-11, **kwargs)
    sol = itot.transport(inst.a, inst.b, inst.cost, method, reg=reg)
    assert sol.success and sol.stats["newton_steps"] > 0 and sol.stats["cg_steps"] > 0
    plan = pot.sinkhorn(
        inst.a,
        inst.b,
        inst.cost,
        reg,
        method="sinkhorn_log",
        stopThr=1e-14,
        numItermax=200_000,
        warn=False,
    )
    np.testing.assert_allclose(np.asarray(sol.x), plan, atol=1e-9 * plan.max())


def test_sinkhorn_newton_sparse_rejects_a_non_solver():
    with pytest.raises(TypeError, match="linear_solver"):
        itot.SinkhornNewtonSparse(linear_solver="cg")


@pytest.mark.parametrize("preconditioner", ["dsa", None])
@pytest.mark.parametrize(
    "build",
    [lambda: homogeneous_slab(40.0, 80, c=0.99), lambda: reed_problem(4)],
    ids=["thick-c0.99", "reed"],
)
def test_transport_gmres_matches_scipy_gmres(build, preconditioner):
    """DSA-GMRES through the engine = scipy's gmres on the same operator."""
    problem = build()
    method = TransportGMRES(
        linear_solver=GMRES(rtol=1e-12, restart=30), preconditioner=preconditioner
    )
    ours = transport_solve(problem, method)
    assert ours.success
    x0 = torch.zeros(problem.n_cells, dtype=torch.float64)
    state = method.init(problem, x0)  # the operator P (I - T) and P Sweep(q)
    n = problem.n_cells
    op = spla.LinearOperator((n, n), matvec=state.apply, dtype=np.float64)
    count = [0]

    def callback(_: float) -> None:
        count[0] += 1

    x, info = spla.gmres(
        op,
        state.rhs.numpy(),
        rtol=1e-12,
        atol=0.0,
        restart=30,
        maxiter=100,
        callback=callback,
        callback_type="pr_norm",
    )
    assert info == 0
    scale = np.abs(x).max()
    np.testing.assert_allclose(np.asarray(ours.x), x, atol=1e-10 * scale)
    assert abs(ours.stats["inner_steps"] - count[0]) <= 1
    ref = direct_transport_solve(problem)
    assert np.abs(np.asarray(ours.x) - ref).max() <= 1e-8 * np.abs(ref).max()


@pytest.mark.parametrize("k", [None, 2], ids=["vector", "block2"])
@pytest.mark.parametrize(
    "make",
    [
        lambda: MINRES(rtol=1e-8, check_every=7),
        lambda: GMRES(rtol=1e-8, restart=10, check_every=7),
        lambda: FlexibleCG(rtol=1e-8, check_every=7),
    ],
    ids=["minres", "gmres", "flexible-cg"],
)
def test_checks_every_few_steps_still_confirm_the_rule(make, k):
    """Between check points a converged recurrence idles; the check confirms
    the rule on the true residual (no breakdown status for an early finish)."""
    A = poisson(10, dim=2)
    b = _rhs(A.shape[0], k, seed=7)
    every = linear_solve(A, b, make())
    assert every.status is Status.SUCCESS and every.num_steps % 7 == 0
    r = b.numpy() - A @ every.x.numpy()
    norms = np.linalg.norm(r.reshape(A.shape[0], -1), axis=0)
    bnorms = np.linalg.norm(b.numpy().reshape(A.shape[0], -1), axis=0)
    assert np.all(norms <= 1e-8 * bnorms)


@pytest.mark.gpu
@pytest.mark.parametrize("k", [None, 4], ids=["vector", "block4"])
@pytest.mark.parametrize(
    "make",
    [
        lambda: MINRES(rtol=1e-10),
        lambda: GMRES(rtol=1e-10, restart=20),
        lambda: FlexibleCG(rtol=1e-10),
    ],
    ids=["minres", "gmres", "flexible-cg"],
)
def test_cuda_matches_cpu(make, k):
    """The block paths on CUDA: device kept, CPU's answer, through both entries."""
    A = poisson(16, dim=2)
    b = _rhs(A.shape[0], k)
    cpu = linear_solve(A, b, make())
    op = aslinearoperator(A, device="cuda")
    gpu = linear_solve(op, b.cuda(), make())
    inner = inner_solve(make(), aslinearoperator(A, device="cuda"), b.cuda())
    for sol in (gpu, inner):
        assert sol.status is Status.SUCCESS and sol.x.device.type == "cuda"
        torch.testing.assert_close(sol.x.cpu(), cpu.x, rtol=1e-7, atol=1e-7)
