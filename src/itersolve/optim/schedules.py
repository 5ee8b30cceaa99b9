"""Learning-rate schedules as pure functions of the step (resume-safe).

Every factory returns a callable ``schedule(t) -> float``: a multiplier of the base
learning rate (use with ``torch.optim.lr_scheduler.LambdaLR(opt, schedule)``), or,
for the last-iterate step-size rules, the absolute step size (use ``lr=1``).
"""

from itersolve.optim._last_iterate import (
    convex_anytime,
    convex_known_horizon,
    heavy_tailed,
    strongly_convex,
)
from itersolve.optim._refinement import RefinedSchedule, refine_schedule
from itersolve.optim._schedule_functions import (
    Constant,
    Cosine,
    InverseSqrt,
    LinearDecay,
    Schedule,
    constant,
    cosine,
    inverse_sqrt,
    linear_decay,
    warmup_linear,
)

__all__ = [
    "Constant",
    "Cosine",
    "InverseSqrt",
    "LinearDecay",
    "RefinedSchedule",
    "Schedule",
    "constant",
    "convex_anytime",
    "convex_known_horizon",
    "cosine",
    "heavy_tailed",
    "inverse_sqrt",
    "linear_decay",
    "refine_schedule",
    "strongly_convex",
    "warmup_linear",
]
