// The network's architecture settings, stored in the model file so that loading rebuilds the
// exact network that was trained.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "captcha/enum_names.h"

namespace captcha {

enum class Architecture { kSmall, kResnet };
inline constexpr EnumName<Architecture> kArchitectureNames[] = {{Architecture::kSmall, "small"},
                                                                {Architecture::kResnet, "resnet"}};
enum class RnnType { kLstm, kGru };
inline constexpr EnumName<RnnType> kRnnTypeNames[] = {{RnnType::kLstm, "lstm"}, {RnnType::kGru, "gru"}};

struct ModelConfig {
  // "small": Conv3x3(32)+ReLU+MaxPool2, Conv3x3(64)+ReLU+MaxPool2, then a Conv3x3+ReLU without
  //          pooling for each further size in conv_channels; height folded into features,
  //          Linear(dense)+ReLU+Dropout, BiRNN(rnn_hidden[0]), BiRNN(rnn_hidden[1]), Linear.
  // "resnet": ResNet-18-style basic blocks with batch norm, width strides that keep width/4
  //           time steps, then the BiRNN layers and a linear layer.
  Architecture arch = Architecture::kSmall;
  RnnType rnn = RnnType::kLstm;
  std::vector<int> conv_channels = {32, 64};  // small: its convolutions (2 to kMaxConvolutions)
  int dense = 64;                             // small: features per time step before the RNN
  std::vector<int> rnn_hidden = {128, 64};    // per direction, one entry per BiRNN layer
  double dropout = 0.2;
  bool batch_norm = true;  // small: batch norm after each convolution (false: the exact Keras model)

  static constexpr std::size_t kMaxConvolutions = 6;
  // Upper bounds on the sizes a model file may state, far above any useful network, so that no
  // size product overflows and a crafted file cannot ask for gigabytes.
  static constexpr int kMaxChannels = 1024;
  static constexpr int kMaxFeatures = 4096;
  static constexpr int kMaxRnnHidden = 2048;
  static constexpr std::size_t kMaxRnnLayers = 8;
  static constexpr std::size_t kPooledConvolutions = 2;  // small: the first ones, each + MaxPool2

  // Throws ConfigError on a size out of range.
  void validate() const;
};

void to_json(nlohmann::json& out, const ModelConfig& config);
void from_json(const nlohmann::json& in, ModelConfig& config);

// The resnet backbone: channels of its four stages (two basic blocks each) and the (height,
// width) stride of each stage's first block: the width halves twice, the height four times.
inline constexpr int kResnetChannels[4] = {64, 128, 256, 256};
inline constexpr int kResnetStrides[4][2] = {{2, 2}, {2, 2}, {2, 1}, {2, 1}};

// The small network's features per time step (ModelConfig::dense) fitted to a training set of
// `training_images` images: the Keras model's 64 below kWideTrainingSet images, kWideFeatures
// from there: a 64-wide layer is the network's narrowest point, and a large set has the
// examples to fill a wider one.
inline constexpr int kWideFeatures = 256;
inline constexpr std::size_t kWideTrainingSet = 10000;
int fitted_features(std::size_t training_images);

// The small network's convolutions (ModelConfig::conv_channels) fitted the same way: the Keras
// model's two below kWideTrainingSet images, kDeepConvChannels from there: two 3x3 layers see
// too little of a glyph.
inline constexpr int kDeepConvChannels[] = {32, 64, 64, 64, 64};
std::vector<int> fitted_conv_channels(std::size_t training_images);

// The small network's BiRNN sizes (ModelConfig::rnn_hidden) fitted the same way: the Keras
// model's 128,64 below kWideTrainingSet images, kWideRnnHidden from there, where a 64-wide second
// layer holds the deeper network back.
inline constexpr int kWideRnnHidden[] = {128, 128};
std::vector<int> fitted_rnn_hidden(std::size_t training_images);

// Time steps the network emits for an input `width` pixels wide.
int output_time_steps(const ModelConfig& config, int width);

// Time steps CTC needs to emit `label`: its length plus one blank between each pair of equal
// neighbours.
int required_time_steps(const std::vector<int>& encoded_label);

}  // namespace captcha
