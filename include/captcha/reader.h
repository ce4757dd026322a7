// Reading many images at once and measuring a model on a labelled folder. Images (files or
// encoded bytes) are decoded and preprocessed in parallel and read in batches; each gets its
// reading or its own one-line error, so one bad image never costs the others their results.
// The command-line tool's predict and eval, the service and the Python module read through here.
//
//   captcha::Recogniser recogniser("model.safetensors");
//   for (const captcha::ReadResult& r : captcha::read_files(recogniser, {"a.png", "b.jpg"}))
//     std::cout << r.source << "\t" << (r.ok() ? r.reading.text : r.error) << "\n";
//
//   captcha::Evaluation e = captcha::evaluate(recogniser, "data/test");
//   std::cout << e.figures.exact_match << " of " << e.figures.count << "\n";
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "captcha/dataset.h"
#include "captcha/metrics.h"
#include "captcha/recogniser.h"

namespace captcha {

// One image to read: the file `name`, `bytes` (an encoded image: PNG, JPEG, WebP, BMP, ...) or
// `pixels` (an image already decoded: grey, grey + alpha, BGR or BGRA), named `name` in messages.
struct ImageInput {
  std::string name;
  std::optional<std::vector<std::uint8_t>> bytes;
  std::optional<Image> pixels;

  static ImageInput file(std::string path) { return {std::move(path), std::nullopt, std::nullopt}; }
  static ImageInput encoded(std::string name, std::vector<std::uint8_t> bytes) {
    return {std::move(name), std::move(bytes), std::nullopt};
  }
  static ImageInput decoded(std::string name, Image pixels) {
    return {std::move(name), std::nullopt, std::move(pixels)};
  }
};

struct ReadResult {
  std::string source;  // the input's name
  Reading reading;     // where ok()
  std::string error;   // one line naming the source and the problem; empty where read
  bool ok() const { return error.empty(); }
};

struct BatchOptions {
  ReadOptions read;
  int threads = 0;        // decoding and preprocessing threads (<= 0: every core)
  std::string debug_dir;  // where given, each preprocessed image is written as <dir>/<stem>.png
  ImageLimits limits;     // inputs over these are refused (their result's error), not decoded
};

// Reads `inputs` in chunks of options.read.batch_size images (so memory stays bounded for any
// number of inputs), calling `on_result(index, result)` for each input in order, a chunk at a
// time. Never throws for one input's failure (it becomes that result's error); throws Error
// only where nothing can be read (e.g. the debug folder cannot be written).
void read_images(const Recogniser& recogniser, const std::vector<ImageInput>& inputs,
                 const BatchOptions& options,
                 const std::function<void(std::size_t index, const ReadResult& result)>& on_result);

// As above, collecting the results in input order.
std::vector<ReadResult> read_images(const Recogniser& recogniser, const std::vector<ImageInput>& inputs,
                                    const BatchOptions& options = {});
std::vector<ReadResult> read_files(const Recogniser& recogniser, const std::vector<std::string>& paths,
                                   const BatchOptions& options = {});

// One labelled image as read in an evaluation.
struct ScoredReading {
  std::string path;
  std::string truth;    // the label
  std::string reading;  // what was read
  float confidence = 0;
  bool correct = false;  // the reading equals the label (ignoring case where the evaluation does)
};

struct Evaluation {
  EvaluationReport figures;            // exact match, CER, confusions, ...
  SkipReport skipped;                  // images that could not be read
  bool case_insensitive = false;       // scored ignoring case (asked, or the model folds case)
  std::vector<ScoredReading> readings;  // in the folder's order

  std::size_t misread_count() const;
};

// Reads every labelled image of `folder` (see scan_folder) and scores the readings. Case is
// ignored where `case_insensitive` or the model folds case. Throws DatasetError naming the
// folder when it holds no readable image (unreadable ones are counted in `skipped`).
Evaluation evaluate(const Recogniser& recogniser, const std::string& folder, const BatchOptions& options = {},
                    bool case_insensitive = false);

// A model read in float and with int8 products on one labelled folder: the check of an int8
// model file on the user's own images before it replaces the float one.
struct PrecisionComparison {
  Evaluation float32, int8;
  std::size_t same_text = 0;  // images both read alike
};
PrecisionComparison compare_int8(const std::string& model_path, const std::string& folder,
                                 const BatchOptions& options = {}, bool case_insensitive = false);

// The misread images as TSV (path, truth, reading, confidence), with a header line. Throws Error
// naming `path` when it cannot be written.
void write_misreads(const Evaluation& evaluation, const std::string& path);

}  // namespace captcha
