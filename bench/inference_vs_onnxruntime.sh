#!/usr/bin/env bash
# Reading speed of captcha-ocr's engine (float, and --int8) against ONNX Runtime running the same
# model exported by `captcha-ocr export`, on the same machine, alternately in one run; figures as
# ratios. Also:
# agreement of the two on one batch, start-up (process start, model load, one prediction) and
# peak memory of reading one image.
#
#   bench/inference_vs_onnxruntime.sh [MODEL] [THREADS] [ROUNDS]
#
# MODEL defaults to models/general.safetensors, THREADS to 2, ROUNDS to 3. Needs the build
# (scripts/setup.sh) and ONNX Runtime for Node: (cd bench/ort && npm install --ignore-scripts).
# TORCH_READER=path/to/an-older-captcha-ocr adds the LibTorch reading path (builds before the
# engine, e.g. commit d8363ae) to the start-up and memory rows.
set -euo pipefail
cd "$(dirname "$0")/.."
model=${1:-models/general.safetensors}
threads=${2:-2}
rounds=${3:-3}
ours=build/captcha-ocr-read
if [ ! -x "$ours" ]; then echo "bench: build first (scripts/setup.sh)" >&2; exit 1; fi
if [ ! -d bench/ort/node_modules/onnxruntime-node ]; then
  echo "bench: ONNX Runtime missing: (cd bench/ort && npm install --ignore-scripts)" >&2
  exit 1
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$ours" export --model "$model" --out "$work/model.onnx" 2>/dev/null
ort() { node bench/ort/run.js "$@" 2>/dev/null; }
field() { sed -E "s/.*\"$1\":([0-9.e+-]+).*/\1/"; }
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

echo "# $(date -u +%F) $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores; model $model; $threads threads"
echo "# onnxruntime-node $(node -p "require('./bench/ort/node_modules/onnxruntime-node/package.json').version")"

# Agreement: the same random batch through both.
"$ours" bench --model "$model" --batch 8 --runs 1 --warmup 0 --input-out "$work/in.f32" --logits-out "$work/ours.f32" >/dev/null
ort "$work/model.onnx" logits 8 "$work/in.f32" "$work/ort.f32" >/dev/null
python3 - "$work/ours.f32" "$work/ort.f32" <<'EOF'
import array, sys
a, b = array.array('f'), array.array('f')
a.frombytes(open(sys.argv[1], 'rb').read()); b.frombytes(open(sys.argv[2], 'rb').read())
print("agreement: %d logits, largest difference %.2e" % (len(a), max(abs(x - y) for x, y in zip(a, b))))
EOF

# Ours in float and with --int8, ONNX Runtime in float, taking turns in each round.
report() {  # BATCH LABEL OURS-FILE ORT-FILE
  local o_ms r_ms o_ips r_ips
  o_ms=$(field median_ms <"$3" | median); r_ms=$(field median_ms <"$4" | median)
  o_ips=$(field images_per_second <"$3" | median); r_ips=$(field images_per_second <"$4" | median)
  awk -v b="$1" -v l="$2" -v om="$o_ms" -v rm="$r_ms" -v oi="$o_ips" -v ri="$r_ips" 'BEGIN {
    printf "batch %2d: ours%s %.3f ms (%.0f images/s), ONNX Runtime %.3f ms (%.0f images/s): %.2fx the throughput\n",
           b, l, om, oi, rm, ri, oi / ri }'
}
for batch in 1 64; do
  : >"$work/ours-$batch"; : >"$work/int8-$batch"; : >"$work/ort-$batch"
  for _ in $(seq "$rounds"); do
    "$ours" bench --model "$model" --batch "$batch" --threads "$threads" --json >>"$work/ours-$batch"
    "$ours" bench --model "$model" --batch "$batch" --threads "$threads" --int8 --json >>"$work/int8-$batch"
    ort "$work/model.onnx" bench "$batch" "$threads" >>"$work/ort-$batch"
  done
  report "$batch" "" "$work/ours-$batch" "$work/ort-$batch"
  report "$batch" " --int8" "$work/int8-$batch" "$work/ort-$batch"
done

# Start-up and memory: one prediction from a fresh process, median of 5 (wall ms, peak RSS).
image=$(ls examples/*.png | head -1)
startup() {
  for _ in 1 2 3 4 5; do
    /usr/bin/time -f "%e %M" "$@" --model "$model" --threads "$threads" "$image" 2>&1 >/dev/null | tail -1
  done | awk '{print $1 * 1000, $2 / 1024}' | sort -g | awk '{a[NR]=$0} END {split(a[3], m, " "); printf "%.0f ms, peak RSS %.0f MiB\n", m[1], m[2]}'
}
echo "start + load + read one image, engine (captcha-ocr-read, no LibTorch): $(startup "$ours" predict)"
echo "start + load + read one image, full build (captcha-ocr, LibTorch linked): $(startup build/captcha-ocr predict)"
if [ -n "${TORCH_READER:-}" ]; then
  echo "start + load + read one image, LibTorch reading path ($TORCH_READER): $(startup "$TORCH_READER" predict)"
fi
