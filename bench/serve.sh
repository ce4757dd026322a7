#!/usr/bin/env bash
# The service under load on loopback, next to the engine alone, in one run: wrk (Debian) posts
# one image to /v1/read at concurrency 1, 8 and 64 for SECONDS each (one wrk thread: it shares
# the cores with the service); `captcha-ocr bench` times the engine at batch 1 and 64 on the
# same model and threads; then two instances behind nginx (deploy/nginx) at concurrency 64.
# Prints one line per setting and the ratio to the engine.
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

post_lua=$work/post.lua
cat > "$post_lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "image/png"
local f = io.open("$image", "rb")
wrk.body = f:read("*a")
f:close()
LUA

echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); $(nproc) cores; threads $threads"
engine() {  # BATCH FIELD
  "$bin" bench --model "$model" --batch "$1" --threads "$threads" --json |
    python3 -c "import json, sys; print(json.load(sys.stdin)['$2'])"
}
mean() { python3 -c "import sys; print(round(sum(map(float, sys.argv[1:])) / (len(sys.argv) - 1), 3))" "$@"; }

"$bin" serve --model "general=$model" --port "$port" --threads "$threads" --max-batch 64 2>"$work/server.log" &
server=$!
for _ in $(seq 50); do curl -s "localhost:$port/health" >/dev/null 2>&1 && break; sleep 0.1; done

# wrk at concurrency C on URL; prints requests/s, p50, p99 and non-2xx answers.
load() {  # URL C
  local out
  out=$(wrk -t 1 -c "$2" -d "${seconds}s" --latency -s "$post_lua" "$1/v1/read")
  echo "$out" | awk '/Requests\/sec/ {rps = $2} $1 == "50%" {p50 = $2} $1 == "99%" {p99 = $2} /Non-2xx/ {bad = $NF}
    END {printf "%s requests/s, p50 %s, p99 %s, non-2xx %d\n", rps, p50, p99, bad}'
}
# wrk's "2.10ms", "950.00us" or "1.20s" in milliseconds.
ms() { python3 -c "import sys; v = sys.argv[1]; print(float(v[:-2]) / 1000 if v.endswith('us') else float(v[:-2]) if v.endswith('ms') else float(v[:-1]) * 1000)" "$1"; }

# The engine is timed just before and just after the loads compared with it (the machine's
# speed drifts), the service idle meanwhile.
before=$(engine 1 median_ms)
line=$(load "http://127.0.0.1:$port" 1)
e1_ms=$(mean "$before" "$(engine 1 median_ms)")
p50=$(echo "$line" | sed 's/.*p50 \([^,]*\),.*/\1/')
echo "engine alone: batch 1 median ${e1_ms} ms"
echo "serve: concurrency 1: $line"
echo "  p50 minus the engine's batch 1: $(python3 -c "print(round($(ms "$p50") - $e1_ms, 2))") ms"
echo "serve: concurrency 8: $(load "http://127.0.0.1:$port" 8)"
before=$(engine 64 images_per_second)
line=$(load "http://127.0.0.1:$port" 64)
e64_ips=$(mean "$before" "$(engine 64 images_per_second)")
echo "engine alone: batch 64 ${e64_ips} images/s"
echo "serve: concurrency 64: $line"
echo "  ratio to the engine's batch 64: $(python3 -c "print(round(${line%% *} / $e64_ips, 2))")"
curl -s "localhost:$port/metrics" | grep -E '^captcha_batch_images_(sum|count)' | tr '\n' ' '
echo
kill "$server"

# Two instances of one thread each behind nginx (deploy/nginx/captcha-ocr.conf), on this machine.
export -f load
export seconds post_lua
if command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ]; then
  echo "nginx, 2 instances x 1 thread each: concurrency 64: $(deploy/nginx/try.sh "$bin" "$model" 1 bash -c 'load "$CAPTCHA_URL" 64')"
else
  echo "nginx: not installed, two-instance figure skipped (apt install nginx-light)"
fi
