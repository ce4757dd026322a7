#include "captcha/plots.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

#include <opencv2/imgproc.hpp>

#include "captcha/atomic_file.h"
#include "captcha/errors.h"
#include "captcha/image_io.h"
#include "captcha/opencv_image.h"
#include "captcha/reader.h"

namespace captcha {

namespace {

const cv::Scalar kBlack(0, 0, 0), kGrey(200, 200, 200), kBlue(200, 110, 30), kOrange(20, 130, 240),
    kGreen(40, 150, 40), kRed(40, 40, 210);
constexpr int kFont = cv::FONT_HERSHEY_SIMPLEX;

std::string ascii_only(const std::string& text) {
  std::string out;
  for (unsigned char c : text) {
    if (c >= 0x80 && c < 0xC0) continue;  // UTF-8 continuation byte
    out += (c >= 0x20 && c < 0x7F) ? static_cast<char>(c) : '?';
  }
  return out;
}

std::string format_number(double value) {
  char buffer[32];
  if (value != 0 && (std::abs(value) < 0.01 || std::abs(value) >= 1000))
    std::snprintf(buffer, sizeof buffer, "%.0e", value);
  else
    std::snprintf(buffer, sizeof buffer, "%.3g", value);
  return buffer;
}

struct Series {
  std::vector<double> values;
  cv::Scalar colour;
  std::string name;
};

// One panel: axes, ticks, a title, and the series against the epoch.
void draw_panel(cv::Mat& canvas, cv::Rect area, const std::string& title, const std::vector<int>& epochs,
                const std::vector<Series>& series, bool log_scale, double fixed_lo = NAN, double fixed_hi = NAN) {
  const cv::Rect plot(area.x + 55, area.y + 30, area.width - 70, area.height - 65);
  cv::putText(canvas, title, {area.x + 55, area.y + 20}, kFont, 0.5, kBlack, 1, cv::LINE_AA);
  const auto transform = [&](double v) { return log_scale ? std::log10(std::max(v, 1e-6)) : v; };
  double lo = 1e30, hi = -1e30;
  for (const auto& s : series)
    for (double v : s.values)
      if (std::isfinite(v)) lo = std::min(lo, transform(v)), hi = std::max(hi, transform(v));
  if (!std::isnan(fixed_lo)) lo = fixed_lo;
  if (!std::isnan(fixed_hi)) hi = fixed_hi;
  if (lo > hi) lo = 0, hi = 1;
  if (hi - lo < 1e-9) hi = lo + 1;
  const int first = epochs.empty() ? 0 : epochs.front(), last = epochs.empty() ? 1 : std::max(epochs.back(), first + 1);
  const auto to_point = [&](int epoch, double v) {
    const double x = plot.x + plot.width * double(epoch - first) / (last - first);
    const double y = plot.y + plot.height * (1 - (transform(v) - lo) / (hi - lo));
    return cv::Point2d(x, y);
  };
  for (int i = 0; i <= 4; ++i) {
    const double t = lo + (hi - lo) * i / 4;
    const int y = static_cast<int>(plot.y + plot.height * (1 - double(i) / 4));
    cv::line(canvas, {plot.x, y}, {plot.br().x, y}, kGrey, 1);
    cv::putText(canvas, format_number(log_scale ? std::pow(10, t) : t), {area.x + 2, y + 4}, kFont, 0.35, kBlack, 1,
                cv::LINE_AA);
  }
  cv::rectangle(canvas, plot, kBlack, 1);
  for (int i = 0; i <= 4; ++i) {
    const int epoch = first + (last - first) * i / 4;
    const int x = static_cast<int>(to_point(epoch, lo).x);
    cv::putText(canvas, std::to_string(epoch), {x - 6, plot.br().y + 15}, kFont, 0.35, kBlack, 1, cv::LINE_AA);
  }
  cv::putText(canvas, "epoch", {plot.x + plot.width / 2 - 18, plot.br().y + 30}, kFont, 0.4, kBlack, 1, cv::LINE_AA);
  int legend_y = plot.y + 14;
  for (const auto& s : series) {
    std::vector<cv::Point> points;
    for (std::size_t i = 0; i < s.values.size() && i < epochs.size(); ++i)
      if (std::isfinite(s.values[i])) points.push_back(to_point(epochs[i], s.values[i]));
    if (points.size() == 1) cv::circle(canvas, points[0], 2, s.colour, cv::FILLED, cv::LINE_AA);
    cv::polylines(canvas, points, false, s.colour, 2, cv::LINE_AA);
    if (series.size() > 1) {
      cv::putText(canvas, s.name, {plot.br().x - 80, legend_y}, kFont, 0.4, s.colour, 1, cv::LINE_AA);
      legend_y += 15;
    }
  }
}

}  // namespace

std::vector<EpochFigures> parse_metrics_rows(const std::vector<std::string>& rows) {
  std::vector<EpochFigures> out;
  for (const auto& row : rows) {
    std::istringstream in(row);
    std::string field;
    std::vector<double> values;
    while (std::getline(in, field, ',')) {
      try {
        values.push_back(std::stod(field));
      } catch (const std::exception&) {
        break;
      }
    }
    if (values.size() < 6) continue;
    out.push_back({static_cast<int>(values[0]), values[1], values[2], values[3], values[4], values[5]});
  }
  return out;
}

cv::Mat draw_training_curves(const std::vector<EpochFigures>& epochs) {
  constexpr int kPanelWidth = 360, kHeight = 280;
  cv::Mat canvas(kHeight, 3 * kPanelWidth, CV_8UC3, cv::Scalar(255, 255, 255));
  std::vector<int> x;
  Series train_loss{{}, kBlue, "train"}, val_loss{{}, kOrange, "validation"}, exact{{}, kGreen, ""}, cer{{}, kRed, ""};
  for (const auto& e : epochs) {
    x.push_back(e.epoch);
    train_loss.values.push_back(e.train_loss);
    val_loss.values.push_back(e.val_loss);
    exact.values.push_back(100 * e.val_exact_match);
    cer.values.push_back(100 * e.val_cer);
  }
  draw_panel(canvas, {0, 0, kPanelWidth, kHeight}, "CTC loss (log scale)", x, {train_loss, val_loss}, true);
  draw_panel(canvas, {kPanelWidth, 0, kPanelWidth, kHeight}, "validation exact match (%)", x, {exact}, false, 0, 100);
  draw_panel(canvas, {2 * kPanelWidth, 0, kPanelWidth, kHeight}, "validation CER (%)", x, {cer}, false, 0);
  return canvas;
}

cv::Mat draw_reading_grid(const std::vector<GridCell>& cells, int columns) {
  constexpr int kImageWidth = 200, kImageHeight = 60, kTextHeight = 22, kGap = 6;
  columns = std::max(1, std::min<int>(columns, std::max<std::size_t>(1, cells.size())));
  const int rows = std::max<int>(1, (static_cast<int>(cells.size()) + columns - 1) / columns);
  const int cell_width = kImageWidth + kGap, cell_height = kImageHeight + kTextHeight + kGap;
  cv::Mat canvas(rows * cell_height + kGap, columns * cell_width + kGap, CV_8UC3, cv::Scalar(255, 255, 255));
  for (std::size_t i = 0; i < cells.size(); ++i) {
    const GridCell& cell = cells[i];
    const int x = kGap + static_cast<int>(i % columns) * cell_width;
    const int y = kGap + static_cast<int>(i / columns) * cell_height;
    if (!cell.image.empty()) {
      cv::Mat image;
      if (cell.image.channels() == 1)
        cv::cvtColor(cell.image, image, cv::COLOR_GRAY2BGR);
      else if (cell.image.channels() == 4)
        cv::cvtColor(cell.image, image, cv::COLOR_BGRA2BGR);
      else
        image = cell.image;
      if (image.depth() != CV_8U) image.convertTo(image, CV_8U);
      const double scale = std::min(double(kImageWidth) / image.cols, double(kImageHeight) / image.rows);
      const cv::Size size(std::max(1, int(image.cols * scale)), std::max(1, int(image.rows * scale)));
      cv::resize(image, image, size, 0, 0, cv::INTER_AREA);
      image.copyTo(canvas(cv::Rect(x, y, size.width, size.height)));
    }
    const bool correct = cell.truth.empty() || cell.truth == cell.reading;
    std::string text = ascii_only(cell.reading.empty() ? "(nothing)" : cell.reading);
    if (!correct) text += "  (" + ascii_only(cell.truth) + ")";
    const cv::Scalar colour = cell.truth.empty() ? kBlack : correct ? kGreen : kRed;
    cv::putText(canvas, text, {x, y + kImageHeight + 16}, kFont, 0.5, colour, 1, cv::LINE_AA);
    if (!correct) cv::rectangle(canvas, {x - 2, y - 2, kImageWidth + 4, kImageHeight + kTextHeight}, kRed, 1);
  }
  return canvas;
}

cv::Mat draw_evaluation_grid(const Evaluation& evaluation, std::size_t count, int columns) {
  std::vector<const ScoredReading*> order;
  for (const auto& r : evaluation.readings)
    if (!r.correct) order.push_back(&r);
  for (const auto& r : evaluation.readings)
    if (r.correct) order.push_back(&r);
  if (order.size() > count) order.resize(count);
  const auto shown = [&](const std::string& text) { return evaluation.case_insensitive ? fold_label(text) : text; };
  std::vector<GridCell> cells;
  for (const ScoredReading* r : order)
    cells.push_back({as_mat(read_colour_image(r->path)).clone(), shown(r->truth), shown(r->reading), r->confidence});
  return draw_reading_grid(cells, columns);
}

void write_png(const std::string& path, const cv::Mat& image) {
  const auto bytes = encode_image(to_image(image), "png");
  write_file_atomically(path, std::string(bytes.begin(), bytes.end()));
}

}  // namespace captcha
