"""reconstruct with SGP and FISTATV: accuracy, early stopping, the skimage
SART anchor, counters and bad input.

The data are simulated by analytic line integrals (``problems.simulate``), not
by the reconstruction projector, so even noiseless data carry a model error
(about 2-3% relative at 33 x 33): the error to the phantom falls, bottoms out
after roughly 20 steps and then rises slowly as the iterates fit that model
error (semi-convergence). The accuracy tests therefore watch the first 20
steps.
"""

from __future__ import annotations

import warnings
from dataclasses import replace

import numpy as np
import pytest
import torch
from skimage.transform import iradon_sart

from itersolve import ConvergenceWarning, Status
from itersolve.imaging import FISTATV, SGP, ParallelBeamProjector, reconstruct
from itersolve.problems import ellipse_phantoms, simulate

N = 33
ANGLES = np.linspace(0, np.pi, 30, endpoint=False)
METHODS = [
    SGP(lam=0.01),
    SGP(lam=0.01, data_term="kullback_leibler"),
    FISTATV(lam=0.01),
]


#: The methods whose data term suits Gaussian noise (the sinogram may go
#: negative, which the Kullback-Leibler term rejects).
GAUSSIAN = [m for m in METHODS if getattr(m, "data_term", "") != "kullback_leibler"]


def _name(method):
    return f"{type(method).__name__}-{getattr(method, 'data_term', '')}"


@pytest.fixture(scope="module")
def phantom():
    return ellipse_phantoms(N, 1, seed=4)[0]


@pytest.fixture(scope="module")
def projector():
    return ParallelBeamProjector(N, ANGLES)


def _relative_error(x, truth):
    return float(np.linalg.norm(x - truth) / np.linalg.norm(truth))


def _errors(y, K, method, truth, **kw):
    errors = []

    def watch(info):
        errors.append(_relative_error(info.x.numpy(), truth))

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        sol = reconstruct(y, K, method, callback=watch, **kw)
    return sol, errors


@pytest.mark.parametrize("method", METHODS, ids=_name)
def test_noiseless_error_falls_and_reaches_0_12(phantom, projector, method):
    y = simulate(phantom, ANGLES, 0.0, seed=0)
    sol, errors = _errors(y, projector, replace(method, max_steps=20), phantom.image)
    assert sol.status is Status.MAX_STEPS and len(errors) == 20
    checkpoints = [errors[k] for k in (0, 4, 9, 19)]
    assert checkpoints == sorted(checkpoints, reverse=True), checkpoints
    assert errors[-1] < 0.12, errors[-1]


@pytest.mark.parametrize("method", GAUSSIAN, ids=_name)
def test_discrepancy_stop_beats_running_on(phantom, projector, method):
    """5% Gaussian noise: stopping at ``||K x - y|| <= 1.01 delta`` keeps the error
    well below that of 150 steps, which fit the noise."""
    y = simulate(phantom, ANGLES, 0.05, seed=0)
    early, _ = _errors(y, projector, method, phantom.image, noise_level=0.05)
    assert early.success and early.stats["discrepancy_stop"] == 1.0
    assert early.num_steps < 40
    late, _ = _errors(y, projector, replace(method, max_steps=150), phantom.image)
    e_early = _relative_error(early.x, phantom.image)
    e_late = _relative_error(late.x, phantom.image)
    assert e_early < 0.7 * e_late, (e_early, e_late)
    assert e_early < 0.2


def test_agrees_loosely_with_skimage_iradon_sart(phantom):
    """Same noiseless sinogram (skimage geometry: detectors = n, odd n), SGP
    for 20 steps against 3 sweeps of scikit-image's SART: both within 0.15
    relative error of the phantom, and within 0.2 of each other."""
    K = ParallelBeamProjector(N, ANGLES, N)
    y = simulate(phantom, ANGLES, 0.0, seed=0, n_detectors=N)
    sart = None
    for _ in range(3):
        sart = iradon_sart(y.T, np.degrees(ANGLES), image=sart)
    with pytest.warns(ConvergenceWarning, match="MAX_STEPS"):
        ours = reconstruct(y, K, SGP(lam=0.01, max_steps=20)).x
    assert _relative_error(sart, phantom.image) < 0.15
    assert _relative_error(ours, phantom.image) < 0.15
    assert _relative_error(ours, sart) < 0.2


def test_counts_projections(phantom, projector):
    y = simulate(phantom, ANGLES, 0.0, seed=0)
    with pytest.warns(ConvergenceWarning):
        sgp = reconstruct(y, projector, SGP(max_steps=5))
        fista = reconstruct(y, projector, FISTATV(max_steps=5))
    # SGP: K x0, then K d per step; K^T y once, K^T K x per gradient.
    assert sgp.stats["forward_projections"] == 6
    assert sgp.stats["back_projections"] == 7
    # FISTA: K x0, then K x per step; one K^T per step (power iteration apart).
    assert fista.stats["forward_projections"] == 6
    assert fista.stats["back_projections"] == 5
    assert fista.stats["norm_estimate_projections"] == 60


def test_float32_and_torch_in_kept(phantom, projector):
    y = torch.from_numpy(simulate(phantom, ANGLES, 0.05, seed=0)).float()
    sol = reconstruct(y, projector, SGP(lam=0.01), noise_level=0.05)
    assert isinstance(sol.x, torch.Tensor) and sol.x.dtype == torch.float32
    assert sol.success and _relative_error(sol.x.numpy(), phantom.image) < 0.2
    assert projector.dtype == torch.float64  # the caller's projector untouched


def test_nonnegative_iterates(phantom, projector):
    y = simulate(phantom, ANGLES, 0.05, seed=1)
    for method in GAUSSIAN:
        sol = reconstruct(y, projector, method, noise_level=0.05)
        assert sol.x.min() >= 0


def test_bad_input_raises_naming_it(phantom, projector):
    y = simulate(phantom, ANGLES, 0.0, seed=0)
    with pytest.raises(ValueError, match=r"y must have the projector's sinogram"):
        reconstruct(y[:, :-1], projector)
    with pytest.raises(ValueError, match=r"x0 must have the image shape"):
        reconstruct(y, projector, x0=np.zeros((N, N + 1)))
    with pytest.raises(ValueError, match="noise_level must be"):
        reconstruct(y, projector, noise_level=-0.1)
    with pytest.raises(TypeError, match="projector must be a ParallelBeamProjector"):
        reconstruct(y, np.eye(3))
    with pytest.raises(TypeError, match=r"method must be a method such as SGP\(\)"):
        reconstruct(y, projector, "sgp")
    noisy = simulate(phantom, ANGLES, 0.3, seed=0)
    assert noisy.min() < 0
    with pytest.raises(ValueError, match="y must be nonnegative for data_term="):
        reconstruct(noisy, projector, SGP(data_term="kullback_leibler"))


@pytest.mark.parametrize(
    ("cls", "kwargs", "match"),
    [
        (SGP, {"lam": -1.0}, "lam must be"),
        (SGP, {"beta": 0.0}, "beta must be"),
        (SGP, {"tau": 0.5}, "tau must be"),
        (SGP, {"rtol": 0.0}, "rtol must be"),
        (SGP, {"bb_memory": 0}, "bb_memory must be"),
        (SGP, {"armijo_c": 1.0}, "armijo_c must be"),
        (SGP, {"shrink": 0.0}, "shrink must be"),
        (SGP, {"data_term": "l1"}, "data_term must be one of"),
        (SGP, {"background": 0.0}, "background must be"),
        (
            SGP,
            {"data_term": "kullback_leibler", "nonnegative": False},
            "needs nonnegative=True",
        ),
        (FISTATV, {"prox_steps": 0}, "prox_steps must be"),
        (FISTATV, {"norm_steps": 1.5}, "norm_steps must be"),
    ],
)
def test_bad_hyperparameters(cls, kwargs, match):
    with pytest.raises(ValueError, match=match):
        cls(**kwargs)


@pytest.mark.parametrize("data_term", ["least_squares", "kullback_leibler"])
def test_line_search_change_is_the_objective_difference(phantom, projector, data_term):
    """SGP's Armijo test uses ``f(x + t d) - f(x)`` in closed form; it equals
    the difference of the two objective values (checked where that difference
    is far above rounding)."""
    from itersolve.imaging._problem import TomographyProblem
    from itersolve.imaging._tv import tv_smoothed

    method = SGP(lam=0.3, beta=0.01, data_term=data_term)
    y = torch.from_numpy(simulate(phantom, ANGLES, 0.0, seed=0))
    problem = TomographyProblem(projector, y, None)
    g = torch.Generator().manual_seed(0)
    x = torch.rand(N, N, generator=g, dtype=torch.float64)
    d = torch.rand(N, N, generator=g, dtype=torch.float64) - x
    state = method.init(problem, x)
    change = method._change(problem, state, d, projector.forward(d))

    def f(v):
        return method._data(problem, projector.forward(v)) + 0.3 * float(
            tv_smoothed(v, 0.01)
        )

    for t in (1.0, 0.3, 1e-3):
        direct = f(x + t * d) - f(x)
        assert change(t) == pytest.approx(direct, rel=1e-9)
