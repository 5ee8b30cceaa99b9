"""ConstrainedBasisModel (PI-SC / PI-HC / PI-HC-MoE) and train_constrained:
shapes, the constraint each expert imposes, per-expert statuses, training,
bad input."""

from __future__ import annotations

import pytest
import torch

from itersolve import ConvergenceError, ConvergenceWarning
from itersolve.optimize import LevenbergMarquardt
from itersolve.pde import (
    ConstrainedBasisModel,
    DiffusionSorptionProblem,
    diffusion_sorption_reference,
    relative_error,
    train_constrained,
)

PROBLEM = DiffusionSorptionProblem(n_t=8, n_x=10)
SMALL = {"n_basis": 5, "width": 8, "depth": 2}


@pytest.mark.parametrize("experts", [1, 2, (1, 2), (2, 2)])
def test_shapes_and_one_status_per_expert(experts: object) -> None:
    model = ConstrainedBasisModel(PROBLEM, experts=experts, **SMALL)
    u = model()
    assert u.shape == (1, 8, 10) and u.dtype == torch.float64
    count = {1: 1, 2: 2, (1, 2): 2, (2, 2): 4}[experts]  # type: ignore[index]
    assert len(model.blocks) == count
    assert model.info.status == [["SUCCESS"]] * count
    assert model.info.all_converged
    assert torch.isfinite(u).all()


def _expert_rows(psi: torch.Tensor, w: torch.Tensor, block: tuple) -> torch.Tensor:
    """Expert rows built from the whole-grid residual of the expert's
    combination: the Crank–Nicolson rows at the block's nodes, then every
    initial and boundary row of the domain (the reference's construction)."""
    parts = PROBLEM.residual_parts(torch.einsum("bijn,bn->bij", psi, w))
    n_t, n_x = PROBLEM.shape
    pde = parts["pde"].reshape(-1, n_t - 1, n_x - 2)
    ts, xs = block
    cols = [j - 1 for j in range(xs.start, xs.stop) if 0 < j < n_x - 1]
    times = [i - 1 for i in range(ts.start, ts.stop) if i > 0]
    own = pde[:, times][:, :, cols].reshape(w.shape[0], -1)
    return torch.cat((own, parts["initial"], parts["boundary"]), dim=1)


@pytest.mark.parametrize("experts", [(1, 2), (2, 2)])
def test_each_expert_is_stationary_on_its_rows(experts: tuple) -> None:
    model = ConstrainedBasisModel(
        PROBLEM, experts=experts, method=LevenbergMarquardt(rtol=1e-10), **SMALL
    )
    u = model()
    psi = model.basis().detach()
    (sol,) = model.info.solutions
    count = len(model.blocks)
    assert sol.x.shape == (count, 5)  # one batched solve, a row per expert
    if experts == (1, 2):
        assert model.halos == (
            (slice(0, 8), slice(0, 6)),
            (slice(0, 8), slice(4, 10)),
        )
    for k, block in enumerate(model.blocks):
        w = sol.x[k : k + 1].detach().clone().requires_grad_()
        rows = _expert_rows(psi, w, block)
        # every expert, not only the one holding x = 0, meets the inflow row
        assert rows.shape[1] > PROBLEM.n_x + 2 * (PROBLEM.n_t - 1)
        (grad,) = torch.autograd.grad(0.5 * rows.square().sum(), w)
        assert float(grad.abs().max()) <= 1e-8
        # the output on the block is the expert's own combination
        inner = psi[(slice(None), *block)] @ sol.x.detach()[k]
        torch.testing.assert_close(u[(slice(None), *block)].detach(), inner)


def test_one_expert_solves_the_whole_grid_residual() -> None:
    model = ConstrainedBasisModel(
        PROBLEM, method=LevenbergMarquardt(rtol=1e-10), **SMALL
    )
    model()
    (sol,) = model.info.solutions
    w = sol.x.detach().clone().requires_grad_()
    rows = PROBLEM.residual(torch.einsum("bijn,bn->bij", model.basis().detach(), w))
    (grad,) = torch.autograd.grad(0.5 * rows.square().sum(), w)
    assert float(grad.abs().max()) <= 1e-8


def test_hard_output_beats_the_untrained_soft_output() -> None:
    # the constraint solve alone fits the PDE far better than a random w
    reference = diffusion_sorption_reference(PROBLEM, refine=4)
    hard = ConstrainedBasisModel(PROBLEM, **SMALL)
    soft = ConstrainedBasisModel(PROBLEM, constraint="soft", **SMALL)
    with torch.no_grad():
        e_hard = relative_error(hard()[0], reference)
        e_soft = relative_error(soft()[0], reference)
    assert e_hard < 0.5 * e_soft


def test_failed_expert_solve_is_reported_per_expert() -> None:
    method = LevenbergMarquardt(rtol=1e-14, max_steps=1)
    model = ConstrainedBasisModel(PROBLEM, experts=(1, 2), method=method, **SMALL)
    with pytest.warns(ConvergenceWarning):
        u = model()
    assert model.info.status == [["MAX_STEPS"], ["MAX_STEPS"]]
    assert not model.info.all_converged
    assert torch.isfinite(u).all()
    # the implicit backward refuses the non-stationary point: zero gradient
    # through w*, flagged per expert (u keeps its gradient at fixed w*)
    u.sum().backward()
    fallback = model.info.fallback
    assert fallback is not None and fallback.shape == (2, 1) and bool(fallback.all())
    strict = ConstrainedBasisModel(
        PROBLEM, experts=(1, 2), method=method, throw=True, **SMALL
    )
    with pytest.raises(ConvergenceError):
        strict()


def test_training_is_seeded_and_leaves_the_model_alone() -> None:
    reference = diffusion_sorption_reference(PROBLEM, refine=4)
    model = ConstrainedBasisModel(PROBLEM, experts=2, seed=3, **SMALL)
    before = [p.detach().clone() for p in model.parameters()]
    runs = [
        train_constrained(model, steps=2, reference=reference, record=True)
        for _ in range(2)
    ]
    for p, q in zip(model.parameters(), before, strict=True):
        assert torch.equal(p, q)
    torch.testing.assert_close(runs[0].x, runs[1].x, rtol=0, atol=0)
    sol = runs[0]
    assert sol.success and sol.num_steps == 2
    assert sol.stats["failed_solves"] == 0
    assert set(sol.trace.as_dict()) >= {
        "loss",
        "loss_pde",
        "loss_initial",
        "loss_boundary",
        "relative_l2",
        "step_time",
        "failed_solves",
    }
    assert sol.extras["u"].shape == PROBLEM.shape
    assert sol.extras["relative_l2"] == relative_error(sol.extras["u"], reference)
    other = ConstrainedBasisModel(PROBLEM, experts=2, seed=4, **SMALL)
    assert not torch.equal(train_constrained(other, steps=2).x, sol.x)


def test_soft_training_approaches_the_reference() -> None:
    """30 Adam steps take the soft-constraint model from relative L2 ~1.2 to
    within 0.3 of the method-of-lines reference (measured 0.158; the soft
    constraint's own accuracy limit at this size is ~0.15)."""
    reference = diffusion_sorption_reference(PROBLEM, refine=4)
    model = ConstrainedBasisModel(PROBLEM, constraint="soft", **SMALL)
    sol = train_constrained(model, steps=30, lr=1e-2, reference=reference, record=True)
    assert sol.trace["relative_l2"][0] > 1.0
    assert sol.extras["relative_l2"] <= 0.3
    assert sol.trace["loss"][-1] < 0.5 * sol.trace["loss"][0]


def test_nonfinite_input_and_nonfinite_loss() -> None:
    model = ConstrainedBasisModel(PROBLEM, constraint="soft", **SMALL)
    with torch.no_grad():
        model.coefficients.fill_(float("nan"))  # type: ignore[union-attr]
    with pytest.warns(ConvergenceWarning):
        assert train_constrained(model, steps=3).status.name == "NONFINITE_INPUT"
    # a residual that turns NaN at the second step: stop, keep the last
    # finite parameters
    model = ConstrainedBasisModel(PROBLEM, constraint="soft", **SMALL)
    calls = [0]
    losses = model.losses

    def poisoned(u: torch.Tensor) -> dict[str, torch.Tensor]:
        calls[0] += 1
        return losses(u * float("nan") if calls[0] >= 2 else u)

    model.losses = poisoned  # type: ignore[method-assign]
    with pytest.warns(ConvergenceWarning):
        sol = train_constrained(model, steps=5)
    # the driver counts the step that met the NaN; x is the last finite one
    assert sol.status.name == "NONFINITE" and sol.num_steps == 2
    assert torch.isfinite(sol.x).all()
    calls[0] = 0
    with pytest.raises(ConvergenceError):
        train_constrained(model, steps=5, throw=True)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"constraint": "medium"}, ValueError, "constraint must be 'hard' or 'soft'"),
        (
            {"constraint": "soft", "experts": 2},
            ValueError,
            "experts applies to the hard constraint only",
        ),
        ({"experts": (1, 10)}, ValueError, "fewer than 3 columns"),
        ({"n_basis": 0}, ValueError, "n_basis must be an int >= 1, got 0"),
        ({"seed": 1.5}, TypeError, "seed must be an int"),
    ],
)
def test_bad_model_arguments(kwargs: dict, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        ConstrainedBasisModel(PROBLEM, **{**SMALL, **kwargs})


def test_bad_collocation_and_training_input() -> None:
    model = ConstrainedBasisModel(PROBLEM, **SMALL)
    with pytest.raises(ValueError, match=r"points must be the \(t, x\) grid"):
        model(torch.zeros(8, 9, 2, dtype=torch.float64))
    with pytest.raises(TypeError, match="DiffusionSorptionProblem"):
        ConstrainedBasisModel("problem")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="steps must be an int >= 1, got 0"):
        train_constrained(model, steps=0)
    with pytest.raises(ValueError, match="lr must be finite and > 0, got -1"):
        train_constrained(model, lr=-1)
    with pytest.raises(ValueError, match=r"reference must have shape \(8, 10\)"):
        train_constrained(model, steps=1, reference=torch.zeros(3, 3))
    with pytest.raises(TypeError, match="ConstrainedBasisModel"):
        train_constrained(torch.nn.Linear(2, 2))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="u has shape"):
        relative_error(torch.zeros(3), torch.ones(4))
    soft = ConstrainedBasisModel(PROBLEM, constraint="soft", **SMALL)
    with pytest.raises(ValueError, match="soft-constraint model has no experts"):
        _ = soft.expert_nodes
