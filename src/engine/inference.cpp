// The inference engine on oneDNN and its own kernels. At load, the model file's weights are
// checked against the architecture and put into the layouts the steps use (batch norm folded
// into the convolutions, RNN and fully connected matrices transposed and packed). Per input
// shape an execution plan is built: the chain of steps with their buffers and the convolution
// weights reordered into the layouts oneDNN's primitives prefer. Plans are pooled, so concurrent calls each run a plan of their own.
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
#include <unordered_map>

#include <oneapi/dnnl/dnnl.hpp>

#include "captcha/errors.h"
#include "captcha/network_spec.h"
#include "kernels.h"
#include "small_cnn.h"

namespace captcha {

namespace {

using dnnl::memory;
using Tag = memory::format_tag;
constexpr auto kF32 = memory::data_type::f32;

// A convolution with batch norm already folded in: weights O x I x KH x KW, bias O.
struct ConvLayer {
  int out = 0, in = 0, kernel = 0;
  memory::dims stride{1, 1}, padding{0, 0};
  std::vector<float> weight, bias;
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
    layer.stride = {spec.stride_height, spec.stride_width};
    layer.padding = {spec.padding(), spec.padding()};
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

// Sizes of an oneDNN memory's dimensions.
memory::dims dims_of(const memory& m) { return m.get_desc().dims(); }

}  // namespace

struct InferenceNetwork::Impl {
  NetworkSpec spec;
  ModelConfig config;
  std::vector<ConvLayer> convolutions;  // spec.convolutions, batch norm folded in
  std::vector<ResidualBlock> blocks;    // spec.blocks, likewise
  // On AVX2 machines, where the spec starts with 3x3 convolutions of sizes its kernels take
  // (two at least, the first pooled): those on the engine's own kernels (see
  // engine::small_cnn_forward).
  std::optional<engine::SmallCnnWeights> fast_cnn;
  std::size_t fast_convolutions = 0;  // how many of `convolutions` fast_cnn computes
  // Whether fast_cnn computes every convolution and writes the features layer's input rows,
  // whose columns are then in its output order (height major instead of channel major).
  bool fast_features = false;
  engine::DenseWeights features;
  std::vector<engine::BiRnnWeights> rnns;
  engine::DenseWeights classifier;

  dnnl::engine engine{dnnl::engine::kind::cpu, 0};

  // The primitives for one input shape with their buffers.
  struct Plan {
    int batch = 0, width = 0, steps = 0;
    memory input, logits;
    // A oneDNN primitive with its arguments, or (when `custom` is set) one of the engine's own
    // kernels working on the plan's buffers.
    struct Step {
      dnnl::primitive primitive;
      std::unordered_map<int, memory> args;
      std::function<void()> custom;
    };
    std::vector<Step> sequence;
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

// Appends primitives to a plan, choosing layouts as it goes: convolutions and pooling work in
// whatever blocked layout oneDNN prefers; the RNN input and the logits are plain row-major.
class InferenceNetwork::Impl::PlanBuilder {
 public:
  PlanBuilder(const Impl& net, Plan& plan) : net_(net), plan_(plan), stream_(net.engine) {}

  memory convolution(const memory& src, const ConvLayer& layer, bool relu, const memory* sum_into = nullptr) {
    const auto in = dims_of(src);
    const memory::dim oh = (in[2] + 2 * layer.padding[0] - layer.kernel) / layer.stride[0] + 1;
    const memory::dim ow = (in[3] + 2 * layer.padding[1] - layer.kernel) / layer.stride[1] + 1;
    const memory::desc weights_md({layer.out, layer.in, layer.kernel, layer.kernel}, kF32, Tag::any);
    const memory::desc bias_md({layer.out}, kF32, Tag::x);
    const memory::desc dst_md = sum_into ? sum_into->get_desc() : memory::desc({in[0], layer.out, oh, ow}, kF32, Tag::any);
    dnnl::post_ops ops;
    if (sum_into) ops.append_sum(1.0f);
    if (relu) ops.append_eltwise(1.0f, dnnl::algorithm::eltwise_relu, 0.0f, 0.0f);
    const dnnl::convolution_forward::primitive_desc pd(
        {dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct, src.get_desc(),
         weights_md, bias_md, dst_md, layer.stride, layer.padding, layer.padding},
        attributes(ops), net_.engine);
    const memory input = in_layout(src, pd.src_desc());
    const memory weights = imported(layer.weight, {layer.out, layer.in, layer.kernel, layer.kernel}, Tag::oihw, pd.weights_desc());
    const memory bias = constant(layer.bias, bias_md);
    const memory dst = sum_into ? *sum_into : memory(pd.dst_desc(), net_.engine);
    add(dnnl::convolution_forward(pd), {{DNNL_ARG_SRC, input}, {DNNL_ARG_WEIGHTS, weights}, {DNNL_ARG_BIAS, bias}, {DNNL_ARG_DST, dst}}, pd.scratchpad_desc());
    return dst;
  }

  memory max_pool(const memory& src) {
    const auto in = dims_of(src);
    const memory::desc dst_md({in[0], in[1], in[2] / 2, in[3] / 2}, kF32, Tag::any);
    const dnnl::pooling_forward::primitive_desc pd(
        {dnnl::prop_kind::forward_inference, dnnl::algorithm::pooling_max, src.get_desc(), dst_md,
         {2, 2}, {2, 2}, {0, 0}, {0, 0}},
        attributes({}), net_.engine);
    const memory dst(pd.dst_desc(), net_.engine);
    add(dnnl::pooling_forward(pd), {{DNNL_ARG_SRC, src}, {DNNL_ARG_DST, dst}}, pd.scratchpad_desc());
    return dst;
  }

  // N x C x H x W -> rows (n, w) of C * H features (c major, h minor): LibTorch's
  // permute(0, 3, 1, 2).flatten(2).
  memory columns_as_rows(const memory& src) {
    const auto d = dims_of(src);
    const memory::desc strided(d, kF32, memory::dims{d[3] * d[1] * d[2], d[2], 1, d[1] * d[2]});
    const memory dst(strided, net_.engine);
    add(dnnl::reorder(src, dst), {{DNNL_ARG_FROM, src}, {DNNL_ARG_TO, dst}}, {});
    return memory(memory::desc({d[0] * d[3], d[1] * d[2]}, kF32, Tag::nc), net_.engine, dst.get_data_handle());
  }

  // N x C x H x W -> rows (n, w) of C features, averaged over the height.
  memory height_mean_as_rows(const memory& src) {
    const auto d = dims_of(src);
    const memory nhwc = in_layout(src, memory::desc(d, kF32, Tag::nhwc));
    // A map one row high is its own mean (oneDNN has no reduction that keeps every dimension).
    if (d[2] == 1) return memory(memory::desc({d[0] * d[3], d[1]}, kF32, Tag::nc), net_.engine, nhwc.get_data_handle());
    const memory::desc dst_md({d[0], d[1], 1, d[3]}, kF32, Tag::nhwc);
    const dnnl::reduction::primitive_desc pd(
        {dnnl::algorithm::reduction_mean, nhwc.get_desc(), dst_md, 0.0f, 0.0f}, attributes({}), net_.engine);
    const memory dst(pd.dst_desc(), net_.engine);
    add(dnnl::reduction(pd), {{DNNL_ARG_SRC, nhwc}, {DNNL_ARG_DST, dst}}, pd.scratchpad_desc());
    return memory(memory::desc({d[0] * d[3], d[1]}, kF32, Tag::nc), net_.engine, dst.get_data_handle());
  }

  // Rows (n, t) x input -> rows (n, t) x 2 hidden: both directions, concatenated.
  memory birnn(const memory& src, const engine::BiRnnWeights& layer, int batch, int steps) {
    const memory dst = buffer({static_cast<memory::dim>(batch) * steps, 2 * layer.hidden});
    const memory scratch = buffer({static_cast<memory::dim>(engine::birnn_scratch_floats(layer, batch, steps))});
    custom([&layer, src, dst, scratch, batch, steps] {
      engine::birnn_forward(layer, floats(src), batch, steps, floats(dst), floats(scratch));
    });
    return dst;
  }

  // A fully connected layer on the engine's own kernel: rows x in -> rows x out.
  memory dense(const memory& src, const engine::DenseWeights& layer, bool relu) {
    const int rows = static_cast<int>(dims_of(src)[0]);
    const memory dst = buffer({rows, layer.out});
    const std::size_t scratch_floats = engine::dense_scratch_floats(layer, rows);
    const memory scratch = buffer({static_cast<memory::dim>(std::max<std::size_t>(scratch_floats, 1))});
    custom([&layer, src, dst, scratch, rows, relu] { engine::dense_forward(layer, floats(src), rows, relu, floats(dst), floats(scratch)); });
    return dst;
  }

  // The small network's convolutions, pooling and ReLUs on the engine's own kernels: the input
  // images -> rows (n, w) of the dense layer's (permuted) input.
  memory fast_small_features(const memory& images, const engine::SmallCnnWeights& cnn) {
    const auto d = dims_of(images);
    const int batch = static_cast<int>(d[0]), h = static_cast<int>(d[2]), w = static_cast<int>(d[3]);
    int out_h = 0, out_w = 0;
    engine::small_cnn_output_size(cnn, h, w, out_h, out_w);
    const memory scratch = buffer({static_cast<memory::dim>(engine::small_cnn_scratch_floats(cnn, batch, h, w))});
    const memory features = buffer({static_cast<memory::dim>(batch) * out_w, static_cast<memory::dim>(out_h) * cnn.out_channels()});
    custom([&cnn, images, scratch, features, batch, h, w] {
      engine::small_cnn_forward(cnn, floats(images), batch, h, w, floats(scratch), floats(features));
    });
    return features;
  }

  // fast_small_features as an N x C x H x W feature map in the channels-last layout (NHWC).
  // Its rows (n, w) of h2 * c2 values, height major, are that map with height and width
  // swapped, which oneDNN's convolutions only have a slow reference kernel for: reordered.
  memory fast_small_feature_map(const memory& images, const engine::SmallCnnWeights& cnn) {
    const auto d = dims_of(images);
    int out_h = 0, out_w = 0;
    engine::small_cnn_output_size(cnn, static_cast<int>(d[2]), static_cast<int>(d[3]), out_h, out_w);
    const memory::dim n = d[0], h2 = out_h, w2 = out_w, c2 = cnn.out_channels();
    const memory rows = fast_small_features(images, cnn);
    const memory view(memory::desc({n, c2, h2, w2}, kF32, memory::dims{w2 * h2 * c2, 1, c2, h2 * c2}), net_.engine,
                      rows.get_data_handle());
    return in_layout(view, memory::desc({n, c2, h2, w2}, kF32, Tag::nhwc));
  }

 private:
  // Every primitive gets its scratch memory from the plan, so that concurrent plans that share
  // a (cached) primitive never share scratch space.
  static dnnl::primitive_attr attributes(const dnnl::post_ops& ops) {
    dnnl::primitive_attr attr;
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    attr.set_post_ops(ops);
    return attr;
  }

  void custom(std::function<void()> run) {
    Plan::Step step;
    step.custom = std::move(run);
    plan_.sequence.push_back(std::move(step));
  }

  // A plain row-major buffer (1-D: a vector, 2-D: rows x columns).
  memory buffer(const memory::dims& dims) {
    return memory(memory::desc(dims, kF32, dims.size() == 1 ? Tag::x : Tag::nc), net_.engine);
  }
  static float* floats(const memory& m) { return static_cast<float*>(m.get_data_handle()); }

  void add(dnnl::primitive primitive, std::unordered_map<int, memory> args, const memory::desc& scratchpad) {
    if (scratchpad.get_size() > 0) args.emplace(DNNL_ARG_SCRATCHPAD, memory(scratchpad, net_.engine));
    plan_.sequence.push_back({std::move(primitive), std::move(args), {}});
  }

  // `src` itself when it already has layout `wanted`; otherwise a reorder step into a new buffer.
  memory in_layout(const memory& src, const memory::desc& wanted) {
    if (src.get_desc() == wanted) return src;
    const memory dst(wanted, net_.engine);
    add(dnnl::reorder(src, dst), {{DNNL_ARG_FROM, src}, {DNNL_ARG_TO, dst}}, {});
    return dst;
  }

  // A read-only view of the network's own storage (which outlives every plan).
  memory constant(const std::vector<float>& values, const memory::desc& md) {
    return memory(md, net_.engine, const_cast<float*>(values.data()));
  }

  // Weights in plain layout `tag`, reordered now into the layout a primitive asked for.
  memory imported(const std::vector<float>& values, const memory::dims& dims, Tag tag, const memory::desc& wanted) {
    const memory plain = constant(values, memory::desc(dims, kF32, tag));
    if (plain.get_desc() == wanted) return plain;
    memory out(wanted, net_.engine);
    dnnl::reorder(plain, out).execute(stream_, const_cast<memory&>(plain), out);
    stream_.wait();
    return out;
  }

  const Impl& net_;
  Plan& plan_;
  dnnl::stream stream_;
};

std::unique_ptr<InferenceNetwork::Impl::Plan> InferenceNetwork::Impl::build_plan(int batch, int width) const {
  auto plan = std::make_unique<Plan>();
  plan->batch = batch;
  plan->width = width;
  plan->steps = output_time_steps(config, width);
  PlanBuilder build(*this, *plan);
  plan->input = memory(memory::desc({batch, 1, spec.input_height, width}, kF32, Tag::nchw), engine);
  memory rows;
  if (fast_features) {
    // The fused kernels write the features layer's input rows directly.
    rows = build.dense(build.fast_small_features(plan->input, *fast_cnn), features, spec.features.relu);
  } else {
    memory x = plan->input;
    std::size_t first = 0;
    if (fast_cnn) {
      x = build.fast_small_feature_map(plan->input, *fast_cnn);
      first = fast_convolutions;
    }
    for (std::size_t i = first; i < convolutions.size(); ++i) {
      // Max pooling after the ReLU gives the same values (max and ReLU commute).
      x = build.convolution(x, convolutions[i], spec.convolutions[i].relu);
      if (spec.convolutions[i].pool) x = build.max_pool(x);
    }
    for (const auto& block : blocks) {
      const memory y = build.convolution(x, block.conv1, /*relu=*/true);
      // The block's output: the shortcut first, then conv2 + batch norm summed onto it, ReLU.
      const memory out = block.shortcut ? build.convolution(x, *block.shortcut, /*relu=*/false) : x;
      x = build.convolution(y, block.conv2, /*relu=*/true, &out);
    }
    x = spec.step_features == StepFeatures::kColumns ? build.columns_as_rows(x) : build.height_mean_as_rows(x);
    rows = build.dense(x, features, spec.features.relu);
  }
  for (const auto& rnn : rnns) rows = build.birnn(rows, rnn, batch, plan->steps);
  plan->logits = build.dense(rows, classifier, spec.classifier.relu);
  return plan;
}

namespace {

// How many of the spec's first convolutions the engine's own kernels compute on this CPU: 3x3,
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

InferenceNetwork::InferenceNetwork(const ModelFile& model, const std::string& path) : impl_(std::make_unique<Impl>()) {
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
}

InferenceNetwork::~InferenceNetwork() = default;
InferenceNetwork::InferenceNetwork(InferenceNetwork&&) noexcept = default;
InferenceNetwork& InferenceNetwork::operator=(InferenceNetwork&&) noexcept = default;

int InferenceNetwork::num_classes() const { return impl_->spec.classes; }
int InferenceNetwork::height() const { return impl_->spec.input_height; }
int InferenceNetwork::time_steps(int width) const { return output_time_steps(impl_->config, width); }

std::vector<float> InferenceNetwork::forward(const float* images, int batch, int width) const {
  if (batch <= 0) return {};
  if (width < 4 || time_steps(width) < 1)
    throw ConfigError("inference: input width " + std::to_string(width) + " is too small");
  const std::size_t image_floats = static_cast<std::size_t>(impl_->spec.input_height) * width;
  const std::size_t logit_floats = static_cast<std::size_t>(time_steps(width)) * impl_->spec.classes;
  std::vector<float> out(static_cast<std::size_t>(batch) * logit_floats);
  for (int done = 0; done < batch;) {
    int piece = 1;
    while (piece * 2 <= batch - done) piece *= 2;
    impl_->run_plan(images + done * image_floats, piece, width, out.data() + done * logit_floats);
    done += piece;
  }
  return out;
}

void InferenceNetwork::Impl::run_plan(const float* images, int batch, int width, float* out) const {
  auto plan = take_plan(batch, width);
  std::memcpy(plan->input.get_data_handle(), images, sizeof(float) * batch * spec.input_height * width);
  dnnl::stream stream(engine);
  // CAPTCHA_ENGINE_PROFILE=1: each step's wall time on stderr (for work on the engine).
  static const bool profile = std::getenv("CAPTCHA_ENGINE_PROFILE") != nullptr;
  for (std::size_t i = 0; i < plan->sequence.size(); ++i) {
    auto& step = plan->sequence[i];
    const auto start = std::chrono::steady_clock::now();
    if (step.custom) {
      stream.wait();  // the primitives before it have finished writing its input
      step.custom();
    } else {
      step.primitive.execute(stream, step.args);
    }
    if (profile) {
      stream.wait();
      std::fprintf(stderr, "step %zu %s: %.3f ms\n", i, step.custom ? "own kernel" : "oneDNN",
                   std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
    }
  }
  stream.wait();
  const auto* logits = static_cast<const float*>(plan->logits.get_data_handle());
  std::copy(logits, logits + static_cast<std::size_t>(batch) * plan->steps * spec.classes, out);
  return_plan(std::move(plan));
}

std::string inference_kernels() { return engine::kernels_name(); }

void set_inference_threads(int threads) {
  omp_set_num_threads(threads > 0 ? threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
}

}  // namespace captcha
