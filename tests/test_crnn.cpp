// The networks: parameter count of the default model, output shapes and time steps, and the
// model-file round trip rebuilding a network with identical outputs, for every architecture.
#include "torch/crnn.h"

#include <cmath>

#include <gtest/gtest.h>

#include "captcha/errors.h"
#include "captcha/model_file.h"
#include "captcha/recogniser.h"
#include "support/fixtures.h"

namespace captcha {
namespace {

// Saves `net` as a model file for 96x32 inputs with `charset`.
ModelFile save_network(Crnn& net, const ModelConfig& config, const std::string& charset, const std::string& path) {
  ModelFile file;
  file.charset = Charset(charset);
  file.preprocess.width = 96, file.preprocess.height = 32;
  file.config = config;
  file.tensors = export_weights(net);
  save_model(path, file);
  return file;
}

std::int64_t parameter_count(Crnn& net) {
  std::int64_t n = 0;
  for (const auto& p : net->parameters()) n += p.numel();
  return n;
}

TEST(Crnn, DefaultModelMatchesTheKerasCaptchaModel) {
  // Keras reports 432,596 for 19 symbols; PyTorch's LSTM has two bias vectors per gate, which
  // adds 2 * (4*128 + 4*64) * 2 / 2 = 1,536 parameters.
  ModelConfig keras;
  keras.batch_norm = false;
  Crnn net(keras, /*num_classes=*/20, /*input_height=*/50);
  EXPECT_EQ(parameter_count(net), 432596 + 1536);
  // Batch norm trades the two convolution biases (96) for a scale and shift per channel (192).
  Crnn with_batch_norm(ModelConfig{}, 20, 50);
  EXPECT_EQ(parameter_count(with_batch_norm), 432596 + 1536 + 96);
}

TEST(Crnn, BlankShareSetsTheStartingBlankProbability) {
  Crnn net(ModelConfig{}, /*num_classes=*/20, /*input_height=*/50);
  net->set_blank_share(0.9);
  const auto weights = export_weights(net);
  const Tensor& bias = weights.at("classifier.bias");
  ASSERT_EQ(bias.shape, std::vector<std::int64_t>{20});
  const float* b = reinterpret_cast<const float*>(bias.bytes.data());
  double sum = 0;
  for (int i = 0; i < 20; ++i) sum += std::exp(b[i]);
  EXPECT_NEAR(std::exp(b[Charset::kBlank]) / sum, 0.9, 1e-6);
  for (int i = 1; i < 20; ++i) EXPECT_EQ(b[i], 0.0f);
  EXPECT_THROW(net->set_blank_share(0), ConfigError);
  EXPECT_THROW(net->set_blank_share(1), ConfigError);
}

struct ArchCase {
  std::string arch, rnn;
};
void PrintTo(const ArchCase& c, std::ostream* out) { *out << c.arch << " " << c.rnn; }

class CrnnArch : public ::testing::TestWithParam<ArchCase> {
 protected:
  ModelConfig config() const {
    ModelConfig c;
    c.arch = parse_enum(GetParam().arch, kArchitectureNames, "architecture");
    c.rnn = parse_enum(GetParam().rnn, kRnnTypeNames, "RNN type");
    if (c.arch == Architecture::kResnet) c.dense = 32, c.rnn_hidden = {16, 16};
    return c;
  }
};

TEST_P(CrnnArch, OutputShapeAndTimeSteps) {
  const ModelConfig c = config();
  Crnn net(c, 7, 32);
  net->eval();
  torch::NoGradGuard no_grad;
  for (int width : {96, 101, 200}) {
    const auto out = net->forward(torch::randn({2, 1, 32, width}));
    EXPECT_EQ(out.sizes(), (std::vector<int64_t>{2, output_time_steps(c, width), 7})) << width;
  }
}

TEST_P(CrnnArch, ModelFileRoundTripGivesIdenticalOutputs) {
  testing::TempDir dir("crnn-" + GetParam().arch + GetParam().rnn);
  torch::manual_seed(3);
  const ModelConfig c = config();
  Crnn original(c, 5, 32);
  original->eval();
  // Make batch-norm statistics non-trivial so that buffers must travel too.
  for (auto& b : original->named_buffers())
    if (b.value().scalar_type() == torch::kFloat) b.value().uniform_(0.5, 1.5);
  save_network(original, c, "abcd", dir / "m.safetensors");

  const ModelFile loaded = load_model(dir / "m.safetensors");
  Crnn rebuilt(loaded.config, loaded.charset.num_classes(), loaded.preprocess.height);
  import_weights(rebuilt, loaded.tensors, dir / "m.safetensors");
  rebuilt->eval();
  torch::NoGradGuard no_grad;
  const auto input = torch::randn({3, 1, 32, 96});
  EXPECT_TRUE(torch::equal(original->forward(input), rebuilt->forward(input)));
}

INSTANTIATE_TEST_SUITE_P(All, CrnnArch,
                         ::testing::Values(ArchCase{"small", "lstm"}, ArchCase{"small", "gru"},
                                           ArchCase{"resnet", "gru"}, ArchCase{"resnet", "lstm"}),
                         [](const auto& info) { return info.param.arch + "_" + info.param.rnn; });

TEST(Crnn, GrowingKeepsTheOutput) {
  torch::NoGradGuard no_grad;
  for (const char* rnn : {"lstm", "gru"})
    for (const bool batch_norm : {true, false}) {
      SCOPED_TRACE(std::string(rnn) + (batch_norm ? " with batch norm" : " without batch norm"));
      torch::manual_seed(11);
      ModelConfig c;
      c.rnn = parse_enum(rnn, kRnnTypeNames, "RNN type");
      c.batch_norm = batch_norm;
      c.conv_channels = {8, 16};
      c.dense = 16;
      c.rnn_hidden = {12, 8};
      Crnn original(c, 5, 32);
      // Batch norms that have learnt something: statistics, scales and shifts away from 0 and 1.
      for (auto& b : original->named_buffers()) {
        if (b.key().find("running_mean") != std::string::npos) b.value().uniform_(-0.2, 0.2);
        if (b.key().find("running_var") != std::string::npos) b.value().uniform_(0.5, 1.5);
      }
      for (auto& p : original->named_parameters())
        if (p.key().rfind("bn", 0) == 0) p.value().uniform_(0.5, 1.5);
      ModelFile source;
      source.config = c;
      source.charset = Charset("abcd");
      source.tensors = export_weights(original);
      // Every size grows; two convolutions are added, the first wider than the last loaded one.
      ModelConfig g = c;
      g.conv_channels = {12, 16, 24, 16};
      g.dense = 24;
      g.rnn_hidden = {16, 12};
      Crnn grown(g, 5, 32);
      import_weights(grown, grow_weights(source, g, export_weights(grown), 32, "m.safetensors"), "grown");
      const auto images = torch::randn({4, 1, 32, 96});
      grown->pass_through_norms(images, 2, 16);
      original->eval();
      grown->eval();
      const auto before = original->forward(images), after = grown->forward(images);
      EXPECT_LT((before - after).abs().max().item<float>(), 1e-4);
      EXPECT_GT(before.abs().max().item<float>(), 0.1);
      // In training the added convolutions pass the loaded ones' channels through as well, on
      // the images their batch norms were measured on.
      if (batch_norm) {
        grown->train();
        const auto loaded = grown->feature_map(images, 2), passed = grown->feature_map(images, 4).narrow(1, 0, 16);
        EXPECT_LT((loaded - passed).abs().max().item<float>(), 1e-3 * loaded.abs().max().item<float>());
      }
    }
}

TEST(ImportWeights, RejectsAnotherArchitecture) {
  Crnn small(ModelConfig{}, 5, 32);
  ModelConfig gru;
  gru.rnn = RnnType::kGru;
  Crnn other(gru, 5, 32);
  EXPECT_THROW(import_weights(other, export_weights(small), "small.safetensors"), ModelFileError);
  Crnn wider(ModelConfig{}, 9, 32);  // another charset size
  EXPECT_THROW(import_weights(wider, export_weights(small), "small.safetensors"), ModelFileError);
  auto missing = export_weights(small);
  missing.erase("classifier.bias");
  EXPECT_THROW(import_weights(small, missing, "m.safetensors"), ModelFileError);
}

TEST(Recogniser, MatchesTheNetworkForwardPass) {
  testing::TempDir dir("recogniser");
  torch::manual_seed(5);
  ModelConfig c;
  c.rnn_hidden = {16, 16};
  Crnn net(c, 4, 32);
  net->eval();
  const ModelFile file = save_network(net, c, "abc", dir / "m.safetensors");

  Recogniser recogniser(dir / "m.safetensors", 1);
  const cv::Mat prepared = to_mat(recogniser.prepare(to_image(testing::draw_text("abc", 96, 32, 1))));
  ASSERT_EQ(prepared.size(), cv::Size(96, 32));
  torch::NoGradGuard no_grad;
  auto input = torch::empty({1, 1, 32, 96});
  normalise_into(prepared, file.preprocess, input.data_ptr<float>());
  const auto expected = decode_logits(net->forward(input), file.charset, kDefaultBeamWidth);
  const auto reading = recogniser.read_prepared({to_image(prepared)}).front();
  EXPECT_EQ(reading.text, expected[0].text);
  EXPECT_NEAR(reading.confidence, expected[0].confidence, 1e-4);
  EXPECT_EQ(reading.char_probabilities.size(), reading.text.size());
  // --allowed restricts what can be read.
  ReadOptions only_a;
  only_a.allowed = "a";
  const Reading restricted = recogniser.read_prepared({to_image(prepared)}, only_a).front();
  for (char ch : restricted.text) EXPECT_EQ(ch, 'a');
}

// Views of an image and models of an ensemble are read by averaging their per-step
// probabilities; a model file's reading_views is the default; models that cannot be read together
// are refused, naming the file.
TEST(Recogniser, AveragesTheProbabilitiesOfViewsAndModels) {
  testing::TempDir dir("ensemble");
  torch::manual_seed(6);
  ModelConfig c;
  c.rnn_hidden = {16, 16};
  Crnn a(c, 4, 32), b(c, 4, 32);
  for (Crnn* net : {&a, &b}) {
    (*net)->set_blank_share(0.2);  // random weights that still read some symbols
    (*net)->eval();
  }
  const ModelFile file = save_network(a, c, "abc", dir / "a.safetensors");
  save_network(b, c, "abc", dir / "b.safetensors");
  const Recogniser one(dir / "a.safetensors", 1);
  const cv::Mat prepared = to_mat(one.prepare(to_image(testing::draw_text("abc", 96, 32, 1))));

  // The reading of the mean of the softmax outputs of `nets` over `views` views.
  torch::NoGradGuard no_grad;
  const auto expected = [&](const std::vector<Crnn*>& nets, int views) {
    torch::Tensor sum;
    for (int view = 0; view < views; ++view) {
      auto input = torch::empty({1, 1, 32, 96});
      normalise_into(reading_view(prepared, view), file.preprocess, input.data_ptr<float>());
      for (Crnn* net : nets) {
        const auto p = torch::softmax((*net)->forward(input), 2);
        sum = sum.defined() ? sum + p : p;
      }
    }
    return decode_logits(torch::log(sum / static_cast<double>(views * nets.size())), file.charset, kDefaultBeamWidth)
        .front();
  };
  const auto expect_reading = [&](const Reading& got, const DecodedText& want, const std::string& what) {
    EXPECT_FALSE(want.text.empty()) << what;  // something to compare
    EXPECT_EQ(got.text, want.text) << what;
    ASSERT_EQ(got.char_probabilities.size(), want.char_probabilities.size()) << what;
    for (std::size_t i = 0; i < got.char_probabilities.size(); ++i)
      EXPECT_NEAR(got.char_probabilities[i], want.char_probabilities[i], 1e-4) << what << " symbol " << i;
  };
  ReadOptions views;
  views.views = kMaxReadingViews;
  expect_reading(one.read_prepared({to_image(prepared)}, views).front(), expected({&a}, kMaxReadingViews), "one model, all views");
  const Recogniser both({dir / "a.safetensors", dir / "b.safetensors"}, 1);
  EXPECT_EQ(both.ensemble_size(), 2);
  expect_reading(both.read_prepared({to_image(prepared)}).front(), expected({&a, &b}, 1), "two models, one view");
  views.views = 3;
  expect_reading(both.read_prepared({to_image(prepared)}, views).front(), expected({&a, &b}, 3), "two models, three views");
  // A model twice reads as the model alone.
  const Recogniser twice({dir / "a.safetensors", dir / "a.safetensors"}, 1);
  expect_reading(twice.read_prepared({to_image(prepared)}).front(), expected({&a}, 1), "one model twice");

  // The file's own choice of views is the default.
  ModelFile viewed = load_model(dir / "a.safetensors");
  viewed.reading_views = 3;
  save_model(dir / "viewed.safetensors", viewed);
  expect_reading(Recogniser(dir / "viewed.safetensors", 1).read_prepared({to_image(prepared)}).front(), expected({&a}, 3),
                 "the file's three views");
  views.views = kMaxReadingViews + 1;
  EXPECT_THROW(one.read_prepared({to_image(prepared)}, views), ConfigError);

  // Models of another task cannot join.
  save_network(b, c, "abd", dir / "other-charset.safetensors");
  ModelFile wider = load_model(dir / "a.safetensors");
  wider.preprocess.width = 128;
  save_model(dir / "other-width.safetensors", wider);
  for (const auto& [name, why] : {std::pair<std::string, std::string>{"other-charset.safetensors", "another charset"},
                                  {"other-width.safetensors", "other preprocessing"}}) {
    try {
      Recogniser({dir / "a.safetensors", dir / name}, 1);
      ADD_FAILURE() << name << " joined the ensemble";
    } catch (const ModelFileError& e) {
      EXPECT_NE(std::string(e.what()).find(dir / name + ": cannot be read together with"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(why), std::string::npos) << e.what();
    }
  }
}

}  // namespace
}  // namespace captcha
