// Synthetic labelled CAPTCHAs: text drawn with real fonts (FreeType), then distorted.
//
//   captcha::GenerateOptions options;
//   options.out_dir = "synthetic";
//   options.count = 10000;
//   options.style = "mix";
//   captcha::GenerateSummary s = captcha::generate(options, std::cerr);
//
// The folder receives one image per label (file name = label where the label is a safe file
// name, else a number) and labels.tsv (file<TAB>label). Labels are unique even ignoring case.
// The same options and fonts give the same bytes, whatever the thread count.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <memory>
#include <string>
#include <vector>

#include <opencv2/core.hpp>

namespace captcha {

struct GenerateOptions {
  std::string out_dir;
  int count = 1000;
  std::string style = "mix";      // one of generator_styles()
  std::string charset = "alnum";  // a preset or literal symbols (see Charset::from_spec)
  // "any": each symbol of a label drawn from the whole charset; "one": each label's letters all
  // lower-case or all capitals (half the labels each), as many sites' captchas are, so that a
  // model with both cases learns to read a glyph whose cases look alike (c/C, o/O, x/X) in the
  // case of its neighbours. Fonts are chosen for the whole charset either way.
  std::string label_case = "any";
  int min_length = 4;
  int max_length = 6;
  int width = 200;
  int height = 50;
  std::string format = "png";     // png or jpg
  std::uint64_t seed = 1;
  int threads = 0;                // 0: every core
  std::vector<std::string> font_dirs;  // empty: the Debian font packages scripts/setup.sh installs
  // Without font_dirs: "all", "classic" (the first general models' fonts), "extended" (all and more
  // families) or "held-out" (families in no other set).
  std::string font_set = "all";
};

// The style names with a one-line description each, `mix` last.
const std::vector<std::pair<std::string, std::string>>& generator_styles();

struct GenerateSummary {
  int count = 0;
  double seconds = 0;
  int fonts = 0;
};

// Draws options.count images into options.out_dir, which must be empty or absent.
// Throws ConfigError for bad options (before any image is drawn).
GenerateSummary generate(const GenerateOptions& options, std::ostream& log);

// Draws single images in memory; thread-safe.
class CaptchaGenerator {
 public:
  // Finds the fonts that cover every symbol of the charset. Throws ConfigError.
  explicit CaptchaGenerator(const GenerateOptions& options);
  ~CaptchaGenerator();
  CaptchaGenerator(const CaptchaGenerator&) = delete;
  CaptchaGenerator& operator=(const CaptchaGenerator&) = delete;

  // `count` labels, unique ignoring case, drawn from the options' seed.
  std::vector<std::string> labels(int count) const;
  // The image of `label` (8-bit BGR, options' size); `image_seed` fixes every random choice.
  cv::Mat draw(const std::string& label, std::uint64_t image_seed) const;
  const std::vector<std::string>& font_files() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace captcha
