// The trainer's distortions of training images.
#include "captcha/augment.h"

#include <gtest/gtest.h>

#include <opencv2/imgproc.hpp>

#include "captcha/preprocess.h"
#include "support/fixtures.h"

namespace captcha {
namespace {

PreprocessOptions input_options() {
  PreprocessOptions p;
  p.width = 152;
  p.height = 40;
  return p;
}

cv::Mat preprocessed_text(std::uint64_t seed) {
  return preprocess(testing::draw_text("Ab3xK", 150, 40, seed), input_options());
}

double median(const cv::Mat& image) {
  std::vector<std::uint8_t> values(image.begin<std::uint8_t>(), image.end<std::uint8_t>());
  std::nth_element(values.begin(), values.begin() + values.size() / 2, values.end());
  return values[values.size() / 2];
}

// The bounding box of the pixels far (more than 60) from the image's median.
cv::Rect ink_box(const cv::Mat& image) {
  cv::Mat far;
  cv::absdiff(image, cv::Scalar(median(image)), far);
  cv::threshold(far, far, 60, 255, cv::THRESH_BINARY);
  std::vector<cv::Point> points;
  cv::findNonZero(far, points);
  return cv::boundingRect(points);
}

TEST(Augment, OutlineDrawsTextAsDarkAndLightRimsOnMidGrey) {
  const cv::Mat text = preprocessed_text(1);
  ASSERT_GT(median(text), 220);  // dark text on light paper
  for (std::uint64_t seed = 1; seed <= 8; ++seed) {
    std::mt19937_64 rng(seed);
    const cv::Mat out = outline(text, rng, input_options());
    ASSERT_EQ(out.size(), text.size());
    ASSERT_EQ(out.type(), CV_8UC1);
    EXPECT_GT(median(out), 80) << seed;
    EXPECT_LT(median(out), 200) << seed;
    double darkest = 0, lightest = 0;
    cv::minMaxLoc(out, &darkest, &lightest);
    EXPECT_LT(darkest, 50) << seed;
    EXPECT_GT(lightest, 210) << seed;
    // Shrunk into the frame, never grown.
    const cv::Rect before = ink_box(text), after = ink_box(out);
    EXPECT_LE(after.width, before.width + 4) << seed;
    EXPECT_LE(after.height, before.height + 4) << seed;
  }
}

TEST(Augment, OutlineIsSeeded) {
  const cv::Mat text = preprocessed_text(2);
  std::mt19937_64 a(7), b(7), c(8);
  const cv::Mat first = outline(text, a, input_options());
  EXPECT_EQ(cv::norm(first, outline(text, b, input_options()), cv::NORM_INF), 0);
  EXPECT_GT(cv::norm(first, outline(text, c, input_options()), cv::NORM_INF), 0);
}

TEST(Augment, LightJitterOutlinesAboutOneImageInTen) {
  const cv::Mat text = preprocessed_text(3);
  std::mt19937_64 rng(11);
  int outlined = 0;
  constexpr int kDraws = 400;
  for (int i = 0; i < kDraws; ++i) {
    const cv::Mat out = augment_light(text, rng, input_options());
    ASSERT_EQ(out.size(), text.size());
    if (median(out) < 200) ++outlined;  // the jitter alone keeps the paper light
  }
  EXPECT_GT(outlined, kDraws * kOutlineShare / 2);
  EXPECT_LT(outlined, kDraws * kOutlineShare * 2);
}

}  // namespace
}  // namespace captcha
