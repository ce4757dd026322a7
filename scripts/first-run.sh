#!/usr/bin/env bash
# First run: captcha-ocr end to end without outside data, in about three minutes on 2 cores.
#   1. reads the bundled example images with the pretrained general model;
#   2. draws a small synthetic set in one style, fine-tunes the general model on it for a few
#      epochs and measures it on images it has not seen, with pictures to look at.
#
#   scripts/first-run.sh [OUT_DIR]     (default: first-run/)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=build/captcha-ocr
model=models/general.safetensors
out=${1:-first-run}
if [ ! -x "$bin" ]; then
  echo "first-run: $bin is missing; run ./scripts/setup.sh first" >&2
  exit 1
fi
rm -rf "$out"
mkdir -p "$out"

echo "== 1. The pretrained general model reads the bundled examples (path, text, confidence)"
"$bin" predict --model "$model" examples
"$bin" eval --model "$model" --data examples --grid "$out/examples-grid.png" | grep -E "exact match  |grid"

echo
echo "== 2. A new CAPTCHA style: 2000 drawn images, fine-tuned from the general model, measured on 300 others"
"$bin" generate --out "$out/data/train" --count 2000 --style warp --charset alnum-lower --length 5 --seed 21
"$bin" generate --out "$out/data/val" --count 200 --style warp --charset alnum-lower --length 5 --seed 22
"$bin" generate --out "$out/data/test" --count 300 --style warp --charset alnum-lower --length 5 --seed 23
"$bin" eval --model "$model" --data "$out/data/test" --case-insensitive | grep -E "exact match" | sed 's/^/before fine-tuning: /'
"$bin" train --init "$model" --train "$out/data/train" --val "$out/data/val" --out "$out/run" --epochs 3 --warmup 0.3
"$bin" eval --model "$out/run/best.safetensors" --data "$out/data/test" --grid "$out/test-grid.png" --errors "$out/test-errors.tsv"

echo
echo "first-run: outputs in $out/"
echo "  $out/examples-grid.png   the bundled examples with the general model's readings"
echo "  $out/run/curves.png      training curves (loss, validation exact match and CER per epoch)"
echo "  $out/test-grid.png       test images with the fine-tuned model's readings (misreads first, in red)"
echo "  $out/run/best.safetensors  the fine-tuned model; read with: $bin predict --model $out/run/best.safetensors IMAGE..."
