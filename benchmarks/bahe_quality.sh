#!/usr/bin/env bash
# BAHE users against text users in MARC (docs/bahe.md): one training seed of one user encoder,
# trained with the documented leak-free recipe (benchmarks/configs/ml100k-minilm-k64.toml), then
# the lift evaluation (DCN-V2 over ids and side features, 3 downstream seeds, leak-free protocol).
# Results go to benchmarks/results/bahe-quality/<encoder>-seed<seed>/.
#
# Usage: benchmarks/bahe_quality.sh bahe 1      (encoder: bahe | text; seed: the training seed)
set -euo pipefail
cd "$(dirname "$0")/.."
ENCODER=${1:?encoder}
SEED=${2:?seed}
CONFIG=benchmarks/configs/ml100k-minilm-k64.toml
OUT=benchmarks/results/bahe-quality/$ENCODER-seed$SEED
TIME=(/usr/bin/time -f "%e s wall, %U s user, %S s system, %P CPU" -o)
export MARC_BATCH_MODEL__USER_ENCODER=$ENCODER MARC_BATCH_MODEL__TRAIN__SEED=$SEED
export MARC_BATCH_MODEL__REGISTRY=models-k64-$ENCODER-seed$SEED
export MARC_BATCH_EVALUATE__LIFT__PROTOCOLS='["leak-free"]'
mkdir -p "$OUT"
"${TIME[@]}" "$OUT/train.time" .venv/bin/marc-batch train --config "$CONFIG" --json > "$OUT/train.json"
"${TIME[@]}" "$OUT/evaluate.time" .venv/bin/marc-batch evaluate --config "$CONFIG" --out "$OUT" \
    --lift-only --mid-layer 5 > "$OUT/evaluate.log"
