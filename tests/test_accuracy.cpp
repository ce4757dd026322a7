// Slow: trains the default model on ../shared/data/captcha-v2 and checks the test accuracy.
// About 12 minutes on 2 cores; run with `ctest --test-dir build -L slow`. The default command
// reads 103 of the 104 test images (docs/BENCHMARKS.md); the bar here leaves one image of slack
// for thread counts and BLAS builds that round differently.
#include <sstream>

#include <gtest/gtest.h>

#include "captcha/dataset.h"
#include "captcha/metrics.h"
#include "captcha/recogniser.h"
#include "captcha/trainer.h"
#include "support/fixtures.h"

namespace captcha {
namespace {

TEST(Accuracy, DefaultModelReadsCaptchaV2) {
  const std::string root = testing::shared_dataset("captcha-v2");
  if (root.empty()) GTEST_SKIP() << "../shared/data/captcha-v2 is absent; skipping";
  testing::TempDir dir("accuracy");
  TrainOptions options;  // the defaults
  options.train_dirs = {root + "/train"};
  options.val_dir = root + "/val";
  options.out_dir = dir / "run";
  options.quiet = true;
  std::ostringstream log;
  const TrainSummary summary = train(options, log);
  EXPECT_GE(summary.best_val_exact_match, 0.97) << log.str();

  Recogniser recogniser(summary.best_model);
  MetricsAccumulator metrics;
  for (const auto& s : scan_folder(root + "/test")) metrics.add(s.label, recogniser.read(load_image(s.path)).text);
  const auto report = metrics.report();
  EXPECT_GE(report.exact_match, 0.98);
  EXPECT_LE(report.cer, 0.005);
}

}  // namespace
}  // namespace captcha
