// An 8-bit image held by value, the type the reading path passes around: width x height pixels
// of 1 to 4 interleaved channels (grey; grey + alpha; BGR; BGRA), rows one after another.
// (captcha/opencv_image.h converts to and from cv::Mat for code that draws with OpenCV.)
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace captcha {

struct ImageSize {
  int width = 0;
  int height = 0;
  bool operator==(const ImageSize& other) const { return width == other.width && height == other.height; }
  bool operator!=(const ImageSize& other) const { return !(*this == other); }
};

class Image {
 public:
  Image() = default;
  // Throws std::invalid_argument for a negative size or channels outside 1-4.
  Image(int width, int height, int channels = 1, std::uint8_t fill = 0);

  int width() const { return width_; }
  int height() const { return height_; }
  int channels() const { return channels_; }
  ImageSize size() const { return {width_, height_}; }
  bool empty() const { return pixels_.empty(); }
  std::size_t stride() const { return static_cast<std::size_t>(width_) * channels_; }  // bytes per row

  std::uint8_t* data() { return pixels_.data(); }
  const std::uint8_t* data() const { return pixels_.data(); }
  std::uint8_t* row(int y) { return pixels_.data() + static_cast<std::size_t>(y) * stride(); }
  const std::uint8_t* row(int y) const { return pixels_.data() + static_cast<std::size_t>(y) * stride(); }
  std::uint8_t& at(int x, int y, int channel = 0) { return row(y)[x * channels_ + channel]; }
  std::uint8_t at(int x, int y, int channel = 0) const { return row(y)[x * channels_ + channel]; }

  // A copy of the rectangle at (x, y), clipped to the image.
  Image crop(int x, int y, int width, int height) const;

  bool operator==(const Image& other) const {
    return width_ == other.width_ && height_ == other.height_ && channels_ == other.channels_ && pixels_ == other.pixels_;
  }
  bool operator!=(const Image& other) const { return !(*this == other); }

 private:
  int width_ = 0, height_ = 0, channels_ = 0;
  std::vector<std::uint8_t> pixels_;
};

}  // namespace captcha
