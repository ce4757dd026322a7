// The trainer's state as the checkpoint stores it: its JSON form, LibTorch's generator state as a
// byte tensor, and metrics.csv.
#include "training.h"

#include <ATen/CPUGeneratorImpl.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <mutex>

#include "captcha/atomic_file.h"
#include "captcha/errors.h"

namespace captcha::training {

namespace {

constexpr const char* kMetricsHeader =
    "epoch,train_loss,val_loss,val_exact_match,val_cer,learning_rate,images_per_second,elapsed_seconds\n";

}  // namespace

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

namespace {

std::string optimizer_tensor_name(const std::string& parameter, const char* field) {
  return std::string(kOptimizerTensorPrefix) + "." + parameter + "." + field;
}

Tensor float_tensor(const torch::Tensor& value) {
  const auto contiguous = value.detach().to(torch::kCPU, torch::kFloat).contiguous();
  return Tensor::from_f32({contiguous.sizes().begin(), contiguous.sizes().end()}, contiguous.data_ptr<float>());
}

// The stored tensor `name`, checked against `parameter`'s shape and for finite values.
torch::Tensor stored_moment(const std::map<std::string, Tensor>& tensors, const std::string& name,
                            const torch::Tensor& parameter, const std::string& path) {
  const auto it = tensors.find(name);
  if (it == tensors.end()) throw ModelFileError(path + ": checkpoint lacks optimizer tensor " + name);
  const Tensor& t = it->second;
  if (t.dtype != DType::kF32 || t.shape != std::vector<std::int64_t>(parameter.sizes().begin(), parameter.sizes().end()))
    throw ModelFileError(path + ": optimizer tensor " + name + " does not match its parameter's shape");
  const float* values = t.f32();
  for (std::int64_t i = 0; i < t.numel(); ++i)
    if (!std::isfinite(values[i])) throw ModelFileError(path + ": optimizer tensor " + name + " is not finite");
  return torch::from_blob(const_cast<float*>(values), parameter.sizes(), torch::kFloat).clone();
}

}  // namespace

std::map<std::string, Tensor> optimizer_tensors(torch::optim::Optimizer& optimizer, Crnn& network) {
  std::map<std::string, Tensor> out;
  for (const auto& p : network->named_parameters()) {
    const auto it = optimizer.state().find(c10::guts::to_string(p.value().unsafeGetTensorImpl()));
    if (it == optimizer.state().end()) continue;
    if (const auto* adam = dynamic_cast<const torch::optim::AdamParamState*>(it->second.get())) {
      Tensor step;
      step.dtype = DType::kI64;
      step.shape = {1};
      const std::int64_t steps = adam->step();
      step.bytes.resize(sizeof steps);
      std::memcpy(step.bytes.data(), &steps, sizeof steps);
      out.emplace(optimizer_tensor_name(p.key(), "step"), std::move(step));
      out.emplace(optimizer_tensor_name(p.key(), "exp_avg"), float_tensor(adam->exp_avg()));
      out.emplace(optimizer_tensor_name(p.key(), "exp_avg_sq"), float_tensor(adam->exp_avg_sq()));
    } else if (const auto* sgd = dynamic_cast<const torch::optim::SGDParamState*>(it->second.get())) {
      out.emplace(optimizer_tensor_name(p.key(), "momentum_buffer"), float_tensor(sgd->momentum_buffer()));
    }
  }
  return out;
}

void restore_optimizer_tensors(torch::optim::Optimizer& optimizer, Crnn& network,
                               const std::map<std::string, Tensor>& tensors, const std::string& path) {
  const bool adam = dynamic_cast<torch::optim::Adam*>(&optimizer) != nullptr;
  for (const auto& p : network->named_parameters()) {
    const std::string first = optimizer_tensor_name(p.key(), adam ? "step" : "momentum_buffer");
    if (!tensors.count(first)) continue;  // not stepped yet
    const std::string key = c10::guts::to_string(p.value().unsafeGetTensorImpl());
    if (!adam) {
      auto state = std::make_unique<torch::optim::SGDParamState>();
      state->momentum_buffer(stored_moment(tensors, first, p.value(), path));
      optimizer.state()[key] = std::move(state);
      continue;
    }
    const Tensor& step = tensors.at(first);
    std::int64_t steps = -1;
    if (step.dtype == DType::kI64 && step.bytes.size() == sizeof steps) std::memcpy(&steps, step.bytes.data(), sizeof steps);
    if (steps < 0) throw ModelFileError(path + ": optimizer tensor " + first + " is not a step count");
    auto state = std::make_unique<torch::optim::AdamParamState>();
    state->step(steps);
    state->exp_avg(stored_moment(tensors, optimizer_tensor_name(p.key(), "exp_avg"), p.value(), path));
    state->exp_avg_sq(stored_moment(tensors, optimizer_tensor_name(p.key(), "exp_avg_sq"), p.value(), path));
    optimizer.state()[key] = std::move(state);
  }
}

std::vector<std::string> read_metrics_rows(const std::string& path, int epochs) {
  std::vector<std::string> rows;
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);  // header
  while (std::getline(in, line) && static_cast<int>(rows.size()) < epochs) rows.push_back(line);
  return rows;
}

void write_metrics(const std::string& path, const std::vector<std::string>& rows) {
  std::string csv = kMetricsHeader;
  for (const auto& row : rows) csv += row + "\n";
  write_file_atomically(path, csv);
}

}  // namespace captcha::training
