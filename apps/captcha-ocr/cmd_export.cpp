// captcha-ocr export: writes a model file's network in another format (ONNX).
#include <iostream>

#include "captcha/onnx_export.h"
#include "common.h"

namespace captcha::cli {

void register_export(CLI::App& app, Action& run) {
  auto* cmd = app.add_subcommand("export", "Write the network as ONNX (opset 13) for other runtimes");
  struct Args {
    std::string model, format = "onnx", out;
    int batch = 0;
  };
  auto args = std::make_shared<Args>();
  cmd->add_option("--model", args->model, "Model file (.safetensors)")->required()->check(CLI::ExistingFile);
  cmd->add_option("--format", args->format, "Output format")->capture_default_str()->check(CLI::IsMember({"onnx"}));
  cmd->add_option("--out", args->out, "Output file (.onnx)")->required();
  cmd->add_option("--batch", args->batch, "Fix the batch size (OpenCV's dnn module needs this; default: any)")
      ->check(kPositive);
  cmd->callback([&run, args] {
    run = [args] {
      export_onnx(load_model(args->model), args->model, args->out, args->batch);
      std::cerr << "wrote " << args->out << " (input \"image\" N x 1 x H x W normalised, output \"logits\" N x T x classes; "
                << "charset and preprocessing in its metadata)\n";
      return kExitOk;
    };
  });
}

}  // namespace captcha::cli
