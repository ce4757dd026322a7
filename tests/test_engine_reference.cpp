// The inference engine against a plain reference of each layer, written from the network spec
// in the most obvious way (loops over every index, float64 sums): convolution, batch norm, max
// pooling, ReLU, residual blocks, the feature map to time steps, fully connected layers, LSTM
// and GRU. No LibTorch, so the engine's kernels (the fused AVX2 convolutions, Winograd, the
// packed recurrent products, the im2col convolutions) are checked in the sanitizer build too.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>

#include "captcha/inference.h"
#include "captcha/model_file.h"
#include "captcha/network_spec.h"
#include "engine/kernels.h"

namespace captcha {
namespace {

// A feature map: channels x height x width.
struct Map {
  int channels = 0, height = 0, width = 0;
  std::vector<double> values;
  double& at(int c, int y, int x) { return values[(static_cast<std::size_t>(c) * height + y) * width + x]; }
  double at(int c, int y, int x) const { return values[(static_cast<std::size_t>(c) * height + y) * width + x]; }
};

Map make_map(int channels, int height, int width) { return {channels, height, width, std::vector<double>(static_cast<std::size_t>(channels) * height * width)}; }

class Reference {
 public:
  explicit Reference(const ModelFile& model) : model_(model) {}

  const float* weights(const std::string& name) const { return model_.tensors.at(name).f32(); }

  Map convolution(const Map& in, const ConvolutionSpec& c) const {
    const int out_h = (in.height + 2 * c.padding() - c.kernel) / c.stride_height + 1;
    const int out_w = (in.width + 2 * c.padding() - c.kernel) / c.stride_width + 1;
    Map out = make_map(c.out, out_h, out_w);
    const float* w = weights(c.name + ".weight");
    for (int o = 0; o < c.out; ++o)
      for (int y = 0; y < out_h; ++y)
        for (int x = 0; x < out_w; ++x) {
          double sum = c.bias ? weights(c.name + ".bias")[o] : 0.0;
          for (int i = 0; i < c.in; ++i)
            for (int ky = 0; ky < c.kernel; ++ky)
              for (int kx = 0; kx < c.kernel; ++kx) {
                const int sy = y * c.stride_height + ky - c.padding(), sx = x * c.stride_width + kx - c.padding();
                if (sy < 0 || sx < 0 || sy >= in.height || sx >= in.width) continue;
                sum += w[((static_cast<std::size_t>(o) * c.in + i) * c.kernel + ky) * c.kernel + kx] * in.at(i, sy, sx);
              }
          out.at(o, y, x) = sum;
        }
    if (!c.norm.empty()) {
      const float *gamma = weights(c.norm + ".weight"), *beta = weights(c.norm + ".bias");
      const float *mean = weights(c.norm + ".running_mean"), *var = weights(c.norm + ".running_var");
      for (int o = 0; o < c.out; ++o)
        for (int y = 0; y < out_h; ++y)
          for (int x = 0; x < out_w; ++x)
            out.at(o, y, x) = (out.at(o, y, x) - mean[o]) / std::sqrt(var[o] + double{kBatchNormEpsilon}) * gamma[o] + beta[o];
    }
    if (c.pool) out = max_pool(out);
    if (c.relu) relu(out.values);
    return out;
  }

  static Map max_pool(const Map& in) {
    Map out = make_map(in.channels, in.height / 2, in.width / 2);
    for (int c = 0; c < in.channels; ++c)
      for (int y = 0; y < out.height; ++y)
        for (int x = 0; x < out.width; ++x)
          out.at(c, y, x) = std::max({in.at(c, 2 * y, 2 * x), in.at(c, 2 * y, 2 * x + 1), in.at(c, 2 * y + 1, 2 * x),
                                      in.at(c, 2 * y + 1, 2 * x + 1)});
    return out;
  }

  static void relu(std::vector<double>& values) {
    for (double& v : values) v = std::max(v, 0.0);
  }

  Map residual_block(const Map& in, const ResidualBlockSpec& block) const {
    Map out = convolution(convolution(in, block.conv1), block.conv2);
    const Map shortcut = block.shortcut ? convolution(in, *block.shortcut) : in;
    for (std::size_t i = 0; i < out.values.size(); ++i) out.values[i] = std::max(out.values[i] + shortcut.values[i], 0.0);
    return out;
  }

  // One row per column of the map.
  static std::vector<std::vector<double>> steps(const Map& map, StepFeatures rule) {
    std::vector<std::vector<double>> rows(map.width);
    for (int x = 0; x < map.width; ++x)
      for (int c = 0; c < map.channels; ++c) {
        if (rule == StepFeatures::kColumns) {
          for (int y = 0; y < map.height; ++y) rows[x].push_back(map.at(c, y, x));
        } else {
          double sum = 0;
          for (int y = 0; y < map.height; ++y) sum += map.at(c, y, x);
          rows[x].push_back(sum / map.height);
        }
      }
    return rows;
  }

  std::vector<double> dense(const std::vector<double>& in, const DenseSpec& d) const {
    const float *w = weights(d.name + ".weight"), *b = weights(d.name + ".bias");
    std::vector<double> out(d.out);
    for (int o = 0; o < d.out; ++o) {
      double sum = b[o];
      for (int i = 0; i < d.in; ++i) sum += w[static_cast<std::size_t>(o) * d.in + i] * in[i];
      out[o] = d.relu ? std::max(sum, 0.0) : sum;
    }
    return out;
  }

  // Both directions of a BiLSTM/BiGRU over the rows, concatenated per step.
  std::vector<std::vector<double>> birnn(const std::vector<std::vector<double>>& in, const BiRnnSpec& r) const {
    const int steps = static_cast<int>(in.size()), hidden = r.hidden;
    std::vector<std::vector<double>> out(steps, std::vector<double>(2 * hidden));
    for (int direction = 0; direction < 2; ++direction) {
      const std::string suffix = direction == 0 ? "_l0" : "_l0_reverse";
      const float *w_ih = weights(r.name + ".weight_ih" + suffix), *w_hh = weights(r.name + ".weight_hh" + suffix);
      const float *b_ih = weights(r.name + ".bias_ih" + suffix), *b_hh = weights(r.name + ".bias_hh" + suffix);
      std::vector<double> h(hidden, 0.0), c(hidden, 0.0);
      for (int k = 0; k < steps; ++k) {
        const int t = direction == 0 ? k : steps - 1 - k;
        // Row g of the input and recurrent products, biases included separately.
        const auto input_row = [&](int g) {
          double sum = b_ih[g];
          for (int i = 0; i < r.input; ++i) sum += w_ih[static_cast<std::size_t>(g) * r.input + i] * in[t][i];
          return sum;
        };
        const auto recurrent_row = [&](int g) {
          double sum = b_hh[g];
          for (int j = 0; j < hidden; ++j) sum += w_hh[static_cast<std::size_t>(g) * hidden + j] * h[j];
          return sum;
        };
        const auto sigmoid = [](double v) { return 1 / (1 + std::exp(-v)); };
        std::vector<double> next(hidden);
        for (int u = 0; u < hidden; ++u) {
          if (r.gru) {  // gates r, z, n
            const double reset = sigmoid(input_row(u) + recurrent_row(u));
            const double update = sigmoid(input_row(hidden + u) + recurrent_row(hidden + u));
            const double candidate = std::tanh(input_row(2 * hidden + u) + reset * recurrent_row(2 * hidden + u));
            next[u] = (1 - update) * candidate + update * h[u];
          } else {  // gates i, f, g, o
            const double in_gate = sigmoid(input_row(u) + recurrent_row(u));
            const double forget = sigmoid(input_row(hidden + u) + recurrent_row(hidden + u));
            const double cell = std::tanh(input_row(2 * hidden + u) + recurrent_row(2 * hidden + u));
            const double out_gate = sigmoid(input_row(3 * hidden + u) + recurrent_row(3 * hidden + u));
            c[u] = forget * c[u] + in_gate * cell;
            next[u] = out_gate * std::tanh(c[u]);
          }
        }
        h = next;
        for (int u = 0; u < hidden; ++u) out[t][direction * hidden + u] = h[u];
      }
    }
    return out;
  }

  // Logits of one image (height x width values): steps x classes.
  std::vector<std::vector<double>> forward(const NetworkSpec& spec, const float* image, int width) const {
    Map x = make_map(1, spec.input_height, width);
    for (std::size_t i = 0; i < x.values.size(); ++i) x.values[i] = image[i];
    for (const auto& conv : spec.convolutions) x = convolution(x, conv);
    for (const auto& block : spec.blocks) x = residual_block(x, block);
    std::vector<std::vector<double>> rows = steps(x, spec.step_features);
    for (auto& row : rows) row = dense(row, spec.features);
    for (const auto& rnn : spec.rnns) rows = birnn(rows, rnn);
    for (auto& row : rows) row = dense(row, spec.classifier);
    return rows;
  }

 private:
  const ModelFile& model_;
};

struct Case {
  std::string name;
  ModelConfig config;
  int height = 32, width = 64;
};

void PrintTo(const Case& c, std::ostream* out) { *out << c.name; }

std::vector<Case> cases() {
  std::vector<Case> out;
  ModelConfig small;
  small.conv_channels = {32, 64};
  small.dense = 32;
  small.rnn_hidden = {24, 16};
  out.push_back({"small", small});
  ModelConfig keras = small;
  keras.batch_norm = false;
  out.push_back({"small_no_batch_norm", keras});
  ModelConfig deep = small;
  deep.conv_channels = {32, 64, 48, 40};
  deep.rnn = RnnType::kGru;
  out.push_back({"small_four_convolutions_gru", deep});
  ModelConfig bundled = small;
  bundled.conv_channels = {32, 64, 64, 64, 64};  // the bundled model's, every one on the engine's own kernels
  out.push_back({"small_five_convolutions", bundled, 50, 200});
  out.push_back({"small_five_convolutions_odd_map", bundled, 38, 90});  // maps of 9 x 22: tiles overhang
  ModelConfig odd = small;
  odd.conv_channels = {6, 10};  // sizes the fused kernels may not take: the general path
  out.push_back({"small_odd_sizes", odd});
  ModelConfig resnet;
  resnet.arch = Architecture::kResnet;
  resnet.dense = 16;
  resnet.rnn_hidden = {12};
  // The resnet's 64-256 channels make the plain reference slow: smaller images. At height 16 its
  // feature map is one row high (no mean to take), at 32 two.
  out.push_back({"resnet_lstm", resnet, 16, 24});
  out.push_back({"resnet_lstm_two_rows", resnet, 32, 16});
  resnet.rnn = RnnType::kGru;
  out.push_back({"resnet_gru", resnet, 16, 24});
  return out;
}

// A model of `config` with random weights (scaled by their fan-in, so that activations keep
// their size through the layers) and batch norm statistics away from 0 and 1.
ModelFile random_model(const ModelConfig& config, int height, int width, std::uint64_t seed) {
  ModelFile model;
  model.charset = Charset("abcdef");
  model.config = config;
  model.preprocess.height = height;
  model.preprocess.width = width;
  const NetworkSpec spec = network_spec(config, height, model.charset.num_classes());
  std::vector<std::string> norms;
  for (const auto& conv : spec.convolutions) norms.push_back(conv.norm);
  for (const auto& block : spec.blocks)
    for (const auto* conv : {&block.conv1, &block.conv2, block.shortcut ? &*block.shortcut : nullptr})
      if (conv) norms.push_back(conv->norm);
  const auto is_norm = [&](const std::string& name, const char* field) {
    for (const auto& norm : norms)
      if (!norm.empty() && name == norm + field) return true;
    return false;
  };
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> unit(-1.0f, 1.0f), positive(0.5f, 1.5f);
  for (const TensorSpec& t : spec.tensors()) {
    Tensor tensor;
    if (t.dtype == DType::kI64) {
      tensor.dtype = DType::kI64;
      tensor.bytes.assign(8, 0);
      model.tensors.emplace(t.name, std::move(tensor));
      continue;
    }
    std::vector<float> values(1);
    std::int64_t count = 1, fan_in = 1;
    for (std::size_t d = 0; d < t.shape.size(); ++d) count *= t.shape[d], fan_in *= d > 0 ? t.shape[d] : 1;
    values.resize(static_cast<std::size_t>(count));
    const bool scale = is_norm(t.name, ".weight") || is_norm(t.name, ".running_var");
    const float range = t.shape.size() >= 2 ? std::sqrt(3.0f / static_cast<float>(fan_in)) : 0.2f;
    for (float& v : values) v = scale ? positive(rng) : range * unit(rng);
    model.tensors.emplace(t.name, Tensor::from_f32(t.shape, values.data()));
  }
  return model;
}

class EngineReference : public ::testing::TestWithParam<Case> {};

TEST_P(EngineReference, EngineGivesThePlainReferencesLogits) {
  const int kHeight = GetParam().height, kWidth = GetParam().width;
  const ModelFile model = random_model(GetParam().config, kHeight, kWidth, 7);
  const NetworkSpec spec = network_spec(model.config, kHeight, model.charset.num_classes());
  const InferenceNetwork engine(model, "m.safetensors");
  const Reference reference(model);
  std::mt19937_64 rng(3);
  std::uniform_real_distribution<float> pixel(-1.0f, 1.0f);
  for (const int batch : {1, 3}) {
    std::vector<float> images(static_cast<std::size_t>(batch) * kHeight * kWidth);
    for (float& v : images) v = pixel(rng);
    const std::vector<float> logits = engine.forward(images.data(), batch, kWidth);
    const int steps = engine.time_steps(kWidth), classes = engine.num_classes();
    ASSERT_EQ(logits.size(), static_cast<std::size_t>(batch) * steps * classes);
    double largest = 0, difference = 0;
    for (int n = 0; n < batch; ++n) {
      const auto expected = reference.forward(spec, images.data() + static_cast<std::size_t>(n) * kHeight * kWidth, kWidth);
      ASSERT_EQ(static_cast<int>(expected.size()), steps);
      for (int t = 0; t < steps; ++t)
        for (int c = 0; c < classes; ++c) {
          const double want = expected[t][c];
          largest = std::max(largest, std::abs(want));
          difference = std::max(difference, std::abs(want - logits[(static_cast<std::size_t>(n) * steps + t) * classes + c]));
        }
    }
    // float32 against float64 sums: within 1e-4 of the logits' size.
    EXPECT_LT(difference, 1e-4 * std::max(1.0, largest)) << "batch " << batch << ", logits up to " << largest;
    EXPECT_GT(largest, 1e-3) << "the logits are all near zero: the comparison would prove little";
  }
}

// The int8 path (weights quantised at load, activations per row as they run) against the same
// reference: near it, though not equal, for every architecture.
TEST_P(EngineReference, Int8EngineStaysNearThePlainReference) {
  const int kHeight = GetParam().height, kWidth = GetParam().width;
  const ModelFile model = random_model(GetParam().config, kHeight, kWidth, 7);
  const NetworkSpec spec = network_spec(model.config, kHeight, model.charset.num_classes());
  const InferenceNetwork engine(model, "m.safetensors", Precision::kInt8);
  const InferenceNetwork float_engine(model, "m.safetensors");
  const Reference reference(model);
  std::mt19937_64 rng(5);
  std::uniform_real_distribution<float> pixel(-1.0f, 1.0f);
  const int batch = 3;
  std::vector<float> images(static_cast<std::size_t>(batch) * kHeight * kWidth);
  for (float& v : images) v = pixel(rng);
  const std::vector<float> logits = engine.forward(images.data(), batch, kWidth);
  const std::vector<float> float_logits = float_engine.forward(images.data(), batch, kWidth);
  const int steps = engine.time_steps(kWidth), classes = engine.num_classes();
  ASSERT_EQ(logits.size(), static_cast<std::size_t>(batch) * steps * classes);
  double largest = 0, difference = 0, from_float = 0;
  for (int n = 0; n < batch; ++n) {
    const auto expected = reference.forward(spec, images.data() + static_cast<std::size_t>(n) * kHeight * kWidth, kWidth);
    for (int t = 0; t < steps; ++t)
      for (int c = 0; c < classes; ++c) {
        const std::size_t i = (static_cast<std::size_t>(n) * steps + t) * classes + c;
        largest = std::max(largest, std::abs(expected[t][c]));
        difference = std::max(difference, std::abs(expected[t][c] - logits[i]));
        from_float = std::max(from_float, static_cast<double>(std::abs(float_logits[i] - logits[i])));
      }
  }
  EXPECT_LT(difference, 0.03 * std::max(1.0, largest)) << "logits up to " << largest;
  EXPECT_GT(from_float, 1e-6) << "the int8 engine gave the float logits: it did not quantise";
}

INSTANTIATE_TEST_SUITE_P(Architectures, EngineReference, ::testing::ValuesIn(cases()),
                         [](const auto& info) { return info.param.name; });

// The int8 product against the integer sums it stands for, in double: every row and column
// count around the kernels' blocks (6 rows, 16-column panels, 4-panel blocks), depths that are
// not multiples of the groups, 8- and 16-bit, with a bias, accumulating and with the ReLU.
TEST(Int8Product, GivesTheExactSumsOfTheQuantisedValuesScaled) {
  std::mt19937_64 rng(11);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (const bool wide : {false, true})
    for (const int rows : {1, 5, 6, 7, 13, 100})
      for (const int k : {3, 32, 64, 130})
        for (const int cols : {1, 15, 16, 17, 64, 70}) {
          std::vector<float> w(static_cast<std::size_t>(k) * cols), x(static_cast<std::size_t>(rows) * k), bias(cols);
          for (float& v : w) v = normal(rng);
          for (float& v : x) v = normal(rng) + (wide ? 0.0f : 0.5f);
          for (float& v : bias) v = normal(rng);
          const engine::QuantisedMatrix m = engine::quantise_matrix(w.data(), cols, k, cols, wide);
          if (wide) ASSERT_LT(static_cast<double>(m.padded_k) * m.limit * m.limit, 2147483648.0);
          std::vector<float> scratch(engine::quantised_rows_floats(rows, m.padded_k, wide));
          const engine::QuantisedRows q = engine::quantised_rows_in(scratch.data(), rows, m.padded_k, wide);
          if (wide) engine::quantise_rows_wide(x.data(), k, rows, m, q);
          else engine::quantise_rows(x.data(), k, rows, k, m.padded_k, q);
          std::vector<float> out(static_cast<std::size_t>(rows) * (cols + 1), 7.0f), accumulated = out, rectified = out;
          engine::int8_product(q, rows, m, bias.data(), false, out.data(), cols + 1);
          engine::int8_product(q, rows, m, nullptr, true, accumulated.data(), cols + 1);
          engine::int8_product(q, rows, m, bias.data(), false, rectified.data(), cols + 1, /*relu=*/true);
          const std::string where = std::to_string(rows) + " x " + std::to_string(k) + " x " + std::to_string(cols) +
                                    (wide ? ", 16-bit" : ", 8-bit");
          // Each row's values back from its quantisation, within half a step of the originals (and
          // float rounding).
          const auto value = [&](int r, int i) {
            const std::uint8_t* row = q.values + r * q.stride;
            if (wide) return static_cast<double>(reinterpret_cast<const std::int16_t*>(row)[i]);
            return static_cast<double>(row[i]) - q.zeros[r];
          };
          for (int r = 0; r < rows; ++r)
            for (int i = 0; i < k; ++i)
              ASSERT_NEAR(value(r, i) * q.scales[r], x[r * k + i], 0.5 * q.scales[r] + 1e-6 * std::abs(x[r * k + i])) << where;
          // The weights likewise, from a plain unpacking of the packed layout.
          const auto weight = [&](int i, int j) {
            const std::int8_t* lane = m.packed.data() + static_cast<std::size_t>(j / 16) * 16 * m.padded_k * (wide ? 2 : 1) +
                                      (i / m.group_rows()) * 64 + (j % 16) * 4;
            if (!wide) return static_cast<double>(lane[i % 4]);
            std::int16_t v;
            std::memcpy(&v, lane + (i % 2) * 2, sizeof v);
            return static_cast<double>(v);
          };
          for (int j = 0; j < cols; ++j)
            for (int i = 0; i < k; ++i) ASSERT_NEAR(weight(i, j) * m.scales[j], w[i * cols + j], 0.5 * m.scales[j] + 1e-6 * std::abs(w[i * cols + j])) << where;
          for (int r = 0; r < rows; ++r)
            for (int j = 0; j < cols; ++j) {
              double sum = 0;
              for (int i = 0; i < k; ++i) sum += value(r, i) * weight(i, j);
              const double want = sum * q.scales[r] * m.scales[j];
              const double tolerance = 1e-5 * (std::abs(want) + 1);
              ASSERT_NEAR(out[r * (cols + 1) + j], want + bias[j], tolerance) << where << ", row " << r << ", column " << j;
              ASSERT_NEAR(accumulated[r * (cols + 1) + j], want + 7.0, tolerance) << where;
              ASSERT_NEAR(rectified[r * (cols + 1) + j], std::max(want + bias[j], 0.0), tolerance) << where;
            }
          for (int r = 0; r < rows; ++r) ASSERT_EQ(out[r * (cols + 1) + cols], 7.0f) << "wrote past the columns: " << where;
        }
}

}  // namespace
}  // namespace captcha
