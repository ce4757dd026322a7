// The pretrained general model in models/ loads, describes itself, and reads the bundled
// example images in examples/ (drawn by captcha-ocr generate; labels.tsv holds the answers).
#include <gtest/gtest.h>

#include "captcha/dataset.h"
#include "captcha/preprocess.h"
#include "captcha/recogniser.h"

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

}  // namespace
}  // namespace captcha
