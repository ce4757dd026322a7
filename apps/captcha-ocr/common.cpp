// Shared command-line helpers.
#include "common.h"

#include <algorithm>
#include <filesystem>
#include <iostream>
#include <iterator>

#include "captcha/errors.h"
#include "captcha/image_io.h"
#include "captcha/parallel.h"

namespace captcha::cli {

void ReadingFlags::add_to(CLI::App& command) {
  command.add_option("--model", models, "Model file (.safetensors); given more than once, the models are read as an ensemble (their probabilities averaged)")
      ->required()->allow_extra_args(false)->check(CLI::ExistingFile);
  command.add_option("--views", views, "Read each image in this many views, shifted and scaled a little, averaging the probabilities (test-time augmentation; 1: the image alone; default: the model's choice)")
      ->check(CLI::Range(1, kMaxReadingViews));
  command.add_option("--beam", beam, "Prefix beam search width (0 or 1: greedy, the best path)")->capture_default_str()->check(CLI::NonNegativeNumber);
  command.add_option("--allowed", allowed, "Only these symbols may be read (e.g. the site's alphabet)");
  command.add_flag("--any-length", any_length, "Readings of any length (default: the label lengths seen in training)");
  command.add_option("--batch-size", batch_size, "Images per forward pass")->capture_default_str()->check(CLI::PositiveNumber);
  command.add_option("--threads", threads, "Threads (default: every core)");
  command.add_option("--save-debug", save_debug, "Write each preprocessed image to this folder");
  command.add_flag("--no-auto-crop", no_auto_crop, "Do not crop the image to the text");
  command.add_flag("--force-invert", force_invert, "Invert every image (light text on dark)");
  command.add_flag("--strong", strong, "Stronger preprocessing for thin strokes");
}

Recogniser ReadingFlags::load() const {
  Recogniser recogniser(models, threads);
  PreprocessOptions& options = recogniser.preprocess_options();
  if (no_auto_crop) options.auto_crop = false;
  if (force_invert) options.force_invert = true;
  if (strong) options.strong = true;
  return recogniser;
}

namespace {

cv::Mat read_input(const std::string& path) {
  if (path != "-") return load_image(path);
  std::vector<std::uint8_t> bytes((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
  return decode_image(bytes, "<stdin>");
}

}  // namespace

ReadingFlags::Prepared ReadingFlags::prepare(const Recogniser& recogniser,
                                             const std::vector<std::string>& paths) const {
  Prepared out;
  out.images.resize(paths.size());
  out.errors.resize(paths.size());
  // stdin can only be read once and in order: no threads when it is among the inputs.
  const bool has_stdin = std::find(paths.begin(), paths.end(), "-") != paths.end();
  parallel_for(paths.size(), has_stdin ? 1 : threads, [&](std::size_t i) {
    try {
      out.images[i] = recogniser.prepare(read_input(paths[i]));
      if (!save_debug.empty()) save_debug_image(save_debug, paths[i], out.images[i]);
    } catch (const Error& e) {
      out.errors[i] = e.what();
    }
  });
  return out;
}

ReadOptions ReadingFlags::read_options() const {
  ReadOptions options;
  options.beam_width = beam;
  options.allowed = allowed;
  options.any_length = any_length;
  options.batch_size = batch_size;
  options.views = views;
  return options;
}

int ReadingFlags::views_read(const Recogniser& recogniser) const {
  return views > 0 ? views : recogniser.model().reading_views;
}

std::string ReadingFlags::describe(const Recogniser& recogniser) const {
  std::string text;
  for (const auto& model : models) text += (text.empty() ? "" : " + ") + model;
  const int count = views_read(recogniser);
  text += ", " + std::to_string(count) + (count == 1 ? " view" : " views") + (views > 0 ? "" : " (the model's choice)");
  return text + (beam > 1 ? ", beam " + std::to_string(beam) : ", best path");
}

void save_debug_image(const std::string& dir, const std::string& source_path, const cv::Mat& image) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::create_directories(dir, ec);
  const std::string stem = source_path == "-" ? "stdin" : fs::path(source_path).stem().string();
  const std::string out = (fs::path(dir) / (stem + ".png")).string();
  write_image(out, image);
}

}  // namespace captcha::cli
