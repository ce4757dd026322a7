// The strong preprocessing's filters as OpenCV computes them on 8-bit grey images, byte for byte:
// cv::GaussianBlur (its fixed-point path), cv::addWeighted and cv::erode.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "image_ops.h"

namespace captcha::image_ops {

namespace {

// The Gaussian kernel of `size` taps (odd) in 8-bit fixed point, as cv::GaussianBlur builds it
// for 8-bit images: normalised in double, then rounded tap by tap from the outside in, each
// carrying the previous rounding error, the centre taking what makes the sum exactly 256.
std::vector<int> gaussian_kernel(int size, double sigma) {
  const int half = (size - 1) / 2;
  const double scale = -0.125 / (sigma * sigma);
  std::vector<double> values(half);
  double sum = 0;
  for (int i = 0, x = 1 - size; i < half; ++i, x += 2) sum += values[i] = std::exp(static_cast<double>(x * x) * scale);
  sum = sum * 2 + 1;
  const double normaliser = 1 / sum;
  std::vector<int> kernel(size);
  double error = 0;
  int total = 0;
  for (int i = 0; i < half; ++i) {
    const double adjusted = values[i] * normaliser * 256 + error;
    const int tap = static_cast<int>(std::lrint(adjusted));
    error = adjusted - tap;
    kernel[i] = kernel[size - 1 - i] = tap;
    total += 2 * tap;
  }
  kernel[half] = 256 - total;
  return kernel;
}

}  // namespace

void gaussian_blur(const std::uint8_t* src, int w, int h, std::size_t stride, double sigma, std::uint8_t* dst,
                   std::size_t dst_stride) {
  const int size = static_cast<int>(std::lrint(sigma * 3 * 2 + 1)) | 1;
  const std::vector<int> kernel = gaussian_kernel(size, sigma);
  const int half = size / 2;
  // Rows filtered into 16-bit fixed point (8 fractional bits), then columns into 16 more bits,
  // rounded half up.
  std::vector<std::uint32_t> rows(static_cast<std::size_t>(w) * h);
  std::vector<int> columns(w + 2 * half);
  for (int x = -half; x < w + half; ++x) columns[x + half] = reflect101(x, w);
  for (int y = 0; y < h; ++y) {
    const std::uint8_t* in = src + static_cast<std::size_t>(y) * stride;
    std::uint32_t* out = rows.data() + static_cast<std::size_t>(y) * w;
    for (int x = 0; x < w; ++x) {
      std::uint32_t sum = 0;
      for (int k = 0; k < size; ++k) sum += static_cast<std::uint32_t>(kernel[k]) * in[columns[x + k]];
      out[x] = sum;
    }
  }
  for (int y = 0; y < h; ++y) {
    std::uint8_t* out = dst + static_cast<std::size_t>(y) * dst_stride;
    for (int x = 0; x < w; ++x) {
      std::uint32_t sum = 0;
      for (int k = 0; k < size; ++k)
        sum += static_cast<std::uint32_t>(kernel[k]) * rows[static_cast<std::size_t>(reflect101(y + k - half, h)) * w + x];
      out[x] = static_cast<std::uint8_t>(std::min<std::uint32_t>((sum + (1u << 15)) >> 16, 255));
    }
  }
}

void add_weighted(const std::uint8_t* a, std::size_t a_stride, float alpha, const std::uint8_t* b,
                  std::size_t b_stride, float beta, int w, int h, std::uint8_t* dst, std::size_t dst_stride) {
  for (int y = 0; y < h; ++y) {
    const std::uint8_t* ra = a + static_cast<std::size_t>(y) * a_stride;
    const std::uint8_t* rb = b + static_cast<std::size_t>(y) * b_stride;
    std::uint8_t* out = dst + static_cast<std::size_t>(y) * dst_stride;
    for (int x = 0; x < w; ++x) {
      const float v = static_cast<float>(ra[x]) * alpha + static_cast<float>(rb[x]) * beta;
      out[x] = to_byte(v);
    }
  }
}

void erode_2x2(const std::uint8_t* src, int w, int h, std::size_t stride, std::uint8_t* dst, std::size_t dst_stride) {
  for (int y = 0; y < h; ++y) {
    const std::uint8_t* row = src + static_cast<std::size_t>(y) * stride;
    const std::uint8_t* above = y > 0 ? row - stride : row;
    std::uint8_t* out = dst + static_cast<std::size_t>(y) * dst_stride;
    for (int x = 0; x < w; ++x) {
      const int left = x > 0 ? x - 1 : x;
      out[x] = std::min({row[x], row[left], above[x], above[left]});
    }
  }
}

}  // namespace captcha::image_ops
