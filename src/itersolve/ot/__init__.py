"""Entropic optimal transport: ``transport``, ``Sinkhorn``, ``SinkhornNewtonSparse``.

``reg`` has POT's meaning (epsilon = 1/eta): results are directly comparable with
``ot.sinkhorn``.

Tolerance defaults, on the absolute L1 marginal error ``||P 1 - a||_1 +
||P^T 1 - b||_1`` (absolute because ``a`` and ``b`` carry the scale: for
probability vectors it is a relative error): ``1e-10`` for
:class:`SinkhornNewtonSparse`, the accuracy its paper (Tang et al., ICML 2024)
reports and that Newton's quadratic phase reaches in a step or two more, and
``1e-9`` for :class:`Sinkhorn`, whose linear rate makes each further digit cost
as many sweeps as the last. Both are far above float64 rounding of a plan.
"""

from itersolve.ot._problem import TransportProblem, lyapunov_potential, sparsify_plan
from itersolve.ot._sinkhorn import Sinkhorn
from itersolve.ot._sinkhorn_newton_sparse import SinkhornNewtonSparse
from itersolve.ot._transport import transport

__all__ = [
    "Sinkhorn",
    "SinkhornNewtonSparse",
    "TransportProblem",
    "lyapunov_potential",
    "sparsify_plan",
    "transport",
]
