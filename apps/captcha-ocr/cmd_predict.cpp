// captcha-ocr predict: reads images (files, folders, or '-' for bytes on stdin).
#include <iomanip>
#include <iostream>

#include <nlohmann/json.hpp>

#include "captcha/dataset.h"
#include "captcha/errors.h"
#include "captcha/recogniser.h"
#include "captcha/utf8.h"
#include "common.h"

namespace captcha::cli {

namespace {

struct PredictArgs {
  ReadingFlags reading;
  std::vector<std::string> paths;
  bool json = false;
  int limit = 0;
};

void print_reading(const std::string& path, const Reading& r, bool json) {
  if (!json) {
    std::cout << path << '\t' << r.text << '\t' << std::fixed << std::setprecision(4) << r.confidence << '\n';
    return;
  }
  nlohmann::json chars = nlohmann::json::array();
  const std::u32string symbols = utf8_to_u32(r.text);
  for (std::size_t i = 0; i < symbols.size(); ++i)
    chars.push_back({{"char", u32_to_utf8(symbols[i])}, {"probability", r.char_probabilities[i]}});
  std::cout << nlohmann::json{{"path", path}, {"text", r.text}, {"confidence", r.confidence}, {"chars", chars}}.dump()
            << '\n';
}

int run_predict(const PredictArgs& args) {
  const Recogniser recogniser = args.reading.load();
  std::vector<std::string> files = list_images(args.paths);
  if (args.limit > 0 && files.size() > static_cast<std::size_t>(args.limit)) files.resize(args.limit);
  const ReadOptions options = args.reading.read_options();

  int failures = 0;
  // Chunks bound the memory held for a large folder while keeping batches full.
  const std::size_t chunk = static_cast<std::size_t>(std::max(1, args.reading.batch_size));
  for (std::size_t start = 0; start < files.size(); start += chunk) {
    const std::size_t count = std::min(chunk, files.size() - start);
    const auto [prepared, errors] = args.reading.prepare(
        recogniser, std::vector<std::string>(files.begin() + start, files.begin() + start + count));
    std::vector<cv::Mat> batch;
    for (const auto& image : prepared)
      if (!image.empty()) batch.push_back(image);
    const auto readings = recogniser.read_prepared(batch, options);
    for (std::size_t i = 0, k = 0; i < count; ++i) {
      if (prepared[i].empty()) {
        std::cerr << "captcha-ocr: error: " << errors[i] << "\n";
        ++failures;
      } else {
        print_reading(files[start + i], readings[k++], args.json);
      }
    }
  }
  return failures ? kExitFailure : kExitOk;
}

}  // namespace

void register_predict(CLI::App& app, Action& run) {
  auto* cmd = app.add_subcommand("predict", "Read images: files, folders, or - for image bytes on stdin");
  auto args = std::make_shared<PredictArgs>();
  args->reading.add_to(*cmd);
  cmd->add_option("paths", args->paths, "Image files, folders, or -")->required();
  cmd->add_flag("--json", args->json, "One JSON object per line, with per-character probabilities");
  cmd->add_option("--limit", args->limit, "Read at most N images")->check(CLI::PositiveNumber);
  cmd->callback([&run, args] { run = [args] { return run_predict(*args); }; });
}

}  // namespace captcha::cli
