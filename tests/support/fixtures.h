// Test fixtures drawn by the tests themselves: labelled text images and temporary folders.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <opencv2/core.hpp>

#include "support/mat_images.h"

namespace captcha::testing {

// Dark text on a light background (or the reverse), with a little jitter chosen by `seed`.
cv::Mat draw_text(const std::string& text, int width, int height, std::uint64_t seed,
                  bool light_on_dark = false);

// Writes `count` images named <label>.png with distinct random labels of `length` symbols from
// `symbols`; returns the labels.
std::vector<std::string> write_dataset(const std::string& dir, int count, const std::string& symbols,
                                       int length, std::uint64_t seed, int width = 96, int height = 32);

// A fresh, empty folder under the system temporary folder, removed when the object dies.
class TempDir {
 public:
  explicit TempDir(const std::string& name);
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// Writes raw bytes to a file.
void write_file(const std::string& path, const std::string& bytes);
std::string read_file(const std::string& path);

// ../shared/data/<name> relative to the source tree, or "" when it is absent.
std::string shared_dataset(const std::string& name);

// A dataset's folder name as a parameterised test's name (gtest allows no '-'): "captcha-v2" ->
// "captcha_v2".
std::string dataset_test_name(std::string name);

}  // namespace captcha::testing
