"""Shared pieces of the optim-* suites: offline digits data, small models, training.

Not a suite (no ``SUITES``): the registry imports it and finds nothing to run.
"""

from __future__ import annotations

import functools
import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import torch
from torch import nn

from itersolve.bench.results import Results
from itersolve.bench.suite import ClaimOutcome

F = nn.functional


@dataclass(frozen=True)
class Digits:
    """scikit-learn's bundled 8x8 digits, 1437 / 360 seeded split, in [0, 1]."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor


@functools.lru_cache(maxsize=1)
def digits() -> Digits:
    from sklearn.datasets import load_digits

    data = load_digits()
    x = torch.tensor(data.data / 16.0, dtype=torch.float32)
    y = torch.tensor(data.target, dtype=torch.int64)
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))
    train, test = perm[:1437], perm[1437:]
    return Digits(x[train], y[train], x[test], y[test])


def cnn(seed: int) -> nn.Sequential:
    """2 conv + 1 fc (~10k parameters) for 1 x 8 x 8 images."""
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Unflatten(1, (1, 8, 8)),
        nn.Conv2d(1, 16, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(16, 32, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(32 * 4 * 4, 10),
    )


def mlp(seed: int, hidden: int = 128) -> nn.Sequential:
    """64 - hidden - 10 with ReLU (d = 9,610 for hidden = 128)."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(64, hidden), nn.ReLU(), nn.Linear(hidden, 10))


def flat_params(model: nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()]).clone()


def load_flat(model: nn.Module, flat: torch.Tensor) -> nn.Module:
    torch.nn.utils.vector_to_parameters(
        flat.to(next(model.parameters()).dtype), model.parameters()
    )
    return model


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    return float((model(x).argmax(dim=1) == y).double().mean())


@torch.no_grad()
def full_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    return float(F.cross_entropy(model(x).double(), y))


def _loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(model(x), y)


def batches(n: int, batch: int, epochs: int, seed: int) -> list[torch.Tensor]:
    """The minibatch index stream of a run (identical for every method)."""
    gen = torch.Generator().manual_seed(10_000 + seed)
    out: list[torch.Tensor] = []
    for _ in range(epochs):
        perm = torch.randperm(n, generator=gen)
        out.extend(perm[i : i + batch] for i in range(0, n - batch + 1, batch))
    return out


def train(
    model: nn.Module,
    make_optimizer: Callable[[nn.Module], torch.optim.Optimizer],
    data: Digits,
    stream: list[torch.Tensor],
    *,
    closure_style: str = "backward",
) -> int:
    """Run one pass over ``stream``; ``closure_style="loss"`` for optimizers that
    differentiate the closure themselves (AdaHessian). Returns the step count."""
    opt = make_optimizer(model)
    for idx in stream:
        xb, yb = data.x_train[idx], data.y_train[idx]
        if closure_style == "loss":
            opt.step(partial(_loss, model, xb, yb))  # type: ignore[arg-type]
        else:
            opt.zero_grad()
            F.cross_entropy(model(xb), yb).backward()
            opt.step()
    return len(stream)


# -- claim helpers ------------------------------------------------------------------


def _cases(results: Results, prefix: str) -> list[str]:
    return sorted(
        {
            r["dataset_name"]
            for r in results.rows
            if r["dataset_name"].startswith(prefix)
        }
    )


def values(results: Results, prefix: str, method: str, column: str) -> list[float]:
    """``column`` of every (non-skipped) row of ``method`` on cases ``prefix*``.

    Rows without the column (ERROR rows) are left out here, but the lookups go
    through ``Results.select``, so the report FAILs a claim that needed them.
    For per-seed figures use :func:`per_seed`, which counts failed seeds.
    """
    out = []
    for case in _cases(results, prefix):
        for r in results.select(case, method):
            if r.get(column) is not None:
                out.append(float(r[column]))
    return out


@dataclass(frozen=True)
class Seeds:
    """One figure per seed of a method; a failed seed is counted, never dropped.

    ``values`` has an entry for every seed run, a diverged or crashed seed as
    the ``worst`` value given to :func:`per_seed` (``inf`` for a loss, ``0`` for
    an accuracy), so means over seeds include it.
    """

    values: list[float]
    diverged: int
    errors: int

    @property
    def failed(self) -> int:
        return self.diverged + self.errors

    def mean(self) -> float:
        return statistics.fmean(self.values) if self.values else math.nan

    def describe(self) -> str:
        text = f"{len(self.values)} seeds"
        if self.diverged:
            text += f", {self.diverged} diverged"
        if self.errors:
            text += f", {self.errors} crashed"
        return text


def diverged(row: dict[str, Any], column: str) -> bool:
    """A row whose objective or ``column`` is non-finite, or marked DIVERGED."""
    value = row.get(column)
    return (
        row.get("finite") is False
        or row.get("status") == "DIVERGED"
        or (value is not None and not math.isfinite(float(value)))
    )


def per_seed(
    results: Results, prefix: str, method: str, column: str, worst: float
) -> Seeds:
    """``column`` of ``method`` on every case ``prefix*`` (one seed per case)."""
    out, n_diverged, n_errors = [], 0, 0
    for case in _cases(results, prefix):
        for r in results.select(case, method):
            if r.get("status") == "ERROR" or r.get(column) is None:
                n_errors += 1
                out.append(worst)
            elif diverged(r, column):
                n_diverged += 1
                out.append(worst)
            else:
                out.append(float(r[column]))
    return Seeds(out, n_diverged, n_errors)


def mean_std(xs: list[float]) -> tuple[float, float]:
    """Mean and sample std; with a non-finite value (a diverged seed counted as
    ``inf``) the mean is that value and the std is NaN."""
    if not all(math.isfinite(x) for x in xs):
        return statistics.fmean(xs), math.nan
    return statistics.fmean(xs), statistics.stdev(xs) if len(xs) > 1 else 0.0


def no_rows(what: str) -> ClaimOutcome:
    return ClaimOutcome(None, None, f"no rows for {what}")


def to_numpy(x: Any) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
