// The trainer: learns to read a few dozen generated images; interrupt, resume and fine-tuning;
// refuses settings that cannot work before any long work.
#include "captcha/trainer.h"

#include <chrono>
#include <filesystem>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>
#include <opencv2/imgcodecs.hpp>

#include "captcha/dataset.h"
#include "captcha/errors.h"
#include "captcha/metrics.h"
#include "captcha/model_file.h"
#include "captcha/recogniser.h"
#include "support/fixtures.h"

namespace fs = std::filesystem;

namespace captcha {
namespace {

using testing::TempDir;

// A small, fast configuration for generated 96x32 images.
TrainOptions tiny_options(const std::string& data, const std::string& out) {
  TrainOptions o;
  o.train_dir = data;
  o.val_dir = data;
  o.out_dir = out;
  o.preprocess.width = 96;
  o.preprocess.height = 32;
  o.model.conv_channels = {16, 32};
  o.model.dense = 32;
  o.model.rnn_hidden = {48};
  o.model.dropout = 0.0;
  o.batch_size = 8;
  o.learning_rate = 3e-3;
  o.threads = 1;
  o.quiet = true;
  return o;
}

double exact_match_on(const std::string& model, const std::string& folder) {
  Recogniser recogniser(model, 1);
  MetricsAccumulator metrics;
  for (const auto& s : scan_folder(folder)) metrics.add(s.label, recogniser.read(load_image(s.path)).text);
  return metrics.report().exact_match;
}

TEST(Trainer, LearnsToReadAFewDozenImages) {
  TempDir dir("learn");
  testing::write_dataset(dir / "data", 40, "0123456789", 3, 11);
  TrainOptions o = tiny_options(dir / "data", dir / "run");
  o.epochs = 80;
  o.patience = 80;
  std::ostringstream log;
  const TrainSummary s = train(o, log);
  EXPECT_FALSE(s.interrupted);
  for (const auto* name : {"best.safetensors", "final.safetensors", "last.safetensors", "metrics.csv"})
    EXPECT_TRUE(fs::exists(dir / ("run/" + std::string(name)))) << name;
  EXPECT_GE(s.best_val_exact_match, 0.9) << log.str();
  EXPECT_GE(exact_match_on(s.best_model, dir / "data"), 0.9);
  // metrics.csv has a header and one row per epoch.
  std::istringstream csv(testing::read_file(dir / "run/metrics.csv"));
  std::string line;
  int rows = -1;
  while (std::getline(csv, line)) ++rows;
  EXPECT_EQ(rows, s.epochs_completed);
}

TEST(Trainer, ResumeContinuesExactlyWhereTheRunStopped) {
  TempDir dir("resume");
  testing::write_dataset(dir / "data", 24, "0123456789", 3, 12);
  TrainOptions straight = tiny_options(dir / "data", dir / "straight");
  straight.epochs = 4;
  std::ostringstream log;
  train(straight, log);

  TrainOptions first = tiny_options(dir / "data", dir / "split");
  first.epochs = 2;
  train(first, log);
  TrainOptions resumed = options_from_checkpoint(dir / "split");
  EXPECT_EQ(resumed.epochs, 2);
  resumed.epochs = 4;
  resumed.threads = 1;
  resumed.quiet = true;
  const TrainSummary s = train(resumed, log);
  EXPECT_EQ(s.epochs_completed, 4);

  const ModelFile a = load_model(dir / "straight/final.safetensors");
  const ModelFile b = load_model(dir / "split/final.safetensors");
  ASSERT_EQ(a.tensors.size(), b.tensors.size());
  for (const auto& [name, tensor] : a.tensors) EXPECT_EQ(tensor.bytes, b.tensors.at(name).bytes) << name;
}

TEST(Trainer, StopRequestSavesLastAndResumeFinishes) {
  TempDir dir("interrupt");
  testing::write_dataset(dir / "data", 24, "0123456789", 3, 13);
  TrainOptions o = tiny_options(dir / "data", dir / "run");
  o.epochs = 200;
  o.patience = 200;
  std::thread stopper([&] {
    // Ask for a stop once the first epoch has been written.
    for (int i = 0; i < 600 && !fs::exists(dir / "run/metrics.csv"); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    request_stop();
  });
  std::ostringstream log;
  const TrainSummary s = train(o, log);
  stopper.join();
  ASSERT_TRUE(s.interrupted) << log.str();
  EXPECT_LT(s.epochs_completed, 200);
  EXPECT_FALSE(fs::exists(dir / "run/final.safetensors"));
  EXPECT_NE(log.str().find("--resume"), std::string::npos);
  const ModelFile last = load_model(dir / "run/last.safetensors");
  EXPECT_TRUE(last.tensors.count("optimizer_state"));

  TrainOptions resumed = options_from_checkpoint(dir / "run");
  resumed.epochs = s.epochs_completed + 2;
  resumed.quiet = true;
  const TrainSummary done = train(resumed, log);
  EXPECT_FALSE(done.interrupted);
  EXPECT_EQ(done.epochs_completed, s.epochs_completed + 2);
  EXPECT_TRUE(fs::exists(dir / "run/final.safetensors"));
}

TEST(Trainer, InitFromAnotherModelMapsTheCharset) {
  TempDir dir("init");
  testing::write_dataset(dir / "digits", 16, "0123", 3, 14);
  TrainOptions o = tiny_options(dir / "digits", dir / "base");
  o.epochs = 1;
  std::ostringstream log;
  train(o, log);
  // Fine-tune with a charset that adds symbols: shared rows are copied, the model keeps its
  // architecture and input size.
  TrainOptions fine = tiny_options(dir / "digits", dir / "fine");
  fine.init_model = dir / "base/final.safetensors";
  fine.charset = "01234567";
  fine.epochs = 1;
  fine.learning_rate = 1e-9;  // leave the weights (almost) as loaded
  train(fine, log);
  const ModelFile base = load_model(dir / "base/final.safetensors");
  const ModelFile tuned = load_model(dir / "fine/final.safetensors");
  EXPECT_EQ(tuned.charset.symbols_utf8(), "01234567");
  EXPECT_EQ(tuned.preprocess.width, 96);
  const float* old_bias = base.tensors.at("classifier.bias").f32();
  const float* new_bias = tuned.tensors.at("classifier.bias").f32();
  for (int c = 0; c < 5; ++c) EXPECT_NEAR(old_bias[c], new_bias[c], 1e-4) << c;
}

TEST(Trainer, SkipsAFileNameThatIsNotUtf8) {
  TempDir dir("utf8");
  testing::write_dataset(dir / "data", 8, "0123", 3, 18);
  cv::imwrite(dir / "data/01\xff.png", testing::draw_text("01", 96, 32, 1));
  TrainOptions o = tiny_options(dir / "data", dir / "run");
  o.epochs = 1;
  o.fold_case = true;
  std::ostringstream log;
  EXPECT_FALSE(train(o, log).interrupted);
  EXPECT_NE(log.str().find("not valid UTF-8"), std::string::npos) << log.str();
  EXPECT_EQ(load_model(dir / "run/final.safetensors").charset.symbols_utf8(), "0123");
}

TEST(Trainer, RefusesLabelsTheModelCannotEmit) {
  TempDir dir("too-long");
  testing::write_dataset(dir / "data", 8, "0123456789", 6, 15, 96, 32);
  TrainOptions o = tiny_options(dir / "data", dir / "run");
  o.preprocess.width = 16;  // 4 time steps for 6-symbol labels
  std::ostringstream log;
  try {
    train(o, log);
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("--width"), std::string::npos) << e.what();
  }
}

TEST(Trainer, RefusesAnUnwritableOutputFolder) {
  TempDir dir("unwritable");
  testing::write_dataset(dir / "data", 4, "0123", 3, 16);
  testing::write_file(dir / "file", "x");
  std::ostringstream log;
  EXPECT_THROW(train(tiny_options(dir / "data", dir / "file/run"), log), ConfigError);
}

TEST(Trainer, RefusesBadSettings) {
  TempDir dir("settings");
  testing::write_dataset(dir / "data", 4, "0123", 3, 17);
  std::ostringstream log;
  TrainOptions o = tiny_options(dir / "data", dir / "run");
  o.optimizer = "lbfgs";
  EXPECT_THROW(train(o, log), ConfigError);
  o = tiny_options(dir / "data", dir / "run");
  o.model.arch = "transformer";
  EXPECT_THROW(train(o, log), ConfigError);
  o = tiny_options(dir / "data", dir / "run");
  o.train_dir = dir / "missing";
  EXPECT_THROW(train(o, log), DatasetError);
}

}  // namespace
}  // namespace captcha
