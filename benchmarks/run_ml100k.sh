#!/usr/bin/env bash
# Reproduces benchmarks/results/ml100k-minilm-k$K/: train MARC (timed), then the full evaluation.
# Usage: benchmarks/run_ml100k.sh 64   (the config is benchmarks/configs/ml100k-minilm-k$K.toml)
set -euo pipefail
cd "$(dirname "$0")/.."
K=${1:?k}
CONFIG=benchmarks/configs/ml100k-minilm-k$K.toml
OUT=benchmarks/results/ml100k-minilm-k$K
mkdir -p "$OUT"
/usr/bin/time -f "%e s wall, %U s user, %S s system, %P CPU" -o "$OUT/train.time" \
    .venv/bin/marc-batch train --config "$CONFIG" --json > "$OUT/train.json"
/usr/bin/time -f "%e s wall, %U s user, %S s system, %P CPU" -o "$OUT/evaluate.time" \
    .venv/bin/marc-batch evaluate --config "$CONFIG" --out "$OUT" > "$OUT/evaluate.log"
