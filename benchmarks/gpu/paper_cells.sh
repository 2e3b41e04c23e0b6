#!/usr/bin/env bash
# Paper-experiment cells on the lent GPU: build, then run cells with --device cuda until CELL_SECONDS have
# passed; every cell that finished comes back as its JSON under $OUT/paper/ (copy them into
# benchmarks/results/paper/ and rerun --report). Arguments go to python/paper_experiments.py, e.g.
#   OUT=... CELL_SECONDS=420 bash benchmarks/gpu/paper_cells.sh --f 0.01 --tables 1 --methods qdrop --models ganet-m
# Cells already in benchmarks/results/paper/ are skipped, as on the CPU.
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/paper-cells}
mkdir -p "$OUT"
log="$OUT/paper-cells.log"
: > "$log"
{ nvidia-smi --query-gpu=name --format=csv,noheader
  python3 -c "import torch, sys; print('python', sys.version.split()[0], 'torch', torch.__version__)"; } 2>&1 | tee -a "$log"
source benchmarks/gpu/build.sh
build_cuda || exit 1
marker=$(mktemp)
timeout "${CELL_SECONDS:-420}" python3 python/paper_experiments.py --run --device cuda "$@" 2>&1 | tee -a "$log"
status=${PIPESTATUS[0]}
[ "$status" = 124 ] && echo "stopped after ${CELL_SECONDS:-420} s; the finished cells are kept" | tee -a "$log"
find benchmarks/results/paper -name '*.json' -newer "$marker" | while read -r f; do
  mkdir -p "$OUT/paper/$(basename "$(dirname "$f")")" && cp "$f" "$OUT/paper/$(basename "$(dirname "$f")")/"
done
echo "cells back: $(find "$OUT/paper" -name '*.json' 2>/dev/null | wc -l)" | tee -a "$log"
[ "$status" = 124 ] && exit 0
exit "$status"
