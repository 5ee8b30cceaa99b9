"""Entropic optimal transport: ``transport``, ``Sinkhorn``, ``SinkhornNewtonSparse``.

``reg`` has POT's meaning (epsilon = 1/eta): results are directly comparable with
``ot.sinkhorn``.
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
