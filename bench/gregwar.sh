#!/usr/bin/env bash
# The seed's own benchmark: a Gregwar/Captcha set (the generator of the public 113k-image
# "Captcha Dataset") drawn with ../shared/tools/gregwar-dataset: 20,000 training images (seed 11),
# 1,000 validation (seed 12) and 2,000 test (seed 13). Trains with the default settings and
# `--time-limit MINUTES` (the schedule is fitted to the epochs that fit in MINUTES of wall time,
# data loading included; a SIGINT 5 minutes later is the safety net), then reads the test set
# with the best model.
#
#   bench/gregwar.sh [MINUTES] [THREADS] [-- extra train options]    (default 60 minutes, every core)
#
# The images are drawn once into $CAPTCHA_BENCH_CACHE (default ~/.cache/captcha-ocr-bench), never
# into the repository. Prints the learning curve (metrics.csv) and the test figures.
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=${1:-60}
threads=${2:-0}
shift $(( $# > 2 ? 2 : $# ))
[ "${1:-}" = "--" ] && shift
tool=../shared/tools/gregwar-dataset
if [ ! -x "$tool" ]; then
  echo "bench: $tool is absent; nothing to measure" >&2
  exit 0
fi
cache=${CAPTCHA_BENCH_CACHE:-$HOME/.cache/captcha-ocr-bench}/gregwar
bin=${CAPTCHA_OCR:-./build/captcha-ocr}
draw() {  # split count seed
  local dir="$cache/$1-$2-seed$3"
  if [ ! -f "$dir/.complete" ]; then
    rm -rf "$dir"
    "$tool" "$dir" "$2" "$3"
    touch "$dir/.complete"
  fi
  echo "$dir"
}
train=$(draw train 20000 11)
val=$(draw val 1000 12)
test=$(draw test 2000 13)
[ "${GREGWAR_DRAW_ONLY:-0}" = 1 ] && exit 0

# The run folder (log, metrics.csv, curves.png, models) is kept where $GREGWAR_RUN_DIR names one.
if [ -n "${GREGWAR_RUN_DIR:-}" ]; then
  run=$GREGWAR_RUN_DIR
  mkdir -p "$run"
else
  run=$(mktemp -d)
  trap 'rm -rf "$run"' EXIT
fi
echo "gregwar: train $train, $minutes min at most, threads $threads, $(nproc) cores, $(date -u +%F)"
status=0
timeout -s INT "$((minutes + 5))m" "$bin" train --train "$train" --val "$val" --out "$run/run" --threads "$threads" \
  --time-limit "$minutes" "$@" \
  >"$run/train.log" 2>&1 || status=$?
case $status in 0 | 124 | 130) ;; *) cat "$run/train.log" >&2; exit "$status" ;; esac
tail -n 3 "$run/train.log"
echo "learning curve (metrics.csv):"
cat "$run/run/metrics.csv"
"$bin" eval --model "$run/run/best.safetensors" --data "$test" --threads "$threads" 2>&1 | head -n 4
