"""optimize-acceleration: the exact quadratic rates, PEPit's worst cases (small
horizons), our methods run on PEPit's worst-case functions, and the claims'
verdicts on given rows."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from itersolve.bench.results import Results
from itersolve.bench.suites import optimize_acceleration as oa

L, MU = 100.0, 1.0
KAPPA = L / MU
S = math.sqrt(KAPPA)


@pytest.mark.parametrize(
    ("method", "expected"),
    [
        ("gd", (KAPPA - 1) / (KAPPA + 1)),
        ("heavy-ball", (S - 1) / (S + 1)),
        ("nesterov", 1 - 1 / S),
        ("triple-momentum", 1 - 1 / S),
    ],
)
def test_exact_quadratic_rate_closed_forms(method, expected):
    spectrum = np.geomspace(MU, L, 50)
    assert oa.exact_quadratic_rate(method, L, MU, spectrum) == pytest.approx(
        expected, rel=1e-6
    )


def test_pep_gd_is_its_tight_rate():
    # GD with step 2/(L+mu) contracts the distance by exactly (kappa-1)/(kappa+1)
    # in the worst case (a quadratic on the extreme eigenvalue).
    worst = oa.pep_worst_case("gd", L, MU, 2)
    assert worst.tau == pytest.approx(((KAPPA - 1) / (KAPPA + 1)) ** 4, rel=1e-5)


@pytest.mark.parametrize("method", oa._PEP_METHODS)
def test_ours_on_the_worst_case_reproduces_pepit(method):
    worst = oa.pep_worst_case(method, L, MU, 3)
    assert worst.violation(L, MU) <= 1e-6
    ours = oa._ours_on_worst_case(oa._CLASSES[method], L, MU, worst, 3)
    assert ours == pytest.approx(worst.tau, rel=1e-5)


def test_heavy_ball_worst_case_grows_and_tmm_is_its_rate():
    hb = oa.pep_worst_case("heavy-ball", L, MU, 3).tau
    assert hb > 1
    short = oa.pep_worst_case("triple-momentum", L, MU, 3).tau
    long = oa.pep_worst_case("triple-momentum", L, MU, 6).tau
    assert (long / short) ** (1 / 6) == pytest.approx(1 - 1 / S, rel=1e-3)


def test_off_trajectory_query_raises():
    worst = oa.pep_worst_case("gd", L, MU, 2)
    problem = oa.WorstCaseFunction(worst)
    import torch

    at = torch.from_numpy(worst.points[1].copy())
    assert float(problem.value(at)) == worst.values[1]
    with pytest.raises(ValueError, match="left its trajectory"):
        problem.grad(at + 1e-3 * float(np.abs(worst.points).max()))
    # A wrong method (GD's step on heavy ball's worst case) leaves it too.
    hb = oa.pep_worst_case("heavy-ball", L, MU, 3)
    with pytest.raises(ValueError, match="left its trajectory"):
        oa._ours_on_worst_case(oa._CLASSES["gd"], L, MU, hb, 3)


def test_violation_detects_data_no_function_takes():
    worst = oa.pep_worst_case("gd", L, MU, 2)
    assert worst.violation(L, MU) <= 1e-6
    values = worst.values.copy()
    values[1] += 0.5 * L * float(np.sum((worst.x0 - worst.x_star) ** 2))
    assert replace(worst, values=values).violation(L, MU) > 0.1


PEP = "pepit-worst-case-kappa100-N20"


def _row(method: str, value: float, **extra):
    return {
        "dataset_name": PEP,
        "solver_name": method,
        "status": "SUCCESS",
        "objective_value": value,
        **extra,
    }


def _claim(text: str):
    (found,) = [c for c in oa.SUITES[0].claims if text in c.name]
    return found.check


RATES = {"gd": 0.9802, "heavy-ball": 1.3, "nesterov": 0.933, "triple-momentum": 0.9}


def test_ours_on_worst_case_claim():
    check = _claim("run on PEPit's worst-case functions")
    rows = [_row(f"pepit-{m}", r) for m, r in RATES.items()]
    ours = [
        _row(f"itersolve-{m}", r, interpolation_violation=1e-9)
        for m, r in RATES.items()
    ]
    assert check(Results(rows + ours)).passed is True
    ours[2] = _row("itersolve-nesterov", 0.933**1.06)
    assert check(Results(rows + ours)).passed is False
    assert check(Results(rows)).passed is False
    assert check(Results([])).passed is None


def test_tmm_ratio_claim():
    check = _claim("TMM / Nesterov worst-case iterations")
    rows = [_row(f"pepit-{m}", r) for m, r in RATES.items()]
    out = check(Results(rows))
    assert out.passed is False
    assert out.measured == pytest.approx(math.log(0.933) / math.log(0.9))
    rows[2] = _row("pepit-nesterov", 0.9**0.59)
    assert check(Results(rows)).passed is True


@pytest.mark.parametrize(
    ("method", "tight"),
    [("gd", (KAPPA - 1) / (KAPPA + 1)), ("triple-momentum", 1 - 1 / S)],
)
def test_lyapunov_certifies_the_tight_rates(method, tight):
    assert oa.lyapunov_certificate(method, L, MU, tight * 1.0005)
    assert not oa.lyapunov_certificate(method, L, MU, tight * 0.999)


def test_lyapunov_nesterov_between_quadratic_rate_and_bound():
    # Nesterov's classical bound sqrt(1 - 1/sqrt(kappa)) is certified (it is a
    # Lyapunov bound); its quadratic rate 1 - 1/sqrt(kappa) is a lower bound.
    assert oa.lyapunov_certificate("nesterov", L, MU, math.sqrt(1 - 1 / S))
    assert not oa.lyapunov_certificate("nesterov", L, MU, (1 - 1 / S) * 0.999)


def test_lyapunov_none_for_heavy_ball():
    assert oa.lyapunov_rate("heavy-ball", L, MU) == math.inf


def test_lyapunov_claim_and_the_ratio_bound_in_the_tmm_detail():
    check = _claim("Lyapunov certificates")
    certified = {
        "gd": 0.980198,
        "heavy-ball": 1.0,
        "nesterov": 0.9279,
        "triple-momentum": 0.9,
    }
    rows = [
        _row(f"lyapunov-{m}", r, certified=float(m != "heavy-ball"))
        for m, r in certified.items()
    ]
    assert check(Results(rows)).passed is True
    rows[1] = _row("lyapunov-heavy-ball", 0.99, certified=1.0)
    assert check(Results(rows)).passed is False
    rows[1] = _row("lyapunov-heavy-ball", 1.0, certified=0.0)
    rows[3] = _row("lyapunov-triple-momentum", 0.94, certified=1.0)
    assert check(Results(rows)).passed is False
    assert check(Results([])).passed is None
    rows[3] = _row("lyapunov-triple-momentum", 0.9, certified=1.0)
    pep = [_row(f"pepit-{m}", r) for m, r in RATES.items()]
    detail = _claim("TMM / Nesterov worst-case")(Results(pep + rows)).detail
    assert (
        f"ratio of the worst-case rates is >= {math.log(0.9279) / math.log(0.9):.3f}"
        in detail
    )


def _quadratic_form(P, w):
    out = None
    for a in range(len(w)):
        for b in range(len(w)):
            term = P[a, b] * (w[a] * w[b])
            out = term if out is None else out + term
    return out


@pytest.mark.parametrize("part", ["decrease", "bound"])
def test_nesterov_certificate_checked_by_pepit(part):
    # The S-procedure's claim, checked independently by PEPit on the class:
    # V_1 - rho^2 V_0 <= 0 and ||x_0 - x*||^2 - V_0 <= 0 for the V found at rho.
    from PEPit import PEP
    from PEPit.functions import SmoothStronglyConvexFunction

    rho, beta = 0.93, (S - 1) / (S + 1)
    sdp = oa._lyapunov_sdp("nesterov", L, MU)
    assert oa._feasible(sdp, rho)
    P, p = sdp[2].value, float(sdp[3].value)
    pep = PEP()
    f = pep.declare_function(SmoothStronglyConvexFunction, L=L, mu=MU)
    xs = f.stationary_point()
    fs = f(xs)
    x0, x_prev = pep.set_initial_point(), pep.set_initial_point()
    pep.set_initial_condition((x0 - xs) ** 2 + (x_prev - xs) ** 2 <= 1)
    y0 = (1 + beta) * x0 - beta * x_prev
    g0, f0 = f.oracle(y0)
    v0 = _quadratic_form(P, [x0 - xs, x_prev - xs, g0]) + p * (f0 - fs)
    if part == "decrease":
        x1 = y0 - g0 / L
        g1, f1 = f.oracle((1 + beta) * x1 - beta * x0)
        v1 = _quadratic_form(P, [x1 - xs, x0 - xs, g1]) + p * (f1 - fs)
        pep.set_performance_metric(v1 - rho**2 * v0)
    else:
        pep.set_performance_metric((x0 - xs) ** 2 - v0)
    assert pep.solve(verbose=0, solver="CLARABEL") <= 1e-6
