// CRNN networks: the small Keras-style model and a ResNet-18-style backbone, each followed by
// bidirectional LSTM/GRU layers; plus weight import/export for the model file.
#include "crnn.h"
#include "fused_lstm.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "captcha/errors.h"

namespace captcha {

namespace nn = torch::nn;

namespace {

nn::Conv2dOptions conv_options(const ConvolutionSpec& c) {
  return nn::Conv2dOptions(c.in, c.out, c.kernel)
      .stride({c.stride_height, c.stride_width})
      .padding(c.padding())
      .bias(c.bias);
}

// ResNet basic block (ResidualBlockSpec): two convolutions with batch norm, and an identity or
// a 1x1 projection shortcut.
class BasicBlockImpl : public nn::Module {
 public:
  explicit BasicBlockImpl(const ResidualBlockSpec& spec) {
    conv1_ = register_module("conv1", nn::Conv2d(conv_options(spec.conv1)));
    bn1_ = register_module("bn1", nn::BatchNorm2d(spec.conv1.out));
    conv2_ = register_module("conv2", nn::Conv2d(conv_options(spec.conv2)));
    bn2_ = register_module("bn2", nn::BatchNorm2d(spec.conv2.out));
    if (spec.shortcut)
      shortcut_ = register_module("shortcut", nn::Sequential(nn::Conv2d(conv_options(*spec.shortcut)),
                                                             nn::BatchNorm2d(spec.shortcut->out)));
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

CrnnImpl::CrnnImpl(const ModelConfig& config, int num_classes, int input_height)
    : spec_(network_spec(config, input_height, num_classes)) {
  if (spec_.blocks.empty()) {
    // Registered in this order (every convolution, then every batch norm) so that the parameter
    // order, and so the initialisation drawn for a seed and a checkpoint's optimizer state, stay
    // those of the two-convolution network that came first.
    for (const auto& conv : spec_.convolutions) convs_.push_back(register_module(conv.name, nn::Conv2d(conv_options(conv))));
    for (const auto& conv : spec_.convolutions)
      if (!conv.norm.empty()) norms_.push_back(register_module(conv.norm, nn::BatchNorm2d(conv.out)));
  } else {
    // The stem's convolution, batch norm and ReLU as one Sequential, "stem.0" and "stem.1".
    stem_ = register_module("stem", nn::Sequential());
    for (const auto& conv : spec_.convolutions) {
      stem_->push_back(nn::Conv2d(conv_options(conv)));
      stem_->push_back(nn::BatchNorm2d(conv.out));
      stem_->push_back(nn::ReLU());
    }
    stages_ = register_module("stages", nn::Sequential());
    for (const auto& block : spec_.blocks) stages_->push_back(BasicBlock(block));
  }
  features_ = register_module(spec_.features.name, nn::Linear(spec_.features.in, spec_.features.out));
  dropout_ = register_module("dropout", nn::Dropout(spec_.dropout));
  for (const auto& rnn : spec_.rnns) {
    if (rnn.gru) {
      grus_.push_back(register_module(rnn.name, nn::GRU(nn::GRUOptions(rnn.input, rnn.hidden).batch_first(true).bidirectional(true))));
    } else {
      lstms_.push_back(register_module(rnn.name, nn::LSTM(nn::LSTMOptions(rnn.input, rnn.hidden).batch_first(true).bidirectional(true))));
    }
  }
  classifier_ = register_module(spec_.classifier.name, nn::Linear(spec_.classifier.in, spec_.classifier.out));
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
  for (std::size_t i = 0; i < lstms_.size(); ++i) init_rnn(*lstms_[i], 4, spec_.rnns[i].hidden);
  for (std::size_t i = 0; i < grus_.size(); ++i) init_rnn(*grus_[i], 3, spec_.rnns[i].hidden);
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
    x = torch::relu(spec_.convolutions[i].pool ? torch::max_pool2d(x, 2) : x);
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
  return dropout_->forward(torch::relu(features_->forward(x)));
}

torch::Tensor CrnnImpl::resnet_features(torch::Tensor x) {
  x = stages_->forward(stem_->forward(channels_last(x)));
  x = x.mean(2).permute({0, 2, 1});  // average over the height: N x W x C
  return dropout_->forward(torch::relu(features_->forward(x)));
}

torch::Tensor CrnnImpl::forward(torch::Tensor images) {
  auto x = spec_.blocks.empty() ? small_features(images) : resnet_features(images);
  for (std::size_t i = 0; i < spec_.rnns.size(); ++i) {
    if (i > 0) x = dropout_->forward(x);
    x = spec_.rnns[i].gru ? std::get<0>(grus_[i]->forward(x)) : fused_bilstm(lstms_[i], x);
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
  const int classes = source.charset.num_classes();
  const NetworkSpec old = network_spec(source.config, input_height, classes);
  const NetworkSpec spec = network_spec(grown, input_height, classes);
  check_weights(old, source.tensors, path);
  const auto& from = source.tensors;
  const auto grow = [&](const std::string& name, const std::vector<std::int64_t>& rows,
                        const std::vector<std::int64_t>& columns = {}) {
    place(from.at(name), fresh.at(name), rows, columns);
  };
  // Convolutions: those loaded widen; added ones copy the last one's channels through.
  const std::size_t loaded = old.convolutions.size();
  for (std::size_t i = 0; i < spec.convolutions.size(); ++i) {
    const ConvolutionSpec& conv = spec.convolutions[i];
    if (i < loaded) {
      const ConvolutionSpec& was = old.convolutions[i];
      const auto rows = unit_places(was.out, conv.out);
      grow(conv.name + ".weight", rows, unit_places(was.in, conv.in));
      if (was.bias) grow(conv.name + ".bias", rows);
      if (!was.norm.empty()) {
        for (const char* field : {".weight", ".bias", ".running_mean", ".running_var"}) grow(conv.norm + field, rows);
        fresh[conv.norm + ".num_batches_tracked"] = from.at(was.norm + ".num_batches_tracked");
      }
      continue;
    }
    Tensor& kernel = fresh.at(conv.name + ".weight");  // out x in x 3 x 3
    auto* values = reinterpret_cast<float*>(kernel.bytes.data());
    const std::int64_t row = kernel.shape[1] * 9;
    for (std::int64_t c = 0; c < old.map_channels; ++c) {
      std::fill_n(values + c * row, row, 0.0f);
      values[c * row + c * 9 + 4] = 1.0f;
    }
    // The batch norm passes them through (in evaluation) until pass_through_norms measures them:
    // running mean 0 and variance 1 as fresh, so its scale is sqrt(1 + eps).
    if (!conv.norm.empty()) {
      auto* scale = reinterpret_cast<float*>(fresh.at(conv.norm + ".weight").bytes.data());
      for (std::int64_t c = 0; c < old.map_channels; ++c) scale[c] = std::sqrt(1.0f + kBatchNormEpsilon);
    }
  }
  const auto feature_rows = unit_places(old.features.out, spec.features.out);
  grow(spec.features.name + ".weight", feature_rows, unit_places(old.features.in, spec.features.in));
  grow(spec.features.name + ".bias", feature_rows);
  // BiRNN layers: the gates are blocks of the rows; a later layer reads both directions.
  for (std::size_t i = 0; i < old.rnns.size(); ++i) {
    const BiRnnSpec &was = old.rnns[i], &rnn = spec.rnns[i];
    const auto rows = unit_places(was.gates() * was.hidden, rnn.gates() * rnn.hidden, rnn.gates());
    const auto inputs = unit_places(was.input, rnn.input, i == 0 ? 1 : 2);
    for (const std::string direction : {"_l0", "_l0_reverse"}) {
      grow(rnn.name + ".weight_ih" + direction, rows, inputs);
      grow(rnn.name + ".weight_hh" + direction, rows, unit_places(was.hidden, rnn.hidden));
      grow(rnn.name + ".bias_ih" + direction, rows);
      grow(rnn.name + ".bias_hh" + direction, rows);
    }
  }
  // The classifier keeps every class and reads the last layer's old units only.
  const std::string classifier = spec.classifier.name;
  std::vector<float> zeros(static_cast<std::size_t>(spec.classifier.out) * spec.classifier.in);
  fresh[classifier + ".weight"] = Tensor::from_f32({spec.classifier.out, spec.classifier.in}, zeros.data());
  grow(classifier + ".weight", unit_places(spec.classifier.out, spec.classifier.out),
       unit_places(old.classifier.in, spec.classifier.in, 2));
  fresh[classifier + ".bias"] = from.at(classifier + ".bias");
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
  check_weights(network->spec(), tensors, path);
  torch::NoGradGuard no_grad;
  const auto load = [&](const std::string& name, torch::Tensor& target) {
    const Tensor& t = tensors.at(name);  // present with this shape and dtype: checked above
    target.copy_(torch::from_blob(const_cast<std::uint8_t*>(t.bytes.data()), target.sizes(),
                                  t.dtype == DType::kI64 ? torch::kLong : torch::kFloat));
  };
  for (auto& p : network->named_parameters()) load(p.key(), p.value());
  for (auto& b : network->named_buffers()) load(b.key(), b.value());
}

std::vector<DecodedText> decode_logits(const torch::Tensor& logits, const Charset& charset,
                                       int beam_width, const std::vector<bool>& allowed, LengthRange lengths) {
  const auto values = logits.detach().to(torch::kFloat).contiguous();
  return decode_logits(values.data_ptr<float>(), values.size(0), values.size(1), values.size(2), charset,
                       beam_width, allowed, lengths);
}

}  // namespace captcha
