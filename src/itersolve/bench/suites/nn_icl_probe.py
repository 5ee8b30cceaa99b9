"""nn-icl-probe: which algorithm does each transformer layer run in context?

Issue 20 item 4, spec 01 (Fu, Chen, Jia & Sharan, arXiv:2310.17086), the
transformer part. A GPT-2-style transformer (:class:`itersolve.nn.icl.
ICLTransformer`) is trained on prompts of noiseless linear regression
(``x ~ N(0, I_d)``, ``w ~ N(0, I_d)``, ``y = w^T x``; Garg et al. 2022), a
fresh linear read-out is fitted on every frozen layer, and each layer's
predictions on 320 test prompts are compared with ``k`` steps of Iterative
Newton (``k = 1..23``, :func:`itersolve.linear.newton_schulz_lstsq` from the
official code's ``M_0 = S / ||S S||_F``) and of gradient descent
(``k = 2^0 .. 2^12``, ``eta = 1 / lambda_max(X^T X)``) by the similarity of
errors (SimE: cosine of the residual vectors over prompt positions, averaged
over prompts). The best-matching ``k`` per layer are the curves.

Methods (objective: mean squared error over all positions of the 320 test
prompts, divided by ``d``; 1 is the error of predicting 0):

* ``transformer`` — the trained model's own predictions (training, read-outs
  and the comparison run untimed in ``prepare``; the curves are in the row as
  ``newton_best``, ``gd_best``, ``newton_similarity``, ``gd_similarity``,
  ``layer_error``, comma-separated per layer);
* ``lstsq`` — ``numpy.linalg.lstsq`` on the preceding points (minimum norm):
  with the ``N(0, I)`` prior and no noise this posterior mean is the best
  possible predictor, the floor the transformer approaches.

Claims (the paper's reproduction criteria, spec 01 "CPU-small, transformer",
fixed before any run). Layers are numbered 1..L; the *middle layers* are
2..L-1 (the spec: "early and late layers do not follow the
3-iterations-per-layer slope"):

* best-matching Newton ``k`` is non-decreasing over all layers, and its
  increments between consecutive middle layers are all >= 1 with
  ``max / min <= 2`` ("roughly constant": 2, 3, 4 passes, 1, 3 does not);
  measured: ``max / min`` of those increments;
* best-matching GD ``k`` grows >= 2x from each middle layer to the next
  (on the paper's grid of powers of two any growth is a doubling, a plateau
  fails; a layer matched at the grid's end ``2^12`` is censored and said so);
  measured: the smallest ratio;
* at every middle layer the best Newton SimE exceeds the best GD SimE, and
  the model has learned in context (its error / d <= 0.5, halfway from the
  zero predictor's 1 towards 0; an untrained model predicting about 0 matches
  the first iterate of both algorithms and passes the comparison alone, as a
  5-step run at the full configuration did: 0.927 vs 0.911 at every layer);
  measured: the smallest difference.

The issue judges the claims at full scale only. At smoke and quick the suite
trains a reduced model and REPORTS the curves: each claim's figure is computed
and shown, with no verdict (NOT RUN, "judged at full scale only").

Scales: smoke d = 3, 6 points, 4 layers x 2 heads x 8, 30 Adam steps;
quick d = 5, 11 points, 4 layers x 4 heads x 64, 4000 steps at lr 1e-3
(batch 64) with the curriculum dims 2 -> 5 (+1), points 5 -> 11 (+2) every 250
steps: spec 01's CPU-small model with fewer steps than its 5-10k, to fit five
minutes on 2 cores, hence the larger step size than the paper's 1e-4 and the
short curriculum. Development runs on the shared machine (training seed 0;
the evaluated prompts are seed 2) showed why quick cannot carry a verdict:
with the read-in / read-out at GPT-2's N(0, 0.02) the loss / d stayed at 1.0
(predicting 0) for 2500 steps without the curriculum and was 0.84 after 3000
with it (lr 3e-3 fell back to the plateau); with nn.Linear's default init
(Garg et al.'s) it was 0.69 at step 1300 and 0.63 at step 1600, still far
from the least-squares floor (0.24 on the test prompts: the ``lstsq`` row);
a first quick run (old init) ended at model error / d 0.774 with every layer
matched by k = 1 of both algorithms. Quick as it stands (2026-12-01, 436 s on
the shared 2-core machine at load 5-8, training 434 s): train loss / d 0.957
-> 0.325, model error / d 0.288 (lstsq 0.241); per layer 1..4 the layer error
/ d 0.933, 0.511, 0.348, 0.287, best Newton k 1, 3, 8, 12, best GD k 1, 2,
16, 64, best SimE Newton 0.888, 0.899, 0.914, 0.945 vs GD 0.879, 0.903,
0.918, 0.948: the first two claims would read PASS (one middle increment, 5;
one middle GD growth, 8x), the third FAIL (Newton - GD SimE -0.004 at both
middle layers); none is judged at this scale;
full d = 10, 21 points, 8 layers x 8 heads x 256, 30k steps at lr 1e-4 with
the curriculum dims 5 -> 10 (+1), points 11 -> 21 (+2) every 2000 steps
(spec 01's GPU-large setting; on CUDA when available). The paper's own model
(d = 20, 12 layers, 500k steps) is a multi-hour GPU job, out of scope.
"""

from __future__ import annotations

import itertools
import json
import math
import time
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np
import torch

from itersolve.bench.results import Results
from itersolve.bench.suite import Case, Claim, ClaimOutcome, Method, RunOutput, Suite
from itersolve.nn import icl

TEST_PROMPTS = 320
"""Prompts the similarities are averaged over (the paper's 320)."""
NEWTON_STEPS = 23
"""Newton ``k = 1..23`` (the paper's range)."""
TRAIN_SEED, READOUT_SEED, TEST_SEED = 0, 1, 2
LEARNED = 0.5
"""Claim 3 also needs the model's error / d <= 0.5 (the zero predictor's is 1):
an untrained model predicting about 0 matches the first iterate of both
algorithms, whose Newton SimE is slightly higher, and would pass trivially."""


@dataclass(frozen=True)
class Config:
    d: int
    points: int
    layers: int
    heads: int
    width: int
    steps: int
    lr: float
    batch: int
    readout_prompts: int
    curriculum: icl.Curriculum | None = None
    cuda: bool = False
    """Train on CUDA when it is available (full scale)."""


CONFIGS = {
    "smoke": Config(3, 6, 4, 2, 8, 30, 1e-3, 16, 128),
    "quick": Config(
        5, 11, 4, 4, 64, 4000, 1e-3, 64, 2000, icl.Curriculum(2, 5, 1, 5, 11, 2, 250)
    ),
    "full": Config(
        10,
        21,
        8,
        8,
        256,
        30_000,
        1e-4,
        64,
        4000,
        icl.Curriculum(5, 10, 1, 11, 21, 2, interval=2000),
        cuda=True,
    ),
}


@dataclass
class Task:
    config: Config
    sampler: icl.GaussianRegressionSampler
    x: torch.Tensor
    """Test prompts, ``(320, points, d)`` float32."""
    y: torch.Tensor
    cache: dict[str, Any] = field(default_factory=dict)


def _build(scale: str) -> Task:
    config = CONFIGS[scale]
    sampler = icl.GaussianRegressionSampler(config.d, config.points)
    x, y = sampler.sample(TEST_PROMPTS, seed=TEST_SEED)
    return Task(config, sampler, x, y)


def cases(scale: str) -> list[Case]:
    c = CONFIGS[scale]
    name = f"icl-d{c.d}-n{c.points}-L{c.layers}-w{c.width}-steps{c.steps}"
    params = {"d": c.d, "points": c.points, "layers": c.layers, "width": c.width}
    return [Case(name, partial(_build, scale), {**params, "steps": c.steps})]


def evaluate(task: Task, x: Any) -> float:
    """Mean squared error of the predictions over all test positions, / d."""
    pred = np.asarray(x, dtype=np.float64)
    return float(np.mean((pred - task.y.double().numpy()) ** 2) / task.config.d)


def _joined(values: list[float] | list[int], digits: int = 4) -> str:
    return ",".join(
        f"{v:.{digits}g}" if isinstance(v, float) else str(v) for v in values
    )


@dataclass
class Trained:
    task: Task
    model: icl.ICLTransformer
    extras: dict[str, Any]


def prepare_transformer(task: Task) -> Trained:
    c = task.config
    device = "cuda" if c.cuda and torch.cuda.is_available() else "cpu"
    model = icl.ICLTransformer(
        c.d, c.points, layers=c.layers, heads=c.heads, width=c.width, seed=0
    ).to(device)
    start = time.perf_counter()
    history = icl.train_icl(
        model,
        task.sampler,
        c.steps,
        batch_size=c.batch,
        lr=c.lr,
        seed=TRAIN_SEED,
        curriculum=c.curriculum,
    )
    seconds = time.perf_counter() - start
    readouts = icl.fit_layer_readouts(
        model, task.sampler, c.readout_prompts, seed=READOUT_SEED
    )
    layer_predictions = readouts.predict(model, task.x.to(device), task.y.to(device))
    result = icl.compare_layers(
        layer_predictions, task.x, task.y, newton_steps=NEWTON_STEPS
    )
    window = max(1, c.steps // 20)
    extras = {
        "train_seconds": seconds,
        "train_loss_first": float(np.mean(history["loss"][:window])),
        "train_loss_last": float(np.mean(history["loss"][-window:])),
        "newton_best": _joined(result.newton_best),
        "gd_best": _joined(result.gd_best),
        # 8 digits: the SimE claim compares these strings' values
        "newton_best_similarity": _joined(result.newton_best_similarity, 8),
        "gd_best_similarity": _joined(result.gd_best_similarity, 8),
        "layer_error": _joined(result.layer_error),
        "newton_similarity": json.dumps(
            np.round(result.newton_similarity.numpy(), 4).tolist()
        ),
        "gd_similarity": json.dumps(np.round(result.gd_similarity.numpy(), 4).tolist()),
        "gd_grid_max": max(result.gd_steps),
    }
    return Trained(task, model, extras)


def run_transformer(trained: Trained) -> RunOutput:
    device = trained.model.read_in.weight.device
    with torch.no_grad():
        pred = trained.model(trained.task.x.to(device), trained.task.y.to(device))
    return RunOutput(
        pred.double().cpu().numpy(),
        trained.task.config.steps,
        "SUCCESS",
        extras=dict(trained.extras),
    )


def run_lstsq(task: Task) -> RunOutput:
    x, y = task.x.double().numpy(), task.y.double().numpy()
    B, n, _ = x.shape
    pred = np.zeros((B, n))
    for b in range(B):
        for i in range(1, n):
            w = np.linalg.lstsq(x[b, :i], y[b, :i], rcond=None)[0]
            pred[b, i] = x[b, i] @ w
    return RunOutput(pred, 1, "SUCCESS")


METHODS = [
    Method("transformer", run_transformer, prepare=prepare_transformer, anchor="lstsq"),
    Method("lstsq", run_lstsq),
]


# -- claims ----------------------------------------------------------------------


def _row(results: Results) -> dict[str, Any] | None:
    for case in sorted({r["dataset_name"] for r in results.rows}):
        rows = results.select(case, "transformer")
        if rows and rows[0].get("newton_best") is not None:
            return rows[0]
    return None


def _ints(text: str) -> list[int]:
    return [int(v) for v in text.split(",")]


def _floats(text: str) -> list[float]:
    return [float(v) for v in text.split(",")]


def _curves(row: dict[str, Any]) -> str:
    return (
        f"per layer: Newton best k {row['newton_best']} (SimE "
        f"{row['newton_best_similarity']}); GD best k {row['gd_best']} (SimE "
        f"{row['gd_best_similarity']}); layer error/d {row['layer_error']}; model "
        f"error/d {row['objective_value']:.4g}; train loss/d "
        f"{row['train_loss_first']:.3g} -> {row['train_loss_last']:.3g}"
    )


def newton_linear(newton_best: list[int]) -> tuple[float, bool, str]:
    """Claim 1 on a per-layer list: (max/min middle increment, verdict, why)."""
    L = len(newton_best)
    monotone = all(b >= a for a, b in itertools.pairwise(newton_best))
    middle = newton_best[1 : L - 1]
    steps = [b - a for a, b in itertools.pairwise(middle)]
    if not steps:
        return math.nan, False, "fewer than 3 middle layers: no increment to judge"
    low, high = min(steps), max(steps)
    ratio = high / low if low > 0 else math.inf
    ok = monotone and low >= 1 and ratio <= 2
    why = f"middle increments {steps}; monotone over all layers: {monotone}"
    return ratio, ok, why


def gd_doubling(gd_best: list[int], grid_max: int) -> tuple[float, bool, str]:
    """Claim 2 on a per-layer list: (smallest middle growth ratio, verdict, why)."""
    middle = gd_best[1 : len(gd_best) - 1]
    ratios = [b / a for a, b in itertools.pairwise(middle)]
    if not ratios:
        return math.nan, False, "fewer than 3 middle layers: no growth to judge"
    why = f"middle growth ratios {[round(r, 3) for r in ratios]}"
    if grid_max in middle:
        why += f"; a middle layer matches the grid's end {grid_max} (censored)"
    return min(ratios), min(ratios) >= 2, why


def newton_beats_gd(newton: list[float], gd: list[float]) -> tuple[float, bool, str]:
    """Claim 3: (smallest middle-layer SimE difference Newton - GD, verdict, why)."""
    L = len(newton)
    diffs = [newton[i] - gd[i] for i in range(1, L - 1)]
    if not diffs:
        return math.nan, False, "no middle layer"
    return min(diffs), min(diffs) > 0, f"middle Newton - GD SimE {_joined(diffs, 3)}"


def _claim(kind: str) -> Any:
    def check(results: Results) -> ClaimOutcome:
        row = _row(results)
        if row is None:
            return ClaimOutcome(None, None, "no transformer row")
        if kind == "newton":
            value, ok, why = newton_linear(_ints(row["newton_best"]))
        elif kind == "gd":
            value, ok, why = gd_doubling(_ints(row["gd_best"]), int(row["gd_grid_max"]))
        else:
            value, ok, why = newton_beats_gd(
                _floats(row["newton_best_similarity"]),
                _floats(row["gd_best_similarity"]),
            )
            learned = row["objective_value"] <= LEARNED
            ok = ok and learned
            why += (
                f"; model error/d {row['objective_value']:.4g} "
                f"({'<=' if learned else '>'} {LEARNED}: "
                f"{'learned in context' if learned else 'not learned, no verdict'})"
            )
        detail = f"{why}; {_curves(row)}"
        if row.get("scale") != "full":
            return ClaimOutcome(
                value,
                None,
                f"judged at full scale only (issue 20): {row.get('scale')} reports "
                f"the curves, would read {'PASS' if ok else 'FAIL'}; {detail}",
            )
        return ClaimOutcome(value, ok, detail)

    return check


SUITES = [
    Suite(
        name="nn-icl-probe",
        description=(
            "In-context linear regression (Garg et al. setup, d = 5, 11 points at "
            "quick): a GPT-2-style transformer is trained, a linear read-out is "
            "fitted per layer, and each layer's predictions on 320 prompts are "
            "matched to k steps of Iterative Newton (k = 1..23) and of gradient "
            "descent (k = 2^0..2^12) by the similarity of errors (Fu et al., "
            "paper 01). Quick reports the curves; the claims are judged at full "
            "scale only. Objective: mean squared error / d over all positions."
        ),
        objective_name="mean squared error / d",
        cases=cases,
        methods=METHODS,
        evaluate=evaluate,
        claims=[
            Claim(
                "best Newton k monotone in depth, ~constant middle increments "
                "(full scale only)",
                "max/min middle increment <= 2, all >= 1",
                _claim("newton"),
            ),
            Claim(
                "best GD k grows >= 2x per middle layer (full scale only)",
                ">= 2",
                _claim("gd"),
            ),
            Claim(
                "SimE(Newton) > SimE(GD) at the middle layers (full scale only)",
                "> 0",
                _claim("sime"),
            ),
        ],
        repeats={"smoke": 1, "quick": 1, "full": 1},
        estimate_seconds={"smoke": 10, "quick": 200, "full": 3600},
    )
]
