// The network spec against each of its consumers, for every architecture: the LibTorch module
// holds exactly the spec's tensors, growth writes the grown spec's tensors, and the engine, the
// ONNX exporter, weight import and growth each refuse a file that lacks any one of the spec's
// tensors or holds it in another shape, naming it. Nothing here lists a layer by hand.
#include "captcha/network_spec.h"

#include <gtest/gtest.h>

#include <functional>

#include "captcha/errors.h"
#include "captcha/inference.h"
#include "captcha/model_file.h"
#include "captcha/onnx_export.h"
#include "support/fixtures.h"
#include "torch/crnn.h"

namespace captcha {
namespace {

struct Case {
  std::string name;
  ModelConfig config;
  int height = 32;
};

std::vector<Case> cases() {
  std::vector<Case> out;
  ModelConfig small;
  out.push_back({"small", small});
  ModelConfig keras = small;
  keras.batch_norm = false;
  out.push_back({"small_no_batch_norm", keras, 50});
  ModelConfig deep = small;
  deep.conv_channels = {8, 16, 16, 24, 24, 24};
  deep.rnn = RnnType::kGru;
  deep.rnn_hidden = {16, 24, 8};
  out.push_back({"small_six_convolutions_gru", deep, 40});
  ModelConfig resnet;
  resnet.arch = Architecture::kResnet;
  resnet.dense = 32;
  resnet.rnn_hidden = {16, 24};
  out.push_back({"resnet_lstm", resnet});
  resnet.rnn = RnnType::kGru;
  out.push_back({"resnet_gru", resnet, 50});
  return out;
}

void PrintTo(const Case& c, std::ostream* out) { *out << c.name; }

constexpr int kClasses = 7;
constexpr int kWidth = 64;

ModelFile model_of(const Case& c, Crnn& net) {
  net = Crnn(c.config, kClasses, c.height);
  ModelFile file;
  file.charset = Charset("abcdef");
  file.config = c.config;
  file.preprocess.width = kWidth;
  file.preprocess.height = c.height;
  file.tensors = export_weights(net);
  return file;
}

std::string describe(const TensorSpec& t) {
  std::string out = t.name + (t.dtype == DType::kI64 ? " i64 [" : " f32 [");
  for (auto d : t.shape) out += std::to_string(d) + ",";
  return out + "]";
}

class NetworkSpecOf : public ::testing::TestWithParam<Case> {};

TEST_P(NetworkSpecOf, LibTorchModuleHoldsExactlyTheSpecsTensors) {
  const Case& c = GetParam();
  Crnn net(c.config, kClasses, c.height);
  std::vector<std::string> expected, held;
  for (const auto& t : net->spec().tensors()) expected.push_back(describe(t));
  for (const auto& [name, tensor] : export_weights(net))
    held.push_back(describe({name, tensor.shape, tensor.dtype}));
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(held, expected);  // export_weights' map is sorted by name
}

TEST_P(NetworkSpecOf, EveryConsumerReadsTheTimeStepsAndClassesItDescribes) {
  const Case& c = GetParam();
  Crnn net{nullptr};
  const ModelFile file = model_of(c, net);
  net->eval();
  torch::NoGradGuard no_grad;
  const auto input = torch::rand({2, 1, c.height, kWidth});
  const auto reference = net->forward(input);
  const int steps = output_time_steps(c.config, kWidth);
  EXPECT_EQ(reference.sizes(), (std::vector<std::int64_t>{2, steps, kClasses}));
  const InferenceNetwork engine(file, "m.safetensors");
  EXPECT_EQ(engine.time_steps(kWidth), steps);
  EXPECT_EQ(engine.num_classes(), kClasses);
  const auto logits = engine.forward(input.contiguous().data_ptr<float>(), 2, kWidth);
  ASSERT_EQ(logits.size(), static_cast<std::size_t>(reference.numel()));
  const auto got = torch::from_blob(const_cast<float*>(logits.data()), reference.sizes());
  EXPECT_LT((got - reference).abs().max().item<float>(), 1e-4);
}

// Each consumer of a model file, as a call that throws for a file that does not fit the spec.
// (Growth is for the small network only.)
std::vector<std::pair<std::string, std::function<void(const ModelFile&)>>> consumers(const Case& c,
                                                                                    const std::string& onnx) {
  std::vector<std::pair<std::string, std::function<void(const ModelFile&)>>> out = {
      {"engine", [](const ModelFile& m) { InferenceNetwork(m, "m.safetensors"); }},
      {"onnx", [onnx](const ModelFile& m) { export_onnx(m, "m.safetensors", onnx); }},
      {"import", [net = Crnn(c.config, kClasses, c.height)](const ModelFile& m) mutable {
         import_weights(net, m.tensors, "m.safetensors");
       }},
  };
  if (c.config.arch == Architecture::kSmall) {
    ModelConfig grown = c.config;
    for (auto& h : grown.rnn_hidden) h += 4;
    Crnn fresh(grown, kClasses, c.height);
    out.push_back({"grow", [c, grown, fresh = export_weights(fresh)](const ModelFile& m) {
                     grow_weights(m, grown, fresh, c.height, "m.safetensors");
                   }});
  }
  return out;
}

TEST_P(NetworkSpecOf, EveryConsumerRefusesAFileMissingOrMisshapingAnyTensor) {
  const Case& c = GetParam();
  Crnn net{nullptr};
  const ModelFile file = model_of(c, net);
  const auto spec_tensors = net->spec().tensors();
  testing::TempDir dir("spec-consumers");
  for (const auto& [consumer, use] : consumers(c, dir / "m.onnx")) {
    EXPECT_NO_THROW(use(file)) << consumer;
    for (const auto& t : spec_tensors) {
      ModelFile missing = file;
      missing.tensors.erase(t.name);
      try {
        use(missing);
        ADD_FAILURE() << consumer << " accepted a file without " << t.name;
      } catch (const ModelFileError& e) {
        EXPECT_NE(std::string(e.what()).find("m.safetensors: missing tensor " + t.name), std::string::npos)
            << consumer << ": " << e.what();
      }
      ModelFile misshapen = file;
      misshapen.tensors[t.name].shape.push_back(1);
      try {
        use(misshapen);
        ADD_FAILURE() << consumer << " accepted " << t.name << " in the wrong shape";
      } catch (const ModelFileError& e) {
        EXPECT_NE(std::string(e.what()).find("tensor " + t.name + " has the wrong shape"), std::string::npos)
            << consumer << ": " << e.what();
      }
    }
    ModelFile extra = file;
    extra.tensors["conv9.weight"] = Tensor::from_f32({1}, std::vector<float>{0}.data());
    EXPECT_THROW(use(extra), ModelFileError) << consumer << " accepted a tensor the spec lacks";
  }
}

TEST_P(NetworkSpecOf, GrowingWritesTheGrownSpecsTensors) {
  const Case& c = GetParam();
  if (c.config.arch != Architecture::kSmall) GTEST_SKIP() << "only the small network grows";
  Crnn net{nullptr};
  const ModelFile file = model_of(c, net);
  ModelConfig grown = c.config;
  grown.dense += 8;
  for (auto& channels : grown.conv_channels) channels += 4;
  if (grown.conv_channels.size() < ModelConfig::kMaxConvolutions) grown.conv_channels.push_back(grown.conv_channels.back());
  for (auto& h : grown.rnn_hidden) h += 4;
  Crnn fresh(grown, kClasses, c.height);
  const auto weights = grow_weights(file, grown, export_weights(fresh), c.height, "m.safetensors");
  EXPECT_NO_THROW(check_weights(network_spec(grown, c.height, kClasses), weights, "grown"));
}

INSTANTIATE_TEST_SUITE_P(Architectures, NetworkSpecOf, ::testing::ValuesIn(cases()),
                         [](const auto& info) { return info.param.name; });

TEST(NetworkSpec, RefusesAnInputTooLowForTheSmallNetworksPooling) {
  EXPECT_THROW(network_spec(ModelConfig{}, 3, kClasses), ConfigError);
  EXPECT_EQ(network_spec(ModelConfig{}, 4, kClasses).map_height, 1);
}

TEST(NetworkSpec, CountsTheKerasModelsParameters) {
  // The small network with the Keras model's settings for 19 symbols: 434,132 parameters (its
  // LSTMs keep two bias vectors per gate; Keras counts 432,596 with one).
  ModelConfig keras;
  keras.batch_norm = false;
  std::int64_t parameters = 0;
  for (const auto& t : network_spec(keras, 50, 20).tensors()) {
    std::int64_t n = 1;
    for (auto d : t.shape) n *= d;
    parameters += n;
  }
  EXPECT_EQ(parameters, 434132);
}

}  // namespace
}  // namespace captcha
