"""One rank of the data-parallel runs in ``test_distributed.py``.

Run as ``python _distributed_worker.py OPTIMIZER RANK WORLD INIT_FILE OUT_FILE``. A
plain script rather than a multiprocessing target: pytest imports test modules under
names a spawned child cannot import.
"""

from __future__ import annotations

import os
import sys

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from itersolve.optim import MFAC, Adahessian

STEPS = 20
BATCH = 16


def model_and_data() -> tuple[torch.nn.Module, torch.Tensor, torch.Tensor]:
    """The same model and full batch on every rank and in the reference run."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1)
    ).double()
    x = torch.randn(BATCH, 4, dtype=torch.float64)
    y = torch.randn(BATCH, 1, dtype=torch.float64)
    return model, x, y


def make_optimizer(name: str, params, distributed: bool) -> torch.optim.Optimizer:
    if name.startswith("adahessian"):
        return Adahessian(params, lr=0.05, seed=3, distributed=distributed)
    if name == "mfac_paged":  # window in a file, pages of 7 of the 49 parameters
        return MFAC(
            params, lr=0.05, damping=1e-2, ngrads=4, page_size=7, offload="file"
        )
    return MFAC(params, lr=0.05, damping=1e-2, ngrads=4)


def train(name: str, model: torch.nn.Module, x, y, distributed: bool):
    """``STEPS`` steps on ``(x, y)``: the local batch under ``distributed``."""
    opt = make_optimizer(name, list(model.parameters()), distributed)
    wrap = distributed and name in ("mfac", "mfac_paged", "adahessian_ddp")
    net = DistributedDataParallel(model) if wrap else model
    for _ in range(STEPS):
        if name == "adahessian_ddp" and wrap:
            # DDP's reducer waits for a backward() that never comes: no_sync
            with net.no_sync():
                opt.step(lambda: torch.nn.functional.mse_loss(net(x), y))
        elif name.startswith("adahessian"):
            opt.step(lambda: torch.nn.functional.mse_loss(net(x), y))
        else:

            def closure() -> torch.Tensor:
                opt.zero_grad()
                loss = torch.nn.functional.mse_loss(net(x), y)
                loss.backward()
                return loss

            opt.step(closure)
    return opt


def main() -> None:
    name, rank, world, init_file, out_file = sys.argv[1:6]
    rank_i, world_i = int(rank), int(world)
    torch.set_num_threads(1)
    dist.init_process_group(
        "gloo", init_method=f"file://{init_file}", rank=rank_i, world_size=world_i
    )
    calls = {"all_reduce": 0}
    original = dist.all_reduce

    def counting_all_reduce(*args, **kwargs):
        calls["all_reduce"] += 1
        return original(*args, **kwargs)

    model, x, y = model_and_data()
    local = slice(rank_i * BATCH // world_i, (rank_i + 1) * BATCH // world_i)
    dist.all_reduce = counting_all_reduce
    try:
        opt = train(name, model, x[local], y[local], distributed=True)
    finally:
        dist.all_reduce = original
    out = {
        "params": [p.detach().clone() for p in model.parameters()],
        "all_reduce_calls": calls["all_reduce"],
    }
    if name.startswith("mfac"):
        # state_dict holds the window as one m x d tensor, paged or not
        out["grad_buffer"] = opt.state_dict()["state"]["mfac"]["grad_buffer"].clone()
    torch.save(out, out_file)
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
    # Leave without the interpreter's teardown: with DDP's reducer threads and
    # gloo still in static destructors, it sometimes aborts ("terminate called
    # without an active exception", SIGABRT) after every result is written.
    sys.stdout.flush()
    os._exit(0)
