#include "image_ops.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace captcha::image_ops {

namespace {

constexpr int kLevels = 256;

// The tile's clipped histogram, accumulated into a mapping of the 256 grey levels.
void tile_mapping(const std::uint8_t* src, int h, std::size_t stride, const std::vector<int>& columns, int x0, int y0,
                  int tw, int th, int limit, float scale, std::uint8_t* mapping) {
  int histogram[kLevels] = {};
  for (int y = y0; y < y0 + th; ++y) {
    const std::uint8_t* row = src + static_cast<std::size_t>(reflect101(y, h)) * stride;
    for (int x = x0; x < x0 + tw; ++x) ++histogram[row[columns[x]]];
  }
  if (limit > 0) {
    int clipped = 0;
    for (int& count : histogram)
      if (count > limit) clipped += count - limit, count = limit;
    // Spread evenly; what does not divide goes one each to levels spread over the range.
    const int share = clipped / kLevels;
    int rest = clipped - share * kLevels;
    for (int& count : histogram) count += share;
    if (rest > 0)
      for (int i = 0, step = std::max(kLevels / rest, 1); i < kLevels && rest > 0; i += step, --rest) ++histogram[i];
  }
  int sum = 0;
  for (int i = 0; i < kLevels; ++i) {
    sum += histogram[i];
    mapping[i] = to_byte(static_cast<float>(sum) * scale);
  }
}

}  // namespace

void clahe(const std::uint8_t* src, int w, int h, std::size_t stride, double clip, int tiles_x, int tiles_y,
           std::uint8_t* dst, std::size_t dst_stride) {
  // Where the tiles do not divide the image, it is extended by mirroring, on the right and at
  // the bottom, by a whole remainder (also on the side that does divide).
  const bool extended = w % tiles_x != 0 || h % tiles_y != 0;
  const int tw = (extended ? w + tiles_x - w % tiles_x : w) / tiles_x;
  const int th = (extended ? h + tiles_y - h % tiles_y : h) / tiles_y;
  const int area = tw * th;
  const float scale = static_cast<float>(kLevels - 1) / static_cast<float>(area);
  const int limit = clip > 0 ? std::max(static_cast<int>(clip * area / kLevels), 1) : 0;
  std::vector<int> columns(static_cast<std::size_t>(tw) * tiles_x);
  for (std::size_t x = 0; x < columns.size(); ++x) columns[x] = reflect101(static_cast<int>(x), w);
  std::vector<std::uint8_t> mappings(static_cast<std::size_t>(tiles_x) * tiles_y * kLevels);
  for (int ty = 0; ty < tiles_y; ++ty)
    for (int tx = 0; tx < tiles_x; ++tx)
      tile_mapping(src, h, stride, columns, tx * tw, ty * th, tw, th, limit, scale,
                   mappings.data() + (static_cast<std::size_t>(ty) * tiles_x + tx) * kLevels);
  // Each pixel: its level mapped by the four nearest tiles' mappings, blended by its distance
  // to their centres (float arithmetic in OpenCV's order, for the same rounding).
  const float inv_tw = 1.0f / static_cast<float>(tw), inv_th = 1.0f / static_cast<float>(th);
  std::vector<int> left(w), right(w);
  std::vector<float> to_right(w), to_left(w);
  for (int x = 0; x < w; ++x) {
    const float f = static_cast<float>(x) * inv_tw - 0.5f;
    const int t = static_cast<int>(std::floor(f));
    to_right[x] = f - static_cast<float>(t);
    to_left[x] = 1.0f - to_right[x];
    left[x] = std::max(t, 0) * kLevels;
    right[x] = std::min(t + 1, tiles_x - 1) * kLevels;
  }
  for (int y = 0; y < h; ++y) {
    const float f = static_cast<float>(y) * inv_th - 0.5f;
    const int t = static_cast<int>(std::floor(f));
    const float down = f - static_cast<float>(t), up = 1.0f - down;
    const std::uint8_t* above = mappings.data() + static_cast<std::size_t>(std::max(t, 0)) * tiles_x * kLevels;
    const std::uint8_t* below = mappings.data() + static_cast<std::size_t>(std::min(t + 1, tiles_y - 1)) * tiles_x * kLevels;
    const std::uint8_t* in = src + static_cast<std::size_t>(y) * stride;
    std::uint8_t* out = dst + static_cast<std::size_t>(y) * dst_stride;
    for (int x = 0; x < w; ++x) {
      const int v = in[x];
      const float blended = (above[left[x] + v] * to_left[x] + above[right[x] + v] * to_right[x]) * up +
                            (below[left[x] + v] * to_left[x] + below[right[x] + v] * to_right[x]) * down;
      out[x] = to_byte(blended);
    }
  }
}

namespace {

// OpenCV's 8-bit BGR to grey: 0.114, 0.587 and 0.299 in 15-bit fixed point (the same bytes as
// cv::cvtColor for every one of the 2^24 colours, tested).
int weighted_grey(const std::uint8_t* bgr) { return (bgr[0] * 3735 + bgr[1] * 19235 + bgr[2] * 9798 + (1 << 14)) >> 15; }

// `grey` with opacity `alpha` over white.
std::uint8_t over_white(int grey, int alpha) {
  const float opacity = static_cast<float>(alpha * (1.0 / 255));
  return to_byte(static_cast<float>(grey) * opacity + (1.0f - opacity) * 255.0f);
}

}  // namespace

void to_grey(const std::uint8_t* src, int w, int h, std::size_t stride, int channels, std::uint8_t* dst,
             std::size_t dst_stride) {
  for (int y = 0; y < h; ++y) {
    const std::uint8_t* in = src + static_cast<std::size_t>(y) * stride;
    std::uint8_t* out = dst + static_cast<std::size_t>(y) * dst_stride;
    switch (channels) {
      case 1: std::copy(in, in + w, out); break;
      case 2: for (int x = 0; x < w; ++x) out[x] = over_white(in[2 * x], in[2 * x + 1]); break;
      case 3: for (int x = 0; x < w; ++x) out[x] = static_cast<std::uint8_t>(weighted_grey(in + 3 * x)); break;
      default: for (int x = 0; x < w; ++x) out[x] = over_white(weighted_grey(in + 4 * x), in[4 * x + 3]); break;
    }
  }
}

}  // namespace captcha::image_ops
