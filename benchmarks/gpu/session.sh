#!/usr/bin/env bash
# The standing order of a session that is lent a GPU, as one script with a time share per part:
#   1. benchmarks/gpu/check.sh without the whole suite (CUDA build, CUDA tests, kernel timings)
#   2. benchmarks/gpu/train_published.sh (real-size published detectors; TRAIN_SECONDS)
#   3. python/real_size.py --run --device cuda --seeds 0 1 2 on the checkpoints in checkpoints/ (REAL_SECONDS)
# Everything, logs included, lands under $OUT; copy what came back into benchmarks/results/ and checkpoints/.
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/gpu-session}
mkdir -p "$OUT/check" "$OUT/real-size"
status=0
SELFOCUS_SKIP_SUITE=1 OUT="$OUT/check" bash benchmarks/gpu/check.sh || status=1
OUT="$OUT/train" TRAIN_SECONDS="${TRAIN_SECONDS:-240}" bash benchmarks/gpu/train_published.sh || status=1
marker=$(mktemp)
timeout "${REAL_SECONDS:-180}" python3 python/real_size.py --run --device cuda --seeds 0 1 2 \
  > "$OUT/real-size.log" 2>&1
code=$?
[ "$code" != 0 ] && [ "$code" != 124 ] && status=1
tail -c 3000 "$OUT/real-size.log" | tr '\r' '\n' | tail -20
find benchmarks/results/real-size -name '*.json' -newer "$marker" -exec cp {} "$OUT/real-size/" \; 2>/dev/null
echo "real-size cells back: $(ls "$OUT/real-size" | wc -l); status $status"
exit $status
