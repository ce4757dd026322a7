// The trainer: learns to read a few dozen generated images; interrupt, resume and fine-tuning;
// refuses settings that cannot work before any long work.
#include "captcha/trainer.h"

#include <chrono>
#include <cmath>
#include <filesystem>
#include <regex>
#include <sstream>
#include <thread>
#include <tuple>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>

#include "captcha/atomic_file.h"
#include "captcha/dataset.h"
#include "captcha/errors.h"
#include "captcha/generator.h"
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
  o.train_dirs = {data};
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
  o.fit = FittedSettings::none();  // the sizes above
  return o;
}

// `views`: 0, the model's own choice.
double exact_match_on(const std::string& model, const std::string& folder, int views = 0) {
  Recogniser recogniser(model, 1);
  ReadOptions options;
  options.views = views;
  MetricsAccumulator metrics;
  for (const auto& s : scan_folder(folder)) metrics.add(s.label, recogniser.read(load_image(s.path), options).text);
  return metrics.report().exact_match;
}

std::vector<double> column_of_metrics(const std::string& path, int column) {
  std::istringstream csv(testing::read_file(path));
  std::string line;
  std::getline(csv, line);
  std::vector<double> values;
  while (std::getline(csv, line)) {
    std::istringstream fields(line);
    std::string field;
    for (int i = 0; i <= column; ++i) std::getline(fields, field, ',');
    values.push_back(std::stod(field));
  }
  return values;
}

TEST(Trainer, LearnsToReadAFewDozenImages) {
  TempDir dir("learn");
  testing::write_dataset(dir / "data", 40, "0123456789", 3, 11);
  TrainOptions o = tiny_options(dir / "data", dir / "run");
  o.epochs = 80;
  o.patience = 80;
  o.augment_after_cer = 0.5;
  std::ostringstream log;
  const TrainSummary s = train(o, log);
  EXPECT_FALSE(s.interrupted);
  for (const auto* name : {"best.safetensors", "final.safetensors", "last.safetensors", "metrics.csv"})
    EXPECT_TRUE(fs::exists(dir / ("run/" + std::string(name)))) << name;
  EXPECT_GE(s.best_val_exact_match, 0.9) << log.str();
  EXPECT_GE(exact_match_on(s.best_model, dir / "data"), 0.9);
  // Best and final read kMaxReadingViews views of each image by default where those read more of
  // the validation images right than the image alone; the engine agrees with the figures.
  for (const auto& path : {s.best_model, s.final_model}) {
    const ModelFile m = load_model(path);
    const double single = m.training.at("val_exact_match").get<double>();
    const double viewed = m.training.at("val_exact_match_views").get<double>();
    EXPECT_EQ(m.reading_views, viewed > single ? kMaxReadingViews : 1) << path;
    EXPECT_NEAR(exact_match_on(path, dir / "data", 1), single, 1.0 / 40 + 1e-9) << path;
    EXPECT_NEAR(exact_match_on(path, dir / "data", kMaxReadingViews), viewed, 1.0 / 40 + 1e-9) << path;
  }
  EXPECT_NE(log.str().find("reading views: " + std::to_string(kMaxReadingViews) + " views of each validation image read"),
            std::string::npos)
      << log.str();
  // Best is never behind final on the validation set, each read as it reads by default.
  const auto default_figure = [](const ModelFile& m) {
    return m.training.at(m.reading_views > 1 ? "val_exact_match_views" : "val_exact_match").get<double>();
  };
  EXPECT_GE(default_figure(load_model(s.best_model)), default_figure(load_model(s.final_model))) << log.str();
  // Augmentation waits until the network reads (here: validation CER below 0.5), then starts.
  EXPECT_NE(log.str().find("augmentation on from epoch"), std::string::npos) << log.str();
  // metrics.csv has a header and one row per epoch; curves.png shows them.
  EXPECT_EQ(column_of_metrics(dir / "run/metrics.csv", 0).size(), static_cast<std::size_t>(s.epochs_completed));
  EXPECT_FALSE(cv::imread(dir / "run/curves.png").empty());
}

// Augmentation also starts once the network learns its training images by heart (training loss
// down to the validation loss), even where validation CER never gets low enough.
TEST(Trainer, AugmentsOnceTheTrainingLossFallsToTheValidationLoss) {
  TempDir dir("overfit");
  testing::write_dataset(dir / "train", 16, "0123456789", 3, 21);
  testing::write_dataset(dir / "val", 16, "0123456789", 3, 22);
  TrainOptions o = tiny_options(dir / "train", dir / "run");
  o.val_dir = dir / "val";
  o.epochs = 40;
  o.patience = 40;
  o.augment_after_cer = 0;  // the CER trigger never fires
  std::ostringstream log;
  train(o, log);
  const std::string text = log.str();
  const auto note = text.find("augmentation on from epoch");
  ASSERT_NE(note, std::string::npos) << text;
  EXPECT_NE(text.find("<= validation loss", note), std::string::npos) << text;
  const int epoch = std::stoi(text.substr(note + std::string("augmentation on from epoch ").size()));
  const std::vector<double> train_loss = column_of_metrics(dir / "run/metrics.csv", 1);
  const std::vector<double> val_loss = column_of_metrics(dir / "run/metrics.csv", 2);
  ASSERT_GE(train_loss.size(), static_cast<std::size_t>(epoch - 1));
  EXPECT_LE(train_loss[epoch - 2], val_loss[epoch - 2]);  // the epoch before: the gap closed
  for (int e = 0; e < epoch - 2; ++e) EXPECT_GE(train_loss[e], val_loss[e]) << "epoch " << e + 1;
}

// The generator's labels match what it draws: a model trained on one generated set reads
// another set drawn with a different seed.
TEST(Trainer, LearnsToReadGeneratedImages) {
  TempDir dir("generated");
  GenerateOptions g;
  g.style = "clean";
  g.charset = "digits";
  g.min_length = g.max_length = 3;
  g.width = 96;
  g.height = 32;
  g.out_dir = dir / "train";
  g.count = 150;
  std::ostringstream log;
  generate(g, log);
  g.out_dir = dir / "val";
  g.count = 40;
  g.seed = 2;
  generate(g, log);
  TrainOptions o = tiny_options(dir / "train", dir / "run");
  o.val_dir = dir / "val";
  o.epochs = 30;
  const TrainSummary s = train(o, log);
  EXPECT_GE(s.best_val_exact_match, 0.8) << log.str();
}

// The optimizer's state (Adam's moments and steps, SGD's momentum) travels in the checkpoint as
// plain tensors: a resumed run ends with the same bytes as one never stopped.
class ResumeWithOptimizer : public ::testing::TestWithParam<OptimizerType> {};

TEST_P(ResumeWithOptimizer, ContinuesExactlyWhereTheRunStopped) {
  TempDir dir("resume");
  testing::write_dataset(dir / "data", 24, "0123456789", 3, 12);
  // Extending a run keeps the plateau schedule's rates (a cosine schedule stretches with
  // --epochs); the weight average is part of the saved state.
  const auto options = [&](const std::string& out, int epochs) {
    TrainOptions o = tiny_options(dir / "data", dir / out);
    o.schedule = LrSchedule::kPlateau;
    o.optimizer = GetParam();
    if (o.optimizer == OptimizerType::kSgd) o.learning_rate = 0.02;
    o.epochs = epochs;
    return o;
  };
  std::ostringstream log;
  train(options("straight", 4), log);
  train(options("split", 2), log);

  const ModelFile last = load_model(dir / "split/last.safetensors");
  const char* field = GetParam() == OptimizerType::kAdam ? ".exp_avg_sq" : ".momentum_buffer";
  int moments = 0;
  for (const auto& [name, tensor] : last.tensors)
    if (name.rfind("optimizer.", 0) == 0 && name.find(field) != std::string::npos) ++moments;
  EXPECT_GT(moments, 4);
  EXPECT_FALSE(last.tensors.count("optimizer_state"));

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

INSTANTIATE_TEST_SUITE_P(Trainer, ResumeWithOptimizer, ::testing::Values(OptimizerType::kAdam, OptimizerType::kSgd),
                         [](const auto& info) { return std::string(enum_name(info.param, kOptimizerNames)); });

// A checkpoint whose optimizer tensors were altered is refused with the tensor's name, before
// any step: a shape other than its parameter's, values that are not finite, a missing moment.
TEST(Trainer, ResumeRefusesAlteredOptimizerState) {
  TempDir dir("resume-altered");
  testing::write_dataset(dir / "data", 24, "0123456789", 3, 12);
  TrainOptions first = tiny_options(dir / "data", dir / "run");
  first.epochs = 1;
  std::ostringstream log;
  train(first, log);
  const std::string path = dir / "run/last.safetensors";
  const ModelFile saved = load_model(path);
  const std::string moment = "optimizer.classifier.weight.exp_avg";
  ASSERT_TRUE(saved.tensors.count(moment));

  const auto expect_refused = [&](ModelFile altered, const std::string& why) {
    save_model(path, altered);
    TrainOptions resumed = options_from_checkpoint(dir / "run");
    resumed.epochs = 2;
    resumed.quiet = true;
    try {
      train(resumed, log);
      ADD_FAILURE() << "resumed from a checkpoint with " << why;
    } catch (const ModelFileError& e) {
      EXPECT_NE(std::string(e.what()).find(moment), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(why), std::string::npos) << e.what();
    }
  };
  ModelFile reshaped = saved;
  Tensor& t = reshaped.tensors.at(moment);
  t.shape = {t.numel()};
  expect_refused(reshaped, "shape");
  ModelFile not_finite = saved;
  reinterpret_cast<float*>(not_finite.tensors.at(moment).bytes.data())[3] = std::nanf("");
  expect_refused(not_finite, "not finite");
  ModelFile missing = saved;
  missing.tensors.erase(moment);
  expect_refused(missing, "lacks");

  // Earlier versions kept the optimizer in LibTorch's archive format: never handed to its
  // reader, the run resumes with fresh moments and says so.
  ModelFile legacy = saved;
  for (auto it = legacy.tensors.begin(); it != legacy.tensors.end();)
    it = it->first.rfind("optimizer.", 0) == 0 ? legacy.tensors.erase(it) : std::next(it);
  legacy.tensors["optimizer_state"].dtype = DType::kU8;
  legacy.tensors["optimizer_state"].shape = {4};
  legacy.tensors["optimizer_state"].bytes = {'P', 'K', 3, 4};
  save_model(path, legacy);
  TrainOptions resumed = options_from_checkpoint(dir / "run");
  resumed.epochs = 2;
  std::ostringstream resumed_log;
  EXPECT_EQ(train(resumed, resumed_log).epochs_completed, 2);
  EXPECT_NE(resumed_log.str().find("moments start afresh"), std::string::npos) << resumed_log.str();
}

// Stopped inside an epoch (Ctrl-C), or killed outright after a periodic save, a run resumed from
// its last.safetensors goes on from the step it had reached, with the shuffle, augmentation and
// dropout generators as they were: it ends with the same bytes as a run never stopped.
TEST(Trainer, RunStoppedOrKilledInsideAnEpochResumesExactlyThere) {
  TempDir dir("part-epoch");
  testing::write_dataset(dir / "data", 24, "0123456789", 3, 12);
  const auto options = [&](const std::string& out) {
    TrainOptions o = tiny_options(dir / "data", dir / out);
    o.epochs = 3;
    o.batch_size = 4;            // 6 batches an epoch
    o.model.dropout = 0.3;       // draws from LibTorch's generator
    o.augment_after_cer = 1;     // draws from the epoch's generator
    o.checkpoint_minutes = 0;
    return o;
  };
  std::ostringstream log;
  train(options("straight"), log);

  TrainOptions stopped = options("stopped");
  stopped.on_step = [](int epoch, std::int64_t batches) {
    if (epoch == 2 && batches == 3) request_stop();
  };
  ASSERT_TRUE(train(stopped, log).interrupted);
  EXPECT_NE(log.str().find("state after batch 3 of 6 in epoch 2 saved"), std::string::npos) << log.str();

  // A stop asked for during an epoch's last step comes after all its batches, before validation.
  TrainOptions stopped_last = options("stopped-last");
  stopped_last.on_step = [](int epoch, std::int64_t batches) {
    if (epoch == 2 && batches == 6) request_stop();
  };
  ASSERT_TRUE(train(stopped_last, log).interrupted);
  EXPECT_NE(log.str().find("state after batch 6 of 6 in epoch 2 saved"), std::string::npos) << log.str();

  // Saved before every step; the copy taken after the fourth step of epoch 2 holds the state
  // after its third, as a run killed then would have left it.
  // Its folders given relative to the working folder, which the resumed run does not share.
  TrainOptions killed = options("killed");
  killed.checkpoint_minutes = 1e-9;
  killed.train_dirs = {"data"};
  killed.val_dir = "data";
  killed.quiet = false;
  killed.on_step = [&](int epoch, std::int64_t batches) {
    if (epoch != 2 || batches != 4) return;
    fs::create_directories(dir / "snapshot");
    for (const auto& entry : fs::directory_iterator(dir / "killed"))
      fs::copy_file(entry.path(), fs::path(dir / "snapshot") / entry.path().filename());
    request_stop();
  };
  const fs::path working_folder = fs::current_path();
  fs::current_path(dir.path());
  std::ostringstream killed_log;
  train(killed, killed_log);
  fs::current_path(working_folder);
  // Each periodic save is reported, for logs that show no progress bar.
  EXPECT_NE(killed_log.str().find("  epoch 2 batch 3/6 | train loss "), std::string::npos) << killed_log.str();
  EXPECT_NE(killed_log.str().find(" img/s | saved to last.safetensors\n"), std::string::npos) << killed_log.str();
  EXPECT_EQ(options_from_checkpoint(dir / "snapshot").train_dirs, std::vector<std::string>{dir / "data"});

  fs::copy(dir / "stopped-last", dir / "stopped-last-copy");

  const ModelFile straight = load_model(dir / "straight/final.safetensors");
  const std::pair<std::string, int> runs[] = {{"stopped", 3}, {"snapshot", 3}, {"stopped-last", 6}};
  for (const auto& [run, batch] : runs) {
    TrainOptions resumed = options_from_checkpoint(dir / run);
    resumed.threads = 1;
    resumed.quiet = true;
    std::ostringstream again;
    const TrainSummary s = train(resumed, again);
    EXPECT_EQ(s.epochs_completed, 3) << run;
    EXPECT_NE(again.str().find("resuming epoch 2 after batch " + std::to_string(batch) + " of 6"), std::string::npos)
        << again.str();
    const std::string folder = dir / run;
    const ModelFile b = load_model(folder + "/final.safetensors");
    ASSERT_EQ(straight.tensors.size(), b.tensors.size());
    for (const auto& [name, tensor] : straight.tensors) EXPECT_EQ(tensor.bytes, b.tensors.at(name).bytes) << run << " " << name;
    for (int column : {1, 2, 3})  // training loss (over the whole epoch), validation loss and exact match
      EXPECT_EQ(column_of_metrics(dir / "straight/metrics.csv", column), column_of_metrics(folder + "/metrics.csv", column))
          << run << " column " << column;
  }

  // A saved position past the end of the epoch: the training folder has lost images since.
  std::vector<fs::path> images;
  for (const auto& entry : fs::directory_iterator(dir / "data"))
    if (entry.path().extension() == ".png") images.push_back(entry.path());
  for (std::size_t i = 0; i < 8; ++i) fs::remove(images[i]);
  TrainOptions shrunk = options_from_checkpoint(dir / "stopped-last-copy");
  shrunk.quiet = true;
  std::ostringstream refused;
  try {
    train(shrunk, refused);
    ADD_FAILURE() << "resumed after batch 6 of an epoch that now has 4";
  } catch (const ModelFileError& e) {
    EXPECT_NE(std::string(e.what()).find("after batch 6, but the epoch now has 4 (has the training folder changed?)"),
              std::string::npos)
        << e.what();
  }
}

// The epoch with the best one-view figures is not always the better model: where the final
// weights read the validation set better (each read as it will be read), best is the final model.
TEST(Trainer, BestIsTheFinalModelWhereItReadsTheValidationSetBetter) {
  TempDir dir("best-final");
  testing::write_dataset(dir / "data", 24, "0123456789", 3, 13);
  std::ostringstream log;
  TrainOptions early = tiny_options(dir / "data", dir / "early");
  early.epochs = 1;
  train(early, log);
  TrainOptions o = tiny_options(dir / "data", dir / "run");
  o.epochs = 40;
  o.patience = 40;
  const TrainSummary trained = train(o, log);
  ASSERT_GE(trained.best_val_exact_match, 0.5) << log.str();
  // Plant a weaker best (the one-epoch run's model, with its own figures), then let the finished
  // run end again: it runs no more epochs, only the choice of views and of the best model.
  fs::copy_file(dir / "early/best.safetensors", dir / "run/best.safetensors", fs::copy_options::overwrite_existing);
  TrainOptions resumed = options_from_checkpoint(dir / "run");
  resumed.threads = 1;
  resumed.quiet = true;
  std::ostringstream again;
  const TrainSummary s = train(resumed, again);
  EXPECT_EQ(s.epochs_completed, 40);
  EXPECT_NE(again.str().find("so best is the final model"), std::string::npos) << again.str();
  EXPECT_EQ(s.best_epoch, 40);
  const ModelFile best = load_model(s.best_model), final = load_model(s.final_model);
  EXPECT_EQ(best.training.at("epochs").get<int>(), 40);
  ASSERT_EQ(best.tensors.size(), final.tensors.size());
  for (const auto& [name, tensor] : final.tensors) EXPECT_EQ(tensor.bytes, best.tensors.at(name).bytes) << name;
  EXPECT_DOUBLE_EQ(s.best_val_exact_match, final.training.at("val_exact_match").get<double>());
  // The log quotes the figures that were compared, in the views both will be read in.
  std::smatch quoted;
  const std::string text = again.str();
  ASSERT_TRUE(std::regex_search(text, quoted, std::regex("better than epoch [0-9]+'s \\(([0-9.]+)% against [0-9.]+% in ([0-9]) views?\\)")))
      << text;
  const int views = std::stoi(quoted[2]);
  EXPECT_EQ(views, final.reading_views);
  const double compared = final.training.at(views == 1 ? "val_exact_match" : "val_exact_match_views").get<double>();
  EXPECT_NEAR(std::stod(quoted[1]), 100 * compared, 0.006) << text;
}

// The confidence penalty spreads each time step's probabilities: with a strong one the network's
// outputs stay far from sure (a high CTC loss) while it still learns; the setting is kept.
TEST(Trainer, ConfidencePenaltySoftensTheOutputs) {
  TempDir dir("confidence");
  testing::write_dataset(dir / "data", 24, "0123456789", 3, 14);
  std::ostringstream log;
  double val_loss[2];
  for (int penalised = 0; penalised < 2; ++penalised) {
    TrainOptions o = tiny_options(dir / "data", dir / ("run" + std::to_string(penalised)));
    o.epochs = 25;
    o.confidence_penalty = penalised ? 1.0 : 0.0;
    train(o, log);
    val_loss[penalised] = column_of_metrics(o.out_dir + "/metrics.csv", 2).back();
  }
  EXPECT_GT(val_loss[1], 3 * val_loss[0]) << log.str();
  EXPECT_EQ(options_from_checkpoint(dir / "run1").confidence_penalty, 1.0);
  EXPECT_EQ(options_from_checkpoint(dir / "run0").confidence_penalty, 0.0);
}

// The CAPTCHA-style distortions draw from the run's seed alone: a run stopped and resumed
// distorts the same images the same way as one straight run, and the style is kept.
TEST(Trainer, CaptchaAugmentationIsSeededAndKeptOnResume) {
  TempDir dir("captcha-augment");
  testing::write_dataset(dir / "data", 24, "0123456789", 3, 13);
  const auto options = [&](const std::string& out, int epochs) {
    TrainOptions o = tiny_options(dir / "data", dir / out);
    o.schedule = LrSchedule::kPlateau;
    o.epochs = epochs;
    o.augment_style = AugmentStyle::kCaptcha;
    o.augment_after_cer = 1;  // from the first batch
    return o;
  };
  std::ostringstream log;
  train(options("straight", 3), log);
  train(options("split", 1), log);
  TrainOptions resumed = options_from_checkpoint(dir / "split");
  EXPECT_EQ(resumed.augment_style, AugmentStyle::kCaptcha);
  resumed.epochs = 3;
  resumed.threads = 1;
  resumed.quiet = true;
  train(resumed, log);

  const ModelFile a = load_model(dir / "straight/final.safetensors");
  const ModelFile b = load_model(dir / "split/final.safetensors");
  ASSERT_EQ(a.tensors.size(), b.tensors.size());
  for (const auto& [name, tensor] : a.tensors) EXPECT_EQ(tensor.bytes, b.tensors.at(name).bytes) << name;
  // Distorted images train a different network from the light jitter's.
  TrainOptions light = options("light", 3);
  light.augment_style = AugmentStyle::kLight;
  train(light, log);
  EXPECT_NE(load_model(dir / "light/final.safetensors").tensors.begin()->second.bytes, a.tensors.begin()->second.bytes);
}

TEST(Trainer, CosineScheduleWarmsUpThenDecaysToTheFloor) {
  TempDir dir("cosine");
  testing::write_dataset(dir / "data", 16, "0123", 3, 19);
  TrainOptions o = tiny_options(dir / "data", dir / "run");
  o.epochs = 6;
  o.warmup_epochs = 2;
  o.min_learning_rate = 1e-5;
  std::ostringstream log;
  train(o, log);
  const auto rates = column_of_metrics(dir / "run/metrics.csv", 5);  // rate after each epoch's last step
  ASSERT_EQ(rates.size(), 6u);
  EXPECT_LT(rates[0], o.learning_rate * 0.6);
  EXPECT_NEAR(rates[1], o.learning_rate, 1e-9);
  for (std::size_t i = 2; i < rates.size(); ++i) EXPECT_LT(rates[i], rates[i - 1]) << i;
  EXPECT_NEAR(rates.back(), 1e-5, 1e-9);
}

TEST(Trainer, LastCheckpointHoldsRawWeightsAndTheAverage) {
  TempDir dir("average");
  testing::write_dataset(dir / "data", 16, "0123", 3, 20);
  TrainOptions o = tiny_options(dir / "data", dir / "run");
  o.epochs = 2;
  o.ema_decay = 0.9;
  std::ostringstream log;
  train(o, log);
  const ModelFile last = load_model(dir / "run/last.safetensors");
  const ModelFile final_model = load_model(dir / "run/final.safetensors");
  const std::string name = "classifier.weight";
  ASSERT_TRUE(last.tensors.count("ema." + name));
  EXPECT_EQ(last.tensors.at("ema." + name).bytes, final_model.tensors.at(name).bytes);
  EXPECT_NE(last.tensors.at(name).bytes, final_model.tensors.at(name).bytes);
  EXPECT_FALSE(final_model.tensors.count("ema." + name));
  Recogniser raw(dir / "run/last.safetensors", 1);  // loads as a model
  EXPECT_EQ(raw.model().charset.symbols_utf8(), "0123");
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
  EXPECT_TRUE(last.tensors.count("optimizer.classifier.weight.exp_avg"));

  TrainOptions resumed = options_from_checkpoint(dir / "run");
  resumed.epochs = s.epochs_completed + 2;
  resumed.quiet = true;
  const TrainSummary done = train(resumed, log);
  EXPECT_FALSE(done.interrupted);
  EXPECT_EQ(done.epochs_completed, s.epochs_completed + 2);
  EXPECT_TRUE(fs::exists(dir / "run/final.safetensors"));
}

TEST(Trainer, TrainsOnSeveralFoldersAsOneSet) {
  TempDir dir("folders");
  testing::write_dataset(dir / "a", 10, "0123456789", 3, 31);
  testing::write_dataset(dir / "b", 14, "0123456789", 3, 32);
  TrainOptions o = tiny_options(dir / "a", dir / "run");
  o.train_dirs = {dir / "a", dir / "b"};
  o.epochs = 1;
  std::ostringstream log;
  const TrainSummary s = train(o, log);
  EXPECT_NE(log.str().find(dir / "a + " + dir / "b (24 images)"), std::string::npos) << log.str();
  EXPECT_EQ(load_model(dir / "run/final.safetensors").training.at("train_images"), 24);
  EXPECT_EQ(options_from_checkpoint(dir / "run").train_dirs, o.train_dirs);
  EXPECT_EQ(s.epochs_completed, 1);

  // A run saved before several folders were allowed names its one folder as train_dir.
  const nlohmann::json saved = {{"train_dir", "old/train"}, {"out_dir", "old/run"}};
  EXPECT_EQ(saved.get<TrainOptions>().train_dirs, std::vector<std::string>{"old/train"});
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

  // A starting model whose classifier is smaller than its charset says (crafted, or cut short):
  // refused, naming the tensor, before any row is copied (it used to be read past its end).
  ModelFile crafted = base;
  for (const char* name : {"classifier.weight", "classifier.bias"}) {
    Tensor& t = crafted.tensors.at(name);
    t.shape[0] -= 3;
    t.bytes.resize(t.bytes.size() / (t.shape[0] + 3) * t.shape[0]);
  }
  save_model(dir / "crafted.safetensors", crafted);
  fine.init_model = dir / "crafted.safetensors";
  fine.out_dir = dir / "fine-crafted";
  try {
    train(fine, log);
    FAIL() << "fine-tuned from a model whose classifier does not fit its charset";
  } catch (const ModelFileError& e) {
    EXPECT_NE(std::string(e.what()).find("crafted.safetensors: tensor classifier.weight has the wrong shape"), std::string::npos)
        << e.what();
  }
}

TEST(Trainer, TimeLimitEndsTheRunAfterTheEpochsThatFit) {
  TempDir dir("time-limit");
  testing::write_dataset(dir / "data", 16, "0123", 3, 19);
  TrainOptions o = tiny_options(dir / "data", dir / "run");
  o.epochs = 50;
  o.time_limit_minutes = 1e-6;  // spent by the first epoch
  std::ostringstream log;
  const TrainSummary s = train(o, log);
  EXPECT_FALSE(s.interrupted);
  EXPECT_EQ(s.epochs_completed, 1);
  EXPECT_TRUE(fs::exists(dir / "run/final.safetensors"));
  EXPECT_NE(log.str().find("time limit"), std::string::npos) << log.str();
  EXPECT_EQ(options_from_checkpoint(dir / "run").time_limit_minutes, 1e-6);
  // A limit that is not reached leaves --epochs in charge.
  TrainOptions roomy = tiny_options(dir / "data", dir / "roomy");
  roomy.epochs = 2;
  roomy.time_limit_minutes = 600;
  EXPECT_EQ(train(roomy, log).epochs_completed, 2);
  // --epochs 0: the time limit alone decides (without one, TrainOptions::kDefaultEpochs); fewer is a
  // configuration error.
  TrainOptions unbounded = tiny_options(dir / "data", dir / "unbounded");
  unbounded.epochs = 0;
  unbounded.time_limit_minutes = 1e-6;
  EXPECT_EQ(train(unbounded, log).epochs_completed, 1);
  EXPECT_NE(log.str().find("the epochs that fit in"), std::string::npos) << log.str();
  unbounded.epochs = -1;
  unbounded.out_dir = dir / "no-limit";
  EXPECT_THROW(train(unbounded, log), ConfigError);
  EXPECT_FALSE(fs::exists(dir / "no-limit"));
}

TEST(Trainer, SkipsStepsWithNonFiniteGradientsAndStopsClearlyWhenEveryStepHasThem) {
  TempDir dir("diverge");
  testing::write_dataset(dir / "data", 32, "0123", 3, 23);
  TrainOptions o = tiny_options(dir / "data", dir / "run");
  o.epochs = 3;
  o.learning_rate = 1e30;  // the first step sends the weights to ~1e30: every later forward overflows
  o.warmup_epochs = 0;
  o.ema_decay = 0;
  std::ostringstream log;
  try {
    train(o, log);
    FAIL() << "a run whose steps are all non-finite must stop: " << log.str();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("training diverged in epoch 2"), std::string::npos) << e.what();
  }
  EXPECT_NE(log.str().find("epoch 1 step 2: non-finite"), std::string::npos) << log.str();
  EXPECT_NE(log.str().find("step skipped"), std::string::npos) << log.str();
  // Epoch 1 (one good step) was kept; nothing after it.
  const TrainOptions stored = options_from_checkpoint(dir / "run");
  EXPECT_EQ(stored.learning_rate, 1e30);
  EXPECT_TRUE(fs::exists(dir / "run/last.safetensors"));
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

TEST(Trainer, FitsTheInputSizeToSmallerImages) {
  TempDir dir("fit-size");
  testing::write_dataset(dir / "data", 8, "0123", 3, 21, 160, 40);
  TrainOptions o = tiny_options(dir / "data", dir / "run");
  o.preprocess = PreprocessOptions{};  // 200x50
  o.fit.input_size = true;
  o.epochs = 1;
  std::ostringstream log;
  train(o, log);
  const ModelFile model = load_model(dir / "run/final.safetensors");
  EXPECT_EQ(model.preprocess.width, 160);
  EXPECT_EQ(model.preprocess.height, 40);
  // Fine-tuning keeps the starting model's size.
  testing::write_dataset(dir / "wide", 8, "0123", 3, 22, 120, 32);
  o.train_dirs = {dir / "wide"};
  o.val_dir = dir / "wide";
  o.out_dir = dir / "tuned";
  o.init_model = dir / "run/final.safetensors";
  train(o, log);
  EXPECT_EQ(load_model(dir / "tuned/final.safetensors").preprocess.width, 160);
}

TEST(Trainer, AugmentsLargeTrainingSetsFromTheFirstBatch) {
  EXPECT_FALSE(augments_from_start(kWideTrainingSet - 1));
  EXPECT_TRUE(augments_from_start(kWideTrainingSet));
  // A small set waits for its trigger, fit.augment_start or not, and does not count as fitted.
  TempDir dir("fit-augment");
  testing::write_dataset(dir / "data", 8, "0123", 3, 24);
  TrainOptions o = tiny_options(dir / "data", dir / "run");
  o.fit.augment_start = true;
  o.epochs = 1;
  std::ostringstream log;
  train(o, log);
  EXPECT_NE(log.str().find("augment (light) once val CER < 0.02"), std::string::npos) << log.str();
  const TrainOptions saved = options_from_checkpoint(dir / "run");
  EXPECT_FALSE(saved.fit.augment_start);
  EXPECT_EQ(saved.augment_after_cer, o.augment_after_cer);
}

TEST(Trainer, PenalisesConfidenceOnLargeTrainingSets) {
  EXPECT_EQ(fitted_confidence_penalty(kWideTrainingSet - 1), 0.0);
  EXPECT_EQ(fitted_confidence_penalty(kWideTrainingSet), kLargeSetConfidencePenalty);
  // Fitted to a small set: none, whatever the options held; not fitted: the options' value.
  TempDir dir("fit-penalty");
  testing::write_dataset(dir / "data", 8, "0123", 3, 25);
  for (const bool fit : {true, false}) {
    TrainOptions o = tiny_options(dir / "data", dir / (fit ? "fitted" : "set"));
    o.fit.confidence_penalty = fit;
    o.confidence_penalty = 0.5;
    o.epochs = 1;
    std::ostringstream log;
    train(o, log);
    EXPECT_EQ(options_from_checkpoint(o.out_dir).confidence_penalty, fit ? 0.0 : 0.5);
    EXPECT_EQ(log.str().find("confidence penalty") != std::string::npos, !fit) << log.str();
  }
}

TEST(Trainer, WidensAndDeepensTheNetworkForLargeTrainingSets) {
  EXPECT_EQ(fitted_features(kWideTrainingSet - 1), ModelConfig{}.dense);
  EXPECT_EQ(fitted_features(kWideTrainingSet), kWideFeatures);
  EXPECT_EQ(fitted_conv_channels(kWideTrainingSet - 1), ModelConfig{}.conv_channels);
  EXPECT_EQ(fitted_conv_channels(kWideTrainingSet).size(), std::size(kDeepConvChannels));
  EXPECT_EQ(fitted_rnn_hidden(kWideTrainingSet - 1), ModelConfig{}.rnn_hidden);
  EXPECT_EQ(fitted_rnn_hidden(kWideTrainingSet), std::vector<int>(std::begin(kWideRnnHidden), std::end(kWideRnnHidden)));
  TempDir dir("fit-features");
  testing::write_dataset(dir / "data", 8, "0123", 3, 23);
  TrainOptions o = tiny_options(dir / "data", dir / "run");  // 32 features, conv 16,32
  o.fit.features = true;
  o.fit.convolutions = true;
  o.fit.rnn_hidden = true;
  o.epochs = 1;
  std::ostringstream log;
  train(o, log);
  const ModelConfig fitted = load_model(dir / "run/final.safetensors").config;
  EXPECT_EQ(fitted.dense, fitted_features(8));
  EXPECT_EQ(fitted.conv_channels, fitted_conv_channels(8));
  EXPECT_EQ(fitted.rnn_hidden, fitted_rnn_hidden(8));
  EXPECT_NE(log.str().find("lstm (128,64, fitted)"), std::string::npos) << log.str();
  EXPECT_TRUE(options_from_checkpoint(dir / "run").fit.rnn_hidden);
  // Fine-tuning keeps the starting model's width.
  o.out_dir = dir / "tuned";
  o.init_model = dir / "run/final.safetensors";
  o.model.dense = 16;
  train(o, log);
  EXPECT_EQ(load_model(dir / "tuned/final.safetensors").config.dense, fitted_features(8));
}

TEST(Trainer, GrowingTheNetworkKeepsWhatItReads) {
  TempDir dir("grow");
  testing::write_dataset(dir / "data", 24, "0123", 3, 31);
  std::ostringstream log;
  const std::string base = dir / "base";
  TrainOptions o = tiny_options(dir / "data", base);  // conv 16,32; 32 features
  o.model.rnn_hidden = {48, 24};
  o.model.batch_norm = false;  // no running statistics to drift while the weights stay (see Crnn.GrowingKeepsTheOutput)
  o.epochs = 6;
  train(o, log);
  // Wider first convolution, two added ones (the first wider than the last loaded one), more
  // features, wider BiLSTMs.
  TrainOptions grown = tiny_options(dir / "data", dir / "grown");
  grown.init_model = base + "/final.safetensors";
  grown.grow = {48, {24, 32, 40, 32}, {56, 32}};
  grown.epochs = 1;
  grown.learning_rate = 1e-9;  // leave the weights (almost) as loaded
  grown.augment = false;
  train(grown, log);
  const ModelFile loaded = load_model(base + "/final.safetensors");
  const ModelFile widened = load_model(grown.out_dir + "/final.safetensors");
  EXPECT_EQ(widened.config.dense, 48);
  EXPECT_EQ(widened.config.conv_channels, (std::vector<int>{24, 32, 40, 32}));
  EXPECT_EQ(widened.config.rnn_hidden, (std::vector<int>{56, 32}));
  // The run keeps the growth asked for with its options (so a resumed run's log says it was grown).
  const ModelGrowth kept = options_from_checkpoint(grown.out_dir).grow;
  EXPECT_EQ(kept.features, 48);
  EXPECT_EQ(kept.conv_channels, (std::vector<int>{24, 32, 40, 32}));
  EXPECT_EQ(kept.rnn_hidden, (std::vector<int>{56, 32}));
  // The old units of the first BiLSTM do not read the new features; the second layer's old
  // units do not read the first one's new units (columns 48-55 and 104-111).
  const Tensor& input = widened.tensors.at("rnn0.weight_ih_l0");
  ASSERT_EQ(input.shape, (std::vector<std::int64_t>{4 * 56, 48}));
  for (std::int64_t r = 0; r < 48; ++r)
    for (std::int64_t c = 32; c < 48; ++c) ASSERT_NEAR(input.f32()[r * 48 + c], 0, 1e-6) << r << "," << c;
  const Tensor& second = widened.tensors.at("rnn1.weight_ih_l0_reverse");
  for (std::int64_t c : {48, 55, 104, 111}) ASSERT_NEAR(second.f32()[c], 0, 1e-6) << c;
  EXPECT_NEAR(widened.tensors.at("dense.weight").f32()[5], loaded.tensors.at("dense.weight").f32()[5], 1e-5);
  // Both read the same (in one view: each run fits its own number of views).
  Recogniser before(base + "/final.safetensors", 1), after(grown.out_dir + "/final.safetensors", 1);
  ReadOptions one_view;
  one_view.views = 1;
  for (const auto& s : scan_folder(dir / "data")) {
    const Image image = load_image(s.path);
    const Reading a = before.read(image, one_view), b = after.read(image, one_view);
    EXPECT_EQ(a.text, b.text) << s.path;
    EXPECT_NEAR(a.confidence, b.confidence, 0.02) << s.path;
  }
  // Growing needs a starting small model and cannot shrink anything.
  TrainOptions refused = tiny_options(dir / "data", dir / "refused");
  refused.init_model = dir / "base/final.safetensors";
  const auto refusal = [&](ModelGrowth growth) {
    refused.grow = std::move(growth);
    try {
      train(refused, log);
    } catch (const ConfigError& e) {
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  EXPECT_NE(refusal({16, {}, {}}).find("has 32 features per time step; growing cannot make them fewer (asked for 16)"),
            std::string::npos);
  EXPECT_NE(refusal({0, {8, 32}, {}}).find("has convolutions 16,32; growing keeps each as wide or wider"),
            std::string::npos);
  EXPECT_NE(refusal({0, {16, 32, 16}, {}}).find("adds ones at least 32 wide (asked for 16,32,16)"), std::string::npos);
  EXPECT_NE(refusal({0, {}, {64}}).find("has BiRNN layers 48,24; growing keeps their number"), std::string::npos);
  refused.init_model.clear();
  EXPECT_NE(refusal({64, {}, {}}).find("needs a starting model"), std::string::npos);
  // A file whose first BiLSTM does not read its features is reported, not grown.
  ModelFile broken = loaded;
  const std::vector<std::int64_t>& reads = loaded.tensors.at("rnn0.weight_ih_l0").shape;
  const std::vector<float> zeros(static_cast<std::size_t>(reads[0] * (reads[1] - 1)));
  broken.tensors["rnn0.weight_ih_l0"] = Tensor::from_f32({reads[0], reads[1] - 1}, zeros.data());
  save_model(dir / "broken.safetensors", broken);
  refused.init_model = dir / "broken.safetensors";
  refused.grow = {48, {}, {}};
  try {
    train(refused, log);
    FAIL() << "a misshapen tensor was grown";
  } catch (const ModelFileError& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("broken.safetensors: tensor rnn0.weight_ih_l0 has the wrong shape"), std::string::npos)
        << message;
  }
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

// Settings of a few values are enums; stored options naming another value are refused, naming
// the allowed ones.
TEST(Trainer, StoredOptionsWithAnUnknownValueAreRefused) {
  const nlohmann::json good = tiny_options("data", "run");
  EXPECT_EQ(good.at("optimizer"), "adam");
  EXPECT_EQ(good.at("model").at("arch"), "small");
  EXPECT_EQ(good.get<TrainOptions>().schedule, LrSchedule::kCosine);
  for (const auto& [key, value, expected] :
       std::vector<std::tuple<std::string, std::string, std::string>>{{"optimizer", "lbfgs", "(expected adam or sgd)"},
                                                                     {"schedule", "step", "(expected cosine or plateau)"},
                                                                     {"augment_style", "heavy", "(expected light or captcha)"}}) {
    nlohmann::json bad = good;
    bad[key] = value;
    try {
      bad.get<TrainOptions>();
      ADD_FAILURE() << key << " " << value << " was accepted";
    } catch (const ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find("'" + value + "' " + expected), std::string::npos) << e.what();
    }
  }
  nlohmann::json transformer = good;
  transformer["model"]["arch"] = "transformer";
  EXPECT_THROW(transformer.get<TrainOptions>(), ConfigError);
}

// Two trainers on one run folder would overwrite each other's checkpoints: the second is
// refused before it writes anything, and the folder is free again once the first has ended.
TEST(Trainer, RefusesARunFolderAnotherTrainerHolds) {
  TempDir dir("locked");
  testing::write_dataset(dir / "data", 24, "0123456789", 3, 12);
  TrainOptions o = tiny_options(dir / "data", dir / "run");
  o.epochs = 1;
  std::ostringstream log;
  {
    fs::create_directories(dir / "run");
    FolderLock other(dir / "run");
    try {
      train(o, log);
      ADD_FAILURE() << "trained in a folder another run holds";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("another training run"), std::string::npos) << e.what();
    }
    EXPECT_FALSE(fs::exists(dir / "run/last.safetensors"));
  }
  EXPECT_EQ(train(o, log).epochs_completed, 1);
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
  o.ema_decay = 1.0;
  EXPECT_THROW(train(o, log), ConfigError);
  for (const double penalty : {-0.1, 11.0}) {
    o = tiny_options(dir / "data", dir / "run");
    o.confidence_penalty = penalty;
    EXPECT_THROW(train(o, log), ConfigError) << penalty;
  }
  o = tiny_options(dir / "data", dir / "run");
  o.train_dirs = {dir / "data", dir / "missing"};
  EXPECT_THROW(train(o, log), DatasetError);
}

}  // namespace
}  // namespace captcha
