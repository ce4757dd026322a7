// The trainer's state as the checkpoint stores it: its JSON form, LibTorch's generator state as a
// byte tensor, and metrics.csv.
#include "training.h"

#include <ATen/CPUGeneratorImpl.h>

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
