// captcha::Image to and from cv::Mat, for the parts that draw with OpenCV (the generator,
// training augmentation, plots). Header-only: including it is what links OpenCV; the reading
// path never does.
#pragma once

#include <cstring>
#include <stdexcept>

#include <opencv2/core.hpp>

#include "captcha/image.h"

namespace captcha {

// A cv::Mat over the image's pixels (no copy): valid while `image` lives and keeps its size.
inline cv::Mat as_mat(Image& image) {
  return cv::Mat(image.height(), image.width(), CV_8UC(image.channels()), image.data(), image.stride());
}
inline const cv::Mat as_mat(const Image& image) { return as_mat(const_cast<Image&>(image)); }

// A cv::Mat holding a copy of the image.
inline cv::Mat to_mat(const Image& image) { return as_mat(image).clone(); }

// A copy of an 8-bit cv::Mat of 1-4 channels. Throws std::invalid_argument for another type.
inline Image to_image(const cv::Mat& mat) {
  if (mat.empty()) return {};
  if (mat.depth() != CV_8U || mat.channels() > 4 || mat.dims != 2)
    throw std::invalid_argument("to_image: not an 8-bit image of 1-4 channels");
  Image image(mat.cols, mat.rows, mat.channels());
  for (int y = 0; y < mat.rows; ++y) std::memcpy(image.row(y), mat.ptr(y), image.stride());
  return image;
}

}  // namespace captcha
