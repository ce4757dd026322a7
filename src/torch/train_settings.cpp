// The run's settings: their checks, the choices fitted to the training set, their JSON form (with
// the defaults of runs stored before a setting existed) and the options of a resumed run.
#include "training.h"

#include <filesystem>

#include "captcha/errors.h"
#include "captcha/utf8.h"

namespace fs = std::filesystem;

namespace captcha {

bool augments_from_start(std::size_t training_images) { return training_images >= kWideTrainingSet; }

double fitted_confidence_penalty(std::size_t training_images) {
  return training_images >= kWideTrainingSet ? kLargeSetConfidencePenalty : 0.0;
}

// Absent fields (runs saved before growing was stored) read as not grown.
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(ModelGrowth, features, conv_channels, rnn_hidden)

void to_json(nlohmann::json& j, const TrainOptions& o) {
  j = {{"train_dirs", o.train_dirs}, {"val_dir", o.val_dir}, {"val_fraction", o.val_fraction},
       {"charset", o.charset}, {"fold_case", o.fold_case}, {"out_dir", o.out_dir},
       {"model", o.model}, {"preprocess", o.preprocess}, {"fit_input_size", o.fit.input_size},
       {"fit_features", o.fit.features}, {"fit_convolutions", o.fit.convolutions}, {"fit_rnn", o.fit.rnn},
       {"fit_rnn_hidden", o.fit.rnn_hidden}, {"fit_augment_start", o.fit.augment_start},
       {"fit_confidence_penalty", o.fit.confidence_penalty}, {"epochs", o.epochs},
       {"batch_size", o.batch_size}, {"learning_rate", o.learning_rate}, {"optimizer", enum_name(o.optimizer, kOptimizerNames)},
       {"momentum", o.momentum}, {"weight_decay", o.weight_decay}, {"clip_grad_norm", o.clip_grad_norm},
       {"confidence_penalty", o.confidence_penalty},
       {"patience", o.patience}, {"schedule", enum_name(o.schedule, kScheduleNames)}, {"warmup_epochs", o.warmup_epochs},
       {"lr_patience", o.lr_patience}, {"lr_factor", o.lr_factor},
       {"min_learning_rate", o.min_learning_rate}, {"ema_decay", o.ema_decay}, {"augment", o.augment},
       {"augment_style", enum_name(o.augment_style, kAugmentStyleNames)}, {"augment_after_cer", o.augment_after_cer}, {"seed", o.seed},
       {"init_model", o.init_model}, {"time_limit_minutes", o.time_limit_minutes},
       {"checkpoint_minutes", o.checkpoint_minutes}, {"grow", o.grow}};
}

void from_json(const nlohmann::json& j, TrainOptions& o) {
  o = TrainOptions{};
  // Stored options are the ones a run used: a setting not stored was not fitted.
  o.fit = FittedSettings::none();
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
  o.fit.input_size = j.value("fit_input_size", false);
  o.fit.features = j.value("fit_features", false);
  o.fit.convolutions = j.value("fit_convolutions", false);
  o.fit.rnn = j.value("fit_rnn", false);
  o.fit.rnn_hidden = j.value("fit_rnn_hidden", false);
  o.fit.augment_start = j.value("fit_augment_start", false);
  o.fit.confidence_penalty = j.value("fit_confidence_penalty", false);
  o.epochs = j.value("epochs", TrainOptions::kDefaultEpochs);
  o.batch_size = j.value("batch_size", o.batch_size);
  o.learning_rate = j.value("learning_rate", o.learning_rate);
  o.optimizer = parse_enum(j.value("optimizer", std::string("adam")), kOptimizerNames, "optimizer");
  o.momentum = j.value("momentum", o.momentum);
  o.weight_decay = j.value("weight_decay", o.weight_decay);
  o.clip_grad_norm = j.value("clip_grad_norm", o.clip_grad_norm);
  o.confidence_penalty = j.value("confidence_penalty", o.confidence_penalty);
  o.patience = j.value("patience", o.patience);
  // Checkpoints written before these settings existed trained with the plateau schedule, no EMA.
  o.schedule = parse_enum(j.value("schedule", std::string("plateau")), kScheduleNames, "schedule");
  o.warmup_epochs = j.value("warmup_epochs", o.warmup_epochs);
  o.ema_decay = j.value("ema_decay", 0.0);
  o.lr_patience = j.value("lr_patience", o.lr_patience);
  o.lr_factor = j.value("lr_factor", o.lr_factor);
  o.min_learning_rate = j.value("min_learning_rate", o.min_learning_rate);
  o.augment = j.value("augment", o.augment);
  // Absent: light, the only style at first.
  o.augment_style = parse_enum(j.value("augment_style", std::string("light")), kAugmentStyleNames, "augmentation style");
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

TrainOptions resume_options(const std::string& run_dir, const ResumeChanges& changes) {
  TrainOptions o = options_from_checkpoint(run_dir);
  if (changes.epochs) o.epochs = *changes.epochs;
  if (changes.time_limit_minutes) o.time_limit_minutes = *changes.time_limit_minutes;
  if (changes.checkpoint_minutes) o.checkpoint_minutes = *changes.checkpoint_minutes;
  o.threads = changes.threads;
  o.quiet = changes.quiet;
  return o;
}

namespace training {

void check_options(const TrainOptions& o) {
  if (o.epochs < 0) throw ConfigError("--epochs must not be negative");
  if (o.batch_size < 1) throw ConfigError("--batch-size must be at least 1");
  if (!(o.learning_rate > 0)) throw ConfigError("--lr must be positive");
  if (o.patience < 1) throw ConfigError("--patience must be at least 1");
  if (!(o.warmup_epochs >= 0)) throw ConfigError("--warmup must not be negative");
  if (!(o.ema_decay >= 0 && o.ema_decay < 1)) throw ConfigError("--ema must be in [0, 1)");
  if (!(o.confidence_penalty >= 0 && o.confidence_penalty <= 10))
    throw ConfigError("--confidence-penalty must be in [0, 10]");
  if (!(o.augment_after_cer >= 0)) throw ConfigError("--augment-after-cer must not be negative");
  if (!(o.time_limit_minutes >= 0)) throw ConfigError("--time-limit must not be negative");
  if (!(o.checkpoint_minutes >= 0)) throw ConfigError("--checkpoint-every must not be negative");
  if (o.out_dir.empty()) throw ConfigError("an output folder (--out) is needed");
}

void fit_to_training_set(TrainOptions& o, const std::vector<Sample>& train_samples, bool from_scratch) {
  FittedSettings& fit = o.fit;
  const bool small = o.model.arch == Architecture::kSmall;
  const std::size_t images = train_samples.size();
  fit.input_size = fit.input_size && from_scratch;
  fit.features = fit.features && from_scratch;
  fit.convolutions = fit.convolutions && from_scratch && small;
  fit.rnn = fit.rnn && from_scratch && !small;
  fit.rnn_hidden = fit.rnn_hidden && from_scratch;
  if (fit.input_size) fit_input_size(o.preprocess, median_image_size(train_samples));
  if (fit.features) o.model.dense = small ? fitted_features(images) : kResnetFeatures;
  if (fit.convolutions) o.model.conv_channels = fitted_conv_channels(images);
  if (fit.rnn) o.model.rnn = RnnType::kGru;
  if (fit.rnn_hidden)
    o.model.rnn_hidden = small ? fitted_rnn_hidden(images)
                               : std::vector<int>(std::begin(kResnetRnnHidden), std::end(kResnetRnnHidden));
  fit.augment_start = fit.augment_start && from_scratch && augments_from_start(images);
  if (fit.augment_start) o.augment_after_cer = 1;
  fit.confidence_penalty = fit.confidence_penalty && from_scratch;
  if (fit.confidence_penalty) o.confidence_penalty = fitted_confidence_penalty(images);
}

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

}  // namespace training

}  // namespace captcha
