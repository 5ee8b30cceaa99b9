"""The solver contract (DESIGN.md sections 2-4), one battery over every method.

Every entry of ``registry.REGISTRY`` runs through the same checks, as optax runs
one test over all its optimizers: ``max_steps=1`` gives ``MAX_STEPS`` and a
one-row trace; a callback returning True stops the run; a NaN input gives
``NONFINITE_INPUT`` without a step; inputs are not mutated; the array kind and
dtype come back as they went in; a float32 twin converges loosely to the
float64 answer; equal inputs give bitwise-equal answers (and equal seeds, for
seeded methods); bad hyperparameters raise ``ValueError`` naming the parameter.
Each family's tests keep only what is specific to it (agreement with the
reference tool, failure modes, structure).

The torch.optim-style optimizers have their own battery
(``tests/optim/test_optimizer_battery.py``).
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import inspect
import pkgutil
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import itersolve
from itersolve import ConvergenceWarning, IterativeMethod, Status

_spec = importlib.util.spec_from_file_location(
    "contract_registry", Path(__file__).with_name("registry.py")
)
assert _spec is not None and _spec.loader is not None
registry = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = registry  # dataclasses resolve their module by name
_spec.loader.exec_module(registry)

REGISTRY = registry.REGISTRY
Entry = registry.Entry

# Public modules whose methods are not solver-contract methods: the
# torch.optim-style optimizers (own battery) and the benchmark harness.
NOT_SOLVERS = ("itersolve.optim", "itersolve.bench")


def _public_method_classes() -> set[type]:
    """Every IterativeMethod subclass exported by a public itersolve module."""
    found: set[type] = set()
    names = ["itersolve"] + [
        info.name
        for info in pkgutil.walk_packages(itersolve.__path__, "itersolve.")
        if not any(part.startswith("_") for part in info.name.split("."))
        and not info.name.startswith(NOT_SOLVERS)
    ]
    for name in names:
        module = importlib.import_module(name)
        for attr in getattr(module, "__all__", []):
            obj = getattr(module, attr)
            if (
                inspect.isclass(obj)
                and issubclass(obj, IterativeMethod)
                and obj is not IterativeMethod
            ):
                found.add(obj)
    return found


def test_registry_covers_every_public_method():
    public = _public_method_classes()
    covered = {entry.cls for entry in REGISTRY} | set(registry.BASES)
    missing = sorted(cls.__qualname__ for cls in public - covered)
    assert not missing, f"methods without a contract entry: {missing}"
    assert len({entry.name for entry in REGISTRY}) == len(REGISTRY)
    for entry in REGISTRY:
        narrowed = entry.kinds != ("numpy", "torch") or not entry.float32
        assert bool(entry.why) == narrowed, entry.name


@pytest.mark.parametrize("base", list(registry.BASES), ids=lambda c: c.__name__)
def test_bases_have_no_step_of_their_own(base):
    assert base.step is IterativeMethod.step


def _quiet(entry: Entry, inputs: dict[str, Any], method: Any, **kw: Any) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return entry.run(inputs, method, **kw)


def _numpy(x: Any) -> np.ndarray:
    return x.numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def _copy(inputs: dict[str, Any]) -> dict[str, Any]:
    return {
        k: v.clone() if isinstance(v, torch.Tensor) else v.copy()
        for k, v in inputs.items()
    }


@functools.cache
def _answer64(name: str) -> np.ndarray:
    entry = next(e for e in REGISTRY if e.name == name)
    sol = entry.run(entry.inputs(entry.kinds[0]), entry.make())
    assert sol.success, f"{entry.name}: {sol.status} after {sol.num_steps} steps"
    return _numpy(sol.x).astype(np.float64)


def _kind_cases() -> list[Any]:
    return [
        pytest.param(entry, kind, id=f"{entry.name}-{kind}")
        for entry in REGISTRY
        for kind in entry.kinds
    ]


@pytest.mark.parametrize("entry", REGISTRY, ids=str)
def test_max_steps_one_gives_one_row_trace(entry):
    inputs = entry.inputs(entry.kinds[0])
    method = entry.make(max_steps=1)
    if entry.one_step is Status.SUCCESS:
        sol = entry.run(inputs, method, record=True)
    else:
        with pytest.warns(ConvergenceWarning, match=entry.one_step.name):
            sol = entry.run(inputs, method, record=True)
    assert sol.status is entry.one_step and sol.num_steps == 1
    assert sol.trace is not None and len(sol.trace) == 1
    assert np.isfinite(_numpy(sol.x)).all()


@pytest.mark.parametrize("entry", REGISTRY, ids=str)
def test_callback_returning_true_stops_the_run(entry):
    seen = []

    def stop(info: Any) -> bool:
        seen.append(info.step)
        return True

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a stopped run is not a warning
        sol = entry.run(entry.inputs(entry.kinds[0]), entry.make(), callback=stop)
    assert sol.status is Status.STOPPED_BY_CALLBACK and not sol.success
    assert sol.num_steps == 1 and seen == [1]


@pytest.mark.parametrize("entry", REGISTRY, ids=str)
def test_nan_input_gives_nonfinite_input(entry):
    inputs = entry.inputs(entry.kinds[0])
    poisoned = inputs[entry.nan_key]
    poisoned.reshape(-1)[0] = float("nan")
    with pytest.warns(ConvergenceWarning, match="NONFINITE_INPUT"):
        sol = entry.run(inputs, entry.make())
    assert sol.status is Status.NONFINITE_INPUT and sol.num_steps == 0


@pytest.mark.parametrize(("entry", "kind"), _kind_cases())
def test_inputs_not_mutated(entry, kind):
    inputs = entry.inputs(kind)
    before = _copy(inputs)
    _quiet(entry, inputs, entry.make())
    for key, value in before.items():
        np.testing.assert_array_equal(_numpy(inputs[key]), _numpy(value), key)


@pytest.mark.parametrize(("entry", "kind"), _kind_cases())
def test_float64_kind_and_dtype_kept(entry, kind):
    sol = entry.run(entry.inputs(kind), entry.make())
    assert sol.success, f"{sol.status} after {sol.num_steps} steps"
    if kind == "torch":
        assert isinstance(sol.x, torch.Tensor) and sol.x.dtype == torch.float64
    else:
        assert isinstance(sol.x, np.ndarray) and sol.x.dtype == np.float64
    np.testing.assert_allclose(_numpy(sol.x), _answer64(entry.name), rtol=1e-12)


@pytest.mark.parametrize(
    ("entry", "kind"), [p for p in _kind_cases() if p.values[0].float32]
)
def test_float32_twin_converges_loosely(entry, kind):
    sol = entry.run(entry.inputs(kind, "float32"), entry.make(**entry.loose))
    assert sol.success, f"{sol.status} after {sol.num_steps} steps"
    if kind == "torch":
        assert isinstance(sol.x, torch.Tensor) and sol.x.dtype == torch.float32
    else:
        assert isinstance(sol.x, np.ndarray) and sol.x.dtype == np.float32
    ref = _answer64(entry.name)
    error = np.linalg.norm(_numpy(sol.x).astype(np.float64) - ref)
    assert error <= entry.tol32 * np.linalg.norm(ref)


@pytest.mark.parametrize("entry", REGISTRY, ids=str)
def test_equal_inputs_give_bitwise_equal_answers(entry):
    one = _quiet(entry, entry.inputs(entry.kinds[0]), entry.make())
    two = _quiet(entry, entry.inputs(entry.kinds[0]), entry.make())
    np.testing.assert_array_equal(_numpy(one.x), _numpy(two.x))
    assert one.num_steps == two.num_steps and one.status is two.status


@pytest.mark.parametrize("entry", [e for e in REGISTRY if e.seeded], ids=str)
def test_seeded_runs_reproducible_and_seeds_differ(entry):
    def run(seed: Any) -> np.ndarray:
        method = entry.make(max_steps=3, seed=seed)
        return _numpy(_quiet(entry, entry.inputs("numpy"), method).x)

    np.testing.assert_array_equal(run(1), run(1))
    assert not np.array_equal(run(1), run(2))


_ERRORS = [
    pytest.param(entry, kwargs, match, id=f"{entry.name}-{'-'.join(kwargs)}")
    for entry in REGISTRY
    for kwargs, match in entry.errors
]


@pytest.mark.parametrize(("entry", "kwargs", "match"), _ERRORS)
def test_bad_hyperparameters_raise_naming_the_parameter(entry, kwargs, match):
    with pytest.raises(ValueError, match=match) as info:
        entry.cls(**kwargs)
    assert any(name in str(info.value) for name in kwargs), str(info.value)


def test_every_entry_has_error_configurations():
    by_class: dict[type, int] = {}
    for entry in REGISTRY:
        by_class[entry.cls] = by_class.get(entry.cls, 0) + len(entry.errors)
    assert all(by_class.values()), by_class
