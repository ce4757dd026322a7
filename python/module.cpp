// captcha_ocr._native: the reading library (captcha/reader.h) for Python. The package around it
// (captcha_ocr/__init__.py) adds what is easier said in Python: PIL images, the error policy of
// read_many and the ddddocr-style class.
//
// Inputs are converted while the GIL is held (bytes-like objects are copied, arrays are copied
// into images); reading then runs without it, on the engine's threads.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <string>
#include <vector>

#include "captcha/errors.h"
#include "captcha/reader.h"
#include "captcha/recogniser.h"
#include "captcha/utf8.h"

namespace py = pybind11;

namespace captcha {
namespace {

// The reading library's options for `options`, decoding and preprocessing on `threads`.
BatchOptions batch_options(const ReadOptions& options, int threads) {
  BatchOptions batch;
  batch.threads = threads;
  batch.read = options;
  return batch;
}

// A decoded image from an object with the buffer protocol (a NumPy array, say): uint8, height x
// width (grey) or height x width x 1-4 channels, any strides. `bgr`: a 3- or 4-channel array is
// in OpenCV's order; otherwise RGB(A), as NumPy arrays from PIL, imageio and Matplotlib are.
Image image_from_buffer(const py::buffer& object, const std::string& name, bool bgr) {
  const py::buffer_info info = object.request();
  if (info.itemsize != 1 || (info.format != "B" && info.format != "b" && info.format != "c"))
    throw ImageError(name + ": an image array must hold uint8 values, not '" + info.format + "'");
  if (info.ndim != 2 && info.ndim != 3)
    throw ImageError(name + ": an image array must be height x width or height x width x channels, not " +
                     std::to_string(info.ndim) + "-dimensional");
  const py::ssize_t channels = info.ndim == 3 ? info.shape[2] : 1;
  if (channels < 1 || channels > 4)
    throw ImageError(name + ": an image array must have 1 to 4 channels, not " + std::to_string(channels));
  const py::ssize_t height = info.shape[0], width = info.shape[1];
  if (height < 2 || width < 2 || height > (1 << 20) || width > (1 << 20))
    throw ImageError(name + ": image is " + std::to_string(width) + "x" + std::to_string(height) +
                     " pixels, too small or too large to read");
  Image image(static_cast<int>(width), static_cast<int>(height), static_cast<int>(channels));
  const auto* base = static_cast<const std::uint8_t*>(info.ptr);
  const py::ssize_t channel_stride = info.ndim == 3 ? info.strides[2] : 0;
  const bool swap = !bgr && channels >= 3;  // RGB(A) -> BGR(A)
  for (py::ssize_t y = 0; y < height; ++y)
    for (py::ssize_t x = 0; x < width; ++x) {
      const std::uint8_t* pixel = base + y * info.strides[0] + x * info.strides[1];
      for (py::ssize_t c = 0; c < channels; ++c) {
        const py::ssize_t from = swap && c < 3 ? 2 - c : c;
        image.at(static_cast<int>(x), static_cast<int>(y), static_cast<int>(c)) = pixel[from * channel_stride];
      }
    }
  return image;
}

// One Python object as an input: bytes, bytearray or memoryview of an encoded image; str or
// os.PathLike naming a file; any other buffer (a NumPy array) as pixels.
ImageInput input_from(const py::handle& object, std::size_t index, bool bgr) {
  const std::string name = "image " + std::to_string(index);
  if (py::isinstance<py::bytes>(object) || py::isinstance<py::bytearray>(object) ||
      py::isinstance<py::memoryview>(object)) {
    const py::buffer_info info = py::reinterpret_borrow<py::buffer>(object).request();
    if (info.ndim > 1 && info.itemsize == 1)  // a memoryview of an array: pixels
      return ImageInput::decoded(name, image_from_buffer(py::reinterpret_borrow<py::buffer>(object), name, bgr));
    const auto* data = static_cast<const std::uint8_t*>(info.ptr);
    return ImageInput::encoded(name, std::vector<std::uint8_t>(data, data + info.size * info.itemsize));
  }
  if (py::isinstance<py::str>(object) || py::hasattr(object, "__fspath__")) {
    const py::object path = py::module_::import("os").attr("fspath")(object);
    if (!py::isinstance<py::str>(path)) throw ImageError(name + ": a path must be text, not bytes");
    return ImageInput::file(path.cast<std::string>());
  }
  if (PyObject_CheckBuffer(object.ptr()))
    return ImageInput::decoded(name, image_from_buffer(py::reinterpret_borrow<py::buffer>(object), name, bgr));
  throw ImageError(name + ": cannot read a " + std::string(py::str(object.get_type().attr("__name__"))) +
                   " (give bytes of an encoded image, a path, or a uint8 array)");
}

// The reading as Python sees it: text, confidence and each symbol with its probability.
py::object to_python(const Reading& reading, const py::object& reading_type, int classes) {
  py::list characters;
  const std::u32string symbols = utf8_to_u32(reading.text);
  for (std::size_t i = 0; i < symbols.size(); ++i)
    characters.append(py::make_tuple(u32_to_utf8(symbols[i]), reading.char_probabilities.at(i)));
  py::object steps = py::none();
  if (!reading.step_probabilities.empty()) {
    py::list rows;
    for (std::size_t start = 0; start < reading.step_probabilities.size(); start += classes)
      rows.append(py::cast(std::vector<float>(reading.step_probabilities.begin() + start,
                                              reading.step_probabilities.begin() + start + classes)));
    steps = rows;
  }
  return reading_type(reading.text, reading.confidence, characters, steps, py::tuple(py::cast(reading.case_probabilities)));
}

class PyReader {
 public:
  PyReader(const std::vector<std::string>& models, int threads, bool int8)
      : recogniser_(models, threads, int8 ? Precision::kInt8 : Precision::kFloat32), threads_(threads) {}

  // Each input's Reading (made by `reading_type`), or its error message as a str.
  py::list read_many(const py::iterable& images, const ReadOptions& options, bool bgr,
                     const py::object& reading_type) const {
    std::vector<ImageInput> inputs;
    std::vector<std::string> refused;  // by index; inputs that could not even be converted
    for (const py::handle& object : images) {
      try {
        inputs.push_back(input_from(object, inputs.size(), bgr));
        refused.emplace_back();
      } catch (const ImageError& e) {
        inputs.push_back(ImageInput::encoded("image " + std::to_string(inputs.size()), {}));
        refused.emplace_back(e.what());
      }
    }
    std::vector<ReadResult> results;
    {
      py::gil_scoped_release unlocked;
      results = read_images(recogniser_, inputs, batch_options(options, threads_));
    }
    const int classes = recogniser_.model().charset.num_classes();
    py::list out;
    for (std::size_t i = 0; i < results.size(); ++i) {
      if (!refused[i].empty())
        out.append(py::str(refused[i]));
      else if (!results[i].ok())
        out.append(py::str(results[i].error));
      else
        out.append(to_python(results[i].reading, reading_type, classes));
    }
    return out;
  }

  std::string charset() const { return recogniser_.model().charset.symbols_utf8(); }
  bool fold_case() const { return recogniser_.model().fold_case; }
  std::pair<int, int> label_lengths() const {
    return {recogniser_.model().label_lengths.min, recogniser_.model().label_lengths.max};
  }
  std::pair<int, int> input_size() const {
    return {recogniser_.model().preprocess.width, recogniser_.model().preprocess.height};
  }
  int default_views() const { return recogniser_.model().reading_views; }
  int ensemble_size() const { return recogniser_.ensemble_size(); }

 private:
  Recogniser recogniser_;
  int threads_;
};

py::dict evaluate_folder(const std::vector<std::string>& models, const std::string& folder, bool case_insensitive,
                         bool int8, int threads, const ReadOptions& options) {
  Evaluation e;
  {
    py::gil_scoped_release unlocked;
    const Recogniser recogniser(models, threads, int8 ? Precision::kInt8 : Precision::kFloat32);
    e = evaluate(recogniser, folder, batch_options(options, threads), case_insensitive);
  }
  const EvaluationReport& r = e.figures;
  py::list readings;
  for (const ScoredReading& s : e.readings)
    readings.append(py::make_tuple(s.path, s.truth, s.reading, s.confidence, s.correct));
  py::list confusions;
  for (const Confusion& c : r.confusions) confusions.append(py::make_tuple(c.truth, c.reading, c.count));
  py::dict out;
  out["count"] = r.count;
  out["skipped"] = e.skipped.total();
  out["case_insensitive"] = e.case_insensitive;
  out["exact_match"] = r.exact_match;
  out["exact_match_case_insensitive"] = r.exact_match_case_insensitive;
  out["case_only_errors"] = r.case_only_errors;
  out["cer"] = r.cer;
  out["char_accuracy"] = r.char_accuracy;
  out["per_char_accuracy"] = r.per_char_accuracy;
  out["confusions"] = confusions;
  out["readings"] = readings;
  py::list calibration;
  for (const CaseBin& bin : r.case_calibration)
    calibration.append(py::make_tuple(bin.from, bin.to, bin.letters, bin.right_case, bin.mean_probability));
  out["case_calibration"] = calibration;
  return out;
}

ReadOptions read_options(const std::string& allowed, int views, int beam_width, bool any_length,
                         bool step_probabilities) {
  if (views < 0 || views > kMaxReadingViews)
    throw ConfigError("views must be 1 to " + std::to_string(kMaxReadingViews) + ", not " + std::to_string(views));
  ReadOptions options;
  options.allowed = allowed;
  options.views = views;
  options.beam_width = beam_width;
  options.any_length = any_length;
  options.step_probabilities = step_probabilities;
  return options;
}

}  // namespace
}  // namespace captcha

PYBIND11_MODULE(_native, m) {
  using namespace captcha;
  m.doc() = "captcha-ocr's reading library (use the captcha_ocr package)";

  // The Python classes mirror the C++ hierarchy; one translator picks the most derived.
  static py::exception<Error> error(m, "Error");
  static py::exception<ImageError> image_error(m, "ImageError", error.ptr());
  static py::exception<ModelFileError> model_error(m, "ModelFileError", error.ptr());
  static py::exception<DatasetError> dataset_error(m, "DatasetError", error.ptr());
  static py::exception<ConfigError> config_error(m, "ConfigError", error.ptr());
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const ImageError& e) {
      PyErr_SetString(image_error.ptr(), e.what());
    } catch (const ModelFileError& e) {
      PyErr_SetString(model_error.ptr(), e.what());
    } catch (const DatasetError& e) {
      PyErr_SetString(dataset_error.ptr(), e.what());
    } catch (const ConfigError& e) {
      PyErr_SetString(config_error.ptr(), e.what());
    } catch (const Error& e) {
      PyErr_SetString(error.ptr(), e.what());
    }
  });

  py::class_<ReadOptions>(m, "ReadOptions")
      .def(py::init(&read_options), py::arg("allowed") = "", py::arg("views") = 0,
           py::arg("beam_width") = kDefaultBeamWidth, py::arg("any_length") = false,
           py::arg("step_probabilities") = false);

  py::class_<PyReader>(m, "Reader")
      .def(py::init<const std::vector<std::string>&, int, bool>(), py::arg("models"), py::arg("threads") = 0,
           py::arg("int8") = false)
      .def("read_many", &PyReader::read_many, py::arg("images"), py::arg("options"), py::arg("bgr"),
           py::arg("reading_type"))
      .def_property_readonly("charset", &PyReader::charset)
      .def_property_readonly("fold_case", &PyReader::fold_case)
      .def_property_readonly("label_lengths", &PyReader::label_lengths)
      .def_property_readonly("input_size", &PyReader::input_size)
      .def_property_readonly("default_views", &PyReader::default_views)
      .def_property_readonly("ensemble_size", &PyReader::ensemble_size);

  m.def("evaluate", &evaluate_folder, py::arg("models"), py::arg("folder"), py::arg("case_insensitive"),
        py::arg("int8"), py::arg("threads"), py::arg("options"));
}
