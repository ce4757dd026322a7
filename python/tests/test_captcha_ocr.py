"""The Python package against the command-line tool: same readings, same figures, same errors.

Run by CTest (Python.captcha_ocr) with PYTHONPATH=build/python, CAPTCHA_OCR_ROOT (the source
tree) and CAPTCHA_OCR_BIN (the build folder)."""

import base64
import io
import json
import os
import pathlib
import subprocess
import threading

import numpy as np
import pytest
from PIL import Image

import captcha_ocr

ROOT = pathlib.Path(os.environ.get("CAPTCHA_OCR_ROOT", pathlib.Path(__file__).resolve().parents[2]))
BIN = pathlib.Path(os.environ.get("CAPTCHA_OCR_BIN", ROOT / "build"))
MODEL = ROOT / "models" / "general.safetensors"
EXAMPLES = ROOT / "examples"


def labelled_examples():
    rows = (line.split("\t") for line in (EXAMPLES / "labels.tsv").read_text().splitlines() if line)
    return [(EXAMPLES / name, label) for name, label in rows]


@pytest.fixture(scope="module")
def reader():
    return captcha_ocr.Reader(MODEL, threads=2)


def cli_predict(*paths):
    out = subprocess.run([str(BIN / "captcha-ocr-read"), "predict", "--model", str(MODEL), "--json", *map(str, paths)],
                         check=True, capture_output=True, text=True).stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def test_reads_the_examples_as_the_command_line_tool_does(reader):
    examples = labelled_examples()
    cli = cli_predict(*(path for path, _ in examples))
    assert len(cli) == len(examples)
    for (path, label), expected in zip(examples, cli):
        reading = reader.read(path)
        assert reading.text == expected["text"] == label
        assert reading.confidence == pytest.approx(expected["confidence"], abs=1e-5)
        assert [c for c, _ in reading.characters] == list(label)
        assert all(0 < p <= 1 for _, p in reading.characters)
        assert list(reading.case_probabilities) == pytest.approx([c["case_probability"] for c in expected["chars"]])
        assert all(p == 1 for (c, _), p in zip(reading.characters, reading.case_probabilities) if not c.isalpha())


def test_paths_bytes_arrays_and_pil_images_read_alike(reader):
    path, label = labelled_examples()[2]  # a colour example: the channel order matters
    data = path.read_bytes()
    pil = Image.open(io.BytesIO(data))
    rgb = np.asarray(pil.convert("RGB"))
    readings = [
        reader.read(str(path)), reader.read(path), reader.read(data), reader.read(bytearray(data)),
        reader.read(memoryview(data)), reader.read(rgb), reader.read(pil),
        reader.read(np.asarray(pil.convert("RGBA"))), reader.with_bgr().read(np.ascontiguousarray(rgb[:, :, ::-1])),
        reader.read(rgb[:, :, ::-1].copy()[:, :, ::-1]),  # strided
    ]
    for r in readings:  # the same pixels, made grey by the same code: the same reading
        assert r.text == label
        assert r.confidence == readings[0].confidence
    # PIL's own grey conversion rounds a little differently: the same text, nearly the same confidence.
    grey = reader.read(np.asarray(pil.convert("L")))
    assert grey.text == label
    assert grey.confidence == pytest.approx(readings[0].confidence, abs=1e-3)


def test_channel_order_is_honoured(reader):
    # Pure red and pure blue on white weigh differently in grey (0.299 against 0.114): swapping
    # the channels changes the grey image the model reads.
    image = np.full((50, 200, 3), 255, np.uint8)
    image[10:40, 20:100] = (255, 0, 0)
    image[10:40, 100:180] = (0, 0, 255)
    as_rgb = reader.read(image, probabilities=True).step_probabilities
    as_bgr = reader.with_bgr().read(image, probabilities=True).step_probabilities
    assert as_rgb != as_bgr
    assert reader.with_bgr().read(image[:, :, ::-1].copy(), probabilities=True).step_probabilities == as_rgb


def test_read_many_keeps_order_and_matches_single_reads(reader):
    examples = labelled_examples() * 5
    readings = reader.read_many(path.read_bytes() for path, _ in examples)
    assert [r.text for r in readings] == [label for _, label in examples]


def test_a_bad_image_costs_only_its_own_result(reader):
    path, label = labelled_examples()[0]
    good = path.read_bytes()
    inputs = [good, good[: len(good) // 3], b"not an image", str(EXAMPLES / "missing.png"), np.zeros((1, 5), np.uint8),
              np.zeros((10, 10), np.float32), 42, good]
    results = reader.read_many(inputs, errors="return")
    assert results[0].text == label and results[-1].text == label
    errors = results[1:-1]
    assert all(isinstance(e, captcha_ocr.ImageError) for e in errors)
    assert str(errors[0]).startswith("image 1:")
    assert str(errors[1]).startswith("image 2:")
    assert str(errors[2]).startswith(str(EXAMPLES / "missing.png"))
    assert "too small" in str(errors[3])
    assert "uint8" in str(errors[4])
    assert "int" in str(errors[5])
    with pytest.raises(captcha_ocr.ImageError, match="^image 1: "):
        reader.read_many(inputs)
    with pytest.raises(ValueError):
        reader.read_many(inputs, errors="ignore")


def test_errors_are_typed_and_name_the_file(tmp_path):
    with pytest.raises(captcha_ocr.ModelFileError, match="nothing.safetensors"):
        captcha_ocr.Reader(tmp_path / "nothing.safetensors")
    foreign = tmp_path / "foreign.safetensors"
    foreign.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{\"a\": 1}      ")
    with pytest.raises(captcha_ocr.ModelFileError, match="foreign.safetensors"):
        captcha_ocr.Reader(foreign)
    with pytest.raises(captcha_ocr.DatasetError, match=str(tmp_path)):
        captcha_ocr.evaluate(MODEL, tmp_path)
    with pytest.raises(captcha_ocr.ConfigError):
        captcha_ocr.Reader(MODEL, views=9)
    assert issubclass(captcha_ocr.ImageError, captcha_ocr.Error)
    assert issubclass(captcha_ocr.ModelFileError, captcha_ocr.Error)


def test_allowed_symbols_hold_the_reading(reader):
    path, label = labelled_examples()[1]  # C9CF8T
    digits = reader.with_allowed("0123456789").read(path)
    assert digits.text and set(digits.text) <= set("0123456789")
    assert captcha_ocr.Reader(MODEL, allowed="0123456789").read(path).text == digits.text


def test_evaluate_gives_the_command_line_figures():
    figures = captcha_ocr.evaluate(MODEL, EXAMPLES, threads=2)
    cli = json.loads(subprocess.run([str(BIN / "captcha-ocr-read"), "eval", "--model", str(MODEL), "--data",
                                     str(EXAMPLES), "--json"], check=True, capture_output=True, text=True).stdout)
    assert figures.count == cli["count"] == len(labelled_examples())
    assert figures.exact_match == pytest.approx(cli["exact_match"])
    assert figures.cer == pytest.approx(cli["cer"])
    assert figures.case_only_errors == cli["case_only_errors"]
    assert [tuple(b) for b in figures.case_calibration] == [
        pytest.approx((b["from"], b["to"], b["letters"], b["right_case"], b["mean_probability"]))
        for b in cli["case_calibration"]]
    assert sum(b[2] for b in figures.case_calibration) > 0
    assert len(figures.readings) == figures.count
    assert len(figures.misreads()) == round(figures.count * (1 - figures.exact_match))


def test_int8_reads_the_examples():
    r = captcha_ocr.Reader(MODEL, int8=True, threads=1)
    assert [x.text for x in r.read_many(p for p, _ in labelled_examples())] == [l for _, l in labelled_examples()]


def test_threads_may_share_a_reader(reader):
    examples = labelled_examples()
    expected = [label for _, label in examples]
    results, failures = [], []

    def work():
        try:
            for _ in range(3):
                results.append([r.text for r in reader.read_many(p.read_bytes() for p, _ in examples)])
        except Exception as e:  # noqa: BLE001 - reported below
            failures.append(e)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures
    assert results == [expected] * 12


def test_ddddocr_scripts_work_unchanged():
    path, label = labelled_examples()[1]
    data = path.read_bytes()
    ocr = captcha_ocr.DdddOcr(show_ad=False, model=str(MODEL))
    assert ocr.classification(data) == label
    assert ocr.classification(base64.b64encode(data).decode()) == label
    assert ocr.classification(pathlib.PurePath(path)) == label
    assert ocr.classification(Image.open(path)) == label
    assert ocr.classification(img_bytes=data) == label
    # What ddddocr's users do with probability=True: the most probable class per step, blanks
    # ("" first in charsets) and repeats dropped.
    result = ocr.classification(data, probability=True)
    assert result["charsets"][0] == "" and "".join(result["charsets"][1:]) == captcha_ocr.Reader(MODEL).charset
    steps = result["probability"]
    assert all(len(row) == len(result["charsets"]) and sum(row) == pytest.approx(1, abs=1e-4) for row in steps)
    best = [row.index(max(row)) for row in steps]
    greedy = "".join(result["charsets"][c] for i, c in enumerate(best) if c and (i == 0 or c != best[i - 1]))
    assert greedy == label
    ocr.set_ranges(0)
    assert set(ocr.classification(data)) <= set("0123456789")
    ocr.set_ranges("CF")
    assert set(ocr.classification(data)) <= set("CF")
    with pytest.raises(captcha_ocr.ConfigError):
        ocr.set_ranges(9)
    with pytest.raises(captcha_ocr.ConfigError):
        captcha_ocr.DdddOcr(det=True, show_ad=False, model=str(MODEL))


def test_the_bundled_model_is_found_by_default(monkeypatch):
    monkeypatch.setenv("CAPTCHA_OCR_MODEL", str(MODEL))
    assert captcha_ocr.default_model() == str(MODEL)
    path, label = labelled_examples()[0]
    assert captcha_ocr.Reader().read(path).text == label
