#!/usr/bin/env bash
# scripts/average-models.py: the averaged tensors are the weighted mean of the two files', the
# result reads as a model file does, and foreign or mismatched files fail with a one-line error.
#
#   tests/average_models.sh READ_TOOL SOURCE_DIR PYTHON
set -euo pipefail
bin=$1 source=$2 python=$3
script=$source/scripts/average-models.py
model=$source/models/general.safetensors
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "average_models: $*" >&2; exit 1; }

# B: every float tensor of the bundled model times 3; C: one tensor left out.
"$python" - "$model" "$work" <<'PY'
import json, struct, sys
import numpy as np
model, work = sys.argv[1], sys.argv[2]
raw = open(model, "rb").read()
size = struct.unpack("<Q", raw[:8])[0]
header = json.loads(raw[8:8 + size])
body = bytearray(raw[8 + size:])
for name, t in header.items():
    if name != "__metadata__" and t["dtype"] == "F32":
        s, e = t["data_offsets"]
        body[s:e] = (np.frombuffer(raw[8 + size + s:8 + size + e], dtype="<f4") * 3).astype("<f4").tobytes()
open(work + "/b.safetensors", "wb").write(raw[:8 + size] + bytes(body))
name = next(k for k in header if k != "__metadata__")
del header[name]
text = json.dumps(header).encode()
text += b" " * (-len(text) % 8)
open(work + "/c.safetensors", "wb").write(struct.pack("<Q", len(text)) + text + bytes(body))
PY

"$python" "$script" "$model" "$work/b.safetensors" --weight 0.5 --out "$work/mean.safetensors"
"$python" - "$model" "$work/mean.safetensors" <<'PY' || fail "the mean of A and 3A is not 2A"
import json, struct, sys
import numpy as np
def tensors(path):
    raw = open(path, "rb").read()
    size = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + size])
    return header, {k: np.frombuffer(raw[8 + size + t["data_offsets"][0]:8 + size + t["data_offsets"][1]], dtype="<f4")
                    for k, t in header.items() if k != "__metadata__" and t["dtype"] == "F32"}
(_, a), (header, mean) = tensors(sys.argv[1]), tensors(sys.argv[2])
assert a.keys() == mean.keys() and len(a) > 10
for k in a:
    assert np.allclose(mean[k], 2 * a[k], rtol=1e-6, atol=1e-7), k
training = json.loads(header["__metadata__"]["training"])
assert training["averaged"]["weight"] == 0.5 and training["averaged"]["with"].endswith("b.safetensors"), training
PY

# Weight 0 keeps A's weights: the result reads the examples as A does.
"$python" "$script" "$model" "$work/b.safetensors" --weight 0 --out "$work/a.safetensors"
[ "$("$bin" predict --model "$work/a.safetensors" "$source/examples")" = "$("$bin" predict --model "$model" "$source/examples")" ] ||
  fail "weight 0 reads otherwise than the first model"

expect_error() {  # message-part args...
  local want=$1; shift
  if "$python" "$script" "$@" --out "$work/bad.safetensors" 2> "$work/err"; then fail "accepted: $*"; fi
  grep -qF -e "$want" "$work/err" || fail "for $*: expected '$want', got: $(cat "$work/err")"
  [ "$(wc -l < "$work/err")" -eq 1 ] || fail "more than one line: $(cat "$work/err")"
  [ ! -e "$work/bad.safetensors" ] || fail "wrote a file for: $*"
}
expect_error "$source/examples/clean-C9CF8T.png: header of" "$model" "$source/examples/clean-C9CF8T.png" --weight 0.3
expect_error "$work/c.safetensors: holds other tensors than" "$model" "$work/c.safetensors" --weight 0.3
expect_error "$work/none.safetensors: cannot read" "$model" "$work/none.safetensors" --weight 0.3
expect_error "--weight must be between 0 and 1" "$model" "$work/b.safetensors" --weight 1.5
echo "average_models: ok"
