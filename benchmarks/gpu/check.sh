#!/usr/bin/env bash
# One prepared GPU check: build selfocus_ext with CUDA, run the test suite (the CUDA tests compare the
# CUDA kernels with the CPU ones), and time the CUDA kernels against a device-to-device copy.
# Writes gpu-check.log and gpu-ops.md under $OUT (default benchmarks/results/). No network needed.
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-benchmarks/results}
mkdir -p "$OUT"
log="$OUT/gpu-check.log"
: > "$log"
step() { echo "== $*" | tee -a "$log"; }
status=0

step "environment"
{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader; nvcc --version | tail -1
  python3 -c "import torch, sys; print('python', sys.version.split()[0], 'torch', torch.__version__, 'cuda', torch.version.cuda)"; } 2>&1 | tee -a "$log"

step "build (CUDA)"
source benchmarks/gpu/build.sh
build_cuda || exit 1

# The CUDA tests first: they are what only this machine can run; the rest of the suite runs in CI too.
step "CUDA tests"
python3 -m pytest -q -p no:cacheprovider -rs tests/test_cuda.py > "$OUT/pytest-cuda.txt" 2>&1 || status=1
tail -n 30 "$OUT/pytest-cuda.txt" | tee -a "$log"

step "GPU benchmark"
python3 benchmarks/gpu/bench_gpu.py --out "$OUT/gpu-ops.md" 2>&1 | tee -a "$log" || status=1

if [ -n "${SELFOCUS_SKIP_SUITE:-}" ]; then step "done (status $status; whole suite skipped)"; exit $status; fi
step "whole suite (this machine's torch and Python)"
workers=()
python3 -c "import xdist" 2>/dev/null && workers=(-n 8)
timeout "${SUITE_TIMEOUT:-240}" python3 -m pytest -q -p no:cacheprovider "${workers[@]}" tests > "$OUT/pytest.txt" 2>&1 || status=1
tail -n 30 "$OUT/pytest.txt" | tee -a "$log"

step "done (status $status)"
exit $status
