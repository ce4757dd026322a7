// The synthetic CAPTCHA generator: determinism, unique labels that match the files, every style
// draws visible text, and bad options fail before anything is written.
#include "captcha/generator.h"

#include <algorithm>
#include <filesystem>
#include <map>
#include <set>
#include <sstream>
#include <vector>

#include <gtest/gtest.h>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "captcha/dataset.h"
#include "captcha/errors.h"
#include "captcha/utf8.h"
#include "support/fixtures.h"

namespace fs = std::filesystem;

namespace captcha {
namespace {

using testing::TempDir;

GenerateOptions options_for(const std::string& out, int count) {
  GenerateOptions o;
  o.out_dir = out;
  o.count = count;
  o.threads = 2;
  return o;
}

// Generates `count` labels of `min_length`-`max_length` symbols from `charset` into `out` and
// scans the folder back.
std::vector<Sample> generate_and_scan(const std::string& out, int count, const std::string& charset,
                                      int min_length, int max_length) {
  GenerateOptions o = options_for(out, count);
  o.charset = charset;
  o.min_length = min_length;
  o.max_length = max_length;
  std::ostringstream log;
  generate(o, log);
  return scan_folder(out);
}

std::map<std::string, std::string> folder_bytes(const std::string& dir) {
  std::map<std::string, std::string> files;
  for (const auto& entry : fs::directory_iterator(dir))
    files[entry.path().filename()] = testing::read_file(entry.path());
  return files;
}

TEST(Generator, SameSeedGivesTheSameBytesWhateverTheThreads) {
  TempDir dir("gen-determinism");
  std::ostringstream log;
  GenerateOptions a = options_for(dir / "a", 40);
  a.threads = 1;
  generate(a, log);
  GenerateOptions b = options_for(dir / "b", 40);
  b.threads = 2;
  generate(b, log);
  GenerateOptions c = options_for(dir / "c", 40);
  c.seed = 2;
  generate(c, log);
  const auto files_a = folder_bytes(dir / "a");
  EXPECT_EQ(files_a.size(), 41u);  // 40 images + labels.tsv
  EXPECT_EQ(files_a, folder_bytes(dir / "b"));
  EXPECT_NE(files_a, folder_bytes(dir / "c"));
}

TEST(Generator, LabelsAreUniqueIgnoringCaseAndNameTheFiles) {
  TempDir dir("gen-labels");
  const auto samples = generate_and_scan(dir / "out", 200, "abAB01", 3, 5);
  std::set<std::u32string> folded;
  ASSERT_EQ(samples.size(), 200u);
  for (const auto& s : samples) {
    EXPECT_EQ(fs::path(s.path).stem().string(), s.label);
    EXPECT_GE(s.label.size(), 3u);
    EXPECT_LE(s.label.size(), 5u);
    EXPECT_TRUE(folded.insert(fold_case(utf8_to_u32(s.label))).second) << s.label;
    EXPECT_EQ(cv::imread(s.path).size(), cv::Size(200, 50)) << s.path;
  }
}

// --label-case one: no label mixes the cases, half are lower-case, half capitals, digits in both;
// by default most labels of this length mix them.
TEST(Generator, OneCaseLabelsKeepTheirLettersInOneCase) {
  GenerateOptions o;
  o.charset = "alnum";
  o.min_length = 5;
  o.max_length = 7;
  o.seed = 5;
  const auto count_labels = [](const std::vector<std::string>& labels) {
    std::map<std::string, int> kinds;
    for (const auto& label : labels) {
      const bool small = std::any_of(label.begin(), label.end(), [](char c) { return c >= 'a' && c <= 'z'; });
      const bool capital = std::any_of(label.begin(), label.end(), [](char c) { return c >= 'A' && c <= 'Z'; });
      const bool digit = std::any_of(label.begin(), label.end(), [](char c) { return c >= '0' && c <= '9'; });
      ++kinds[small && capital ? "mixed" : small ? "lower" : capital ? "upper" : "digits"];
      if (digit) ++kinds["with digits"];
    }
    return kinds;
  };
  auto any = count_labels(CaptchaGenerator(o).labels(2000));
  EXPECT_GT(any["mixed"], 1600);
  o.label_case = "one";
  const std::vector<std::string> labels = CaptchaGenerator(o).labels(2000);
  auto one = count_labels(labels);
  EXPECT_EQ(one["mixed"], 0);
  EXPECT_GT(one["lower"], 900);
  EXPECT_GT(one["upper"], 900);
  EXPECT_GT(one["with digits"], 1000);
  std::set<std::string> folded;
  for (const auto& label : labels) EXPECT_TRUE(folded.insert(u32_to_utf8(fold_case(utf8_to_u32(label)))).second);
  o.charset = "abc0";  // no capitals: every symbol stays in both pools
  auto no_capitals = count_labels(CaptchaGenerator(o).labels(50));
  EXPECT_EQ(no_capitals["lower"] + no_capitals["digits"], 50);
}

TEST(Generator, LabelsThatAreNotFileNamesGetNumbersAndLabelsTsv) {
  TempDir dir("gen-unsafe");
  const auto samples = generate_and_scan(dir / "out", 30, "a/b?", 4, 4);
  ASSERT_EQ(samples.size(), 30u);
  int numbered = 0;
  for (const auto& s : samples) {
    const std::string stem = fs::path(s.path).stem();
    if (stem != s.label) {
      ++numbered;
      EXPECT_TRUE(s.label.find_first_of("/?") != std::string::npos) << s.label;
    }
  }
  EXPECT_GT(numbered, 0);
}

TEST(Generator, EveryStyleDrawsVisibleText) {
  for (const auto& [style, description] : generator_styles()) {
    GenerateOptions o;
    o.style = style;
    o.width = 160;
    o.height = 48;
    const CaptchaGenerator generator(o);
    for (std::uint64_t seed = 1; seed <= 5; ++seed) {
      const cv::Mat image = generator.draw("Ab3x9", seed);
      ASSERT_EQ(image.size(), cv::Size(160, 48)) << style;
      ASSERT_EQ(image.type(), CV_8UC3) << style;
      cv::Mat grey;
      cv::cvtColor(image, grey, cv::COLOR_BGR2GRAY);
      cv::Scalar mean, deviation;
      cv::meanStdDev(grey, mean, deviation);
      EXPECT_GT(deviation[0], 15) << style << " seed " << seed << ": no visible text";
    }
  }
}

// Share of an image's bottom row that is ink: pixels far from the row's own median.
double ink_in_bottom_row(const cv::Mat& image) {
  cv::Mat grey;
  cv::cvtColor(image, grey, cv::COLOR_BGR2GRAY);
  const cv::Mat row = grey.row(grey.rows - 1).clone();
  std::vector<unsigned char> values(row.begin<unsigned char>(), row.end<unsigned char>());
  std::nth_element(values.begin(), values.begin() + values.size() / 2, values.end());
  const int median = values[values.size() / 2];
  int ink = 0;
  for (int x = 0; x < row.cols; ++x) ink += std::abs(row.at<unsigned char>(0, x) - median) > 40;
  return static_cast<double>(ink) / row.cols;
}

// The broad style draws at other canvas sizes and scales to the asked one; the same seed gives
// the same bytes, and its treatments make the images differ from mix's.
TEST(Generator, BroadDrawsTheAskedSizeTheSameForTheSameSeed) {
  GenerateOptions o;
  o.style = "broad";
  o.width = 150;
  o.height = 40;
  const CaptchaGenerator broad(o);
  o.style = "mix";
  const CaptchaGenerator mix(o);
  int differ = 0;
  for (std::uint64_t seed = 1; seed <= 30; ++seed) {
    const cv::Mat a = broad.draw("xY3kq", seed), b = broad.draw("xY3kq", seed);
    ASSERT_EQ(a.size(), cv::Size(150, 40)) << seed;
    ASSERT_EQ(cv::norm(a, b, cv::NORM_INF), 0) << "seed " << seed << " drew two images";
    differ += cv::norm(a, mix.draw("xY3kq", seed), cv::NORM_INF) > 0;
  }
  EXPECT_EQ(differ, 30);
}

TEST(Generator, CutSetsTheTextOnTheBottomEdge) {
  // Descenders in every label: cut loses their ends below the image, mix keeps the text inside.
  std::map<std::string, int> touching;
  for (const char* style : {"cut", "mix"}) {
    GenerateOptions o;
    o.style = style;
    const CaptchaGenerator generator(o);
    for (std::uint64_t seed = 1; seed <= 40; ++seed)
      touching[style] += ink_in_bottom_row(generator.draw("gjpqy", seed)) > 0.04;
  }
  EXPECT_GE(touching["cut"], 30) << "of 40";
  EXPECT_LE(touching["mix"], 10) << "of 40";
}

TEST(Generator, FontsCoverTheCharset) {
  GenerateOptions o;
  o.charset = "digits";
  const CaptchaGenerator generator(o);
  EXPECT_GE(generator.font_files().size(), 5u);
  o.charset = "\u1c5a\u1c5b";  // Ol Chiki: none of the installed fonts has these glyphs
  EXPECT_THROW(CaptchaGenerator{o}, ConfigError);
}

TEST(Generator, DisplayFontsWidenTheClassicSet) {
  GenerateOptions o;
  o.charset = "alnum";
  o.font_set = "classic";
  const CaptchaGenerator classic(o);
  o.font_set = "all";
  const CaptchaGenerator all(o);
  const std::set<std::string> every(all.font_files().begin(), all.font_files().end());
  for (const auto& file : classic.font_files()) EXPECT_TRUE(every.count(file)) << file;
  EXPECT_GT(all.font_files().size(), classic.font_files().size() + 20) << "the display fonts are not installed";
  o.font_set = "extended";
  const CaptchaGenerator extended(o);
  const std::set<std::string> wider(extended.font_files().begin(), extended.font_files().end());
  for (const auto& file : all.font_files()) EXPECT_TRUE(wider.count(file)) << file;
  EXPECT_GT(wider.size(), every.size() + 50) << "the extended set's fonts are not installed";
  // The held-out families are in no other set: reading them measures faces never trained on.
  o.font_set = "held-out";
  const CaptchaGenerator held_out(o);
  EXPECT_GT(held_out.font_files().size(), 40u) << "the held-out fonts are not installed";
  for (const auto& file : held_out.font_files()) EXPECT_FALSE(wider.count(file)) << file;
  o.font_set = "fancy";
  EXPECT_THROW(CaptchaGenerator{o}, ConfigError);
}

// An all-caps face draws 'a' as 'A': unusable where the charset tells the cases apart, fine where
// it does not.
TEST(Generator, SingleCaseFontsOnlyForCharsetsWithoutBothCases) {
  const std::string caps = "/usr/share/fonts/opentype/bebas-neue";
  if (!fs::exists(caps)) GTEST_SKIP() << caps << " is absent (scripts/setup.sh installs fonts-bebas-neue)";
  GenerateOptions o;
  o.font_dirs = {caps};
  o.charset = "upper";
  EXPECT_GE(CaptchaGenerator(o).font_files().size(), 1u);
  o.charset = "alnum";
  EXPECT_THROW(CaptchaGenerator{o}, ConfigError);
}

TEST(Generator, BadOptionsFailBeforeWriting) {
  TempDir dir("gen-bad");
  std::ostringstream log;
  const auto fails = [&](GenerateOptions o, const std::string& expected) {
    try {
      generate(o, log);
      ADD_FAILURE() << "no error; expected " << expected;
    } catch (const ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find(expected), std::string::npos) << e.what();
    }
  };
  GenerateOptions o = options_for(dir / "out", 10);
  o.charset = "";
  fails(o, "charset");
  o = options_for(dir / "out", 10);
  o.min_length = 0;
  fails(o, "--length");
  o = options_for(dir / "out", 10);
  o.width = 30;
  o.height = 12;
  fails(o, "too small");
  o = options_for(dir / "out", 10);
  o.style = "sparkles";
  fails(o, "unknown style");
  o = options_for(dir / "out", 10);
  o.format = "gif";
  fails(o, "--format");
  o = options_for(dir / "out", 10);
  o.label_case = "upper";
  fails(o, "--label-case");
  o = options_for(dir / "out", 10);
  o.charset = "ab";
  o.min_length = o.max_length = 2;
  fails(o, "cannot draw 10 labels");
  testing::write_file(dir / "file", "x");
  o = options_for(dir / "file/out", 10);
  fails(o, "file/out");
  fs::create_directories(dir / "full");
  testing::write_file(dir / "full/old.png", "x");
  o = options_for(dir / "full", 10);
  fails(o, "not empty");
  EXPECT_FALSE(fs::exists(dir / "out"));
}

TEST(Generator, WritesJpeg) {
  TempDir dir("gen-jpg");
  GenerateOptions o = options_for(dir / "out", 5);
  o.format = "jpg";
  std::ostringstream log;
  generate(o, log);
  for (const auto& s : scan_folder(dir / "out")) {
    EXPECT_EQ(fs::path(s.path).extension(), ".jpg");
    EXPECT_FALSE(cv::imread(s.path).empty());
  }
}

}  // namespace
}  // namespace captcha
