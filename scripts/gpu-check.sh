#!/usr/bin/env bash
# The one short GPU check, for a session that is lent a CUDA machine:
# the gpu-marked tests, then the CUDA benchmark cases (names containing "cuda")
# of the suites that have them. Results land in $OUT (or gpu-results/).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-gpu-results}"
mkdir -p "$OUT"
# A CUDA build of torch is needed: the .venv made by `make` holds the CPU build,
# so on the GPU machine point PY at a Python whose torch sees the device.
PY="${PY:-python3}"
"$PY" - <<'PY'
import torch
assert torch.cuda.is_available(), "no CUDA device: nothing to check"
print("device:", torch.cuda.get_device_name(0), "torch", torch.__version__)
PY
"$PY" -m pytest -q -m gpu tests -p no:cacheprovider 2>&1 | tee "$OUT/gpu-tests.txt"
"$PY" -c 'import sys; from itersolve.bench.cli import main; sys.exit(main(sys.argv[1:]))' \
    bench linear-poisson linear-krylov control-intrl \
    --scale quick --threads 1 --cases cuda --out "$OUT/bench" 2>&1 \
    | tee "$OUT/gpu-bench.txt"
