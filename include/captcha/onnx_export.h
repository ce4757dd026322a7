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

// What ddddocr does to an image before a model of its own layout reads it (DdddOcr(
// import_onnx_path=..., charsets_path=...), the files dddd_trainer writes): grey, resized to this
// height keeping the aspect ratio ("image": [-1, 64] in charsets.json), v / 255, then
// (v - 0.456) / 0.224.
inline constexpr int kDdddocrHeight = 64;
inline constexpr float kDdddocrMean = 0.456f, kDdddocrStd = 0.224f;

// Writes the model in that layout: `onnx_path` with input "input1" (1 x 1 x 64 x width, as
// ddddocr prepares it), which the graph turns into the model's own input (normalisation,
// stretched to its width x height), and output "output" (1 x time steps of int64 class indices,
// 0 the blank, as ddddocr decodes them); `charsets_path` the charsets.json ddddocr reads
// ({"charset": ["", symbols...], "word": false, "image": [-1, 64], "channel": 1}). ddddocr does
// not crop to the text or equalise contrast, so this path reads somewhat worse than the model's
// own preprocessing. `width` > 0 fixes the input's width (charsets.json "image": [width, 64]: ddddocr
// then stretches every image to it; OpenCV's dnn module needs fixed sizes). Throws as export_onnx.
void export_ddddocr(const ModelFile& model, const std::string& model_path, const std::string& onnx_path,
                    const std::string& charsets_path, int width = 0);

}  // namespace captcha
