// Metrics: edit distance, exact match, CER, per-character accuracy and confusions.
#include "captcha/metrics.h"

#include <gtest/gtest.h>

namespace captcha {
namespace {

TEST(EditDistance, Basics) {
  EXPECT_EQ(edit_distance(U"kitten", U"sitting"), 3u);
  EXPECT_EQ(edit_distance(U"", U"abc"), 3u);
  EXPECT_EQ(edit_distance(U"abc", U"abc"), 0u);
}

TEST(Metrics, ExactMatchAndCer) {
  MetricsAccumulator m;
  m.add("abcde", "abcde");
  m.add("abcde", "abXde");   // 1 substitution
  m.add("abcde", "abde");    // 1 deletion
  m.add("ABcde", "abcde");   // case only: 2 substitutions
  const auto r = m.report();
  EXPECT_EQ(r.count, 4u);
  EXPECT_DOUBLE_EQ(r.exact_match, 0.25);
  EXPECT_DOUBLE_EQ(r.exact_match_case_insensitive, 0.5);
  EXPECT_EQ(r.case_only_errors, 1u);
  EXPECT_DOUBLE_EQ(r.cer, 4.0 / 20);
  EXPECT_DOUBLE_EQ(r.char_accuracy, 16.0 / 20);
}

TEST(Metrics, CaseInsensitiveMode) {
  MetricsAccumulator m(/*case_insensitive=*/true);
  m.add("ABcde", "abcde");
  const auto r = m.report();
  EXPECT_DOUBLE_EQ(r.exact_match, 1.0);
  EXPECT_EQ(r.case_only_errors, 0u);
  EXPECT_DOUBLE_EQ(r.cer, 0.0);
}

TEST(Metrics, ConfusionsAndPerCharacterAccuracy) {
  MetricsAccumulator m;
  m.add("nnm", "nmm");  // n->m once
  m.add("n", "m");      // n->m again
  m.add("ab", "abx");   // inserted x
  const auto r = m.report();
  ASSERT_FALSE(r.confusions.empty());
  EXPECT_EQ(r.confusions[0].truth, "n");
  EXPECT_EQ(r.confusions[0].reading, "m");
  EXPECT_EQ(r.confusions[0].count, 2u);
  EXPECT_DOUBLE_EQ(r.per_char_accuracy.at("n"), 1.0 / 3);
  EXPECT_DOUBLE_EQ(r.per_char_accuracy.at("m"), 1.0);
  bool saw_insertion = false;
  for (const auto& c : r.confusions) saw_insertion |= c.truth.empty() && c.reading == "x";
  EXPECT_TRUE(saw_insertion);
}

// Letters aligned on a letter of the label count in the bin of their case probability; other
// symbols, other letters and case-insensitive scoring do not.
TEST(Metrics, CaseCalibrationBinsLettersByTheirCaseProbability) {
  MetricsAccumulator m;
  m.add("aBc", "abc", {0.55f, 0.7f, 0.995f});  // a right (bin 0), B read b (bin 1), c right (last)
  m.add("a1", "a1", {0.9f, 1.0f});             // a right (bin 2); the digit is not a letter
  m.add("abc", "xbC", {1.0f, 1.0f, 1.0f});     // x is another letter; b right, C wrong case
  m.add("ab", "ab");                           // no case probabilities: not counted
  const auto r = m.report();
  ASSERT_EQ(r.case_calibration.size(), 4u);
  EXPECT_FLOAT_EQ(r.case_calibration[0].from, 0.0f);
  EXPECT_EQ(r.case_calibration[0].letters, 1u);
  EXPECT_EQ(r.case_calibration[0].right_case, 1u);
  EXPECT_NEAR(r.case_calibration[0].mean_probability, 0.55, 1e-6);
  EXPECT_EQ(r.case_calibration[1].letters, 1u);
  EXPECT_EQ(r.case_calibration[1].right_case, 0u);
  EXPECT_EQ(r.case_calibration[2].letters, 1u);
  EXPECT_FLOAT_EQ(r.case_calibration[3].from, 0.99f);
  EXPECT_EQ(r.case_calibration[3].letters, 3u);
  EXPECT_EQ(r.case_calibration[3].right_case, 2u);
  EXPECT_NEAR(r.case_calibration[3].mean_probability, (0.995 + 2.0) / 3, 1e-6);

  MetricsAccumulator folded(/*case_insensitive=*/true);
  folded.add("aBc", "abc", {0.55f, 0.7f, 0.995f});
  EXPECT_TRUE(folded.report().case_calibration.empty());
}

TEST(Metrics, EmptyReport) {
  const auto r = MetricsAccumulator().report();
  EXPECT_EQ(r.count, 0u);
  EXPECT_DOUBLE_EQ(r.exact_match, 0.0);
}

}  // namespace
}  // namespace captcha
