#include "captcha/image.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <string>

namespace captcha {

Image::Image(int width, int height, int channels, std::uint8_t fill) {
  if (width < 0 || height < 0 || channels < 1 || channels > 4)
    throw std::invalid_argument("Image: bad size " + std::to_string(width) + "x" + std::to_string(height) + "x" +
                                std::to_string(channels));
  width_ = width;
  height_ = height;
  channels_ = channels;
  pixels_.assign(stride() * static_cast<std::size_t>(height), fill);
}

Image Image::crop(int x, int y, int width, int height) const {
  const int x0 = std::clamp(x, 0, width_), y0 = std::clamp(y, 0, height_);
  const int x1 = std::clamp(x + width, x0, width_), y1 = std::clamp(y + height, y0, height_);
  Image out(x1 - x0, y1 - y0, channels_);
  for (int r = y0; r < y1; ++r)
    std::memcpy(out.row(r - y0), row(r) + static_cast<std::size_t>(x0) * channels_, out.stride());
  return out;
}

}  // namespace captcha
