"""RISING: a few SGP steps, then a network that completes the iterations."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch
from torch import nn

from itersolve._core.errors import ConvergenceWarning
from itersolve._core.tensors import as_tensor, to_output
from itersolve.imaging._projector import ParallelBeamProjector
from itersolve.imaging._reconstruct import reconstruct
from itersolve.imaging._sgp import SGP

Tensor = torch.Tensor


def _positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return value


def sgp_steps(
    y: Any, projector: ParallelBeamProjector, solver: SGP, steps: int
) -> Tensor:
    """``steps`` SGP iterations from the default start, as a float64 CPU
    tensor (the early stop is intended: its MAX_STEPS warning is silenced)."""
    y_t, _ = as_tensor(y, "y", dtype=projector.dtype, device=projector.device)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        sol = reconstruct(y_t, projector, replace(solver, max_steps=steps))
    return sol.x


@dataclass
class RISING:
    """Rapid Iterative Solver + Iteration Network-based Gaining.

    ``reconstruct(y)`` runs ``k1`` steps of ``solver`` (SGP from the default
    start) and maps that early iterate ``x_RIS`` through ``net``, trained
    (:func:`train_rising`) to output what ``solver`` reaches after many more
    steps (``x_IS``), not the ground truth: the network completes the
    iterations of the model-based solver.

    The model card (``projector``'s geometry, ``solver``, ``k1``) travels with
    the object; ``reconstruct`` checks the sinogram's shape against it.

    Parameters
    ----------
    net
        Maps ``(batch, 1, n, n)`` to the same shape (e.g. :class:`ResUNet`).
    projector
        The geometry the network was trained for.
    k1
        SGP steps before the network (5 in the paper).
    solver
        The SGP configuration (``lam``, ``beta``, ...).

    References
    ----------
    Evangelista, Morotti and Loli Piccolomini, RISING (arXiv:2201.09777,
    Computerized Medical Imaging and Graphics 103, 2023); the reference
    implementation is ``loibo/RISING``.

    Examples
    --------
    >>> import numpy as np
    >>> from itersolve.imaging import RISING, ParallelBeamProjector, ResUNet
    >>> from itersolve.problems import shepp_logan, simulate
    >>> angles = np.linspace(0, np.pi, 8, endpoint=False)
    >>> K = ParallelBeamProjector(16, angles)
    >>> model = RISING(ResUNet((4, 8)), K, k1=3)
    >>> model.reconstruct(simulate(shepp_logan(16), angles, 0.01, seed=0)).shape
    (16, 16)
    """

    net: nn.Module
    projector: ParallelBeamProjector
    k1: int = 5
    solver: SGP = field(default_factory=lambda: SGP())

    def __post_init__(self) -> None:
        _positive_int(self.k1, "k1")
        if not isinstance(self.solver, SGP):
            raise TypeError(
                f"solver must be an SGP configuration, got {type(self.solver).__name__}"
            )

    def early(self, y: Any) -> Tensor:
        """``x_RIS``: ``k1`` solver steps on ``y``."""
        return sgp_steps(y, self.projector, self.solver, self.k1)

    def complete(self, x_ris: Tensor) -> Tensor:
        """The network applied to early iterates ``(n, n)`` or ``(b, n, n)``."""
        param = next(self.net.parameters(), None)
        dtype = param.dtype if param is not None else torch.float32
        batch = x_ris.reshape(-1, 1, *x_ris.shape[-2:]).to(dtype)
        with torch.no_grad():
            out = self.net(batch)
        return out.reshape(x_ris.shape).to(x_ris.dtype)

    def reconstruct(self, y: Any) -> Any:
        """The RISING image of sinogram ``y``, in ``y``'s array kind."""
        _, info = as_tensor(y, "y")
        if tuple(np.shape(y)) != self.projector.sinogram_shape:
            raise ValueError(
                f"y must have the sinogram shape {self.projector.sinogram_shape} "
                f"the model was trained for, got {tuple(np.shape(y))}"
            )
        x = self.complete(self.early(y))
        return to_output(x.to(info.dtype), info)


def train_rising(
    model: RISING,
    sinograms: Sequence[Any],
    *,
    k_is: int = 300,
    epochs: int = 50,
    lr: float = 1e-4,
    batch_size: int = 4,
    seed: int = 0,
) -> dict[str, Any]:
    """Train ``model.net`` on pairs ``(x_RIS, x_IS)`` built from ``sinograms``:
    ``k1`` and ``k_is`` SGP steps; loss ``MSE(net(x_RIS), x_IS)``, Adam.

    Returns the pairs and the mean loss per epoch (``"x_ris"``, ``"x_is"``,
    ``"loss"``). Seeded: the same ``seed`` and data give the same weights.

    Examples
    --------
    >>> import numpy as np
    >>> from itersolve.imaging import RISING, ParallelBeamProjector, ResUNet
    >>> from itersolve.imaging import train_rising
    >>> from itersolve.problems import ellipse_phantoms, simulate
    >>> angles = np.linspace(0, np.pi, 8, endpoint=False)
    >>> K = ParallelBeamProjector(12, angles)
    >>> ys = [simulate(p, angles, 0.01, seed=i)
    ...       for i, p in enumerate(ellipse_phantoms(12, 4, seed=0))]
    >>> out = train_rising(RISING(ResUNet((4, 8)), K, k1=2), ys, k_is=10, epochs=2)
    >>> len(out["loss"]), out["x_is"].shape
    (2, (4, 12, 12))
    """
    k_is = _positive_int(k_is, "k_is")
    epochs = _positive_int(epochs, "epochs")
    batch_size = _positive_int(batch_size, "batch_size")
    if not lr > 0:
        raise ValueError(f"lr must be positive, got {lr!r}")
    if k_is <= model.k1:
        raise ValueError(f"k_is must exceed k1 = {model.k1}, got {k_is}")
    if len(sinograms) == 0:
        raise ValueError("sinograms must not be empty")
    x_ris = torch.stack([model.early(y) for y in sinograms])
    x_is = torch.stack(
        [sgp_steps(y, model.projector, model.solver, k_is) for y in sinograms]
    )
    param = next(model.net.parameters())
    inputs = x_ris[:, None].to(param.dtype)
    targets = x_is[:, None].to(param.dtype)
    optimizer = torch.optim.Adam(model.net.parameters(), lr=lr)
    generator = torch.Generator().manual_seed(seed)
    losses = []
    model.net.train()
    for _ in range(epochs):
        order = torch.randperm(len(inputs), generator=generator)
        total = 0.0
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            optimizer.zero_grad()
            loss = torch.nn.functional.mse_loss(model.net(inputs[idx]), targets[idx])
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(idx)
        losses.append(total / len(order))
    model.net.eval()
    return {"x_ris": x_ris.cpu().numpy(), "x_is": x_is.cpu().numpy(), "loss": losses}
