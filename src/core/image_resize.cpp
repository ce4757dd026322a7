// cv::resize's 8-bit grey paths (bilinear in fixed point, area averaging), cv::warpAffine's
// bilinear one and cv::threshold's Otsu level, byte for byte.
#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstring>
#include <vector>

#include "image_ops.h"

namespace captcha::image_ops {

namespace {

// The bilinear weights' fixed point: 11 fractional bits.
constexpr int kCoefBits = 11;
constexpr int kCoefScale = 1 << kCoefBits;

long round_even(double v) { return std::lrint(v); }
short to_coefficient(float weight) { return static_cast<short>(std::clamp<long>(std::lrint(weight * kCoefScale), -32768, 32767)); }

// Where each destination index samples the source, with its two weights. `area` is OpenCV's
// variant for a side that grows while the other shrinks under INTER_AREA.
struct Taps {
  std::vector<int> offset;     // the first of the two source indices
  std::vector<short> weight;   // two per destination index
  int end_two_taps = 0;        // from here on the second tap would fall outside the source
};

// Columns are clamped to the source, weights and all; rows keep their weights and only the rows
// they read are clamped (`clamp_to_source` false), as OpenCV does.
Taps bilinear_taps(int source, int destination, bool area, bool clamp_to_source) {
  const double inverse = static_cast<double>(destination) / source, scale = 1. / inverse;  // as OpenCV rounds them
  Taps taps;
  taps.offset.resize(destination);
  taps.weight.resize(2 * static_cast<std::size_t>(destination));
  taps.end_two_taps = destination;
  for (int d = 0; d < destination; ++d) {
    float f;
    int s;
    if (!area) {
      f = static_cast<float>((d + 0.5) * scale - 0.5);
      s = static_cast<int>(std::floor(f));
      f -= static_cast<float>(s);
    } else {
      s = static_cast<int>(std::floor(d * scale));
      f = static_cast<float>((d + 1) - (s + 1) * inverse);
      f = f <= 0 ? 0.f : f - std::floor(f);
    }
    if (clamp_to_source && s < 0) f = 0, s = 0;
    if (clamp_to_source && s + 1 >= source) {
      taps.end_two_taps = std::min(taps.end_two_taps, d);
      if (s >= source - 1) f = 0, s = source - 1;
    }
    taps.offset[d] = s;
    taps.weight[2 * d] = to_coefficient(1.f - f);
    taps.weight[2 * d + 1] = to_coefficient(f);
  }
  return taps;
}

void horizontal_pass(const std::uint8_t* row, const Taps& taps, int* out) {
  const int width = static_cast<int>(taps.offset.size());
  int d = 0;
  for (; d < taps.end_two_taps; ++d) {
    const std::uint8_t* p = row + taps.offset[d];
    out[d] = p[0] * taps.weight[2 * d] + p[1] * taps.weight[2 * d + 1];
  }
  for (; d < width; ++d) out[d] = row[taps.offset[d]] * kCoefScale;
}

// Two horizontally resized rows blended into one as OpenCV's 16-bit vector lanes blend them:
// each term shifted down by 4 before its product and truncated, the sum rounded at the end.
void vertical_pass(const int* row0, const int* row1, short b0, short b1, int width, std::uint8_t* out) {
  for (int x = 0; x < width; ++x) {
    const int sum = (((row0[x] >> 4) * b0) >> 16) + (((row1[x] >> 4) * b1) >> 16);
    out[x] = static_cast<std::uint8_t>(std::clamp((sum + 2) >> 2, 0, 255));
  }
}

void resize_bilinear(const std::uint8_t* src, int sw, int sh, std::size_t stride, std::uint8_t* dst, int dw, int dh,
                     std::size_t dst_stride, bool area) {
  const Taps columns = bilinear_taps(sw, dw, area, true), rows = bilinear_taps(sh, dh, area, false);
  std::vector<int> buffer(2 * static_cast<std::size_t>(dw));
  int* const resized[2] = {buffer.data(), buffer.data() + dw};
  int cached[2] = {-1, -1};  // the source row each buffer holds
  for (int y = 0; y < dh; ++y) {
    for (int k = 0; k < 2; ++k) {
      const int sy = std::clamp(rows.offset[y] + k, 0, sh - 1);
      if (cached[k] == sy) continue;
      if (cached[1 - k] == sy) {
        std::memcpy(resized[k], resized[1 - k], sizeof(int) * dw);
      } else {
        horizontal_pass(src + static_cast<std::size_t>(sy) * stride, columns, resized[k]);
      }
      cached[k] = sy;
    }
    vertical_pass(resized[0], resized[1], rows.weight[2 * y], rows.weight[2 * y + 1], dw,
                  dst + static_cast<std::size_t>(y) * dst_stride);
  }
}

// Whole blocks of ix x iy source pixels per destination pixel.
void resize_area_whole(const std::uint8_t* src, std::size_t stride, std::uint8_t* dst, int dw, int dh,
                       std::size_t dst_stride, int ix, int iy) {
  const float scale = 1.f / static_cast<float>(ix * iy);
  for (int y = 0; y < dh; ++y) {
    std::uint8_t* out = dst + static_cast<std::size_t>(y) * dst_stride;
    for (int x = 0; x < dw; ++x) {
      int sum = 0;
      for (int j = 0; j < iy; ++j) {
        const std::uint8_t* row = src + static_cast<std::size_t>(y * iy + j) * stride + x * ix;
        for (int i = 0; i < ix; ++i) sum += row[i];
      }
      out[x] = ix == 2 && iy == 2 ? static_cast<std::uint8_t>((sum + 2) >> 2) : to_byte(static_cast<float>(sum) * scale);
    }
  }
}

// Each source index's share of a destination index, as cv::resize's area tables weigh it.
struct Share {
  int source, destination;
  float weight;
};

std::vector<Share> area_shares(int source, int destination, double scale) {
  std::vector<Share> shares;
  for (int d = 0; d < destination; ++d) {
    const double from = d * scale, to = from + scale, cell = std::min(scale, source - from);
    int first = static_cast<int>(std::ceil(from)), last = static_cast<int>(std::floor(to));
    last = std::min(last, source - 1);
    first = std::min(first, last);
    if (first - from > 1e-3) shares.push_back({first - 1, d, static_cast<float>((first - from) / cell)});
    for (int s = first; s < last; ++s) shares.push_back({s, d, static_cast<float>(1.0 / cell)});
    if (to - last > 1e-3) shares.push_back({last, d, static_cast<float>(std::min(std::min(to - last, 1.), cell) / cell)});
  }
  return shares;
}

void resize_area(const std::uint8_t* src, int sw, int sh, std::size_t stride, std::uint8_t* dst, int dw, int dh,
                 std::size_t dst_stride) {
  const std::vector<Share> columns = area_shares(sw, dw, 1. / (static_cast<double>(dw) / sw));
  const std::vector<Share> rows = area_shares(sh, dh, 1. / (static_cast<double>(dh) / sh));
  std::vector<float> row_sum(dw), sum(dw, 0.f);
  const auto write = [&](int y) {
    std::uint8_t* out = dst + static_cast<std::size_t>(y) * dst_stride;
    for (int x = 0; x < dw; ++x) out[x] = to_byte(sum[x]);
  };
  int current = rows.front().destination;
  for (const Share& r : rows) {
    const std::uint8_t* in = src + static_cast<std::size_t>(r.source) * stride;
    std::fill(row_sum.begin(), row_sum.end(), 0.f);
    for (const Share& c : columns) row_sum[c.destination] += in[c.source] * c.weight;
    if (r.destination != current) {
      write(current);
      for (int x = 0; x < dw; ++x) sum[x] = r.weight * row_sum[x];
      current = r.destination;
    } else {
      for (int x = 0; x < dw; ++x) sum[x] += r.weight * row_sum[x];
    }
  }
  write(current);
}

}  // namespace

void resize(const std::uint8_t* src, int sw, int sh, std::size_t stride, std::uint8_t* dst, int dw, int dh,
            std::size_t dst_stride, Interpolation interpolation) {
  if (sw == dw && sh == dh) {
    for (int y = 0; y < sh; ++y)
      std::memcpy(dst + static_cast<std::size_t>(y) * dst_stride, src + static_cast<std::size_t>(y) * stride, sw);
    return;
  }
  // Scales as OpenCV rounds them: the inverse of destination / source.
  const double scale_x = 1. / (static_cast<double>(dw) / sw), scale_y = 1. / (static_cast<double>(dh) / sh);
  const long ix = round_even(scale_x), iy = round_even(scale_y);
  const bool whole = std::abs(scale_x - ix) < DBL_EPSILON && std::abs(scale_y - iy) < DBL_EPSILON;
  if (interpolation == Interpolation::kLinear && whole && ix == 2 && iy == 2) interpolation = Interpolation::kArea;
  if (interpolation == Interpolation::kArea && scale_x >= 1 && scale_y >= 1) {
    if (whole)
      resize_area_whole(src, stride, dst, dw, dh, dst_stride, static_cast<int>(ix), static_cast<int>(iy));
    else
      resize_area(src, sw, sh, stride, dst, dw, dh, dst_stride);
    return;
  }
  resize_bilinear(src, sw, sh, stride, dst, dw, dh, dst_stride, interpolation == Interpolation::kArea);
}

int otsu_threshold(const std::uint8_t* src, int w, int h, std::size_t stride) {
  int histogram[256] = {};
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) ++histogram[src[static_cast<std::size_t>(y) * stride + x]];
  const double scale = 1.0 / (static_cast<double>(w) * h);
  double mu = 0;
  for (int i = 0; i < 256; ++i) mu += i * static_cast<double>(histogram[i]);
  mu *= scale;
  double mu1 = 0, q1 = 0, best_sigma = 0;
  int best = 0;
  for (int i = 0; i < 256; ++i) {
    const double p = histogram[i] * scale;
    mu1 *= q1;
    q1 += p;
    const double q2 = 1. - q1;
    if (std::min(q1, q2) < FLT_EPSILON || std::max(q1, q2) > 1. - FLT_EPSILON) continue;
    mu1 = (mu1 + i * p) / q1;
    const double mu2 = (mu - q1 * mu1) / q2;
    const double sigma = q1 * q2 * (mu1 - mu2) * (mu1 - mu2);
    if (sigma > best_sigma) best_sigma = sigma, best = i;
  }
  return best;
}

void warp_affine(const std::uint8_t* src, int w, int h, std::size_t stride, const double matrix[6], std::uint8_t* dst,
                 int dw, int dh, std::size_t dst_stride) {
  // The inverse map, destination to source, in double.
  double m[6] = {matrix[0], matrix[1], matrix[2], matrix[3], matrix[4], matrix[5]};
  double det = m[0] * m[4] - m[1] * m[3];
  det = det != 0 ? 1. / det : 0.;
  const double a11 = m[4] * det, a22 = m[0] * det;
  m[0] = a11;
  m[1] *= -det;
  m[3] *= -det;
  m[4] = a22;
  const double b1 = -m[0] * m[2] - m[1] * m[5], b2 = -m[3] * m[2] - m[4] * m[5];
  m[2] = b1;
  m[5] = b2;

  // Source positions in 1/1024 pixel, then 1/32 pixel (rounded), which picks the weights: four
  // per 1/32 x 1/32 cell, 15 fractional bits, products of the two sides' linear weights.
  constexpr int kAbBits = 10, kAbScale = 1 << kAbBits, kInterBits = 5, kInterSize = 1 << kInterBits;
  constexpr int kRoundDelta = kAbScale / kInterSize / 2, kWeightBits = 15;
  std::vector<int> x_step(dw), y_step(dw);
  for (int x = 0; x < dw; ++x) {
    x_step[x] = static_cast<int>(std::lrint(m[0] * x * kAbScale));
    y_step[x] = static_cast<int>(std::lrint(m[3] * x * kAbScale));
  }
  const auto pixel = [&](int x, int y) {
    return static_cast<int>(src[static_cast<std::size_t>(std::clamp(y, 0, h - 1)) * stride + std::clamp(x, 0, w - 1)]);
  };
  for (int y = 0; y < dh; ++y) {
    const int x0 = static_cast<int>(std::lrint((m[1] * y + m[2]) * kAbScale)) + kRoundDelta;
    const int y0 = static_cast<int>(std::lrint((m[4] * y + m[5]) * kAbScale)) + kRoundDelta;
    std::uint8_t* out = dst + static_cast<std::size_t>(y) * dst_stride;
    for (int x = 0; x < dw; ++x) {
      const int sx = (x0 + x_step[x]) >> (kAbBits - kInterBits), sy = (y0 + y_step[x]) >> (kAbBits - kInterBits);
      const int ix = sx >> kInterBits, iy = sy >> kInterBits;
      const int fx = sx & (kInterSize - 1), fy = sy & (kInterSize - 1);
      // (1 - fx/32)(1 - fy/32) * 2^15 and so on: exact integers.
      const int w00 = (kInterSize - fx) * (kInterSize - fy) * 32, w01 = fx * (kInterSize - fy) * 32;
      const int w10 = (kInterSize - fx) * fy * 32, w11 = fx * fy * 32;
      const int sum = pixel(ix, iy) * w00 + pixel(ix + 1, iy) * w01 + pixel(ix, iy + 1) * w10 + pixel(ix + 1, iy + 1) * w11;
      out[x] = static_cast<std::uint8_t>(std::clamp((sum + (1 << (kWeightBits - 1))) >> kWeightBits, 0, 255));
    }
  }
}

}  // namespace captcha::image_ops
