#!/usr/bin/env bash
# Synthetic CAPTCHA drawing speed: captcha-ocr generate (every style, all cores) against the PHP
# Gregwar/Captcha generator in ../shared/tools/gregwar-dataset, in one run on this machine.
#
#   bench/generate_speed.sh [OUR_COUNT] [PHP_COUNT]     (defaults 4000 and 400)
#
# Prints images/s for each and the ratio; paste the output into docs/BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
ours=${1:-4000}
php=${2:-400}
bin=./build/captcha-ocr
gregwar=../shared/tools/gregwar-dataset
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

seconds() { local start=$(date +%s.%N); "$@" >/dev/null 2>&1; awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { print b - a }'; }
divide() { awk -v a="$1" -v b="$2" 'BEGIN { print a / b }'; }

echo "image drawing speed, $(nproc) cores, $(date -u +%F)"
if [ -x "$gregwar" ] && command -v php >/dev/null; then
  t_php=$(seconds "$gregwar" "$out/php" "$php" 1)
  php_rate=$(divide "$php" "$t_php")
  printf '%-48s %8.1f images/s (%d images, 150x40 jpg, 1 process)\n' "gregwar-dataset (PHP)" "$php_rate" "$php"
else
  php_rate=""
  echo "gregwar-dataset (PHP): absent (../shared/tools or php missing); ours only"
fi
for style in mix clean lines; do
  for threads in 1 0; do
    t=$(seconds "$bin" generate --out "$out/ours-$style-$threads" --count "$ours" --style "$style" --threads "$threads")
    rate=$(divide "$ours" "$t")
    label="captcha-ocr generate --style $style --threads $([ "$threads" = 0 ] && nproc || echo 1)"
    if [ -n "$php_rate" ]; then
      printf '%-48s %8.1f images/s (%d images, 200x50 png) = %.1fx PHP\n' "$label" "$rate" "$ours" "$(divide "$rate" "$php_rate")"
    else
      printf '%-48s %8.1f images/s (%d images, 200x50 png)\n' "$label" "$rate" "$ours"
    fi
    rm -rf "$out/ours-$style-$threads"
  done
done
