"""Online tuners of a solver parameter (the relaxation factor) across a sequence.

Every tuner follows one protocol: ``value = tuner.choose(context)``, solve, then
``tuner.update(cost)`` with the cost (iterations) of that solve and nothing else.
"""

from itersolve.linear.tuning._base import DEFAULT_GRID, Tuner, replay
from itersolve.linear.tuning._binned_tsallis_inf import BinnedTsallisINF
from itersolve.linear.tuning._chebcb import ChebCB
from itersolve.linear.tuning._tsallis_inf import TsallisINF, tsallis_probabilities

__all__ = [
    "DEFAULT_GRID",
    "BinnedTsallisINF",
    "ChebCB",
    "TsallisINF",
    "Tuner",
    "replay",
    "tsallis_probabilities",
]
