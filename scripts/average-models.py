#!/usr/bin/python3
"""Averages the weights of two model files of one architecture (a fine-tuned model and the model it
started from, say): every float tensor becomes (1 - W) * A + W * B; everything else is A's. The
metadata is A's, with `training.averaged` naming B and W.

  scripts/average-models.py A.safetensors B.safetensors --weight W --out OUT.safetensors
"""
import argparse
import json
import os
import struct
import sys

import numpy as np


class Failure(Exception):
    pass


def load(path):
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise Failure(f"{path}: cannot read ({e.strerror})")
    if len(raw) < 8:
        raise Failure(f"{path}: not a safetensors file (shorter than its header length)")
    size = struct.unpack("<Q", raw[:8])[0]
    if size > len(raw) - 8:
        raise Failure(f"{path}: header of {size} bytes runs past the end of the file")
    try:
        header = json.loads(raw[8:8 + size])
    except ValueError:
        raise Failure(f"{path}: header is not JSON")
    if "__metadata__" not in header or "architecture" not in header["__metadata__"]:
        raise Failure(f"{path}: not a captcha-ocr model file (no architecture in its metadata)")
    return raw, size, header


def tensor(path, raw, size, entry, name):
    start, end = entry["data_offsets"]
    if not 0 <= start <= end <= len(raw) - 8 - size:
        raise Failure(f"{path}: tensor {name} lies outside the file")
    return raw[8 + size + start:8 + size + end]


def average(a_path, b_path, weight):
    a_raw, a_size, a = load(a_path)
    b_raw, b_size, b = load(b_path)
    a_meta, b_meta = a["__metadata__"], b["__metadata__"]
    for key in sorted(set(a_meta) | set(b_meta)):
        if key != "training" and a_meta.get(key) != b_meta.get(key):
            raise Failure(f"{b_path}: metadata {key} differs from {a_path}'s; only models of one design average")
    names = sorted(k for k in a if k != "__metadata__")
    if names != sorted(k for k in b if k != "__metadata__"):
        raise Failure(f"{b_path}: holds other tensors than {a_path}")
    body = bytearray(a_raw[8 + a_size:])
    for name in names:
        ta, tb = a[name], b[name]
        if ta["dtype"] != tb["dtype"] or ta["shape"] != tb["shape"]:
            raise Failure(f"{b_path}: tensor {name} is {tb['dtype']} {tb['shape']}, "
                          f"{a_path}'s is {ta['dtype']} {ta['shape']}")
        if ta["dtype"] != "F32":
            continue
        x = np.frombuffer(tensor(a_path, a_raw, a_size, ta, name), dtype="<f4")
        y = np.frombuffer(tensor(b_path, b_raw, b_size, tb, name), dtype="<f4")
        start, end = ta["data_offsets"]
        body[start:end] = ((1 - weight) * x.astype(np.float64) + weight * y).astype("<f4").tobytes()
    training = json.loads(a_meta.get("training", "{}"))
    training["averaged"] = {"with": b_path, "weight": weight}
    a_meta["training"] = json.dumps(training, separators=(",", ":"))
    header = json.dumps(a, separators=(",", ":")).encode()
    header += b" " * (-len(header) % 8)
    return struct.pack("<Q", len(header)) + header + bytes(body)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("a")
    parser.add_argument("b")
    parser.add_argument("--weight", type=float, required=True, help="B's share, 0 to 1")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    try:
        if not 0 <= args.weight <= 1:
            raise Failure(f"--weight must be between 0 and 1 (got {args.weight})")
        data = average(args.a, args.b, args.weight)
        temporary = args.out + ".partial"
        with open(temporary, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, args.out)
    except (Failure, OSError) as e:
        print(f"average-models: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
