#!/usr/bin/env bash
# Reproduces benchmarks/results/ml100k-minilm-k$K/: train MARC (timed), then the full evaluation
# (five methods, their lift in the id-based CTR model under the standard and leak-free protocols,
# the layer probe). The training recipe is the leak-free one: each user's latest
# model.train.downstream_holdout of training rows never reaches the encoder.
#
# Then the leak check's other arm, into $OUT/all-rows-encoder/: an encoder trained on every
# training row (downstream_holdout = 0) and its lift under the standard protocol.
#
# Usage: benchmarks/run_ml100k.sh 64 [evaluate options]
#   (the config is benchmarks/configs/ml100k-minilm-k$K.toml; options go to marc-batch evaluate)
#   --lift-only [--mid-layer N]: no proj-final / marc-no-info training, no probe, results into
#   benchmarks/results/ml100k-minilm-k$K-lift/, for machines that cannot afford the full run.
#   --recipe-only (before the evaluate options): no all-rows arm; the recipe's encoder is still
#   scored under both protocols, so the table has both, but not the all-rows encoder's lift.
set -euo pipefail
cd "$(dirname "$0")/.."
K=${1:?k}
shift
ALL_ROWS=1
[[ "${1:-}" == "--recipe-only" ]] && { ALL_ROWS=0; shift; }
EVALUATE=("$@")
CONFIG=benchmarks/configs/ml100k-minilm-k$K.toml
OUT=benchmarks/results/ml100k-minilm-k$K
[[ " ${EVALUATE[*]} " == *" --lift-only "* ]] && OUT=$OUT-lift
TIME=(/usr/bin/time -f "%e s wall, %U s user, %S s system, %P CPU" -o)

run_recipe() {  # $1: output directory, $2: model registry; environment: the recipe's overrides
    mkdir -p "$1"
    MARC_BATCH_MODEL__REGISTRY=$2 "${TIME[@]}" "$1/train.time" \
        .venv/bin/marc-batch train --config "$CONFIG" --json > "$1/train.json"
    MARC_BATCH_MODEL__REGISTRY=$2 "${TIME[@]}" "$1/evaluate.time" \
        .venv/bin/marc-batch evaluate --config "$CONFIG" --out "$1" "${EVALUATE[@]}" > "$1/evaluate.log"
}

run_recipe "$OUT" "models-k$K"
[[ $ALL_ROWS == 1 ]] || exit 0
MARC_BATCH_MODEL__TRAIN__DOWNSTREAM_HOLDOUT=0 run_recipe "$OUT/all-rows-encoder" "models-k$K-all-rows"
