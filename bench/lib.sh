# Shared by the bench scripts: `source "$(dirname "$0")/lib.sh"` after `cd` to the repository root.

# Sets $data to ../shared/data/captcha-v2, or exits 0 with a message where it is absent (a fresh
# clone without ../shared).
require_captcha_v2() {
  data=../shared/data/captcha-v2
  if [ ! -d "$data/train" ]; then
    echo "bench: $data is absent; nothing to measure" >&2
    exit 0
  fi
}

# Median of column $2 of a metrics.csv ($1) over the epochs after the first (the warm-up).
median_after_first_epoch() {
  tail -n +3 "$1" | cut -d, -f"$2" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'
}
