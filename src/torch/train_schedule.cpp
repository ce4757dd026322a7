// The learning-rate schedules, the time limit's fitting of the schedule, the optimizer, the
// weight average, and the starting weights of a fine-tuned or grown network.
#include "training.h"

#include <cmath>
#include <cstring>
#include <limits>
#include <ostream>

#include "captcha/errors.h"

namespace captcha::training {

int epoch_limit(const TrainOptions& o) { return o.epochs > 0 ? o.epochs : std::numeric_limits<int>::max() / 2; }

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
  if (o.optimizer == OptimizerType::kAdam)
    return std::make_unique<torch::optim::Adam>(
        network->parameters(), torch::optim::AdamOptions(o.learning_rate).weight_decay(o.weight_decay));
  return std::make_unique<torch::optim::SGD>(
      network->parameters(),
      torch::optim::SGDOptions(o.learning_rate).momentum(o.momentum).nesterov(true).weight_decay(o.weight_decay));
}

void set_learning_rate(torch::optim::Optimizer& optimizer, double lr) {
  for (auto& group : optimizer.param_groups()) group.options().set_lr(lr);
}

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

void update_plateau_schedule(const TrainOptions& o, double validation_loss, TrainerState& state,
                             torch::optim::Optimizer& optimizer) {
  if (validation_loss < state.plateau_loss * (1 - 1e-3)) {
    state.plateau_loss = validation_loss;
    state.plateau_epochs = 0;
  } else if (++state.plateau_epochs > o.lr_patience && state.learning_rate > o.min_learning_rate) {
    state.learning_rate = std::max(o.min_learning_rate, state.learning_rate * o.lr_factor);
    state.plateau_epochs = 0;
    set_learning_rate(optimizer, state.learning_rate);
  }
}

void WeightAverage::update(Crnn& live, std::int64_t step) {
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

void initialise_from(Crnn& network, const ModelFile& source, const Charset& charset, const std::string& path,
                     const ModelConfig& grown, int input_height) {
  const auto fresh = export_weights(network);
  const bool growing = nlohmann::json(grown) != nlohmann::json(source.config);
  // The source's tensors are checked against its own network before any is read: growing checks
  // them, import_weights checks them where they are taken as they are, and rows are mapped
  // below only after this check.
  if (!growing && source.charset.symbols() != charset.symbols())
    check_weights(network_spec(source.config, input_height, source.charset.num_classes()), source.tensors, path);
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

}  // namespace captcha::training
