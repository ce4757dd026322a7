// The real datasets in ../shared/data: every split scans and loads with nothing skipped, and
// labels.tsv is honoured. Skips with a message where ../shared/data is absent (a fresh clone).
#include <gtest/gtest.h>

#include "captcha/dataset.h"
#include "captcha/model_config.h"
#include "support/fixtures.h"

namespace captcha {
namespace {

struct SetCase {
  std::string name;
  std::vector<std::pair<std::string, std::size_t>> splits;
  std::size_t charset_size;
};

class SharedData : public ::testing::TestWithParam<SetCase> {};

TEST_P(SharedData, EverySplitLoadsCompletely) {
  const std::string root = testing::shared_dataset(GetParam().name);
  if (root.empty()) GTEST_SKIP() << "../shared/data/" << GetParam().name << " is absent; skipping";
  std::vector<std::string> labels;
  for (const auto& [split, count] : GetParam().splits) {
    const auto samples = scan_folder(root + "/" + split);
    EXPECT_EQ(samples.size(), count) << split;
    for (const auto& s : samples) labels.push_back(s.label);
  }
  const Charset charset = Charset::from_labels(labels);
  EXPECT_EQ(charset.size(), static_cast<int>(GetParam().charset_size));
  const auto train_samples = scan_folder(root + "/" + GetParam().splits[0].first);
  PreprocessOptions p;
  LoadOptions options;
  options.max_time_steps = output_time_steps(ModelConfig{}, p.width);
  const auto data = load_dataset(train_samples, charset, p, options, root);
  EXPECT_EQ(data.skipped.total(), 0u) << data.skipped.summary();
  EXPECT_EQ(data.size(), train_samples.size());
}

INSTANTIATE_TEST_SUITE_P(
    Sets, SharedData,
    ::testing::Values(SetCase{"captcha-v2", {{"train", 832}, {"val", 104}, {"test", 104}}, 19},
                      SetCase{"indiagov-real", {{"train", 879}, {"val", 110}, {"test", 110}}, 28},
                      SetCase{"generic-text-lower", {{"train", 1600}, {"test", 400}}, 36}),
    [](const auto& info) { return testing::dataset_test_name(info.param.name); });

TEST(SharedData, LabelsTsvGivesTheAnswerNotTheFileName) {
  const std::string root = testing::shared_dataset("generic-text-upper");
  if (root.empty()) GTEST_SKIP() << "../shared/data/generic-text-upper is absent; skipping";
  for (const auto& s : scan_folder(root + "/test")) {
    EXPECT_EQ(s.label.find('-'), std::string::npos) << s.path;
    EXPECT_GE(s.label.size(), 4u);
  }
}

}  // namespace
}  // namespace captcha
