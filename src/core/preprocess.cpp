// Image decoding and preprocessing, the same code path for training and inference.
#include "captcha/preprocess.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>
#include <opencv2/imgproc.hpp>

#include "captcha/errors.h"
#include "captcha/image_io.h"
#include "image_ops.h"
#include "json_fields.h"

namespace captcha {

void to_json(nlohmann::json& out, const PreprocessOptions& o) {
  out = {{"width", o.width},
         {"height", o.height},
         {"resize", o.resize == ResizeMode::kStretch ? "stretch" : "keep-aspect"},
         {"auto_invert", o.auto_invert},
         {"force_invert", o.force_invert},
         {"auto_crop", o.auto_crop},
         {"clahe", o.clahe},
         {"clahe_clip", o.clahe_clip},
         {"clahe_tiles", o.clahe_tiles},
         {"strong", o.strong},
         {"mean", o.mean},
         {"std", o.std}};
}

void from_json(const nlohmann::json& in, PreprocessOptions& o) {
  o = PreprocessOptions{};
  o.width = json_fields::int_field(in, "width", o.width);
  o.height = json_fields::int_field(in, "height", o.height);
  const std::string resize = in.value("resize", std::string("stretch"));
  if (resize != "stretch" && resize != "keep-aspect")
    throw ConfigError("unknown resize mode '" + resize + "' (expected stretch or keep-aspect)");
  o.resize = resize == "stretch" ? ResizeMode::kStretch : ResizeMode::kKeepAspect;
  o.auto_invert = in.value("auto_invert", o.auto_invert);
  o.force_invert = in.value("force_invert", o.force_invert);
  o.auto_crop = in.value("auto_crop", o.auto_crop);
  o.clahe = in.value("clahe", o.clahe);
  o.clahe_clip = in.value("clahe_clip", o.clahe_clip);
  o.clahe_tiles = json_fields::int_field(in, "clahe_tiles", o.clahe_tiles);
  o.strong = in.value("strong", o.strong);
  o.mean = json_fields::float_field(in, "mean", o.mean);
  o.std = json_fields::float_field(in, "std", o.std);
  if (o.width < 8 || o.height < 8 || o.width > 4096 || o.height > 1024)
    throw ConfigError("input size " + std::to_string(o.width) + "x" + std::to_string(o.height) +
                      " is out of range (8x8 to 4096x1024)");
  if (!(o.std > 0) || !std::isfinite(o.std) || !std::isfinite(o.mean))
    throw ConfigError("normalisation mean and std must be finite, std positive");
  if (o.clahe_tiles < 1 || o.clahe_tiles > kMaxClaheTiles)
    throw ConfigError("clahe_tiles must be 1 to " + std::to_string(kMaxClaheTiles));
  if (!(o.clahe_clip > 0) || !std::isfinite(o.clahe_clip)) throw ConfigError("clahe_clip must be positive");
}

cv::Mat decode_image(const std::vector<std::uint8_t>& bytes, const std::string& name, const ImageLimits& limits) {
  cv::Mat raw = decode_image_bytes(bytes, name, limits);
  if (raw.rows < 2 || raw.cols < 2) throw ImageError(name + ": image is too small (" + std::to_string(raw.cols) + "x" + std::to_string(raw.rows) + ")");

  if (raw.channels() == 1) return raw;
  cv::Mat grey(raw.size(), CV_8UC1);
  image_ops::to_grey(raw.data, raw.cols, raw.rows, raw.step, raw.channels(), grey.data, grey.step);
  return grey;
}

cv::Mat load_image(const std::string& path, const ImageLimits& limits) {
  return decode_image(read_image_file(path, limits), path, limits);
}

namespace {

std::uint8_t median_of(const cv::Mat& pixels) {
  int histogram[256] = {0};
  for (int r = 0; r < pixels.rows; ++r)
    for (int c = 0; c < pixels.cols; ++c) ++histogram[pixels.at<std::uint8_t>(r, c)];
  const int half = (pixels.rows * pixels.cols + 1) / 2;
  int seen = 0;
  for (int v = 0; v < 256; ++v)
    if ((seen += histogram[v]) >= half) return static_cast<std::uint8_t>(v);
  return 255;
}

// True when the border (the background, for a captcha) is darker than mid-grey.
bool is_light_on_dark(const cv::Mat& grey) {
  const int band = std::max(1, std::min(grey.rows, grey.cols) / 20);
  cv::Mat border;
  cv::vconcat(grey.rowRange(0, band), grey.rowRange(grey.rows - band, grey.rows), border);
  cv::Mat sides;
  cv::hconcat(grey.colRange(0, band), grey.colRange(grey.cols - band, grey.cols), sides);
  border = border.reshape(1, 1);
  sides = sides.clone().reshape(1, 1);
  cv::hconcat(border, sides, border);
  return median_of(border) < 128;
}

// Bounding box of the dark text with a margin, or the whole image when no clear text is found.
cv::Rect text_box(const cv::Mat& grey) {
  const cv::Rect whole(0, 0, grey.cols, grey.rows);
  cv::Mat ink;
  const double threshold = cv::threshold(grey, ink, 0, 255, cv::THRESH_BINARY_INV | cv::THRESH_OTSU);
  if (threshold <= 0 || cv::countNonZero(ink) > static_cast<int>(grey.total() / 2)) return whole;  // no clear split
  // A row or column counts as text when enough of it is ink: drops specks and thin noise.
  cv::Mat col_ink, row_ink;
  cv::reduce(ink, col_ink, 0, cv::REDUCE_SUM, CV_32S);
  cv::reduce(ink, row_ink, 1, cv::REDUCE_SUM, CV_32S);
  const int min_col = 255 * std::max(1, grey.rows / 25), min_row = 255 * std::max(1, grey.cols / 50);
  int left = -1, right = -1, top = -1, bottom = -1;
  for (int c = 0; c < grey.cols; ++c)
    if (col_ink.at<int>(0, c) >= min_col) { if (left < 0) left = c; right = c; }
  for (int r = 0; r < grey.rows; ++r)
    if (row_ink.at<int>(r, 0) >= min_row) { if (top < 0) top = r; bottom = r; }
  if (left < 0 || top < 0) return whole;
  const int margin_x = std::max(2, grey.cols / 40), margin_y = std::max(2, grey.rows / 10);
  cv::Rect box(cv::Point(std::max(0, left - margin_x), std::max(0, top - margin_y)),
               cv::Point(std::min(grey.cols, right + 1 + margin_x),
                         std::min(grey.rows, bottom + 1 + margin_y)));
  if (box.width < grey.cols / 8 || box.height < grey.rows / 4) return whole;  // implausible
  return box;
}

}  // namespace

void fit_input_size(PreprocessOptions& options, cv::Size image_size) {
  if (image_size.width <= 0 || image_size.height <= 0) return;
  const double scale = std::max(kMinInputScale, std::min({1.0, static_cast<double>(image_size.width) / options.width,
                                                         static_cast<double>(image_size.height) / options.height}));
  if (scale >= 1) return;
  const auto round_up_to_4 = [scale](int side) { return 4 * static_cast<int>(std::ceil(side * scale / 4 - 1e-9)); };
  options.width = round_up_to_4(options.width);
  options.height = round_up_to_4(options.height);
}

cv::Mat equalise(const cv::Mat& grey, const PreprocessOptions& options) {
  if (!options.clahe) return grey;
  cv::Mat equalised(grey.size(), CV_8UC1);
  image_ops::clahe(grey.data, grey.cols, grey.rows, grey.step, options.strong ? options.clahe_clip * 2 : options.clahe_clip,
                   options.clahe_tiles, options.clahe_tiles, equalised.data, equalised.step);
  return equalised;
}

cv::Mat preprocess(const cv::Mat& input, const PreprocessOptions& options) {
  if (input.empty() || input.type() != CV_8UC1)
    throw ConfigError("preprocess expects a non-empty 8-bit grey image");
  cv::Mat grey = input;
  if (options.force_invert || (options.auto_invert && is_light_on_dark(grey))) {
    cv::Mat inverted;
    cv::bitwise_not(grey, inverted);
    grey = inverted;
  }
  if (options.auto_crop) grey = grey(text_box(grey)).clone();
  grey = equalise(grey, options);
  if (options.strong) {
    // Sharpen, then thicken dark strokes by one pixel.
    cv::Mat blurred, sharpened, thickened;
    cv::GaussianBlur(grey, blurred, cv::Size(0, 0), 1.0);
    cv::addWeighted(grey, 1.5, blurred, -0.5, 0, sharpened);
    cv::erode(sharpened, thickened, cv::getStructuringElement(cv::MORPH_RECT, cv::Size(2, 2)));
    grey = thickened;
  }

  const cv::Size target(options.width, options.height);
  const auto interpolation = [&](cv::Size to) {
    return (to.width < grey.cols || to.height < grey.rows) ? cv::INTER_AREA : cv::INTER_LINEAR;
  };
  cv::Mat out;
  if (options.resize == ResizeMode::kStretch) {
    cv::resize(grey, out, target, 0, 0, interpolation(target));
    return out;
  }
  const int scaled_width = std::max(
      1, static_cast<int>(std::lround(static_cast<double>(grey.cols) * options.height / grey.rows)));
  if (scaled_width >= options.width) {
    cv::resize(grey, out, target, 0, 0, interpolation(target));  // too wide: squeeze
    return out;
  }
  cv::Mat scaled;
  cv::resize(grey, scaled, cv::Size(scaled_width, options.height), 0, 0,
             interpolation(cv::Size(scaled_width, options.height)));
  out = cv::Mat(target, CV_8UC1, cv::Scalar(median_of(scaled)));
  scaled.copyTo(out(cv::Rect(0, 0, scaled_width, options.height)));
  return out;
}

cv::Mat reading_view(const cv::Mat& preprocessed, int view) {
  struct View {
    double dx, dy, scale;  // shifts as shares of the width and height
  };
  static constexpr View kViews[kMaxReadingViews] = {{0, 0, 1},     {-0.01, 0, 1}, {0.01, 0, 1}, {0, -0.03, 1},
                                                    {0, 0.03, 1}, {0, 0, 0.96},  {0, 0, 1.04}};
  if (view < 0 || view >= kMaxReadingViews)
    throw ConfigError("reading_view: view " + std::to_string(view) + " is not in 0-" + std::to_string(kMaxReadingViews - 1));
  if (view == 0) return preprocessed;
  const View& v = kViews[view];
  cv::Mat transform = cv::getRotationMatrix2D(cv::Point2f(preprocessed.cols / 2.f, preprocessed.rows / 2.f), 0, v.scale);
  transform.at<double>(0, 2) += v.dx * preprocessed.cols;
  transform.at<double>(1, 2) += v.dy * preprocessed.rows;
  cv::Mat out;
  cv::warpAffine(preprocessed, out, transform, preprocessed.size(), cv::INTER_LINEAR, cv::BORDER_REPLICATE);
  return out;
}

void normalise_into(const cv::Mat& image, const PreprocessOptions& options, float* out) {
  const float scale = 1.0f / (255.0f * options.std), shift = options.mean / options.std;
  for (int r = 0; r < image.rows; ++r) {
    const std::uint8_t* row = image.ptr<std::uint8_t>(r);
    for (int c = 0; c < image.cols; ++c) *out++ = row[c] * scale - shift;
  }
}

}  // namespace captcha
