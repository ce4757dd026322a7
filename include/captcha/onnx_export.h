// Writes a model file's network as ONNX (opset 13), so that tools nobody here wrote can run it:
// ONNX Runtime, OpenCV's dnn module. The protobuf encoding is written directly (a handful of
// message types), so the core library needs neither protobuf nor the ONNX package.
//
// The graph: input "image" (batch x 1 x height x width, normalised as the model file's
// preprocessing says), output "logits" (batch x time steps x classes;
// class 0 is the CTC blank). Batch norm stays as BatchNormalization nodes (runtimes fold it).
// metadata_props carry the charset, the blank index, fold_case, label lengths and the
// preprocessing settings as JSON, so a reader can decode without our model file.
#pragma once

#include <string>

#include "captcha/model_file.h"

namespace captcha {

// Throws ModelFileError naming `model_path` when a tensor the architecture needs is missing or
// misshapen, and Error naming `path` when it cannot be written.
// `batch` > 0 fixes the batch size in the graph; OpenCV's dnn module (4.6) needs that for the
// RNN layers, ONNX Runtime does not (0: any batch size).
void export_onnx(const ModelFile& model, const std::string& model_path, const std::string& path, int batch = 0);

}  // namespace captcha
