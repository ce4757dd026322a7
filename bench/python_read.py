#!/usr/bin/env python3
"""Reading one image from Python against the engine's own figure, in one run:

- `captcha-ocr-read bench --batch 1`: one forward pass of a prepared image (median);
- captcha_ocr.Reader.read() of the image's bytes: decoding, preprocessing, the forward pass and
  CTC decoding, plus the binding (median of many calls);
- the same for a decoded NumPy array, and read_many([]) (the binding's own cost: argument
  conversion, the GIL released and taken back);
- read_many of 64 images, per image.

  /usr/bin/python3 bench/python_read.py [MODEL] [THREADS] [CALLS]
  defaults: models/general.safetensors, 2, 2000; needs build/python (the Python package).
"""
import json
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "build", "python"))
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

import captcha_ocr  # noqa: E402


def median_us(call, calls):
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        call()
        times.append((time.perf_counter() - start) * 1e6)
    return statistics.median(times), min(times)


def main():
    model = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "models", "general.safetensors")
    threads = int(sys.argv[2]) if len(sys.argv) > 2 else 2
    calls = int(sys.argv[3]) if len(sys.argv) > 3 else 2000
    image = os.path.join(ROOT, "examples", "clean-C9CF8T.png")
    cpu = open("/proc/cpuinfo").read().split("model name")[1].split(":")[1].split("\n")[0].strip()
    print(f"CPU: {cpu}; {threads} threads; {calls} calls each; model {os.path.relpath(model, ROOT)}")

    engine = json.loads(subprocess.run([os.path.join(ROOT, "build", "captcha-ocr-read"), "bench", "--model", model,
                                        "--batch", "1", "--threads", str(threads), "--json"],
                                       check=True, capture_output=True, text=True).stdout)
    forward_us = engine["median_ms"] * 1000

    reader = captcha_ocr.Reader(model, threads=threads)
    data = open(image, "rb").read()
    pixels = np.asarray(Image.open(image).convert("RGB"))
    for _ in range(50):
        reader.read(data)
    rows = [
        ("bench --batch 1 (forward pass only)", (forward_us, forward_us)),
        ("Reader.read(bytes)", median_us(lambda: reader.read(data), calls)),
        ("Reader.read(NumPy RGB array)", median_us(lambda: reader.read(pixels), calls)),
        ("Reader.read_many([]) (the binding alone)", median_us(lambda: reader.read_many([]), calls)),
    ]
    batch = [data] * 64
    per_call, best = median_us(lambda: reader.read_many(batch), max(10, calls // 64))
    rows.append(("Reader.read_many(64 x bytes), per image", (per_call / 64, best / 64)))
    print(f"{'':44} {'median us':>10} {'best us':>10}")
    for name, (median, best) in rows:
        print(f"{name:44} {median:10.1f} {best:10.1f}")
    read_us = rows[1][1][0]
    print(f"read(bytes) - forward pass: {read_us - forward_us:.1f} us "
          f"(decoding, preprocessing, CTC decoding and the binding)")


if __name__ == "__main__":
    main()
