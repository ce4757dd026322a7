// The captcha-ocr model file: safetensors with everything needed to use the network in
// "__metadata__": format name and version, charset, blank index, preprocessing, architecture,
// training summary. Reading it never executes anything and needs no LibTorch.
#pragma once

#include <map>
#include <string>

#include <nlohmann/json.hpp>

#include "captcha/charset.h"
#include "captcha/ctc_decode.h"
#include "captcha/model_config.h"
#include "captcha/preprocess.h"
#include "captcha/safetensors.h"

namespace captcha {

inline constexpr const char* kModelFormatName = "captcha-ocr";
inline constexpr int kModelFormatVersion = 1;

// Training checkpoints hold the weight average under this prefix ("ema.conv1.weight", ...), the
// optimizer state under names starting "optimizer" and the trainer's random generators under
// names starting "trainer.".
inline constexpr const char* kAverageTensorPrefix = "ema.";
inline constexpr const char* kOptimizerTensorPrefix = "optimizer";
inline constexpr const char* kTrainerTensorPrefix = "trainer.";

// True for the network's own tensors: not a checkpoint's weight average, optimizer or trainer state.
inline bool is_network_weight(const std::string& name) {
  for (const char* prefix : {kOptimizerTensorPrefix, kAverageTensorPrefix, kTrainerTensorPrefix})
    if (name.rfind(prefix, 0) == 0) return false;
  return true;
}

struct ModelFile {
  Charset charset;
  bool fold_case = false;
  // The label lengths seen in training; readings are held to them unless asked not to
  // (metadata "label_lengths": [min, max]; absent in older files: no bound).
  LengthRange label_lengths;
  PreprocessOptions preprocess;
  // Views of each image read by default (test-time augmentation, see reading_view): 1, or more
  // where training found they read more validation images right (metadata "reading_views";
  // absent in older files: 1).
  int reading_views = 1;
  ModelConfig config;
  nlohmann::json training = nlohmann::json::object();  // summary: epochs, figures, dataset, date
  nlohmann::json checkpoint;                           // trainer state (in `last` only), or null
  std::map<std::string, Tensor> tensors;               // weights (and optimizer state)
  // An int8 model file (metadata "precision": "int8", see exported_model): its large weight
  // matrices were stored in 8 bits and are given back here as floats; readers read it with int8
  // products.
  bool int8 = false;
};

// Suffix of the per-output-channel scales of a weight matrix stored in 8 bits: "dense.weight" is
// I8 [out, in], "dense.weight_scale" F32 [out], the weights being their product.
inline constexpr const char* kInt8ScaleSuffix = "_scale";

// The model as a portable reading file: the network's weights only (no optimizer, weight
// average, trainer state or checkpoint). With `int8`, every 2-D weight matrix but the
// classifier's is stored in 8 bits per output channel (scale = its largest magnitude / 127, as
// the engine's int8 path quantises it at load), a quarter of the bytes. Throws ModelFileError
// naming `path` when the architecture does not fit the tensors.
ModelFile exported_model(ModelFile model, bool int8, const std::string& path);

// Throws ModelFileError.
void save_model(const std::string& path, const ModelFile& model);
// Throws ModelFileError naming `path`: not a captcha-ocr model, another format version,
// truncated, missing or inconsistent metadata.
ModelFile load_model(const std::string& path);
// The same from the `size` bytes of a whole model file at `data`, errors naming `name`.
ModelFile parse_model(const std::uint8_t* data, std::size_t size, const std::string& name);

}  // namespace captcha
