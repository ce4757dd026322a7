#!/usr/bin/env bash
# Remakes the seed corpora in fuzz/corpus/ from the built tool (build/captcha-ocr, or
# $CAPTCHA_OCR), PHP's GD (installed by scripts/setup.sh) and Python's standard library. The
# corpora are committed; run this only to change them.
#
#   fuzz/make_seeds.sh
set -euo pipefail
cd "$(dirname "$0")"
bin=$(realpath "${CAPTCHA_OCR:-../build/captcha-ocr}")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
rm -rf corpus
mkdir -p corpus/{image,safetensors,model,labels,ctc,http}

# --- image: every format the decoder reads, small ---
"$bin" generate --out "$work/png" --count 3 --size 100x30 --length 4 --seed 7 >/dev/null
"$bin" generate --out "$work/jpg" --count 2 --size 100x30 --length 5 --format jpg --seed 8 >/dev/null
i=0
for f in "$work"/png/*.png "$work"/jpg/*.jpg; do
  i=$((i + 1))
  cp "$f" "corpus/image/seed-$i.${f##*.}"
done
first=$(ls "$work"/png/*.png | head -1)
php -r '$i = imagecreatefrompng($argv[1]);
  imagegif($i, $argv[2] . ".gif"); imagewebp($i, $argv[2] . ".webp", 60); imagebmp($i, $argv[2] . ".bmp");
  $p = imagecreate(40, 16); imagecolorallocate($p, 255, 255, 255); $ink = imagecolorallocate($p, 10, 10, 90);
  imagestring($p, 3, 2, 1, "a7Kx", $ink); imagepng($p, $argv[2] . "-palette.png");
  $t = imagecreatetruecolor(40, 16); imagesavealpha($t, true); imagealphablending($t, false);
  imagefill($t, 0, 0, imagecolorallocatealpha($t, 0, 0, 0, 127));
  imagestring($t, 3, 2, 1, "q2W", imagecolorallocatealpha($t, 200, 30, 30, 20)); imagepng($t, $argv[2] . "-alpha.png");' \
  "$first" corpus/image/seed
python3 - <<'PY'
import struct
w, h = 12, 6
grey = bytes((x * 20 + y * 7) % 256 for y in range(h) for x in range(w))
open("corpus/image/seed.pgm", "wb").write(b"P5\n%d %d\n255\n" % (w, h) + grey)
open("corpus/image/seed.ppm", "wb").write(b"P6\n%d %d\n255\n" % (w, h) + bytes(v for g in grey for v in (g, 255 - g, g // 2)))
tga = struct.pack("<BBBHHBHHHHBB", 0, 0, 2, 0, 0, 0, 0, 0, w, h, 24, 0)
open("corpus/image/seed.tga", "wb").write(tga + bytes(v for g in grey for v in (g, g, 255 - g)))
PY

# --- model and safetensors: tiny trained models (LSTM and GRU, checkpoint with optimizer state) ---
"$bin" generate --out "$work/train" --count 48 --size 64x20 --length 3 --charset digits --seed 9 >/dev/null
"$bin" train --train "$work/train" --out "$work/lstm" --width 32 --height 16 --conv-channels 4,8 --features 8 \
  --rnn-hidden 8 --epochs 1 --threads 1 --quiet >/dev/null
"$bin" train --train "$work/train" --out "$work/gru" --width 40 --height 16 --conv-channels 4,8,8 --features 8 \
  --rnn gru --rnn-hidden 6 6 --no-batch-norm --keep-aspect --epochs 1 --threads 1 --quiet >/dev/null
for dir in model safetensors; do
  cp "$work/lstm/final.safetensors" "corpus/$dir/lstm.safetensors"
  cp "$work/gru/final.safetensors" "corpus/$dir/gru.safetensors"
done
cp "$work/lstm/last.safetensors" corpus/safetensors/checkpoint.safetensors
# an int8 file: 8-bit matrices with their scales
"$bin" export --model "$work/gru/final.safetensors" --format safetensors --int8 --out corpus/model/gru-int8.safetensors \
  2>/dev/null

# --- labels: the first line names the files ('/' between names), the rest is labels.tsv ---
printf 'a1b2.png/c3d4.jpg/x.bmp/readme.txt\n' > corpus/labels/names-only
printf 'ab.png/cd.png/ef.png\nab.png\tlabel1\ncd.png\tZ9\n# a comment\n\n' > corpus/labels/tsv
printf 'ab.png/cd.png\nab.png\tx\nab.png\ty\ncd.png\tq\ncd.png\tq\n' > corpus/labels/duplicates
printf '\xff\xfe.png/ok.png/\xc3\xa9t\xc3\xa9.png\n\xc3\xa9t\xc3\xa9.png\t\xc0\xaf\n' > corpus/labels/not-utf8
printf 'ab.png\r\nab.png\tq\r\nno tab on this line\n' > corpus/labels/malformed
printf 'ab.png/cd.png\nab.png\t\ncd.png\t\xe2\x82\xac\xe2\x82\xac\n' > corpus/labels/empty-and-euro

# --- http: a request's base64, JSON options, query fields and captcha_platform signatures ---
printf '{"image":"iVBORw0KGgo=","model":"general","allowed":"abc","views":3,"beam":10,"any_length":true}' > corpus/http/json-options
printf 'data:image/png;base64,iVBORw0K\nGgoAAAAN' > corpus/http/data-uri
printf 'aGVsbG8gd29ybGQ' > corpus/http/base64-unpadded
printf 'abc&7&10&true' > corpus/http/fields
printf '{"views":1e300,"beam":-1,"allowed":5}' > corpus/http/bad-numbers
printf 'ab-_cd==' > corpus/http/urlsafe
printf '{"image":["aGk=",1.5,null,true,{"k":"it'"'"'s"}],"accessKey":"A","timestamp":1733000000,"sign":"X"}' \
  > corpus/http/signed-body
head -c 2000 /dev/zero | tr '\0' '[' > corpus/http/deep-json

# --- ctc: 8 bytes of sizes and choices, then float32 logits ---
python3 - <<'PY'
import math, struct
def seed(name, steps, classes, batch, beam, lo, hi, allowed, logits):
    head = bytes([steps - 1, classes - 2, batch - 1, beam, lo, hi, allowed & 255, allowed >> 8])
    open("corpus/ctc/" + name, "wb").write(head + struct.pack("<%df" % len(logits), *logits))
def peaked(steps, classes, batch, labels):
    out = []
    for b in range(batch):
        for t in range(steps):
            k = labels[(t // 2) % len(labels)] if t % 2 else 0
            out += [8.0 if c == k else -2.0 for c in range(classes)]
    return out
seed("greedy", 12, 11, 1, 0, 0, 0, 0, peaked(12, 11, 1, [3, 3, 7, 1]))
seed("beam-lengths", 16, 11, 2, 10, 4, 6, 0x3ff, peaked(16, 11, 2, [2, 5, 9]))
seed("flat", 8, 5, 1, 4, 0, 0, 0, [0.0] * 40)
seed("allowed", 10, 38, 1, 6, 0, 0, 0b1010101, peaked(10, 38, 1, [1, 2, 3, 30]))
seed("not-finite", 6, 4, 1, 3, 0, 0, 0, [math.nan, 1.0, math.inf, -math.inf] * 6)
seed("huge", 6, 4, 3, 8, 2, 3, 0, [3e38, -3e38, 1e-45, 0.0] * 18)
PY
du -sh corpus/*
