#!/usr/bin/env bash
# Builds the fuzz targets with clang (libFuzzer, address and undefined-behaviour sanitizers)
# into build-fuzz/ and runs each for SECONDS (default 600), JOBS at a time (default 1). New
# inputs go to build-fuzz/corpus/TARGET (the committed seeds in fuzz/corpus/TARGET are read, not
# written); a finding is written to build-fuzz/findings/TARGET/ and makes the script exit 1.
#
#   fuzz/run.sh [SECONDS] [TARGET...]      targets: image safetensors model labels ctc http (default all)
#   JOBS=2 fuzz/run.sh 600
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-600}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(image safetensors model labels ctc http)

CC=clang-14 CXX=clang++-14 cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCAPTCHA_WITH_TORCH=OFF -DCAPTCHA_FUZZ=ON >/dev/null
cmake --build build-fuzz -j "$(nproc)" --target "${targets[@]/#/fuzz_}"

run_one() {
  local target=$1 seconds=$2 dict=()
  mkdir -p "build-fuzz/corpus/$target" "build-fuzz/findings/$target"
  [ "$target" = model ] || [ "$target" = safetensors ] && dict=(-dict=fuzz/model.dict)
  local log="build-fuzz/findings/$target.log"
  # One thread in the engine: the fuzzer measures coverage per input, not speed.
  if OMP_NUM_THREADS=1 "build-fuzz/fuzz/fuzz_$target" "build-fuzz/corpus/$target" "fuzz/corpus/$target" \
      "${dict[@]}" -max_total_time="$seconds" -timeout=20 -rss_limit_mb=2048 -print_final_stats=1 \
      -artifact_prefix="build-fuzz/findings/$target/" >"$log" 2>&1; then
    local runs
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$')
    echo "$target: no finding in ${seconds} s, ${runs} executions, corpus $(ls "build-fuzz/corpus/$target" | wc -l) new inputs"
  else
    echo "$target: FINDING (see $log and build-fuzz/findings/$target/)"
    return 1
  fi
}
export -f run_one
printf '%s\n' "${targets[@]}" | xargs -P "${JOBS:-1}" -I{} bash -c 'run_one "$@"' _ {} "$seconds"
