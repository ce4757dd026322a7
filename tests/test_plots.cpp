// Training curves and reading grids: parsed rows, pictures with the expected colours.
#include "captcha/plots.h"

#include <gtest/gtest.h>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "captcha/errors.h"
#include "support/fixtures.h"

namespace captcha {
namespace {

using testing::TempDir;

// Pixels close to a BGR colour.
int count_colour(const cv::Mat& image, cv::Scalar colour) {
  cv::Mat mask;
  cv::inRange(image, colour - cv::Scalar::all(40), colour + cv::Scalar::all(40), mask);
  return cv::countNonZero(mask);
}

TEST(Plots, ParsesMetricsRowsAndSkipsBrokenOnes) {
  const auto rows = parse_metrics_rows({"1,16.5,16.2,0,1,0.001,60,20", "2,x,1,2,3,4", "3,2.5,2.0,0.5,0.1,0.0009,61,40"});
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[1].epoch, 3);
  EXPECT_DOUBLE_EQ(rows[1].val_exact_match, 0.5);
  EXPECT_DOUBLE_EQ(rows[1].learning_rate, 0.0009);
}

TEST(Plots, CurvesDrawEverySeries) {
  std::vector<EpochFigures> epochs;
  for (int e = 1; e <= 30; ++e)
    epochs.push_back({e, 20.0 / e, 18.0 / e, std::min(1.0, e / 20.0), std::max(0.0, 1 - e / 15.0), 1e-3});
  const cv::Mat curves = draw_training_curves(epochs);
  ASSERT_EQ(curves.type(), CV_8UC3);
  EXPECT_GT(count_colour(curves, {200, 110, 30}), 100);  // train loss
  EXPECT_GT(count_colour(curves, {20, 130, 240}), 100);  // validation loss
  EXPECT_GT(count_colour(curves, {40, 150, 40}), 100);   // exact match
  EXPECT_GT(count_colour(curves, {40, 40, 210}), 100);   // CER
  EXPECT_FALSE(draw_training_curves({}).empty());        // before the first epoch
  EXPECT_FALSE(draw_training_curves({epochs[0]}).empty());
}

TEST(Plots, GridMarksMisreadsInRed) {
  cv::Mat image(50, 200, CV_8UC1, cv::Scalar(255));
  cv::putText(image, "abc", {20, 35}, cv::FONT_HERSHEY_SIMPLEX, 1, cv::Scalar(0), 2);
  const cv::Mat right = draw_reading_grid({{image, "abc", "abc", 0.99}}, 4);
  const cv::Mat wrong = draw_reading_grid({{image, "abc", "abd", 0.4}}, 4);
  EXPECT_EQ(count_colour(right, {40, 40, 210}), 0);
  EXPECT_GT(count_colour(right, {40, 150, 40}), 0);
  EXPECT_GT(count_colour(wrong, {40, 40, 210}), 100);
  // Many cells wrap into rows; unknown truths and non-ASCII readings draw too.
  std::vector<GridCell> cells(10, GridCell{image, "", "\xc3\xa9t\xc3\xa9", 0.5});
  const cv::Mat grid = draw_reading_grid(cells, 4);
  EXPECT_GT(grid.rows, 2 * right.rows);
}

TEST(Plots, WritePngReplacesTheFileOrNamesIt) {
  TempDir dir("plots");
  const cv::Mat image(10, 10, CV_8UC3, cv::Scalar(1, 2, 3));
  write_png(dir / "a.png", image);
  EXPECT_EQ(cv::imread(dir / "a.png").size(), image.size());
  try {
    write_png(dir / "missing/a.png", image);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("missing/a.png"), std::string::npos);
  }
}

}  // namespace
}  // namespace captcha
