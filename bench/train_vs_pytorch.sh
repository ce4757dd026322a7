#!/usr/bin/env bash
# captcha-ocr's trainer against its PyTorch peer (bench/peer/crnn_peer.py: the same network and
# loop in Python), alternately in one run on ../shared/data/captcha-v2, each figure as a ratio.
#
#   bench/train_vs_pytorch.sh throughput [THREADS] [ROUNDS]   images/s at batch 16 and 64, wall
#                                                          time per epoch, peak memory (~6 min)
#   bench/train_vs_pytorch.sh converge [THREADS]           time to 99% validation exact match
#                                                          and test exact match (~25 min)
#
# Throughput: 3 epochs per run, no augmentation on either side, the median of epochs 2-3 (the
# first is warm-up), ROUNDS alternations (default 2), best of the rounds per side.
# Convergence: each side with its defaults (ours: `captcha-ocr train` as the README says; the
# peer: the Keras reference's Adam 1e-3, batch 16, early stopping), both until they stop; then
# the peer once more, stopped at 99%, with OpenBLAS's AVX2 kernels forced (OPENBLAS_CORETYPE),
# which our trainer picks itself where Debian's OpenBLAS does not know the CPU (see
# restart_with_fast_blas): what a Python user who knew of the variable would get.
# Needs bench/peer/setup.sh (Debian's python3-torch and python3-opencv) and build/captcha-ocr
# (or the binary in $CAPTCHA_OCR).
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
require_captcha_v2
if ! /usr/bin/python3 -c 'import torch, cv2' 2>/dev/null; then
  echo "bench: /usr/bin/python3 lacks torch or cv2; run bench/peer/setup.sh first" >&2
  exit 1
fi
mode=${1:-throughput}
threads=${2:-$(nproc)}
rounds=${3:-2}
bin=${CAPTCHA_OCR:-./build/captcha-ocr}
peer=(/usr/bin/python3 bench/peer/crnn_peer.py)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

# Seconds per epoch: mean of the elapsed-time steps from epoch 2 on (training + validation).
epoch_seconds() { tail -n +2 "$1" | cut -d, -f8 | awk 'NR>1 {s+=$1-p; n++} {p=$1} END {print s/n}'; }
# Peak resident memory in MiB from GNU time's -f %M (KiB) in file $1.
peak_mib() { awk '{print $1/1024}' "$1"; }
# Elapsed seconds at the first epoch whose validation exact match reaches 0.99, or "never".
time_to_99() { tail -n +2 "$1" | awk -F, '$4 >= 0.99 {print $8 " s (epoch " $1 ")"; found=1; exit} END {if (!found) print "never"}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2fx", a / b}'; }

echo "captcha-ocr vs PyTorch $(/usr/bin/python3 -c 'import torch; print(torch.__version__)'), $threads threads," \
  "$(nproc) cores, $(date -u +%F)"

if [ "$mode" = throughput ]; then
  for batch in 16 64; do
    best_ours=0 best_peer=0
    for round in $(seq "$rounds"); do
      /usr/bin/time -f %M -o "$out/peer.mem" "${peer[@]}" train --train "$data/train" --val "$data/val" \
        --out "$out/peer.csv" --epochs 3 --batch "$batch" --threads "$threads" 2>/dev/null
      /usr/bin/time -f %M -o "$out/ours.mem" "$bin" train --train "$data/train" --val "$data/val" \
        --out "$out/ours" --epochs 3 --batch-size "$batch" --no-augment --threads "$threads" >/dev/null 2>&1
      peer_ips=$(median_after_first_epoch "$out/peer.csv" 7) ours_ips=$(median_after_first_epoch "$out/ours/metrics.csv" 7)
      printf 'batch %2d round %d: ours %6.1f images/s, %5.1f s/epoch, %4.0f MiB | peer %6.1f images/s, %5.1f s/epoch, %4.0f MiB\n' \
        "$batch" "$round" "$ours_ips" "$(epoch_seconds "$out/ours/metrics.csv")" "$(peak_mib "$out/ours.mem")" \
        "$peer_ips" "$(epoch_seconds "$out/peer.csv")" "$(peak_mib "$out/peer.mem")"
      best_ours=$(awk -v a="$best_ours" -v b="$ours_ips" 'BEGIN {print (b > a) ? b : a}')
      best_peer=$(awk -v a="$best_peer" -v b="$peer_ips" 'BEGIN {print (b > a) ? b : a}')
      rm -rf "$out/ours"
    done
    echo "batch $batch: training throughput ours/peer $(ratio "$best_ours" "$best_peer") (best of $rounds rounds)"
  done
elif [ "$mode" = converge ]; then
  /usr/bin/time -f %M -o "$out/peer.mem" "${peer[@]}" train --train "$data/train" --val "$data/val" \
    --test "$data/test" --out "$out/peer.csv" --threads "$threads" 2>/dev/null >"$out/peer.json"
  /usr/bin/time -f %M -o "$out/ours.mem" "$bin" train --train "$data/train" --val "$data/val" \
    --out "$out/ours" --threads "$threads" >/dev/null 2>&1
  "$bin" eval --model "$out/ours/best.safetensors" --data "$data/test" --threads "$threads" >"$out/ours.eval" 2>&1
  OPENBLAS_CORETYPE=Haswell "${peer[@]}" train --train "$data/train" --val "$data/val" --stop-at 0.99 \
    --out "$out/peer-avx2.csv" --threads "$threads" >/dev/null 2>&1
  echo "peer: 99% validation at $(time_to_99 "$out/peer.csv"); $(tail -1 "$out/peer.json"); peak $(peak_mib "$out/peer.mem") MiB"
  echo "peer, OPENBLAS_CORETYPE=Haswell: 99% validation at $(time_to_99 "$out/peer-avx2.csv")"
  echo "ours: 99% validation at $(time_to_99 "$out/ours/metrics.csv"); test $(grep -m1 'exact match' "$out/ours.eval");" \
    "$(tail -1 "$out/ours/metrics.csv" | cut -d, -f1,8 | sed 's/,/ epochs, /') s; peak $(peak_mib "$out/ours.mem") MiB"
  echo "learning curves (epoch,train_loss,val_loss,val_exact_match,val_cer,learning_rate,images_per_second,elapsed_seconds):"
  echo "-- peer"; cat "$out/peer.csv"
  echo "-- peer, OPENBLAS_CORETYPE=Haswell"; cat "$out/peer-avx2.csv"
  echo "-- ours"; cat "$out/ours/metrics.csv"
else
  echo "usage: bench/train_vs_pytorch.sh throughput|converge [THREADS] [ROUNDS]" >&2
  exit 2
fi
