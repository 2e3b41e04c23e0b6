#!/usr/bin/env bash
# The default tune of published detectors at their real size on the GPU, stage by stage (time, peak RSS):
# benchmarks/published_tune_cost.py --device cuda. Writes gpu-published-models.md under $OUT (default
# benchmarks/results/). Run after benchmarks/gpu/check.sh has built the package.
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-benchmarks/results}
mkdir -p "$OUT"
python3 benchmarks/published_tune_cost.py --device cuda --models ${MODELS:-clrnet-r18 condlane-r18 ufld-r18} \
  --calib "${CALIB:-128}" --test "${TEST:-100}" --iters "${ITERS:-200}" --batch-size "${BATCH:-16}" \
  --out "$OUT/gpu-published-models.md" 2>&1 | tee "$OUT/gpu-published-tune.log"
