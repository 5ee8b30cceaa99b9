"""The anchors several suites run, written once.

An anchor is the tool a user would pick instead of itersolve. Each function here
runs one with the stopping rule a suite asks for and returns what the suites need
(answer, iteration count, success). Suites call these rather than their own
copies, so an anchor is configured the same way everywhere.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.sparse.linalg as spla
import torch


def scipy_cg(
    A: Any,
    b: np.ndarray,
    rtol: float,
    *,
    M: Any = None,
    x0: np.ndarray | None = None,
    maxiter: int | None = None,
    callback: Callable[[np.ndarray], None] | None = None,
) -> tuple[np.ndarray, int, int]:
    """``scipy.sparse.linalg.cg`` to ``||b - A x|| <= rtol ||b||`` (``atol=0``).

    Returns ``(x, info, iterations)``; ``info`` is scipy's (0: converged), the
    iterations are counted through scipy's callback. ``maxiter`` defaults to
    ``10 n``, as itersolve's CG.
    """
    steps = [0]

    def count(xk: np.ndarray) -> None:
        steps[0] += 1
        if callback is not None:
            callback(xk)

    x, info = spla.cg(
        A,
        b,
        x0=x0,
        rtol=rtol,
        atol=0.0,
        M=M,
        maxiter=maxiter if maxiter is not None else 10 * A.shape[0],
        callback=count,
    )
    return x, int(info), steps[0]


def scipy_status(info: int) -> str:
    """scipy's Krylov ``info`` as a Status name."""
    return "SUCCESS" if info == 0 else ("BREAKDOWN" if info < 0 else "MAX_STEPS")


def torch_lbfgs(
    value_and_grad: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]],
    x0: torch.Tensor,
    *,
    gtol: float,
    max_iter: int,
    history_size: int = 10,
) -> tuple[torch.Tensor, int, int]:
    """``torch.optim.LBFGS`` with strong-Wolfe line search from ``x0``.

    torch stops when ``max |g| <= tolerance_grad``; it runs with ``gtol`` as
    that tolerance and no change tolerance. Returns ``(x, iterations,
    function evaluations)``; the caller checks its own stopping rule on ``x``.
    """
    w = x0.detach().clone().requires_grad_(True)
    opt = torch.optim.LBFGS(
        [w],
        lr=1.0,
        max_iter=max_iter,
        tolerance_grad=gtol,
        tolerance_change=0.0,
        history_size=history_size,
        line_search_fn="strong_wolfe",
    )

    def closure() -> torch.Tensor:
        opt.zero_grad()
        f, g = value_and_grad(w.detach())
        w.grad = g
        return f

    opt.step(closure)
    state = opt.state[w]
    return w.detach(), int(state.get("n_iter", 0)), int(state.get("func_evals", 0))
