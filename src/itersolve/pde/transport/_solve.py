"""``transport_solve``: the front door for S_N slab transport."""

from __future__ import annotations

import numpy as np
import torch

from itersolve._core.frontdoor import check_method, solve
from itersolve._core.iterate import Callback, IterativeMethod
from itersolve._core.solution import Solution
from itersolve._core.tensors import as_tensor
from itersolve.pde.transport._problem import SlabProblem
from itersolve.pde.transport._source_iteration import SourceIteration


def transport_solve(
    problem: SlabProblem,
    method: IterativeMethod | None = None,
    *,
    x0: object = None,
    callback: Callback | None = None,
    record: bool | int = False,
    throw: bool = False,
) -> Solution:
    """Solve a :class:`SlabProblem` for the cell-average scalar flux.

    Parameters
    ----------
    problem
        The slab (materials, source, S_N order, boundaries).
    method
        :class:`SourceIteration` (plain or ``acceleration="dsa"``) or
        :class:`TransportGMRES`; ``None`` uses ``SourceIteration(acceleration=
        "dsa")``, the right default for every scattering ratio and mesh.
    x0
        Initial scalar flux per cell (zeros by default).
    callback, record, throw
        As in :func:`itersolve.linear_solve`.

    Returns
    -------
    Solution
        ``x`` = cell-average scalar flux in the array kind and dtype of
        ``problem.sigma_t``; ``stats`` has ``sweeps`` and ``diffusion_solves``;
        ``extras["leakage"]`` is the net outflow ``(left, right)`` of the final
        flux's last sweep.

    Raises
    ------
    TypeError
        ``problem`` is not a :class:`SlabProblem`.
    ValueError
        ``x0`` empty or not one value per cell. (A slab without cells, or empty
        cross sections or source, is refused earlier, by :class:`SlabProblem`.)

    Examples
    --------
    >>> from itersolve.pde.transport import homogeneous_slab
    >>> sol = transport_solve(homogeneous_slab(10.0, 50, c=0.5))
    >>> sol.success
    True
    """
    if not isinstance(problem, SlabProblem):
        raise TypeError(f"problem must be a SlabProblem, got {type(problem).__name__}")
    method = check_method(
        SourceIteration(acceleration="dsa") if method is None else method,
        "SourceIteration()",
    )
    n = problem.n_cells
    if x0 is None:
        x0_t = torch.zeros(n, dtype=torch.float64)
    else:
        x0_t = as_tensor(x0, "x0", dtype=torch.float64)[0].cpu().contiguous()
        if x0_t.numel() == 0:  # worded as minimize words an empty x0
            raise ValueError(
                f"x0 must have at least one entry, got shape {tuple(x0_t.shape)}"
            )
        if tuple(x0_t.shape) != (n,):
            raise ValueError(f"x0 must have shape ({n},), got {tuple(x0_t.shape)}")
    data = torch.from_numpy(np.stack([problem.sigma_t, problem.sigma_s, problem.q]))
    return solve(
        method,
        problem,
        x0_t,
        output=problem.info,
        callback=callback,
        record=record,
        throw=throw,
        check_finite=(data,),
        to_x=lambda phi: phi.to(problem.info.dtype),
    )
