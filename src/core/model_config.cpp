// ModelConfig validation, JSON form and the time-step arithmetic the trainer checks labels with.
#include "captcha/model_config.h"

#include "json_fields.h"

#include <nlohmann/json.hpp>

#include "captcha/errors.h"

namespace captcha {

void ModelConfig::validate() const {
  if (arch == Architecture::kSmall && (conv_channels.size() < 2 || conv_channels.size() > kMaxConvolutions))
    throw ConfigError("conv_channels needs 2 to " + std::to_string(kMaxConvolutions) + " sizes");
  for (int c : conv_channels)
    if (c <= 0 || c > kMaxChannels) throw ConfigError("conv_channels must be 1 to " + std::to_string(kMaxChannels));
  if (dense <= 0 || dense > kMaxFeatures) throw ConfigError("dense size must be 1 to " + std::to_string(kMaxFeatures));
  if (rnn_hidden.empty() || rnn_hidden.size() > kMaxRnnLayers)
    throw ConfigError("1 to " + std::to_string(kMaxRnnLayers) + " RNN layers are needed");
  for (int h : rnn_hidden)
    if (h <= 0 || h > kMaxRnnHidden) throw ConfigError("RNN hidden sizes must be 1 to " + std::to_string(kMaxRnnHidden));
  if (dropout < 0 || dropout >= 1) throw ConfigError("dropout must be in [0, 1)");
}

void to_json(nlohmann::json& out, const ModelConfig& c) {
  out = {{"arch", enum_name(c.arch, kArchitectureNames)},
         {"rnn", enum_name(c.rnn, kRnnTypeNames)},
         {"conv_channels", c.conv_channels},
         {"dense", c.dense},
         {"rnn_hidden", c.rnn_hidden},
         {"dropout", c.dropout},
         {"batch_norm", c.batch_norm}};
}

void from_json(const nlohmann::json& in, ModelConfig& c) {
  c = ModelConfig{};
  c.arch = parse_enum(in.value("arch", std::string("small")), kArchitectureNames, "architecture");
  c.rnn = parse_enum(in.value("rnn", std::string("lstm")), kRnnTypeNames, "RNN type");
  c.conv_channels = json_fields::int_list_field(in, "conv_channels", c.conv_channels);
  c.dense = json_fields::int_field(in, "dense", c.dense);
  c.rnn_hidden = json_fields::int_list_field(in, "rnn_hidden", c.rnn_hidden);
  c.dropout = in.value("dropout", c.dropout);
  c.batch_norm = in.value("batch_norm", false);  // absent: a file written before the option
  c.validate();
}

int fitted_features(std::size_t training_images) {
  return training_images >= kWideTrainingSet ? kWideFeatures : ModelConfig{}.dense;
}

namespace {

// `smaller` below kWideTrainingSet training images, `larger` from there.
template <std::size_t N>
std::vector<int> fitted_sizes(std::size_t training_images, const std::vector<int>& smaller, const int (&larger)[N]) {
  return training_images < kWideTrainingSet ? smaller : std::vector<int>(std::begin(larger), std::end(larger));
}

}  // namespace

std::vector<int> fitted_conv_channels(std::size_t training_images) {
  return fitted_sizes(training_images, ModelConfig{}.conv_channels, kDeepConvChannels);
}

std::vector<int> fitted_rnn_hidden(std::size_t training_images) {
  return fitted_sizes(training_images, ModelConfig{}.rnn_hidden, kWideRnnHidden);
}

int output_time_steps(const ModelConfig& config, int width) {
  // small: two 2x2 max pools (floor); resnet: two stride-2 3x3 convolutions with padding 1 (ceil).
  if (config.arch == Architecture::kResnet) return ((width + 1) / 2 + 1) / 2;
  return width / 2 / 2;
}

int required_time_steps(const std::vector<int>& encoded_label) {
  int steps = static_cast<int>(encoded_label.size());
  for (std::size_t i = 1; i < encoded_label.size(); ++i)
    steps += encoded_label[i] == encoded_label[i - 1];
  return steps;
}

}  // namespace captcha
