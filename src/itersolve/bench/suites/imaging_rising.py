"""imaging-rising: RISING against the converged SGP solve, the early-stopped
solve alone, filtered back-projection, and FBP + the same U-Net (issue 20
item 2; paper 12's CPU-small reproduction, reduced).

Data: COULE-like random ellipse phantoms (:func:`itersolve.problems.ellipse_phantoms`),
sinograms simulated by exact ellipse line integrals (4 rays per detector bin,
:func:`itersolve.problems.simulate`: not the reconstruction projector, so no
inverse crime) from ``ANGLES`` parallel-beam views over [0, pi), Gaussian noise
of relative norm ``NOISE``. Reconstruction projector:
:class:`~itersolve.imaging.ParallelBeamProjector` (Siddon lengths), odd image
side so scikit-image's FBP centre matches the detector's.

Methods, on the same test sinograms (the timed run reconstructs the whole
test set; objective: mean relative error to the phantoms):

* ``sgp-converged`` (IS): SGP (``lam`` per scale, ``beta = 1e-3``) for at
  most ``k_is`` steps (it stops earlier on ``||x_k - x_{k-1}|| <= 1e-6
  ||x_k||``);
* ``sgp-early`` (RIS): the same SGP stopped after ``k1 = 5`` steps (the
  paper's and the spec's k1);
* ``rising``: RIS followed by a :class:`~itersolve.imaging.ResUNet` (residual:
  ``x_RIS + U(x_RIS)``, ReLU) trained (untimed ``prepare``) on ``(RIS, IS)``
  pairs of the training sinograms; its timed run includes the 5 SGP steps;
* ``fbp``: ``skimage.transform.iradon`` (ramp filter), clipped at 0;
* ``fbp-unet``: FBP followed by the same ResUNet architecture trained on
  ``(FBP, phantom)`` pairs with the same recipe (the FBPConvNet-type
  post-processing baseline).

Training recipe (both networks): Adam, lr 3e-3 decayed to 0 on a half cosine,
batch 4, a random flip per batch (left-right, up-down or both: uniform angles
over [0, pi) are closed under ``theta -> pi - theta``, so a flipped pair is a
pair of the same geometry up to TV's one-sided differences). The paper's
Adam 1e-4 for 50 epochs over 430-500 images is far more optimiser steps than
a CPU minute allows.

``lam`` is chosen per geometry on phantoms of another seed (99, not
evaluated), as the grid value in {0.1, 0.3, 1, 3, 10} whose converged solve
has the smallest relative error at 5% noise: RISING's target must be worth
reaching. At 65^2 / 45 angles the converged errors were 0.202, 0.142, 0.0947,
0.0875, 0.122, so ``lam = 3`` (SGP stops by itself after ~160 steps, under
``k_is = 300``); at 33^2 / 30 angles the earlier choice was 0.3.

Paper numbers: the spec (12) gives no RE / SSIM / time tables (marked
[verify]); its criteria, used here, are the reproduction criteria below. The
paper's setting is 256^2, 60 angles, 1% noise, k1 = 5, IS = 200 SGP steps,
the (64, 128, 256, 512) ResUNet; the issue's is 64^2, 45 angles, 5% noise,
which quick now uses (65^2: an odd side keeps FBP's centre on the
detector's).

Claims (paper 12's reproduction criteria, stated before any run):

* RE(rising) <= 1.1 RE(sgp-converged) ("within 10%");
* RE(rising) <= 0.5 RE(sgp-early) ("far below" read as at most half);
* mean SSIM(rising, sgp-converged) over the test images >= 0.95 (data range:
  the converged image's);
* time(rising) <= 0.1 time(sgp-converged) (a timing claim: medians of the
  timed runs; PROVISIONAL on a loaded machine);
* under 2x the test noise, RISING's relative error grows by a smaller factor
  than FBP + U-Net's (both networks trained at 1x; the factor is
  RE(2x) / RE(1x), measured untimed in ``prepare``).

Scales: smoke 17^2, 10 angles, ``lam`` 0.3, 6 training / 2 test images,
tiny nets; quick 65^2, 45 angles, 5% noise, ``lam`` 3, 200 / 10 images,
``k_is`` 300, channels (8, 16, 32, 64) (3 pooling levels), 60 epochs; full
the same geometry with 500 / 20 images, channels (16, 32, 64, 128), 100
epochs. The paper's 256^2 runs with the (64, 128, 256, 512) network are
GPU-sized.

Measured at quick on the shared 2-core machine (2026-12-01, load ~8-11: the
timing row is PROVISIONAL): 11.6 min wall, 272 s of CPU on one thread (so
about 4.5 min idle). Mean RE converged SGP 0.0813, SGP at 5 steps 0.333,
RISING 0.141, FBP 0.142, FBP + U-Net 0.0801. Claims: RISING / converged 1.73
(FAIL, <= 1.1); RISING / early 0.422 (PASS, <= 0.5); SSIM(RISING, converged)
0.965 (PASS, >= 0.95); time ratio 0.0795 (PROVISIONAL, would PASS; RISING's
time includes its 5 SGP steps); RE growth at 2x noise RISING 1.10 vs FBP +
U-Net 1.66 (PASS; at 2x noise FBP + U-Net's error 0.133 is still below
RISING's 0.155).

Why RISING is behind the converged solve (the first claim): the network does
not reach its target. Its mean distance to the converged image on the test
set is 0.114 (``error_to_converged``; its input's is 0.316), and with the
converged solve 0.081 from the phantoms, "within 10%" needs RE(rising) <=
0.089, i.e. (errors adding roughly orthogonally) a distance to the target of
about sqrt(0.089^2 - 0.081^2) = 0.04: a ninefold reduction of the input's
distance, where the trained nets give three. Diagnostics at this geometry on
cached pairs (200 training, 10 held-out, 10 test sinograms; 60 epochs):
(8, 16, 32) constant lr 3e-3 without flips, held-out distance 0.132, RE ratio
1.92; the same with cosine decay and flips 0.136, 1.93 (at this size the
recipe is not the bottleneck); (8, 16, 32, 64) 0.120, 1.75 (the quick
network); (16, 32, 64) 0.120, 1.71: a larger receptive field or width helps
a little, and the held-out curves still creep down at the end. More images
at the same epochs do not help (300 images: 0.117, 1.74), more steps do,
slowly (200 images x 120 epochs: 0.110, 1.66, training loss still falling):
the network is underfitted, not data-starved. k1 is the
main lever: with k1 = 10 (not the paper's) the input is already 0.106 from
the target (0.348 at k1 = 5), the net brings it to 0.067 and RE(rising) /
RE(converged) to 1.29 (SSIM 0.981), but then RISING is only 0.76 of the
early solve's error. Five SGP steps from a flat start leave a blurred image
whose missing edges a CPU-minute network does not restore; the paper's 500
images x 50 epochs of 256^2 images with a 64-512-channel network (three
orders of magnitude more training compute) are GPU-sized (``--scale full``
goes part of the way).
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np
import torch

from itersolve import ConvergenceWarning
from itersolve.bench.results import Results
from itersolve.bench.suite import Case, Claim, ClaimOutcome, Method, RunOutput, Suite
from itersolve.imaging import (
    RISING,
    SGP,
    ParallelBeamProjector,
    ResUNet,
    relative_error,
    ssim,
    train_rising,
)
from itersolve.imaging._rising import fit, sgp_steps
from itersolve.problems import ellipse_phantoms, simulate

K1 = 5
LR = 3e-3
BATCH = 4
#: The training recipe shared by RISING's network and FBP + U-Net's.
SCHEDULE = "cosine"
AUGMENT = True


@dataclass
class Task:
    """One scale's data: geometry, training and test sinograms, phantoms."""

    n: int
    angles: np.ndarray
    noise: float
    lam: float
    k_is: int
    channels: tuple[int, ...]
    epochs: int
    projector: ParallelBeamProjector
    train_y: list[np.ndarray]
    train_x: list[np.ndarray]
    test_y: list[np.ndarray]
    test_y2: list[np.ndarray]
    test_x: list[np.ndarray]
    cache: dict[str, Any] = field(default_factory=dict)


def _build(
    n: int,
    n_angles: int,
    noise: float,
    lam: float,
    n_train: int,
    n_test: int,
    k_is: int,
    channels: tuple[int, ...],
    epochs: int,
) -> Task:
    angles = np.linspace(0, np.pi, n_angles, endpoint=False)
    phantoms = ellipse_phantoms(n, n_train + n_test, seed=0)
    ys = [simulate(p, angles, noise, seed=i) for i, p in enumerate(phantoms)]
    test = phantoms[n_train:]
    y2 = [simulate(p, angles, 2 * noise, seed=10_000 + i) for i, p in enumerate(test)]
    return Task(
        n,
        angles,
        noise,
        lam,
        k_is,
        channels,
        epochs,
        ParallelBeamProjector(n, angles),
        ys[:n_train],
        [p.image for p in phantoms[:n_train]],
        ys[n_train:],
        y2,
        [p.image for p in test],
    )


def cases(scale: str) -> list[Case]:
    args: tuple[Any, ...]
    if scale == "smoke":
        args = (17, 10, 0.05, 0.3, 6, 2, 20, (4, 8), 3)
    elif scale == "quick":
        args = (65, 45, 0.05, 3.0, 200, 10, 300, (8, 16, 32, 64), 60)
    else:
        args = (65, 45, 0.05, 3.0, 500, 20, 300, (16, 32, 64, 128), 100)
    n, a, noise, _lam, n_train = args[:5]
    name = f"ellipses-{n}px-{a}angles-noise{noise:g}-train{n_train}"
    return [Case(name, partial(_build, *args), {"n": n, "angles": a})]


def _is(task: Task, y: np.ndarray) -> np.ndarray:
    return sgp_steps(y, task.projector, SGP(lam=task.lam), task.k_is).numpy()


def _fbp(task: Task, y: np.ndarray) -> np.ndarray:
    from skimage.transform import iradon

    x = iradon(y.T, np.degrees(task.angles), output_size=task.n, filter_name="ramp")
    return np.clip(x, 0.0, None)


def _mean_error(xs: list[np.ndarray], truths: list[np.ndarray]) -> float:
    return float(
        np.mean([relative_error(x, t) for x, t in zip(xs, truths, strict=True)])
    )


# -- methods -------------------------------------------------------------------


def run_is(task: Task) -> RunOutput:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        xs = [_is(task, y) for y in task.test_y]
    task.cache["is_test"] = xs
    return RunOutput(np.stack(xs), task.k_is, "SUCCESS")


def run_ris(task: Task) -> RunOutput:
    solver = SGP(lam=task.lam)
    xs = [sgp_steps(y, task.projector, solver, K1).numpy() for y in task.test_y]
    task.cache["ris_test"] = xs
    return RunOutput(np.stack(xs), K1, "SUCCESS")


def run_fbp(task: Task) -> RunOutput:
    return RunOutput(np.stack([_fbp(task, y) for y in task.test_y]), 1, "SUCCESS")


@dataclass
class Trained:
    task: Task
    model: Any
    extras: dict[str, float]


def _recipe(task: Task) -> dict[str, Any]:
    """The training recipe both networks share (a fair noise comparison)."""
    return {
        "epochs": task.epochs,
        "lr": LR,
        "batch_size": BATCH,
        "schedule": SCHEDULE,
        "augment": AUGMENT,
        "seed": 0,
    }


def prepare_rising(task: Task) -> Trained:
    start = time.perf_counter()
    model = RISING(
        ResUNet(task.channels, seed=0),
        task.projector,
        k1=K1,
        solver=SGP(lam=task.lam),
    )
    out = train_rising(
        model,
        task.train_y,
        k_is=task.k_is,
        **_recipe(task),
    )
    seconds = time.perf_counter() - start
    rising = [model.reconstruct(y) for y in task.test_y]
    rising2 = [model.reconstruct(y) for y in task.test_y2]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        converged = task.cache.get("is_test") or [_is(task, y) for y in task.test_y]
        early = task.cache.get("ris_test") or [model.early(y) for y in task.test_y]
    similarity = [
        ssim(x, c, data_range=float(np.ptp(c)))
        for x, c in zip(rising, converged, strict=True)
    ]
    # How close the network gets to its own target, against its input's
    # distance: is the converged solve reachable from 5 steps?
    to_target = _mean_error(rising, converged)
    early_to_target = _mean_error([np.asarray(x) for x in early], converged)
    e1, e2 = _mean_error(rising, task.test_x), _mean_error(rising2, task.test_x)
    extras = {
        "train_seconds": seconds,
        "final_loss": out["loss"][-1],
        "ssim_to_converged": float(np.mean(similarity)),
        "error_to_converged": to_target,
        "early_error_to_converged": early_to_target,
        "error_2x_noise": e2,
        "degradation_2x": e2 / e1,
    }
    return Trained(task, model, extras)


def run_rising(trained: Trained) -> RunOutput:
    xs = [trained.model.reconstruct(y) for y in trained.task.test_y]
    return RunOutput(np.stack(xs), K1, "SUCCESS", extras=dict(trained.extras))


def prepare_fbp_unet(task: Task) -> Trained:
    start = time.perf_counter()
    net = ResUNet(task.channels, seed=0)
    inputs = torch.tensor(np.stack([_fbp(task, y) for y in task.train_y]))[:, None]
    targets = torch.tensor(np.stack(task.train_x))[:, None]
    inputs, targets = inputs.float(), targets.float()
    fit(
        net,
        inputs,
        targets,
        **_recipe(task),
    )
    seconds = time.perf_counter() - start

    def apply(y: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            x = torch.tensor(_fbp(task, y)).float()[None, None]
            return net(x)[0, 0].double().numpy()

    e1 = _mean_error([apply(y) for y in task.test_y], task.test_x)
    e2 = _mean_error([apply(y) for y in task.test_y2], task.test_x)
    extras = {"train_seconds": seconds, "error_2x_noise": e2, "degradation_2x": e2 / e1}
    return Trained(task, apply, extras)


def run_fbp_unet(trained: Trained) -> RunOutput:
    xs = [trained.model(y) for y in trained.task.test_y]
    return RunOutput(np.stack(xs), 1, "SUCCESS", extras=dict(trained.extras))


def evaluate(task: Task, x: Any) -> float:
    """Mean relative error of the test reconstructions to the phantoms."""
    return _mean_error(list(np.asarray(x)), task.test_x)


METHODS = [
    Method("sgp-converged", run_is),
    Method("sgp-early", run_ris, anchor="sgp-converged"),
    Method("fbp", run_fbp, requires=("skimage",)),
    Method("rising", run_rising, prepare=prepare_rising, anchor="sgp-converged"),
    Method(
        "fbp-unet",
        run_fbp_unet,
        prepare=prepare_fbp_unet,
        anchor="rising",
        requires=("skimage",),
    ),
]


# -- claims --------------------------------------------------------------------


def _case(results: Results) -> str | None:
    names = sorted({r["dataset_name"] for r in results.rows})
    return names[0] if names else None


def _ratio(method: str, reference: str, column: str, limit: float) -> Any:
    def check(results: Results) -> ClaimOutcome:
        case = _case(results)
        if case is None:
            return ClaimOutcome(None, None, "no rows")
        a = results.median(case, method, column)
        b = results.median(case, reference, column)
        if a is None or b is None or b == 0:
            return ClaimOutcome(None, None, f"no rows for {method} or {reference}")
        ok = results.all_succeeded(case, method) and results.all_succeeded(
            case, reference
        )
        detail = f"{method} {a:.4g} vs {reference} {b:.4g} ({column})"
        if not ok:
            detail += "; a run did not succeed"
        return ClaimOutcome(a / b, ok and a / b <= limit, detail)

    return check


def _ssim_claim(results: Results) -> ClaimOutcome:
    case = _case(results)
    value = (
        None if case is None else results.median(case, "rising", "ssim_to_converged")
    )
    if value is None:
        return ClaimOutcome(None, None, "no rising rows")
    return ClaimOutcome(
        value, value >= 0.95, f"mean SSIM {value:.4f} over the test set"
    )


def _degradation(results: Results) -> ClaimOutcome:
    case = _case(results)
    if case is None:
        return ClaimOutcome(None, None, "no rows")
    a = results.median(case, "rising", "degradation_2x")
    b = results.median(case, "fbp-unet", "degradation_2x")
    if a is None or b is None:
        return ClaimOutcome(None, None, "no rows for rising or fbp-unet")
    ea = results.median(case, "rising", "error_2x_noise")
    eb = results.median(case, "fbp-unet", "error_2x_noise")
    detail = (
        f"RE(2x)/RE(1x): rising {a:.3f}, fbp-unet {b:.3f}; RE at 2x noise: "
        f"rising {ea:.4f}, fbp-unet {eb:.4f}"
    )
    return ClaimOutcome(a / b, a < b, detail)


SUITES = [
    Suite(
        name="imaging-rising",
        description=(
            "Few-view CT of random ellipse phantoms (65^2 at quick, 45 angles, "
            "5% Gaussian noise, sinograms by analytic line integrals): RISING "
            "(5 SGP steps + a ResUNet trained on converged SGP targets) against "
            "SGP run to convergence (lam 3, at most 300 steps), SGP stopped "
            "at 5 steps, scikit-image FBP and FBP + the same ResUNet trained on "
            "the phantoms. Objective: mean relative error to the phantoms over "
            "the test set."
        ),
        objective_name="mean relative error",
        cases=cases,
        methods=METHODS,
        evaluate=evaluate,
        claims=[
            Claim(
                "RE(rising) / RE(sgp-converged)",
                "<= 1.1",
                _ratio("rising", "sgp-converged", "objective_value", 1.1),
            ),
            Claim(
                "RE(rising) / RE(sgp-early)",
                "<= 0.5",
                _ratio("rising", "sgp-early", "objective_value", 0.5),
            ),
            Claim(
                "mean SSIM(rising, sgp-converged)",
                ">= 0.95",
                _ssim_claim,
            ),
            Claim(
                "time(rising) / time(sgp-converged) (timing claim)",
                "<= 0.1",
                _ratio("rising", "sgp-converged", "time", 0.1),
            ),
            Claim(
                "RE growth under 2x test noise, rising / fbp-unet",
                "< 1",
                _degradation,
            ),
        ],
        repeats={"smoke": 1, "quick": 5, "full": 5},
        # quick: 272 s CPU on one thread (11.6 min wall on the busy machine);
        # smoke 5.8 s CPU.
        estimate_seconds={"smoke": 10, "quick": 260, "full": 3000},
    )
]
