// Shared command-line helpers.
#include "common.h"

#include <string>

namespace captcha::cli {

namespace {

CLI::Validator number_check(bool zero_allowed) {
  return CLI::Validator(
      [zero_allowed](std::string& text) -> std::string {
        double value = 0;
        if (!CLI::detail::lexical_cast(text, value)) return "must be a number, not " + text;
        if (value > 0 || (zero_allowed && value == 0)) return {};
        return std::string(zero_allowed ? "must not be negative" : "must be positive") + ", not " + text;
      },
      zero_allowed ? "NOT NEGATIVE" : "POSITIVE");
}

}  // namespace

const CLI::Validator kPositive = number_check(false);
const CLI::Validator kNotNegative = number_check(true);

void ReadingFlags::add_to(CLI::App& command) {
  command.add_option("--model", models, "Model file (.safetensors); given more than once, the models are read as an ensemble (their probabilities averaged)")
      ->required()->allow_extra_args(false)->check(CLI::ExistingFile);
  command.add_option("--views", views, "Read each image in this many views, shifted and scaled a little, averaging the probabilities (test-time augmentation; 1: the image alone; default: the model's choice)")
      ->check(CLI::Range(1, kMaxReadingViews));
  command.add_option("--beam", beam, "Prefix beam search width (0 or 1: greedy, the best path)")->capture_default_str()->check(kNotNegative);
  command.add_option("--allowed", allowed, "Only these symbols may be read (e.g. the site's alphabet)");
  command.add_flag("--any-length", any_length, "Readings of any length (default: the label lengths seen in training)");
  command.add_option("--batch-size", batch_size, "Images per forward pass")->capture_default_str()->check(kPositive);
  command.add_option("--threads", threads, "Threads (default: every core)");
  command.add_flag("--int8", int8, kInt8Help);
  command.add_option("--save-debug", save_debug, "Write each preprocessed image to this folder");
  command.add_flag("--no-auto-crop", no_auto_crop, "Do not crop the image to the text");
  command.add_flag("--force-invert", force_invert, "Invert every image (light text on dark)");
  command.add_flag("--strong", strong, "Stronger preprocessing for thin strokes");
  command.add_option("--max-image-bytes", limits.max_file_bytes, "Refuse image files larger than this")
      ->capture_default_str()->check(kPositive);
  command.add_option("--max-image-pixels", limits.max_pixels, "Refuse images whose header states more pixels than this, before decoding them")
      ->capture_default_str()->check(kPositive);
}

Recogniser ReadingFlags::load() const {
  Recogniser recogniser(models, threads, int8 ? Precision::kInt8 : Precision::kFloat32);
  PreprocessOptions& options = recogniser.preprocess_options();
  if (no_auto_crop) options.auto_crop = false;
  if (force_invert) options.force_invert = true;
  if (strong) options.strong = true;
  return recogniser;
}

int ReadingFlags::views_read(const Recogniser& recogniser) const {
  return views > 0 ? views : recogniser.model().reading_views;
}

std::string ReadingFlags::describe(const Recogniser& recogniser) const {
  std::string text;
  for (const auto& model : models) text += (text.empty() ? "" : " + ") + model;
  const int count = views_read(recogniser);
  text += ", " + std::to_string(count) + (count == 1 ? " view" : " views") + (views > 0 ? "" : " (the model's choice)");
  text += beam > 1 ? ", beam " + std::to_string(beam) : ", best path";
  return text + (int8 ? ", int8" : "");
}

BatchOptions ReadingFlags::batch_options() const {
  BatchOptions options;
  options.read.beam_width = beam;
  options.read.allowed = allowed;
  options.read.any_length = any_length;
  options.read.batch_size = batch_size;
  options.read.views = views;
  options.threads = threads;
  options.debug_dir = save_debug;
  options.limits = limits;
  return options;
}

}  // namespace captcha::cli
