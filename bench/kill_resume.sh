#!/usr/bin/env bash
# A training run killed outright (SIGKILL, no chance to save) at random moments, resumed after
# each kill: it must always resume and end with a valid model. After every kill the saved
# last.safetensors must load and read; at the end, final.safetensors must hold the very weights
# of the same run never killed (resuming is exact on one thread), and best.safetensors read.
#
#   bench/kill_resume.sh [KILLS] [BINARY]     (defaults: 6 kills, build/captcha-ocr)
#
# Exits non-zero, saying why, at the first failure. About two minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
kills=${1:-6}
binary=$(realpath "${2:-build/captcha-ocr}")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
run="$work/run"

data=(--charset digits --length 4 --style clean --size 128x32)
"$binary" generate --out "$work/train" --count 400 --seed 7 "${data[@]}" 2>/dev/null
"$binary" generate --out "$work/val" --count 80 --seed 8 "${data[@]}" 2>/dev/null
settings=(--train "$work/train" --val "$work/val" --epochs 12 --threads 1 --quiet)

# Resumes where a saved state exists, otherwise starts the run (a kill before the first save
# leaves nothing to resume). Saves within an epoch about every second. The training process
# replaces the (sub)shell that calls this, so that the kill reaches it.
train() {
  if [ -f "$run/last.safetensors" ]; then
    exec "$binary" train --resume "$run" --threads 1 --quiet
  else
    exec "$binary" train "${settings[@]}" --out "$run" --checkpoint-every 0.02
  fi
}

killed=0
for k in $(seq 1 "$kills"); do
  train >>"$work/log" 2>&1 &
  pid=$!
  sleep "$(awk -v seed="$RANDOM" 'BEGIN { srand(seed); printf "%.1f", 0.5 + 8 * rand() }')"
  if ! kill -0 "$pid" 2>/dev/null; then
    wait "$pid" || { echo "kill_resume: the run failed on its own (log below)"; cat "$work/log"; exit 1; }
    echo "kill_resume: the run finished before kill $k"
    break
  fi
  kill -9 "$pid"
  wait "$pid" 2>/dev/null || true
  killed=$((killed + 1))
  if [ -f "$run/last.safetensors" ]; then
    "$binary" eval --model "$run/last.safetensors" --data "$work/val" --json >/dev/null ||
      { echo "kill_resume: last.safetensors does not read after kill $k"; exit 1; }
    echo "kill_resume: kill $k: last.safetensors reads"
  else
    echo "kill_resume: kill $k: before the first save"
  fi
done
# Resumed (or, where the last kill came before any save, started) to the end.
while [ ! -f "$run/final.safetensors" ]; do
  (train) >>"$work/log" 2>&1 || { echo "kill_resume: the resumed run failed (log below)"; cat "$work/log"; exit 1; }
done

# The same run, never killed.
"$binary" train "${settings[@]}" --out "$work/straight" >>"$work/log" 2>&1
python3 - "$run/final.safetensors" "$work/straight/final.safetensors" <<'PYTHON'
import json, struct, sys
def tensors(path):
    data = open(path, 'rb').read()
    size = struct.unpack('<Q', data[:8])[0]
    header = json.loads(data[8:8 + size])
    header.pop('__metadata__', None)
    return {name: data[8 + size + e['data_offsets'][0]:8 + size + e['data_offsets'][1]] for name, e in header.items()}
killed, straight = tensors(sys.argv[1]), tensors(sys.argv[2])
different = sorted(name for name in straight if killed.get(name) != straight[name])
if different or killed.keys() != straight.keys():
    sys.exit('kill_resume: the killed run ends with other weights than the run never killed: ' + ', '.join(different))
PYTHON
exact=$("$binary" eval --model "$run/best.safetensors" --data "$work/val" --json |
  python3 -c 'import json, sys; print(round(100 * json.load(sys.stdin)["exact_match"], 2))')
echo "kill_resume: $killed kills; the run resumed after each, ended with the weights of the run never killed, and reads $exact% of its validation set"
