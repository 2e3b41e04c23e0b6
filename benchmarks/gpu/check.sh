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
export TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-9.0}
export MAX_JOBS=${MAX_JOBS:-16}
if ! python3 -m pip install --no-build-isolation --no-deps -e . >>"$log" 2>&1; then
  python3 setup.py build_ext --inplace >>"$log" 2>&1 || { echo "build failed" | tee -a "$log"; exit 1; }
fi
python3 -c "import selfocus_ext as s; assert s.ops.cuda_compiled(), 'CUDA part not built'; print('cuda_compiled', True)" 2>&1 | tee -a "$log" || exit 1

step "tests"
python3 -m pytest -q -p no:cacheprovider tests > "$OUT/pytest.txt" 2>&1 || status=1
tail -n 30 "$OUT/pytest.txt" | tee -a "$log"

step "GPU benchmark"
python3 benchmarks/gpu/bench_gpu.py --out "$OUT/gpu-ops.md" 2>&1 | tee -a "$log" || status=1

step "done (status $status)"
exit $status
