"""optim-training: AdaHessian vs torch.optim (and other AdaHessian packages) on a
small CNN trained on scikit-learn's 8x8 digits.

Training recipe: the one the paper's CIFAR runs use, from the official script
(``amirgholami/adahessian``, ``image_classification/main.py`` and the
``config/resnet20_cifar10/*.sh`` files), applied to every optimizer alike:

* weight decay 5e-4 for every optimizer. SGD (lr 0.1, momentum 0.9) and Adam
  (lr 1e-3) get it coupled (``torch.optim`` ``weight_decay=5e-4``); AdamW (lr
  1e-2) and AdaHessian (lr 0.15) get it decoupled with the script's correction
  ``weight_decay = 5e-4 / lr`` (AdamW 0.05, AdaHessian 3.33e-3), so that every
  step shrinks the weights by ``lr * wd = 5e-4`` as the coupled methods do at
  lr 1. Before this suite gave AdaHessian ``wd = 5e-4`` uncorrected (a 6.7x
  weaker decay than the paper's), SGD and Adam none and AdamW torch's default
  0.01: not the paper's comparison.
* step decay: lr x 0.1 at epochs 80 and 120 of 160 (``MultiStepLR``), scaled to
  this suite's 30 epochs: x 0.1 after 50% and 75% of the steps (epochs 15 and
  22.5). No warmup: the official image-classification script has none (the
  warmup in the paper belongs to the fairseq transformer runs).

The recipe was fixed from the official script before the run that it was
judged on; the thresholds are the spec's (>= Adam's mean; within one sample
std of SGD's mean over 5 seeds). The claim details also print the standard
error of the difference of the two means, ``sqrt(s1^2/n + s2^2/n)``: with 5
seeds a margin smaller than that is not a measured difference either way.

Result at quick with this recipe: AdaHessian 0.9844 +- 0.0042 vs SGD 0.9894
+- 0.0036 (5 seeds): margin -0.0050 against the threshold -0.0036, FAIL
(before the recipe: -0.0039, FAIL); the standard error of the difference is
0.0025, so SGD is ahead by 2 standard errors, not by noise alone. AdaHessian
beats Adam (0.9756) by 0.0089. What was checked: the step equals the
official optimizer's (below), the probes are Rademacher, the bias corrections
and the conv-kernel averaging are the official ones, every optimizer gets the
script's weight decay and schedule. What remains is fit: AdaHessian's final
training loss is 0.0017-0.012 across the seeds against SGD's 0.0014-0.0016
(AdamW 0.0009-0.0012), i.e. at lr 0.15 and 30 epochs it has not fitted the
training set as far; the third-party AdaHessians on seed 0 land at 0.9861
(torch_optimizer, k = 1) and 0.9889 (pytorch_optimizer), as ours (0.9861).
The paper's own margin over SGD (92.13 vs 92.08 on ResNet20) is smaller than
one test-set std here.

The algorithm itself matches the official optimizer: ``torch_optimizer``'s
Adahessian (the author's port of the official file) agrees step for step to
1e-12 at k = 0.5 and k = 1 (tests/optim/test_adahessian.py). pytorch_optimizer's
``AdaHessian`` is a different variant: no spatial averaging of conv kernels,
the signed estimate ``z * Hz`` (the abs is irrelevant there because only its
square enters), ``eps`` 1e-16 and lr 0.1 by default; on a model without conv
kernels and with the same eps it agrees to 1e-10 (same tests). Its row here
runs with eps 1e-4 and the recipe above.

A seed whose final parameters or training loss are not finite has diverged: its
row is ``DIVERGED`` with a NaN objective (``"finite": false``), it enters the
means over seeds as accuracy 0 and the claims say how many seeds diverged; a
diverged or crashed seed of AdaHessian FAILs the accuracy claims.
"""

from __future__ import annotations

import math
import statistics
import warnings
from dataclasses import dataclass
from functools import partial
from typing import Any

import torch
from torch import nn

from itersolve.bench.results import Results
from itersolve.bench.suite import Case, Claim, ClaimOutcome, Method, RunOutput, Suite
from itersolve.bench.suites.optim_common import (
    Digits,
    _loss,
    accuracy,
    batches,
    cnn,
    digits,
    flat_params,
    full_loss,
    load_flat,
    mean_std,
    no_rows,
    per_seed,
    train,
    values,
)
from itersolve.optim import Adahessian

BATCH = 64
SEEDS = {"smoke": 1, "quick": 5, "full": 5}
EPOCHS = {"smoke": 1, "quick": 30, "full": 30}
PARITY_STEPS = {"smoke": 5, "quick": 50, "full": 200}
OURS = "itersolve-adahessian"
WEIGHT_DECAY = 5e-4  # the official script's, for every optimizer
DECAY_AT = (0.5, 0.75)  # MultiStepLR milestones 80, 120 of 160 epochs
DECAY = 0.1


@dataclass(frozen=True)
class TrainingProblem:
    data: Digits
    seed: int
    stream: list[torch.Tensor]
    parity: bool = False


def _build(seed: int, epochs: int, parity: bool = False) -> TrainingProblem:
    data = digits()
    return TrainingProblem(data, seed, batches(1437, BATCH, epochs, seed), parity)


def _build_parity(steps: int) -> TrainingProblem:
    return TrainingProblem(digits(), 0, batches(1437, BATCH, 10, 0)[:steps], True)


def cases(scale: str) -> list[Case]:
    out = [
        Case(
            f"digits-cnn/seed{s}",
            partial(_build, s, EPOCHS[scale]),
            {"epochs": EPOCHS[scale], "batch": BATCH, "seed": s},
        )
        for s in range(SEEDS[scale])
    ]
    steps = PARITY_STEPS[scale]
    out.append(
        Case(
            "digits-cnn-parity-k0.5",
            lambda: TrainingProblem(
                digits(), 0, batches(1437, BATCH, 10, 0)[:steps], True
            ),
            {"steps": steps, "dtype": "float64"},
        )
    )
    return out


def evaluate(problem: TrainingProblem, x: Any) -> float:
    """Test accuracy of the returned parameters, computed in float64 (NaN when
    they are not finite: a diverged run stays visible)."""
    if not bool(torch.isfinite(torch.as_tensor(x)).all()):
        return math.nan
    model = load_flat(cnn(0).double(), torch.as_tensor(x).double())
    return accuracy(model, problem.data.x_test.double(), problem.data.y_test)


class _StepDecay(torch.optim.Optimizer):
    """The official script's MultiStepLR, counted in steps: lr x ``DECAY`` after
    each fraction ``DECAY_AT`` of the run's ``total`` steps."""

    def __init__(self, inner: torch.optim.Optimizer, total: int) -> None:
        self.inner = inner
        self.param_groups = inner.param_groups
        self.milestones = {int(f * total) for f in DECAY_AT}
        self.count = 0

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.inner.zero_grad(set_to_none)

    def step(self, closure: Any = None) -> Any:
        out = self.inner.step(closure)
        self.count += 1
        if self.count in self.milestones:
            for group in self.param_groups:
                group["lr"] *= DECAY
        return out


def _training_run(make_optimizer, closure_style: str = "backward"):
    def run(problem: TrainingProblem) -> RunOutput:
        model = cnn(problem.seed)
        total = len(problem.stream)
        steps = train(
            model,
            lambda m: _StepDecay(make_optimizer(m), total),
            problem.data,
            problem.stream,
            closure_style=closure_style,
        )
        x = flat_params(model)
        loss = full_loss(model, problem.data.x_train, problem.data.y_train)
        ok = math.isfinite(loss) and bool(torch.isfinite(x).all())
        status = "SUCCESS" if ok else "DIVERGED"
        return RunOutput(x, steps, status, {"grads": steps}, {"train_loss": loss})

    return run


def _adahessian(model: nn.Module, hessian_power: float = 1.0) -> torch.optim.Optimizer:
    return Adahessian(
        model.parameters(),
        lr=0.15,
        eps=1e-4,
        weight_decay=WEIGHT_DECAY / 0.15,
        hessian_power=hessian_power,
        seed=0,
    )


class _LegacyCreateGraph(torch.optim.Optimizer):
    """Drives optimizers whose API is ``loss.backward(create_graph=True)`` then
    ``step()`` (torch_optimizer, pytorch_optimizer), breaking the reference cycle
    after each step so they can run hundreds of steps."""

    def __init__(self, inner: torch.optim.Optimizer) -> None:
        self.inner = inner
        self.param_groups = inner.param_groups

    def step(self, closure: Any = None) -> Any:
        self.inner.zero_grad()
        loss = closure()
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*create_graph=True.*")
            loss.backward(create_graph=True)
        self.inner.step()
        for group in self.param_groups:
            for p in group["params"]:
                p.grad = None
        return loss.detach()


def _torch_optimizer_adahessian(model: nn.Module) -> torch.optim.Optimizer:
    import torch_optimizer

    return _LegacyCreateGraph(
        torch_optimizer.Adahessian(
            model.parameters(),
            lr=0.15,
            weight_decay=WEIGHT_DECAY / 0.15,
            hessian_power=1.0,  # the paper's k (their default is 0.5)
        )
    )


def _pytorch_optimizer_adahessian(model: nn.Module) -> torch.optim.Optimizer:
    import pytorch_optimizer

    return _LegacyCreateGraph(
        pytorch_optimizer.AdaHessian(
            model.parameters(), lr=0.15, eps=1e-4, weight_decay=WEIGHT_DECAY / 0.15
        )
    )


def _parity_run(problem: TrainingProblem) -> RunOutput:
    """Our AdaHessian (k = 0.5) and torch_optimizer's, same probes, float64."""
    import torch_optimizer

    data = problem.data
    ours, theirs = cnn(0).double(), cnn(0).double()
    opt = Adahessian(ours.parameters(), lr=0.15, hessian_power=0.5, seed=123)
    saved_rng = torch.get_rng_state()
    torch.manual_seed(123)  # torch_optimizer draws its probes from the global RNG
    ref = _LegacyCreateGraph(
        torch_optimizer.Adahessian(theirs.parameters(), lr=0.15, hessian_power=0.5)
    )
    worst = 0.0
    for idx in problem.stream:
        xb, yb = data.x_train[idx].double(), data.y_train[idx]
        opt.step(partial(_loss, ours, xb, yb))
        ref.step(partial(_loss, theirs, xb, yb))
        worst = max(worst, float((flat_params(ours) - flat_params(theirs)).abs().max()))
    torch.set_rng_state(saved_rng)
    return RunOutput(
        flat_params(ours),
        len(problem.stream),
        "SUCCESS",
        {"grads": len(problem.stream)},
        {"max_abs_diff": worst},
    )


def _is_training(case: Case) -> bool:
    return "parity" not in case.name


def _first_seeds(case: Case) -> bool:
    """The third-party AdaHessians (3x the cost of Adam each) run on seed 0 only,
    to keep the quick scale within its budget."""
    return _is_training(case) and case.params.get("seed", 0) < 1


#: The paper's optimizers with the official script's settings (weight decay
#: coupled for SGD / Adam, decoupled and divided by lr for AdamW / AdaHessian).
FACTORIES: dict[str, Any] = {
    "torch-sgd": lambda m: torch.optim.SGD(
        m.parameters(), lr=0.1, momentum=0.9, weight_decay=WEIGHT_DECAY
    ),
    "torch-adam": lambda m: torch.optim.Adam(
        m.parameters(), lr=1e-3, weight_decay=WEIGHT_DECAY
    ),
    "torch-adamw": lambda m: torch.optim.AdamW(
        m.parameters(), lr=1e-2, weight_decay=WEIGHT_DECAY / 1e-2
    ),
    OURS: _adahessian,
}

METHODS = [
    Method(
        "torch-sgd",
        _training_run(FACTORIES["torch-sgd"]),
        applies=_is_training,
    ),
    Method(
        "torch-adam",
        _training_run(FACTORIES["torch-adam"]),
        applies=_is_training,
    ),
    Method(
        "torch-adamw",
        _training_run(FACTORIES["torch-adamw"]),
        applies=_is_training,
    ),
    Method(
        OURS,
        _training_run(FACTORIES[OURS], closure_style="loss"),
        anchor="torch-adam",
        applies=_is_training,
    ),
    Method(
        "torch_optimizer-adahessian",
        _training_run(_torch_optimizer_adahessian, closure_style="loss"),
        requires=("torch_optimizer",),
        applies=_first_seeds,
    ),
    Method(
        "pytorch_optimizer-adahessian",
        _training_run(_pytorch_optimizer_adahessian, closure_style="loss"),
        requires=("pytorch_optimizer",),
        applies=_first_seeds,
    ),
    Method(
        "parity-vs-torch_optimizer-k0.5",
        _parity_run,
        requires=("torch_optimizer",),
        applies=lambda c: not _is_training(c),
    ),
]


# -- claims ---------------------------------------------------------------------------


def _accuracy_vs(anchor: str, within_std: bool):
    def check(results: Results) -> ClaimOutcome:
        # A diverged or crashed seed scores accuracy 0: counted, never dropped.
        ours = per_seed(results, "digits-cnn/", OURS, "objective_value", 0.0)
        ref = per_seed(results, "digits-cnn/", anchor, "objective_value", 0.0)
        if not ours.values or not ref.values:
            return no_rows(f"{OURS} / {anchor}")
        (m_ours, s_ours), (m_ref, s_ref) = mean_std(ours.values), mean_std(ref.values)
        margin = m_ours - m_ref
        ok = margin >= -s_ref if within_std else margin >= 0
        n_ours, n_ref = len(ours.values), len(ref.values)
        sem = math.sqrt(s_ours**2 / n_ours + s_ref**2 / n_ref)
        detail = (
            f"{OURS} {m_ours:.4f} ± {s_ours:.4f} ({ours.describe()}) vs {anchor} "
            f"{m_ref:.4f} ± {s_ref:.4f} ({ref.describe()}); standard error of "
            f"the difference {sem:.4f}"
        )
        return ClaimOutcome(margin, ok and ours.failed == 0, detail)

    return check


def _step_time_ratio(results: Results) -> ClaimOutcome:
    def per_step(method: str) -> list[float] | str:
        out = []
        cases = {r["dataset_name"] for r in results.rows}
        for case in sorted(c for c in cases if c.startswith("digits-cnn/")):
            results.median(case, method)  # the times compared: PROVISIONAL if busy
            for r in results.select(case, method):
                if r.get("status") == "ERROR" or not r.get("num_steps"):
                    return f"{method} on {case}: no timed run"
                out.append(r["time"] / r["num_steps"])
        return out

    ours, adam = per_step(OURS), per_step("torch-adam")
    if isinstance(ours, str) or isinstance(adam, str):
        return ClaimOutcome(None, False, str(ours if isinstance(ours, str) else adam))
    if not ours or not adam:
        return no_rows("per-step times")
    ratio = statistics.median(ours) / statistics.median(adam)
    return ClaimOutcome(
        ratio, ratio <= 3.0, f"median per-step time ratio, {len(ours)} runs"
    )


def _parity(results: Results) -> ClaimOutcome:
    diffs = values(
        results, "digits-cnn-parity", "parity-vs-torch_optimizer-k0.5", "max_abs_diff"
    )
    if not diffs:
        return no_rows("parity (torch_optimizer missing?)")
    if not all(math.isfinite(d) for d in diffs):
        return ClaimOutcome(None, False, f"non-finite difference: {diffs}")
    worst = max(diffs)
    return ClaimOutcome(worst, worst <= 1e-6, "max |w_ours - w_theirs| over all steps")


SUITES = [
    Suite(
        name="optim-training",
        description=(
            "Small CNN (2 conv + 1 fc, 9.9k parameters) on scikit-learn digits "
            "(1437 train / 360 test), batch 64, 30 epochs, 5 seeds (same init and "
            "data order for every optimizer), the official script's recipe: "
            "weight decay 5e-4 for all (coupled for SGD / Adam, decoupled as "
            "5e-4 / lr for AdamW / AdaHessian), lr x 0.1 after 50% and 75% of the "
            "steps. AdaHessian (lr 0.15, k 1, eps 1e-4) vs torch.optim SGD (0.1, "
            "momentum 0.9), Adam (1e-3), AdamW (1e-2), torch_optimizer (k 1) / "
            "pytorch_optimizer (eps 1e-4) AdaHessian (seed 0 only); plus a "
            "step-for-step parity run with torch_optimizer at k = 0.5 (float64, "
            "same probes). Objective: test accuracy."
        ),
        objective_name="test accuracy",
        cases=cases,
        evaluate=evaluate,
        methods=METHODS,
        claims=[
            Claim(
                "AdaHessian test accuracy >= Adam's mean (margin shown)",
                ">= 0",
                _accuracy_vs("torch-adam", within_std=False),
            ),
            Claim(
                "AdaHessian test accuracy within one std of SGD's (margin shown)",
                ">= -std(SGD)",
                _accuracy_vs("torch-sgd", within_std=True),
            ),
            Claim("AdaHessian per-step wall time / Adam's", "<= 3", _step_time_ratio),
            Claim(
                "k = 0.5 matches torch_optimizer.Adahessian step for step",
                "<= 1e-6",
                _parity,
            ),
        ],
        repeats={"smoke": 1, "quick": 1, "full": 1},
        estimate_seconds={"smoke": 10, "quick": 170, "full": 300},
    )
]
