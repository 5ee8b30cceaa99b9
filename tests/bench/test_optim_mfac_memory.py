"""optim-mfac's paged-window memory claims on hand-made rows: they pass on the
allocation count of a paged window and fail when the window is not paged or the
measurement cannot see a window."""

from __future__ import annotations

from typing import Any

import pytest

from itersolve.bench.results import Results
from itersolve.bench.suites import optim_mfac

M, S = 64, optim_mfac.MEMORY_ITEMSIZE


def _rows(per_param: float, per_page: float, unpaged: float) -> list[dict[str, Any]]:
    """Peaks ``per_param * d + per_page * b`` for every configuration of the
    quick scale, and ``unpaged * d`` for the unpaged window."""
    m, configs = optim_mfac._memory_configs("quick")
    assert m == M
    rows = []
    for d, b in configs:
        peak = unpaged * d if b is None else per_param * d + per_page * b + 2**20
        rows.append(
            {
                "dataset_name": f"memory-d{d}-" + ("unpaged" if b is None else f"b{b}"),
                "solver_name": "itersolve-mfac-memory",
                "status": "SUCCESS",
                "objective_value": float(peak),
                "finite": True,
                "params": {"d": d, "page_size": b, "ngrads": m, "itemsize": S},
            }
        )
    return rows


def test_claims_pass_on_a_paged_window() -> None:
    results = Results(_rows(2 * S, M * S, (M + 2) * S))
    by_d = optim_mfac._memory_vs_d(results)
    by_b = optim_mfac._memory_vs_page(results)
    assert by_d.passed and by_d.measured == pytest.approx(2 * S)
    assert by_b.passed and by_b.measured == pytest.approx(1.0)


def test_claims_fail_when_the_window_grows_with_d() -> None:
    # a window that is not paged: m s bytes per parameter, none per page
    results = Results(_rows((M + 2) * S, 0.0, (M + 2) * S))
    assert optim_mfac._memory_vs_d(results).passed is False
    assert optim_mfac._memory_vs_page(results).passed is False


def test_d_claim_fails_when_the_measurement_misses_the_unpaged_window() -> None:
    results = Results(_rows(2 * S, M * S, 2 * S))
    outcome = optim_mfac._memory_vs_d(results)
    assert outcome.passed is False and "must be >=" in outcome.detail


def test_claims_without_rows_do_not_pass() -> None:
    assert not optim_mfac._memory_vs_d(Results([])).passed
    assert not optim_mfac._memory_vs_page(Results([])).passed
