// The CTC trainer: data in memory, Adam/SGD, reduce-on-plateau, early stopping, checkpoints
// written atomically, Ctrl-C handling and resume.
#include "captcha/trainer.h"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iomanip>
#include <iostream>
#include <limits>
#include <map>
#include <mutex>
#include <numeric>
#include <optional>
#include <random>
#include <sstream>
#include <utility>

#include <ATen/CPUGeneratorImpl.h>
#include <opencv2/imgproc.hpp>

#include "captcha/dataset.h"
#include "captcha/errors.h"
#include "captcha/metrics.h"
#include "captcha/model_file.h"
#include "captcha/plots.h"
#include "captcha/utf8.h"
#include "captcha/atomic_file.h"
#include "captcha/augment.h"
#include "captcha/training_process.h"
#include "crnn.h"

namespace fs = std::filesystem;

namespace captcha {

namespace {

std::atomic<bool> g_stop_requested{false};

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

std::string format_duration(double seconds) {
  const long s = std::lround(seconds);
  std::ostringstream out;
  out << std::setfill('0');
  if (s >= 3600) out << s / 3600 << ':' << std::setw(2);
  out << (s / 60) % 60 << ':' << std::setw(2) << s % 60;
  return out.str();
}

std::string now_iso8601() {
  const std::time_t t = std::time(nullptr);
  char buffer[32];
  std::strftime(buffer, sizeof buffer, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buffer;
}

struct Batch {
  torch::Tensor images;   // N x 1 x H x W
  torch::Tensor targets;  // concatenated class indices
  std::vector<int64_t> target_lengths;
};

// Distorts one training image (see augment.h).
using Augmenter = std::function<cv::Mat(const cv::Mat&)>;

// Images order[start, start + count) of `data`; distorted when `augment` is given.
Batch make_batch(const LoadedDataset& data, const std::vector<std::size_t>& order, std::size_t start,
                 std::size_t count, const PreprocessOptions& p, const Augmenter* augment) {
  Batch batch;
  batch.images = torch::empty({static_cast<int64_t>(count), 1, p.height, p.width});
  std::vector<int64_t> targets;
  for (std::size_t i = 0; i < count; ++i) {
    const std::size_t index = order[start + i];
    const cv::Mat image = augment ? (*augment)(data.images[index]) : data.images[index];
    normalise_into(image, p, batch.images[static_cast<int64_t>(i)].data_ptr<float>());
    targets.insert(targets.end(), data.targets[index].begin(), data.targets[index].end());
    batch.target_lengths.push_back(static_cast<int64_t>(data.targets[index].size()));
  }
  batch.targets = torch::tensor(targets, torch::kLong);
  return batch;
}

// CTC loss of per-step log-probabilities (N x T x C), summed over each sample's time steps,
// averaged over the batch (as Keras reports it).
torch::Tensor ctc_loss(const torch::Tensor& log_probs, const Batch& batch) {
  const std::vector<int64_t> input_lengths(log_probs.size(0), log_probs.size(1));
  return torch::ctc_loss(log_probs.transpose(0, 1), batch.targets, input_lengths, batch.target_lengths,
                         /*blank=*/Charset::kBlank, at::Reduction::Sum, /*zero_infinity=*/true) /
         log_probs.size(0);
}

// The negative entropy of each time step's distribution, summed and averaged as ctc_loss is: the
// confidence penalty's term.
torch::Tensor negative_entropy(const torch::Tensor& log_probs) {
  return (log_probs.exp() * log_probs).sum() / log_probs.size(0);
}

struct Validation {
  double loss = 0;
  double exact_match = 0;
  double cer = 1;
};

// `network`'s figures on `data`; with `views` > 1 each image is read in that many views
// (reading_view) and their per-step probabilities averaged, as the recogniser does (the loss is the
// image's own).
Validation validate(Crnn& network, const LoadedDataset& data, const Charset& charset,
                    const PreprocessOptions& p, LengthRange lengths, int views = 1) {
  torch::NoGradGuard no_grad;
  network->eval();
  std::vector<std::size_t> order(data.size());
  std::iota(order.begin(), order.end(), 0);
  MetricsAccumulator metrics;
  double loss_sum = 0;
  constexpr std::size_t kBatch = 64;
  for (std::size_t start = 0; start < data.size(); start += kBatch) {
    const std::size_t count = std::min(kBatch, data.size() - start);
    const Batch batch = make_batch(data, order, start, count, p, /*augment=*/nullptr);
    auto logits = network->forward(batch.images);
    loss_sum += ctc_loss(torch::log_softmax(logits, 2), batch).item<double>() * count;
    if (views > 1) {
      auto mean = torch::softmax(logits, 2);
      for (int view = 1; view < views; ++view) {
        const Augmenter viewed = [view](const cv::Mat& image) { return reading_view(image, view); };
        mean += torch::softmax(network->forward(make_batch(data, order, start, count, p, &viewed).images), 2);
      }
      logits = torch::log((mean / views).clamp_min(1e-30));
    }
    const auto texts = decode_logits(logits, charset, 0, {}, lengths);
    for (std::size_t i = 0; i < count; ++i) metrics.add(data.labels[start + i], texts[i].text);
  }
  network->train();
  const auto report = metrics.report();
  return {loss_sum / data.size(), report.exact_match, report.cer};
}

// The validation passes that choosing the best and final models' reading views takes (see
// fit_reading_views); a time limit keeps time for them.
constexpr int kViewFitPasses = 2 * kMaxReadingViews;

// Better validation: higher exact match, then lower CER, then lower loss.
bool is_better(const Validation& a, const Validation& b) {
  if (std::abs(a.exact_match - b.exact_match) > 1e-9) return a.exact_match > b.exact_match;
  if (std::abs(a.cer - b.cer) > 1e-9) return a.cer < b.cer;
  return a.loss < b.loss * (1 - 1e-3);
}

class ProgressBar {
 public:
  ProgressBar(std::ostream& out, bool enabled) : out_(out), enabled_(enabled) {}
  void update(std::size_t done, std::size_t total, double loss) {
    if (!enabled_) return;
    constexpr int kWidth = 30;
    const int filled = static_cast<int>(kWidth * done / std::max<std::size_t>(total, 1));
    out_ << "\r  [" << std::string(filled, '#') << std::string(kWidth - filled, '.') << "] " << done
         << "/" << total << " loss " << std::fixed << std::setprecision(4) << loss << std::flush;
  }
  void clear() {
    if (enabled_) out_ << "\r" << std::string(70, ' ') << "\r" << std::flush;
  }

 private:
  std::ostream& out_;
  bool enabled_;
};

// Everything that must survive an interruption besides the weights and optimizer state.
struct TrainerState {
  int epochs_completed = 0;
  Validation best{0, 0, 1e30};
  int best_epoch = 0;
  int epochs_since_best = 0;
  double learning_rate = 0;
  double plateau_loss = 1e30;
  int plateau_epochs = 0;
  double elapsed_seconds = 0;
  bool augmenting = false;
  // Epochs the schedule spans and the run may reach: the options' epochs, or fewer under a time
  // limit (0: not set yet).
  int planned_epochs = 0;
  std::vector<std::string> metrics_rows;
  // The epoch after epochs_completed, where the run was saved part-way through it (batches_done 0:
  // it had not begun). The torch generator's state (dropout) is saved beside it as a tensor.
  struct PartEpoch {
    std::int64_t batches_done = 0;
    double loss_sum = 0;     // over the steps taken, weighted by batch size
    std::int64_t seen = 0;   // images in those steps
    std::int64_t skipped = 0;
    double seconds = 0;      // spent on those steps
    std::string shuffle_generator;  // the epoch's generator (order, augmentation) after them, as text
  } part_epoch;
};

nlohmann::json state_to_json(const TrainerState& s) {
  return {{"epochs_completed", s.epochs_completed},
          {"best", {s.best.exact_match, s.best.cer, s.best.loss}},
          {"best_epoch", s.best_epoch},
          {"epochs_since_best", s.epochs_since_best},
          {"learning_rate", s.learning_rate},
          {"plateau_loss", s.plateau_loss},
          {"plateau_epochs", s.plateau_epochs},
          {"elapsed_seconds", s.elapsed_seconds},
          {"augmenting", s.augmenting},
          {"planned_epochs", s.planned_epochs},
          {"part_epoch",
           {{"batches_done", s.part_epoch.batches_done},
            {"loss_sum", s.part_epoch.loss_sum},
            {"seen", s.part_epoch.seen},
            {"skipped", s.part_epoch.skipped},
            {"seconds", s.part_epoch.seconds},
            {"shuffle_generator", s.part_epoch.shuffle_generator}}}};
}

TrainerState state_from_json(const nlohmann::json& j) {
  TrainerState s;
  s.epochs_completed = j.at("epochs_completed");
  const auto best = j.at("best").get<std::vector<double>>();
  s.best = {best.at(2), best.at(0), best.at(1)};
  s.best_epoch = j.at("best_epoch");
  s.epochs_since_best = j.at("epochs_since_best");
  s.learning_rate = j.at("learning_rate");
  s.plateau_loss = j.at("plateau_loss");
  s.plateau_epochs = j.at("plateau_epochs");
  s.elapsed_seconds = j.at("elapsed_seconds");
  s.augmenting = j.value("augmenting", true);  // runs saved before the setting augmented throughout
  s.planned_epochs = j.value("planned_epochs", 0);
  if (j.contains("part_epoch")) {  // absent from checkpoints of versions that saved at epoch ends only
    const nlohmann::json& part = j.at("part_epoch");
    s.part_epoch.batches_done = part.at("batches_done");
    s.part_epoch.loss_sum = part.at("loss_sum");
    s.part_epoch.seen = part.at("seen");
    s.part_epoch.skipped = part.at("skipped");
    s.part_epoch.seconds = part.at("seconds");
    s.part_epoch.shuffle_generator = part.at("shuffle_generator");
  }
  return s;
}

Tensor byte_tensor(const std::string& bytes) {
  Tensor t;
  t.dtype = DType::kU8;
  t.shape = {static_cast<std::int64_t>(bytes.size())};
  t.bytes.assign(bytes.begin(), bytes.end());
  return t;
}

// The state of LibTorch's default CPU generator, which dropout draws from.
constexpr const char* kTorchGeneratorTensor = "trainer.torch_generator";

Tensor torch_generator_state() {
  at::Generator generator = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(generator.mutex());
  const at::Tensor state = generator.get_state().contiguous();
  const auto* begin = state.data_ptr<std::uint8_t>();
  return byte_tensor(std::string(begin, begin + state.numel()));
}

void set_torch_generator_state(const Tensor& t, const std::string& path) {
  if (t.dtype != DType::kU8) throw ModelFileError(path + ": " + kTorchGeneratorTensor + " is not a byte tensor");
  at::Generator generator = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(generator.mutex());
  auto state = torch::empty({static_cast<std::int64_t>(t.bytes.size())}, torch::kUInt8);
  std::copy(t.bytes.begin(), t.bytes.end(), state.data_ptr<std::uint8_t>());
  try {
    generator.set_state(state);
  } catch (const c10::Error&) {
    throw ModelFileError(path + ": " + kTorchGeneratorTensor + " is not a generator state");
  }
}

constexpr const char* kMetricsHeader =
    "epoch,train_loss,val_loss,val_exact_match,val_cer,learning_rate,images_per_second,elapsed_seconds\n";

std::vector<std::string> read_metrics_rows(const fs::path& path, int epochs) {
  std::vector<std::string> rows;
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);  // header
  while (std::getline(in, line) && static_cast<int>(rows.size()) < epochs) rows.push_back(line);
  return rows;
}

// The epochs a run may reach: --epochs, or with 0 (a time limit in charge) a bound no run reaches.
int epoch_limit(const TrainOptions& o) { return o.epochs > 0 ? o.epochs : std::numeric_limits<int>::max() / 2; }

// Under a time limit: after each epoch, the number of epochs that still fit in the limit at
// `seconds_per_epoch` (the caller passes the slower of the run's mean epoch time and its last
// epoch's, so that a run whose epochs slow down towards the end does not overrun), between the
// epoch just completed and --epochs, becomes the schedule's length, so the cosine decay ends when
// the time does. `reserved` seconds are kept for the work after the last epoch.
void fit_schedule_to_time_limit(const TrainOptions& o, int epoch, double seconds_per_epoch, double elapsed,
                                double reserved, TrainerState& state, std::ostream& log) {
  const double left = o.time_limit_minutes * 60 - elapsed - reserved;
  const double more = std::floor(std::max(0.0, left) / std::max(seconds_per_epoch, 1e-9));
  const int fit = static_cast<int>(std::min<double>(epoch_limit(o), epoch + more));
  if (fit == state.planned_epochs) return;
  if (fit <= epoch)
    log << "time limit: " << format_duration(o.time_limit_minutes * 60) << " reached or too close for another epoch\n";
  else if (!o.quiet)
    log << "time limit: " << fit << " epochs fit in " << format_duration(o.time_limit_minutes * 60)
        << "; the schedule now ends at epoch " << fit << "\n";
  state.planned_epochs = fit;
}

std::unique_ptr<torch::optim::Optimizer> make_optimizer(const TrainOptions& o, Crnn& network) {
  if (o.optimizer == "adam")
    return std::make_unique<torch::optim::Adam>(
        network->parameters(), torch::optim::AdamOptions(o.learning_rate).weight_decay(o.weight_decay));
  if (o.optimizer == "sgd")
    return std::make_unique<torch::optim::SGD>(
        network->parameters(),
        torch::optim::SGDOptions(o.learning_rate).momentum(o.momentum).nesterov(true).weight_decay(o.weight_decay));
  throw ConfigError("unknown optimizer '" + o.optimizer + "' (expected adam or sgd)");
}

void set_learning_rate(torch::optim::Optimizer& optimizer, double lr) {
  for (auto& group : optimizer.param_groups()) group.options().set_lr(lr);
}

// The cosine schedule's rate for 0-based optimizer step `step` of a run of `epochs` epochs.
double cosine_learning_rate(const TrainOptions& o, int epochs, std::int64_t step, std::int64_t steps_per_epoch) {
  const auto warmup = std::min<std::int64_t>(TrainOptions::kMaxWarmupSteps,
                                             std::llround(o.warmup_epochs * steps_per_epoch));
  if (step < warmup) return o.learning_rate * (step + 1) / warmup;
  // The last step of the last epoch runs at the floor.
  const std::int64_t decay_steps = std::max<std::int64_t>(1, epochs * steps_per_epoch - warmup - 1);
  const double progress = std::min(1.0, static_cast<double>(step - warmup) / decay_steps);
  const double floor = std::min(o.min_learning_rate, o.learning_rate);
  return floor + (o.learning_rate - floor) * 0.5 * (1 + std::cos(M_PI * progress));
}

// An exponential moving average of a network's weights and batch-norm statistics. The decay
// ramps up over the first steps so that the average does not remember the initialisation.
class WeightAverage {
 public:
  WeightAverage(Crnn averaged, double decay) : averaged_(std::move(averaged)), decay_(decay) {}

  void update(Crnn& live, std::int64_t step) {
    torch::NoGradGuard no_grad;
    const double d = std::min(decay_, (1.0 + step) / (10.0 + step));
    const auto blend = [d](std::vector<torch::Tensor> average, const std::vector<torch::Tensor>& current) {
      for (std::size_t i = 0; i < average.size(); ++i) {
        if (average[i].is_floating_point())
          average[i].mul_(d).add_(current[i], 1 - d);
        else
          average[i].copy_(current[i]);
      }
    };
    blend(averaged_->parameters(), live->parameters());
    blend(averaged_->buffers(), live->buffers());
  }

  Crnn& network() { return averaged_; }

 private:
  Crnn averaged_;
  double decay_;
};

// Layer sizes as the log and messages show them: "32,64".
std::string sizes(const std::vector<int>& values) {
  std::string out;
  for (int v : values) out += (out.empty() ? "" : ",") + std::to_string(v);
  return out;
}

// `o.model` grown from the loaded `o.init_model` as `o.grow` asks: its sizes checked, none
// smaller than the loaded model's.
ModelConfig grown_config(const TrainOptions& o) {
  ModelConfig grown = o.model;
  const auto refuse = [&](const std::string& has, const std::string& rule, const std::string& asked) {
    throw ConfigError(o.init_model + " has " + has + "; growing " + rule + " (asked for " + asked + ")");
  };
  if (o.grow.features > 0) {
    if (o.grow.features < grown.dense)
      refuse(std::to_string(grown.dense) + " features per time step", "cannot make them fewer",
             std::to_string(o.grow.features));
    grown.dense = o.grow.features;
  }
  if (!o.grow.conv_channels.empty()) {
    const auto& has = grown.conv_channels;
    const auto& asked = o.grow.conv_channels;
    bool smaller = asked.size() < has.size();
    for (std::size_t i = 0; i < asked.size(); ++i)
      smaller = smaller || asked[i] < (i < has.size() ? has[i] : has.back());
    if (smaller)
      refuse("convolutions " + sizes(has),
             "keeps each as wide or wider and adds ones at least " + std::to_string(has.back()) + " wide", sizes(asked));
    grown.conv_channels = asked;
  }
  if (!o.grow.rnn_hidden.empty()) {
    const auto& has = grown.rnn_hidden;
    const auto& asked = o.grow.rnn_hidden;
    bool smaller = asked.size() != has.size();
    for (std::size_t i = 0; i < asked.size() && i < has.size(); ++i) smaller = smaller || asked[i] < has[i];
    if (smaller) refuse("BiRNN layers " + sizes(has), "keeps their number and each as wide or wider", sizes(asked));
    grown.rnn_hidden = asked;
  }
  grown.validate();
  return grown;
}

// Copies `source` weights into `network`; when the charsets differ, the classifier rows of the
// symbols both share are copied and the others keep their fresh initialisation. A network grown
// from the source's (`grown`, see ModelGrowth) gets the loaded weights in place and fresh, unread
// units beside them.
void initialise_from(Crnn& network, const ModelFile& source, const Charset& charset, const std::string& path,
                     const ModelConfig& grown, int input_height) {
  const auto fresh = export_weights(network);
  const bool growing = nlohmann::json(grown) != nlohmann::json(source.config);
  auto tensors = growing ? grow_weights(source, grown, fresh, input_height, path) : source.tensors;
  if (source.charset.symbols() == charset.symbols()) {
    import_weights(network, tensors, path);
    return;
  }
  for (const char* name : {"classifier.weight", "classifier.bias"}) {
    const Tensor& old_tensor = tensors.at(name);
    Tensor mapped = fresh.at(name);
    const std::size_t row_bytes = mapped.bytes.size() / mapped.shape[0];
    const auto copy_row = [&](int to, int from) {
      std::memcpy(mapped.bytes.data() + to * row_bytes, old_tensor.bytes.data() + from * row_bytes, row_bytes);
    };
    copy_row(Charset::kBlank, Charset::kBlank);
    for (int c = 1; c < charset.num_classes(); ++c) {
      const int old_class = source.charset.class_of(charset.symbol_of(c));
      if (old_class > 0) copy_row(c, old_class);
    }
    tensors[name] = std::move(mapped);
  }
  import_weights(network, tensors, path);
}

// The training folders as the log and error messages name them: "a", or "a + b".
std::string train_folders(const TrainOptions& o) {
  std::string out;
  for (const auto& folder : o.train_dirs) out += (out.empty() ? "" : " + ") + folder;
  return out;
}

void print_settings(std::ostream& log, const TrainOptions& o, const Charset& charset,
                    const LoadedDataset& train_set, const LoadedDataset& val_set, int time_steps,
                    std::int64_t parameters, bool augmenting) {
  const auto row = [&](const std::string& key, const std::string& value) {
    log << "  " << std::left << std::setw(16) << key << value << std::right << "\n";
  };
  log << "captcha-ocr train\n";
  row("train", train_folders(o) + " (" + std::to_string(train_set.size()) + " images)");
  row("validation", (o.val_dir.empty() ? train_folders(o) + " (held out " + std::to_string(std::lround(100 * o.val_fraction)) + "%)" : o.val_dir) +
                        " (" + std::to_string(val_set.size()) + " images)");
  if (!o.init_model.empty()) row("starting model", o.init_model + (o.grow.empty() ? "" : ", grown to the model below"));
  row("charset", charset.symbols_utf8() + " (" + std::to_string(charset.size()) + (o.fold_case ? ", case folded)" : ")"));
  row("input", std::to_string(o.preprocess.width) + "x" + std::to_string(o.preprocess.height) +
                   (o.preprocess.resize == ResizeMode::kStretch ? " stretch" : " keep-aspect") +
                   (o.preprocess.auto_crop ? ", auto-crop" : "") + (o.preprocess.strong ? ", strong" : "") +
                   ", " + std::to_string(time_steps) + " time steps" +
                   (o.fit_input_size ? ", size fitted to the training images" : ""));
  const std::string backbone = o.model.arch == "small" ? "small (conv " + sizes(o.model.conv_channels) +
                                                             (o.fit_convolutions ? ", fitted to the training set)" : ")")
                                                       : o.model.arch;
  row("model", backbone + ", " + std::to_string(o.model.dense) + " features" +
                   (o.fit_features ? " (fitted to the training set)" : "") + " + " + o.model.rnn + " (" +
                   sizes(o.model.rnn_hidden) + (o.fit_rnn_hidden ? ", fitted" : "") + "), " + std::to_string(parameters) +
                   " parameters");
  std::ostringstream optimisation;
  optimisation << o.optimizer << " lr " << o.learning_rate << ", batch " << o.batch_size << ", clip " << o.clip_grad_norm;
  if (o.confidence_penalty > 0)
    optimisation << ", confidence penalty " << o.confidence_penalty
                 << (o.fit_confidence_penalty ? " (fitted to the training set)" : "");
  if (o.augment && augmenting)
    optimisation << ", augment (" << o.augment_style << ")"
                 << (o.fit_augment_start ? " from the first batch (fitted to the training set)" : "");
  if (o.augment && !augmenting)
    optimisation << ", augment (" << o.augment_style << ") once val CER < " << o.augment_after_cer << " or train loss <= val loss";
  row("optimisation", optimisation.str());
  std::ostringstream schedule;
  if (o.epochs > 0)
    schedule << "max " << o.epochs << " epochs" << (o.time_limit_minutes > 0 ? " or " : "");
  else
    schedule << "the epochs that fit in ";
  if (o.time_limit_minutes > 0) schedule << format_duration(o.time_limit_minutes * 60);
  schedule << ", early stop after " << o.patience << ", ";
  if (o.schedule == "cosine")
    schedule << o.warmup_epochs << " warm-up epochs then cosine to " << o.min_learning_rate;
  else
    schedule << "lr x" << o.lr_factor << " after " << o.lr_patience << " flat epochs";
  if (o.ema_decay > 0) schedule << ", weight average (EMA " << o.ema_decay << ")";
  row("schedule", schedule.str());
  row("seed, threads", std::to_string(o.seed) + ", " + std::to_string(torch::get_num_threads()) + "; " +
                           blas_description());
  row("output", o.out_dir);
  if (!train_set.skipped.summary().empty()) log << "  warning: train: " << train_set.skipped.summary() << "\n";
  if (!val_set.skipped.summary().empty()) log << "  warning: validation: " << val_set.skipped.summary() << "\n";
}

// Refuses, before any long work, labels the network cannot emit; skips a few outliers.
void check_time_steps(const std::vector<Sample>& samples, const Charset& charset, bool fold_case,
                      const TrainOptions& o, int time_steps) {
  std::size_t too_long = 0;
  int worst = 0;
  std::string worst_label;
  for (const auto& sample : samples) {
    if (!is_valid_utf8(sample.label)) continue;  // counted as skipped when loading
    const std::string label = fold_case ? fold_label(sample.label) : sample.label;
    std::vector<int> encoded;
    try {
      encoded = charset.encode(label);
    } catch (const ConfigError&) {
      continue;  // counted as outside the charset when loading
    }
    const int needed = required_time_steps(encoded);
    if (needed > time_steps) ++too_long;
    if (needed > worst) worst = needed, worst_label = label;
  }
  if (too_long * 20 > samples.size())
    throw ConfigError(std::to_string(too_long) + " of " + std::to_string(samples.size()) +
                      " training labels need more CTC time steps than the model has (" +
                      std::to_string(time_steps) + " for a " + std::to_string(o.preprocess.width) +
                      "-pixel-wide input; \"" + worst_label + "\" needs " + std::to_string(worst) +
                      "): use --width " + std::to_string(4 * worst) + " or more");
}

}  // namespace

void request_stop() { g_stop_requested = true; }

bool augments_from_start(std::size_t training_images) { return training_images >= kWideTrainingSet; }

double fitted_confidence_penalty(std::size_t training_images) {
  return training_images >= kWideTrainingSet ? kLargeSetConfidencePenalty : 0.0;
}

// Absent fields (runs saved before session 27 kept no growth) read as not grown.
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(ModelGrowth, features, conv_channels, rnn_hidden)

void to_json(nlohmann::json& j, const TrainOptions& o) {
  j = {{"train_dirs", o.train_dirs}, {"val_dir", o.val_dir}, {"val_fraction", o.val_fraction},
       {"charset", o.charset}, {"fold_case", o.fold_case}, {"out_dir", o.out_dir},
       {"model", o.model}, {"preprocess", o.preprocess}, {"fit_input_size", o.fit_input_size},
       {"fit_features", o.fit_features}, {"fit_convolutions", o.fit_convolutions},
       {"fit_rnn_hidden", o.fit_rnn_hidden}, {"fit_augment_start", o.fit_augment_start},
       {"fit_confidence_penalty", o.fit_confidence_penalty}, {"epochs", o.epochs},
       {"batch_size", o.batch_size}, {"learning_rate", o.learning_rate}, {"optimizer", o.optimizer},
       {"momentum", o.momentum}, {"weight_decay", o.weight_decay}, {"clip_grad_norm", o.clip_grad_norm},
       {"confidence_penalty", o.confidence_penalty},
       {"patience", o.patience}, {"schedule", o.schedule}, {"warmup_epochs", o.warmup_epochs},
       {"lr_patience", o.lr_patience}, {"lr_factor", o.lr_factor},
       {"min_learning_rate", o.min_learning_rate}, {"ema_decay", o.ema_decay}, {"augment", o.augment},
       {"augment_style", o.augment_style}, {"augment_after_cer", o.augment_after_cer}, {"seed", o.seed},
       {"init_model", o.init_model}, {"time_limit_minutes", o.time_limit_minutes},
       {"checkpoint_minutes", o.checkpoint_minutes}, {"grow", o.grow}};
}

void from_json(const nlohmann::json& j, TrainOptions& o) {
  o = TrainOptions{};
  // Runs saved before several training folders were allowed name one.
  if (j.contains("train_dirs"))
    o.train_dirs = j.at("train_dirs").get<std::vector<std::string>>();
  else if (j.contains("train_dir"))
    o.train_dirs = {j.at("train_dir").get<std::string>()};
  o.val_dir = j.value("val_dir", o.val_dir);
  o.val_fraction = j.value("val_fraction", o.val_fraction);
  o.charset = j.value("charset", o.charset);
  o.fold_case = j.value("fold_case", o.fold_case);
  o.out_dir = j.value("out_dir", o.out_dir);
  if (j.contains("model")) o.model = j.at("model").get<ModelConfig>();
  if (j.contains("preprocess")) o.preprocess = j.at("preprocess").get<PreprocessOptions>();
  o.fit_input_size = j.value("fit_input_size", o.fit_input_size);
  o.fit_features = j.value("fit_features", o.fit_features);
  o.fit_convolutions = j.value("fit_convolutions", o.fit_convolutions);
  o.fit_rnn_hidden = j.value("fit_rnn_hidden", o.fit_rnn_hidden);
  o.fit_augment_start = j.value("fit_augment_start", o.fit_augment_start);
  o.fit_confidence_penalty = j.value("fit_confidence_penalty", o.fit_confidence_penalty);
  o.epochs = j.value("epochs", o.epochs);
  o.batch_size = j.value("batch_size", o.batch_size);
  o.learning_rate = j.value("learning_rate", o.learning_rate);
  o.optimizer = j.value("optimizer", o.optimizer);
  o.momentum = j.value("momentum", o.momentum);
  o.weight_decay = j.value("weight_decay", o.weight_decay);
  o.clip_grad_norm = j.value("clip_grad_norm", o.clip_grad_norm);
  o.confidence_penalty = j.value("confidence_penalty", o.confidence_penalty);
  o.patience = j.value("patience", o.patience);
  // Checkpoints written before these settings existed trained with the plateau schedule, no EMA.
  o.schedule = j.value("schedule", std::string("plateau"));
  o.warmup_epochs = j.value("warmup_epochs", o.warmup_epochs);
  o.ema_decay = j.value("ema_decay", 0.0);
  o.lr_patience = j.value("lr_patience", o.lr_patience);
  o.lr_factor = j.value("lr_factor", o.lr_factor);
  o.min_learning_rate = j.value("min_learning_rate", o.min_learning_rate);
  o.augment = j.value("augment", o.augment);
  o.augment_style = j.value("augment_style", std::string("light"));  // the only style before session 15
  o.augment_after_cer = j.value("augment_after_cer", 1.0);  // older runs augmented from the start
  o.seed = j.value("seed", o.seed);
  o.init_model = j.value("init_model", o.init_model);
  o.time_limit_minutes = j.value("time_limit_minutes", o.time_limit_minutes);
  o.checkpoint_minutes = j.value("checkpoint_minutes", o.checkpoint_minutes);
  o.grow = j.value("grow", o.grow);
}

TrainOptions options_from_checkpoint(const std::string& run_dir) {
  const std::string path = (fs::path(run_dir) / "last.safetensors").string();
  const ModelFile checkpoint = load_model(path);
  if (!checkpoint.checkpoint.is_object() || !checkpoint.checkpoint.contains("options"))
    throw ModelFileError(path + ": not a training checkpoint (no trainer state)");
  TrainOptions options = checkpoint.checkpoint.at("options").get<TrainOptions>();
  options.resume_dir = run_dir;
  options.out_dir = run_dir;
  return options;
}

TrainSummary train(const TrainOptions& input_options, std::ostream& log) {
  const auto start_time = Clock::now();
  TrainOptions o = input_options;
  g_stop_requested = false;
  configure_training_process(o.threads);
  if (o.epochs < 0 || (o.epochs == 0 && !(o.time_limit_minutes > 0)))
    throw ConfigError("--epochs must be at least 1 (or 0 under a --time-limit)");
  if (o.batch_size < 1) throw ConfigError("--batch-size must be at least 1");
  if (!(o.learning_rate > 0)) throw ConfigError("--lr must be positive");
  if (o.patience < 1) throw ConfigError("--patience must be at least 1");
  if (o.optimizer != "adam" && o.optimizer != "sgd")
    throw ConfigError("unknown optimizer '" + o.optimizer + "' (expected adam or sgd)");
  if (o.schedule != "cosine" && o.schedule != "plateau")
    throw ConfigError("unknown schedule '" + o.schedule + "' (expected cosine or plateau)");
  if (!(o.warmup_epochs >= 0)) throw ConfigError("--warmup must not be negative");
  if (!(o.ema_decay >= 0 && o.ema_decay < 1)) throw ConfigError("--ema must be in [0, 1)");
  if (!(o.confidence_penalty >= 0 && o.confidence_penalty <= 10))
    throw ConfigError("--confidence-penalty must be in [0, 10]");
  if (o.augment_style != "light" && o.augment_style != "captcha")
    throw ConfigError("unknown augmentation style '" + o.augment_style + "' (expected light or captcha)");
  if (!(o.augment_after_cer >= 0)) throw ConfigError("--augment-after-cer must not be negative");
  if (!(o.time_limit_minutes >= 0)) throw ConfigError("--time-limit must not be negative");
  if (!(o.checkpoint_minutes >= 0)) throw ConfigError("--checkpoint-every must not be negative");
  if (o.out_dir.empty()) throw ConfigError("an output folder (--out) is needed");

  // Starting points fix the charset, preprocessing and architecture.
  ModelFile resume_from, init_from;
  TrainerState state;
  const bool resuming = !o.resume_dir.empty();
  const std::string resume_path = (fs::path(o.resume_dir) / "last.safetensors").string();
  if (resuming) {
    resume_from = load_model(resume_path);
    if (!resume_from.checkpoint.is_object()) throw ModelFileError(resume_path + ": not a training checkpoint");
    state = state_from_json(resume_from.checkpoint.at("state"));
    o.model = resume_from.config;
    o.preprocess = resume_from.preprocess;
    o.fold_case = resume_from.fold_case;
  } else if (!o.init_model.empty()) {
    init_from = load_model(o.init_model);
    o.model = init_from.config;
    o.preprocess = init_from.preprocess;
    if (!o.grow.empty()) {
      if (o.model.arch != "small") throw ConfigError("growing a network is for the small network only");
      o.model = grown_config(o);
    }
  } else if (!o.grow.empty()) {
    throw ConfigError("growing a network needs a starting model (--init)");
  }
  o.model.validate();
  nlohmann::json(o.preprocess).get<PreprocessOptions>();  // validates the input size

  if (o.train_dirs.empty()) throw ConfigError("no training folder");
  // Output folder writable before long work.
  std::error_code ec;
  fs::create_directories(o.out_dir, ec);
  {
    const fs::path probe = fs::path(o.out_dir) / ".write-test";
    std::ofstream out(probe);
    if (!out) throw ConfigError(o.out_dir + ": output folder is not writable");
    out.close();
    fs::remove(probe, ec);
  }

  // Data.
  std::vector<Sample> train_samples, val_samples;
  for (const auto& folder : o.train_dirs) {
    std::vector<Sample> samples = scan_folder(folder);
    train_samples.insert(train_samples.end(), std::make_move_iterator(samples.begin()),
                         std::make_move_iterator(samples.end()));
  }
  if (!o.val_dir.empty()) {
    val_samples = scan_folder(o.val_dir);
  } else {
    std::vector<Sample> kept;
    split_samples(train_samples, o.val_fraction, o.seed, kept, val_samples);
    train_samples = std::move(kept);
  }
  // Sizes are fitted to the data only from scratch: fine-tuning and resuming keep their model's.
  const bool from_scratch = !resuming && o.init_model.empty();
  o.fit_input_size = o.fit_input_size && from_scratch;
  o.fit_features = o.fit_features && from_scratch && o.model.arch == "small";
  o.fit_convolutions = o.fit_convolutions && from_scratch && o.model.arch == "small";
  o.fit_rnn_hidden = o.fit_rnn_hidden && from_scratch && o.model.arch == "small";
  if (o.fit_input_size) fit_input_size(o.preprocess, median_image_size(train_samples));
  if (o.fit_features) o.model.dense = fitted_features(train_samples.size());
  if (o.fit_convolutions) o.model.conv_channels = fitted_conv_channels(train_samples.size());
  if (o.fit_rnn_hidden) o.model.rnn_hidden = fitted_rnn_hidden(train_samples.size());
  o.fit_augment_start = o.fit_augment_start && from_scratch && augments_from_start(train_samples.size());
  if (o.fit_augment_start) o.augment_after_cer = 1;
  o.fit_confidence_penalty = o.fit_confidence_penalty && from_scratch;
  if (o.fit_confidence_penalty) o.confidence_penalty = fitted_confidence_penalty(train_samples.size());
  if (!resuming) state.augmenting = o.augment && (o.augment_after_cer >= 1 || !o.init_model.empty());
  Charset charset;
  if (resuming) {
    charset = resume_from.charset;
  } else if (!o.charset.empty()) {
    charset = Charset::from_spec(o.charset);
  } else {
    // From the labels, also when fine-tuning (--init): the rows of the symbols the starting
    // model knows are copied, so the model learns exactly the alphabet of the new data.
    std::vector<std::string> labels;
    for (const auto& s : train_samples)
      if (is_valid_utf8(s.label)) labels.push_back(o.fold_case ? fold_label(s.label) : s.label);
    charset = Charset::from_labels(labels);
  }
  const int time_steps = output_time_steps(o.model, o.preprocess.width);
  check_time_steps(train_samples, charset, o.fold_case, o, time_steps);
  LoadOptions load_options;
  load_options.max_time_steps = time_steps;
  load_options.fold_case = o.fold_case;
  load_options.threads = o.threads;
  const LoadedDataset train_set = load_dataset(train_samples, charset, o.preprocess, load_options, train_folders(o));
  const LoadedDataset val_set = load_dataset(val_samples, charset, o.preprocess, load_options,
                                             o.val_dir.empty() ? train_folders(o) + " (validation part)" : o.val_dir);

  // Readings are held to the label lengths seen in training, as the recogniser does; the mean
  // length sets the blank's starting share below.
  LengthRange label_lengths{1 << 30, 0};
  std::size_t label_symbols = 0;
  for (const auto& target : train_set.targets) {
    label_symbols += target.size();
    label_lengths.min = std::min(label_lengths.min, static_cast<int>(target.size()));
    label_lengths.max = std::max(label_lengths.max, static_cast<int>(target.size()));
  }

  // Network and optimizer.
  torch::manual_seed(o.seed);
  Crnn network(o.model, charset.num_classes(), o.preprocess.height);
  if (resuming) {
    import_weights(network, resume_from.tensors, resume_path);
  } else if (!o.init_model.empty()) {
    initialise_from(network, init_from, charset, o.init_model, o.model, o.preprocess.height);
    const std::size_t loaded_convolutions = init_from.config.conv_channels.size();
    if (o.model.conv_channels.size() > loaded_convolutions) {  // only a grown small network adds any
      // The added convolutions' batch norms measured on the first training images, unaugmented.
      std::vector<std::size_t> first(std::min<std::size_t>(train_set.size(), 256));
      std::iota(first.begin(), first.end(), 0);
      network->pass_through_norms(make_batch(train_set, first, 0, first.size(), o.preprocess, nullptr).images,
                                  loaded_convolutions, init_from.config.conv_channels.back());
    }
  } else {
    // Before training, the blank gets the share of the time steps it takes in an alignment of
    // an average label: the network starts where CTC's first hundred steps would take it.
    const double mean_length = static_cast<double>(label_symbols) / static_cast<double>(train_set.targets.size());
    network->set_blank_share(std::max(0.05, 1 - mean_length / time_steps));
  }
  network->train();
  std::optional<WeightAverage> average;
  if (o.ema_decay > 0) {
    average.emplace(Crnn(o.model, charset.num_classes(), o.preprocess.height), o.ema_decay);
    std::map<std::string, Tensor> stored;
    if (resuming)
      for (const auto& [name, t] : resume_from.tensors)
        if (name.rfind(kAverageTensorPrefix, 0) == 0) stored.emplace(name.substr(std::strlen(kAverageTensorPrefix)), t);
    import_weights(average->network(), stored.empty() ? export_weights(network) : stored, resume_path);
  }
  // Validation, best and final use the average where there is one.
  Crnn evaluated = average ? average->network() : network;
  auto optimizer = make_optimizer(o, network);
  if (resuming) {
    const auto it = resume_from.tensors.find("optimizer_state");
    if (it == resume_from.tensors.end())
      throw ModelFileError(resume_path + ": no optimizer state");
    std::istringstream bytes(std::string(it->second.bytes.begin(), it->second.bytes.end()));
    torch::load(*optimizer, bytes);
    state.metrics_rows = read_metrics_rows(fs::path(o.out_dir) / "metrics.csv", state.epochs_completed);
  } else {
    state.learning_rate = o.learning_rate;
  }
  set_learning_rate(*optimizer, state.learning_rate);
  std::int64_t parameters = 0;
  for (const auto& p : network->parameters()) parameters += p.numel();
  print_settings(log, o, charset, train_set, val_set, time_steps, parameters, state.augmenting);
  if (resuming) log << "  resuming after epoch " << state.epochs_completed << "\n";

  TrainSummary summary;
  const fs::path out_dir(o.out_dir);
  summary.best_model = (out_dir / "best.safetensors").string();
  summary.final_model = (out_dir / "final.safetensors").string();
  summary.last_checkpoint = (out_dir / "last.safetensors").string();

  // A model file of `weights` with the run's description.
  const auto model_file = [&](const Validation& figures, int epoch, Crnn& weights) {
    ModelFile m;
    m.charset = charset;
    m.fold_case = o.fold_case;
    m.label_lengths = label_lengths;
    m.preprocess = o.preprocess;
    m.config = o.model;
    m.training = {{"epochs", epoch},
                  {"val_exact_match", figures.exact_match},
                  {"val_cer", figures.cer},
                  {"val_loss", figures.loss},
                  {"train_dirs", o.train_dirs},
                  {"val_dir", o.val_dir.empty() ? train_folders(o) + " (held out)" : o.val_dir},
                  {"train_images", train_set.size()},
                  {"val_images", val_set.size()},
                  {"optimizer", o.optimizer},
                  {"batch_size", o.batch_size},
                  {"seed", o.seed},
                  {"training_seconds", state.elapsed_seconds + seconds_since(start_time)},
                  {"date", now_iso8601()}};
    m.tensors = export_weights(weights);
    return m;
  };
  // `last` holds the raw weights under their own names (so that it loads as a model), the
  // average under "ema.", the optimizer state and dropout's generator; `part`, where the run stops
  // inside an epoch, says how far into it.
  const auto save_last = [&](const Validation& figures, const TrainerState::PartEpoch& part = {}) {
    ModelFile m = model_file(figures, state.epochs_completed, network);
    if (average)
      for (auto& [name, t] : export_weights(average->network()))
        m.tensors.emplace(kAverageTensorPrefix + name, std::move(t));
    std::ostringstream bytes;
    torch::save(*optimizer, bytes);
    m.tensors["optimizer_state"] = byte_tensor(bytes.str());
    m.tensors[kTorchGeneratorTensor] = torch_generator_state();
    TrainerState saved = state;
    saved.elapsed_seconds = state.elapsed_seconds + seconds_since(start_time);
    saved.part_epoch = part;
    // The folders absolute, so that --resume works from any working folder.
    TrainOptions stored = o;
    for (auto& folder : stored.train_dirs) folder = fs::absolute(folder).string();
    if (!stored.val_dir.empty()) stored.val_dir = fs::absolute(stored.val_dir).string();
    m.checkpoint = {{"state", state_to_json(saved)}, {"options", stored}};
    save_model(summary.last_checkpoint, m);
  };

  // Best and final read kMaxReadingViews views of each image by default (test-time augmentation)
  // where, summed over both, those read more of the validation images right than the images
  // alone: the best model's one-view figure is a maximum over epochs, so alone it would favour one
  // view. eval and predict --views override the choice. Returns best's and final's validation
  // figures, each read as it will be read (in one view best is never behind).
  struct ReadAsChosen {
    Validation best, final;
  };
  const auto fit_reading_views = [&](Crnn& best_weights, ModelFile& best, Crnn& final_weights,
                                     ModelFile& final) -> ReadAsChosen {
    double single = 0, viewed = 0;
    Validation one[2], seven[2];
    std::ostringstream line;
    line << std::fixed << std::setprecision(2) << "reading views: " << kMaxReadingViews
         << " views of each validation image read";
    Crnn* const weights[2] = {&best_weights, &final_weights};
    ModelFile* const files[2] = {&best, &final};
    const char* const names[2] = {"best", "final"};
    for (int k = 0; k < 2; ++k) {
      nlohmann::json& training = files[k]->training;
      seven[k] = validate(*weights[k], val_set, charset, o.preprocess, label_lengths, kMaxReadingViews);
      training["val_exact_match_views"] = seven[k].exact_match;
      training["val_cer_views"] = seven[k].cer;
      one[k] = {training.value("val_loss", 0.0), training.at("val_exact_match").get<double>(),
                training.value("val_cer", 0.0)};
      single += one[k].exact_match;
      viewed += seven[k].exact_match;
      line << " " << 100 * seven[k].exact_match << "% (" << names[k] << "; one view " << 100 * one[k].exact_match << "%)";
    }
    const bool views = viewed > single;
    best.reading_views = final.reading_views = views ? kMaxReadingViews : 1;
    line << "; both read " << best.reading_views << (views ? " views" : " view") << " by default\n";
    log << line.str();
    const Validation* figures = views ? seven : one;
    return {figures[0], figures[1]};
  };

  const bool tty = &log == &std::cerr && isatty(STDERR_FILENO);
  ProgressBar bar(log, tty);
  std::vector<std::size_t> order(train_set.size());
  // The figures of the weights `final` would hold: on resuming, the checkpoint's own.
  Validation last_validation = state.best;
  if (resuming && resume_from.training.contains("val_exact_match"))
    last_validation = {resume_from.training.value("val_loss", state.best.loss),
                       resume_from.training.at("val_exact_match").get<double>(),
                       resume_from.training.value("val_cer", state.best.cer)};
  double epoch_seconds_sum = 0;
  double validation_seconds = 0;  // the last validation's
  int epochs_this_run = 0;
  // Steps skipped for a non-finite loss or gradient: the first few are logged one by one.
  constexpr int kReportedSkips = 3;
  int skipped_steps = 0;
  const auto batches_per_epoch = (train_set.size() + o.batch_size - 1) / o.batch_size;

  // A run resumed under a time limit keeps the schedule it had (at most --epochs).
  state.planned_epochs = o.time_limit_minutes > 0 && state.planned_epochs > 0
                             ? std::min(state.planned_epochs, epoch_limit(o))
                             : epoch_limit(o);
  auto last_save = Clock::now();
  for (int epoch = state.epochs_completed + 1; epoch <= state.planned_epochs; ++epoch) {
    const auto epoch_start = Clock::now();
    std::mt19937_64 rng(o.seed * 1000003ULL + static_cast<std::uint64_t>(epoch));
    const Augmenter augment = o.augment_style == "captcha"
                                  ? Augmenter([&rng](const cv::Mat& image) { return augment_captcha(image, rng); })
                                  : Augmenter([&rng, &o](const cv::Mat& image) {
                                      return augment_light(image, rng, o.preprocess);
                                    });
    torch::manual_seed(o.seed * 1000003ULL + static_cast<std::uint64_t>(epoch));
    std::iota(order.begin(), order.end(), 0);
    for (std::size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[rng() % i]);

    // A run saved part-way through this epoch goes on from the step after the last one it took,
    // with the generators as they were then: it trains exactly as a run never stopped would. One
    // stopped during the epoch's last step saved all its batches and goes on with the validation.
    TrainerState::PartEpoch part = std::exchange(state.part_epoch, {});
    if (part.batches_done > 0) {
      const std::string saved_part = resume_path + ": saved part-way through epoch " + std::to_string(epoch);
      const auto generator = resume_from.tensors.find(kTorchGeneratorTensor);
      if (generator == resume_from.tensors.end()) throw ModelFileError(saved_part + " without the generator's state");
      if (part.batches_done > static_cast<std::int64_t>(batches_per_epoch))
        throw ModelFileError(saved_part + " after batch " + std::to_string(part.batches_done) + ", but the epoch now has " +
                             std::to_string(batches_per_epoch) + " (has the training folder changed?)");
      std::istringstream saved_generator(part.shuffle_generator);
      if (!(saved_generator >> rng))
        throw ModelFileError(resume_path + ": the epoch's generator state is unreadable");
      set_torch_generator_state(generator->second, resume_path);
      log << "  resuming epoch " << epoch << " after batch " << part.batches_done << " of " << batches_per_epoch << "\n";
    }
    double& loss_sum = part.loss_sum;
    // Seconds spent on this epoch's steps, before a resume included.
    const auto seconds_in_epoch = [&] { return part.seconds + seconds_since(epoch_start); };
    std::int64_t& seen = part.seen;
    std::int64_t& skipped_this_epoch = part.skipped;
    // Saves the state after `batches` batches of this epoch.
    const auto save_part = [&](std::int64_t batches) {
      TrainerState::PartEpoch saved;
      if (batches > 0) {
        saved = part;
        saved.batches_done = batches;
        saved.seconds = seconds_in_epoch();
        std::ostringstream generator;
        generator << rng;
        saved.shuffle_generator = generator.str();
      }
      save_last(last_validation, saved);
      last_save = Clock::now();
    };
    std::int64_t b = part.batches_done;
    for (; b < static_cast<std::int64_t>(batches_per_epoch); ++b) {
      if (g_stop_requested) break;
      if (b > part.batches_done && o.checkpoint_minutes > 0 && seconds_since(last_save) >= 60 * o.checkpoint_minutes) {
        save_part(b);
        // Also the run's progress where no bar shows it (a log file).
        if (!o.quiet) {
          bar.clear();
          log << "  epoch " << epoch << " batch " << b << "/" << batches_per_epoch << std::fixed << std::setprecision(4)
              << " | train loss " << loss_sum / std::max<std::int64_t>(seen, 1) << std::setprecision(0) << " | "
              << seen / seconds_in_epoch() << " img/s | saved to last.safetensors\n";
        }
      }
      const std::size_t start = b * o.batch_size;
      const std::size_t count = std::min<std::size_t>(o.batch_size, train_set.size() - start);
      const Batch batch =
          make_batch(train_set, order, start, count, o.preprocess, state.augmenting ? &augment : nullptr);
      const auto step = static_cast<std::int64_t>((epoch - 1) * batches_per_epoch + b);
      if (o.schedule == "cosine") {
        state.learning_rate = cosine_learning_rate(o, state.planned_epochs, step, batches_per_epoch);
        set_learning_rate(*optimizer, state.learning_rate);
      }
      optimizer->zero_grad();
      const auto log_probs = torch::log_softmax(network->forward(batch.images), 2);
      const auto loss = ctc_loss(log_probs, batch);  // reported; the penalty only steers the step
      const double batch_loss = loss.item<double>();
      double gradient_norm = std::numeric_limits<double>::quiet_NaN();
      if (std::isfinite(batch_loss)) {
        (o.confidence_penalty > 0 ? loss + o.confidence_penalty * negative_entropy(log_probs) : loss).backward();
        gradient_norm = torch::nn::utils::clip_grad_norm_(
            network->parameters(), o.clip_grad_norm > 0 ? o.clip_grad_norm : std::numeric_limits<double>::infinity());
      }
      // A step with a non-finite loss or gradient would leave every weight NaN for the rest of the
      // run (Adam's moments keep it): skip it, as mixed-precision trainers do.
      if (!std::isfinite(gradient_norm)) {
        if (++skipped_steps <= kReportedSkips) {
          bar.clear();  // the note on a line of its own, not after the bar
          log << "epoch " << epoch << " step " << b + 1 << ": non-finite " << (std::isfinite(batch_loss) ? "gradient" : "loss")
              << " (loss " << batch_loss << "); step skipped\n";
        }
        ++skipped_this_epoch;
        continue;
      }
      optimizer->step();
      if (average) average->update(network, step);
      loss_sum += batch_loss * count;
      seen += static_cast<std::int64_t>(count);
      bar.update(b + 1, batches_per_epoch, loss_sum / seen);
      if (o.on_step) o.on_step(epoch, b + 1);
    }
    bar.clear();
    if (g_stop_requested) {
      save_part(b);
      summary.interrupted = true;
      log << "interrupted: state after ";
      if (b > 0) log << "batch " << b << " of " << batches_per_epoch << " in ";
      log << "epoch " << (b > 0 ? epoch : state.epochs_completed) << " saved to " << summary.last_checkpoint
          << "; continue with --resume " << o.out_dir << "\n";
      break;
    }
    if (seen == 0)
      throw Error("training diverged in epoch " + std::to_string(epoch) + ": every step had a non-finite loss or gradient (" +
                  o.out_dir + "/last.safetensors holds the epoch before); try a lower --lr");
    const double train_seconds = seconds_in_epoch();
    const auto validation_start = Clock::now();
    const Validation v = validate(evaluated, val_set, charset, o.preprocess, label_lengths);
    validation_seconds = seconds_since(validation_start);
    last_validation = v;
    state.epochs_completed = epoch;
    ++epochs_this_run;
    const double epoch_seconds = seconds_in_epoch();
    epoch_seconds_sum += epoch_seconds;

    // Jitter once the network reads nearly everything, or once it has begun to learn the training
    // images by heart: the epoch's training loss (taken with dropout, over the whole epoch) down
    // to the validation loss.
    const double train_loss = loss_sum / seen;
    if (o.augment && !state.augmenting && (v.cer < o.augment_after_cer || train_loss <= v.loss)) {
      state.augmenting = true;
      std::ostringstream note;
      note << "augmentation on from epoch " << epoch + 1 << std::fixed << std::setprecision(2);
      if (v.cer < o.augment_after_cer)
        note << " (validation CER " << 100 * v.cer << "%)\n";
      else
        note << std::setprecision(3) << " (training loss " << train_loss << " <= validation loss " << v.loss << ")\n";
      log << note.str();
    }
    const bool improved = is_better(v, state.best);
    if (improved) {
      state.best = v;
      state.best_epoch = epoch;
      state.epochs_since_best = 0;
      save_model(summary.best_model, model_file(v, epoch, evaluated));
    } else {
      ++state.epochs_since_best;
    }
    const double lr_used = state.learning_rate;
    if (o.schedule == "plateau") {  // the cosine schedule sets the rate per step
      if (v.loss < state.plateau_loss * (1 - 1e-3)) {
        state.plateau_loss = v.loss;
        state.plateau_epochs = 0;
      } else if (++state.plateau_epochs > o.lr_patience && state.learning_rate > o.min_learning_rate) {
        state.learning_rate = std::max(o.min_learning_rate, state.learning_rate * o.lr_factor);
        state.plateau_epochs = 0;
        set_learning_rate(*optimizer, state.learning_rate);
      }
    }

    const double images_per_second = seen / std::max(train_seconds, 1e-9);
    const double elapsed = state.elapsed_seconds + seconds_since(start_time);
    std::ostringstream row;
    row << epoch << ',' << loss_sum / seen << ',' << v.loss << ',' << v.exact_match << ',' << v.cer << ','
        << lr_used << ',' << images_per_second << ',' << elapsed;
    state.metrics_rows.push_back(row.str());
    std::string csv = kMetricsHeader;
    for (const auto& r : state.metrics_rows) csv += r + "\n";
    write_file_atomically((out_dir / "metrics.csv").string(), csv);
    write_png((out_dir / "curves.png").string(), draw_training_curves(parse_metrics_rows(state.metrics_rows)));

    if (o.time_limit_minutes > 0)
      fit_schedule_to_time_limit(o, epoch, std::max(epoch_seconds_sum / epochs_this_run, epoch_seconds), elapsed,
                                 kViewFitPasses * validation_seconds, state, log);
    const double eta = (state.planned_epochs - epoch) * epoch_seconds_sum / epochs_this_run;
    if (!o.quiet) {
      log << std::right << "epoch " << std::setw(3) << epoch << "/" << state.planned_epochs << std::fixed << std::setprecision(4)
          << " | train loss " << std::setw(8) << loss_sum / seen << " | val loss " << std::setw(8) << v.loss
          << std::setprecision(2) << " | val exact " << std::setw(6) << 100 * v.exact_match << "% | val CER "
          << std::setw(6) << 100 * v.cer << "% | lr " << std::scientific << std::setprecision(1) << lr_used
          << std::fixed << std::setprecision(0) << " | " << std::setw(4) << images_per_second << " img/s | "
          << format_duration(elapsed) << " elapsed | ETA " << format_duration(eta)
          << (improved ? " | * best" : "");
      if (skipped_this_epoch > 0) log << " | " << skipped_this_epoch << " steps skipped";
      log << "\n";
    }
    save_last(v);
    if (state.epochs_since_best >= o.patience) {
      log << "early stop: no better validation score for " << o.patience << " epochs\n";
      break;
    }
  }

  summary.epochs_completed = state.epochs_completed;
  summary.best_epoch = state.best_epoch;
  summary.best_val_exact_match = state.best.exact_match;
  summary.best_val_cer = state.best.cer;
  summary.seconds = state.elapsed_seconds + seconds_since(start_time);
  if (!summary.interrupted) {
    if (state.best_epoch == 0) save_model(summary.best_model, model_file(last_validation, state.epochs_completed, evaluated));
    ModelFile final_file = model_file(last_validation, state.epochs_completed, evaluated);
    ModelFile best_file = load_model(summary.best_model);
    Crnn best_network(o.model, charset.num_classes(), o.preprocess.height);
    import_weights(best_network, best_file.tensors, summary.best_model);
    // The epoch with the best one-view figures is a noisy pick (a maximum over epochs of 1,000
    // images' figures, at times while the learning rate is still high): where the final weights,
    // read as both will be read, do better, they are the best model.
    const ReadAsChosen read = fit_reading_views(best_network, best_file, evaluated, final_file);
    if (is_better(read.final, read.best)) {
      log << "best model: the final weights read the validation set better than epoch " << state.best_epoch
          << "'s (" << std::fixed << std::setprecision(2) << 100 * read.final.exact_match << "% against "
          << 100 * read.best.exact_match << "% in " << final_file.reading_views
          << (final_file.reading_views == 1 ? " view" : " views") << "), so best is the final model\n";
      best_file = final_file;
      summary.best_epoch = state.epochs_completed;
      summary.best_val_exact_match = last_validation.exact_match;
      summary.best_val_cer = last_validation.cer;
    }
    save_model(summary.best_model, best_file);
    save_model(summary.final_model, final_file);
    summary.seconds = state.elapsed_seconds + seconds_since(start_time);
    log << "done: " << state.epochs_completed << " epochs in " << format_duration(summary.seconds)
        << "; best validation exact match " << std::fixed << std::setprecision(2)
        << 100 * summary.best_val_exact_match << "% (CER " << 100 * summary.best_val_cer << "%, one view) at epoch "
        << summary.best_epoch << "\n  best:  " << summary.best_model << "\n  final: " << summary.final_model
        << "\n";
  }
  return summary;
}

}  // namespace captcha
