// Pictures for people: training curves and grids of images with their readings.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include <opencv2/core.hpp>

namespace captcha {

struct EpochFigures {
  int epoch = 0;
  double train_loss = 0, val_loss = 0;
  double val_exact_match = 0, val_cer = 0;  // fractions
  double learning_rate = 0;
};

// Parses the rows of a run's metrics.csv (no header). Rows that do not parse are left out.
std::vector<EpochFigures> parse_metrics_rows(const std::vector<std::string>& rows);

// Three panels side by side: train and validation loss (log scale), validation exact match and
// validation CER (percent), each against the epoch. 8-bit BGR.
cv::Mat draw_training_curves(const std::vector<EpochFigures>& epochs);

struct GridCell {
  cv::Mat image;           // any size, grey or BGR
  std::string truth;       // empty: unknown
  std::string reading;
  double confidence = 0;
};

// Cells in rows of `columns`: the image, then its reading (green where it matches the truth,
// red with the truth beside it where it does not). Non-ASCII symbols are shown as '?'.
cv::Mat draw_reading_grid(const std::vector<GridCell>& cells, int columns = 4);

struct Evaluation;  // captcha/reader.h

// A grid of up to `count` images of an evaluation with their readings, misreads first (marked,
// with the truth), case-folded where the evaluation ignores case. 8-bit BGR; see
// draw_reading_grid.
cv::Mat draw_evaluation_grid(const Evaluation& evaluation, std::size_t count, int columns = 4);

// Writes `image` as PNG through a temporary file and a rename. Throws Error naming the path.
void write_png(const std::string& path, const cv::Mat& image);

}  // namespace captcha
