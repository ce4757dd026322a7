// The CRNN networks (LibTorch) and the bridge between their weights and the model file.
// Internal header: it includes <torch/torch.h>, so only the torch library's sources use it.
#pragma once

#include <map>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "captcha/ctc_decode.h"
#include "captcha/model_config.h"
#include "captcha/model_file.h"
#include "captcha/network_spec.h"
#include "captcha/safetensors.h"

namespace captcha {

// Backbone + bidirectional RNN stack + linear classifier. Input N x 1 x H x W (normalised);
// output logits N x T x num_classes, T = output_time_steps(config, W).
class CrnnImpl : public torch::nn::Module {
 public:
  // The network of network_spec(config, input_height, num_classes); its parameters and buffers
  // carry the spec's tensor names. Throws ConfigError.
  CrnnImpl(const ModelConfig& config, int num_classes, int input_height);
  const NetworkSpec& spec() const { return spec_; }
  torch::Tensor forward(torch::Tensor images);
  // Sets the classifier's bias so that, before any training, the blank takes `share` of the
  // probability at every time step and the other symbols split the rest evenly (0 < share < 1).
  // A fresh network otherwise predicts every symbol equally; CTC's first steps then only teach
  // it to predict blanks, with large gradients through every layer, and the plateau that
  // follows lasts longer.
  void set_blank_share(double share);
  // small: the feature map after the first `convolutions` convolutions (with their batch norm,
  // pooling and ReLU), N x C x H x W.
  torch::Tensor feature_map(torch::Tensor images, std::size_t convolutions);
  // small: the batch norms of the convolutions from index `first` on, whose kernels copy channels
  // [0, `channels`) through unchanged, set to pass those channels through as well: their running
  // statistics, and so their shift and scale, are the mean and variance of each channel of the
  // feature map that `images` (N x 1 x H x W) produce before `first` in training. In evaluation
  // they then pass any input through; in training, batches like `images`.
  void pass_through_norms(const torch::Tensor& images, std::size_t first, int channels);

 private:
  torch::Tensor small_features(torch::Tensor x);
  torch::Tensor resnet_features(torch::Tensor x);
  void initialise_like_keras();

  NetworkSpec spec_;  // the layers below are built from it
  // Without residual blocks (small)
  std::vector<torch::nn::Conv2d> convs_;
  std::vector<torch::nn::BatchNorm2d> norms_;  // empty without batch norm
  // With residual blocks (resnet)
  torch::nn::Sequential stem_{nullptr}, stages_{nullptr};
  // Both
  torch::nn::Linear features_{nullptr};
  torch::nn::Dropout dropout_{nullptr};
  std::vector<torch::nn::LSTM> lstms_;
  std::vector<torch::nn::GRU> grus_;
  torch::nn::Linear classifier_{nullptr};
};
TORCH_MODULE(Crnn);

// Parameters and buffers as model-file tensors (float32; integer buffers as int64).
std::map<std::string, Tensor> export_weights(Crnn& network);

// Copies `tensors` into the network. Every parameter and buffer must be present with its shape;
// throws ModelFileError naming `path` otherwise. Tensors named "optimizer*" or "ema.*" (a
// checkpoint's optimizer state and weight average) are ignored.
void import_weights(Crnn& network, const std::map<std::string, Tensor>& tensors,
                    const std::string& path);

// The weights of `source`, a small network (checked against its own architecture: ModelFileError
// naming `path`), grown to `grown`, whose fresh weights are `fresh` (see ModelGrowth in
// captcha/trainer.h): every loaded unit in its place, reading only what it read before; added
// units keep their fresh incoming weights and nothing reads them yet; added convolutions copy
// the last loaded one's channels through, and in evaluation their batch norms too (see
// pass_through_norms for training). The classifier keeps the source's classes.
std::map<std::string, Tensor> grow_weights(const ModelFile& source, const ModelConfig& grown,
                                           std::map<std::string, Tensor> fresh, int input_height,
                                           const std::string& path);

// Decodes logits N x T x C: softmax (restricted to `allowed` when non-empty), then greedy
// (beam_width <= 1) or prefix beam search, each reading held to `lengths` (see decode()).
std::vector<DecodedText> decode_logits(const torch::Tensor& logits, const Charset& charset,
                                       int beam_width = 0, const std::vector<bool>& allowed = {},
                                       LengthRange lengths = {});

}  // namespace captcha
