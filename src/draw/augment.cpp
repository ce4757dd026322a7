#include "captcha/augment.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include <opencv2/imgproc.hpp>

#include "captcha/opencv_image.h"

namespace captcha {

Image outline(const Image& input, std::mt19937_64& rng, const PreprocessOptions& p) {
  const cv::Mat image = as_mat(input);
  std::uniform_real_distribution<double> unit(0, 1);
  const double scale = 0.75 + 0.25 * unit(rng);
  cv::Mat m = cv::getRotationMatrix2D(cv::Point2f(image.cols / 2.0f, image.rows / 2.0f), 0, scale);
  cv::Mat shrunk;
  cv::warpAffine(image, shrunk, m, image.size(), cv::INTER_AREA, cv::BORDER_REPLICATE);
  // GD's kernel and offset.
  const cv::Mat kernel = (cv::Mat_<float>(3, 3) << -1, 0, -1, 0, 4, 0, -1, 0, -1);
  cv::Mat edges, out;
  cv::filter2D(shrunk, edges, CV_32F, unit(rng) < 0.5 ? cv::Mat(-kernel) : kernel, cv::Point(-1, -1), 0, cv::BORDER_REPLICATE);
  edges.convertTo(out, CV_8U, 1, 127);  // saturates
  return equalise(to_image(out), p);
}

// Light geometric jitter (small rotation, scale and shift, edges replicated); on half the
// images a thin dark line across the text, as many CAPTCHAs draw (the network learns to read
// through strokes that are not part of a symbol); then one image in kOutlineShare outlined.
Image augment_light(const Image& input, std::mt19937_64& rng, const PreprocessOptions& p) {
  const cv::Mat image = as_mat(input);
  std::uniform_real_distribution<double> angle(-3, 3), scale(0.95, 1.05), shift(-0.03, 0.03), unit(0, 1);
  cv::Mat m = cv::getRotationMatrix2D(cv::Point2f(image.cols / 2.0f, image.rows / 2.0f), angle(rng), scale(rng));
  m.at<double>(0, 2) += shift(rng) * image.cols;
  m.at<double>(1, 2) += shift(rng) * image.rows * 2;
  cv::Mat out;
  cv::warpAffine(image, out, m, image.size(), cv::INTER_LINEAR, cv::BORDER_REPLICATE);
  if (unit(rng) < 0.5) {
    const cv::Point from(static_cast<int>(unit(rng) * out.cols * 0.3), static_cast<int>((0.2 + 0.6 * unit(rng)) * out.rows));
    const cv::Point to(static_cast<int>((0.7 + 0.3 * unit(rng)) * out.cols), static_cast<int>((0.2 + 0.6 * unit(rng)) * out.rows));
    const int thickness = 1 + static_cast<int>(unit(rng) * std::max(1, out.rows / 20));
    cv::line(out, from, to, cv::Scalar(unit(rng) * 80), thickness, cv::LINE_AA);
  }
  Image jittered = to_image(out);
  return unit(rng) < kOutlineShare ? outline(jittered, rng, p) : jittered;
}

// The distortions CAPTCHA generators apply, each with a random strength: rotation, scale, shear
// and shift; a sine warp along each axis; straight and curved lines in dark or light shades;
// contrast and brightness; blur or pixel noise. Scale stays within 5%, so that letters whose two
// cases differ only in size (c/C, s/S, x/X) keep their label.
Image augment_captcha(const Image& input, std::mt19937_64& rng) {
  const cv::Mat image = as_mat(input);
  std::uniform_real_distribution<double> unit(0, 1);
  const auto between = [&](double low, double high) { return low + (high - low) * unit(rng); };
  const int rows = image.rows, cols = image.cols;
  constexpr double kTwoPi = 2 * CV_PI;

  // Where each output pixel samples the input: the inverse of rotate-scale-shear-shift, then the warp.
  const double angle = between(-4, 4) * CV_PI / 180, scale = between(0.95, 1.05), shear = between(-0.25, 0.25);
  const double shift_x = between(-0.03, 0.03) * cols, shift_y = between(-0.06, 0.06) * rows;
  const bool warp = unit(rng) < 0.6;
  const double warp_x = warp ? between(0, 0.04) * rows : 0, warp_y = warp ? between(0, 0.05) * rows : 0;
  const double period_x = between(0.5, 2) * rows, period_y = between(0.25, 1) * cols;
  const double phase_x = between(0, kTwoPi), phase_y = between(0, kTwoPi);
  const double c = std::cos(angle) / scale, s = std::sin(angle) / scale;
  const double centre_x = cols / 2.0, centre_y = rows / 2.0;
  cv::Mat map_x(rows, cols, CV_32F), map_y(rows, cols, CV_32F);
  for (int y = 0; y < rows; ++y) {
    float* mx = map_x.ptr<float>(y);
    float* my = map_y.ptr<float>(y);
    const double v = y - centre_y - shift_y, wave_x = warp_x * std::sin(kTwoPi * y / period_x + phase_x);
    for (int x = 0; x < cols; ++x) {
      const double u = x - centre_x - shift_x;
      const double sy = -s * u + c * v;
      const double sx = c * u + s * v - shear * sy;
      mx[x] = static_cast<float>(centre_x + sx + wave_x);
      my[x] = static_cast<float>(centre_y + sy + warp_y * std::sin(kTwoPi * x / period_y + phase_y));
    }
  }
  cv::Mat out;
  cv::remap(image, out, map_x, map_y, cv::INTER_LINEAR, cv::BORDER_REPLICATE);

  const int lines = static_cast<int>(unit(rng) * 3);  // 0, 1 or 2
  for (int i = 0; i < lines; ++i) {
    const double shade = unit(rng) < 0.7 ? between(0, 90) : between(170, 255);
    const int thickness = 1 + static_cast<int>(unit(rng) * std::max(1, rows / 20));
    const double y0 = between(0.15, 0.85) * rows, y1 = between(0.15, 0.85) * rows;
    const double bend = unit(rng) < 0.5 ? between(-0.25, 0.25) * rows : 0;
    const double x0 = between(0, 0.3) * cols, x1 = between(0.7, 1) * cols;
    std::vector<cv::Point> points;
    constexpr int kSegments = 12;
    for (int k = 0; k <= kSegments; ++k) {
      const double t = static_cast<double>(k) / kSegments;
      points.emplace_back(static_cast<int>(x0 + t * (x1 - x0)),
                          static_cast<int>(y0 + t * (y1 - y0) + bend * std::sin(CV_PI * t)));
    }
    cv::polylines(out, points, /*isClosed=*/false, cv::Scalar(shade), thickness, cv::LINE_AA);
  }

  const double contrast = between(0.75, 1.25), brightness = between(-20, 20);
  out.convertTo(out, -1, contrast, (1 - contrast) * cv::mean(out)[0] + brightness);
  const double roll = unit(rng);
  if (roll < 0.2) {
    cv::GaussianBlur(out, out, cv::Size(3, 3), between(0.3, 0.9));
  } else if (roll < 0.45) {
    cv::Mat noise(rows, cols, CV_16S);
    cv::RNG pixels(rng());
    pixels.fill(noise, cv::RNG::NORMAL, 0, between(2, 10));
    cv::Mat wide;
    out.convertTo(wide, CV_16S);
    wide += noise;
    wide.convertTo(out, CV_8U);  // saturates
  }
  return to_image(out);
}

}  // namespace captcha
