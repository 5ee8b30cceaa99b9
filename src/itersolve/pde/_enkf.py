"""Stochastic (perturbed-observation) ensemble Kalman analysis step.

The ensemble holds ``E`` parameter vectors of length ``d`` as the rows of an
``(E, d)`` tensor; torch models enter through :func:`flatten_ensemble`,
:func:`load_ensemble` and :func:`model_observer`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch.func import functional_call, vmap

__all__ = [
    "EnKFResult",
    "enkf_update",
    "flatten_ensemble",
    "load_ensemble",
    "model_observer",
]


@dataclass(frozen=True)
class EnKFResult:
    """Outcome of one :func:`enkf_update` analysis step.

    Attributes
    ----------
    ensemble : torch.Tensor
        ``(E, d)`` analysis ensemble.
    mean : torch.Tensor
        ``(d,)`` analysis ensemble mean.
    gain : torch.Tensor
        ``(d, k)`` Kalman gain ``C_xy (C_yy + R)^{-1}`` used by the step
        (localised when a taper was given), for diagnostics.
    spread_before : float
        Root-mean-square deviation of the members from their mean after inflation,
        before the update.
    spread_after : float
        The same for the analysis ensemble; a ratio ``spread_after / spread_before``
        near zero warns of ensemble collapse.

    Examples
    --------
    >>> import torch
    >>> from itersolve.pde import enkf_update
    >>> x = torch.randn(10, 2, generator=torch.Generator().manual_seed(0))
    >>> res = enkf_update(x, torch.zeros(2), lambda e: e, 0.1, seed=0)
    >>> res.ensemble.shape, res.gain.shape
    (torch.Size([10, 2]), torch.Size([2, 2]))
    """

    ensemble: torch.Tensor
    mean: torch.Tensor
    gain: torch.Tensor
    spread_before: float
    spread_after: float


def _spread(x: torch.Tensor) -> float:
    return float((x - x.mean(0)).pow(2).sum(1).mean().sqrt())


def _noise_factor(
    noise_std: float | torch.Tensor | None,
    noise_cov: torch.Tensor | None,
    k: int,
    like: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Return ``(R, L)`` with ``R = L L^T`` the ``(k, k)`` observation covariance."""
    if (noise_std is None) == (noise_cov is None):
        raise ValueError(
            "give exactly one of noise_std and noise_cov, got "
            f"noise_std={noise_std!r}, noise_cov={noise_cov!r}"
        )
    if noise_std is not None:
        std = torch.as_tensor(noise_std, dtype=like.dtype, device=like.device)
        if std.ndim == 0:
            std = std.expand(k)
        if std.shape != (k,):
            raise ValueError(
                f"noise_std must be a scalar or have shape ({k},), "
                f"got {tuple(std.shape)}"
            )
        if not bool(torch.isfinite(std).all()) or bool((std <= 0).any()):
            raise ValueError(f"noise_std must be finite and > 0, got {noise_std!r}")
        return torch.diag(std.square()), torch.diag(std)
    if not isinstance(noise_cov, torch.Tensor):
        raise TypeError(f"noise_cov must be a torch.Tensor, got {type(noise_cov)}")
    cov = noise_cov.to(dtype=like.dtype, device=like.device)
    if cov.shape != (k, k):
        raise ValueError(
            f"noise_cov must have shape ({k}, {k}), got {tuple(noise_cov.shape)}"
        )
    if not bool(torch.isfinite(cov).all()) or not torch.allclose(cov, cov.mT):
        raise ValueError("noise_cov must be finite and symmetric")
    chol, info = torch.linalg.cholesky_ex(cov)
    if int(info) != 0:
        raise ValueError("noise_cov must be positive definite (Cholesky failed)")
    return cov, chol


def enkf_update(
    ensemble: torch.Tensor,
    observations: torch.Tensor,
    observe: Callable[[torch.Tensor], torch.Tensor],
    noise_std: float | torch.Tensor | None = None,
    *,
    noise_cov: torch.Tensor | None = None,
    inflation: float = 1.0,
    localization: torch.Tensor | None = None,
    seed: int | torch.Generator,
) -> EnKFResult:
    r"""One stochastic ensemble Kalman analysis step (perturbed observations).

    With forecast members ``x_j`` (rows of ``ensemble``), the step inflates the
    anomalies about the mean, ``x_j <- xbar + inflation (x_j - xbar)``, predicts
    ``y_j = observe(x)_j``, forms the ensemble covariances
    ``C_xy = A^T B / (E - 1)`` and ``C_yy = B^T B / (E - 1)`` from the anomalies
    ``A`` of ``x`` and ``B`` of ``y``, and moves every member by

    .. math:: x_j^a = x_j + (\rho \circ C_{xy}) (C_{yy} + R)^{-1}
              (y_{obs} + \varepsilon_j - y_j), \qquad \varepsilon_j \sim N(0, R),

    where ``rho`` is the optional ``(d, k)`` localisation taper. The ``k x k``
    system is solved with :func:`torch.linalg.solve`; no inverse is formed. For a
    linear ``observe`` and a Gaussian prior the analysis ensemble's mean and
    covariance converge to the exact Kalman posterior at the Monte Carlo rate
    ``E^{-1/2}``.

    Parameters
    ----------
    ensemble : torch.Tensor
        ``(E, d)`` floating-point forecast ensemble, ``E >= 2``. Not modified.
    observations : torch.Tensor
        ``(k,)`` observed values.
    observe : callable
        Batched observation operator mapping an ``(E, d)`` tensor to ``(E, k)``
        predictions (for torch models see :func:`model_observer`). Called once.
    noise_std : float or torch.Tensor, optional
        Observation noise standard deviation, scalar or ``(k,)``, all ``> 0``
        (``R = diag(noise_std**2)``). Give this or ``noise_cov``.
    noise_cov : torch.Tensor, optional
        ``(k, k)`` symmetric positive-definite observation noise covariance ``R``.
    inflation : float, default 1.0
        Multiplicative factor ``>= 1`` on the anomalies (the covariance is scaled
        by ``inflation**2``), applied before ``observe``.
    localization : torch.Tensor, optional
        ``(d, k)`` elementwise taper on the cross-covariance ``C_xy`` (for example
        Gaspari-Cohn weights by distance between parameter and sensor).
    seed : int or torch.Generator
        Seed (or generator) for the observation perturbations.

    Returns
    -------
    EnKFResult
        Analysis ensemble, its mean, the gain, and the spread before and after.

    Raises
    ------
    ValueError
        For ``E < 2``, mismatched shapes, non-finite input or predictions,
        ``noise_std <= 0``, a ``noise_cov`` that is not symmetric positive
        definite, or ``inflation < 1``.
    TypeError
        When ``ensemble`` or ``observations`` is not a floating-point tensor.

    Examples
    --------
    Fit ``y = 2 x + 0.5`` with an ensemble of 40 linear models, observed through
    ``torch.func.vmap`` over ``functional_call`` (what :func:`model_observer`
    builds):

    >>> import torch
    >>> from itersolve.pde import (
    ...     enkf_update, flatten_ensemble, load_ensemble, model_observer)
    >>> _ = torch.manual_seed(0)
    >>> models = [torch.nn.Linear(1, 1).double() for _ in range(40)]
    >>> x = torch.linspace(-1, 1, 8, dtype=torch.float64).unsqueeze(1)
    >>> y = 2 * x.squeeze(1) + 0.5
    >>> observe = model_observer(models[0], x)  # vmap(functional_call) inside
    >>> res = enkf_update(flatten_ensemble(models), y, observe, 1e-3, seed=0)
    >>> load_ensemble(models, res.ensemble)
    >>> [round(v, 2) for v in res.mean.tolist()]  # (weight, bias)
    [2.0, 0.5]
    >>> res.spread_after < res.spread_before
    True
    """
    if not isinstance(ensemble, torch.Tensor) or not ensemble.is_floating_point():
        raise TypeError(
            f"ensemble must be a floating-point torch.Tensor, got {type(ensemble)}"
        )
    if ensemble.ndim != 2:
        raise ValueError(
            f"ensemble must have shape (E, d), got {tuple(ensemble.shape)}"
        )
    n_members, dim = ensemble.shape
    if n_members < 2:
        raise ValueError(f"ensemble size E must be >= 2, got E={n_members}")
    if not isinstance(observations, torch.Tensor) or not (
        observations.is_floating_point()
    ):
        raise TypeError(
            "observations must be a floating-point torch.Tensor, got "
            f"{type(observations)}"
        )
    if observations.ndim != 1:
        raise ValueError(
            f"observations must have shape (k,), got {tuple(observations.shape)}"
        )
    if not bool(torch.isfinite(ensemble).all()):
        raise ValueError("ensemble contains non-finite values")
    if not bool(torch.isfinite(observations).all()):
        raise ValueError("observations contain non-finite values")
    if not callable(observe):
        raise TypeError(f"observe must be callable, got {type(observe)}")
    if isinstance(inflation, bool) or not isinstance(inflation, (int, float)):
        raise TypeError(f"inflation must be a real number, got {inflation!r}")
    if not math.isfinite(inflation) or inflation < 1.0:
        raise ValueError(f"inflation must be finite and >= 1, got {inflation}")
    k = observations.shape[0]
    y_obs = observations.to(dtype=ensemble.dtype, device=ensemble.device)
    noise, chol = _noise_factor(noise_std, noise_cov, k, ensemble)
    taper = None
    if localization is not None:
        if not isinstance(localization, torch.Tensor):
            raise TypeError(
                f"localization must be a torch.Tensor, got {type(localization)}"
            )
        if localization.shape != (dim, k):
            raise ValueError(
                f"localization must have shape ({dim}, {k}), "
                f"got {tuple(localization.shape)}"
            )
        if not bool(torch.isfinite(localization).all()):
            raise ValueError("localization contains non-finite values")
        taper = localization.to(dtype=ensemble.dtype, device=ensemble.device)

    # detach: the analysis is a statistical update, not part of any autograd graph
    x = ensemble.detach()
    mean = x.mean(0)
    if inflation != 1.0:
        x = mean + inflation * (x - mean)
    with torch.no_grad():
        pred = observe(x)
    if not isinstance(pred, torch.Tensor) or pred.shape != (n_members, k):
        shape = tuple(pred.shape) if isinstance(pred, torch.Tensor) else type(pred)
        raise ValueError(
            f"observe must return shape ({n_members}, {k}) for this ensemble, "
            f"got {shape}"
        )
    pred = pred.to(dtype=ensemble.dtype, device=ensemble.device)
    if not bool(torch.isfinite(pred).all()):
        raise ValueError("observe returned non-finite predictions")

    anom_x = x - mean
    anom_y = pred - pred.mean(0)
    c_xy = anom_x.mT @ anom_y / (n_members - 1)
    if taper is not None:
        c_xy = taper * c_xy
    innov_cov = anom_y.mT @ anom_y / (n_members - 1) + noise

    if isinstance(seed, torch.Generator):
        gen = seed
    else:
        gen = torch.Generator(device=ensemble.device).manual_seed(int(seed))
    eps = torch.randn(
        n_members, k, generator=gen, dtype=ensemble.dtype, device=ensemble.device
    )
    perturbed = y_obs + eps @ chol.mT
    # one solve for all members and the gain: [innovations^T | C_xy^T]
    rhs = torch.cat([(perturbed - pred).mT, c_xy.mT], dim=1)
    sol = torch.linalg.solve(innov_cov, rhs)
    analysis = x + (c_xy @ sol[:, :n_members]).mT
    gain = sol[:, n_members:].mT
    return EnKFResult(
        ensemble=analysis,
        mean=analysis.mean(0),
        gain=gain,
        spread_before=_spread(x),
        spread_after=_spread(analysis),
    )


def flatten_ensemble(models: Sequence[torch.nn.Module]) -> torch.Tensor:
    """Stack the flat parameter vectors of ``models`` into an ``(E, d)`` tensor.

    Parameters
    ----------
    models : sequence of torch.nn.Module
        Members with identical parameter shapes.

    Returns
    -------
    torch.Tensor
        Detached copy, one row per model, in ``model.parameters()`` order.

    Examples
    --------
    >>> import torch
    >>> from itersolve.pde import flatten_ensemble
    >>> flatten_ensemble([torch.nn.Linear(3, 2) for _ in range(4)]).shape
    torch.Size([4, 8])
    """
    if isinstance(models, torch.nn.Module) or not isinstance(models, Sequence):
        raise TypeError(f"models must be a sequence of modules, got {type(models)}")
    if len(models) == 0:
        raise ValueError("models must not be empty")
    rows = []
    for i, m in enumerate(models):
        if not isinstance(m, torch.nn.Module):
            raise TypeError(f"models[{i}] must be a torch.nn.Module, got {type(m)}")
        rows.append(torch.nn.utils.parameters_to_vector(m.parameters()).detach())
    if any(r.shape != rows[0].shape for r in rows):
        raise ValueError(
            "models must have identical parameter counts, got "
            f"{sorted({r.numel() for r in rows})}"
        )
    return torch.stack(rows)


def load_ensemble(models: Sequence[torch.nn.Module], flat: torch.Tensor) -> None:
    """Write the rows of ``flat`` back into the parameters of ``models`` in place.

    Parameters
    ----------
    models : sequence of torch.nn.Module
        The members to overwrite (this is the function's purpose).
    flat : torch.Tensor
        ``(E, d)`` tensor with ``E = len(models)``, as from :func:`flatten_ensemble`.

    Examples
    --------
    >>> import torch
    >>> from itersolve.pde import flatten_ensemble, load_ensemble
    >>> models = [torch.nn.Linear(2, 1) for _ in range(3)]
    >>> load_ensemble(models, torch.zeros(3, 3))
    >>> float(flatten_ensemble(models).abs().sum())
    0.0
    """
    current = flatten_ensemble(models)
    if not isinstance(flat, torch.Tensor) or flat.shape != current.shape:
        shape = tuple(flat.shape) if isinstance(flat, torch.Tensor) else type(flat)
        raise ValueError(f"flat must have shape {tuple(current.shape)}, got {shape}")
    with torch.no_grad():
        for m, row in zip(models, flat, strict=True):
            torch.nn.utils.vector_to_parameters(
                row.to(dtype=current.dtype, device=current.device), m.parameters()
            )


def model_observer(
    model: torch.nn.Module, *inputs: torch.Tensor
) -> Callable[[torch.Tensor], torch.Tensor]:
    """Batched observation operator ``(E, d) -> (E, k)`` for copies of ``model``.

    Each row of the ensemble is split into ``model``'s named parameters and
    evaluated with :func:`torch.func.functional_call` under :func:`torch.func.vmap`,
    so the ``E`` forward passes run as one batched call; the output is flattened
    to ``k`` values per member. Buffers are taken from ``model``.

    Parameters
    ----------
    model : torch.nn.Module
        Template whose architecture every member shares.
    *inputs : torch.Tensor
        Arguments of ``model.forward`` (for example the sensor locations).

    Returns
    -------
    callable
        ``observe(flat)`` for :func:`enkf_update`.

    Examples
    --------
    >>> import torch
    >>> from itersolve.pde import flatten_ensemble, model_observer
    >>> models = [torch.nn.Linear(1, 1) for _ in range(5)]
    >>> observe = model_observer(models[0], torch.ones(3, 1))
    >>> observe(flatten_ensemble(models)).shape
    torch.Size([5, 3])
    """
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model)}")
    names = [n for n, _ in model.named_parameters()]
    shapes = [p.shape for _, p in model.named_parameters()]
    sizes = [math.prod(s) for s in shapes]
    total = sum(sizes)
    buffers = dict(model.named_buffers())

    def one(row: torch.Tensor) -> torch.Tensor:
        parts = torch.split(row, sizes)
        params = {n: t.reshape(s) for n, t, s in zip(names, parts, shapes, strict=True)}
        out = functional_call(model, {**params, **buffers}, inputs)
        return out.reshape(-1)

    batched = vmap(one)

    def observe(flat: torch.Tensor) -> torch.Tensor:
        if flat.ndim != 2 or flat.shape[1] != total:
            raise ValueError(
                f"flat must have shape (E, {total}), got {tuple(flat.shape)}"
            )
        return batched(flat)

    return observe
