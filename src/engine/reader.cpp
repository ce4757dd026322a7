// Reading many images in parallel batches with a result or an error each, and evaluation on a
// labelled folder.
#include "captcha/reader.h"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>

#include "captcha/errors.h"
#include "captcha/image_io.h"
#include "captcha/parallel.h"

namespace captcha {

namespace {

namespace fs = std::filesystem;

// The file name a debug image of `input` gets: its stem, keeping letters, digits, '.', '_' and
// '-' only (an encoded input's name may be anything, "<stdin>" say).
std::string debug_file_name(const ImageInput& input) {
  std::string stem;
  for (const char c : fs::path(input.name).stem().string())
    if (std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-') stem += c;
  return (stem.empty() ? "image" : stem) + ".png";
}

Image decode(const ImageInput& input, const ImageLimits& limits) {
  if (input.pixels) return to_grey(*input.pixels, input.name, limits);
  return input.bytes ? decode_image(*input.bytes, input.name, limits) : load_image(input.name, limits);
}

// Decodes and preprocesses inputs [first, first + count) in parallel; an input that fails keeps
// an empty image and its error (never empty).
void prepare_chunk(const Recogniser& recogniser, const std::vector<ImageInput>& inputs, std::size_t first,
                   std::size_t count, const BatchOptions& options, std::vector<Image>& images,
                   std::vector<std::string>& errors) {
  images.assign(count, Image());
  errors.assign(count, std::string());
  parallel_for(count, options.threads, [&](std::size_t i) {
    const ImageInput& input = inputs[first + i];
    try {
      images[i] = recogniser.prepare(decode(input, options.limits));
      if (!options.debug_dir.empty())
        write_image((fs::path(options.debug_dir) / debug_file_name(input)).string(), images[i]);
    } catch (const std::exception& e) {
      images[i] = Image();
      errors[i] = message_naming(input.name, e);
    }
  });
}

// read_images, preparing `chunk` inputs at a time (the forward passes take options.read.batch_size).
void read_in_chunks(const Recogniser& recogniser, const std::vector<ImageInput>& inputs, const BatchOptions& options,
                    std::size_t chunk, const std::function<void(std::size_t, const ReadResult&)>& on_result) {
  if (!options.debug_dir.empty()) {
    std::error_code ec;
    fs::create_directories(options.debug_dir, ec);
    if (!fs::is_directory(options.debug_dir)) throw Error(options.debug_dir + ": cannot create the debug image folder");
  }
  chunk = std::max<std::size_t>(chunk, 1);
  std::vector<Image> images;
  std::vector<std::string> errors;
  for (std::size_t first = 0; first < inputs.size(); first += chunk) {
    const std::size_t count = std::min(chunk, inputs.size() - first);
    prepare_chunk(recogniser, inputs, first, count, options, images, errors);
    std::vector<Image> readable;
    for (std::size_t i = 0; i < count; ++i)
      if (errors[i].empty()) readable.push_back(std::move(images[i]));
    const std::vector<Reading> readings = recogniser.read_prepared(readable, options.read);
    for (std::size_t i = 0, k = 0; i < count; ++i) {
      ReadResult result;
      result.source = inputs[first + i].name;
      if (!errors[i].empty()) {
        result.error = errors[i];
      } else {
        result.reading = readings[k++];
      }
      on_result(first + i, result);
    }
  }
}

}  // namespace

void read_images(const Recogniser& recogniser, const std::vector<ImageInput>& inputs, const BatchOptions& options,
                 const std::function<void(std::size_t, const ReadResult&)>& on_result) {
  read_in_chunks(recogniser, inputs, options, static_cast<std::size_t>(std::max(1, options.read.batch_size)), on_result);
}

std::vector<ReadResult> read_images(const Recogniser& recogniser, const std::vector<ImageInput>& inputs,
                                    const BatchOptions& options) {
  std::vector<ReadResult> results(inputs.size());
  read_images(recogniser, inputs, options, [&](std::size_t i, const ReadResult& r) { results[i] = r; });
  return results;
}

std::vector<ReadResult> read_files(const Recogniser& recogniser, const std::vector<std::string>& paths,
                                   const BatchOptions& options) {
  std::vector<ImageInput> inputs;
  inputs.reserve(paths.size());
  for (const auto& path : paths) inputs.push_back(ImageInput::file(path));
  return read_images(recogniser, inputs, options);
}

std::size_t Evaluation::misread_count() const {
  return static_cast<std::size_t>(
      std::count_if(readings.begin(), readings.end(), [](const ScoredReading& r) { return !r.correct; }));
}

Evaluation evaluate(const Recogniser& recogniser, const std::string& folder, const BatchOptions& options,
                    bool case_insensitive) {
  Evaluation evaluation;
  evaluation.case_insensitive = case_insensitive || recogniser.model().fold_case;
  MetricsAccumulator metrics(evaluation.case_insensitive);
  SkipReport& skipped = evaluation.skipped;
  // A label that cannot be scored is counted and named as training counts it.
  std::vector<Sample> samples;
  for (Sample& sample : scan_folder(folder))
    if (has_usable_label(sample, skipped)) samples.push_back(std::move(sample));
  std::vector<ImageInput> inputs;
  inputs.reserve(samples.size());
  for (const auto& sample : samples) inputs.push_back(ImageInput::file(sample.path));
  // The whole folder prepared as one chunk, so that every batch but the last is full.
  std::vector<ReadResult> results(inputs.size());
  read_in_chunks(recogniser, inputs, options, inputs.size(),
                 [&](std::size_t i, const ReadResult& r) { results[i] = r; });
  const auto scored = [&](const std::string& text) { return evaluation.case_insensitive ? fold_label(text) : text; };
  for (std::size_t i = 0; i < samples.size(); ++i) {
    const ReadResult& result = results[i];
    if (!result.ok()) {
      skipped.add(skipped.unreadable, result.error);
      continue;
    }
    const Sample& sample = samples[i];
    metrics.add(sample.label, result.reading.text, result.reading.case_probabilities);
    evaluation.readings.push_back({sample.path, sample.label, result.reading.text, result.reading.confidence,
                                   scored(sample.label) == scored(result.reading.text)});
  }
  if (evaluation.readings.empty()) throw DatasetError(folder + ": no readable image; " + skipped.summary());
  evaluation.figures = metrics.report();
  return evaluation;
}

void write_misreads(const Evaluation& evaluation, const std::string& path) {
  std::ofstream out(path);
  if (!out) throw Error(path + ": cannot write the errors file");
  out << "path\ttruth\treading\tconfidence\n";
  for (const auto& r : evaluation.readings)
    if (!r.correct) out << r.path << '\t' << r.truth << '\t' << r.reading << '\t' << r.confidence << '\n';
  if (!out.flush()) throw Error(path + ": cannot write the errors file");
}

PrecisionComparison compare_int8(const std::string& model_path, const std::string& folder, const BatchOptions& options,
                                 bool case_insensitive) {
  PrecisionComparison out;
  out.float32 = evaluate(Recogniser(model_path, options.threads), folder, options, case_insensitive);
  out.int8 = evaluate(Recogniser(model_path, options.threads, Precision::kInt8), folder, options, case_insensitive);
  for (std::size_t i = 0; i < out.float32.readings.size() && i < out.int8.readings.size(); ++i)
    out.same_text += out.float32.readings[i].reading == out.int8.readings[i].reading;
  return out;
}

}  // namespace captcha
