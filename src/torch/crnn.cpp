// CRNN networks: the small Keras-style model and a ResNet-18-style backbone, each followed by
// bidirectional LSTM/GRU layers; plus weight import/export for the model file.
#include "crnn.h"
#include "fused_lstm.h"

#include <malloc.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <thread>

#include "captcha/errors.h"

namespace captcha {

namespace nn = torch::nn;

namespace {

// ResNet basic block: two 3x3 convolutions with batch norm, identity or 1x1 projection shortcut.
class BasicBlockImpl : public nn::Module {
 public:
  BasicBlockImpl(int in, int out, std::vector<int64_t> stride) {
    conv1_ = register_module("conv1", nn::Conv2d(nn::Conv2dOptions(in, out, /*kernel_size=*/3)
                                                     .stride(stride).padding(1).bias(false)));
    bn1_ = register_module("bn1", nn::BatchNorm2d(out));
    conv2_ = register_module("conv2", nn::Conv2d(nn::Conv2dOptions(out, out, /*kernel_size=*/3)
                                                     .padding(1).bias(false)));
    bn2_ = register_module("bn2", nn::BatchNorm2d(out));
    if (in != out || stride[0] != 1 || stride[1] != 1) {
      shortcut_ = register_module(
          "shortcut",
          nn::Sequential(nn::Conv2d(nn::Conv2dOptions(in, out, /*kernel_size=*/1).stride(stride).bias(false)),
                         nn::BatchNorm2d(out)));
    }
  }
  torch::Tensor forward(torch::Tensor x) {
    auto y = torch::relu(bn1_->forward(conv1_->forward(x)));
    y = bn2_->forward(conv2_->forward(y));
    return torch::relu(y + (shortcut_ ? shortcut_->forward(x) : x));
  }

 private:
  nn::Conv2d conv1_{nullptr}, conv2_{nullptr};
  nn::BatchNorm2d bn1_{nullptr}, bn2_{nullptr};
  nn::Sequential shortcut_{nullptr};
};
TORCH_MODULE(BasicBlock);

}  // namespace

CrnnImpl::CrnnImpl(const ModelConfig& config, int num_classes, int input_height) : config_(config) {
  config.validate();
  int features = 0;
  if (config.arch == "small") {
    const bool bias = !config.batch_norm;  // batch norm's shift replaces the bias
    // Registered in this order (every convolution, then every batch norm) so that the parameter
    // order, and so the initialisation drawn for a seed and a checkpoint's optimizer state, stay
    // those of the two-convolution network that came first.
    const auto& channels = config.conv_channels;
    for (std::size_t i = 0; i < channels.size(); ++i)
      convs_.push_back(register_module("conv" + std::to_string(i + 1),
          nn::Conv2d(nn::Conv2dOptions(i == 0 ? 1 : channels[i - 1], channels[i], /*kernel_size=*/3).padding(1).bias(bias))));
    for (std::size_t i = 0; i < channels.size() && config.batch_norm; ++i)
      norms_.push_back(register_module("bn" + std::to_string(i + 1), nn::BatchNorm2d(channels[i])));
    dense_ = register_module("dense", nn::Linear(channels.back() * (input_height / 4), config.dense));
    features = config.dense;
  } else {
    stem_ = register_module("stem", nn::Sequential(
        nn::Conv2d(nn::Conv2dOptions(1, kResnetChannels[0], /*kernel_size=*/3).padding(1).bias(false)),
        nn::BatchNorm2d(kResnetChannels[0]), nn::ReLU()));
    stages_ = register_module("stages", nn::Sequential());
    int in = kResnetChannels[0];
    for (int s = 0; s < 4; ++s) {
      stages_->push_back(BasicBlock(in, kResnetChannels[s], std::vector<int64_t>{kResnetStrides[s][0], kResnetStrides[s][1]}));
      stages_->push_back(BasicBlock(kResnetChannels[s], kResnetChannels[s], std::vector<int64_t>{1, 1}));
      in = kResnetChannels[s];
    }
    project_ = register_module("project", nn::Linear(in, config.dense));
    features = config.dense;
  }
  dropout_ = register_module("dropout", nn::Dropout(config.dropout));
  for (std::size_t i = 0; i < config.rnn_hidden.size(); ++i) {
    const int hidden = config.rnn_hidden[i];
    const std::string name = "rnn" + std::to_string(i);
    if (config.rnn == "lstm") {
      lstms_.push_back(register_module(name, nn::LSTM(nn::LSTMOptions(features, hidden).batch_first(true).bidirectional(true))));
    } else {
      grus_.push_back(register_module(name, nn::GRU(nn::GRUOptions(features, hidden).batch_first(true).bidirectional(true))));
    }
    features = 2 * hidden;
  }
  classifier_ = register_module("classifier", nn::Linear(features, num_classes));
  initialise_like_keras();
}

void CrnnImpl::initialise_like_keras() {
  // Keras defaults, which the reference model was tuned with: Glorot-uniform kernels and zero
  // biases; recurrent matrices orthogonal per gate; LSTM forget-gate bias 1. They shorten the
  // CTC plateau at the start of training compared with LibTorch's defaults.
  torch::NoGradGuard no_grad;
  for (auto& module : modules(/*include_self=*/false)) {
    if (auto* conv = module->as<nn::Conv2d>()) {
      nn::init::xavier_uniform_(conv->weight);
      if (conv->options.bias()) nn::init::zeros_(conv->bias);
    } else if (auto* linear = module->as<nn::Linear>()) {
      nn::init::xavier_uniform_(linear->weight);
      nn::init::zeros_(linear->bias);
    }
  }
  const auto init_rnn = [](torch::nn::Module& rnn, int gates, int hidden) {
    for (auto& p : rnn.named_parameters()) {
      auto& value = p.value();
      if (p.key().rfind("weight_ih", 0) == 0) {
        nn::init::xavier_uniform_(value);
      } else if (p.key().rfind("weight_hh", 0) == 0) {
        for (int g = 0; g < gates; ++g) {
          auto block = value.narrow(0, g * hidden, hidden);
          block.copy_(nn::init::orthogonal_(torch::empty_like(block)));
        }
      } else if (p.key().rfind("bias", 0) == 0) {
        nn::init::zeros_(value);
        // LSTM gate order (i, f, g, o): forget gate bias 1, once (bias_ih only).
        if (gates == 4 && p.key().rfind("bias_ih", 0) == 0) value.narrow(0, hidden, hidden).fill_(1.0);
      }
    }
  };
  for (std::size_t i = 0; i < lstms_.size(); ++i) init_rnn(*lstms_[i], 4, config_.rnn_hidden[i]);
  for (std::size_t i = 0; i < grus_.size(); ++i) init_rnn(*grus_[i], 3, config_.rnn_hidden[i]);
}

void CrnnImpl::set_blank_share(double share) {
  torch::NoGradGuard no_grad;
  const auto others = classifier_->bias.size(0) - 1;
  if (!(share > 0 && share < 1) || others < 1) throw ConfigError("blank share must be between 0 and 1");
  classifier_->bias.zero_();
  // softmax(b)[blank] = e^b / (e^b + others) = share.
  classifier_->bias[Charset::kBlank].fill_(std::log(share * others / (1 - share)));
}

namespace {

// The images in the channels-last layout (channel stride 1), which the convolutions, batch norm
// and pooling run faster in and keep. `.contiguous(ChannelsLast)` leaves a one-channel tensor's
// strides as they are, so the layout is built by copying.
torch::Tensor channels_last(const torch::Tensor& images) {
  if (images.dim() != 4 || images.stride(1) == 1) return images;
  return torch::empty_like(images, torch::MemoryFormat::ChannelsLast).copy_(images);
}

}  // namespace

torch::Tensor CrnnImpl::feature_map(torch::Tensor x, std::size_t convolutions) {
  // Pooling before the ReLU gives the same values (max and ReLU commute) with a quarter of the
  // ReLU work.
  x = channels_last(x);
  for (std::size_t i = 0; i < convolutions && i < convs_.size(); ++i) {
    x = convs_[i]->forward(x);
    if (!norms_.empty()) x = norms_[i]->forward(x);
    x = torch::relu(i < ModelConfig::kPooledConvolutions ? torch::max_pool2d(x, 2) : x);
  }
  return x;
}

void CrnnImpl::pass_through_norms(const torch::Tensor& images, std::size_t first, int channels) {
  if (norms_.empty() || first >= norms_.size()) return;
  torch::NoGradGuard no_grad;
  // Measured as training sees the feature map (batch statistics in the loaded norms, whose
  // running statistics stay as they are); in evaluation the norms pass any input through.
  std::vector<torch::Tensor> kept;
  for (std::size_t i = 0; i < first; ++i)
    for (const auto& b : norms_[i]->buffers()) kept.push_back(b.clone());
  const bool training = is_training();
  train(true);
  const auto x = feature_map(images, first).narrow(1, 0, channels);
  train(training);
  auto restored = kept.begin();
  for (std::size_t i = 0; i < first; ++i)
    for (auto& b : norms_[i]->buffers()) b.copy_(*restored++);
  const auto mean = x.mean({0, 2, 3});
  const auto variance = x.var({0, 2, 3}, /*unbiased=*/false);
  for (std::size_t i = first; i < norms_.size(); ++i) {
    auto& norm = *norms_[i];
    // (x - mean) / sqrt(variance + eps) * scale + shift == x
    norm.running_mean.narrow(0, 0, channels).copy_(mean);
    norm.running_var.narrow(0, 0, channels).copy_(variance);
    norm.weight.narrow(0, 0, channels).copy_((variance + norm.options.eps()).sqrt());
    norm.bias.narrow(0, 0, channels).copy_(mean);
  }
}

torch::Tensor CrnnImpl::small_features(torch::Tensor x) {
  x = feature_map(x, convs_.size());
  // N x C x H x W -> N x W x (C * H): each column of the feature map is one time step.
  x = x.permute({0, 3, 1, 2}).flatten(2);
  return dropout_->forward(torch::relu(dense_->forward(x)));
}

torch::Tensor CrnnImpl::resnet_features(torch::Tensor x) {
  x = stages_->forward(stem_->forward(channels_last(x)));
  x = x.mean(2).permute({0, 2, 1});  // average over the height: N x W x C
  return dropout_->forward(torch::relu(project_->forward(x)));
}

torch::Tensor CrnnImpl::forward(torch::Tensor images) {
  auto x = config_.arch == "small" ? small_features(images) : resnet_features(images);
  const std::size_t layers = config_.rnn_hidden.size();
  for (std::size_t i = 0; i < layers; ++i) {
    if (i > 0) x = dropout_->forward(x);
    x = config_.rnn == "lstm" ? fused_bilstm(lstms_[i], x) : std::get<0>(grus_[i]->forward(x));
  }
  return classifier_->forward(x);
}

namespace {

// Where each of a layer's `old_size` units sits once the layer has `new_size`: in the same
// place, as a layer grows at its end; for a layer of `blocks` equal blocks (an RNN's gates, a
// BiRNN's two directions), in the same place of its block.
std::vector<std::int64_t> unit_places(std::int64_t old_size, std::int64_t new_size, std::int64_t blocks = 1) {
  std::vector<std::int64_t> places;
  for (std::int64_t b = 0; b < blocks; ++b)
    for (std::int64_t j = 0; j < old_size / blocks; ++j) places.push_back(b * (new_size / blocks) + j);
  return places;
}

// `old`'s values placed in `grown`, a tensor of the grown shape: its row r in row rows[r], its
// column c in column columns[c] (a convolution's kernel, the further dimensions, whole). The old
// rows' other columns are zeroed, so the old units do not read what was added; the rows added
// keep `grown`'s values. A 1-D tensor has rows only.
void place(const Tensor& old, Tensor& grown, const std::vector<std::int64_t>& rows,
           const std::vector<std::int64_t>& columns = {}) {
  auto* out = reinterpret_cast<float*>(grown.bytes.data());
  if (old.shape.size() < 2) {
    for (std::size_t r = 0; r < rows.size(); ++r) out[rows[r]] = old.f32()[r];
    return;
  }
  std::int64_t inner = 1;
  for (std::size_t d = 2; d < old.shape.size(); ++d) inner *= old.shape[d];
  const std::int64_t old_row = old.shape[1] * inner, grown_row = grown.shape[1] * inner;
  for (std::size_t r = 0; r < rows.size(); ++r) {
    float* row = out + rows[r] * grown_row;
    std::fill_n(row, grown_row, 0.0f);
    for (std::size_t c = 0; c < columns.size(); ++c)
      std::copy_n(old.f32() + r * old_row + c * inner, inner, row + columns[c] * inner);
  }
}

}  // namespace

std::map<std::string, Tensor> grow_weights(const ModelFile& source, const ModelConfig& grown,
                                           std::map<std::string, Tensor> fresh, int input_height,
                                           const std::string& path) {
  const ModelConfig& old = source.config;
  {
    Crnn check(old, source.charset.num_classes(), input_height);
    import_weights(check, source.tensors, path);
  }
  const auto& from = source.tensors;
  const auto grow = [&](const std::string& name, const std::vector<std::int64_t>& rows,
                        const std::vector<std::int64_t>& columns = {}) {
    place(from.at(name), fresh.at(name), rows, columns);
  };
  // Convolutions: those loaded widen; added ones copy the last one's channels through.
  const std::size_t loaded = old.conv_channels.size();
  for (std::size_t i = 0; i < grown.conv_channels.size(); ++i) {
    const std::string conv = "conv" + std::to_string(i + 1), norm = "bn" + std::to_string(i + 1);
    if (i < loaded) {
      const auto rows = unit_places(old.conv_channels[i], grown.conv_channels[i]);
      grow(conv + ".weight", rows, unit_places(i == 0 ? 1 : old.conv_channels[i - 1], i == 0 ? 1 : grown.conv_channels[i - 1]));
      if (!old.batch_norm) grow(conv + ".bias", rows);
      if (old.batch_norm) {
        for (const char* field : {".weight", ".bias", ".running_mean", ".running_var"}) grow(norm + field, rows);
        fresh[norm + ".num_batches_tracked"] = from.at(norm + ".num_batches_tracked");
      }
      continue;
    }
    Tensor& kernel = fresh.at(conv + ".weight");  // out x in x 3 x 3
    auto* values = reinterpret_cast<float*>(kernel.bytes.data());
    const std::int64_t row = kernel.shape[1] * 9;
    for (std::int64_t c = 0; c < old.conv_channels.back(); ++c) {
      std::fill_n(values + c * row, row, 0.0f);
      values[c * row + c * 9 + 4] = 1.0f;
    }
    // The batch norm passes them through (in evaluation) until pass_through_norms measures them:
    // running mean 0 and variance 1 as fresh, so its scale is sqrt(1 + eps) (eps as BatchNorm2d's
    // default, which the network uses).
    if (old.batch_norm) {
      auto* scale = reinterpret_cast<float*>(fresh.at(norm + ".weight").bytes.data());
      for (std::int64_t c = 0; c < old.conv_channels.back(); ++c) scale[c] = std::sqrt(1.0f + 1e-5f);
    }
  }
  const std::int64_t height = input_height / 4;
  grow("dense.weight", unit_places(old.dense, grown.dense),
       unit_places(old.conv_channels.back() * height, grown.conv_channels.back() * height));
  grow("dense.bias", unit_places(old.dense, grown.dense));
  // BiRNN layers: the gates are blocks of the rows; a later layer reads both directions.
  const std::int64_t gates = old.rnn == "lstm" ? 4 : 3;
  for (std::size_t i = 0; i < old.rnn_hidden.size(); ++i) {
    const auto rows = unit_places(gates * old.rnn_hidden[i], gates * grown.rnn_hidden[i], gates);
    const auto inputs = i == 0 ? unit_places(old.dense, grown.dense)
                               : unit_places(2 * old.rnn_hidden[i - 1], 2 * grown.rnn_hidden[i - 1], 2);
    for (const std::string direction : {"", "_reverse"}) {
      const std::string layer = "rnn" + std::to_string(i) + ".";
      grow(layer + "weight_ih_l0" + direction, rows, inputs);
      grow(layer + "weight_hh_l0" + direction, rows, unit_places(old.rnn_hidden[i], grown.rnn_hidden[i]));
      grow(layer + "bias_ih_l0" + direction, rows);
      grow(layer + "bias_hh_l0" + direction, rows);
    }
  }
  const Tensor& classifier = from.at("classifier.weight");
  std::vector<float> zeros(static_cast<std::size_t>(classifier.shape[0] * 2 * grown.rnn_hidden.back()));
  fresh["classifier.weight"] = Tensor::from_f32({classifier.shape[0], 2 * grown.rnn_hidden.back()}, zeros.data());
  grow("classifier.weight", unit_places(classifier.shape[0], classifier.shape[0]),
       unit_places(2 * old.rnn_hidden.back(), 2 * grown.rnn_hidden.back(), 2));
  fresh["classifier.bias"] = from.at("classifier.bias");
  return fresh;
}

std::map<std::string, Tensor> export_weights(Crnn& network) {
  std::map<std::string, Tensor> out;
  const auto add = [&](const std::string& name, const torch::Tensor& value) {
    Tensor t;
    t.shape.assign(value.sizes().begin(), value.sizes().end());
    const bool integer = value.scalar_type() == torch::kLong;
    t.dtype = integer ? DType::kI64 : DType::kF32;
    const auto contiguous = value.detach().to(torch::kCPU, integer ? torch::kLong : torch::kFloat).contiguous();
    t.bytes.resize(contiguous.numel() * contiguous.element_size());
    if (!t.bytes.empty()) std::memcpy(t.bytes.data(), contiguous.data_ptr(), t.bytes.size());
    out.emplace(name, std::move(t));
  };
  for (const auto& p : network->named_parameters()) add(p.key(), p.value());
  for (const auto& b : network->named_buffers()) add(b.key(), b.value());
  return out;
}

void import_weights(Crnn& network, const std::map<std::string, Tensor>& tensors, const std::string& path) {
  torch::NoGradGuard no_grad;
  std::size_t used = 0;
  const auto load = [&](const std::string& name, torch::Tensor& target) {
    const auto it = tensors.find(name);
    if (it == tensors.end()) throw ModelFileError(path + ": missing tensor " + name + " for this architecture");
    const Tensor& t = it->second;
    if (std::vector<int64_t>(target.sizes().begin(), target.sizes().end()) != t.shape)
      throw ModelFileError(path + ": tensor " + name + " has the wrong shape for this architecture");
    const bool integer = target.scalar_type() == torch::kLong;
    if ((integer ? DType::kI64 : DType::kF32) != t.dtype)
      throw ModelFileError(path + ": tensor " + name + " has the wrong dtype");
    auto source = torch::from_blob(const_cast<std::uint8_t*>(t.bytes.data()), target.sizes(),
                                   integer ? torch::kLong : torch::kFloat);
    target.copy_(source);
    ++used;
  };
  for (auto& p : network->named_parameters()) load(p.key(), p.value());
  for (auto& b : network->named_buffers()) load(b.key(), b.value());
  std::size_t weights_in_file = 0;
  for (const auto& [name, t] : tensors) weights_in_file += is_network_weight(name);
  if (weights_in_file != used)
    throw ModelFileError(path + ": holds " + std::to_string(weights_in_file) + " weight tensors, the architecture has " + std::to_string(used));
}

std::vector<DecodedText> decode_logits(const torch::Tensor& logits, const Charset& charset,
                                       int beam_width, const std::vector<bool>& allowed, LengthRange lengths) {
  const auto values = logits.detach().to(torch::kFloat).contiguous();
  return decode_logits(values.data_ptr<float>(), values.size(0), values.size(1), values.size(2), charset,
                       beam_width, allowed, lengths);
}

void configure_torch(int threads) {
  const int n = threads > 0 ? threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  torch::set_num_threads(n);
  // glibc hands blocks over 128 KiB-32 MiB to mmap and back to the kernel when freed, so each
  // batch's activations (tens of MB) came as fresh pages, faulted in and zeroed by the kernel at
  // every step: about 40% of a training step on this project's machine. Freed memory is kept
  // for the next batch instead.
  mallopt(M_MMAP_THRESHOLD, 1 << 30);
  mallopt(M_TRIM_THRESHOLD, std::numeric_limits<int>::max());
}

}  // namespace captcha
