// Training a CRNN with CTC loss on labelled image folders.
//
//   captcha::TrainOptions options;
//   options.train_dirs = {"data/train"};
//   options.val_dir = "data/val";
//   options.out_dir = "run";
//   captcha::TrainSummary s = captcha::train(options, std::cerr);
//
// The run folder receives best.safetensors (best validation exact match), final.safetensors,
// last.safetensors (with optimizer and trainer state, for --resume), metrics.csv and curves.png
// (loss, validation exact match and CER per epoch).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <iosfwd>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "captcha/model_config.h"
#include "captcha/preprocess.h"

namespace captcha {

// Sizes to grow a loaded small network to, each left as loaded where empty (0). Units are added
// at the end of a layer with fresh incoming weights and zero outgoing ones, and added
// convolutions (after the last one) pass the old channels through (a centre-tap identity kernel,
// batch norm set to the measured statistics), so the grown network starts out reading as the
// loaded one and then learns with the room it has gained.
struct ModelGrowth {
  int features = 0;                // ModelConfig::dense: as many or more
  std::vector<int> conv_channels;  // each as wide or wider; added ones at least as wide as the last
  std::vector<int> rnn_hidden;     // as many layers, each as wide or wider
  bool empty() const { return features == 0 && conv_channels.empty() && rnn_hidden.empty(); }
};

// The settings train() chooses from the training set where asked (TrainOptions::fit), from
// scratch only: fine-tuning and resuming keep their model's. Each left false keeps the value the
// options hold.
struct FittedSettings {
  // preprocess's input size: the training images' median size where smaller than 200x50 (see
  // fit_input_size), keeping its 4:1 shape.
  bool input_size = true;
  // model.dense: fitted_features(training images) for the small network; kResnetFeatures for the
  // resnet.
  bool features = true;
  // model.conv_channels (small network): fitted_conv_channels(training images).
  bool convolutions = true;
  // model.rnn: GRU for the resnet (the reference design's), as given for the small network.
  bool rnn = true;
  // model.rnn_hidden: fitted_rnn_hidden(training images) for the small network; kResnetRnnHidden
  // for the resnet.
  bool rnn_hidden = true;
  // augment_after_cer: 1 (augment from the first batch) where augments_from_start(training images).
  bool augment_start = true;
  // confidence_penalty: fitted_confidence_penalty(training images).
  bool confidence_penalty = true;

  // Nothing fitted: every setting as the options hold it.
  static FittedSettings none() { return {false, false, false, false, false, false, false}; }
};

// The resnet's features per time step and BiRNN sizes where fitted.
inline constexpr int kResnetFeatures = 256;
inline constexpr int kResnetRnnHidden[] = {128, 128};

enum class OptimizerType { kAdam, kSgd };
inline constexpr EnumName<OptimizerType> kOptimizerNames[] = {{OptimizerType::kAdam, "adam"},
                                                              {OptimizerType::kSgd, "sgd"}};
enum class LrSchedule { kCosine, kPlateau };
inline constexpr EnumName<LrSchedule> kScheduleNames[] = {{LrSchedule::kCosine, "cosine"},
                                                          {LrSchedule::kPlateau, "plateau"}};
enum class AugmentStyle { kLight, kCaptcha };
inline constexpr EnumName<AugmentStyle> kAugmentStyleNames[] = {{AugmentStyle::kLight, "light"},
                                                                {AugmentStyle::kCaptcha, "captcha"}};

struct TrainOptions {
  // Data
  std::vector<std::string> train_dirs;  // one or more folders, read as one training set
  std::string val_dir;        // empty: hold out val_fraction of the training images
  double val_fraction = 0.1;
  std::string charset;        // "" (from labels), a preset or literal symbols
  bool fold_case = false;
  std::string out_dir;
  // Model
  ModelConfig model;
  PreprocessOptions preprocess;
  // Which of the settings above and below train() chooses from the training set instead (see
  // FittedSettings): all of them by default, as the command-line tool does for every flag not
  // given. After a run, the options stored with it say which were fitted.
  FittedSettings fit;
  // Optimisation
  // Epochs at most; 0: kDefaultEpochs, or under time_limit_minutes as many as fit in the limit.
  int epochs = 0;
  static constexpr int kDefaultEpochs = 50;
  int batch_size = 16;
  double learning_rate = 2e-3;
  OptimizerType optimizer = OptimizerType::kAdam;  // SGD: with momentum (Nesterov)
  double momentum = 0.9;
  double weight_decay = 0;
  double clip_grad_norm = 5.0;     // 0: off
  // A confidence penalty (Pereyra et al., 2017): the training loss adds this times the negative
  // entropy of each time step's output distribution, summed over the steps as the CTC loss is,
  // so that the network does not grow sure of its training images beyond what they show (0: off).
  double confidence_penalty = 0;
  int patience = 20;               // early stopping: epochs without a better validation score
  // Learning-rate schedule: "cosine" (linear warm-up over warmup_epochs but at most
  // kMaxWarmupSteps steps, then a cosine decay to min_learning_rate at the last epoch, set every
  // step) or "plateau" (multiply by lr_factor after lr_patience epochs without a lower
  // validation loss).
  LrSchedule schedule = LrSchedule::kCosine;
  double warmup_epochs = 1;
  static constexpr std::int64_t kMaxWarmupSteps = 500;
  int lr_patience = 6;
  double lr_factor = 0.5;
  double min_learning_rate = 1e-5;
  // Validation, best and final use an exponential moving average of the weights with this decay
  // per step (0: the raw weights).
  double ema_decay = 0.999;
  bool augment = true;             // random distortion of the training images
  // "light" (rotation, scale and shift within a few per cent, a thin dark line on half the
  // images, one image in ten outlined as an edge filter draws it) or "captcha" (also shear, sine
  // warps, lines and arcs in any shade, contrast, blur and noise).
  AugmentStyle augment_style = AugmentStyle::kLight;
  // Augmentation starts after the first epoch whose validation CER is below this (the network
  // reads nearly everything: jitter before that only lengthens the CTC plateau and the climb
  // after it), or whose training loss is down to the validation loss (the network has begun to
  // learn the training images by heart); >= 1, or
  // with init_model, or with fit.augment_start on a large set, from the first batch.
  double augment_after_cer = 0.02;
  // Wall time for the whole run in minutes (0: none). After each epoch the schedule is fitted to
  // the epochs that still fit at the mean epoch time so far, and the run ends with the last of
  // them: the learning rate has decayed by then, unlike a run cut off by a signal.
  double time_limit_minutes = 0;
  // Within an epoch, the run's state is also saved to last.safetensors after the first step this
  // many minutes after the last save, so that a run killed outright (no Ctrl-C) loses at most
  // about this much work (0: saved at the end of each epoch only). A stop request saves the
  // exact place in the epoch whatever this is.
  double checkpoint_minutes = 10;
  std::uint64_t seed = 1;
  int threads = 0;                 // 0: every core (process-wide: LibTorch's thread count)
  // Starting points
  std::string init_model;  // start from this model's weights (fine-tuning)
  // With init_model (small network): the sizes to grow it to (see ModelGrowth).
  ModelGrowth grow;
  std::string resume_dir;  // continue from resume_dir/last.safetensors
  bool quiet = false;      // no per-epoch output
  // Called after each training step with the epoch and the batches of it done so far (progress
  // for a caller that shows its own; it may call request_stop()). Not saved with the run.
  std::function<void(int epoch, std::int64_t batches_done)> on_step;
};

void to_json(nlohmann::json& out, const TrainOptions& options);
void from_json(const nlohmann::json& in, TrainOptions& options);

// Whether a training set of `training_images` images is augmented from the first batch by default
// (FittedSettings::augment_start): from kWideTrainingSet images on, where the wider, deeper
// network reads as much per epoch with the jitter as without it and generalises better. Smaller
// sets wait (see augment_after_cer), which keeps their time to 99% short.
bool augments_from_start(std::size_t training_images);

// The confidence penalty a training set of `training_images` images gets by default
// (FittedSettings::confidence_penalty): kLargeSetConfidencePenalty from kWideTrainingSet images
// on, where the network otherwise grows surer of its training images than they show; none below
// (a small set leaves the CTC plateau later with it).
inline constexpr double kLargeSetConfidencePenalty = 0.1;
double fitted_confidence_penalty(std::size_t training_images);

struct TrainSummary {
  int epochs_completed = 0;
  int best_epoch = 0;
  double best_val_exact_match = 0;
  double best_val_cer = 1;
  double seconds = 0;
  bool interrupted = false;  // stopped by request_stop(); last.safetensors holds the state
  std::string best_model, final_model, last_checkpoint;
};

// Trains and writes the run folder. Progress goes to `log`. Throws ConfigError or
// DatasetError before any long work when the settings or the data cannot work.
// Process-wide effects: see configure_training_process (captcha/training_process.h).
TrainSummary train(const TrainOptions& options, std::ostream& log);

// Reads the options stored in DIR/last.safetensors, so a run can be resumed with the settings
// it started with. Throws ModelFileError.
TrainOptions options_from_checkpoint(const std::string& run_dir);

// What a resumed run may change; everything else is as the run started.
struct ResumeChanges {
  std::optional<int> epochs;
  std::optional<double> time_limit_minutes;
  std::optional<double> checkpoint_minutes;
  int threads = 0;
  bool quiet = false;
};

// The options to resume the run in `run_dir` with: the stored ones with `changes` applied.
// Throws ModelFileError.
TrainOptions resume_options(const std::string& run_dir, const ResumeChanges& changes = {});

// Asks a running train() to save its state and return at the next batch. Async-signal-safe.
void request_stop();

}  // namespace captcha
