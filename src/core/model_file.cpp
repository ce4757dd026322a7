// The captcha-ocr model file on top of the safetensors layout.
#include "captcha/model_file.h"

#include <cstdlib>

#include "captcha/errors.h"
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
  file.tensors = model.tensors;
  write_safetensors(path, file);
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
  } catch (const ModelFileError&) {
    throw;
  } catch (const std::exception& e) {
    throw ModelFileError(path + ": bad model metadata (" + e.what() + ")");
  }
  model.tensors = std::move(file.tensors);
  return model;
}

}  // namespace captcha
