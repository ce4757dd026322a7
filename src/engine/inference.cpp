// The inference engine, on its own kernels only. At load, the model file's weights are checked
// against the architecture and put into the layouts the steps use (batch norm folded into the
// convolutions, convolution, RNN and fully connected matrices transposed and packed). Per input
// shape an execution plan is built: the chain of steps with their buffers. Plans are pooled, so
// concurrent calls each run a plan of their own.
//
// Feature maps are channels last (n x h x w x c). The small network's 3x3 convolutions run on
// the fused Winograd kernels (small_cnn.h) where the CPU and the channel counts allow; every
// other convolution is a product of its input patches (im2col, a chunk of output pixels at a
// time) with its weights, on the dense layer's kernel.
#include "captcha/inference.h"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <thread>

#include "captcha/errors.h"
#include "captcha/network_spec.h"
#include "kernels.h"
#include "small_cnn.h"

namespace captcha {

namespace {

// A convolution with batch norm already folded in: weights O x I x KH x KW, bias O; `product`
// the same as a dense layer over its input patches (KH x KW x I values, channels minor).
struct ConvLayer {
  int out = 0, in = 0, kernel = 0;
  int stride_height = 1, stride_width = 1, padding = 0;
  std::vector<float> weight, bias;
  engine::DenseWeights product;
};

struct ResidualBlock {
  ConvLayer conv1, conv2;
  std::optional<ConvLayer> shortcut;
};

// `m` (rows x cols) transposed.
std::vector<float> transposed(const std::vector<float>& m, int rows, int cols) {
  std::vector<float> out(m.size());
  engine::transpose(m.data(), rows, cols, out.data(), static_cast<std::size_t>(rows));
  return out;
}

// Fills `layer.product`: the weights O x I x KH x KW as O x (KH x KW x I), the order of the
// input patches' values.
void prepare_product(ConvLayer& layer) {
  const int taps = layer.kernel * layer.kernel;
  std::vector<float> patch_major(layer.weight.size());
  for (int o = 0; o < layer.out; ++o)
    for (int i = 0; i < layer.in; ++i)
      for (int t = 0; t < taps; ++t)
        patch_major[(static_cast<std::size_t>(o) * taps + t) * layer.in + i] =
            layer.weight[(static_cast<std::size_t>(o) * layer.in + i) * taps + t];
  layer.product = engine::prepare_dense(patch_major, layer.bias, taps * layer.in, layer.out);
}

// The model's weights by name, once check_weights has found each with the spec's shape.
class WeightReader {
 public:
  explicit WeightReader(const ModelFile& model) : model_(model) {}

  std::vector<float> values(const std::string& name) const {
    const Tensor& t = model_.tensors.at(name);
    return std::vector<float>(t.f32(), t.f32() + t.numel());
  }

  // A convolution with its batch norm, if any, folded in.
  ConvLayer conv(const ConvolutionSpec& spec) const {
    ConvLayer layer;
    layer.in = spec.in;
    layer.out = spec.out;
    layer.kernel = spec.kernel;
    layer.stride_height = spec.stride_height;
    layer.stride_width = spec.stride_width;
    layer.padding = spec.padding();
    layer.weight = values(spec.name + ".weight");
    layer.bias = spec.bias ? values(spec.name + ".bias") : std::vector<float>(spec.out, 0.0f);
    if (!spec.norm.empty()) {
      const auto gamma = values(spec.norm + ".weight"), beta = values(spec.norm + ".bias");
      const auto mean = values(spec.norm + ".running_mean"), var = values(spec.norm + ".running_var");
      const std::size_t per_output = static_cast<std::size_t>(spec.in) * spec.kernel * spec.kernel;
      for (int o = 0; o < spec.out; ++o) {
        const float scale = gamma[o] / std::sqrt(var[o] + kBatchNormEpsilon);
        for (std::size_t k = 0; k < per_output; ++k) layer.weight[o * per_output + k] *= scale;
        layer.bias[o] = (layer.bias[o] - mean[o]) * scale + beta[o];
      }
    }
    return layer;
  }

  // A fully connected layer for the engine's kernel (LibTorch's weight: out x in), its input
  // columns reordered by `column_order` where given (new column k reads old column_order[k]).
  engine::DenseWeights linear(const DenseSpec& spec, const std::vector<int>& column_order = {}) const {
    std::vector<float> weight = values(spec.name + ".weight");
    if (!column_order.empty()) {
      std::vector<float> reordered(weight.size());
      for (std::size_t o = 0; o < static_cast<std::size_t>(spec.out); ++o)
        for (std::size_t k = 0; k < column_order.size(); ++k)
          reordered[o * spec.in + k] = weight[o * spec.in + column_order[k]];
      weight = std::move(reordered);
    }
    return engine::prepare_dense(weight, values(spec.name + ".bias"), spec.in, spec.out);
  }

  // A bidirectional LSTM/GRU layer.
  engine::BiRnnWeights rnn(const BiRnnSpec& spec) const {
    engine::BiRnnWeights layer;
    layer.gru = spec.gru;
    layer.input = spec.input;
    layer.hidden = spec.hidden;
    const int width = layer.gates() * spec.hidden;
    for (int d = 0; d < 2; ++d) {
      const std::string suffix = d == 0 ? "_l0" : "_l0_reverse";
      layer.input_weights[d] = transposed(values(spec.name + ".weight_ih" + suffix), width, spec.input);
      layer.recurrent_weights[d] = transposed(values(spec.name + ".weight_hh" + suffix), width, spec.hidden);
      layer.input_bias[d] = values(spec.name + ".bias_ih" + suffix);
      auto recurrent_bias = values(spec.name + ".bias_hh" + suffix);
      if (spec.gru) {
        layer.recurrent_bias[d] = std::move(recurrent_bias);
      } else {
        for (int k = 0; k < width; ++k) layer.input_bias[d][k] += recurrent_bias[k];
      }
    }
    engine::pack_birnn_panels(layer);
    return layer;
  }

 private:
  const ModelFile& model_;
};

// A feature map in a plan's buffers: n x h x w x c, channels last.
struct Map {
  float* data = nullptr;
  int n = 0, h = 0, w = 0, c = 0;
  std::size_t floats() const { return static_cast<std::size_t>(n) * h * w * c; }
};

// Output pixels per im2col chunk: their patches (up to 96 x 9 x 512 floats) stay in L2.
constexpr long kPatchRows = 96;

// dst (n x oh x ow x out) = conv(src) + bias, plus `dst`'s own values where `sum`, then ReLU
// where `relu`: chunks of output pixels split between the threads, each chunk's input patches
// gathered, then multiplied with the weights on the dense layer's kernel.
void convolution_forward(const ConvLayer& layer, const Map& src, int oh, int ow, bool relu, bool sum, float* dst) {
  const long pixels = static_cast<long>(src.n) * oh * ow;
  const long chunks = (pixels + kPatchRows - 1) / kPatchRows;
  const int k = layer.kernel, patch = k * k * src.c, out = layer.out;
#pragma omp parallel for schedule(static)
  for (long chunk = 0; chunk < chunks; ++chunk) {
    thread_local std::vector<float> patches, product, scratch;
    const long first = chunk * kPatchRows;
    const int count = static_cast<int>(std::min(kPatchRows, pixels - first));
    patches.resize(static_cast<std::size_t>(count) * patch);
    for (int i = 0; i < count; ++i) {
      const long pixel = first + i;
      const int image = static_cast<int>(pixel / (static_cast<long>(oh) * ow)), y = static_cast<int>(pixel / ow % oh),
                x = static_cast<int>(pixel % ow);
      float* row = patches.data() + static_cast<std::size_t>(i) * patch;
      for (int ky = 0; ky < k; ++ky)
        for (int kx = 0; kx < k; ++kx) {
          const int iy = y * layer.stride_height - layer.padding + ky, ix = x * layer.stride_width - layer.padding + kx;
          float* tap = row + (ky * k + kx) * src.c;
          if (iy >= 0 && iy < src.h && ix >= 0 && ix < src.w)
            std::memcpy(tap, src.data + ((static_cast<std::size_t>(image) * src.h + iy) * src.w + ix) * src.c, sizeof(float) * src.c);
          else
            std::memset(tap, 0, sizeof(float) * src.c);
        }
    }
    scratch.resize(std::max<std::size_t>(engine::dense_scratch_floats(layer.product, count), 1));
    float* target = dst + static_cast<std::size_t>(first) * out;
    if (!sum) {
      engine::dense_forward(layer.product, patches.data(), count, relu, target, scratch.data());
      continue;
    }
    product.resize(static_cast<std::size_t>(count) * out);
    engine::dense_forward(layer.product, patches.data(), count, /*relu=*/false, product.data(), scratch.data());
    for (std::size_t j = 0; j < product.size(); ++j) {
      const float v = target[j] + product[j];
      target[j] = relu ? std::max(v, 0.0f) : v;
    }
  }
}

}  // namespace

struct InferenceNetwork::Impl {
  NetworkSpec spec;
  ModelConfig config;
  std::vector<ConvLayer> convolutions;  // spec.convolutions, batch norm folded in
  std::vector<ResidualBlock> blocks;    // spec.blocks, likewise
  // On AVX2 machines, where the spec starts with 3x3 convolutions of sizes its kernels take
  // (two at least, the first pooled): those on the fused Winograd kernels (see
  // engine::small_cnn_forward).
  std::optional<engine::SmallCnnWeights> fast_cnn;
  std::size_t fast_convolutions = 0;  // how many of `convolutions` fast_cnn computes
  // Whether fast_cnn computes every convolution and writes the features layer's input rows,
  // whose columns are then in its output order (height major instead of channel major).
  bool fast_features = false;
  engine::DenseWeights features;
  std::vector<engine::BiRnnWeights> rnns;
  engine::DenseWeights classifier;

  // The steps for one input shape with their buffers.
  struct Plan {
    int batch = 0, width = 0, steps = 0;
    float* input = nullptr;
    float* logits = nullptr;
    std::vector<std::unique_ptr<float[]>> buffers;  // uninitialised: pages never written cost nothing
    std::vector<std::function<void()>> sequence;
  };
  class PlanBuilder;

  mutable std::mutex mutex;
  mutable std::map<std::pair<int, int>, std::vector<std::unique_ptr<Plan>>> idle_plans;

  std::unique_ptr<Plan> build_plan(int batch, int width) const;
  std::unique_ptr<Plan> take_plan(int batch, int width) const {
    {
      std::lock_guard<std::mutex> lock(mutex);
      auto& idle = idle_plans[{batch, width}];
      if (!idle.empty()) {
        auto plan = std::move(idle.back());
        idle.pop_back();
        return plan;
      }
    }
    return build_plan(batch, width);
  }
  // Runs `batch` images on a plan of their shape; writes their logits to `out`.
  void run_plan(const float* images, int batch, int width, float* out) const;
  void return_plan(std::unique_ptr<Plan> plan) const {
    std::lock_guard<std::mutex> lock(mutex);
    idle_plans[{plan->batch, plan->width}].push_back(std::move(plan));
  }
};

// Appends steps to a plan, each with the buffers it writes.
class InferenceNetwork::Impl::PlanBuilder {
 public:
  explicit PlanBuilder(Plan& plan) : plan_(plan) {}

  // A convolution, written to a new map or summed onto `sum_into` (a ResNet block's shortcut).
  Map convolution(const Map& src, const ConvLayer& layer, bool relu, const Map* sum_into = nullptr) {
    const int oh = (src.h + 2 * layer.padding - layer.kernel) / layer.stride_height + 1;
    const int ow = (src.w + 2 * layer.padding - layer.kernel) / layer.stride_width + 1;
    Map dst = sum_into ? *sum_into : Map{nullptr, src.n, oh, ow, layer.out};
    if (!sum_into) dst.data = buffer(dst.floats());
    const bool sum = sum_into != nullptr;
    plan_.sequence.push_back([&layer, src, dst, relu, sum] { convolution_forward(layer, src, dst.h, dst.w, relu, sum, dst.data); });
    return dst;
  }

  // 2x2 max pooling, stride 2 (an odd last row or column dropped).
  Map max_pool(const Map& src) {
    Map dst{nullptr, src.n, src.h / 2, src.w / 2, src.c};
    dst.data = buffer(dst.floats());
    plan_.sequence.push_back([src, dst] {
      const long rows = static_cast<long>(dst.n) * dst.h;
#pragma omp parallel for schedule(static)
      for (long row = 0; row < rows; ++row) {
        const long image = row / dst.h, y = row % dst.h;
        const float* top = src.data + ((image * src.h + 2 * y) * src.w) * src.c;
        const float* bottom = top + static_cast<std::size_t>(src.w) * src.c;
        float* out = dst.data + static_cast<std::size_t>(row) * dst.w * dst.c;
        for (int x = 0; x < dst.w; ++x)
          for (int c = 0; c < src.c; ++c) {
            const std::size_t left = static_cast<std::size_t>(2 * x) * src.c + c, right = left + src.c;
            out[static_cast<std::size_t>(x) * dst.c + c] =
                std::max(std::max(top[left], top[right]), std::max(bottom[left], bottom[right]));
          }
      }
    });
    return dst;
  }

  // The map's columns as rows (n, w) of C * H features (c major, h minor): LibTorch's
  // permute(0, 3, 1, 2).flatten(2).
  float* columns_as_rows(const Map& src) {
    float* dst = buffer(src.floats());
    plan_.sequence.push_back([src, dst] {
      for (int n = 0; n < src.n; ++n)
        for (int y = 0; y < src.h; ++y)
          for (int x = 0; x < src.w; ++x) {
            const float* in = src.data + ((static_cast<std::size_t>(n) * src.h + y) * src.w + x) * src.c;
            float* row = dst + (static_cast<std::size_t>(n) * src.w + x) * src.c * src.h;
            for (int c = 0; c < src.c; ++c) row[static_cast<std::size_t>(c) * src.h + y] = in[c];
          }
    });
    return dst;
  }

  // The map's columns as rows (n, w) of C features, averaged over the height.
  float* height_mean_as_rows(const Map& src) {
    float* dst = buffer(static_cast<std::size_t>(src.n) * src.w * src.c);
    plan_.sequence.push_back([src, dst] {
      const float scale = 1.0f / static_cast<float>(src.h);
      for (int n = 0; n < src.n; ++n)
        for (int x = 0; x < src.w; ++x) {
          float* row = dst + (static_cast<std::size_t>(n) * src.w + x) * src.c;
          std::fill(row, row + src.c, 0.0f);
          for (int y = 0; y < src.h; ++y) {
            const float* in = src.data + ((static_cast<std::size_t>(n) * src.h + y) * src.w + x) * src.c;
            for (int c = 0; c < src.c; ++c) row[c] += in[c];
          }
          if (src.h > 1)
            for (int c = 0; c < src.c; ++c) row[c] *= scale;
        }
    });
    return dst;
  }

  // Rows (n, t) x input -> rows (n, t) x 2 hidden: both directions, concatenated.
  float* birnn(const float* src, const engine::BiRnnWeights& layer, int batch, int steps) {
    float* dst = buffer(static_cast<std::size_t>(batch) * steps * 2 * layer.hidden);
    float* scratch = buffer(engine::birnn_scratch_floats(layer, batch, steps));
    plan_.sequence.push_back(
        [&layer, src, dst, scratch, batch, steps] { engine::birnn_forward(layer, src, batch, steps, dst, scratch); });
    return dst;
  }

  // A fully connected layer: rows x in -> rows x out.
  float* dense(const float* src, int rows, const engine::DenseWeights& layer, bool relu) {
    float* dst = buffer(static_cast<std::size_t>(rows) * layer.out);
    float* scratch = buffer(std::max<std::size_t>(engine::dense_scratch_floats(layer, rows), 1));
    plan_.sequence.push_back([&layer, src, dst, scratch, rows, relu] { engine::dense_forward(layer, src, rows, relu, dst, scratch); });
    return dst;
  }

  // The fused convolutions on `images` (n x h x w): rows (n, out_w) of out_h x channels
  // values, height major (the dense layer's permuted input); the map's size in `size`.
  float* fast_small_features(const float* images, int batch, int h, int w, const engine::SmallCnnWeights& cnn, Map& size) {
    int out_h = 0, out_w = 0;
    engine::small_cnn_output_size(cnn, h, w, out_h, out_w);
    size = Map{nullptr, batch, out_h, out_w, cnn.out_channels()};
    float* scratch = buffer(std::max<std::size_t>(engine::small_cnn_scratch_floats(cnn, batch, h, w), 1));
    float* features = buffer(size.floats());
    plan_.sequence.push_back([&cnn, images, scratch, features, batch, h, w] {
      engine::small_cnn_forward(cnn, images, batch, h, w, scratch, features);
    });
    return features;
  }

  // The same as a channels-last map, for the convolutions after the fused ones.
  Map fast_small_feature_map(const float* images, int batch, int h, int w, const engine::SmallCnnWeights& cnn) {
    Map map;
    const float* rows = fast_small_features(images, batch, h, w, cnn, map);
    map.data = buffer(map.floats());
    plan_.sequence.push_back([rows, map] {
      for (int n = 0; n < map.n; ++n)
        for (int x = 0; x < map.w; ++x)
          for (int y = 0; y < map.h; ++y)
            std::memcpy(map.data + ((static_cast<std::size_t>(n) * map.h + y) * map.w + x) * map.c,
                        rows + ((static_cast<std::size_t>(n) * map.w + x) * map.h + y) * map.c, sizeof(float) * map.c);
    });
    return map;
  }

  float* buffer(std::size_t floats) {
    plan_.buffers.emplace_back(new float[std::max<std::size_t>(floats, 1)]);
    return plan_.buffers.back().get();
  }

 private:
  Plan& plan_;
};

std::unique_ptr<InferenceNetwork::Impl::Plan> InferenceNetwork::Impl::build_plan(int batch, int width) const {
  auto plan = std::make_unique<Plan>();
  plan->batch = batch;
  plan->width = width;
  plan->steps = output_time_steps(config, width);
  PlanBuilder build(*plan);
  const int height = spec.input_height;
  plan->input = build.buffer(static_cast<std::size_t>(batch) * height * width);
  float* rows = nullptr;
  if (fast_features) {
    // The fused kernels write the features layer's input rows directly.
    Map size;
    rows = build.fast_small_features(plan->input, batch, height, width, *fast_cnn, size);
  } else {
    Map x{plan->input, batch, height, width, 1};
    std::size_t first = 0;
    if (fast_cnn) {
      x = build.fast_small_feature_map(plan->input, batch, height, width, *fast_cnn);
      first = fast_convolutions;
    }
    for (std::size_t i = first; i < convolutions.size(); ++i) {
      // Max pooling after the ReLU gives the same values (max and ReLU commute).
      x = build.convolution(x, convolutions[i], spec.convolutions[i].relu);
      if (spec.convolutions[i].pool) x = build.max_pool(x);
    }
    for (const auto& block : blocks) {
      const Map y = build.convolution(x, block.conv1, /*relu=*/true);
      // The block's output: the shortcut first, then conv2 + batch norm summed onto it, ReLU.
      Map out = x;
      if (block.shortcut) {
        out = build.convolution(x, *block.shortcut, /*relu=*/false);
      } else {
        out.data = build.buffer(x.floats());  // the identity, copied: the sum writes onto it
        plan->sequence.push_back([x, out] { std::memcpy(out.data, x.data, sizeof(float) * x.floats()); });
      }
      x = build.convolution(y, block.conv2, /*relu=*/true, &out);
    }
    rows = spec.step_features == StepFeatures::kColumns ? build.columns_as_rows(x) : build.height_mean_as_rows(x);
  }
  rows = build.dense(rows, batch * plan->steps, features, spec.features.relu);
  for (const auto& rnn : rnns) rows = build.birnn(rows, rnn, batch, plan->steps);
  plan->logits = build.dense(rows, batch * plan->steps, classifier, spec.classifier.relu);
  return plan;
}

namespace {

// How many of the spec's first convolutions the engine's fused kernels compute on this CPU: 3x3,
// stride 1, ReLU, the first pooled, with channel counts they take; 0 when fewer than two.
std::size_t fusable_convolutions(const NetworkSpec& spec) {
  if (spec.input_height < 4) return 0;
  std::vector<int> channels;
  for (std::size_t i = 0; i < spec.convolutions.size(); ++i) {
    const ConvolutionSpec& c = spec.convolutions[i];
    if (c.kernel != 3 || c.stride_height != 1 || c.stride_width != 1 || !c.relu || (i == 0 && !c.pool)) break;
    channels.push_back(c.out);
    if (channels.size() >= 2 && !engine::small_cnn_supported(channels)) {
      channels.pop_back();
      break;
    }
  }
  return channels.size() >= 2 ? channels.size() : 0;
}

// The features layer's input column order after the fused kernels: column y * channels + c
// reads LibTorch's flattened column c * height + y.
std::vector<int> height_major_columns(int channels, int height) {
  std::vector<int> order(static_cast<std::size_t>(channels) * height);
  for (int c = 0; c < channels; ++c)
    for (int y = 0; y < height; ++y) order[static_cast<std::size_t>(y) * channels + c] = c * height + y;
  return order;
}

}  // namespace

InferenceNetwork::InferenceNetwork(const ModelFile& model, const std::string& path, Precision precision)
    : impl_(std::make_unique<Impl>()) {
  Impl& net = *impl_;
  net.config = model.config;
  net.spec = network_spec(model.config, model.preprocess.height, model.charset.num_classes());
  check_weights(net.spec, model.tensors, path);
  const NetworkSpec& spec = net.spec;
  const WeightReader weights(model);
  for (const auto& conv : spec.convolutions) net.convolutions.push_back(weights.conv(conv));
  for (const auto& block : spec.blocks) {
    ResidualBlock layer{weights.conv(block.conv1), weights.conv(block.conv2), std::nullopt};
    if (block.shortcut) layer.shortcut = weights.conv(*block.shortcut);
    net.blocks.push_back(std::move(layer));
  }
  std::vector<int> column_order;
  net.fast_convolutions = fusable_convolutions(spec);
  for (std::size_t i = net.fast_convolutions; i < net.convolutions.size(); ++i) prepare_product(net.convolutions[i]);
  for (auto& block : net.blocks) {
    prepare_product(block.conv1);
    prepare_product(block.conv2);
    if (block.shortcut) prepare_product(*block.shortcut);
  }
  if (net.fast_convolutions > 0) {
    const ConvLayer& first = net.convolutions[0];
    net.fast_cnn = engine::prepare_small_cnn(first.weight, first.bias, first.out);
    for (std::size_t i = 1; i < net.fast_convolutions; ++i) {
      const ConvLayer& layer = net.convolutions[i];
      net.fast_cnn->convs.push_back(engine::prepare_winograd_conv(layer.weight, layer.bias, layer.in, layer.out, spec.convolutions[i].pool));
    }
    net.fast_features = net.fast_convolutions == net.convolutions.size() && net.blocks.empty() &&
                        spec.step_features == StepFeatures::kColumns;
    if (net.fast_features) column_order = height_major_columns(spec.map_channels, spec.map_height);
  }
  net.features = weights.linear(spec.features, column_order);
  for (const auto& rnn : spec.rnns) net.rnns.push_back(weights.rnn(rnn));
  net.classifier = weights.linear(spec.classifier);
  if (precision == Precision::kInt8 || model.int8) {
    if (net.fast_cnn)
      for (auto& layer : net.fast_cnn->convs) engine::quantise_winograd(layer);
    engine::quantise_dense(net.features);
    for (auto& rnn : net.rnns) engine::quantise_birnn(rnn);
  }
}

InferenceNetwork::~InferenceNetwork() = default;
InferenceNetwork::InferenceNetwork(InferenceNetwork&&) noexcept = default;
InferenceNetwork& InferenceNetwork::operator=(InferenceNetwork&&) noexcept = default;

int InferenceNetwork::num_classes() const { return impl_->spec.classes; }
int InferenceNetwork::height() const { return impl_->spec.input_height; }
int InferenceNetwork::time_steps(int width) const { return output_time_steps(impl_->config, width); }

namespace {

// A pass of one or two images runs on the calling thread alone when that thread has run no pass
// for kTeamSleeps: the engine's other threads are asleep by then, and waking a sleeping core
// costs more than sharing such a pass saves (5-15 ms on a virtual machine, against 0.7 ms of
// work shared for one image). A one-image `predict`, or a service's lone request after a pause,
// reads on one core; passes in quick succession and larger batches use every thread.
constexpr int kSmallPass = 2;
constexpr auto kTeamSleeps = std::chrono::milliseconds(20);
thread_local std::chrono::steady_clock::time_point last_pass_end{};  // the clock's epoch: none yet

// The calling thread's engine threads set to one for a scope, then restored.
class OneThreadScope {
 public:
  explicit OneThreadScope(bool active) : restore_(active ? omp_get_max_threads() : 0) {
    if (restore_ > 0) omp_set_num_threads(1);
  }
  ~OneThreadScope() {
    if (restore_ > 0) omp_set_num_threads(restore_);
  }
  OneThreadScope(const OneThreadScope&) = delete;
  OneThreadScope& operator=(const OneThreadScope&) = delete;

 private:
  int restore_;
};

}  // namespace

std::vector<float> InferenceNetwork::forward(const float* images, int batch, int width) const {
  if (batch <= 0) return {};
  if (width < 4 || time_steps(width) < 1)
    throw ConfigError("inference: input width " + std::to_string(width) + " is too small");
  const std::size_t image_floats = static_cast<std::size_t>(impl_->spec.input_height) * width;
  const std::size_t logit_floats = static_cast<std::size_t>(time_steps(width)) * impl_->spec.classes;
  std::vector<float> out(static_cast<std::size_t>(batch) * logit_floats);
  const bool cold = last_pass_end == std::chrono::steady_clock::time_point{} ||
                    std::chrono::steady_clock::now() - last_pass_end > kTeamSleeps;
  const OneThreadScope alone(batch <= kSmallPass && cold);
  for (int done = 0; done < batch;) {
    int piece = 1;
    while (piece * 2 <= batch - done) piece *= 2;
    impl_->run_plan(images + done * image_floats, piece, width, out.data() + done * logit_floats);
    done += piece;
  }
  last_pass_end = std::chrono::steady_clock::now();
  return out;
}

void InferenceNetwork::Impl::run_plan(const float* images, int batch, int width, float* out) const {
  auto plan = take_plan(batch, width);
  std::memcpy(plan->input, images, sizeof(float) * batch * spec.input_height * width);
  // CAPTCHA_ENGINE_PROFILE=1: each step's wall time on stderr (for work on the engine).
  static const bool profile = std::getenv("CAPTCHA_ENGINE_PROFILE") != nullptr;
  for (std::size_t i = 0; i < plan->sequence.size(); ++i) {
    const auto start = std::chrono::steady_clock::now();
    plan->sequence[i]();
    if (profile)
      std::fprintf(stderr, "step %zu: %.3f ms\n", i,
                   std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
  }
  std::copy(plan->logits, plan->logits + static_cast<std::size_t>(batch) * plan->steps * spec.classes, out);
  return_plan(std::move(plan));
}

std::string inference_kernels() { return engine::kernels_name(); }
std::string int8_kernels() { return engine::int8_kernels_name(); }

void set_inference_threads(int threads) {
  omp_set_num_threads(threads > 0 ? threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
}

}  // namespace captcha
