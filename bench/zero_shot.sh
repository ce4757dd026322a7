#!/usr/bin/env bash
# Zero-shot accuracy of a model (default: the bundled general model) on every test folder under
# ../shared/data and on a Gregwar/Captcha set drawn by ../shared/tools/gregwar-dataset: no
# training on the targets. The generic-text sets are scored case-insensitively (their README
# says the drawn case often differs from the label); the others case-sensitively. Each set is
# also scored with --allowed set to its own alphabet (what a user who knows the site's alphabet
# would pass).
#
#   bench/zero_shot.sh [MODEL] [GREGWAR_COUNT]      (defaults models/general.safetensors, 2000)
set -euo pipefail
cd "$(dirname "$0")/.."
model=${1:-models/general.safetensors}
gregwar_count=${2:-2000}
bin=./build/captcha-ocr
data=../shared/data
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

figure() {  # json key
  python3 -c "import json,sys; d=json.load(sys.stdin); print('%.2f%%' % (100*d['$1']))"
}

score() {  # name folder alphabet [--case-insensitive]
  local name=$1 folder=$2 alphabet=$3; shift 3
  local plain restricted cer
  plain=$("$bin" eval --model "$model" --data "$folder" --json "$@" 2>/dev/null)
  restricted=$("$bin" eval --model "$model" --data "$folder" --json --allowed "$alphabet" "$@" 2>/dev/null)
  printf '| %-22s | %5s | %-8s | %8s | %8s | %8s |\n' "$name" "$(echo "$plain" | python3 -c 'import json,sys; print(json.load(sys.stdin)["count"])')" \
    "$([ $# -gt 0 ] && echo no || echo yes)" "$(echo "$plain" | figure exact_match)" "$(echo "$plain" | figure cer)" \
    "$(echo "$restricted" | figure exact_match)"
}

echo "zero-shot: $model, $(date -u +%F)"
echo "| test folder | images | case counts | exact | CER | exact, --allowed its alphabet |"
echo "| --- | --- | --- | --- | --- | --- |"
[ -d "$data/captcha-v2/test" ] && score captcha-v2 "$data/captcha-v2/test" 2345678bcdefgmnpwxy
[ -d "$data/indiagov-real/test" ] && score indiagov-real "$data/indiagov-real/test" \
  "$(ls "$data/indiagov-real/train" | sed 's/\.[^.]*$//' | fold -w1 | sort -u | tr -d '\n')"
[ -d "$data/generic-text-lower/test" ] && score generic-text-lower "$data/generic-text-lower/test" \
  0123456789abcdefghijklmnopqrstuvwxyz --case-insensitive
[ -d "$data/generic-text-upper/test" ] && score generic-text-upper "$data/generic-text-upper/test" \
  0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ --case-insensitive
if [ -x ../shared/tools/gregwar-dataset ] && command -v php >/dev/null; then
  ../shared/tools/gregwar-dataset "$out/gregwar" "$gregwar_count" 13 >/dev/null 2>&1
  score "gregwar (seed 13)" "$out/gregwar" 123456789abcdefghijklmnpqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ
fi
