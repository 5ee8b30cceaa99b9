"""Registry of every solver method for the contract battery (``test_contract.py``).

One :class:`Entry` per configured method, in the style of torch's
``OptimizerInfo``: a tiny problem built in the requested array kind and dtype,
the front door that runs it, valid configurations (tight for float64, loose for
the float32 twin) and error configurations with the expected message. What an
entry cannot be asked (an array kind or dtype its front door documents it does
not keep) is declared with the reason, in the style of SciPy's ``Case``.

``BASES`` lists the public :class:`~itersolve.IterativeMethod` subclasses that
are shared hyperparameter bases, not methods: they have no step of their own.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from itersolve import Solution, Status
from itersolve._core.iterate import IterativeMethod, finish, iterate
from itersolve.control import (
    IntegralPolicyIteration,
    Kleinman,
    MatrixSign,
    SignProblem,
    policy_iteration,
    solve_lqr,
    third_order_linear,
)
from itersolve.fixed_point import (
    Anderson,
    Broyden,
    FixedPointIteration,
    FixedPointMethod,
    fixed_point,
)
from itersolve.fixed_point import NewtonKrylov as FixedPointNewtonKrylov
from itersolve.linear import (
    CG,
    GMRES,
    MINRES,
    SOR,
    SSOR,
    SSORPCG,
    FlexibleCG,
    GaussSeidel,
    Jacobi,
    NewtonSchulz,
    RandomizedKaczmarz,
    SketchAndProject,
    linear_solve,
    newton_schulz_inverse,
)
from itersolve.optimize import (
    BlockCoordinateDescent,
    CubicRegularizedNewton,
    GradientDescent,
    GradientMethod,
    HeavyBall,
    Nesterov,
    Newton,
    RegularizedNewton,
    TripleMomentum,
    minimize,
)
from itersolve.ot import Sinkhorn, SinkhornNewtonSparse, transport
from itersolve.pde import (
    L2GradientDescent,
    NewtonKrylov,
    PicardIteration,
    SlabProblem,
    SobolevGradientDescent,
    SourceIteration,
    TransportGMRES,
    VariationalProblem,
    log_gradient_energy,
    solve_variational,
    transport_solve,
)
from itersolve.problems import LeastSquares

Inputs = dict[str, Any]
Runner = Callable[..., Solution]

BASES: dict[type, str] = {
    GradientMethod: "shared hyperparameters (rtol, atol, L, mu) of GradientDescent, "
    "HeavyBall, Nesterov and TripleMomentum; it has no step of its own",
    FixedPointMethod: "shared stopping rule (rtol, atol) and bookkeeping of "
    "FixedPointIteration, Anderson and Broyden; it has no step of its own",
}


def convert(array: np.ndarray, kind: str, dtype: str) -> Any:
    """``array`` as a ``kind`` ("numpy" or "torch") array of ``dtype``."""
    out = np.array(array, dtype=dtype)
    return torch.from_numpy(out) if kind == "torch" else out


@dataclass(frozen=True)
class Entry:
    """One method configuration and the problem it is checked on.

    ``make(**overrides)`` builds the method (``overrides`` such as
    ``max_steps=1`` or ``seed=2``); ``loose`` are the overrides of the float32
    twin (a tolerance float32 can reach). ``data`` holds the problem's arrays
    in float64 numpy; ``run(inputs, method, callback=..., record=...)`` calls
    the front door on them after :func:`convert`. ``nan_key`` names the input
    poisoned by the NaN check. ``errors`` are ``(kwargs, regex)`` pairs whose
    construction must raise ``ValueError``.
    """

    name: str
    cls: type
    make: Callable[..., IterativeMethod]
    data: Callable[[], dict[str, np.ndarray]]
    run: Runner
    nan_key: str
    loose: dict[str, Any] = field(default_factory=dict)
    errors: tuple[tuple[dict[str, Any], str], ...] = ()
    kinds: tuple[str, ...] = ("numpy", "torch")
    float32: bool = True
    why: str = ""
    """Why a kind or float32 is left out (required when one is)."""
    tol32: float = 1e-3
    """Relative error allowed between the float32 and float64 answers."""
    seeded: bool = False
    one_step: Status = Status.MAX_STEPS
    """What ``max_steps=1`` gives; SUCCESS only where one step solves it."""

    def inputs(self, kind: str, dtype: str = "float64") -> Inputs:
        return {key: convert(a, kind, dtype) for key, a in self.data().items()}

    def __str__(self) -> str:
        return self.name


# -- problems (float64 numpy; converted per check) --------------------------------


def _tridiagonal() -> dict[str, np.ndarray]:
    """Strictly diagonally dominant SPD (cond ~ 2.6): every linear method,
    Jacobi and Kaczmarz included, converges on it in a few dozen steps."""
    n = 6
    A = 4.0 * np.eye(n) - np.eye(n, k=1) - np.eye(n, k=-1)
    return {"A": A, "b": np.linspace(1.0, 2.0, n)}


def _linear(inputs: Inputs, method: IterativeMethod, **kw: Any) -> Solution:
    return linear_solve(inputs["A"], inputs["b"], method, **kw)


def _inverse_data() -> dict[str, np.ndarray]:
    return {"S": _tridiagonal()["A"]}


def _inverse(inputs: Inputs, method: IterativeMethod, **kw: Any) -> Solution:
    return newton_schulz_inverse(inputs["S"], method, **kw)


def _least_squares() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "A": rng.standard_normal((12, 4)),
        "b": rng.standard_normal(12),
        "x0": np.zeros(4),
    }


def _minimize(inputs: Inputs, method: IterativeMethod, **kw: Any) -> Solution:
    problem = LeastSquares(inputs["A"], inputs["b"], l2=0.1)
    return minimize(problem, inputs["x0"], method, **kw)


def _transport_data() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(1)
    xs, ys = rng.standard_normal((6, 2)), rng.standard_normal((5, 2))
    cost = ((xs[:, None, :] - ys[None, :, :]) ** 2).sum(-1)
    return {"a": np.full(6, 1 / 6), "b": np.full(5, 1 / 5), "cost": cost / cost.max()}


def _transport(inputs: Inputs, method: IterativeMethod, **kw: Any) -> Solution:
    return transport(inputs["a"], inputs["b"], inputs["cost"], method, reg=0.1, **kw)


_VARIATIONAL = log_gradient_energy(6)


def _variational_data() -> dict[str, np.ndarray]:
    return {"f": _VARIATIONAL.f.numpy(), "u0": np.zeros(_VARIATIONAL.grid.shape)}


def _variational(inputs: Inputs, method: IterativeMethod, **kw: Any) -> Solution:
    p = _VARIATIONAL
    problem = VariationalProblem(p.grid, inputs["f"], p.flux, lam=p.lam, Lam=p.Lam)
    return solve_variational(problem, method, u0=inputs["u0"], **kw)


def _slab_data() -> dict[str, np.ndarray]:
    return {"sigma_t": np.linspace(1.0, 2.0, 10), "x0": np.zeros(10)}


def _slab(inputs: Inputs, method: IterativeMethod, **kw: Any) -> Solution:
    problem = SlabProblem(np.linspace(0.0, 5.0, 11), inputs["sigma_t"], 0.5, 1.0, 4)
    return transport_solve(problem, method, x0=inputs["x0"], **kw)


def _lqr_data() -> dict[str, np.ndarray]:
    return {
        "A": np.array([[1.0, 0.0], [0.0, -1.0]]),
        "B": np.array([[1.0], [1.0]]),
        "Q": np.eye(2),
        "R": np.eye(1),
        "K0": np.array([[3.0, 0.0]]),
    }


def _lqr(inputs: Inputs, method: IterativeMethod, **kw: Any) -> Solution:
    i = inputs
    return solve_lqr(i["A"], i["B"], i["Q"], i["R"], method, K0=i["K0"], **kw)


_SYSTEM = third_order_linear()


def _intrl_data() -> dict[str, np.ndarray]:
    return {"w0": _SYSTEM.w0}


def _intrl(inputs: Inputs, method: IterativeMethod, **kw: Any) -> Solution:
    return policy_iteration(_SYSTEM, method, w0=inputs["w0"], **kw)


def _sign_data() -> dict[str, np.ndarray]:
    return {"Z": np.array([[-2.0, 1.0, 0.0], [0.0, 3.0, 1.0], [0.5, 0.0, -1.0]])}


def _sign(inputs: Inputs, method: IterativeMethod, **kw: Any) -> Solution:
    # No front door takes a MatrixSign (lyapunov/care take a method name and no
    # callback): the driver is its entry, with the failure policy of finish().
    _, solution = iterate(method, SignProblem(), inputs["Z"], **kw)
    return finish(solution, throw=False)


# -- the registry -------------------------------------------------------------------


Errors = tuple[tuple[dict[str, Any], str], ...]


def _family(
    data: Callable[[], dict[str, np.ndarray]],
    run: Runner,
    nan_key: str,
    defaults: dict[str, Any],
    loose: dict[str, Any],
) -> Callable[..., Entry]:
    """The entry factory of one family: its problem, front door, the tight
    defaults of its methods and the float32 twin's overrides; an entry adds
    ``extra`` defaults (hyperparameters the problem needs) and may replace
    ``loose``."""

    def entry(name: str, cls: type, errors: Errors, **kwargs: Any) -> Entry:
        extra = {**defaults, **kwargs.pop("extra", {})}
        return Entry(
            name,
            cls,
            lambda **o: cls(**{**extra, **o}),
            data,
            run,
            nan_key=nan_key,
            loose=kwargs.pop("loose", loose),
            errors=errors,
            **kwargs,
        )

    return entry


_linear_entry = _family(_tridiagonal, _linear, "A", {"rtol": 1e-10}, {"rtol": 1e-5})
_optimize_entry = _family(
    _least_squares, _minimize, "x0", {"rtol": 1e-10}, {"rtol": 1e-4}
)
_variational_entry = _family(
    _variational_data, _variational, "u0", {"rtol": 1e-10}, {"rtol": 1e-5}
)


_TOL_ERRORS: Errors = (
    ({"rtol": -1.0}, r"rtol must be >= 0, got -1\.0"),
    ({"rtol": 0.0, "atol": 0.0}, r"rtol and atol cannot both be 0"),
    ({"max_steps": 0}, r"max_steps must be a positive int, got 0"),
    ({"check_every": 0}, r"check_every must be a positive int"),
    ({"time_limit": -1.0}, r"time_limit must be positive"),
)


_OMEGA_ERRORS: Errors = (
    ({"omega": 2.5}, r"omega must be in \(0, 2\), got 2\.5"),
    ({"omega": 0.0}, r"omega must be in \(0, 2\), got 0\.0"),
)


LINEAR = [
    _linear_entry(
        "cg",
        CG,
        (
            *_TOL_ERRORS,
            ({"backend": "cuda"}, r"backend must be one of .*'cuda'"),
            ({"residual_replacement": 0}, r"residual_replacement must be >= 1"),
        ),
    ),
    _linear_entry(
        "minres", MINRES, (({"atol": -2.0}, r"atol must be >= 0, got -2\.0"),)
    ),
    _linear_entry(
        "gmres",
        GMRES,
        (
            ({"restart": 0}, r"restart must be a positive int, got 0"),
            ({"stagnation_cycles": 0}, r"stagnation_cycles must be a positive int"),
        ),
    ),
    _linear_entry(
        "flexible-cg",
        FlexibleCG,
        (({"truncation": 0}, r"truncation must be a positive int, got 0"),),
    ),
    _linear_entry("jacobi", Jacobi, (({"omega": 2.0}, r"omega must be in \(0, 2\)"),)),
    _linear_entry(
        "gauss-seidel", GaussSeidel, (({"norm_ref": "x"}, r"norm_ref must be"),)
    ),
    _linear_entry(
        "sor",
        SOR,
        (
            *_OMEGA_ERRORS,
            ({"norm_ref": "x"}, r"norm_ref must be 'b' or 'r0'"),
            ({"backend": "gpu"}, r"backend must be one of"),
        ),
        extra={"omega": 1.2},
    ),
    _linear_entry(
        "ssor", SSOR, (({"omega": -1.0}, r"omega must be in \(0, 2\)"),), extra={}
    ),
    _linear_entry(
        "ssor-pcg", SSORPCG, (({"omega": 2.0}, r"omega must be in \(0, 2\)"),)
    ),
    _linear_entry(
        "randomized-kaczmarz",
        RandomizedKaczmarz,
        (
            ({"sampling": "norm"}, r"sampling must be one of"),
            ({"residual": "exact"}, r"residual must be one of"),
            ({"rows_per_step": 0}, r"rows_per_step must be a positive"),
            ({"seed": -3}, r"seed must be a non-negative int"),
        ),
        seeded=True,
        # One step is max(m, 1024) row projections by default: the whole solve
        # on this system. One row per step keeps max_steps=1 and seeds telling.
        extra={"rows_per_step": 1, "max_steps": 20000},
    ),
    _linear_entry(
        "sketch-and-project",
        SketchAndProject,
        (
            ({"sketch": "srht"}, r"sketch must be one of"),
            ({"sketch_size": 0}, r"sketch_size must be a positive int"),
            ({"sampling": "leverage"}, r"sampling must be one of"),
        ),
        seeded=True,
        extra={"sketch_size": 3, "max_steps": 5000},
    ),
]

OTHER = [
    Entry(
        "newton-schulz",
        NewtonSchulz,
        lambda **o: NewtonSchulz(**{"tol": 1e-12, **o}),
        _inverse_data,
        _inverse,
        nan_key="S",
        loose={"tol": 1e-4},
        errors=(
            ({"tol": 0.0}, r"tol must be positive or None, got 0\.0"),
            ({"target": "inv"}, r"target must be"),
        ),
    ),
]

_FIRST_ORDER_ERRORS: Errors = (
    ({"L": -1.0}, r"L must be positive"),
    ({"L": 1.0, "mu": 2.0}, r"mu must be <= L"),
    ({"mu": -1.0}, r"mu must be >= 0"),
    ({"rtol": 0.0, "atol": 0.0}, r"cannot both be 0"),
)


OPTIMIZE = [
    _optimize_entry(
        "gradient-descent",
        GradientDescent,
        (*_FIRST_ORDER_ERRORS, ({"line_search": "wolfe"}, r"line_search must be")),
    ),
    _optimize_entry(
        "heavy-ball",
        HeavyBall,
        (
            ({"beta": 1.0}, r"beta must be in \[0, 1\)"),
            ({"alpha": 0.0}, r"alpha must be > 0"),
        ),
    ),
    _optimize_entry(
        "nesterov",
        Nesterov,
        (
            ({"momentum": "polyak"}, r"momentum must be one of"),
            ({"restart": "always"}, r"restart must be one of"),
        ),
    ),
    _optimize_entry(
        "triple-momentum", TripleMomentum, (({"L": 0.0}, r"L must be positive"),)
    ),
    _optimize_entry(
        "newton",
        Newton,
        (
            ({"linear_solver": "lu"}, r"linear_solver must be"),
            ({"max_steps": 0}, r"max_steps must be a positive int"),
        ),
        # The problem is quadratic: one exact Newton step lands on the minimiser.
        one_step=Status.SUCCESS,
    ),
    _optimize_entry(
        "regularized-newton",
        RegularizedNewton,
        (
            ({"gamma0": 0.0}, r"gamma0 must be positive"),
            ({"gamma_min": 2.0}, r"gamma_min must be in \(0, gamma0"),
            ({"max_inner": 0}, r"max_inner must be an int >= 1"),
        ),
        extra={"atol": 0.0},
    ),
    _optimize_entry(
        "cubic-regularized-newton",
        CubicRegularizedNewton,
        (
            ({"M0": 0.0}, r"M0 must be positive"),
            ({"M_min": 2.0}, r"M_min must be in \(0, M0"),
            ({"max_inner": 0}, r"max_inner must be an int >= 1"),
            ({"f_star": float("nan")}, r"f_star must be a finite number"),
            ({"f_star": 0.0, "rtol_f": 0.0, "atol_f": 0.0}, r"rtol_f and atol_f"),
        ),
    ),
    _optimize_entry(
        "block-coordinate-descent",
        BlockCoordinateDescent,
        (
            ({"block_size": 0}, r"block_size"),
            ({"rtol": -1.0}, r"rtol"),
        ),
        extra={"block_size": 2},
    ),
    _optimize_entry(
        "block-coordinate-descent-random",
        BlockCoordinateDescent,
        (),
        seeded=True,
        extra={"block_size": 2, "selection": "random"},
    ),
]

OT = [
    Entry(
        "sinkhorn",
        Sinkhorn,
        lambda **o: Sinkhorn(**{"tol": 1e-11, **o}),
        _transport_data,
        _transport,
        nan_key="cost",
        loose={"tol": 1e-5},
        errors=(
            ({"tol": 0.0}, r"tol must be > 0, got 0\.0"),
            ({"patience": 0}, r"patience must be a positive int, got 0"),
        ),
    ),
    Entry(
        "sinkhorn-newton-sparse",
        SinkhornNewtonSparse,
        lambda **o: SinkhornNewtonSparse(**{"tol": 1e-11, **o}),
        _transport_data,
        _transport,
        nan_key="cost",
        loose={"tol": 1e-5},
        errors=(
            ({"keep_per_row": 0}, r"keep_per_row must be > 0"),
            ({"n_sinkhorn": -1}, r"n_sinkhorn must be a non-neg"),
            ({"armijo": 0.7}, r"armijo must be in \(0, 0\.5\)"),
            ({"max_halvings": -1}, r"max_halvings must be a non"),
        ),
    ),
]


PDE = [
    _variational_entry(
        "sobolev-gradient-descent",
        SobolevGradientDescent,
        (({"rtol": -1.0}, r"rtol"), ({"anderson": -1}, r"anderson")),
    ),
    _variational_entry(
        "l2-gradient-descent", L2GradientDescent, (({"rtol": -1.0}, r"rtol"),)
    ),
    _variational_entry(
        "picard",
        PicardIteration,
        (({"rtol": -1.0}, r"rtol"),),
        # The default inner CG(rtol=1e-10) stagnates in float32 (STAGNATION at
        # step 1): the twin loosens the inner tolerance with the outer one.
        loose={"rtol": 1e-5, "linear_solver": CG(rtol=1e-5)},
    ),
    _variational_entry("newton-krylov", NewtonKrylov, (({"rtol": -1.0}, r"rtol"),)),
    Entry(
        "source-iteration-dsa",
        SourceIteration,
        lambda **o: SourceIteration(**{"acceleration": "dsa", "tol": 1e-10, **o}),
        _slab_data,
        _slab,
        nan_key="x0",
        loose={"tol": 1e-5},
        errors=(({"acceleration": "multigrid"}, r"acceleration"),),
    ),
    Entry(
        "transport-gmres",
        TransportGMRES,
        lambda **o: TransportGMRES(**{"linear_solver": GMRES(rtol=1e-12), **o}),
        _slab_data,
        _slab,
        nan_key="x0",
        loose={"linear_solver": GMRES(rtol=1e-5)},
        errors=(({"preconditioner": "ilu"}, r"preconditioner"),),
        # One outer step is a whole GMRES solve of the DSA-preconditioned system.
        one_step=Status.SUCCESS,
    ),
]

CONTROL = [
    Entry(
        "kleinman",
        Kleinman,
        lambda **o: Kleinman(**{"tol": 1e-12, **o}),
        _lqr_data,
        _lqr,
        nan_key="A",
        loose={"tol": 1e-5},
        errors=(({"tol": 0.0}, r"tol must be"),),
    ),
    Entry(
        "integral-policy-iteration",
        IntegralPolicyIteration,
        lambda **o: IntegralPolicyIteration(**{"tol": 1e-6, **o}),
        _intrl_data,
        _intrl,
        nan_key="w0",
        float32=False,
        why="policy_iteration returns float64 in the kind of w0: the data are "
        "simulated in float64 numpy (matrix exponential / solve_ivp) whatever "
        "the dtype of w0",
        errors=(
            ({"quadrature": "midpoint"}, r"quadrature must be one of"),
            ({"n_points": 1}, r"n_points must be an int >= 2"),
            ({"window": 0.0}, r"window must be positive"),
            ({"n_windows": 0}, r"n_windows must be a positive int"),
        ),
    ),
    Entry(
        "matrix-sign",
        MatrixSign,
        lambda **o: MatrixSign(**{"tol": 1e-13, **o}),
        _sign_data,
        _sign,
        nan_key="Z",
        loose={"tol": 1e-5},
        kinds=("torch",),
        why="run through the driver, which computes in torch and does no "
        "array-kind conversion (no front door takes a MatrixSign)",
        errors=(({"tol": 0.0}, r"tol must be in \(0, 1\), got 0\.0"),),
    ),
]


def _fixed_point_data() -> dict[str, np.ndarray]:
    """z = tanh(W z + x) with ||W||_2 = 0.9 on 6 unknowns."""
    rng = np.random.default_rng(3)
    q, _ = np.linalg.qr(rng.standard_normal((6, 6)))
    W = (q * np.linspace(-0.9, 0.9, 6)) @ q.T
    return {"W": W, "x": rng.standard_normal(6), "z0": np.zeros(6)}


def _fixed_point(inputs: Inputs, method: IterativeMethod, **kw: Any) -> Solution:
    W, x = inputs["W"], inputs["x"]
    return fixed_point(
        lambda z: (
            np.tanh(z @ W.T + x)
            if isinstance(z, np.ndarray)
            else torch.tanh(z @ W.T + x)
        ),
        inputs["z0"],
        method,
        **kw,
    )


def _fixed_point_entry(
    name: str,
    cls: type,
    errors: tuple[tuple[dict[str, Any], str], ...],
    extra: dict[str, Any] | None = None,
) -> Entry:
    base = {"rtol": 1e-13, **(extra or {})}
    return Entry(
        name,
        cls,
        lambda **o: cls(**{**base, **o}),
        _fixed_point_data,
        _fixed_point,
        # A NaN in x makes f(z0) non-finite: the family's own input check.
        nan_key="x",
        loose={"rtol": 1e-5},
        errors=errors,
    )


FIXED_POINT = [
    _fixed_point_entry(
        "fixed-point-iteration",
        FixedPointIteration,
        (({"damping": 0.0}, r"damping must be in \(0, 1\], got 0\.0"),),
    ),
    _fixed_point_entry(
        "anderson",
        Anderson,
        (
            ({"memory": 0}, r"memory must be an int >= 1, got 0"),
            ({"regularization": -1.0}, r"regularization must be finite"),
            ({"mixing": 1.5}, r"mixing must be in \(0, 1\]"),
            ({"max_condition": 1.0}, r"max_condition must be > 1"),
            ({"rtol": -1.0}, r"rtol must be >= 0"),
        ),
    ),
    _fixed_point_entry(
        "broyden",
        Broyden,
        (
            ({"memory": 0}, r"memory must be an int >= 1, got 0"),
            ({"variant": "ugly"}, r"variant must be one of"),
        ),
    ),
    _fixed_point_entry("broyden-bad", Broyden, (), extra={"variant": "bad"}),
    _fixed_point_entry(
        "fixed-point-newton-krylov",
        FixedPointNewtonKrylov,
        (
            ({"rtol": 1.5}, r"rtol must be in \(0, 1\)"),
            ({"jacobian": "forward"}, r"jacobian must be one of"),
        ),
    ),
]


def _family_files() -> tuple[list[Entry], dict[type, str]]:
    """Entries and bases of the families that keep them in their own file,
    ``entries_<family>.py`` beside this one: each defines ``entries(registry)``
    returning its :class:`Entry` list (``registry`` is this module, for
    :class:`Entry`, :func:`convert` and :func:`_family`) and may define
    ``BASES`` like this module's."""
    found: list[Entry] = []
    bases: dict[type, str] = {}
    this = sys.modules[__name__]
    for path in sorted(Path(__file__).parent.glob("entries_*.py")):
        spec = importlib.util.spec_from_file_location(f"contract_{path.stem}", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
        found.extend(module.entries(this))
        bases.update(getattr(module, "BASES", {}))
    return found, bases


_EXTENSION_ENTRIES, _EXTENSION_BASES = _family_files()
BASES.update(_EXTENSION_BASES)

REGISTRY: list[Entry] = [
    *LINEAR,
    *OTHER,
    *OPTIMIZE,
    *OT,
    *PDE,
    *CONTROL,
    *FIXED_POINT,
    *_EXTENSION_ENTRIES,
]
