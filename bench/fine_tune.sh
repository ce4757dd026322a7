#!/usr/bin/env bash
# Fine-tuning the bundled general model against training from scratch, on subsets of
# ../shared/data/captcha-v2/train (validation and test folders as they are).
#
#   bench/fine_tune.sh [SIZES...]        (default: 100 300 832; 832 = the whole train folder)
#   FINE_TUNE_ONLY=1 bench/fine_tune.sh  skips the from-scratch runs (about 30 minutes), e.g. to
#                                        measure a new general model
#
# Subsets are deterministic (file names ordered by their MD5). Epoch budgets: from scratch
# 20000 images seen or 50 epochs, whichever is more, without early stopping; fine-tuning a tenth
# of the scratch budget's epochs, at least 10, with the default early stopping. Prints a Markdown table; paste it into docs/BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
require_captcha_v2
model=models/general.safetensors
bin=./build/captcha-ocr
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(100 300 832)
out=${BENCH_OUT:-$(mktemp -d)}
mkdir -p "$out"

subset() {  # n -> folder of symlinks
  local n=$1 dir=$out/subset-$1
  rm -rf "$dir" && mkdir -p "$dir"
  for f in "$data"/train/*; do echo "$(basename "$f" | md5sum | cut -c1-12) $f"; done | sort | head -n "$n" |
    while read -r _ f; do ln -s "$(realpath "$f")" "$dir/"; done
  echo "$dir"
}

report() {  # name run_dir -> table row
  local name=$1 run=$2 eval_json
  eval_json=$("$bin" eval --model "$run/best.safetensors" --data "$data/test" --json 2>/dev/null)
  python3 - "$name" "$run/metrics.csv" "$eval_json" <<'PY'
import csv, json, sys
name, metrics, figures = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
rows = list(csv.DictReader(open(metrics)))
first99 = next((r for r in rows if float(r["val_exact_match"]) >= 0.99), None)
to99 = "epoch %s, %.0f s" % (first99["epoch"], float(first99["elapsed_seconds"])) if first99 else "never"
print("| %s | %s | %.0f s | %s | %.2f%% | %.2f%% |" % (name, rows[-1]["epoch"], float(rows[-1]["elapsed_seconds"]),
      to99, 100 * figures["exact_match"], 100 * figures["cer"]))
PY
}

echo "fine-tuning vs from scratch on captcha-v2, $(nproc) cores, $(date -u +%F)"
echo "| training images, start | epochs | training time | val exact >= 99% first at | test exact | test CER |"
echo "| --- | --- | --- | --- | --- | --- |"
for n in "${sizes[@]}"; do
  train_dir=$(subset "$n")
  scratch_epochs=$(( 20000 / n > 50 ? 20000 / n : 50 ))
  tune_epochs=$(( scratch_epochs / 10 > 10 ? scratch_epochs / 10 : 10 ))
  # No early stopping from scratch: a small set sits on the CTC plateau for many epochs.
  if [ -z "${FINE_TUNE_ONLY:-}" ]; then
    "$bin" train --train "$train_dir" --val "$data/val" --out "$out/scratch-$n" --epochs "$scratch_epochs" \
      --patience "$scratch_epochs" --quiet >/dev/null 2>&1
    report "$n, from scratch" "$out/scratch-$n"
  fi
  "$bin" train --init "$model" --train "$train_dir" --val "$data/val" --out "$out/tuned-$n" --epochs "$tune_epochs" --quiet >/dev/null 2>&1
  report "$n, --init $model" "$out/tuned-$n"
done
echo "runs in $out"
