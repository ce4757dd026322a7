#!/usr/bin/env python3
"""A model exported for ddddocr (`export --format ddddocr`), read the way ddddocr reads a model
of its own (DdddOcr(import_onnx_path=..., charsets_path=...)): PIL opens the image, resizes it
to height 64 keeping the aspect ratio (ANTIALIAS, i.e. Lanczos), converts it to grey, scales it to
(v / 255 - 0.456) / 0.224; ONNX Runtime (onnxruntime-node, bench/ort) runs it; the class indices
are decoded dropping repeats and the blank. Beside it, the same model read by captcha-ocr
(auto-crop, CLAHE, its own resize), on the same images.

  /usr/bin/python3 bench/ddddocr_export.py [MODEL] [FOLDER ...]
  defaults: models/general.safetensors and the four shared test folders (generic-text ones
  scored ignoring case, as bench/zero_shot.sh does). Needs build/ and bench/ort/node_modules
  (bench/inference_vs_onnxruntime.sh installs it).
"""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "build", "python"))
import captcha_ocr  # noqa: E402

SHARED = os.path.join(ROOT, "..", "shared", "data")
DEFAULT_FOLDERS = ["captcha-v2/test", "indiagov-real/test", "generic-text-lower/test", "generic-text-upper/test"]
ANTIALIAS = Image.LANCZOS  # what ddddocr's Image.ANTIALIAS is (Pillow renamed it)


def ddddocr_input(path):
    """ddddocr's preprocessing for an imported model with "image": [-1, 64], "channel": 1."""
    image = Image.open(path)
    image = image.resize((int(image.size[0] * (64 / image.size[1])), 64), ANTIALIAS).convert("L")
    array = np.array(image).astype(np.float32)
    array = np.expand_dims(array, axis=0) / 255.0
    return ((array - 0.456) / 0.224).astype(np.float32)


def main():
    model = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "models", "general.safetensors")
    folders = sys.argv[2:] or [os.path.join(SHARED, f) for f in DEFAULT_FOLDERS]
    folders = [f for f in folders if os.path.isdir(f)]
    if not folders:
        print("ddddocr_export: no test folder here (../shared/data absent); nothing measured")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        onnx = os.path.join(tmp, "model.onnx")
        subprocess.run([os.path.join(ROOT, "build", "captcha-ocr-read"), "export", "--model", model, "--format",
                        "ddddocr", "--out", onnx], check=True, capture_output=True)
        charset = json.load(open(os.path.join(tmp, "charsets.json"), encoding="utf-8"))["charset"]
        print(f"model {os.path.relpath(model, ROOT)}; exact match, case ignored for generic-text")
        print(f"{'folder':28} {'images':>6} {'captcha-ocr':>12} {'ddddocr path':>13} {'same text':>10}")
        for folder in folders:
            fold = "generic-text" in folder
            ours = captcha_ocr.evaluate(model, folder, case_insensitive=fold)
            manifest = []
            for i, (path, *_rest) in enumerate(ours.readings):
                tensor = ddddocr_input(path)
                file = os.path.join(tmp, f"{i}.f32")
                tensor.tofile(file)
                manifest.append([file, tensor.shape[-1]])
            with open(os.path.join(tmp, "manifest.json"), "w") as out:
                json.dump(manifest, out)
            lines = subprocess.run(["node", os.path.join(ROOT, "bench", "ort", "ddddocr.js"), onnx,
                                    os.path.join(tmp, "manifest.json")], check=True, capture_output=True,
                                   text=True).stdout.splitlines()
            right = same = 0
            for (path, truth, reading, _confidence, _correct), line in zip(ours.readings, lines):
                text, last = "", 0
                for item in json.loads(line):
                    if item != last and item != 0:
                        text += charset[item]
                    last = item
                key = (lambda s: s.lower()) if fold else (lambda s: s)
                right += key(text) == key(truth)
                same += key(text) == key(reading)
            n = len(ours.readings)
            print(f"{os.path.relpath(folder, SHARED) if folder.startswith(SHARED) else folder:28} {n:6} "
                  f"{100 * ours.exact_match:11.2f}% {100 * right / n:12.2f}% {same:10}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
