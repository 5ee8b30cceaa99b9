"""From a convex-program solution to the two-layer ReLU network it describes."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from itersolve._core.solution import Solution
from itersolve._core.tensors import as_tensor


def recover_relu_network(solution: Solution | Any, *, bias: bool | None = None) -> Any:
    """The ReLU network ``x -> sum_j relu(u_j . x + b_j) alpha_j`` of a solution.

    Every non-zero block ``x_{k,i}`` gives one hidden unit with first-layer
    weights ``x_{k,i} / sqrt(||x_{k,i}||)`` (the last entry is the bias when
    the problem appended a ones column) and second-layer weight
    ``+-sqrt(||x_{k,i}||)`` (``+`` for ``v``, ``-`` for ``w``). The scaling
    balances the layers, so ``beta/2 (||u_j||^2 + alpha_j^2) = beta
    ||x_{k,i}||`` and, where the arrangement constraints hold,
    ``relu(X u_j) alpha_j = D_i X x_{k,i}``: :func:`network_objective` of the
    network equals the convex objective at a feasible ``x``.

    Parameters
    ----------
    solution
        A :class:`~itersolve.Solution` of :func:`solve_convex_relu`, or an
        array ``x`` of shape ``(2, P, d)``.
    bias
        Whether ``x``'s last column multiplies a ones column; read from the
        solution's extras when ``solution`` is a Solution.

    Returns
    -------
    torch.nn.Sequential
        ``Linear(d_in, m) -> ReLU -> Linear(m, 1, bias=False)`` in ``x``'s
        floating dtype and on its device (at least one unit; an all-zero ``x``
        gives one unit with zero weights).

    Examples
    --------
    >>> import numpy as np
    >>> from itersolve.optimize.convex_relu import (
    ...     ConvexReLUADMM, ConvexReLUProblem, network_objective,
    ...     recover_relu_network, solve_convex_relu)
    >>> rng = np.random.default_rng(0)
    >>> X, y = rng.standard_normal((20, 2)), rng.standard_normal(20)
    >>> problem = ConvexReLUProblem(X, y, beta=1.0, arrangements=3)
    >>> sol = solve_convex_relu(problem, ConvexReLUADMM(rho=1.0, rtol=1e-9))
    >>> net = recover_relu_network(sol)
    >>> loss = network_objective(net, X, y, beta=1.0).item()
    >>> abs(loss - sol.extras["objective"]) < 1e-8 * sol.extras["objective"]
    True
    """
    if isinstance(solution, Solution):
        if solution.extras.get("gated"):
            raise ValueError(
                "a gated-ReLU solution has no equivalent ReLU network (its gates "
                "are fixed patterns, not ReLUs of the weights)"
            )
        if bias is None:
            bias = bool(solution.extras.get("bias", True))
        x_in = solution.x
    else:
        x_in = solution
    if bias is None:
        raise ValueError("bias must be given (True or False) for an array x")
    x, _ = as_tensor(x_in, "x")
    if x.ndim != 3 or x.shape[0] != 2:
        raise ValueError(
            "x must have shape (2, P, d) (the stacks v and w of a ReLU program), "
            f"got {tuple(x.shape)}"
        )
    blocks = x.reshape(-1, x.shape[-1])
    ones = torch.ones(x.shape[1], dtype=x.dtype, device=x.device)
    signs = torch.cat([ones, -ones])
    norms = torch.linalg.vector_norm(blocks, dim=1)
    keep = norms > 0
    if not bool(keep.any()):
        keep[0] = True
    root = torch.sqrt(norms[keep])
    first = blocks[keep] / torch.where(root > 0, root, 1.0)[:, None]
    alpha = signs[keep] * root
    d_in = x.shape[-1] - (1 if bias else 0)
    kind = {"dtype": x.dtype, "device": x.device}
    hidden = nn.Linear(d_in, first.shape[0], bias=bias, **kind)
    out = nn.Linear(first.shape[0], 1, bias=False, **kind)
    with torch.no_grad():
        hidden.weight.copy_(first[:, :d_in])
        if bias:
            assert hidden.bias is not None
            hidden.bias.copy_(first[:, d_in])
        out.weight.copy_(alpha[None, :])
    return nn.Sequential(hidden, nn.ReLU(), out)


def network_objective(network: nn.Module, X: Any, y: Any, beta: float) -> torch.Tensor:
    """``1/2 ||network(X) - y||^2 + beta/2 sum_p ||p||^2`` over every parameter.

    The non-convex training objective whose global minimum over the networks
    with the sampled activation patterns is the convex program's optimum
    (weight decay on both layers, first-layer biases included). Differentiable:
    what a torch optimizer trains on (the suite's Adam baseline).

    Examples
    --------
    >>> import torch
    >>> net = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.ReLU(),
    ...                           torch.nn.Linear(3, 1, bias=False))
    >>> _ = [p.data.zero_() for p in net.parameters()]
    >>> network_objective(net, torch.ones(4, 2), torch.ones(4), beta=1.0).item()
    2.0
    """
    param = next(network.parameters())
    Xt, _ = as_tensor(X, "X", dtype=param.dtype, device=param.device)
    yt, _ = as_tensor(y, "y", dtype=param.dtype, device=param.device)
    if Xt.ndim != 2 or yt.ndim != 1 or yt.shape[0] != Xt.shape[0]:
        raise ValueError(
            f"X must be (n, d) and y (n,), got {tuple(Xt.shape)} and {tuple(yt.shape)}"
        )
    residual = network(Xt).reshape(-1) - yt
    penalty = sum(p.pow(2).sum() for p in network.parameters())
    return 0.5 * (residual @ residual) + 0.5 * beta * penalty
