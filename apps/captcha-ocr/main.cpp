// captcha-ocr: the command-line tool. Parses arguments, runs one subcommand, maps errors to
// one line on stderr and a documented exit code.
#include <iostream>
#include <string>

#include "captcha/errors.h"
#include "captcha/heap.h"
#include "common.h"
#ifdef CAPTCHA_CLI_WITH_TRAIN
#include "captcha/training_process.h"
#endif

#ifndef CAPTCHA_CLI_WITH_TRAIN
namespace {

// The reading-only build's `train`: says that this build cannot train.
void register_train_unavailable(CLI::App& app, captcha::cli::Action& run) {
  auto* cmd = app.add_subcommand("train", "Not in this build (reading only; build with CAPTCHA_WITH_TORCH=ON)");
  cmd->allow_extras();
  cmd->callback([&run] {
    run = []() -> int {
      throw captcha::ConfigError("this captcha-ocr is a reading-only build without LibTorch; train with the full build");
    };
  });
}

}  // namespace
#endif

int main(int argc, char** argv) {
  using namespace captcha::cli;
  const bool training = argc > 1 && std::string(argv[1]) == "train";
#ifdef CAPTCHA_CLI_WITH_TRAIN
  if (training) captcha::restart_with_fast_blas(argv);
#endif
  if (!training) captcha::tune_heap_for_reading();
  CLI::App app{"captcha-ocr: train, evaluate and read text CAPTCHAs (CRNN + CTC)", "captcha-ocr"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "captcha-ocr 0.1.0");
  app.footer(
      "Exit codes: 0 success, 1 runtime failure (bad data, unreadable model, ...), 2 bad usage,\n"
      "130 training interrupted by Ctrl-C (state saved; continue with train --resume DIR).\n"
      "Run 'captcha-ocr COMMAND --help' for a command's options.");
  Action run;
#ifdef CAPTCHA_CLI_WITH_TRAIN
  register_train(app, run);
#else
  register_train_unavailable(app, run);
#endif
  register_eval(app, run);
  register_predict(app, run);
  register_generate(app, run);
  register_bench(app, run);
  register_export(app, run);
  register_serve(app, run);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::cerr << "captcha-ocr: " << e.what() << " (see --help)\n";
    return kExitUsage;
  }
  try {
    return run();
  } catch (const captcha::ConfigError& e) {
    std::cerr << "captcha-ocr: error: " << e.what() << "\n";
    return kExitUsage;
  } catch (const std::exception& e) {
    std::cerr << "captcha-ocr: error: " << e.what() << "\n";
    return kExitFailure;
  }
}
