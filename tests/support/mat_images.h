// The library's image functions taking cv::Mat: the tests draw their images with OpenCV (and
// check the library's own image operations against it); the library takes captcha::Image.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "captcha/augment.h"
#include "captcha/image_io.h"
#include "captcha/opencv_image.h"
#include "captcha/preprocess.h"

namespace captcha {

inline cv::Mat preprocess(const cv::Mat& grey, const PreprocessOptions& options) {
  return to_mat(preprocess(to_image(grey), options));
}
inline cv::Mat equalise(const cv::Mat& grey, const PreprocessOptions& options) {
  return to_mat(equalise(to_image(grey), options));
}
inline cv::Mat reading_view(const cv::Mat& image, int view) { return to_mat(reading_view(to_image(image), view)); }
inline void normalise_into(const cv::Mat& image, const PreprocessOptions& options, float* out) {
  normalise_into(to_image(image), options, out);
}
inline std::vector<std::uint8_t> encode_image(const cv::Mat& image, const std::string& format, int jpeg_quality = 95) {
  return encode_image(to_image(image), format, jpeg_quality);
}
inline void write_image(const std::string& path, const cv::Mat& image) { write_image(path, to_image(image)); }
inline cv::Mat augment_light(const cv::Mat& image, std::mt19937_64& rng, const PreprocessOptions& options) {
  return to_mat(augment_light(to_image(image), rng, options));
}
inline cv::Mat augment_captcha(const cv::Mat& image, std::mt19937_64& rng) {
  return to_mat(augment_captcha(to_image(image), rng));
}
inline cv::Mat outline(const cv::Mat& image, std::mt19937_64& rng, const PreprocessOptions& options) {
  return to_mat(outline(to_image(image), rng, options));
}

}  // namespace captcha
