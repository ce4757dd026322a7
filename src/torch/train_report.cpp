// What a person reads while a run trains: the settings table, the progress bar, the epoch line.
#include "training.h"

#include <cmath>
#include <ctime>
#include <iomanip>
#include <ostream>
#include <sstream>

#include "captcha/training_process.h"

namespace captcha::training {

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

std::string sizes(const std::vector<int>& values) {
  std::string out;
  for (int v : values) out += (out.empty() ? "" : ",") + std::to_string(v);
  return out;
}

std::string train_folders(const TrainOptions& o) {
  std::string out;
  for (const auto& folder : o.train_dirs) out += (out.empty() ? "" : " + ") + folder;
  return out;
}

void ProgressBar::update(std::size_t done, std::size_t total, double loss) {
  if (!enabled_) return;
  constexpr int kWidth = 30;
  const int filled = static_cast<int>(kWidth * done / std::max<std::size_t>(total, 1));
  out_ << "\r  [" << std::string(filled, '#') << std::string(kWidth - filled, '.') << "] " << done << "/" << total
       << " loss " << std::fixed << std::setprecision(4) << loss << std::flush;
}

void ProgressBar::clear() {
  if (enabled_) out_ << "\r" << std::string(70, ' ') << "\r" << std::flush;
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
                   (o.fit.input_size ? ", size fitted to the training images" : ""));
  // The resnet's sizes are its own defaults, not fitted to the training set.
  const bool small = o.model.arch == Architecture::kSmall;
  const std::string backbone = small ? "small (conv " + sizes(o.model.conv_channels) +
                                                             (o.fit.convolutions ? ", fitted to the training set)" : ")")
                                                       : enum_name(o.model.arch, kArchitectureNames);
  row("model", backbone + ", " + std::to_string(o.model.dense) + " features" +
                   (o.fit.features && small ? " (fitted to the training set)" : "") + " + " + enum_name(o.model.rnn, kRnnTypeNames) + " (" +
                   sizes(o.model.rnn_hidden) + (o.fit.rnn_hidden && small ? ", fitted" : "") + "), " + std::to_string(parameters) +
                   " parameters");
  std::ostringstream optimisation;
  optimisation << enum_name(o.optimizer, kOptimizerNames) << " lr " << o.learning_rate << ", batch " << o.batch_size << ", clip " << o.clip_grad_norm;
  if (o.confidence_penalty > 0)
    optimisation << ", confidence penalty " << o.confidence_penalty
                 << (o.fit.confidence_penalty ? " (fitted to the training set)" : "");
  if (o.augment && augmenting)
    optimisation << ", augment (" << enum_name(o.augment_style, kAugmentStyleNames) << ")"
                 << (o.fit.augment_start ? " from the first batch (fitted to the training set)" : "");
  if (o.augment && !augmenting)
    optimisation << ", augment (" << enum_name(o.augment_style, kAugmentStyleNames) << ") once val CER < " << o.augment_after_cer << " or train loss <= val loss";
  row("optimisation", optimisation.str());
  std::ostringstream schedule;
  if (o.epochs > 0)
    schedule << "max " << o.epochs << " epochs" << (o.time_limit_minutes > 0 ? " or " : "");
  else
    schedule << "the epochs that fit in ";
  if (o.time_limit_minutes > 0) schedule << format_duration(o.time_limit_minutes * 60);
  schedule << ", early stop after " << o.patience << ", ";
  if (o.schedule == LrSchedule::kCosine)
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

std::string EpochReport::log_line() const {
  std::ostringstream log;
  log << std::right << "epoch " << std::setw(3) << epoch << "/" << planned_epochs << std::fixed << std::setprecision(4)
      << " | train loss " << std::setw(8) << train_loss << " | val loss " << std::setw(8) << validation.loss
      << std::setprecision(2) << " | val exact " << std::setw(6) << 100 * validation.exact_match << "% | val CER "
      << std::setw(6) << 100 * validation.cer << "% | lr " << std::scientific << std::setprecision(1) << learning_rate
      << std::fixed << std::setprecision(0) << " | " << std::setw(4) << images_per_second << " img/s | "
      << format_duration(elapsed_seconds) << " elapsed | ETA " << format_duration(eta_seconds)
      << (improved ? " | * best" : "");
  if (skipped_steps > 0) log << " | " << skipped_steps << " steps skipped";
  log << "\n";
  return log.str();
}

std::string EpochReport::metrics_row() const {
  std::ostringstream row;
  row << epoch << ',' << train_loss << ',' << validation.loss << ',' << validation.exact_match << ','
      << validation.cer << ',' << learning_rate << ',' << images_per_second << ',' << elapsed_seconds;
  return row.str();
}

}  // namespace captcha::training
