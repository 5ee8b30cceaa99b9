"""Data-parallel training with 2 gloo processes on CPU equals the single-process run.

Each rank holds half of the batch; after 20 steps every parameter must equal the
single-process run on the full batch with the same probes (float64, 1e-10):
AdaHessian averages the gradient and the signed Hutchinson diagonal in exactly one
all-reduce per step; M-FAC under DistributedDataParallel builds the same gradient
window on every rank, kept whole or paged to a file.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

WORKER = Path(__file__).with_name("_distributed_worker.py")
WORLD = 2

pytestmark = pytest.mark.distributed


def _load_worker():
    """The worker module itself, for the reference run (same model, same steps)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("_distributed_worker", WORKER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run_ranks(name: str, tmp_path: Path) -> list[dict]:
    init = tmp_path / "init"
    outs = [tmp_path / f"rank{r}.pt" for r in range(WORLD)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    procs = [
        subprocess.Popen(
            [sys.executable, WORKER, name, str(r), str(WORLD), init, out],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=env,
        )
        for r, out in enumerate(outs)
    ]
    try:
        outputs = [proc.communicate(timeout=240)[0].decode() for proc in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    for proc, output in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, output
    return [torch.load(out) for out in outs]


@pytest.mark.parametrize("name", ["adahessian", "adahessian_ddp", "mfac", "mfac_paged"])
def test_two_ranks_equal_single_process(name, tmp_path):
    worker = _load_worker()
    model, x, y = worker.model_and_data()
    worker.train(name, model, x, y, distributed=False)
    reference = [p.detach() for p in model.parameters()]
    ranks = _run_ranks(name, tmp_path)
    for result in ranks:
        for got, want in zip(result["params"], reference, strict=True):
            torch.testing.assert_close(got, want, rtol=0, atol=1e-10)
    if name.startswith("adahessian"):
        # one all-reduce per step: gradient and Hessian diagonal in one buffer
        assert [r["all_reduce_calls"] for r in ranks] == [worker.STEPS] * WORLD
    else:
        torch.testing.assert_close(
            ranks[0]["grad_buffer"], ranks[1]["grad_buffer"], rtol=0, atol=0
        )


def test_distributed_needs_an_initialized_process_group():
    from itersolve.optim import Adahessian

    params = [torch.nn.Parameter(torch.zeros(2))]
    with pytest.raises(ValueError, match=r"torch\.distributed initialized"):
        Adahessian(params, seed=0, distributed=True)
