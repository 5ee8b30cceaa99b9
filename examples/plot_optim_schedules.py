"""
Learning-rate schedules as pure functions of the step
=====================================================

The schedules of :mod:`itersolve.optim.schedules` map a step index to a
learning-rate multiplier with no internal state, so a resumed run continues
exactly where it stopped. Each plugs into ``torch.optim.lr_scheduler.LambdaLR``;
the learning rates below are read back from a torch SGD optimizer driven by it.
"""

import matplotlib.pyplot as plt
import torch

from itersolve.optim import schedules

total = 1000
candidates = {
    "constant, 50-step warm-up": schedules.Constant(warmup_steps=50),
    "1/sqrt(t)": schedules.InverseSqrt(scale=50.0),
    "cosine": schedules.Cosine(total_steps=total),
    "linear decay, 50-step warm-up": schedules.LinearDecay(
        total_steps=total, warmup_steps=50
    ),
}

fig, ax = plt.subplots(figsize=(6, 4))
for label, schedule in candidates.items():
    parameter = torch.zeros(1, requires_grad=True)
    optimizer = torch.optim.SGD([parameter], lr=0.1)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    rates = []
    for _ in range(total):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    ax.plot(rates, label=label)
ax.set_xlabel("step")
ax.set_ylabel("learning rate (base 0.1)")
ax.set_title("Schedules through torch's LambdaLR")
ax.legend()
fig.tight_layout()
plt.show()
