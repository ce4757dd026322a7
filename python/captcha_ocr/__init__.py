"""Read text CAPTCHAs with captcha-ocr's models, from Python.

    import captcha_ocr
    reader = captcha_ocr.Reader("models/general.safetensors")
    reading = reader.read("captcha.png")          # a path, bytes, a NumPy array or a PIL image
    print(reading.text, reading.confidence)
    readings = reader.read_many(list_of_images)   # batched, on every core, without the GIL

    figures = captcha_ocr.evaluate("models/general.safetensors", "data/test")
    print(figures.exact_match, figures.cer)

Scripts written for ddddocr switch by changing one import:

    from captcha_ocr import DdddOcr
    ocr = DdddOcr(show_ad=False)
    text = ocr.classification(image_bytes)

Errors are captcha_ocr.Error and its subclasses (ImageError, ModelFileError, DatasetError,
ConfigError), with the command-line tool's one-line messages.
"""

import base64
import io
import os
import pathlib
from typing import Iterable, List, NamedTuple, Optional, Sequence, Tuple, Union

from . import _native
from ._native import ConfigError, DatasetError, Error, ImageError, ModelFileError

__all__ = [
    "Reader", "Reading", "Evaluation", "evaluate", "DdddOcr", "default_model",
    "Error", "ImageError", "ModelFileError", "DatasetError", "ConfigError",
]


def default_model() -> str:
    """The bundled general model: $CAPTCHA_OCR_MODEL, or the file installed or built beside
    this package."""
    candidates = [os.environ.get("CAPTCHA_OCR_MODEL", "")]
    here = pathlib.Path(__file__).resolve().parent
    candidates += [str(here / "models" / "general.safetensors")]
    # The build tree (build/python/captcha_ocr) and an installed prefix (<prefix>/lib/python3/
    # dist-packages/captcha_ocr next to <prefix>/share/captcha-ocr).
    candidates += [str(parent / sub / "general.safetensors") for parent in here.parents[:5]
                   for sub in ("models", "share/captcha-ocr/models")]
    for candidate in candidates:
        if candidate and os.path.isfile(candidate):
            return candidate
    raise ModelFileError("no bundled model found: give the model file's path, or set CAPTCHA_OCR_MODEL")


class Reading(NamedTuple):
    """What was read from one image."""
    text: str
    confidence: float
    characters: List[Tuple[str, float]]  # each symbol of `text` with its probability
    step_probabilities: Optional[List[List[float]]] = None  # time steps x classes (blank first)
    # Each symbol's case probability: against the same letter in the other case (about 0.5
    # where the glyph does not show its case); 1 for symbols without another case.
    case_probabilities: Tuple[float, ...] = ()

    def __str__(self) -> str:
        return self.text


class Evaluation(NamedTuple):
    """A model's figures on a labelled folder (fractions, not percentages)."""
    count: int
    skipped: int
    case_insensitive: bool
    exact_match: float
    exact_match_case_insensitive: float
    case_only_errors: int
    cer: float
    char_accuracy: float
    per_char_accuracy: dict
    confusions: List[Tuple[str, str, int]]  # (truth, reading, count), most frequent first
    readings: List[Tuple[str, str, str, float, bool]]  # (path, truth, reading, confidence, correct)
    # Letters by case probability: (from, to, letters, right_case, mean_probability) per bin
    # (scored with case only).
    case_calibration: List[Tuple[float, float, int, int, float]] = []

    def misreads(self) -> List[Tuple[str, str, str, float, bool]]:
        return [r for r in self.readings if not r[4]]


def _pixels_of(image):
    """A PIL image as a NumPy-free buffer the native module takes; other objects as they are."""
    if hasattr(image, "mode") and hasattr(image, "tobytes") and hasattr(image, "size"):
        if image.mode not in ("L", "RGB", "RGBA", "LA"):
            image = image.convert("RGBA" if "A" in image.mode or "transparency" in image.info else "RGB")
        channels = {"L": 1, "LA": 2, "RGB": 3, "RGBA": 4}[image.mode]
        width, height = image.size
        view = memoryview(image.tobytes())
        return view.cast("B", (height, width, channels))
    return image


Image = Union[str, os.PathLike, bytes, bytearray, memoryview, object]


class Reader:
    """A loaded model, ready to read. One Reader may be used from several threads at once.

    model: a model file (default: the bundled general model), or a list of files read as one
    ensemble. allowed: symbols the readings may use ("" or None: the model's whole charset).
    views: views of each image averaged (1-7; None: the model's own choice). int8: 8-bit
    products (faster on CPUs with VNNI). threads: the engine's threads (0: every core).
    bgr: arrays of 3 or 4 channels are in OpenCV's BGR order (default: RGB, as from PIL).
    """

    def __init__(self, model: Union[str, os.PathLike, Sequence[Union[str, os.PathLike]], None] = None,
                 allowed: Optional[str] = None, views: Optional[int] = None, *, int8: bool = False,
                 threads: int = 0, beam_width: int = 10, any_length: bool = False, bgr: bool = False):
        if model is None:
            model = default_model()
        models = [os.fspath(model)] if isinstance(model, (str, os.PathLike)) else [os.fspath(m) for m in model]
        self._native = _native.Reader(models, threads, int8)
        self.bgr = bgr
        self.models = models
        self._set(allowed=allowed or "", views=views or 0, beam_width=beam_width, any_length=any_length)

    def _set(self, **settings) -> None:
        self._settings = settings
        self._options = _native.ReadOptions(**settings)
        self._probabilities = _native.ReadOptions(**settings, step_probabilities=True)

    def _copy(self) -> "Reader":
        other = Reader.__new__(Reader)
        other.__dict__.update(self.__dict__)
        return other

    def with_allowed(self, allowed: Optional[str]) -> "Reader":
        """This reader (the same loaded model) with readings held to `allowed`'s symbols."""
        other = self._copy()
        other._set(**dict(self._settings, allowed=allowed or ""))
        return other

    def with_bgr(self, bgr: bool = True) -> "Reader":
        """This reader (the same loaded model) taking 3- and 4-channel arrays in OpenCV's BGR order."""
        other = self._copy()
        other.bgr = bgr
        return other

    @property
    def charset(self) -> str:
        """The symbols the model reads (the network's classes after the CTC blank)."""
        return self._native.charset

    @property
    def fold_case(self) -> bool:
        return self._native.fold_case

    @property
    def label_lengths(self) -> Tuple[int, int]:
        return self._native.label_lengths

    @property
    def input_size(self) -> Tuple[int, int]:
        return self._native.input_size

    def read(self, image: Image, *, probabilities: bool = False) -> Reading:
        """Reads one image: a path, the bytes of an encoded image (PNG, JPEG, WebP, BMP, GIF, ...),
        a uint8 array (height x width, or height x width x 1-4 channels) or a PIL image. Raises
        ImageError naming the problem."""
        return self.read_many([image], probabilities=probabilities)[0]

    def read_many(self, images: Iterable[Image], *, errors: str = "raise",
                  probabilities: bool = False) -> List[Union[Reading, ImageError]]:
        """Reads many images in batches on the engine's threads, without holding the GIL.

        errors="raise": the first image that cannot be read raises its ImageError (the others
        are still read first). errors="return": its place in the list holds the ImageError."""
        if errors not in ("raise", "return"):
            raise ValueError('errors must be "raise" or "return"')
        items = [_pixels_of(image) for image in images]
        options = self._probabilities if probabilities else self._options
        out = self._native.read_many(items, options, self.bgr, Reading)
        for i, result in enumerate(out):
            if isinstance(result, str):
                if errors == "raise":
                    raise ImageError(result)
                out[i] = ImageError(result)
        return out

    def __repr__(self) -> str:
        return f"captcha_ocr.Reader({self.models!r})"


def evaluate(model: Union[str, os.PathLike, Sequence[Union[str, os.PathLike]], None], folder: Union[str, os.PathLike],
             *, case_insensitive: bool = False, int8: bool = False, threads: int = 0,
             allowed: Optional[str] = None, views: Optional[int] = None, beam_width: int = 10) -> Evaluation:
    """Reads every labelled image of `folder` (label = file name, or labels.tsv) and scores the
    readings as `captcha-ocr eval` does. Raises DatasetError when nothing in it can be read."""
    if model is None:
        model = default_model()
    models = [os.fspath(model)] if isinstance(model, (str, os.PathLike)) else [os.fspath(m) for m in model]
    options = _native.ReadOptions(allowed=allowed or "", views=views or 0, beam_width=beam_width)
    figures = _native.evaluate(models, os.fspath(folder), case_insensitive, int8, threads, options)
    return Evaluation(**figures)


# ddddocr's set_ranges presets, by number.
_DDDDOCR_RANGES = {
    0: "0123456789",
    1: "abcdefghijklmnopqrstuvwxyz",
    2: "ABCDEFGHIJKLMNOPQRSTUVWXYZ",
    3: "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ",
    4: "abcdefghijklmnopqrstuvwxyz0123456789",
    5: "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789",
    6: "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789",
}


class DdddOcr:
    """ddddocr's DdddOcr for text CAPTCHAs, reading with a captcha-ocr model:
    `DdddOcr(show_ad=False).classification(image_bytes)` returns the text.

    classification takes what ddddocr's does (bytes, a base64 str, a path, a PIL image) and
    `probability=True` returns {"charsets": [...], "probability": [[...], ...]} with the blank ""
    first, as ddddocr does. set_ranges takes ddddocr's numbered presets (0-6; 7, "no letters or
    digits", reads nothing the general model knows) or a string of symbols.
    Detection and slide matching are not provided."""

    def __init__(self, ocr: bool = True, det: bool = False, old: bool = False, beta: bool = False,
                 use_gpu: bool = False, device_id: int = 0, show_ad: bool = True, import_onnx_path: str = "",
                 charsets_path: str = "", model: Optional[str] = None, **reader_options):
        if det or not ocr:
            raise ConfigError("captcha_ocr.DdddOcr reads text only (ocr=True, det=False)")
        if import_onnx_path or charsets_path:
            raise ConfigError("captcha_ocr.DdddOcr reads captcha-ocr model files: give model=, not import_onnx_path")
        self._model_reader = Reader(model, **reader_options)
        self._reader = self._model_reader

    def set_ranges(self, charset_range: Union[int, str]) -> None:
        if isinstance(charset_range, int):
            if charset_range == 7:
                charset_range = "".join(c for c in self._model_reader.charset if not c.isascii() or not c.isalnum())
            elif charset_range not in _DDDDOCR_RANGES:
                raise ConfigError(f"set_ranges: no preset {charset_range} (0-7)")
            else:
                charset_range = _DDDDOCR_RANGES[charset_range]
        allowed = "".join(c for c in charset_range if c in self._model_reader.charset)
        if not allowed:
            raise ConfigError(f"set_ranges: none of {charset_range!r} is in the model's charset")
        self._reader = self._model_reader.with_allowed(allowed)

    def classification(self, img=None, png_fix: bool = False, probability: bool = False, *,
                       img_bytes: Optional[bytes] = None, img_base64: Optional[str] = None):
        if img is None:
            img = img_bytes if img_bytes is not None else img_base64
        if isinstance(img, str) and not os.path.isfile(img):
            try:
                img = base64.b64decode(img, validate=False)
            except ValueError as e:
                raise ImageError(f"image: not base64 ({e})") from None
        elif isinstance(img, pathlib.PurePath):
            img = os.fspath(img)
        reading = self._reader.read(img, probabilities=probability)
        if not probability:
            return reading.text
        return {"charsets": [""] + list(self._reader.charset), "probability": reading.step_probabilities}
