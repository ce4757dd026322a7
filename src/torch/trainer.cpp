// The CTC trainer: one run as a Trainer, whose steps each take a part of the run: the starting
// points and data, the network, an epoch's steps, its validation and reports, and the choice of
// the models it leaves. The parts they use are in training.h.
#include "captcha/trainer.h"

#include <unistd.h>

#include <atomic>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <limits>
#include <numeric>
#include <optional>
#include <random>
#include <sstream>
#include <utility>

#include "captcha/atomic_file.h"
#include "captcha/augment.h"
#include "captcha/errors.h"
#include "captcha/plots.h"
#include "captcha/training_process.h"
#include "captcha/utf8.h"
#include "training.h"

namespace fs = std::filesystem;

namespace captcha {

namespace {

using namespace training;

std::atomic<bool> g_stop_requested{false};

// An epoch's progress: the part of it done before a resume, and the steps taken since.
struct EpochProgress {
  TrainerState::PartEpoch part;
  Clock::time_point start = Clock::now();
  // Seconds spent on this epoch's steps, before a resume included.
  double seconds() const { return part.seconds + seconds_since(start); }
};

// One training run.
class Trainer {
 public:
  Trainer(const TrainOptions& options, std::ostream& log);
  TrainSummary run();

 private:
  void load_starting_points();
  void check_output_folder();
  void load_data();
  void build_network();
  void restore_optimizer();
  // Trains epoch `epoch`; false where the run ends with it (a stop was requested, which saves
  // the state, or no better validation score came for `patience` epochs).
  bool train_epoch(int epoch);
  // One optimizer step on batch `b` of the epoch (skipped where the loss or gradient is not finite).
  void train_step(int epoch, std::int64_t b, const Augmenter* augment, TrainerState::PartEpoch& part);
  // Validates, saves and reports the epoch just trained; false where the run stops early.
  bool end_epoch(int epoch, const EpochProgress& progress);
  void start_augmenting_if_due(int epoch, double train_loss, const Validation& v);
  void finish();

  // A model file of `weights` with the run's description.
  ModelFile model_file(const Validation& figures, int epoch, Crnn& weights) const;
  // `last` holds the raw weights under their own names (so that it loads as a model), the
  // average under "ema.", the optimizer state and dropout's generator; `part`, where the run
  // stops inside an epoch, says how far into it.
  void save_last(const Validation& figures, const TrainerState::PartEpoch& part = {});

  const Clock::time_point start_time_ = Clock::now();
  TrainOptions o_;
  std::ostream& log_;
  bool resuming_ = false;
  std::string resume_path_;
  ModelFile resume_from_, init_from_;
  TrainerState state_;
  std::vector<Sample> train_samples_, val_samples_;
  Charset charset_;
  int time_steps_ = 0;
  LoadedDataset train_set_, val_set_;
  // Readings are held to the label lengths seen in training, as the recogniser does.
  LengthRange label_lengths_{1 << 30, 0};
  Crnn network_{nullptr};
  std::optional<WeightAverage> average_;
  Crnn evaluated_{nullptr};  // validation, best and final: the average where there is one
  std::unique_ptr<torch::optim::Optimizer> optimizer_;
  TrainSummary summary_;
  ProgressBar bar_;
  std::vector<std::size_t> order_;
  // The figures of the weights `final` would hold: on resuming, the checkpoint's own.
  Validation last_validation_;
  double epoch_seconds_sum_ = 0;
  double validation_seconds_ = 0;  // the last validation's
  int epochs_this_run_ = 0;
  // Steps skipped for a non-finite loss or gradient: the first few are logged one by one.
  static constexpr int kReportedSkips = 3;
  int skipped_steps_ = 0;
  std::size_t batches_per_epoch_ = 0;
  Clock::time_point last_save_;
  std::optional<FolderLock> folder_lock_;
};

Trainer::Trainer(const TrainOptions& options, std::ostream& log)
    : o_(options), log_(log), bar_(log, &log == &std::cerr && isatty(STDERR_FILENO)) {
  g_stop_requested = false;
  configure_training_process(o_.threads);
  if (o_.epochs == 0 && !(o_.time_limit_minutes > 0)) o_.epochs = TrainOptions::kDefaultEpochs;
  check_options(o_);
  resuming_ = !o_.resume_dir.empty();
  resume_path_ = (fs::path(o_.resume_dir) / "last.safetensors").string();
  load_starting_points();
  check_output_folder();
  load_data();
  build_network();
  const fs::path out_dir(o_.out_dir);
  summary_.best_model = (out_dir / "best.safetensors").string();
  summary_.final_model = (out_dir / "final.safetensors").string();
  summary_.last_checkpoint = (out_dir / "last.safetensors").string();
}

// Starting points fix the charset, preprocessing and architecture.
void Trainer::load_starting_points() {
  if (resuming_) {
    resume_from_ = load_model(resume_path_);
    if (!resume_from_.checkpoint.is_object()) throw ModelFileError(resume_path_ + ": not a training checkpoint");
    state_ = state_from_json(resume_from_.checkpoint.at("state"));
    o_.model = resume_from_.config;
    o_.preprocess = resume_from_.preprocess;
    o_.fold_case = resume_from_.fold_case;
  } else if (!o_.init_model.empty()) {
    init_from_ = load_model(o_.init_model);
    o_.model = init_from_.config;
    o_.preprocess = init_from_.preprocess;
    if (!o_.grow.empty()) {
      if (o_.model.arch != Architecture::kSmall) throw ConfigError("growing a network is for the small network only");
      o_.model = grown_config(o_);
    }
  } else if (!o_.grow.empty()) {
    throw ConfigError("growing a network needs a starting model (--init)");
  }
  o_.model.validate();
  nlohmann::json(o_.preprocess).get<PreprocessOptions>();  // validates the input size
  if (o_.train_dirs.empty()) throw ConfigError("no training folder");
}

void Trainer::check_output_folder() {
  std::error_code ec;
  fs::create_directories(o_.out_dir, ec);
  const fs::path probe = fs::path(o_.out_dir) / ".write-test";
  std::ofstream out(probe);
  if (!out) throw ConfigError(o_.out_dir + ": output folder is not writable");
  out.close();
  fs::remove(probe, ec);
  folder_lock_.emplace(o_.out_dir);
}

void Trainer::load_data() {
  for (const auto& folder : o_.train_dirs) {
    std::vector<Sample> samples = scan_folder(folder);
    train_samples_.insert(train_samples_.end(), std::make_move_iterator(samples.begin()),
                          std::make_move_iterator(samples.end()));
  }
  if (!o_.val_dir.empty()) {
    val_samples_ = scan_folder(o_.val_dir);
  } else {
    std::vector<Sample> kept;
    split_samples(train_samples_, o_.val_fraction, o_.seed, kept, val_samples_);
    train_samples_ = std::move(kept);
  }
  fit_to_training_set(o_, train_samples_, /*from_scratch=*/!resuming_ && o_.init_model.empty());
  if (!resuming_) state_.augmenting = o_.augment && (o_.augment_after_cer >= 1 || !o_.init_model.empty());
  if (resuming_) {
    charset_ = resume_from_.charset;
  } else if (!o_.charset.empty()) {
    charset_ = Charset::from_spec(o_.charset);
  } else {
    // From the labels, also when fine-tuning (--init): the rows of the symbols the starting
    // model knows are copied, so the model learns exactly the alphabet of the new data.
    std::vector<std::string> labels;
    for (const auto& s : train_samples_)
      if (s.problem.empty() && is_valid_utf8(s.label)) labels.push_back(o_.fold_case ? fold_label(s.label) : s.label);
    charset_ = Charset::from_labels(labels);
  }
  time_steps_ = output_time_steps(o_.model, o_.preprocess.width);
  check_time_steps(train_samples_, charset_, o_.fold_case, o_, time_steps_);
  LoadOptions load_options;
  load_options.max_time_steps = time_steps_;
  load_options.fold_case = o_.fold_case;
  load_options.threads = o_.threads;
  train_set_ = load_dataset(train_samples_, charset_, o_.preprocess, load_options, train_folders(o_));
  val_set_ = load_dataset(val_samples_, charset_, o_.preprocess, load_options,
                          o_.val_dir.empty() ? train_folders(o_) + " (validation part)" : o_.val_dir);
  for (const auto& target : train_set_.targets) {
    label_lengths_.min = std::min(label_lengths_.min, static_cast<int>(target.size()));
    label_lengths_.max = std::max(label_lengths_.max, static_cast<int>(target.size()));
  }
}

void Trainer::build_network() {
  torch::manual_seed(o_.seed);
  network_ = Crnn(o_.model, charset_.num_classes(), o_.preprocess.height);
  if (resuming_) {
    import_weights(network_, resume_from_.tensors, resume_path_);
  } else if (!o_.init_model.empty()) {
    initialise_from(network_, init_from_, charset_, o_.init_model, o_.model, o_.preprocess.height);
    const std::size_t loaded_convolutions = init_from_.config.conv_channels.size();
    if (o_.model.conv_channels.size() > loaded_convolutions) {  // only a grown small network adds any
      // The added convolutions' batch norms measured on the first training images, unaugmented.
      std::vector<std::size_t> first(std::min<std::size_t>(train_set_.size(), 256));
      std::iota(first.begin(), first.end(), 0);
      network_->pass_through_norms(make_batch(train_set_, first, 0, first.size(), o_.preprocess, nullptr).images,
                                   loaded_convolutions, init_from_.config.conv_channels.back());
    }
  } else {
    // Before training, the blank gets the share of the time steps it takes in an alignment of
    // an average label: the network starts where CTC's first hundred steps would take it.
    std::size_t label_symbols = 0;
    for (const auto& target : train_set_.targets) label_symbols += target.size();
    const double mean_length = static_cast<double>(label_symbols) / static_cast<double>(train_set_.targets.size());
    network_->set_blank_share(std::max(0.05, 1 - mean_length / time_steps_));
  }
  network_->train();
  if (o_.ema_decay > 0) {
    average_.emplace(Crnn(o_.model, charset_.num_classes(), o_.preprocess.height), o_.ema_decay);
    std::map<std::string, Tensor> stored;
    if (resuming_)
      for (const auto& [name, t] : resume_from_.tensors)
        if (name.rfind(kAverageTensorPrefix, 0) == 0) stored.emplace(name.substr(std::strlen(kAverageTensorPrefix)), t);
    import_weights(average_->network(), stored.empty() ? export_weights(network_) : stored, resume_path_);
  }
  evaluated_ = average_ ? average_->network() : network_;
  optimizer_ = make_optimizer(o_, network_);
  restore_optimizer();
  set_learning_rate(*optimizer_, state_.learning_rate);
}

void Trainer::restore_optimizer() {
  if (!resuming_) {
    state_.learning_rate = o_.learning_rate;
    return;
  }
  if (resume_from_.tensors.count(kLegacyOptimizerTensor))
    log_ << "  " << resume_path_ << ": the optimizer state is in LibTorch's archive format, which this "
         << "version does not read; the optimizer's moments start afresh\n";
  restore_optimizer_tensors(*optimizer_, network_, resume_from_.tensors, resume_path_);
  state_.metrics_rows = read_metrics_rows((fs::path(o_.out_dir) / "metrics.csv").string(), state_.epochs_completed);
}

ModelFile Trainer::model_file(const Validation& figures, int epoch, Crnn& weights) const {
  ModelFile m;
  m.charset = charset_;
  m.fold_case = o_.fold_case;
  m.label_lengths = label_lengths_;
  m.preprocess = o_.preprocess;
  m.config = o_.model;
  m.training = {{"epochs", epoch},
                {"val_exact_match", figures.exact_match},
                {"val_cer", figures.cer},
                {"val_loss", figures.loss},
                {"train_dirs", o_.train_dirs},
                {"val_dir", o_.val_dir.empty() ? train_folders(o_) + " (held out)" : o_.val_dir},
                {"train_images", train_set_.size()},
                {"val_images", val_set_.size()},
                {"optimizer", enum_name(o_.optimizer, kOptimizerNames)},
                {"batch_size", o_.batch_size},
                {"seed", o_.seed},
                {"training_seconds", state_.elapsed_seconds + seconds_since(start_time_)},
                {"date", now_iso8601()}};
  m.tensors = export_weights(weights);
  return m;
}

void Trainer::save_last(const Validation& figures, const TrainerState::PartEpoch& part) {
  ModelFile m = model_file(figures, state_.epochs_completed, network_);
  if (average_)
    for (auto& [name, t] : export_weights(average_->network())) m.tensors.emplace(kAverageTensorPrefix + name, std::move(t));
  m.tensors.merge(optimizer_tensors(*optimizer_, network_));
  m.tensors[kTorchGeneratorTensor] = torch_generator_state();
  TrainerState saved = state_;
  saved.elapsed_seconds = state_.elapsed_seconds + seconds_since(start_time_);
  saved.part_epoch = part;
  // The folders absolute, so that --resume works from any working folder.
  TrainOptions stored = o_;
  for (auto& folder : stored.train_dirs) folder = fs::absolute(folder).string();
  if (!stored.val_dir.empty()) stored.val_dir = fs::absolute(stored.val_dir).string();
  m.checkpoint = {{"state", state_to_json(saved)}, {"options", stored}};
  save_model(summary_.last_checkpoint, m);
}

TrainSummary Trainer::run() {
  std::int64_t parameters = 0;
  for (const auto& p : network_->parameters()) parameters += p.numel();
  print_settings(log_, o_, charset_, train_set_, val_set_, time_steps_, parameters, state_.augmenting);
  if (resuming_) log_ << "  resuming after epoch " << state_.epochs_completed << "\n";
  order_.resize(train_set_.size());
  last_validation_ = state_.best;
  if (resuming_ && resume_from_.training.contains("val_exact_match"))
    last_validation_ = {resume_from_.training.value("val_loss", state_.best.loss),
                        resume_from_.training.at("val_exact_match").get<double>(),
                        resume_from_.training.value("val_cer", state_.best.cer)};
  batches_per_epoch_ = (train_set_.size() + o_.batch_size - 1) / o_.batch_size;
  // A run resumed under a time limit keeps the schedule it had (at most --epochs).
  state_.planned_epochs = o_.time_limit_minutes > 0 && state_.planned_epochs > 0
                              ? std::min(state_.planned_epochs, epoch_limit(o_))
                              : epoch_limit(o_);
  last_save_ = Clock::now();
  for (int epoch = state_.epochs_completed + 1; epoch <= state_.planned_epochs; ++epoch)
    if (!train_epoch(epoch)) break;
  summary_.epochs_completed = state_.epochs_completed;
  summary_.best_epoch = state_.best_epoch;
  summary_.best_val_exact_match = state_.best.exact_match;
  summary_.best_val_cer = state_.best.cer;
  summary_.seconds = state_.elapsed_seconds + seconds_since(start_time_);
  if (!summary_.interrupted) finish();
  return summary_;
}

bool Trainer::train_epoch(int epoch) {
  EpochProgress progress;
  TrainerState::PartEpoch& part = progress.part;
  std::mt19937_64 rng(o_.seed * 1000003ULL + static_cast<std::uint64_t>(epoch));
  const Augmenter augment = o_.augment_style == AugmentStyle::kCaptcha
                                ? Augmenter([&rng](const Image& image) { return augment_captcha(image, rng); })
                                : Augmenter([&rng, this](const Image& image) {
                                    return augment_light(image, rng, o_.preprocess);
                                  });
  torch::manual_seed(o_.seed * 1000003ULL + static_cast<std::uint64_t>(epoch));
  std::iota(order_.begin(), order_.end(), 0);
  for (std::size_t i = order_.size(); i > 1; --i) std::swap(order_[i - 1], order_[rng() % i]);

  // A run saved part-way through this epoch goes on from the step after the last one it took,
  // with the generators as they were then: it trains exactly as a run never stopped would. One
  // stopped during the epoch's last step saved all its batches and goes on with the validation.
  part = std::exchange(state_.part_epoch, {});
  if (part.batches_done > 0) {
    const std::string saved_part = resume_path_ + ": saved part-way through epoch " + std::to_string(epoch);
    const auto generator = resume_from_.tensors.find(kTorchGeneratorTensor);
    if (generator == resume_from_.tensors.end()) throw ModelFileError(saved_part + " without the generator's state");
    if (part.batches_done > static_cast<std::int64_t>(batches_per_epoch_))
      throw ModelFileError(saved_part + " after batch " + std::to_string(part.batches_done) + ", but the epoch now has " +
                           std::to_string(batches_per_epoch_) + " (has the training folder changed?)");
    std::istringstream saved_generator(part.shuffle_generator);
    if (!(saved_generator >> rng)) throw ModelFileError(resume_path_ + ": the epoch's generator state is unreadable");
    set_torch_generator_state(generator->second, resume_path_);
    log_ << "  resuming epoch " << epoch << " after batch " << part.batches_done << " of " << batches_per_epoch_ << "\n";
  }
  // Saves the state after `batches` batches of this epoch.
  const auto save_part = [&](std::int64_t batches) {
    TrainerState::PartEpoch saved;
    if (batches > 0) {
      saved = part;
      saved.batches_done = batches;
      saved.seconds = progress.seconds();
      std::ostringstream generator;
      generator << rng;
      saved.shuffle_generator = generator.str();
    }
    save_last(last_validation_, saved);
    last_save_ = Clock::now();
  };
  std::int64_t b = part.batches_done;
  for (; b < static_cast<std::int64_t>(batches_per_epoch_); ++b) {
    if (g_stop_requested) break;
    if (b > part.batches_done && o_.checkpoint_minutes > 0 && seconds_since(last_save_) >= 60 * o_.checkpoint_minutes) {
      save_part(b);
      // Also the run's progress where no bar shows it (a log file).
      if (!o_.quiet) {
        bar_.clear();
        log_ << "  epoch " << epoch << " batch " << b << "/" << batches_per_epoch_ << std::fixed << std::setprecision(4)
             << " | train loss " << part.loss_sum / std::max<std::int64_t>(part.seen, 1) << std::setprecision(0) << " | "
             << part.seen / progress.seconds() << " img/s | saved to last.safetensors\n";
      }
    }
    train_step(epoch, b, state_.augmenting ? &augment : nullptr, part);
  }
  bar_.clear();
  if (g_stop_requested) {
    save_part(b);
    summary_.interrupted = true;
    log_ << "interrupted: state after ";
    if (b > 0) log_ << "batch " << b << " of " << batches_per_epoch_ << " in ";
    log_ << "epoch " << (b > 0 ? epoch : state_.epochs_completed) << " saved to " << summary_.last_checkpoint
         << "; continue with --resume " << o_.out_dir << "\n";
    return false;
  }
  if (part.seen == 0)
    throw Error("training diverged in epoch " + std::to_string(epoch) + ": every step had a non-finite loss or gradient (" +
                o_.out_dir + "/last.safetensors holds the epoch before); try a lower --lr");
  return end_epoch(epoch, progress);
}

void Trainer::train_step(int epoch, std::int64_t b, const Augmenter* augment, TrainerState::PartEpoch& part) {
  const std::size_t start = b * o_.batch_size;
  const std::size_t count = std::min<std::size_t>(o_.batch_size, train_set_.size() - start);
  const Batch batch = make_batch(train_set_, order_, start, count, o_.preprocess, augment);
  const auto step = static_cast<std::int64_t>((epoch - 1) * batches_per_epoch_ + b);
  if (o_.schedule == LrSchedule::kCosine) {
    state_.learning_rate = cosine_learning_rate(o_, state_.planned_epochs, step, batches_per_epoch_);
    set_learning_rate(*optimizer_, state_.learning_rate);
  }
  optimizer_->zero_grad();
  const auto log_probs = torch::log_softmax(network_->forward(batch.images), 2);
  const auto loss = ctc_loss(log_probs, batch);  // reported; the penalty only steers the step
  const double batch_loss = loss.item<double>();
  double gradient_norm = std::numeric_limits<double>::quiet_NaN();
  if (std::isfinite(batch_loss)) {
    (o_.confidence_penalty > 0 ? loss + o_.confidence_penalty * negative_entropy(log_probs) : loss).backward();
    gradient_norm = torch::nn::utils::clip_grad_norm_(
        network_->parameters(), o_.clip_grad_norm > 0 ? o_.clip_grad_norm : std::numeric_limits<double>::infinity());
  }
  // A step with a non-finite loss or gradient would leave every weight NaN for the rest of the
  // run (Adam's moments keep it): skip it, as mixed-precision trainers do.
  if (!std::isfinite(gradient_norm)) {
    if (++skipped_steps_ <= kReportedSkips) {
      bar_.clear();  // the note on a line of its own, not after the bar
      log_ << "epoch " << epoch << " step " << b + 1 << ": non-finite " << (std::isfinite(batch_loss) ? "gradient" : "loss")
           << " (loss " << batch_loss << "); step skipped\n";
    }
    ++part.skipped;
    return;
  }
  optimizer_->step();
  if (average_) average_->update(network_, step);
  part.loss_sum += batch_loss * count;
  part.seen += static_cast<std::int64_t>(count);
  bar_.update(b + 1, batches_per_epoch_, part.loss_sum / part.seen);
  if (o_.on_step) o_.on_step(epoch, b + 1);
}

bool Trainer::end_epoch(int epoch, const EpochProgress& progress) {
  const TrainerState::PartEpoch& part = progress.part;
  const double train_seconds = progress.seconds();
  const auto validation_start = Clock::now();
  const Validation v = validate(evaluated_, val_set_, charset_, o_.preprocess, label_lengths_);
  validation_seconds_ = seconds_since(validation_start);
  last_validation_ = v;
  state_.epochs_completed = epoch;
  ++epochs_this_run_;
  const double epoch_seconds = progress.seconds();
  epoch_seconds_sum_ += epoch_seconds;

  EpochReport report;
  report.epoch = epoch;
  report.train_loss = part.loss_sum / part.seen;
  report.validation = v;
  report.learning_rate = state_.learning_rate;
  report.images_per_second = part.seen / std::max(train_seconds, 1e-9);
  report.skipped_steps = part.skipped;
  start_augmenting_if_due(epoch, report.train_loss, v);
  report.improved = is_better(v, state_.best);
  if (report.improved) {
    state_.best = v;
    state_.best_epoch = epoch;
    state_.epochs_since_best = 0;
    save_model(summary_.best_model, model_file(v, epoch, evaluated_));
  } else {
    ++state_.epochs_since_best;
  }
  // The cosine schedule sets the rate per step.
  if (o_.schedule == LrSchedule::kPlateau) update_plateau_schedule(o_, v.loss, state_, *optimizer_);

  report.elapsed_seconds = state_.elapsed_seconds + seconds_since(start_time_);
  state_.metrics_rows.push_back(report.metrics_row());
  const fs::path out_dir(o_.out_dir);
  write_metrics((out_dir / "metrics.csv").string(), state_.metrics_rows);
  write_png((out_dir / "curves.png").string(), draw_training_curves(parse_metrics_rows(state_.metrics_rows)));
  if (o_.time_limit_minutes > 0)
    fit_schedule_to_time_limit(o_, epoch, std::max(epoch_seconds_sum_ / epochs_this_run_, epoch_seconds),
                               report.elapsed_seconds, kViewFitPasses * validation_seconds_, state_, log_);
  report.planned_epochs = state_.planned_epochs;
  report.eta_seconds = (state_.planned_epochs - epoch) * epoch_seconds_sum_ / epochs_this_run_;
  if (!o_.quiet) log_ << report.log_line();
  save_last(v);
  if (state_.epochs_since_best >= o_.patience) {
    log_ << "early stop: no better validation score for " << o_.patience << " epochs\n";
    return false;
  }
  return true;
}

// Jitter once the network reads nearly everything, or once it has begun to learn the training
// images by heart: the epoch's training loss (taken with dropout, over the whole epoch) down to
// the validation loss.
void Trainer::start_augmenting_if_due(int epoch, double train_loss, const Validation& v) {
  if (!o_.augment || state_.augmenting || !(v.cer < o_.augment_after_cer || train_loss <= v.loss)) return;
  state_.augmenting = true;
  std::ostringstream note;
  note << "augmentation on from epoch " << epoch + 1 << std::fixed << std::setprecision(2);
  if (v.cer < o_.augment_after_cer)
    note << " (validation CER " << 100 * v.cer << "%)\n";
  else
    note << std::setprecision(3) << " (training loss " << train_loss << " <= validation loss " << v.loss << ")\n";
  log_ << note.str();
}

// Best is the best epoch's weights, or the final weights where they read the validation set
// better: the epoch with the best one-view figures is a noisy pick (a maximum over epochs of a
// validation set's figures, at times while the learning rate is still high). Both are read as
// they will be read (fit_reading_views).
void Trainer::finish() {
  if (state_.best_epoch == 0) save_model(summary_.best_model, model_file(last_validation_, state_.epochs_completed, evaluated_));
  ModelFile final_file = model_file(last_validation_, state_.epochs_completed, evaluated_);
  ModelFile best_file = load_model(summary_.best_model);
  Crnn best_network(o_.model, charset_.num_classes(), o_.preprocess.height);
  import_weights(best_network, best_file.tensors, summary_.best_model);
  const ReadAsChosen read = fit_reading_views(best_network, best_file, evaluated_, final_file, val_set_, log_);
  if (is_better(read.final, read.best)) {
    log_ << "best model: the final weights read the validation set better than epoch " << state_.best_epoch << "'s ("
         << std::fixed << std::setprecision(2) << 100 * read.final.exact_match << "% against "
         << 100 * read.best.exact_match << "% in " << final_file.reading_views
         << (final_file.reading_views == 1 ? " view" : " views") << "), so best is the final model\n";
    best_file = final_file;
    summary_.best_epoch = state_.epochs_completed;
    summary_.best_val_exact_match = last_validation_.exact_match;
    summary_.best_val_cer = last_validation_.cer;
  }
  save_model(summary_.best_model, best_file);
  save_model(summary_.final_model, final_file);
  summary_.seconds = state_.elapsed_seconds + seconds_since(start_time_);
  log_ << "done: " << state_.epochs_completed << " epochs in " << format_duration(summary_.seconds)
       << "; best validation exact match " << std::fixed << std::setprecision(2) << 100 * summary_.best_val_exact_match
       << "% (CER " << 100 * summary_.best_val_cer << "%, one view) at epoch " << summary_.best_epoch
       << "\n  best:  " << summary_.best_model << "\n  final: " << summary_.final_model << "\n";
}

}  // namespace

void request_stop() { g_stop_requested = true; }

TrainSummary train(const TrainOptions& options, std::ostream& log) { return Trainer(options, log).run(); }

}  // namespace captcha
