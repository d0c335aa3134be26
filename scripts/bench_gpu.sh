#!/usr/bin/env bash
# The GPU benchmark in one call (docs/performance.md, "GPU"), from the repository root of a machine
# with CUDA GPUs: uses the python3 that has torch (else a fresh venv in /tmp/v with torch 2.14.1),
# runs scripts/bench_gpu.py (under ten minutes) and leaves in $OUT (default /tmp/bench_gpu)
# bench_gpu.json, bench_gpu.log and performance.md (this checkout's docs/performance.md with the
# GPU table filled in). Extra arguments go to bench_gpu.py.   OUT=/tmp/out bash scripts/bench_gpu.sh
set -uo pipefail
OUT="${OUT:-/tmp/bench_gpu}"; mkdir -p "$OUT"; export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
if python3 -c 'import torch, torchvision, hydra, omegaconf, wandb, torchmetrics' 2>/dev/null; then PY=python3
elif python3 -c 'import torch' 2>/dev/null; then
  python3 -m venv --system-site-packages /tmp/v && /tmp/v/bin/pip install -q -e . && PY=/tmp/v/bin/python || exit 1
else
  python3 -m venv /tmp/v && /tmp/v/bin/pip install -q torch==2.14.1 torchvision==0.29.1 -e . && PY=/tmp/v/bin/python || exit 1
fi
"$PY" scripts/bench_gpu.py --json "$OUT/bench_gpu.json" --markdown docs/performance.md "$@" 2>&1 | tee "$OUT/bench_gpu.log"
status=${PIPESTATUS[0]}; cp docs/performance.md "$OUT/performance.md"; exit "$status"
