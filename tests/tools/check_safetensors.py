#!/usr/bin/env python3
"""Checks a file against the published safetensors layout rules, independently of captcha-ocr's
C++ reader, using only the Python standard library:

- 8-byte little-endian header length N, then N bytes of UTF-8 JSON (an object), then the data;
- every entry but "__metadata__" has dtype, shape and data_offsets [begin, end) within the data;
- end - begin == product(shape) * dtype size;
- the data is entirely indexed: offsets sorted by begin leave no hole and no overlap;
- "__metadata__", if present, maps strings to strings.

Prints the tensor count and metadata keys; exits 1 with a message on the first violation.
Usage: check_safetensors.py FILE
"""
import json
import struct
import sys

DTYPE_SIZES = {"BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "I16": 2, "U16": 2,
               "F16": 2, "BF16": 2, "I32": 4, "U32": 4, "F32": 4, "F64": 8, "I64": 8, "U64": 8}


def fail(message):
    print(f"check_safetensors: {message}", file=sys.stderr)
    sys.exit(1)


def main(path):
    with open(path, "rb") as f:
        blob = f.read()
    if len(blob) < 8:
        fail("shorter than the 8-byte header length")
    (header_len,) = struct.unpack("<Q", blob[:8])
    if 8 + header_len > len(blob):
        fail("header runs past the end of the file")
    header = json.loads(blob[8:8 + header_len].decode("utf-8"))
    if not isinstance(header, dict):
        fail("header is not a JSON object")
    data_len = len(blob) - 8 - header_len
    metadata = header.pop("__metadata__", {})
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
        fail("__metadata__ must map strings to strings")
    spans = []
    for name, entry in header.items():
        dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
        if dtype not in DTYPE_SIZES:
            fail(f"{name}: unknown dtype {dtype}")
        count = 1
        for dim in shape:
            count *= dim
        begin, end = offsets
        if not 0 <= begin <= end <= data_len:
            fail(f"{name}: offsets {offsets} outside the data ({data_len} bytes)")
        if end - begin != count * DTYPE_SIZES[dtype]:
            fail(f"{name}: {end - begin} bytes for shape {shape} of {dtype}")
        spans.append((begin, end, name))
    position = 0
    for begin, end, name in sorted(spans):
        if begin != position:
            fail(f"{name}: hole or overlap at byte {position}")
        position = end
    if position != data_len:
        fail(f"{data_len - position} bytes of data are not indexed by any tensor")
    print(f"ok: {len(spans)} tensors, metadata keys: {', '.join(sorted(metadata))}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    main(sys.argv[1])
