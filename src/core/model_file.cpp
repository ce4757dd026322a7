// The captcha-ocr model file on top of the safetensors layout.
#include "captcha/model_file.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "captcha/errors.h"
#include "captcha/network_spec.h"
#include "json_fields.h"

namespace captcha {

void save_model(const std::string& path, const ModelFile& model) {
  SafetensorsFile file;
  file.metadata["format"] = kModelFormatName;
  file.metadata["format_version"] = std::to_string(kModelFormatVersion);
  file.metadata["charset"] = model.charset.symbols_utf8();
  file.metadata["blank_index"] = std::to_string(Charset::kBlank);
  file.metadata["fold_case"] = model.fold_case ? "true" : "false";
  if (model.label_lengths.min > 0 || model.label_lengths.max > 0)
    file.metadata["label_lengths"] = nlohmann::json{model.label_lengths.min, model.label_lengths.max}.dump();
  file.metadata["input_width"] = std::to_string(model.preprocess.width);
  file.metadata["input_height"] = std::to_string(model.preprocess.height);
  file.metadata["preprocess"] = nlohmann::json(model.preprocess).dump();
  file.metadata["reading_views"] = std::to_string(model.reading_views);
  file.metadata["architecture"] = nlohmann::json(model.config).dump();
  file.metadata["training"] = model.training.dump();
  if (!model.checkpoint.is_null()) file.metadata["checkpoint"] = model.checkpoint.dump();
  if (model.int8) file.metadata["precision"] = "int8";
  file.tensors = model.tensors;
  write_safetensors(path, file);
}

namespace {

// The 8-bit tensors of an int8 model file given back as floats (q * the row's scale), their
// scale tensors dropped. Throws ModelFileError naming the file and the tensor.
void dequantise_tensors(std::map<std::string, Tensor>& tensors, const std::string& path) {
  for (auto& [name, tensor] : tensors) {
    if (tensor.dtype != DType::kI8) continue;
    const auto scale = tensors.find(name + kInt8ScaleSuffix);
    if (tensor.shape.size() != 2)
      throw ModelFileError(path + ": 8-bit tensor " + name + " is not a matrix");
    if (scale == tensors.end() || scale->second.dtype != DType::kF32 || scale->second.shape.size() != 1 ||
        scale->second.shape[0] != tensor.shape[0])
      throw ModelFileError(path + ": 8-bit tensor " + name + " lacks its " + std::to_string(tensor.shape[0]) +
                           " float scales (" + name + kInt8ScaleSuffix + ")");
    const std::size_t rows = static_cast<std::size_t>(tensor.shape[0]), cols = static_cast<std::size_t>(tensor.shape[1]);
    std::vector<float> values(rows * cols);
    for (std::size_t r = 0; r < rows; ++r) {
      const float s = scale->second.f32()[r];
      if (!std::isfinite(s) || s < 0) throw ModelFileError(path + ": " + name + kInt8ScaleSuffix + " holds a bad scale");
      for (std::size_t c = 0; c < cols; ++c)
        values[r * cols + c] = static_cast<float>(static_cast<std::int8_t>(tensor.bytes[r * cols + c])) * s;
    }
    tensor = Tensor::from_f32(tensor.shape, values.data());
  }
  for (auto it = tensors.begin(); it != tensors.end();) {
    const std::string& name = it->first;
    const std::size_t suffix = std::strlen(kInt8ScaleSuffix);
    const bool scale = name.size() > suffix && name.compare(name.size() - suffix, suffix, kInt8ScaleSuffix) == 0 &&
                       tensors.count(name.substr(0, name.size() - suffix));
    it = scale ? tensors.erase(it) : std::next(it);
  }
}

// `t` (F32 [out, in]) in 8 bits, and its per-row scales.
std::pair<Tensor, Tensor> quantised_rows(const Tensor& t) {
  const std::size_t rows = static_cast<std::size_t>(t.shape[0]), cols = static_cast<std::size_t>(t.shape[1]);
  Tensor q;
  q.dtype = DType::kI8;
  q.shape = t.shape;
  q.bytes.resize(rows * cols);
  std::vector<float> scales(rows, 0.0f);
  for (std::size_t r = 0; r < rows; ++r) {
    const float* row = t.f32() + r * cols;
    float largest = 0.0f;
    for (std::size_t c = 0; c < cols; ++c) largest = std::max(largest, std::abs(row[c]));
    scales[r] = largest / 127.0f;
    for (std::size_t c = 0; c < cols; ++c) {
      const long v = largest > 0 ? std::lround(row[c] * 127.0f / largest) : 0;
      q.bytes[r * cols + c] = static_cast<std::uint8_t>(static_cast<std::int8_t>(std::clamp(v, -127L, 127L)));
    }
  }
  return {std::move(q), Tensor::from_f32({t.shape[0]}, scales.data())};
}

}  // namespace

ModelFile exported_model(ModelFile model, bool int8, const std::string& path) {
  model.checkpoint = nullptr;
  for (auto it = model.tensors.begin(); it != model.tensors.end();)
    it = is_network_weight(it->first) ? std::next(it) : model.tensors.erase(it);
  const NetworkSpec spec = network_spec(model.config, model.preprocess.height, model.charset.num_classes());
  check_weights(spec, model.tensors, path);
  if (!int8) return model;
  model.int8 = true;
  std::map<std::string, Tensor> stored;
  for (auto& [name, tensor] : model.tensors) {
    if (tensor.dtype == DType::kF32 && tensor.shape.size() == 2 && name != spec.classifier.name + ".weight") {
      auto [q, scales] = quantised_rows(tensor);
      stored.emplace(name + kInt8ScaleSuffix, std::move(scales));
      stored.emplace(name, std::move(q));
    } else {
      stored.emplace(name, std::move(tensor));
    }
  }
  model.tensors = std::move(stored);
  return model;
}

ModelFile load_model(const std::string& path) {
  const FileBytes bytes = read_model_bytes(path);
  return parse_model(bytes.data(), bytes.size(), path);
}

ModelFile parse_model(const std::uint8_t* data, std::size_t size, const std::string& path) {
  SafetensorsFile file = parse_safetensors(data, size, path);
  const auto& meta = file.metadata;
  const auto field = [&](const char* key) -> const std::string& {
    const auto it = meta.find(key);
    if (it == meta.end()) throw ModelFileError(path + ": model metadata lacks '" + key + "'");
    return it->second;
  };
  const auto format = meta.find("format");
  if (format == meta.end() || format->second != kModelFormatName)
    throw ModelFileError(path + ": a safetensors file, but not a captcha-ocr model");
  if (field("format_version") != std::to_string(kModelFormatVersion))
    throw ModelFileError(path + ": model format version " + field("format_version") +
                         ", this build reads version " + std::to_string(kModelFormatVersion) +
                         "; use a matching captcha-ocr release or retrain");
  if (field("blank_index") != "0")
    throw ModelFileError(path + ": blank index " + field("blank_index") + " is not supported");

  ModelFile model;
  try {
    model.charset = Charset(field("charset"));
    model.fold_case = field("fold_case") == "true";
    if (meta.count("label_lengths")) {
      const auto range = json_fields::int_list(nlohmann::json::parse(meta.at("label_lengths")), "label_lengths");
      if (range.size() != 2 || range[0] < 0 || range[1] < range[0])
        throw ModelFileError(path + ": bad label_lengths metadata");
      model.label_lengths = {range[0], range[1]};
    }
    model.preprocess = nlohmann::json::parse(field("preprocess")).get<PreprocessOptions>();
    if (meta.count("reading_views")) {
      const std::string& views = meta.at("reading_views");
      const int count = std::atoi(views.c_str());
      if (count < 1 || count > kMaxReadingViews || std::to_string(count) != views)
        throw ModelFileError(path + ": bad reading_views metadata '" + views + "' (1-" +
                             std::to_string(kMaxReadingViews) + ")");
      model.reading_views = count;
    }
    model.config = nlohmann::json::parse(field("architecture")).get<ModelConfig>();
    model.training = nlohmann::json::parse(field("training"));
    if (meta.count("checkpoint")) model.checkpoint = nlohmann::json::parse(meta.at("checkpoint"));
    if (meta.count("precision")) {
      if (meta.at("precision") != "int8" && meta.at("precision") != "float32")
        throw ModelFileError(path + ": unknown precision '" + meta.at("precision") + "'");
      model.int8 = meta.at("precision") == "int8";
    }
  } catch (const ModelFileError&) {
    throw;
  } catch (const std::exception& e) {
    throw ModelFileError(path + ": bad model metadata (" + e.what() + ")");
  }
  model.tensors = std::move(file.tensors);
  dequantise_tensors(model.tensors, path);
  return model;
}

}  // namespace captcha
