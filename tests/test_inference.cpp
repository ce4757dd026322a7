// The inference engine against its reference, the LibTorch forward pass: logits within 1e-4 on
// random inputs and on real images for every architecture and RNN type, with non-trivial batch
// norm statistics (folded at load); shapes; concurrent calls; bad model files.
#include "captcha/inference.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <thread>

#include "captcha/dataset.h"
#include "captcha/errors.h"
#include "captcha/model_file.h"
#include "support/fixtures.h"
#include "torch/crnn.h"

namespace captcha {
namespace {

struct Case {
  std::string arch, rnn;
  bool batch_norm = true;
  std::vector<int> conv_channels = ModelConfig{}.conv_channels;
};
void PrintTo(const Case& c, std::ostream* out) {
  *out << c.arch << " " << c.rnn << (c.batch_norm ? "" : " no batch norm") << " conv " << c.conv_channels.size();
}

ModelConfig config_of(const Case& c) {
  ModelConfig config;
  config.arch = parse_enum(c.arch, kArchitectureNames, "architecture");
  config.rnn = parse_enum(c.rnn, kRnnTypeNames, "RNN type");
  config.batch_norm = c.batch_norm;
  config.conv_channels = c.conv_channels;
  if (c.arch == "resnet") config.dense = 32, config.rnn_hidden = {16, 24};
  return config;
}

// A network with random weights and batch norm statistics, saved as a model file for
// `width` x `height` inputs and loaded back.
ModelFile random_model(const ModelConfig& config, int classes, int width, int height, Crnn& net) {
  net = Crnn(config, classes, height);
  net->eval();
  torch::NoGradGuard no_grad;
  for (auto& b : net->named_buffers())
    if (b.value().scalar_type() == torch::kFloat) b.value().uniform_(0.5, 1.5);
  // Batch norm scales and shifts away from 1 and 0, so folding them is tested.
  for (auto& p : net->named_parameters())
    if (p.key().find("bn") != std::string::npos || p.key().find("stem.1") != std::string::npos ||
        p.key().find("shortcut.1") != std::string::npos)
      p.value().uniform_(-1.0, 1.0);
  ModelFile file;
  file.charset = Charset(std::string("abcdefghij").substr(0, classes - 1));
  file.preprocess.width = width, file.preprocess.height = height;
  file.config = config;
  file.tensors = export_weights(net);
  return file;
}

// Largest difference between the engine's and LibTorch's logits for `input`, relative to the
// logit's size where that is above 1.
float max_relative_difference(Crnn& net, const InferenceNetwork& engine, const torch::Tensor& input) {
  torch::NoGradGuard no_grad;
  const auto expected = net->forward(input).contiguous();
  const auto got = engine.forward(input.data_ptr<float>(), input.size(0), input.size(3));
  EXPECT_EQ(got.size(), static_cast<std::size_t>(expected.numel()));
  if (got.size() != static_cast<std::size_t>(expected.numel())) return 1e9f;
  const auto got_tensor = torch::from_blob(const_cast<float*>(got.data()), expected.sizes());
  // A trained model's logits reach 20 and more; float sums taken in another order differ by
  // about 1e-5 of their size.
  return ((got_tensor - expected).abs() / expected.abs().clamp_min(1)).max().item<float>();
}

class Engine : public ::testing::TestWithParam<Case> {};

std::string sizes(const std::vector<int>& channels) {
  std::string out;
  for (int c : channels) out += (out.empty() ? "" : "_") + std::to_string(c);
  return out;
}

TEST_P(Engine, MatchesLibTorchOnRandomInputs) {
  torch::manual_seed(11);
  Crnn net{nullptr};
  const ModelFile file = random_model(config_of(GetParam()), 8, 96, 32, net);
  const InferenceNetwork engine(file, "m.safetensors");
  EXPECT_EQ(engine.num_classes(), 8);
  for (int batch : {1, 3, 7}) {  // 7: one image per thread in the convolutions
    for (int width : {96, 101}) {
      const auto input = torch::randn({batch, 1, 32, width});
      EXPECT_LT(max_relative_difference(net, engine, input), 1e-4f) << "batch " << batch << " width " << width;
    }
  }
}

TEST_P(Engine, ConcurrentCallsGiveTheSameLogits) {
  torch::manual_seed(12);
  Crnn net{nullptr};
  const InferenceNetwork engine(random_model(config_of(GetParam()), 6, 64, 32, net), "m.safetensors");
  const auto input = torch::randn({2, 1, 32, 64});
  const auto expected = engine.forward(input.data_ptr<float>(), 2, 64);
  std::vector<std::vector<float>> results(4);
  std::vector<std::thread> threads;
  for (auto& result : results)
    threads.emplace_back([&] {
      for (int i = 0; i < 5; ++i) result = engine.forward(input.data_ptr<float>(), 2, 64);
    });
  for (auto& t : threads) t.join();
  // Threads may split the work differently (last-bit differences); shared buffers would not.
  for (const auto& result : results) {
    ASSERT_EQ(result.size(), expected.size());
    for (std::size_t i = 0; i < result.size(); ++i) ASSERT_NEAR(result[i], expected[i], 1e-5f) << i;
  }
}

INSTANTIATE_TEST_SUITE_P(All, Engine,
                         ::testing::Values(Case{"small", "lstm"}, Case{"small", "gru"},
                                           Case{"small", "lstm", false}, Case{"small", "lstm", true, {8, 16, 24}},
                                           Case{"small", "gru", false, {8, 16, 24, 12}},
                                           // 12: no fused kernels for the first two, im2col throughout
                                           Case{"small", "lstm", true, {8, 12, 16}},
                                           // every convolution on the engine's own kernels
                                           Case{"small", "lstm", true, {32, 64, 64, 64, 64}},
                                           Case{"small", "gru", false, {16, 32, 48, 16}}, Case{"resnet", "lstm"},
                                           Case{"resnet", "gru"}),
                         [](const auto& info) {
                           return info.param.arch + "_" + info.param.rnn + (info.param.batch_norm ? "" : "_nobn") +
                                  (info.param.conv_channels.size() > 2 ? "_conv" + sizes(info.param.conv_channels) : "");
                         });

// The bundled model, loaded both ways: LibTorch (the reference) and the engine.
struct BundledModel {
  const std::string path = std::string(CAPTCHA_SOURCE_DIR) + "/models/general.safetensors";
  const ModelFile file = load_model(path);
  Crnn net{file.config, file.charset.num_classes(), file.preprocess.height};
  const InferenceNetwork engine{file, path};
  BundledModel() {
    import_weights(net, file.tensors, path);
    net->eval();
  }
  // samples[start, start + count) decoded, preprocessed and normalised: count x 1 x H x W.
  torch::Tensor inputs(const std::vector<Sample>& samples, std::size_t start, std::size_t count) const {
    auto input = torch::empty({static_cast<int64_t>(count), 1, file.preprocess.height, file.preprocess.width});
    for (std::size_t i = 0; i < count; ++i)
      normalise_into(preprocess(load_image(samples[start + i].path), file.preprocess), file.preprocess,
                     input[i].template data_ptr<float>());
    return input;
  }
};

TEST(Engine, MatchesLibTorchOnRealImagesWithTheBundledModel) {
  BundledModel model;
  const auto samples = scan_folder(std::string(CAPTCHA_SOURCE_DIR) + "/examples");
  ASSERT_FALSE(samples.empty());
  EXPECT_LT(max_relative_difference(model.net, model.engine, model.inputs(samples, 0, samples.size())), 1e-4f);
}

TEST(Engine, SameTextsAsLibTorchOnTheCaptchaV2TestFolder) {
  const std::string root = testing::shared_dataset("captcha-v2");
  if (root.empty()) GTEST_SKIP() << "../shared/data/captcha-v2 is absent; skipping";
  BundledModel model;
  const auto samples = scan_folder(root + "/test");
  const int w = model.file.preprocess.width;
  const int steps = model.engine.time_steps(w), classes = model.engine.num_classes();
  std::size_t compared = 0;
  for (std::size_t start = 0; start < samples.size(); start += 64) {
    const int count = static_cast<int>(std::min<std::size_t>(64, samples.size() - start));
    const auto input = model.inputs(samples, start, count);
    torch::NoGradGuard no_grad;
    const auto reference = decode_logits(model.net->forward(input), model.file.charset);
    const auto logits = model.engine.forward(input.data_ptr<float>(), count, w);
    const auto ours = decode_logits(logits.data(), count, steps, classes, model.file.charset, 0);
    for (int i = 0; i < count; ++i, ++compared)
      EXPECT_EQ(ours[i].text, reference[i].text) << samples[start + i].path;
  }
  EXPECT_EQ(compared, samples.size());
}

TEST(Engine, RejectsModelFilesThatDoNotFitTheArchitecture) {
  torch::manual_seed(13);
  Crnn net{nullptr};
  const ModelFile good = random_model(config_of({"small", "lstm"}), 5, 64, 32, net);
  ModelFile missing = good;
  missing.tensors.erase("rnn1.weight_hh_l0_reverse");
  try {
    InferenceNetwork engine(missing, "broken.safetensors");
    FAIL() << "loaded a model without rnn1.weight_hh_l0_reverse";
  } catch (const ModelFileError& e) {
    EXPECT_NE(std::string(e.what()).find("broken.safetensors: missing tensor rnn1.weight_hh_l0_reverse"), std::string::npos) << e.what();
  }
  ModelFile other_arch = good;
  other_arch.config.rnn = RnnType::kGru;
  EXPECT_THROW(InferenceNetwork(other_arch, "m.safetensors"), ModelFileError);
  ModelFile extra = good;
  extra.tensors.emplace("surplus.weight", Tensor::from_f32({1}, std::vector<float>{1.0f}.data()));
  EXPECT_THROW(InferenceNetwork(extra, "m.safetensors"), ModelFileError);
  ModelFile wrong_height = good;
  wrong_height.preprocess.height = 40;  // dense layer's input no longer fits
  EXPECT_THROW(InferenceNetwork(wrong_height, "m.safetensors"), ModelFileError);
  // A third convolution the file lacks, or one it holds that its settings do not name.
  ModelFile claims_three = good;
  claims_three.config.conv_channels = {32, 64, 64};
  EXPECT_THROW(InferenceNetwork(claims_three, "m.safetensors"), ModelFileError);
  Crnn three{nullptr};
  ModelFile claims_two = random_model(config_of({"small", "lstm", true, {8, 16, 16}}), 5, 64, 32, three);
  claims_two.config.conv_channels = {8, 16};
  EXPECT_THROW(InferenceNetwork(claims_two, "m.safetensors"), ModelFileError);
}

}  // namespace
}  // namespace captcha
