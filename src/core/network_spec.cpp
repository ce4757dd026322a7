// The network spec built from ModelConfig, its tensor list and the model file's weight check.
#include "captcha/network_spec.h"

#include <cmath>

#include "captcha/errors.h"
#include "captcha/model_file.h"

namespace captcha {

namespace {

// small: the convolutions, the first kPooledConvolutions of them each followed by a 2x2 max pool;
// the feature map's columns become the time steps.
void add_small_backbone(const ModelConfig& config, NetworkSpec& spec) {
  const auto& channels = config.conv_channels;
  for (std::size_t i = 0; i < channels.size(); ++i) {
    ConvolutionSpec conv;
    conv.name = "conv" + std::to_string(i + 1);
    conv.in = i == 0 ? 1 : channels[i - 1];
    conv.out = channels[i];
    conv.bias = !config.batch_norm;  // batch norm's shift replaces the bias
    if (config.batch_norm) conv.norm = "bn" + std::to_string(i + 1);
    conv.pool = i < ModelConfig::kPooledConvolutions;
    spec.convolutions.push_back(conv);
  }
  spec.step_features = StepFeatures::kColumns;
  spec.map_channels = channels.back();
  spec.map_height = spec.input_height / 4;
  spec.features = {"dense", spec.map_channels * spec.map_height, config.dense, /*relu=*/true};
}

// resnet: a stem convolution, then two basic blocks per stage of kResnetChannels, the first of
// each with the stage's stride; the feature map's mean over the height becomes the time steps.
void add_resnet_backbone(const ModelConfig& config, NetworkSpec& spec) {
  const auto convolution = [](std::string name, int in, int out, int kernel, const int stride[2], std::string norm,
                              bool relu) {
    ConvolutionSpec conv;
    conv.name = std::move(name);
    conv.in = in;
    conv.out = out;
    conv.kernel = kernel;
    conv.stride_height = stride[0];
    conv.stride_width = stride[1];
    conv.norm = std::move(norm);
    conv.relu = relu;
    return conv;
  };
  const int unit[2] = {1, 1};
  spec.convolutions.push_back(convolution("stem.0", 1, kResnetChannels[0], 3, unit, "stem.1", /*relu=*/true));
  int in = kResnetChannels[0], height = spec.input_height;
  for (int stage = 0; stage < 4; ++stage) {
    const int out = kResnetChannels[stage];
    for (int repeat = 0; repeat < 2; ++repeat) {
      const std::string name = "stages." + std::to_string(spec.blocks.size());
      const int* stride = repeat == 0 ? kResnetStrides[stage] : unit;
      ResidualBlockSpec block;
      block.conv1 = convolution(name + ".conv1", in, out, 3, stride, name + ".bn1", /*relu=*/true);
      block.conv2 = convolution(name + ".conv2", out, out, 3, unit, name + ".bn2", /*relu=*/false);
      if (in != out || stride[0] != 1 || stride[1] != 1)
        block.shortcut = convolution(name + ".shortcut.0", in, out, 1, stride, name + ".shortcut.1", /*relu=*/false);
      spec.blocks.push_back(std::move(block));
      height = (height + 2 - 3) / stride[0] + 1;  // a 3x3 convolution with padding 1
      in = out;
    }
  }
  spec.step_features = StepFeatures::kHeightMean;
  spec.map_channels = in;
  spec.map_height = height;
  spec.features = {"project", in, config.dense, /*relu=*/true};
}

void add_convolution_tensors(const ConvolutionSpec& conv, std::vector<TensorSpec>& out) {
  out.push_back({conv.name + ".weight", {conv.out, conv.in, conv.kernel, conv.kernel}});
  if (conv.bias) out.push_back({conv.name + ".bias", {conv.out}});
  if (conv.norm.empty()) return;
  for (const char* field : {".weight", ".bias", ".running_mean", ".running_var"})
    out.push_back({conv.norm + field, {conv.out}});
  out.push_back({conv.norm + ".num_batches_tracked", {}, DType::kI64});
}

void add_dense_tensors(const DenseSpec& dense, std::vector<TensorSpec>& out) {
  out.push_back({dense.name + ".weight", {dense.out, dense.in}});
  out.push_back({dense.name + ".bias", {dense.out}});
}

}  // namespace

NetworkSpec network_spec(const ModelConfig& config, int input_height, int classes) {
  config.validate();
  NetworkSpec spec;
  spec.input_height = input_height;
  spec.classes = classes;
  spec.dropout = config.dropout;
  if (config.arch == Architecture::kSmall) {
    if (input_height < 4) throw ConfigError("the small network needs inputs at least 4 pixels high");
    add_small_backbone(config, spec);
  } else {
    if (input_height < 1) throw ConfigError("the input height must be positive");
    add_resnet_backbone(config, spec);
  }
  int input = spec.features.out;
  for (std::size_t i = 0; i < config.rnn_hidden.size(); ++i) {
    spec.rnns.push_back({"rnn" + std::to_string(i), config.rnn == RnnType::kGru, input, config.rnn_hidden[i]});
    input = 2 * config.rnn_hidden[i];
  }
  spec.classifier = {"classifier", input, classes, /*relu=*/false};
  return spec;
}

std::vector<TensorSpec> NetworkSpec::tensors() const {
  std::vector<TensorSpec> out;
  for (const auto& conv : convolutions) add_convolution_tensors(conv, out);
  for (const auto& block : blocks) {
    add_convolution_tensors(block.conv1, out);
    add_convolution_tensors(block.conv2, out);
    if (block.shortcut) add_convolution_tensors(*block.shortcut, out);
  }
  add_dense_tensors(features, out);
  for (const auto& rnn : rnns) {
    const std::int64_t rows = static_cast<std::int64_t>(rnn.gates()) * rnn.hidden;
    for (const std::string direction : {"_l0", "_l0_reverse"}) {
      out.push_back({rnn.name + ".weight_ih" + direction, {rows, rnn.input}});
      out.push_back({rnn.name + ".weight_hh" + direction, {rows, rnn.hidden}});
      out.push_back({rnn.name + ".bias_ih" + direction, {rows}});
      out.push_back({rnn.name + ".bias_hh" + direction, {rows}});
    }
  }
  add_dense_tensors(classifier, out);
  return out;
}

void check_weights(const NetworkSpec& spec, const std::map<std::string, Tensor>& tensors, const std::string& path) {
  const std::vector<TensorSpec> expected = spec.tensors();
  for (const TensorSpec& want : expected) {
    const auto it = tensors.find(want.name);
    if (it == tensors.end()) throw ModelFileError(path + ": missing tensor " + want.name + " for this architecture");
    if (it->second.dtype != want.dtype) throw ModelFileError(path + ": tensor " + want.name + " has the wrong dtype");
    if (it->second.shape != want.shape)
      throw ModelFileError(path + ": tensor " + want.name + " has the wrong shape for this architecture");
    if (want.dtype == DType::kF32) {
      const float* values = it->second.f32();
      const std::int64_t count = it->second.numel();
      for (std::int64_t i = 0; i < count; ++i)
        if (!std::isfinite(values[i]))
          throw ModelFileError(path + ": tensor " + want.name + " holds a NaN or infinite value");
    }
  }
  std::size_t in_file = 0;
  for (const auto& [name, tensor] : tensors) in_file += is_network_weight(name);
  if (in_file != expected.size())
    throw ModelFileError(path + ": holds " + std::to_string(in_file) + " weight tensors, the architecture has " +
                         std::to_string(expected.size()));
}

}  // namespace captcha
