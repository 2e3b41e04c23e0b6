#!/usr/bin/env bash
# Published detectors trained from scratch on generated scenes at their real input size on the lent GPU
# (python/train_published.py --device cuda), one after another until TRAIN_SECONDS have passed; each finished
# model comes back as its checkpoint and card under $OUT/checkpoints/ (copy them into checkpoints/ where the
# card says the floor is met, then run python/real_size.py --check). Run after benchmarks/gpu/check.sh has
# built the package, e.g.
#   OUT=... MODELS="scnn-r18 resa-r18 bezier-r18" STEPS=3000 BATCH=16 TRAIN_SECONDS=420 bash benchmarks/gpu/train_published.sh
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/train-published}
mkdir -p "$OUT/checkpoints"
log="$OUT/train-published.log"
deadline=$(( $(date +%s) + ${TRAIN_SECONDS:-420} ))
status=0
for model in ${MODELS:-scnn-r18 resa-r18 bezier-r18}; do
  left=$(( deadline - $(date +%s) ))
  [ "$left" -le 30 ] && { echo "no time left for $model" | tee -a "$log"; break; }
  timeout "$left" python3 python/train_published.py --model "$model" --device cuda --steps "${STEPS:-3000}" \
    --batch "${BATCH:-16}" --lr "${LR:-2e-3}" --train-scenes "${SCENES:-8000}" --workdir "$OUT/work" \
    --out-dir "$OUT/checkpoints" > "$OUT/$model.log" 2>&1
  code=$?
  tail -c 4000 "$OUT/$model.log" | tr '\r' '\n' | tail -30 | tee -a "$log"
  [ "$code" = 124 ] && { echo "$model: stopped at the time limit (its checkpoint state is in $OUT/work)" | tee -a "$log"; break; }
  [ "$code" != 0 ] && status=$code
done
exit $status
