#!/usr/bin/env bash
# The service under load on loopback, next to the engine alone, in one run: wrk (Debian) posts
# one image to /v1/read at concurrency 1, 8 and 64 for SECONDS each; `captcha-ocr bench` times the
# engine at batch 1 and 64 on the same model and threads; then two instances behind nginx
# (deploy/nginx) at concurrency 64. Prints one line per setting and the ratio to the engine.
#
#   bench/serve.sh [MODEL] [SECONDS]     defaults: models/general.safetensors, 10
set -euo pipefail
cd "$(dirname "$0")/.."
model=${1:-models/general.safetensors}
seconds=${2:-10}
threads=${THREADS:-2}
bin=build/captcha-ocr-read
image=$(ls examples/*.png | head -1)
port=$((20000 + RANDOM % 20000))
work=$(mktemp -d)
trap 'kill "$server" 2>/dev/null || true; rm -rf "$work"' EXIT

cat > "$work/post.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "image/png"
local f = io.open("$image", "rb")
wrk.body = f:read("*a")
f:close()
LUA

echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); $(nproc) cores; threads $threads"
engine() { "$bin" bench --model "$model" --batch "$1" --threads "$threads" --json; }
e1=$(engine 1)
e64=$(engine 64)
e1_ms=$(echo "$e1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["median_ms"])')
e64_ips=$(echo "$e64" | python3 -c 'import json,sys; print(json.load(sys.stdin)["images_per_second"])')
echo "engine: batch 1 median ${e1_ms} ms; batch 64 ${e64_ips} images/s"

"$bin" serve --model "general=$model" --port "$port" --threads "$threads" --max-batch 64 2>"$work/server.log" &
server=$!
for _ in $(seq 50); do curl -s "localhost:$port/health" >/dev/null 2>&1 && break; sleep 0.1; done

# wrk at concurrency C on URL; prints requests/s, p50, p99 and non-2xx answers.
load() {  # URL C
  local out
  out=$(wrk -t "$([ "$2" -lt 2 ] && echo 1 || echo 2)" -c "$2" -d "${seconds}s" --latency -s "$work/post.lua" "$1/v1/read")
  echo "$out" | awk '/Requests\/sec/ {rps = $2} $1 == "50%" {p50 = $2} $1 == "99%" {p99 = $2} /Non-2xx/ {bad = $NF}
    END {printf "%s requests/s, p50 %s, p99 %s, non-2xx %d\n", rps, p50, p99, bad}'
}
for c in 1 8 64; do
  line=$(load "http://127.0.0.1:$port" "$c")
  echo "serve: concurrency $c: $line"
  [ "$c" = 64 ] && echo "  ratio at concurrency 64 to the engine's batch 64: $(python3 -c "print(round(${line%% *} / $e64_ips, 2))")"
done
curl -s "localhost:$port/metrics" | grep -E '^captcha_batch_images_(sum|count)' | tr '\n' ' '
echo
kill "$server"

# Two instances of one thread each behind nginx (deploy/nginx/captcha-ocr.conf), on this machine.
export -f load
export seconds work
if command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ]; then
  echo "nginx, 2 instances x 1 thread: concurrency 64: $(deploy/nginx/try.sh "$bin" "$model" 1 bash -c 'load "$CAPTCHA_URL" 64')"
else
  echo "nginx: not installed, two-instance figure skipped (apt install nginx-light)"
fi
