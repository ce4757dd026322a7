#!/usr/bin/env bash
# Fingerprints of what a build trains and reads, for checking that a change of structure leaves
# behaviour as it was: run it with two builds and compare the outputs (`diff -r`).
#
#   bench/weights_fingerprint.sh BINARY OUT_DIR
#
# Writes to OUT_DIR: the SHA-256 of every weight tensor of a small and a resnet run trained for 2
# epochs with a fixed seed on drawn images (one thread), and of a small network grown from the
# first (`train --init --conv-channels ...`, growing from the same file for both builds where
# FINGERPRINT_GROW_FROM names it); the ONNX export of the bundled model; and `eval` of the bundled
# model on each test folder under ../shared/data (skipped where absent). Training time and paths
# are left out; the optimizer state (a LibTorch archive whose byte order varies between runs) too.
# Weights compare equal on one machine; another CPU may round differently.
set -euo pipefail
cd "$(dirname "$0")/.."
binary=$(realpath "$1")
out=$(realpath -m "$2")
mkdir -p "$out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

tensor_hashes() {  # MODEL_FILE: one line per tensor, name dtype shape sha256
  python3 - "$1" <<'EOF'
import hashlib, json, struct, sys
data = open(sys.argv[1], 'rb').read()
size = struct.unpack('<Q', data[:8])[0]
header = json.loads(data[8:8 + size])
header.pop('__metadata__', None)
for name in sorted(header):
    if name == 'optimizer_state':
        continue
    begin, end = header[name]['data_offsets']
    print(name, header[name]['dtype'], header[name]['shape'],
          hashlib.sha256(data[8 + size + begin:8 + size + end]).hexdigest()[:16])
EOF
}

"$binary" generate --out "$work/train" --count 300 --seed 5 --charset digits --length 4 >/dev/null
"$binary" generate --out "$work/val" --count 60 --seed 6 --charset digits --length 4 >/dev/null
for arch in small resnet; do
  "$binary" train --train "$work/train" --val "$work/val" --out "$work/$arch" --arch "$arch" --epochs 2 \
    --threads 1 --seed 3 --batch-size 16 --quiet >/dev/null 2>&1
  for model in best final last; do tensor_hashes "$work/$arch/$model.safetensors"; done > "$out/$arch.txt"
done
"$binary" train --init "${FINGERPRINT_GROW_FROM:-$work/small/final.safetensors}" --conv-channels 32,64,64 \
  --rnn-hidden 160,64 --features 96 --train "$work/train" --val "$work/val" --out "$work/grown" --epochs 1 \
  --threads 1 --seed 3 --quiet >/dev/null 2>&1
tensor_hashes "$work/grown/final.safetensors" > "$out/grown.txt"
"$binary" export --model models/general.safetensors --out "$out/general.onnx" >/dev/null
for folder in ../shared/data/*/test; do
  [ -d "$folder" ] || continue
  name=$(basename "$(dirname "$folder")")
  "$binary" eval --model models/general.safetensors --data "$folder" > "$out/eval-$name.txt"
done
echo "fingerprints in $out"
