#!/usr/bin/env bash
# Reproduces benchmarks/results/ml100k-minilm-k64/: train MARC (timed), then the full evaluation.
set -euo pipefail
cd "$(dirname "$0")/.."
CONFIG=benchmarks/configs/ml100k-minilm-k64.toml
OUT=benchmarks/results/ml100k-minilm-k64
mkdir -p "$OUT"
/usr/bin/time -f "%e s wall, %U s user, %S s system, %P CPU" -o "$OUT/train.time" \
    .venv/bin/marc-batch train --config "$CONFIG" --json > "$OUT/train.json"
/usr/bin/time -f "%e s wall, %U s user, %S s system, %P CPU" -o "$OUT/evaluate.time" \
    .venv/bin/marc-batch evaluate --config "$CONFIG" --out "$OUT" > "$OUT/evaluate.log"
