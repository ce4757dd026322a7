// Shared pieces of the captcha-ocr subcommands: registration, exit codes, preprocessing flags.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "captcha/preprocess.h"
#include "captcha/reader.h"
#include "captcha/recogniser.h"

namespace captcha::cli {

// Documented exit codes.
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;      // runtime failure: bad data, unreadable model, ...
inline constexpr int kExitUsage = 2;        // bad command line
inline constexpr int kExitInterrupted = 130;  // train stopped by Ctrl-C (state saved)

// A subcommand sets `run` to its action when it is registered; main() calls the chosen one.
using Action = std::function<int()>;

// Checks of a numeric flag whose messages read "--max-batch: must be positive, not 0" (CLI11's
// own print the whole range of a double).
extern const CLI::Validator kPositive;
extern const CLI::Validator kNotNegative;

void register_train(CLI::App& app, Action& run);
void register_eval(CLI::App& app, Action& run);
void register_predict(CLI::App& app, Action& run);
void register_generate(CLI::App& app, Action& run);
void register_bench(CLI::App& app, Action& run);
void register_export(CLI::App& app, Action& run);
void register_serve(CLI::App& app, Action& run);

inline constexpr const char* kGenerateDescription =
    "Draw labelled synthetic CAPTCHAs (file name = label, plus labels.tsv)";
inline constexpr const char* kServeDescription =
    "Read images sent over HTTP (native API, ddddocr- and captcha_platform-compatible endpoints)";

inline constexpr const char* kInt8Help =
    "Read with int8 products (weights quantised at load; AVX-512 VNNI where the CPU has it): faster, "
    "within a few hundredths of the float figures";

// The flags eval and predict share: models (one, or several read as an ensemble), views, decoding
// (--beam, --allowed), batching, threads, debug images, and the
// preprocessing overrides (--no-auto-crop, --force-invert, --strong), each of which, when given,
// overrides the model's stored setting.
struct ReadingFlags {
  std::vector<std::string> models;
  int views = 0;  // 0: the model's own choice
  int beam = kDefaultBeamWidth;
  std::string allowed;
  bool any_length = false;
  int batch_size = 64;
  int threads = 0;
  bool int8 = false;
  std::string save_debug;
  bool no_auto_crop = false;
  bool force_invert = false;
  bool strong = false;
  ImageLimits limits;
  void add_to(CLI::App& command);
  // Loads the model with these flags applied. Throws ModelFileError.
  Recogniser load() const;
  // The views each image is read in: --views, or the model's own choice.
  int views_read(const Recogniser& recogniser) const;
  // The models, views and decoding of a reading, for reports ("a.safetensors + b.safetensors, 7
  // views, beam 10").
  std::string describe(const Recogniser& recogniser) const;

  // The reading options (decoding, views, batches) with --threads and --save-debug.
  BatchOptions batch_options() const;
};

}  // namespace captcha::cli
