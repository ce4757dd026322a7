// ONNX export, checked with a runtime nobody here wrote: OpenCV's dnn module reads the exported
// file and must give the engine's logits (within 1e-4) and the same texts on the bundled
// examples; every architecture and RNN type; a model that does not fit fails clearly.
#include "captcha/onnx_export.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <opencv2/dnn.hpp>
#include <opencv2/imgproc.hpp>

#include "captcha/dataset.h"
#include "captcha/errors.h"
#include "captcha/inference.h"
#include "support/fixtures.h"
#include "torch/crnn.h"

namespace captcha {
namespace {

// Logits from OpenCV's dnn module for `input` (batch x 1 x height x width).
std::vector<float> opencv_logits(const std::string& onnx, const std::vector<float>& input, int batch, int height, int width) {
  cv::dnn::Net net = cv::dnn::readNetFromONNX(onnx);
  const int dims[4] = {batch, 1, height, width};
  const cv::Mat blob(4, dims, CV_32F, const_cast<float*>(input.data()));
  net.setInput(blob, "image");
  const cv::Mat out = net.forward("logits");
  return std::vector<float>(out.ptr<float>(), out.ptr<float>() + out.total());
}

float max_difference(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  float worst = a.size() == b.size() ? 0.0f : 1e9f;
  for (std::size_t i = 0; i < std::min(a.size(), b.size()); ++i) worst = std::max(worst, std::abs(a[i] - b[i]));
  return worst;
}

float largest_magnitude(const std::vector<float>& values) {
  float largest = 0;
  for (float v : values) largest = std::max(largest, std::abs(v));
  return largest;
}

struct Case {
  std::string arch, rnn;
  std::vector<int> conv_channels = ModelConfig{}.conv_channels;
};
void PrintTo(const Case& c, std::ostream* out) { *out << c.arch << " " << c.rnn << " conv " << c.conv_channels.size(); }
class OnnxExport : public ::testing::TestWithParam<Case> {};

TEST_P(OnnxExport, OpenCvGivesTheEngineLogits) {
  testing::TempDir dir("onnx");
  torch::manual_seed(21);
  ModelConfig config;
  config.arch = parse_enum(GetParam().arch, kArchitectureNames, "architecture");
  config.rnn = parse_enum(GetParam().rnn, kRnnTypeNames, "RNN type");
  config.conv_channels = GetParam().conv_channels;
  if (config.arch == Architecture::kResnet) config.dense = 32, config.rnn_hidden = {16, 24};
  Crnn net(config, 7, 32);
  net->eval();
  {
    torch::NoGradGuard no_grad;
    for (auto& b : net->named_buffers())
      if (b.value().scalar_type() == torch::kFloat) b.value().uniform_(0.5, 1.5);
  }
  ModelFile model;
  model.charset = Charset("abcdef");
  model.preprocess.width = 64, model.preprocess.height = 32;
  model.config = config;
  model.tensors = export_weights(net);
  export_onnx(model, "m.safetensors", dir / "m.onnx", /*batch=*/2);

  const InferenceNetwork engine(model, "m.safetensors");
  const int batch = 2;
  std::vector<float> input(batch * 32 * 64);
  cv::RNG random(3);
  for (float& v : input) v = static_cast<float>(random.gaussian(1.0));
  EXPECT_LT(max_difference(opencv_logits(dir / "m.onnx", input, batch, 32, 64), engine.forward(input.data(), batch, 64)), 1e-4f);
}

INSTANTIATE_TEST_SUITE_P(All, OnnxExport,
                         ::testing::Values(Case{"small", "lstm"}, Case{"small", "gru"}, Case{"small", "lstm", {8, 16, 24}},
                                           Case{"resnet", "lstm"}, Case{"resnet", "gru"}),
                         [](const auto& info) {
                           return info.param.arch + "_" + info.param.rnn + (info.param.conv_channels.size() > 2 ? "_conv3" : "");
                         });

TEST(OnnxExport, BundledModelReadsTheExamplesAsTheEngineDoes) {
  testing::TempDir dir("onnx-bundled");
  const std::string path = std::string(CAPTCHA_SOURCE_DIR) + "/models/general.safetensors";
  const ModelFile model = load_model(path);
  const auto samples = scan_folder(std::string(CAPTCHA_SOURCE_DIR) + "/examples");
  export_onnx(model, path, dir / "general.onnx", static_cast<int>(samples.size()));
  const int h = model.preprocess.height, w = model.preprocess.width, n = static_cast<int>(samples.size());
  std::vector<float> input(static_cast<std::size_t>(n) * h * w);
  for (int i = 0; i < n; ++i)
    normalise_into(preprocess(load_image(samples[i].path), model.preprocess), model.preprocess, input.data() + i * h * w);
  const InferenceNetwork engine(model, path);
  const auto ours = engine.forward(input.data(), n, w);
  const auto theirs = opencv_logits(dir / "general.onnx", input, n, h, w);
  // Float rounding through the convolutions and two 50-step BiLSTMs, summed in another order by
  // OpenCV, grows with the logits' size (the stage-12 model's reach 26.5: 4.4e-5 apart at most).
  EXPECT_LT(max_difference(ours, theirs), 2e-5f * std::max(1.0f, largest_magnitude(ours)));
  const int steps = engine.time_steps(w), classes = engine.num_classes();
  const auto ours_text = decode_logits(ours.data(), n, steps, classes, model.charset, 0);
  const auto theirs_text = decode_logits(theirs.data(), n, steps, classes, model.charset, 0);
  for (int i = 0; i < n; ++i) {
    EXPECT_EQ(theirs_text[i].text, ours_text[i].text) << samples[i].path;
    EXPECT_EQ(theirs_text[i].text, samples[i].label) << samples[i].path;
  }
}

// The ddddocr layout, read the way ddddocr reads a model of its own: grey, resized to the size
// charsets.json gives (Lanczos, as PIL's ANTIALIAS), (v / 255 - 0.456) / 0.224, the output's
// class indices with repeats and blanks dropped, mapped through charsets.json. ddddocr neither
// crops nor equalises, so only most of the examples need read right; each reading must be the one
// the engine gives the same prepared image (stretched as the graph stretches it).
TEST(OnnxExport, DdddocrLayoutReadsAsDdddocrReadsItsOwn) {
  testing::TempDir dir("onnx-ddddocr");
  const std::string path = std::string(CAPTCHA_SOURCE_DIR) + "/models/general.safetensors";
  const ModelFile model = load_model(path);
  // OpenCV's dnn module needs every size fixed: the width ddddocr then stretches images to.
  const int width = model.preprocess.width * kDdddocrHeight / model.preprocess.height;
  export_ddddocr(model, path, dir / "model.onnx", dir / "charsets.json", width);
  const nlohmann::json charsets = nlohmann::json::parse(testing::read_file(dir / "charsets.json"));
  EXPECT_EQ(charsets.at("word"), false);
  EXPECT_EQ(charsets.at("channel"), 1);
  EXPECT_EQ(charsets.at("image"), nlohmann::json::array({width, 64}));
  const auto& symbols = charsets.at("charset");
  ASSERT_EQ(symbols.size(), model.charset.symbols().size() + 1);
  EXPECT_EQ(symbols.at(0), "");

  cv::dnn::Net net = cv::dnn::readNetFromONNX(dir / "model.onnx");
  const InferenceNetwork engine(model, path);
  const PreprocessOptions& p = model.preprocess;
  int right = 0;
  const auto samples = scan_folder(std::string(CAPTCHA_SOURCE_DIR) + "/examples");
  for (const Sample& sample : samples) {
    const Image grey = load_image(sample.path);
    const cv::Mat original(grey.height(), grey.width(), CV_8U, const_cast<std::uint8_t*>(grey.data()));
    cv::Mat resized, input;
    cv::resize(original, resized, {width, kDdddocrHeight}, 0, 0, cv::INTER_LANCZOS4);
    resized.convertTo(input, CV_32F, 1.0 / (255 * kDdddocrStd), -kDdddocrMean / kDdddocrStd);
    net.setInput(cv::dnn::blobFromImage(input), "input1");
    cv::Mat classes;
    net.forward("output").convertTo(classes, CV_32S);
    std::string text;
    for (std::size_t t = 0, last = 0; t < classes.total(); ++t) {
      const auto c = static_cast<std::size_t>(classes.ptr<int>()[t]);
      if (c != last && c != 0) text += symbols.at(c).get<std::string>();
      last = c;
    }
    // The engine on the same pixels, stretched as the graph stretches them.
    cv::Mat stretched;
    cv::resize(input, stretched, {p.width, p.height}, 0, 0, cv::INTER_LINEAR);
    std::vector<float> engine_input(stretched.total());
    for (std::size_t i = 0; i < engine_input.size(); ++i)
      engine_input[i] = (stretched.ptr<float>()[i] * kDdddocrStd + kDdddocrMean - p.mean) / p.std;
    const auto logits = engine.forward(engine_input.data(), 1, p.width);
    const auto expected = decode_logits(logits.data(), 1, engine.time_steps(p.width), engine.num_classes(), model.charset, 0);
    EXPECT_EQ(text, expected.front().text) << sample.path;
    right += text == sample.label;
  }
  EXPECT_GE(right, static_cast<int>(samples.size()) - 2);
}

TEST(OnnxExport, ModelThatDoesNotFitFailsNamingTheFile) {
  testing::TempDir dir("onnx-bad");
  ModelFile model = load_model(std::string(CAPTCHA_SOURCE_DIR) + "/models/general.safetensors");
  model.tensors.erase("dense.weight");
  try {
    export_onnx(model, "general.safetensors", dir / "x.onnx");
    FAIL() << "exported a model without dense.weight";
  } catch (const ModelFileError& e) {
    EXPECT_NE(std::string(e.what()).find("general.safetensors: missing tensor dense.weight"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace captcha
