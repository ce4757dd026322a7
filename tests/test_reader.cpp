// The reading library with the bundled model: many images read in chunks give each image the
// reading the Recogniser gives it alone, bad images get their own error naming them and cost the
// others nothing, encoded bytes read as their file does, and evaluate() scores a labelled folder
// as reading each image and counting by hand does.
#include "captcha/reader.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "captcha/errors.h"
#include "captcha/image_io.h"
#include "captcha/plots.h"
#include "support/fixtures.h"

namespace captcha {
namespace {

namespace fs = std::filesystem;

const std::string kSource = CAPTCHA_SOURCE_DIR;
const std::string kModel = kSource + "/models/general.safetensors";

std::vector<Sample> examples() { return scan_folder(kSource + "/examples"); }

// A folder with the bundled examples, a file that is no image and a truncated PNG, labelled by
// its labels.tsv.
struct MixedFolder {
  testing::TempDir dir{"reader-mixed"};
  std::vector<std::string> paths;
  MixedFolder() {
    std::string labels = "notes-ABCD.png\tABCD\ncut-WXYZ.png\tWXYZ\n";
    for (const auto& sample : examples()) {
      const std::string name = fs::path(sample.path).filename().string();
      fs::copy_file(sample.path, dir / name);
      paths.push_back(dir / name);
      labels += name + "\t" + sample.label + "\n";
    }
    testing::write_file(dir / "labels.tsv", labels);
    testing::write_file(dir / "notes-ABCD.png", "not an image");
    const std::string png = testing::read_file(paths.front());
    testing::write_file(dir / "cut-WXYZ.png", png.substr(0, png.size() / 3));
    paths.insert(paths.begin() + 2, dir / "notes-ABCD.png");
    paths.push_back(dir / "cut-WXYZ.png");
  }
};

TEST(Reader, ReadsEachImageAsTheRecogniserDoesAloneAndNamesTheBadOnes) {
  const Recogniser recogniser(kModel, 1);
  const MixedFolder folder;
  BatchOptions options;
  options.read.batch_size = 3;  // several chunks, one of them with a bad image in it
  options.threads = 2;
  const auto results = read_files(recogniser, folder.paths, options);
  ASSERT_EQ(results.size(), folder.paths.size());
  std::size_t failed = 0;
  for (std::size_t i = 0; i < results.size(); ++i) {
    const std::string& path = folder.paths[i];
    EXPECT_EQ(results[i].source, path);
    if (path.find("notes-") != std::string::npos || path.find("cut-") != std::string::npos) {
      ++failed;
      EXPECT_FALSE(results[i].ok()) << path;
      EXPECT_EQ(results[i].error.rfind(path, 0), 0u) << results[i].error;
      EXPECT_EQ(results[i].error.find('\n'), std::string::npos) << results[i].error;
      continue;
    }
    ASSERT_TRUE(results[i].ok()) << results[i].error;
    const Reading alone = recogniser.read(load_image(path));
    EXPECT_EQ(results[i].reading.text, alone.text) << path;
    EXPECT_NEAR(results[i].reading.confidence, alone.confidence, 1e-4) << path;
  }
  EXPECT_EQ(failed, 2u);
}

TEST(Reader, EncodedBytesReadAsTheirFileAndDebugImagesGetSafeNames) {
  const Recogniser recogniser(kModel, 1);
  const std::string path = examples().front().path;
  const std::string png = testing::read_file(path);
  testing::TempDir debug("reader-debug");
  BatchOptions options;
  options.debug_dir = debug / "images";
  const auto results = read_images(
      recogniser,
      {ImageInput::file(path), ImageInput::encoded("<stdin>", std::vector<std::uint8_t>(png.begin(), png.end())),
       ImageInput::encoded("../../upload", {})},
      options);
  ASSERT_TRUE(results[0].ok()) << results[0].error;
  ASSERT_TRUE(results[1].ok()) << results[1].error;
  EXPECT_EQ(results[1].reading.text, results[0].reading.text);
  EXPECT_EQ(results[1].reading.confidence, results[0].reading.confidence);
  EXPECT_FALSE(results[2].ok());
  EXPECT_EQ(results[2].error.rfind("../../upload", 0), 0u) << results[2].error;
  EXPECT_TRUE(fs::exists(debug / ("images/" + fs::path(path).stem().string() + ".png")));
  EXPECT_TRUE(fs::exists(debug / "images/stdin.png"));
  std::size_t written = 0;
  for ([[maybe_unused]] const auto& entry : fs::directory_iterator(debug / "images")) ++written;
  EXPECT_EQ(written, 2u);  // nothing for the unreadable input, nothing outside the folder
}

TEST(Reader, EvaluateScoresAFolderAsCountingByHandDoes) {
  const Recogniser recogniser(kModel, 1);
  const MixedFolder folder;
  const Evaluation evaluation = evaluate(recogniser, folder.dir.path(), {}, /*case_insensitive=*/true);
  EXPECT_EQ(evaluation.skipped.unreadable, 2u);
  EXPECT_EQ(evaluation.skipped.examples.size(), 2u);
  const auto samples = scan_folder(folder.dir.path());
  MetricsAccumulator metrics(true);
  std::size_t misread = 0, k = 0;
  for (const auto& sample : samples) {
    if (sample.path.find("notes-") != std::string::npos || sample.path.find("cut-") != std::string::npos) continue;
    const Reading r = recogniser.read(load_image(sample.path));
    metrics.add(sample.label, r.text);
    ASSERT_LT(k, evaluation.readings.size());
    const ScoredReading& scored = evaluation.readings[k++];
    EXPECT_EQ(scored.path, sample.path);
    EXPECT_EQ(scored.truth, sample.label);
    EXPECT_EQ(scored.reading, r.text);
    EXPECT_EQ(scored.correct, fold_label(r.text) == fold_label(sample.label));
    misread += !scored.correct;
  }
  EXPECT_EQ(k, evaluation.readings.size());
  const EvaluationReport expected = metrics.report();
  EXPECT_EQ(evaluation.figures.count, expected.count);
  EXPECT_DOUBLE_EQ(evaluation.figures.exact_match, expected.exact_match);
  EXPECT_DOUBLE_EQ(evaluation.figures.cer, expected.cer);
  EXPECT_EQ(evaluation.misread_count(), misread);

  const std::string tsv = folder.dir / "misreads.tsv";
  write_misreads(evaluation, tsv);
  std::ifstream in(tsv);
  std::size_t lines = 0;
  for (std::string line; std::getline(in, line);) ++lines;
  EXPECT_EQ(lines, misread + 1);
  const cv::Mat grid = draw_evaluation_grid(evaluation, 4);  // captcha/plots.h
  EXPECT_FALSE(grid.empty());
  EXPECT_THROW(write_misreads(evaluation, folder.dir / "no/such/folder/m.tsv"), Error);
}

TEST(Reader, EvaluateCountsAndNamesLabelsThatAreNotUtf8OrAmbiguous) {
  const Recogniser recogniser(kModel, 1);
  testing::TempDir dir("reader-utf8");
  const Sample first = examples().front();
  fs::copy_file(first.path, dir / "good.png");
  fs::copy_file(first.path, dir / "\xff\xfe.png");
  fs::copy_file(first.path, dir / "twice.png");
  testing::write_file(dir / "labels.tsv", "good.png\t" + first.label + "\ntwice.png\tab12\ntwice.png\tab13\n");
  const Evaluation evaluation = evaluate(recogniser, dir.path());
  EXPECT_EQ(evaluation.figures.count, 1u);
  EXPECT_EQ(evaluation.skipped.ambiguous_label, 1u);
  EXPECT_EQ(evaluation.skipped.total(), 2u);
  ASSERT_EQ(evaluation.skipped.examples.size(), 2u);
  EXPECT_NE(evaluation.skipped.summary().find("label is not valid UTF-8"), std::string::npos);
  EXPECT_NE(evaluation.skipped.summary().find("twice.png: labels.tsv gives it two labels (lines 2 and 3)"),
            std::string::npos)
      << evaluation.skipped.summary();
}

TEST(Reader, EvaluateRefusesAFolderWithNoReadableImage) {
  const Recogniser recogniser(kModel, 1);
  testing::TempDir dir("reader-unreadable");
  testing::write_file(dir / "ABCD.png", "not an image");
  try {
    evaluate(recogniser, dir.path());
    FAIL() << "evaluated a folder with no readable image";
  } catch (const DatasetError& e) {
    EXPECT_NE(std::string(e.what()).find(dir.path() + ": no readable image"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace captcha
