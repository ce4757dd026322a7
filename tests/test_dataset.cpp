// Datasets: scanning, labels.tsv, splitting, and bad contents (corrupt, zero-byte, unknown
// symbols, labels too long, empty folders) counted and skipped, never a crash.
#include "captcha/dataset.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <new>
#include <thread>

#include "captcha/parallel.h"

#include <filesystem>

#include <gtest/gtest.h>
#include <opencv2/imgcodecs.hpp>

#include "captcha/errors.h"
#include "support/fixtures.h"

namespace captcha {
namespace {

using testing::TempDir;

TEST(ScanFolder, LabelsFromNamesAndTsvOverride) {
  TempDir dir("scan");
  testing::write_dataset(dir.path(), 3, "abc", 3, 1);
  testing::write_file(dir / "x-0.png", testing::read_file(std::filesystem::directory_iterator(dir.path())->path()));
  testing::write_file(dir / "labels.tsv", "x-0.png\tzzz\n");
  testing::write_file(dir / "notes.txt", "not an image");
  const auto samples = scan_folder(dir.path());
  ASSERT_EQ(samples.size(), 4u);
  bool found = false;
  for (const auto& s : samples) {
    if (s.path.find("x-0.png") != std::string::npos) {
      found = true;
      EXPECT_EQ(s.label, "zzz");
    } else {
      EXPECT_EQ(s.label.size(), 3u);
    }
  }
  EXPECT_TRUE(found);
}

// A file that labels.tsv lists twice with different labels has no trustworthy label: it is
// counted and named as skipped, not read with whichever line came last. Listed twice with one
// label, it is read.
TEST(ScanFolder, AFileGivenTwoLabelsIsSkippedAndNamed) {
  TempDir dir("two-labels");
  const auto labels = testing::write_dataset(dir.path(), 3, "abc", 3, 2);
  std::vector<std::string> files;
  for (const auto& entry : std::filesystem::directory_iterator(dir.path())) files.push_back(entry.path().filename().string());
  std::sort(files.begin(), files.end());
  testing::write_file(dir / "labels.tsv", files[0] + "\tabc\n" + files[1] + "\tbca\n" + files[0] + "\tcab\n" +
                                              files[1] + "\tbca\n");
  const auto samples = scan_folder(dir.path());
  ASSERT_EQ(samples.size(), 3u);
  EXPECT_EQ(samples[0].problem, "labels.tsv gives it two labels (lines 1 and 3)");
  EXPECT_TRUE(samples[1].problem.empty());
  EXPECT_EQ(samples[1].label, "bca");
  const LoadedDataset data = load_dataset(samples, Charset("abc"), PreprocessOptions{}, LoadOptions{}, "two-labels");
  EXPECT_EQ(data.size(), 2u);
  EXPECT_EQ(data.skipped.ambiguous_label, 1u);
  EXPECT_NE(data.skipped.summary().find("1 with two labels"), std::string::npos) << data.skipped.summary();
  EXPECT_NE(data.skipped.summary().find(files[0] + ": labels.tsv gives it two labels"), std::string::npos)
      << data.skipped.summary();
}

TEST(ScanFolder, MissingOrEmptyFolderIsAClearError) {
  TempDir dir("empty");
  testing::write_file(dir / "readme.txt", "nothing here");
  EXPECT_THROW(scan_folder(dir.path()), DatasetError);
  EXPECT_THROW(scan_folder(dir / "nope"), DatasetError);
  try {
    scan_folder(dir.path());
  } catch (const DatasetError& e) {
    EXPECT_NE(std::string(e.what()).find(dir.path()), std::string::npos);
  }
}

TEST(ScanFolder, MalformedTsvNamesTheLine) {
  TempDir dir("tsv");
  testing::write_dataset(dir.path(), 1, "abc", 3, 1);
  testing::write_file(dir / "labels.tsv", "ok.png\tok\nbroken line\n");
  try {
    scan_folder(dir.path());
    FAIL();
  } catch (const DatasetError& e) {
    EXPECT_NE(std::string(e.what()).find("labels.tsv:2"), std::string::npos);
  }
}

TEST(Split, DeterministicDisjointAndComplete) {
  std::vector<Sample> all;
  for (int i = 0; i < 100; ++i) all.push_back({"f" + std::to_string(i), "l"});
  std::vector<Sample> a1, b1, a2, b2, a3, b3;
  split_samples(all, 0.2, 7, a1, b1);
  split_samples(all, 0.2, 7, a2, b2);
  split_samples(all, 0.2, 8, a3, b3);
  EXPECT_EQ(b1.size(), 20u);
  EXPECT_EQ(a1.size(), 80u);
  for (std::size_t i = 0; i < b1.size(); ++i) EXPECT_EQ(b1[i].path, b2[i].path);
  bool differs = false;
  for (std::size_t i = 0; i < b1.size(); ++i) differs |= b1[i].path != b3[i].path;
  EXPECT_TRUE(differs);
  for (const auto& held : b1)
    for (const auto& kept : a1) EXPECT_NE(held.path, kept.path);
  EXPECT_THROW(split_samples(all, 1.5, 1, a1, b1), ConfigError);
}

TEST(MedianImageSize, OfTheReadableImages) {
  TempDir dir("median-size");
  testing::write_dataset(dir / "small", 2, "01", 3, 1, 150, 40);
  testing::write_dataset(dir / "large", 1, "23", 3, 2, 300, 80);
  std::vector<Sample> samples = scan_folder(dir / "small");
  const auto large = scan_folder(dir / "large");
  samples.insert(samples.end(), large.begin(), large.end());
  testing::write_file(dir / "small/broken.png", "not an image");
  samples.push_back({dir / "small/broken.png", "broken"});
  const ImageSize size = median_image_size(samples);
  EXPECT_EQ(size.width, 150);
  EXPECT_EQ(size.height, 40);
  EXPECT_EQ(median_image_size({{dir / "small/broken.png", "broken"}}).width, 0);
}

TEST(LoadDataset, SkipsAndCountsBadSamples) {
  TempDir dir("bad");
  testing::write_dataset(dir.path(), 6, "abc", 4, 2);  // 4-symbol names: no clash below
  testing::write_file(dir / "abc.png", "");                        // zero bytes
  testing::write_file(dir / "bca.png", "garbage, not a png");      // corrupt
  testing::write_file(dir / "cab.jpg", testing::read_file(dir / "abc.png"));
  cv::imwrite(dir / "abz.png", testing::draw_text("abz", 96, 32, 1));    // z not in charset
  cv::imwrite(dir / "aaaaaaaaaa.png", testing::draw_text("aaaaaaaaaa", 96, 32, 1));  // too long
  const auto samples = scan_folder(dir.path());
  LoadOptions options;
  options.max_time_steps = 8;
  const auto data = load_dataset(samples, Charset("abc"), PreprocessOptions{}, options, dir.path());
  EXPECT_EQ(data.skipped.unreadable, 3u);
  EXPECT_EQ(data.skipped.outside_charset, 1u);
  EXPECT_EQ(data.skipped.too_long, 1u);
  EXPECT_EQ(data.size(), samples.size() - 5);
  EXPECT_LE(data.skipped.examples.size(), SkipReport::kMaxExamples);
  const std::string summary = data.skipped.summary();
  EXPECT_NE(summary.find("3 unreadable"), std::string::npos);
  EXPECT_NE(summary.find("0 bytes"), std::string::npos);
  for (const auto& image : data.images) EXPECT_EQ(image.size(), (ImageSize{200, 50}));
}

TEST(LoadDataset, NoUsableImageIsAClearError) {
  TempDir dir("allbad");
  testing::write_file(dir / "abc.png", "");
  testing::write_file(dir / "cab.png", "junk");
  try {
    load_dataset(scan_folder(dir.path()), Charset("abc"), PreprocessOptions{}, LoadOptions{}, dir.path());
    FAIL();
  } catch (const DatasetError& e) {
    EXPECT_NE(std::string(e.what()).find("no usable image"), std::string::npos);
  }
}

TEST(LoadDataset, FileNamesThatAreNotUtf8AreSkippedNotFatal) {
  TempDir dir("utf8");
  testing::write_dataset(dir.path(), 3, "abc", 4, 3);
  cv::imwrite(dir / "ab\xff.png", testing::draw_text("ab", 96, 32, 1));
  for (bool fold : {false, true}) {
    LoadOptions options;
    options.fold_case = fold;
    const auto data = load_dataset(scan_folder(dir.path()), Charset("abc"), PreprocessOptions{}, options, dir.path());
    EXPECT_EQ(data.size(), 3u);
    EXPECT_EQ(data.skipped.outside_charset, 1u);
    EXPECT_NE(data.skipped.summary().find("not valid UTF-8"), std::string::npos);
  }
}

TEST(LoadDataset, FoldCase) {
  TempDir dir("fold");
  cv::imwrite(dir / "AbC.png", testing::draw_text("AbC", 96, 32, 1));
  LoadOptions options;
  options.fold_case = true;
  const auto data = load_dataset(scan_folder(dir.path()), Charset("abc"), PreprocessOptions{}, options, dir.path());
  ASSERT_EQ(data.size(), 1u);
  EXPECT_EQ(data.labels[0], "abc");
}

// An exception in a parallel body reaches the caller (it used to end the process in
// std::terminate); no index is started after it, and every thread is joined first.
TEST(ParallelFor, CarriesTheFirstExceptionToTheCaller) {
  for (const int threads : {1, 2, 4}) {
    std::atomic<int> started{0};
    try {
      // The other indices take a millisecond each: a thread that throws is not outrun by the
      // others handing out all 1000 while it unwinds (slow under AddressSanitizer).
      parallel_for(1000, threads, [&](std::size_t i) {
        ++started;
        if (i == 3) throw std::bad_alloc();
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      });
      ADD_FAILURE() << "no exception with " << threads << " threads";
    } catch (const std::bad_alloc&) {
    }
    EXPECT_LT(started.load(), 1000) << threads;
  }
  std::atomic<int> calls{0};
  parallel_for(100, 2, [&](std::size_t) { ++calls; });
  EXPECT_EQ(calls.load(), 100);
}

TEST(ListImages, FilesFoldersAndErrors) {
  TempDir dir("list");
  testing::write_dataset(dir.path(), 3, "abc", 3, 1);
  EXPECT_EQ(list_images({dir.path()}).size(), 3u);
  EXPECT_EQ(list_images({dir.path(), "-"}).size(), 4u);
  EXPECT_THROW(list_images({dir / "missing.png"}), DatasetError);
}

}  // namespace
}  // namespace captcha
