"""nn-giorom: a reduced-order learned simulator (GIOROM) against the
full-graph GNS on MLS-MPM trajectories (issue 20 item 3; paper 13's CPU-small
reproduction, reduced).

Data: 2-D MLS-MPM (:func:`itersolve.problems.mpm_simulate`, fixed-corotated
elastic blocks dropped in a box with slip walls, 32^2 grid, 10 substeps of
5e-4 per frame), seeded; the first ``n_train`` trajectories train, the
others (other seeds) test. 2-D throughout.

Methods (timed run: one ``K``-frame rollout from frame ``t0`` of every test
trajectory; objective: the relative position error
:func:`~itersolve.nn.rollout_error`, ``||X_pred - X_true|| / ||X_true -
x_t0||`` over all frames and particles, 1.0 = standing still):

* ``gns``: :class:`~itersolve.nn.GNS` on all particles (radius graph rebuilt
  every frame, ``message_steps`` interaction steps);
* ``giorom``: :class:`~itersolve.nn.GIOROM`, a
  :class:`~itersolve.nn.GraphOperator` on ``n_reduced`` farthest-point-sampled
  particles (10% at quick) plus the learned
  :class:`~itersolve.nn.KernelInterpolator` to every particle; the sampling
  and the kernel weights are computed inside the timed rollout;
* ``constant-velocity``: ``x_{t+1} = 2 x_t - x_{t-1}`` (context: what an
  untrained stepper scores).

Both networks are trained (untimed ``prepare``) for the same number of Adam
steps of ``BATCH`` = 2 random training frames each (GNS's batch size; GNS
random-walk noise of std ``NOISE``, lr ``LR`` = 1e-3 decaying to 1e-4);
GIOROM's step is far cheaper, so this favours GNS in compute. Wall-distance
features of both see ``WALL`` = 2 grid cells (the MPM walls act through grid
nodes that a particle's spline reaches from 1.5 cells away, beyond the
~0.01 connectivity radius).

Why two frames per step: the data are free fall plus one wall impact per
trajectory, a one-frame velocity jump whose normalised acceleration is
~10-25x the std, so the impact frames carry most of the target variance.
With one frame per Adam step (the previous setting) and 300 steps the GNS
learned a velocity-dependent bias (fast fall -> impact coming) instead of
gravity: training loss 0.98, rollout error 0.81, worse than constant
velocity (0.48). On one trajectory the same network overfits (free-fall
one-step loss ~1e-3, rollout 4x better than constant velocity:
``tests/nn/test_giorom.py::test_gns_overfits_one_drop``), so the network,
features and targets were consistent; the gradient noise was the problem.
Standalone GNS trainings on the quick data (wall features on, lr 1e-3,
loaded machine): 300 x 1 frame 0.70, 1200 x 1 0.34, 150 x 4 0.26, 300 x 2
0.23, 300 x 4 0.23 rollout error (constant velocity 0.48).
Radii: ``radius = 2.5 x`` the mean nearest-neighbour spacing of the training
clouds' first frames; the reduced cloud's is scaled by ``sqrt(N / n)``, which
keeps the expected degree.

Claims (spec 13's reproduction criterion, fixed before any run):

* time per frame GNS / GIOROM >= 5 (a timing claim; PROVISIONAL on a loaded
  machine);
* rollout error GIOROM / GNS <= 2, with each network's error over the
  constant-velocity reference's in the detail;
* rollout error GNS / constant velocity < 1 (added in wave 11, before the
  run it was judged on): a baseline that does not beat ballistic
  extrapolation learned nothing and voids the previous claim;
* the time per frame of both against the particle count (``scaling-N*``
  cases: clouds of constant density, networks of the quick architecture with
  untrained weights, since the cost does not depend on the weights values;
  ``K_SCALING`` frames from rest; GIOROM keeps ``n_reduced`` fixed, as the
  paper's 1k-point sparse graphs under 100k-point clouds): reported rows, no
  verdict. The objective of those rows (the untrained networks' rollout error)
  means nothing.

The paper's 25x speed-up over GNS-type simulators is for ~100k-particle
clouds inferred from ~1k-particle graphs on a GPU: a full-scale, GPU-only
figure, not checked here.

Full scale adds a Drucker-Prager sand case (reported rows; the claims read
the elastic case).

Scales: smoke 150 particles, 3 trajectories of 14 frames, tiny networks, 5
steps; quick 1000 particles, 4 + 6 trajectories of 60 frames, GNS latent 32 x
2 message steps, GIOROM latent 32 on 100 particles, 16^2 lattice, 6 modes, 300
Adam steps of 2 frames each, rollouts of 25 frames from frame 15, scaling
N = 1k ... 8k; full 2000 particles, 16 + 4 trajectories of 100 frames, GNS latent 64 x 5
steps, 3000 steps, scaling to 32k.

Measured at quick on the shared 2-core machine (2026-12-01, wave 11
follow-up, 6 test drops; load average ~2, so the timed rows are
PROVISIONAL), 35 s wall in all, training 8.1 s for GNS and 5.7 s for GIOROM
(final one-step losses 0.60 and 0.53, upsampler 4.6e-5): time per frame GNS
5.73 ms, GIOROM 2.8 ms, ratio 2.05 (would FAIL >= 5); rollout error GNS
0.389, GIOROM 0.557, constant velocity 0.508: GIOROM / GNS 1.43 (PASS <= 2),
GNS / constant velocity 0.766 (PASS < 1), GIOROM / constant velocity 1.10
(the reduced model still does not beat ballistic extrapolation on the pooled
test drops). Scaling (3-frame rollouts from rest, sampling and kernel
weights included): N = 1000 / 2000 / 4000 / 8000: GNS 5.63 / 10.7 / 21.9 /
43 ms, GIOROM 4.41 / 5.59 / 7.73 / 11.5 ms per frame (ratios 1.28 / 1.9 /
2.84 / 3.73). The same run on the 2 test drops before (load ~6): GNS 0.231,
GIOROM 0.535, constant velocity 0.484, GIOROM / GNS 2.32 (FAIL).
Why GIOROM lost to constant velocity at quick (wave 11 follow-up; the
diagnosis looked at the test rollouts too, the decisions rest on training
data and three validation drops, seeds 100-102): nothing in the operator is
broken. Alone
on one drop, the :class:`~itersolve.nn.GraphOperator` (lattice, Fourier
layers and all) overfits like GNS: free-fall one-step loss ~1e-3, rollout
error 0.009 against constant velocity's 0.47
(``tests/nn/test_giorom.py::test_graph_operator_overfits_one_drop``); the
kernel upsampler fed the true reduced displacements reconstructs the full
test rollouts to ~3e-7, so the whole gap is the operator's reduced rollout.
On the quick data after 300 x 2 frames the operator (like GNS, less so)
learned part of the impacts as a velocity-dependent deceleration (its test
rollout's centroid decelerates in free fall); a GNS trained on the same
reduced clouds rolled out better on the two test drops. But on the three
validation drops the two networks trained as in the suite score GIOROM
1.74 / 0.43 / 0.51 (mean 0.89), GNS 1.92 / 0.65 / 0.24 (mean 0.94),
constant velocity 2.64 / 0.43 / 0.61: the per-drop spread (0.2 to 1.9) is
far larger than the claim's 2x margin, and which network wins flips
between drops. Operator variants: 2 Fourier modes and 0 Fourier layers
scored 0.90 and 0.88 (mean) on the validation drops, no better; residual or
GELU Fourier layers, a lattice on the cloud's bounding box, a 48^2
lattice, smooth lattice weights and a zero-initialised lattice branch were
looked at only on the reduced test rollouts while diagnosing (0.42-0.60
per drop there, the default 0.50-0.55) and none was adopted. The change
made: quick tests on 6 drops instead of 2 (seeds 4-9, chosen before the
run), so the pooled error the claims read is not one or two drops' luck.
Before wave 11 (one frame per step, lr 2e-3, wall features at the
connectivity radius) the same quick run gave GNS 0.808 (worse than constant
velocity), GIOROM 0.457, so "GIOROM / GNS 0.565, PASS" compared against an
unlearned baseline.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from typing import Any

import torch

from itersolve.bench.results import Results
from itersolve.bench.suite import Case, Claim, ClaimOutcome, Method, RunOutput, Suite
from itersolve.nn import (
    GIOROM,
    GNS,
    GraphOperator,
    KernelInterpolator,
    rollout_error,
    train_giorom,
    train_gns,
)
from itersolve.problems import mpm_simulate

WINDOW = 5
NOISE = 1e-4
LR = 1e-3
# The MPM walls act through grid nodes up to 3 cells (of 1/32) inside the
# box, which a particle's quadratic spline reaches from 1.5 cells away: wall
# features see 2 cells, beyond the particle connectivity radius (~0.01).
WALL = 2 / 32
# Frames per Adam step for both networks (GNS's batch size).
BATCH = 2
BOUNDS = (3 / 32, 1 - 3 / 32)
K_SCALING = 3


@dataclass(frozen=True)
class Config:
    """One scale's sizes."""

    n_particles: int
    n_train: int
    n_test: int
    n_frames: int
    t0: int
    horizon: int
    gns_latent: int
    gns_steps: int
    giorom_latent: int
    n_reduced: int
    lattice: int
    modes: int
    train_steps: int
    upsampler_steps: int
    scaling: tuple[int, ...]


CONFIGS = {
    "smoke": Config(150, 2, 1, 12, 6, 4, 8, 1, 8, 20, 8, 2, 5, 3, (150, 300)),
    "quick": Config(
        1000,
        4,
        6,
        60,
        15,
        25,
        32,
        2,
        32,
        100,
        16,
        6,
        300,
        200,
        (1000, 2000, 4000, 8000),
    ),
    "full": Config(
        2000,
        16,
        4,
        100,
        15,
        40,
        64,
        5,
        64,
        200,
        32,
        8,
        3000,
        1000,
        (2000, 4000, 8000, 16000, 32000),
    ),
}


@dataclass
class Task:
    """A case's data: training and test trajectories (float32 positions)."""

    config: Config
    train: list[torch.Tensor]
    test: list[torch.Tensor]
    radius: float
    t0: int
    horizon: int
    cache: dict[str, Any] = field(default_factory=dict)

    def windows(self) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        """(history, truth, start) of every test rollout."""
        t0, k = self.t0, self.horizon
        return [
            (p[t0 - WINDOW : t0 + 1], p[t0 + 1 : t0 + 1 + k], p[t0]) for p in self.test
        ]


def _spacing(positions: torch.Tensor) -> float:
    d = torch.cdist(positions, positions)
    d.fill_diagonal_(float("inf"))
    return float(d.min(1).values.mean())


def _simulate(material: str, seed: int, n: int, frames: int) -> torch.Tensor:
    traj = mpm_simulate(material, n_particles=n, n_frames=frames, seed=seed)
    return traj.positions.float()


def _build(config: Config, material: str = "elastic") -> Task:
    trajs = [
        _simulate(material, s, config.n_particles, config.n_frames)
        for s in range(config.n_train + config.n_test)
    ]
    train, test = trajs[: config.n_train], trajs[config.n_train :]
    radius = 2.5 * sum(_spacing(p[0]) for p in train) / len(train)
    return Task(config, train, test, radius, config.t0, config.horizon)


def _scaling_cloud(config: Config, n: int) -> Task:
    """A block of ``n`` particles at the quick data's density, simulated for
    ``WINDOW + K_SCALING`` frames (the truth of the untrained rollouts)."""
    ref = config.n_particles
    side = (0.03 * n / ref) ** 0.5  # area 0.03 holds ``ref`` particles
    g = torch.Generator().manual_seed(n)
    u = torch.rand(n, 2, generator=g, dtype=torch.float64)
    low = torch.tensor([0.5 - side / 2, 0.12], dtype=torch.float64)
    x = low + side * u
    traj = mpm_simulate("elastic", positions=x, n_frames=WINDOW + K_SCALING)
    p = traj.positions.float()
    spacing = (0.03 / ref) ** 0.5 * 0.5
    return Task(config, [], [p], 2.5 * spacing, WINDOW, K_SCALING)


def cases(scale: str) -> list[Case]:
    config = CONFIGS.get(scale, CONFIGS["full"])
    out = [
        Case(
            f"elastic-{config.n_particles}p-train{config.n_train}",
            partial(_build, config),
            {"n_particles": config.n_particles},
        )
    ]
    for n in config.scaling:
        out.append(Case(f"scaling-N{n}", partial(_scaling_cloud, config, n), {"n": n}))
    if scale == "full":
        # Reported rows only: the claims read the elastic case.
        name = f"sand-{config.n_particles}p-train{config.n_train}"
        out.append(Case(name, partial(_build, config, "sand"), {"material": "sand"}))
    return out


def _is_main(case: Case) -> bool:
    return not case.name.startswith("scaling-")


# -- models -------------------------------------------------------------------------


def _gns(task: Task, seed: int = 0) -> GNS:
    c = task.config
    return GNS(
        window=WINDOW,
        radius=task.radius,
        bounds=BOUNDS,
        latent=c.gns_latent,
        message_steps=c.gns_steps,
        wall_radius=WALL,
        seed=seed,
    )


def _giorom(task: Task, seed: int = 0) -> GIOROM:
    c = task.config
    n_full = (task.train or task.test)[0].shape[1]
    reduced_radius = task.radius * (n_full / min(c.n_reduced, n_full)) ** 0.5
    op = GraphOperator(
        window=WINDOW,
        radius=reduced_radius,
        bounds=BOUNDS,
        latent=c.giorom_latent,
        grid=c.lattice,
        modes=c.modes,
        wall_radius=WALL,
        seed=seed,
    )
    return GIOROM(op, KernelInterpolator(k=8, seed=seed), n_reduced=c.n_reduced)


@dataclass
class Prepared:
    task: Task
    model: Any
    extras: dict[str, float]


def prepare_gns(task: Task) -> Prepared:
    model = _gns(task)
    extras: dict[str, float] = {}
    if task.train:
        out = train_gns(
            model,
            task.train,
            steps=task.config.train_steps,
            lr=LR,
            noise_std=NOISE,
            batch=BATCH,
        )
        extras = {"train_seconds": out["seconds"], "final_loss": _tail(out["loss"])}
    else:
        _untrained_scales(model, task)
    return Prepared(task, model, extras)


def prepare_giorom(task: Task) -> Prepared:
    model = _giorom(task)
    extras: dict[str, float] = {}
    if task.train:
        out = train_giorom(
            model,
            task.train,
            steps=task.config.train_steps,
            upsampler_steps=task.config.upsampler_steps,
            lr=LR,
            noise_std=NOISE,
            batch=BATCH,
        )
        extras = {
            "train_seconds": out["seconds"],
            "final_loss": _tail(out["loss"]),
            "upsampler_loss": _tail(out["upsampler_loss"]),
        }
    else:
        _untrained_scales(model.operator, task)
    extras["n_reduced"] = float(min(task.config.n_reduced, task.test[0].shape[1]))
    return Prepared(task, model, extras)


def _untrained_scales(model: GNS | GraphOperator, task: Task) -> None:
    """Scaling rows: the normalisation statistics of the cloud's own frames.
    Without them an untrained network's unit-std accelerations throw the
    particles into the walls, where the radius graph fills up and the time per
    frame measures a pile-up, not the method."""
    model.fit_normalizer(task.test, NOISE)


def _tail(losses: list[float]) -> float:
    last = losses[-max(1, len(losses) // 10) :]
    return sum(last) / len(last)


def _rollouts(prepared: Prepared) -> RunOutput:
    task = prepared.task
    preds = [prepared.model.rollout(h, task.horizon) for h, _, _ in task.windows()]
    frames = task.horizon * len(preds)
    extras = dict(prepared.extras)
    extras["frames"] = float(frames)
    extras["n_particles"] = float(task.test[0].shape[1])
    return RunOutput(preds, frames, "SUCCESS", extras=extras)


def run_constant_velocity(task: Task) -> RunOutput:
    preds = []
    for h, _, _ in task.windows():
        steps = torch.arange(1, task.horizon + 1, dtype=h.dtype)[:, None, None]
        preds.append(h[-1] + steps * (h[-1] - h[-2]))
    return RunOutput(preds, task.horizon * len(preds), "SUCCESS")


def evaluate(task: Task, preds: Any) -> float:
    """Relative rollout position error over every test rollout."""
    windows = task.windows()
    predicted = torch.cat([p.reshape(-1) for p in preds])
    truth = torch.cat([t.reshape(-1) for _, t, _ in windows])
    start = torch.cat([s.expand_as(t).reshape(-1) for (_, t, s) in windows])
    if not torch.isfinite(predicted).all():
        return float("nan")
    return rollout_error(predicted.double(), truth.double(), start.double())


METHODS = [
    Method("gns", _rollouts, prepare=prepare_gns),
    Method("giorom", _rollouts, prepare=prepare_giorom, anchor="gns"),
    Method("constant-velocity", run_constant_velocity, applies=_is_main),
]


# -- claims ---------------------------------------------------------------------------


def _main_case(results: Results) -> str | None:
    names = sorted(
        {
            r["dataset_name"]
            for r in results.rows
            if r["dataset_name"].startswith("elastic-")
        }
    )
    return names[0] if names else None


def _speedup(results: Results) -> ClaimOutcome:
    case = _main_case(results)
    if case is None:
        return ClaimOutcome(None, None, "no rows")
    a, b = results.median(case, "gns", "time"), results.median(case, "giorom", "time")
    frames = results.median(case, "gns", "frames")
    if a is None or b is None or not b or not frames:
        return ClaimOutcome(None, None, "no rows for gns or giorom")
    ok = results.all_succeeded(case, "gns") and results.all_succeeded(case, "giorom")
    detail = (
        f"time per frame: gns {1e3 * a / frames:.3g} ms, giorom "
        f"{1e3 * b / frames:.3g} ms (median of the timed rollouts)"
    )
    return ClaimOutcome(a / b, ok and a / b >= 5, detail)


def _errors(results: Results) -> tuple[str | None, dict[str, float | None]]:
    case = _main_case(results)
    if case is None:
        return None, {}
    names = ("gns", "giorom", "constant-velocity")
    return case, {m: results.median(case, m, "objective_value") for m in names}


def _error_detail(err: dict[str, float | None]) -> str:
    """The three rollout errors and each network's ratio to constant velocity
    (below 1: the network learned more than ballistic extrapolation)."""
    parts = [f"{m} {v:.4g}" for m, v in err.items() if v is not None]
    cv = err.get("constant-velocity")
    ratios = [
        f"{m} / constant velocity {v / cv:.3g}"
        for m, v in err.items()
        if m != "constant-velocity" and v is not None and cv
    ]
    return (
        "rollout error: "
        + ", ".join(parts)
        + ("; " if ratios else "")
        + (", ".join(ratios))
    )


def _error_ratio(results: Results) -> ClaimOutcome:
    case, err = _errors(results)
    if case is None:
        return ClaimOutcome(None, None, "no rows")
    a, b = err["giorom"], err["gns"]
    if a is None or b is None or not b:
        return ClaimOutcome(None, None, "no rows for gns or giorom")
    ok = results.all_succeeded(case, "gns") and results.all_succeeded(case, "giorom")
    detail = _error_detail(err)
    if a != a or b != b:
        return ClaimOutcome(None, False, detail + " (non-finite rollout)")
    return ClaimOutcome(a / b, ok and a / b <= 2, detail)


def _gns_beats_cv(results: Results) -> ClaimOutcome:
    """The baseline must beat ballistic extrapolation, otherwise "GIOROM
    within 2x of GNS" compares against a network that learned nothing."""
    case, err = _errors(results)
    if case is None:
        return ClaimOutcome(None, None, "no rows")
    b, cv = err["gns"], err["constant-velocity"]
    if b is None or cv is None or not cv:
        return ClaimOutcome(None, None, "no rows for gns or constant-velocity")
    detail = _error_detail(err)
    if b != b:
        return ClaimOutcome(None, False, detail + " (non-finite gns rollout)")
    ok = results.all_succeeded(case, "gns")
    return ClaimOutcome(b / cv, ok and b / cv < 1, detail)


def _scaling(results: Results) -> ClaimOutcome:
    names = sorted(
        {
            r["dataset_name"]
            for r in results.rows
            if r["dataset_name"].startswith("scaling-")
        },
        key=lambda name: int(name.split("N")[1]),
    )
    parts, last = [], None
    for case in names:
        a, b = (
            results.median(case, "gns", "time"),
            results.median(case, "giorom", "time"),
        )
        if a is None or b is None or not b:
            continue
        n = case.split("N")[1]
        parts.append(
            f"N={n}: gns {1e3 * a / K_SCALING:.3g} ms, giorom "
            f"{1e3 * b / K_SCALING:.3g} ms ({a / b:.3g}x)"
        )
        last = a / b
    if not parts:
        return ClaimOutcome(None, None, "no scaling rows")
    return ClaimOutcome(last, None, "reported, no verdict; " + "; ".join(parts))


SUITES = [
    Suite(
        name="nn-giorom",
        description=(
            "Learned particle simulators on 2-D MLS-MPM elastic drops (1000 "
            "particles at quick): GIOROM (a graph neural operator on 10% "
            "farthest-point-sampled particles plus a learned kernel upsampler) "
            "against the full-graph GNS, both trained for the same Adam steps "
            "(2 frames each); "
            "objective: relative position error of 25-frame rollouts on unseen "
            "trajectories. Scaling cases time one frame of both against the "
            "particle count."
        ),
        objective_name="relative rollout position error",
        cases=cases,
        methods=METHODS,
        evaluate=evaluate,
        claims=[
            Claim("time per frame gns / giorom (timing claim)", ">= 5", _speedup),
            Claim("rollout error giorom / gns", "<= 2", _error_ratio),
            Claim(
                "rollout error gns / constant velocity (the baseline learned)",
                "< 1",
                _gns_beats_cv,
            ),
            Claim(
                "time per frame vs particle count (gns / giorom at the largest N)",
                "reported",
                _scaling,
            ),
        ],
        repeats={"smoke": 1, "quick": 5, "full": 5},
        # quick: 35 s at load ~2, 1 min 50 s at load ~6 (8.5 min at load 12-16).
        estimate_seconds={"smoke": 15, "quick": 45, "full": 3600},
    )
]
