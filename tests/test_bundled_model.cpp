// The pretrained general model in models/ loads, describes itself, reads the bundled example
// images in examples/ (drawn by captcha-ocr generate; labels.tsv holds the answers), and reads
// every real test folder in ../shared/data above ddddocr's default model (skipped where absent).
#include <gtest/gtest.h>

#include <limits>
#include <ostream>
#include <vector>

#include "captcha/dataset.h"
#include "captcha/errors.h"
#include "captcha/inference.h"
#include "captcha/model_file.h"
#include "captcha/preprocess.h"
#include "captcha/reader.h"
#include "support/fixtures.h"

namespace captcha {
namespace {

const std::string kSource = CAPTCHA_SOURCE_DIR;

TEST(BundledModel, DescribesItself) {
  const Recogniser recogniser(kSource + "/models/general.safetensors", 1);
  const ModelFile& model = recogniser.model();
  EXPECT_EQ(model.charset.symbols_utf8(), "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz");
  EXPECT_EQ(model.preprocess.width, 200);
  EXPECT_EQ(model.preprocess.height, 50);
  EXPECT_TRUE(model.training.contains("train_images"));
}

TEST(BundledModel, ReadsTheBundledExamples) {
  const Recogniser recogniser(kSource + "/models/general.safetensors", 1);
  const auto samples = scan_folder(kSource + "/examples");
  ASSERT_GE(samples.size(), 8u);
  for (const auto& s : samples) EXPECT_EQ(recogniser.read(load_image(s.path)).text, s.label) << s.path;
}

// With int8 products (weights quantised at load) the examples read the same, and the batch's
// probabilities stay close to the float ones'.
TEST(BundledModel, ReadsTheBundledExamplesInInt8) {
  const std::string path = kSource + "/models/general.safetensors";
  const Recogniser recogniser(path, 2, Precision::kInt8);
  const auto samples = scan_folder(kSource + "/examples");
  ASSERT_GE(samples.size(), 8u);
  std::vector<Image> prepared;
  for (const auto& s : samples) prepared.push_back(recogniser.prepare(load_image(s.path)));
  const auto readings = recogniser.read_prepared(prepared);
  const auto floats = Recogniser(path, 2).read_prepared(prepared);
  for (std::size_t i = 0; i < samples.size(); ++i) {
    EXPECT_EQ(readings[i].text, samples[i].label) << samples[i].path;
    EXPECT_NEAR(readings[i].confidence, floats[i].confidence, 0.02) << samples[i].path;
  }
}

// The first bundled example, prepared and normalised as the bundled model reads it.
std::vector<float> first_example_input() {
  const std::string path = kSource + "/models/general.safetensors";
  const Recogniser recogniser(path);
  const PreprocessOptions& options = recogniser.model().preprocess;
  const Image prepared = recogniser.prepare(load_image(scan_folder(kSource + "/examples").front().path));
  std::vector<float> input(static_cast<std::size_t>(options.width) * options.height);
  normalise_into(prepared, options, input.data());
  return input;
}

// An int8 model file (export --int8) reads with int8 products and gives the logits the float
// file gives with them: the engine quantises the weights it gives back to the same 8 bits.
TEST(BundledModel, AnInt8FileReadsAsTheFloatFileInInt8) {
  testing::TempDir dir("int8-file");
  const std::string path = kSource + "/models/general.safetensors";
  save_model(dir / "int8.safetensors", exported_model(load_model(path), true, path));
  const ModelFile model = load_model(path);
  const InferenceNetwork float_file(model, path, Precision::kInt8);
  const InferenceNetwork int8_file(load_model(dir / "int8.safetensors"), dir / "int8.safetensors");
  const std::vector<float> input = first_example_input();
  const std::vector<float> a = float_file.forward(input.data(), 1, model.preprocess.width);
  const std::vector<float> b = int8_file.forward(input.data(), 1, model.preprocess.width);
  ASSERT_EQ(a.size(), b.size());
  for (std::size_t i = 0; i < a.size(); ++i) ASSERT_NEAR(a[i], b[i], 1e-3) << i;
}

// A pass of one image after a pause runs on the calling thread alone (the engine's other threads
// are asleep by then); passes in quick succession use them all. Either way the logits are the
// same.
TEST(BundledModel, AColdOneImagePassReadsAsAWarmOne) {
  const std::string path = kSource + "/models/general.safetensors";
  const ModelFile model = load_model(path);
  const std::vector<float> input = first_example_input();
  set_inference_threads(2);
  const InferenceNetwork network(model, path);
  const std::vector<float> cold = network.forward(input.data(), 1, model.preprocess.width);
  const std::vector<float> warm = network.forward(input.data(), 1, model.preprocess.width);
  ASSERT_EQ(cold.size(), warm.size());
  for (std::size_t i = 0; i < cold.size(); ++i) ASSERT_NEAR(cold[i], warm[i], 1e-5) << i;
  set_inference_threads(1);
  const std::vector<float> one = network.forward(input.data(), 1, model.preprocess.width);
  for (std::size_t i = 0; i < cold.size(); ++i) ASSERT_NEAR(one[i], warm[i], 1e-5) << i;
  set_inference_threads(0);
}

// A weight that is NaN or infinite would read every image as the same text; the engine refuses
// the file, naming the tensor.
TEST(BundledModel, AWeightThatIsNotFiniteIsRefused) {
  const std::string path = kSource + "/models/general.safetensors";
  for (const float bad : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity()}) {
    ModelFile model = load_model(path);
    Tensor& weight = model.tensors.at("rnn1.weight_hh_l0");
    reinterpret_cast<float*>(weight.bytes.data())[17] = bad;
    try {
      InferenceNetwork network(model, "poisoned.safetensors");
      ADD_FAILURE() << "loaded a model holding " << bad;
    } catch (const ModelFileError& e) {
      EXPECT_NE(std::string(e.what()).find("poisoned.safetensors: tensor rnn1.weight_hh_l0 holds a NaN or infinite value"),
                std::string::npos)
          << e.what();
    }
  }
}

struct Bar {
  std::string set;
  bool case_insensitive;  // as the set's README says to score it
  double ddddocr;         // ddddocr's default model, zero-shot, on the set's test folder
};

void PrintTo(const Bar& bar, std::ostream* out) { *out << bar.set; }

class BundledModelZeroShot : public ::testing::TestWithParam<Bar> {};

// Zero-shot, read as `captcha-ocr eval` reads by default, the model beats the most used general
// captcha model on each test folder (bench/zero_shot.sh prints the same figures).
TEST_P(BundledModelZeroShot, ReadsTheTestFolderBetterThanDdddocr) {
  const Bar& bar = GetParam();
  const std::string root = testing::shared_dataset(bar.set);
  if (root.empty()) GTEST_SKIP() << "../shared/data/" << bar.set << " is absent; skipping";
  const Recogniser recogniser(kSource + "/models/general.safetensors", 1);
  const Evaluation evaluation = evaluate(recogniser, root + "/test", {}, bar.case_insensitive);
  const EvaluationReport& report = evaluation.figures;  // exact_match ignores case where asked to
  EXPECT_EQ(evaluation.skipped.total(), 0u);
  EXPECT_GT(100 * report.exact_match, bar.ddddocr) << bar.set << ": " << report.count << " images";
}

INSTANTIATE_TEST_SUITE_P(Sets, BundledModelZeroShot,
                         ::testing::Values(Bar{"captcha-v2", false, 89.4}, Bar{"indiagov-real", false, 84.5},
                                           Bar{"generic-text-lower", true, 21.5},
                                           Bar{"generic-text-upper", true, 20.3}),
                         [](const auto& info) { return testing::dataset_test_name(info.param.set); });

}  // namespace
}  // namespace captcha
