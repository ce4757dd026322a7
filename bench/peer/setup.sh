#!/usr/bin/env bash
# Installs what the PyTorch peer (bench/peer/crnn_peer.py) needs from Debian: python3-torch (1.13,
# the same version as libtorch-dev, on the same system BLAS) and python3-opencv, for Debian's
# /usr/bin/python3. Not part of scripts/setup.sh: only the benchmarks against PyTorch need them.
set -euo pipefail
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
if ! /usr/bin/python3 -c 'import torch, cv2, numpy' 2>/dev/null; then
  as_root apt-get update -q
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    python3-torch python3-opencv python3-numpy time
fi
/usr/bin/python3 -c 'import torch; print("peer: torch", torch.__version__, "on", torch.__config__.parallel_info().splitlines()[0])'
