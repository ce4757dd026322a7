// captcha-ocr train: trains a CRNN on a labelled folder and writes the run folder.
#include <csignal>
#include <iostream>
#include <sstream>
#include <vector>

#include "captcha/errors.h"
#include "captcha/trainer.h"
#include "common.h"

namespace captcha::cli {

namespace {

extern "C" void on_interrupt(int) { request_stop(); }

void install_interrupt_handler() {
  struct sigaction action {};
  action.sa_handler = on_interrupt;
  action.sa_flags = SA_RESETHAND;  // a second Ctrl-C stops at once
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
}

// Settings given as flags that TrainOptions holds in another form, applied after parsing.
struct FlagSettings {
  bool keep_aspect = false;
  bool no_auto_crop = false;
  bool no_auto_invert = false;
  bool no_batch_norm = false;
  std::vector<int> rnn_hidden;
  std::vector<int> conv_channels;
  int features = 0;
  // The settings that take one of a few values, as named on the command line.
  std::string arch = enum_name(ModelConfig{}.arch, kArchitectureNames);
  std::string rnn = enum_name(ModelConfig{}.rnn, kRnnTypeNames);
  std::string optimizer = enum_name(TrainOptions{}.optimizer, kOptimizerNames);
  std::string schedule = enum_name(TrainOptions{}.schedule, kScheduleNames);
  std::string augment_style = enum_name(TrainOptions{}.augment_style, kAugmentStyleNames);
};

// The training and validation folders, the output and the preprocessing.
void add_data_flags(CLI::App* cmd, TrainOptions& o, FlagSettings& flags) {
  cmd->add_option("--train", o.train_dirs,
                  "Folder of training images (label = file name or labels.tsv); give it again to train on several")
      ->check(CLI::ExistingDirectory);
  cmd->add_option("--val", o.val_dir, "Folder of validation images (default: hold out --val-fraction of --train)")
      ->check(CLI::ExistingDirectory);
  cmd->add_option("--val-fraction", o.val_fraction, "Share of --train held out when --val is absent")
      ->capture_default_str()->check(CLI::Range(0.01, 0.9));
  cmd->add_option("--out", o.out_dir, "Run folder: best/final/last .safetensors and metrics.csv");
  cmd->add_option("--charset", o.charset, "digits, lower, upper, alnum, alnum-lower or literal symbols (default: from the labels)");
  cmd->add_flag("--fold-case", o.fold_case, "Lower-case every label (read case-insensitively)");
  cmd->add_option("--width", o.preprocess.width,
                  "Model input width (default: 200; see --height)")
      ->check(CLI::Range(8, 4096));
  cmd->add_option("--height", o.preprocess.height,
                  "Model input height (default: 50). Without --width and --height, 200x50 shrinks to the training images' median size when they are smaller (to 128x32 at the least)")
      ->check(CLI::Range(8, 1024));
  cmd->add_flag("--keep-aspect", flags.keep_aspect, "Keep the aspect ratio and pad, instead of stretching");
  cmd->add_flag("--no-auto-crop", flags.no_auto_crop, "Do not crop images to the text");
  cmd->add_flag("--no-auto-invert", flags.no_auto_invert, "Do not invert light-on-dark images");
  cmd->add_flag("--force-invert", o.preprocess.force_invert, "Invert every image");
  cmd->add_flag("--no-clahe", [&o](std::int64_t) { o.preprocess.clahe = false; }, "No CLAHE contrast equalisation");
  cmd->add_flag("--strong", o.preprocess.strong, "Stronger preprocessing for thin strokes");
}

// The network and its starting point.
void add_model_flags(CLI::App* cmd, TrainOptions& o, FlagSettings& flags) {
  cmd->add_option("--arch", flags.arch, "small (Keras-style CNN, ~432k parameters; wider from 10,000 training images, see --features) or resnet")
      ->capture_default_str()->check(CLI::IsMember(enum_names(kArchitectureNames)));
  cmd->add_option("--rnn", flags.rnn, "lstm or gru (resnet defaults to gru)")->check(CLI::IsMember(enum_names(kRnnTypeNames)));
  cmd->add_option("--rnn-hidden", flags.rnn_hidden, "Hidden size per direction of each BiRNN layer (small: 128,64, or 128,128 from 10,000 training images; resnet: 128,128); with --init, grows the starting small model's layers to these sizes")
      ->delimiter(',')->check(kPositive);
  cmd->add_option("--conv-channels", flags.conv_channels, "small: channels of its convolutions, two pooled ones and up to four more after them (default 32,64, or 32,64,64,64,64 from 10,000 training images); with --init, grows the starting model's: each as wide or wider, added ones after the last, which start out passing its channels through")
      ->delimiter(',')->expected(2, static_cast<int>(ModelConfig::kMaxConvolutions))->check(kPositive);
  cmd->add_option("--features", flags.features, "Features per time step fed to the first BiRNN layer (small: 64, or 256 from 10,000 training images; resnet: 256); with --init, grows the starting small model's features to this many")
      ->check(kPositive);
  cmd->add_flag("--no-batch-norm", flags.no_batch_norm, "small: no batch norm after the convolutions (the exact Keras model)");
  cmd->add_option("--dropout", o.model.dropout, "Dropout")->capture_default_str()->check(CLI::Range(0.0, 0.95));
  cmd->add_option("--init", o.init_model, "Start from this model's weights (fine-tuning)")->check(CLI::ExistingFile);
  cmd->add_option("--resume", o.resume_dir, "Continue the interrupted run in this folder")->check(CLI::ExistingDirectory);
}

// The optimisation, its schedule and the run's limits.
void add_optimisation_flags(CLI::App* cmd, TrainOptions& o, FlagSettings& flags) {
  cmd->add_option("--epochs", o.epochs,
                  "Maximum epochs (default: " + std::to_string(TrainOptions::kDefaultEpochs) +
                      ", or under --time-limit as many as fit)")
      ->check(kPositive);
  cmd->add_option("--batch-size", o.batch_size, "Images per step")->capture_default_str()->check(kPositive);
  cmd->add_option("--lr", o.learning_rate, "Learning rate")->capture_default_str()->check(kPositive);
  cmd->add_option("--time-limit", o.time_limit_minutes,
                  "Minutes of training at most: after each epoch the schedule is fitted to the epochs that still fit")
      ->check(kNotNegative);
  cmd->add_option("--checkpoint-every", o.checkpoint_minutes,
                  "Minutes between saves of the run's state within an epoch, so that a killed run loses at most "
                  "about this much (0: at epoch ends only; Ctrl-C always saves the exact place)")
      ->capture_default_str()->check(kNotNegative);
  cmd->add_option("--patience", o.patience, "Early stopping: epochs without a better validation score")
      ->capture_default_str()->check(kPositive);
  cmd->add_option("--schedule", flags.schedule, "cosine (warm-up, then cosine decay over --epochs) or plateau (halve the rate when validation loss stalls)")
      ->capture_default_str()->check(CLI::IsMember(enum_names(kScheduleNames)));
  cmd->add_option("--warmup", o.warmup_epochs, "cosine: epochs of linear warm-up (at most 500 steps)")->capture_default_str()->check(CLI::Range(0.0, 1000.0));
  cmd->add_option("--min-lr", o.min_learning_rate, "Lowest learning rate of either schedule")->capture_default_str()->check(kPositive);
  cmd->add_option("--ema", o.ema_decay, "Validate and save an exponential moving average of the weights with this decay per step (0: off)")
      ->capture_default_str()->check(CLI::Range(0.0, 0.99999));
  std::ostringstream penalty_default;
  penalty_default << "(default: " << kLargeSetConfidencePenalty << " from " << kWideTrainingSet << " training images, else 0)";
  cmd->add_option("--confidence-penalty", o.confidence_penalty,
                  "Add this times the negative entropy of each time step's output to the training loss " + penalty_default.str())
      ->check(CLI::Range(0.0, 10.0));
  cmd->add_option("--optimizer", flags.optimizer, "adam, or sgd (momentum 0.9, Nesterov)")
      ->capture_default_str()->check(CLI::IsMember(enum_names(kOptimizerNames)));
  cmd->add_flag("--no-augment", [&o](std::int64_t) { o.augment = false; }, "No random rotation/scale/shift of training images");
  cmd->add_option("--augment-style", flags.augment_style,
                  "light: rotation, scale and shift by a few per cent, a dark line on half the images, one in ten "
                  "outlined (edge filter); captcha: also "
                  "shear, sine warps, lines and arcs in any shade, contrast, blur and noise")
      ->check(CLI::IsMember(enum_names(kAugmentStyleNames)))
      ->capture_default_str();
  cmd->add_option("--augment-after-cer", o.augment_after_cer,
                  "Augment once validation CER falls below this or the training loss falls to the validation loss (1: from "
                  "the first batch, the default for " +
                      std::to_string(kWideTrainingSet) + " training images or more)")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  cmd->add_option("--clip", o.clip_grad_norm, "Gradient norm clipping (0: off)")->capture_default_str();
  cmd->add_option("--seed", o.seed, "Random seed (split, shuffling, initialisation)")->capture_default_str();
  cmd->add_option("--threads", o.threads, "Threads (default: every core)");
  cmd->add_flag("--quiet", o.quiet, "No per-epoch lines");
}

// The options the flags ask for: a resumed run's stored ones with what may change; otherwise
// the flags, and the trainer's choice (FittedSettings) for every setting whose flag is absent.
TrainOptions options_from_flags(const CLI::App& cmd, const TrainOptions& given, const FlagSettings& flags) {
  TrainOptions o = given;
  if (!o.resume_dir.empty()) {
    // The run continues with the settings it started with; these may change.
    ResumeChanges changes;
    if (cmd.count("--epochs")) changes.epochs = o.epochs;
    if (cmd.count("--time-limit")) changes.time_limit_minutes = o.time_limit_minutes;
    if (cmd.count("--checkpoint-every")) changes.checkpoint_minutes = o.checkpoint_minutes;
    changes.threads = o.threads;
    changes.quiet = o.quiet;
    o = resume_options(o.resume_dir, changes);
  } else {
    if (o.train_dirs.empty()) throw ConfigError("train needs --train DIR (or --resume DIR)");
    if (o.out_dir.empty()) throw ConfigError("train needs --out DIR");
    o.model.arch = parse_enum(flags.arch, kArchitectureNames, "architecture");
    o.model.rnn = parse_enum(flags.rnn, kRnnTypeNames, "RNN type");
    o.optimizer = parse_enum(flags.optimizer, kOptimizerNames, "optimizer");
    o.schedule = parse_enum(flags.schedule, kScheduleNames, "schedule");
    o.augment_style = parse_enum(flags.augment_style, kAugmentStyleNames, "augmentation style");
    if (!flags.conv_channels.empty() && o.model.arch != Architecture::kSmall)
      throw ConfigError("--conv-channels is for --arch small only");
    if (!flags.rnn_hidden.empty()) o.model.rnn_hidden = flags.rnn_hidden;
    if (!flags.conv_channels.empty()) o.model.conv_channels = flags.conv_channels;
    if (flags.features > 0) o.model.dense = flags.features;
    if (!o.init_model.empty()) o.grow = {flags.features, flags.conv_channels, flags.rnn_hidden};
    if (flags.keep_aspect) o.preprocess.resize = ResizeMode::kKeepAspect;
    if (flags.no_auto_crop) o.preprocess.auto_crop = false;
    if (flags.no_auto_invert) o.preprocess.auto_invert = false;
    if (flags.no_batch_norm) o.model.batch_norm = false;
    // A setting given as a flag is kept; the others are chosen from the training set.
    o.fit.input_size = !cmd.count("--width") && !cmd.count("--height");
    o.fit.features = !cmd.count("--features");
    o.fit.convolutions = !cmd.count("--conv-channels");
    o.fit.rnn = !cmd.count("--rnn");
    o.fit.rnn_hidden = !cmd.count("--rnn-hidden");
    o.fit.augment_start = !cmd.count("--augment-after-cer");
    o.fit.confidence_penalty = !cmd.count("--confidence-penalty");
  }
  return o;
}

}  // namespace

void register_train(CLI::App& app, Action& run) {
  auto* cmd = app.add_subcommand("train", "Train a model on a folder of labelled images");
  auto options = std::make_shared<TrainOptions>();
  auto flags = std::make_shared<FlagSettings>();
  add_data_flags(cmd, *options, *flags);
  add_model_flags(cmd, *options, *flags);
  add_optimisation_flags(cmd, *options, *flags);
  cmd->callback([&run, cmd, options, flags] {
    run = [cmd, options, flags]() -> int {
      const TrainOptions o = options_from_flags(*cmd, *options, *flags);
      install_interrupt_handler();
      const TrainSummary summary = train(o, std::cerr);
      return summary.interrupted ? kExitInterrupted : kExitOk;
    };
  });
}

}  // namespace captcha::cli
