#!/usr/bin/env bash
# Training throughput of the default model (images/s, median of the per-epoch figures after the
# first epoch), for a few settings, on ../shared/data/captcha-v2/train.
#
#   bench/train_throughput.sh [EPOCHS]        (default 4 epochs per setting)
#
# Prints one line per setting; paste the output into docs/BENCHMARKS.md with the machine.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
require_captcha_v2
epochs=${1:-4}
bin=./build/captcha-ocr
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

measure() {
  local name=$1; shift
  "$bin" train --train "$data/train" --val "$data/val" --out "$out/$name" --epochs "$epochs" "$@" >/dev/null 2>&1
  # metrics.csv column 7 is images/s; skip the header and the first (warm-up) epoch.
  local median
  median=$(median_after_first_epoch "$out/$name/metrics.csv" 7)
  printf '%-44s %6.1f images/s\n' "$name ($*)" "$median"
}

echo "captcha-ocr train throughput, $epochs epochs each, $(nproc) cores, $(date -u +%F)"
measure default
measure no-augment --no-augment
measure batch-64 --batch-size 64
measure one-thread --threads 1
measure keras-exact --no-batch-norm --no-augment
