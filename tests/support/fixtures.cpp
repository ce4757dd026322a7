// Test fixtures: text images drawn with OpenCV's Hershey fonts, temporary folders.
#include "support/fixtures.h"

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

namespace fs = std::filesystem;

namespace captcha::testing {

cv::Mat draw_text(const std::string& text, int width, int height, std::uint64_t seed, bool light_on_dark) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int> jitter(-2, 2), shade(0, 40);
  const int background = 230 + shade(rng) / 4, ink = 20 + shade(rng);
  cv::Mat image(height, width, CV_8UC1, cv::Scalar(background));
  const double scale = height / 32.0 * 0.9;
  int baseline = 0;
  const cv::Size size = cv::getTextSize(text, cv::FONT_HERSHEY_SIMPLEX, scale, 2, &baseline);
  const cv::Point origin((width - size.width) / 2 + jitter(rng), (height + size.height) / 2 + jitter(rng) / 2);
  cv::putText(image, text, origin, cv::FONT_HERSHEY_SIMPLEX, scale, cv::Scalar(ink), 2, cv::LINE_AA);
  if (light_on_dark) cv::bitwise_not(image, image);
  return image;
}

std::vector<std::string> write_dataset(const std::string& dir, int count, const std::string& symbols,
                                       int length, std::uint64_t seed, int width, int height) {
  fs::create_directories(dir);
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<std::size_t> pick(0, symbols.size() - 1);
  std::set<std::string> labels;
  while (static_cast<int>(labels.size()) < count) {
    std::string label;
    for (int i = 0; i < length; ++i) label += symbols[pick(rng)];
    if (!labels.insert(label).second) continue;
    cv::imwrite(dir + "/" + label + ".png", draw_text(label, width, height, rng()));
  }
  return {labels.begin(), labels.end()};
}

TempDir::TempDir(const std::string& name) {
  path_ = (fs::temp_directory_path() / ("captcha-test-" + name + "-" + std::to_string(::getpid()))).string();
  fs::remove_all(path_);
  fs::create_directories(path_);
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << bytes;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::string shared_dataset(const std::string& name) {
  const fs::path path = fs::path(CAPTCHA_SOURCE_DIR) / ".." / "shared" / "data" / name;
  return fs::is_directory(path) ? fs::canonical(path).string() : "";
}

std::string dataset_test_name(std::string name) {
  std::replace(name.begin(), name.end(), '-', '_');
  return name;
}

}  // namespace captcha::testing
