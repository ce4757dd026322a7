// captcha-ocr export: writes a model file's network in another format (ONNX), or as a portable
// reading file (safetensors, the network's weights only), optionally in 8 bits.
#include <cstdio>
#include <filesystem>
#include <iostream>

#include "captcha/errors.h"
#include "captcha/onnx_export.h"
#include "captcha/reader.h"
#include "common.h"

namespace captcha::cli {

namespace {

struct ExportArgs {
  std::string model, format = "onnx", out, calibrate, charsets;
  int batch = 0, width = 0;
  bool int8 = false;
  double max_drop = 0.5;  // points of exact match
};

// Reads the calibration folder in float and int8; false (with the figures on stderr) when int8
// reads more than args.max_drop points fewer images right.
bool int8_reads_as_well(const ExportArgs& args) {
  const PrecisionComparison c = compare_int8(args.model, args.calibrate);
  const double float_exact = 100.0 * c.float32.figures.exact_match, int8_exact = 100.0 * c.int8.figures.exact_match;
  std::fprintf(stderr, "%s: %zu images, exact match %.2f%% float, %.2f%% int8; %zu read alike\n",
               args.calibrate.c_str(), c.float32.readings.size(), float_exact, int8_exact, c.same_text);
  return int8_exact >= float_exact - args.max_drop;
}

int run_export(const ExportArgs& args) {
  if (args.format != "safetensors" && (args.int8 || !args.calibrate.empty()))
    throw ConfigError("--int8 and --calibrate write safetensors (--format safetensors)");
  if ((!args.charsets.empty() || args.width) && args.format != "ddddocr")
    throw ConfigError("--charsets and --width go with --format ddddocr");
  if (args.format == "ddddocr") {
    const std::string charsets =
        args.charsets.empty() ? (std::filesystem::path(args.out).parent_path() / "charsets.json").string() : args.charsets;
    export_ddddocr(load_model(args.model), args.model, args.out, charsets, args.width);
    std::cerr << "wrote " << args.out << " and " << charsets << " (ddddocr: DdddOcr(det=False, ocr=False, "
              << "import_onnx_path=\"" << args.out << "\", charsets_path=\"" << charsets << "\"))\n";
    return kExitOk;
  }
  if (args.format == "onnx") {
    export_onnx(load_model(args.model), args.model, args.out, args.batch);
    std::cerr << "wrote " << args.out << " (input \"image\" N x 1 x H x W normalised, output \"logits\" N x T x classes; "
              << "charset and preprocessing in its metadata)\n";
    return kExitOk;
  }
  if (!args.calibrate.empty() && !args.int8) throw ConfigError("--calibrate checks an int8 export: add --int8");
  if (!args.calibrate.empty() && !int8_reads_as_well(args)) {
    std::cerr << "error: " << args.model << ": int8 reads " << args.calibrate << " more than " << args.max_drop
              << " points worse than float; nothing written (--max-drop allows more)\n";
    return kExitFailure;
  }
  save_model(args.out, exported_model(load_model(args.model), args.int8, args.model));
  std::cerr << "wrote " << args.out << (args.int8 ? " (int8: read with int8 products by default)" : "") << "\n";
  return kExitOk;
}

}  // namespace

void register_export(CLI::App& app, Action& run) {
  auto* cmd = app.add_subcommand("export", "Write the network as ONNX (opset 13) for other runtimes or for ddddocr, or "
                                           "as a portable safetensors reading file, optionally with 8-bit weights");
  auto args = std::make_shared<ExportArgs>();
  cmd->add_option("--model", args->model, "Model file (.safetensors)")->required()->check(CLI::ExistingFile);
  cmd->add_option("--format", args->format,
                  "onnx, safetensors, or ddddocr (an ONNX file and charsets.json in the layout ddddocr's "
                  "import_onnx_path and charsets_path read)")
      ->capture_default_str()->check(CLI::IsMember({"onnx", "safetensors", "ddddocr"}));
  cmd->add_option("--out", args->out, "Output file (.onnx or .safetensors)")->required();
  cmd->add_option("--charsets", args->charsets, "ddddocr: where charsets.json goes (default: beside --out)");
  cmd->add_option("--width", args->width, "ddddocr: a fixed input width that ddddocr stretches images to (default: any "
                                          "width, images scaled to height 64)")
      ->check(CLI::Range(1, 4096));
  cmd->add_option("--batch", args->batch, "Fix the batch size (OpenCV's dnn module needs this; default: any)")
      ->check(kPositive);
  cmd->add_flag("--int8", args->int8, "safetensors: store the weight matrices in 8 bits per output channel (a third of "
                                      "the file; readers then read with int8 products)");
  cmd->add_option("--calibrate", args->calibrate, "With --int8: a labelled folder to read in float and int8 first; "
                                                 "nothing is written if int8 reads it worse by more than --max-drop")
      ->check(CLI::ExistingDirectory);
  cmd->add_option("--max-drop", args->max_drop, "Points of exact match int8 may lose on --calibrate's folder")
      ->capture_default_str()->check(kNotNegative);
  cmd->callback([&run, args] { run = [args] { return run_export(*args); }; });
}

}  // namespace captcha::cli
