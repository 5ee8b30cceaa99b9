"""Peak resident memory of M-FAC steps, measured in a fresh subprocess.

Run by the optim-mfac suite as ``python -c "...; main()"`` with a JSON request on
stdin; imports only torch and ``itersolve.optim`` so the subprocess starts fast.
Linux only (``/proc/self/status``, ``/proc/self/clear_refs``).
"""

from __future__ import annotations

import gc
import json
import sys

import torch
from torch import nn

from itersolve.optim import MFAC

#: Steps per configuration: the first allocates everything, the second is the
#: steady state.
STEPS = 2


def _status_bytes(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"/proc/self/status has no {field}")


def _peak_step_bytes(d: int, page_size: int | None, ngrads: int) -> int:
    """Peak resident bytes of building an M-FAC optimizer over ``d`` float32
    parameters and taking ``STEPS`` steps, above the resident set before
    (parameter and gradient already allocated)."""
    gen = torch.Generator().manual_seed(d)
    param = nn.Parameter(torch.zeros(d))
    param.grad = torch.zeros(d)
    gc.collect()
    base = _status_bytes("VmRSS")
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset the peak resident set (VmHWM) to the current one
    opt = MFAC(
        [param],
        lr=1e-3,
        damping=1e-3,
        ngrads=ngrads,
        page_size=page_size,
        offload=None if page_size is None else "file",
    )
    for _ in range(STEPS):
        param.grad.normal_(generator=gen)
        opt.step()
    peak = _status_bytes("VmHWM")
    del opt
    gc.collect()
    return peak - base


def main() -> None:
    """Subprocess entry: JSON ``{"ngrads": m, "configs": [[d, b], ...]}`` on
    stdin, the peak bytes of each configuration as a JSON list on stdout."""
    request = json.load(sys.stdin)
    torch.set_num_threads(1)
    m = int(request["ngrads"])
    _peak_step_bytes(4096, None, m)  # warm-up: first-use allocations of torch
    _peak_step_bytes(4096, 1024, m)
    out = [_peak_step_bytes(d, b, m) for d, b in request["configs"]]
    json.dump(out, sys.stdout)
