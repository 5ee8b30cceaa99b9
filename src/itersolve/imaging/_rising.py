"""RISING: a few SGP steps, then a network that completes the iterations."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
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


def _mirror_symmetric(angles: np.ndarray) -> bool:
    """Whether the angle set (mod pi) is closed under ``theta -> pi - theta``,
    the condition for image flips to map a sinogram onto a sinogram of the
    same geometry."""
    a = np.sort(np.mod(angles, np.pi))
    b = np.sort(np.mod(np.pi - angles, np.pi))
    # pi - 0 wraps to ~pi or ~0 depending on rounding: compare on the circle.
    diff = np.abs(a[:, None] - b[None, :])
    return bool(np.all(np.min(np.minimum(diff, np.pi - diff), axis=1) < 1e-9))


def _flip(batch: Tensor, code: int) -> Tensor:
    """The flips of the image square that keep the geometry: 0 none,
    1 left-right, 2 up-down, 3 both (a half turn)."""
    dims = [(), (-1,), (-2,), (-2, -1)][code]
    return batch.flip(dims) if dims else batch


def _relative(a: Tensor, b: Tensor) -> Tensor:
    """Per-image relative distances ``||a - b|| / ||b||``."""
    num = (a - b).flatten(1).norm(dim=1)
    return num / b.flatten(1).norm(dim=1).clamp_min(1e-30)


def fit(
    net: nn.Module,
    inputs: Tensor,
    targets: Tensor,
    *,
    epochs: int,
    lr: float,
    batch_size: int,
    schedule: str = "constant",
    augment: bool = False,
    seed: int = 0,
    after_epoch: Callable[[nn.Module], None] | None = None,
) -> list[float]:
    """Adam on ``MSE(net(inputs), targets)`` (``(b, 1, n, n)`` each), the
    loop of :func:`train_rising` (whose parameters these are), shared with
    baselines that must train the same way; ``after_epoch(net)`` runs in eval
    mode after each epoch. Returns the mean training loss per epoch."""
    optimizer = torch.optim.Adam(net.parameters(), lr=lr)
    n_batches = -(-len(inputs) // batch_size)
    total_steps = epochs * n_batches
    generator = torch.Generator().manual_seed(seed)
    losses: list[float] = []
    step = 0
    for _ in range(epochs):
        net.train()
        order = torch.randperm(len(inputs), generator=generator).split(batch_size)
        flips = torch.randint(0, 4 if augment else 1, (n_batches,), generator=generator)
        total = 0.0
        for code, idx in zip(flips.tolist(), order, strict=True):
            if schedule == "cosine":
                scale = 0.5 * (1 + math.cos(math.pi * step / total_steps))
                for group in optimizer.param_groups:
                    group["lr"] = lr * scale
            optimizer.zero_grad()
            out = net(_flip(inputs[idx], code))
            loss = torch.nn.functional.mse_loss(out, _flip(targets[idx], code))
            loss.backward()
            optimizer.step()
            step += 1
            total += float(loss.detach()) * len(idx)
        losses.append(total / len(inputs))
        net.eval()
        if after_epoch is not None:
            after_epoch(net)
    net.eval()
    return losses


def train_rising(
    model: RISING,
    sinograms: Sequence[Any],
    *,
    k_is: int = 300,
    epochs: int = 50,
    lr: float = 1e-4,
    batch_size: int = 4,
    schedule: str = "constant",
    augment: bool = False,
    held_out: int = 0,
    seed: int = 0,
) -> dict[str, Any]:
    """Train ``model.net`` on pairs ``(x_RIS, x_IS)`` built from ``sinograms``:
    ``k1`` and ``k_is`` SGP steps; loss ``MSE(net(x_RIS), x_IS)``, Adam.

    Parameters
    ----------
    model
        The :class:`RISING` model whose ``net`` is trained in place.
    sinograms
        Training sinograms (``model.projector.sinogram_shape`` each).
    k_is
        SGP steps for the targets ``x_IS`` (at most: SGP may stop earlier on
        its own rule); must exceed ``model.k1``.
    epochs, lr, batch_size
        Adam's passes over the pairs, learning rate and batch size (the
        paper: 50, 1e-4, 4).
    schedule
        ``"constant"`` (the paper's) or ``"cosine"``: the learning rate decays
        from ``lr`` to 0 over the run on a half cosine, which lets a short run
        at a large ``lr`` settle instead of ending in Adam's noise.
    augment
        Train on a random flip of each batch (left-right, up-down or both,
        drawn per batch). The pair of a flipped image is, up to the
        asymmetry of TV's forward differences, the pair of the flipped
        sinogram when the angle set is closed under ``theta -> pi - theta``
        (uniform angles over ``[0, pi)`` are); other geometries are refused.
    held_out
        The last ``held_out`` sinograms are not trained on: after every epoch
        the mean relative distance ``||net(x_RIS) - x_IS|| / ||x_IS||`` over
        them is recorded (``"held_out_error"``), next to the input's own
        ``||x_RIS - x_IS|| / ||x_IS||`` (``"held_out_input_error"``).
    seed
        Seeds the batch order and the flips.

    Returns
    -------
    dict
        ``"x_ris"``, ``"x_is"`` (all pairs, numpy), ``"loss"`` (mean training
        loss per epoch) and, with ``held_out``, ``"held_out_error"`` (per
        epoch) and ``"held_out_input_error"``. Seeded: the same ``seed`` and
        data give the same weights.

    Examples
    --------
    >>> import numpy as np
    >>> from itersolve.imaging import RISING, ParallelBeamProjector, ResUNet
    >>> from itersolve.imaging import train_rising
    >>> from itersolve.problems import ellipse_phantoms, simulate
    >>> angles = np.linspace(0, np.pi, 8, endpoint=False)
    >>> K = ParallelBeamProjector(12, angles)
    >>> ys = [simulate(p, angles, 0.01, seed=i)
    ...       for i, p in enumerate(ellipse_phantoms(12, 5, seed=0))]
    >>> out = train_rising(RISING(ResUNet((4, 8)), K, k1=2), ys, k_is=10,
    ...                    epochs=2, schedule="cosine", augment=True, held_out=1)
    >>> len(out["loss"]), len(out["held_out_error"]), out["x_is"].shape
    (2, 2, (5, 12, 12))
    """
    k_is = _positive_int(k_is, "k_is")
    epochs = _positive_int(epochs, "epochs")
    batch_size = _positive_int(batch_size, "batch_size")
    if not lr > 0:
        raise ValueError(f"lr must be positive, got {lr!r}")
    if schedule not in ("constant", "cosine"):
        raise ValueError(f"schedule must be 'constant' or 'cosine', got {schedule!r}")
    if k_is <= model.k1:
        raise ValueError(f"k_is must exceed k1 = {model.k1}, got {k_is}")
    if len(sinograms) == 0:
        raise ValueError("sinograms must not be empty")
    if (
        isinstance(held_out, bool)
        or not isinstance(held_out, int)
        or not 0 <= held_out < len(sinograms)
    ):
        raise ValueError(
            f"held_out must be an int in [0, {len(sinograms)}), got {held_out!r}"
        )
    if augment and not _mirror_symmetric(model.projector.angles):
        raise ValueError(
            "augment=True needs an angle set closed under theta -> pi - theta "
            "(flips would change the geometry)"
        )
    x_ris = torch.stack([model.early(y) for y in sinograms])
    x_is = torch.stack(
        [sgp_steps(y, model.projector, model.solver, k_is) for y in sinograms]
    )
    param = next(model.net.parameters())
    n_train = len(sinograms) - held_out
    inputs = x_ris[:n_train, None].to(param.dtype)
    targets = x_is[:n_train, None].to(param.dtype)
    val_in = x_ris[n_train:, None].to(param.dtype)
    val_target = x_is[n_train:, None].to(param.dtype)
    held: list[float] = []

    def record(net: nn.Module) -> None:
        if held_out:
            with torch.no_grad():
                held.append(float(_relative(net(val_in), val_target).mean()))

    losses = fit(
        model.net,
        inputs,
        targets,
        epochs=epochs,
        lr=lr,
        batch_size=batch_size,
        schedule=schedule,
        augment=augment,
        seed=seed,
        after_epoch=record,
    )
    model.net.eval()
    result: dict[str, Any] = {
        "x_ris": x_ris.cpu().numpy(),
        "x_is": x_is.cpu().numpy(),
        "loss": losses,
    }
    if held_out:
        result["held_out_error"] = held
        result["held_out_input_error"] = float(_relative(val_in, val_target).mean())
    return result
