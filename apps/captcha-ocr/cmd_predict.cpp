// captcha-ocr predict: reads images (files, folders, or '-' for bytes on stdin).
#include <iomanip>
#include <iostream>
#include <iterator>

#include <nlohmann/json.hpp>

#include "captcha/dataset.h"
#include "captcha/errors.h"
#include "captcha/reader.h"
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
    chars.push_back({{"char", u32_to_utf8(symbols[i])},
                     {"probability", r.char_probabilities[i]},
                     {"case_probability", r.case_probabilities[i]}});
  std::cout << nlohmann::json{{"path", path}, {"text", r.text}, {"confidence", r.confidence}, {"chars", chars}}.dump()
            << '\n';
}

// The inputs in order; "-" (image bytes on stdin) is read once, here, before any reading starts.
std::vector<ImageInput> inputs_of(const std::vector<std::string>& files) {
  std::vector<ImageInput> inputs;
  for (const auto& file : files) {
    if (file != "-") {
      inputs.push_back(ImageInput::file(file));
      continue;
    }
    std::vector<std::uint8_t> bytes((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
    inputs.push_back(ImageInput::encoded("<stdin>", std::move(bytes)));
  }
  return inputs;
}

int run_predict(const PredictArgs& args) {
  const Recogniser recogniser = args.reading.load();
  std::vector<std::string> files = list_images(args.paths);
  if (args.limit > 0 && files.size() > static_cast<std::size_t>(args.limit)) files.resize(args.limit);
  int failures = 0;
  read_images(recogniser, inputs_of(files), args.reading.batch_options(), [&](std::size_t i, const ReadResult& r) {
    if (r.ok()) {
      print_reading(files[i], r.reading, args.json);
    } else {
      std::cerr << "captcha-ocr: error: " << r.error << "\n";
      ++failures;
    }
  });
  return failures ? kExitFailure : kExitOk;
}

}  // namespace

void register_predict(CLI::App& app, Action& run) {
  auto* cmd = app.add_subcommand("predict", "Read images: files, folders, or - for image bytes on stdin");
  auto args = std::make_shared<PredictArgs>();
  args->reading.add_to(*cmd);
  cmd->add_option("paths", args->paths, "Image files, folders, or -")->required();
  cmd->add_flag("--json", args->json, "One JSON object per line, with per-character probabilities");
  cmd->add_option("--limit", args->limit, "Read at most N images")->check(kPositive);
  cmd->callback([&run, args] { run = [args] { return run_predict(*args); }; });
}

}  // namespace captcha::cli
