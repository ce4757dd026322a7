#!/usr/bin/env bash
# Two `serve` instances behind nginx with deploy/nginx/captcha-ocr.conf, on loopback: every
# request through nginx gets the reading an instance gives directly, both instances answer some,
# and with one instance stopped the other answers them all. Skipped (77) without nginx.
#
#   tests/serve_nginx.sh BIN SOURCE_DIR
set -euo pipefail
bin=$1 source=$2
if [ "${1:-}" != --check ]; then
  exec "$source/deploy/nginx/try.sh" "$bin" "$source/models/general.safetensors" 1 "$0" --check "$source"
fi
source=$2
fail() { echo "serve_nginx: $*" >&2; exit 1; }
read_text() {  # URL IMAGE
  curl -s -X POST -H 'Content-Type: image/png' --data-binary "@$2" "$1/v1/read" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["text"])'
}
read -r first second <<<"$CAPTCHA_INSTANCES"
served() { curl -s "$1/metrics" | awk -F'} ' '/^captcha_requests_total\{endpoint="\/v1\/read",code="200"\}/ {print $2}'; }
declare -A direct
for image in "$source"/examples/*.png; do direct[$image]=$(read_text "$first" "$image"); done
before=$(served "$first")
for image in "$source"/examples/*.png; do
  for _ in 1 2; do
    through=$(read_text "$CAPTCHA_URL" "$image") || fail "no reading of $image through nginx"
    [ "$through" = "${direct[$image]}" ] || fail "$image: read '$through' through nginx, '${direct[$image]}' directly"
  done
done
[ "$(served "$first")" -gt "$before" ] || fail "the first instance answered no request through nginx"
[ "$(served "$second")" -gt 0 ] || fail "the second instance answered no request"
read -r pid _ <<<"$CAPTCHA_PIDS"
kill "$pid"
for image in "$source"/examples/*.png; do
  code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: image/png' --data-binary "@$image" "$CAPTCHA_URL/v1/read")
  [ "$code" = 200 ] || fail "with one instance stopped, $image got HTTP $code"
done
echo "serve_nginx: both instances answered through nginx; the second alone after the first stopped"
