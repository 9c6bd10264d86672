#!/usr/bin/env bash
# The checks that need a GPU, in one run of a few minutes: the gpu-marked tests (bf16 on CUDA
# against fp32 on CPU, with the tiny and the full-size architectures), then the throughput
# benchmark on CUDA with the bench preset. Results: benchmarks/throughput/results-gpu.json
# (or $OUT/results-gpu.json). Stops with one line when there is no CUDA device.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || bash scripts/setup.sh
OUT=${OUT:-benchmarks/throughput}
mkdir -p "$OUT"
.venv/bin/python - <<'PY'
import sys

import torch

if not torch.cuda.is_available():
    sys.exit("gpu_check: no CUDA device here; nothing to check")
print(f"gpu_check: {torch.cuda.get_device_name(0)}, torch {torch.__version__}, CUDA {torch.version.cuda}")
PY
timeout 300 .venv/bin/python -m pytest -q -m gpu tests/test_gpu.py
timeout 600 .venv/bin/python benchmarks/throughput/run.py --models bench --device cuda --clips 24 --seconds 20 \
    --workers "$(nproc)" --out "$OUT/results-gpu.json"
