// The network of a model, layer by layer, with the names and shapes of its weight tensors: the
// one description that the LibTorch module, the inference engine, the ONNX exporter, growing a
// network and the model file's weight checks are all built from. Adding a layer type means
// adding it here and to each consumer's walk over the spec; the tests check every consumer
// against it.
//
//   NetworkSpec spec = network_spec(model.config, model.preprocess.height,
//                                   model.charset.num_classes());
//   check_weights(spec, model.tensors, path);  // each tensor present, with its shape and dtype
//   for (const ConvolutionSpec& conv : spec.convolutions) ...
//
// Tensor names are LibTorch's (its module names joined by dots), the names in the model file.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "captcha/model_config.h"
#include "captcha/safetensors.h"

namespace captcha {

struct TensorSpec {
  std::string name;
  std::vector<std::int64_t> shape;
  DType dtype = DType::kF32;
};

// A 2-D convolution (padding kernel / 2 on every side), then optionally batch norm, a 2x2 max
// pool (stride 2) and a ReLU, in that order.
struct ConvolutionSpec {
  std::string name;  // "<name>.weight": out x in x kernel x kernel; "<name>.bias": out, with bias
  int in = 0, out = 0, kernel = 3;
  int stride_height = 1, stride_width = 1;
  bool bias = false;
  // Batch norm after the convolution (epsilon kBatchNormEpsilon): "<norm>.weight", ".bias",
  // ".running_mean", ".running_var" (out, float) and ".num_batches_tracked" (a scalar, int64);
  // empty: none.
  std::string norm;
  bool pool = false;
  bool relu = true;

  int padding() const { return kernel / 2; }
};

// A ResNet basic block: relu(conv2(conv1(x)) + shortcut(x)), where conv1 ends in a ReLU, conv2
// and the shortcut do not, and a missing shortcut is the identity.
struct ResidualBlockSpec {
  ConvolutionSpec conv1, conv2;
  std::optional<ConvolutionSpec> shortcut;
};

// A fully connected layer (LibTorch's Linear): "<name>.weight" out x in, "<name>.bias" out.
struct DenseSpec {
  std::string name;
  int in = 0, out = 0;
  bool relu = false;
};

// A bidirectional LSTM or GRU layer under LibTorch's names: "<name>.weight_ih_l0" (gates *
// hidden x input), ".weight_hh_l0" (gates * hidden x hidden), ".bias_ih_l0", ".bias_hh_l0"
// (gates * hidden), and the same with the suffix "_reverse" for the backward direction. Gate
// order LibTorch's: LSTM i, f, g, o; GRU r, z, n. Output: both directions concatenated.
struct BiRnnSpec {
  std::string name;
  bool gru = false;
  int input = 0, hidden = 0;

  int gates() const { return gru ? 3 : 4; }
};

// How the backbone's feature map N x C x H x W becomes one vector per column (time step).
enum class StepFeatures {
  kColumns,     // C * H values, channel major (LibTorch's permute(0, 3, 1, 2).flatten(2))
  kHeightMean,  // C values, each the mean over the height
};

inline constexpr float kBatchNormEpsilon = 1e-5f;  // LibTorch's BatchNorm2d default

// The whole network: backbone (convolutions, then residual blocks), feature map to time steps,
// the features layer (ReLU, then dropout in training), the BiRNN layers (dropout in training
// between them) and the classifier, whose class 0 is the CTC blank.
struct NetworkSpec {
  int input_height = 0;
  int classes = 0;
  std::vector<ConvolutionSpec> convolutions;  // small: every convolution; resnet: the stem
  std::vector<ResidualBlockSpec> blocks;      // resnet: after the stem
  StepFeatures step_features = StepFeatures::kColumns;
  int map_channels = 0, map_height = 0;  // the backbone's feature map (its height before the mean)
  DenseSpec features;
  std::vector<BiRnnSpec> rnns;
  DenseSpec classifier;
  double dropout = 0;

  // Every weight tensor with its shape and dtype, in forward order.
  std::vector<TensorSpec> tensors() const;
};

// The spec of `config` for inputs `input_height` pixels high and `classes` output classes (blank
// included). Throws ConfigError where config.validate() does, or where the height leaves no
// feature map.
NetworkSpec network_spec(const ModelConfig& config, int input_height, int classes);

// Checks that `tensors` hold every weight of `spec` with its shape and dtype, every value finite,
// and no other network weight (see is_network_weight: a checkpoint's optimizer and trainer state
// are not).
// Throws ModelFileError naming `path` and the first tensor that differs.
void check_weights(const NetworkSpec& spec, const std::map<std::string, Tensor>& tensors,
                   const std::string& path);

}  // namespace captcha
