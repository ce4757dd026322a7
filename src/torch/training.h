// The trainer's parts, private to the training library: batches and losses, validation and the
// choice of reading views, the schedule (learning rate, time limit, weight average), the state
// that survives an interruption, and the reports a person reads. trainer.cpp's Trainer runs the
// loop with them. Includes <torch/torch.h>: only the training library's sources use it.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <iosfwd>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "captcha/dataset.h"
#include "captcha/model_file.h"
#include "captcha/trainer.h"
#include "crnn.h"

namespace captcha::training {

// --- batches and losses (train_batches.cpp) ---

struct Batch {
  torch::Tensor images;   // N x 1 x H x W
  torch::Tensor targets;  // concatenated class indices
  std::vector<int64_t> target_lengths;
};

// Distorts one training image (see captcha/augment.h).
using Augmenter = std::function<Image(const Image&)>;

// Images order[start, start + count) of `data`; distorted when `augment` is given.
Batch make_batch(const LoadedDataset& data, const std::vector<std::size_t>& order, std::size_t start,
                 std::size_t count, const PreprocessOptions& p, const Augmenter* augment);

// CTC loss of per-step log-probabilities (N x T x C), summed over each sample's time steps,
// averaged over the batch (as Keras reports it).
torch::Tensor ctc_loss(const torch::Tensor& log_probs, const Batch& batch);

// The negative entropy of each time step's distribution, summed and averaged as ctc_loss is: the
// confidence penalty's term.
torch::Tensor negative_entropy(const torch::Tensor& log_probs);

// --- validation (train_validation.cpp) ---

struct Validation {
  double loss = 0;
  double exact_match = 0;
  double cer = 1;
};

// `network`'s figures on `data`; with `views` > 1 each image is read in that many views
// (reading_view) and their per-step probabilities averaged, as the recogniser does (the loss is
// the image's own).
Validation validate(Crnn& network, const LoadedDataset& data, const Charset& charset, const PreprocessOptions& p,
                    LengthRange lengths, int views = 1);

// Better validation: higher exact match, then lower CER, then lower loss.
bool is_better(const Validation& a, const Validation& b);

// The validation passes that choosing the reading views takes; a time limit keeps time for them.
inline constexpr int kViewFitPasses = 2 * kMaxReadingViews;

// Best and final read kMaxReadingViews views of each image by default (test-time augmentation)
// where, summed over both, those read more of the validation images right than the images
// alone: the best model's one-view figure is a maximum over epochs, so alone it would favour one
// view. Sets both files' reading_views and their view figures, logs the choice, and returns each
// one's validation figures read as it will be read.
struct ReadAsChosen {
  Validation best, final;
};
ReadAsChosen fit_reading_views(Crnn& best_weights, ModelFile& best, Crnn& final_weights, ModelFile& final,
                               const LoadedDataset& val_set, std::ostream& log);

// --- the state that survives an interruption (train_state.cpp) ---

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

nlohmann::json state_to_json(const TrainerState& s);
TrainerState state_from_json(const nlohmann::json& j);

Tensor byte_tensor(const std::string& bytes);

// The state of LibTorch's default CPU generator, which dropout draws from, under this name.
inline constexpr const char* kTorchGeneratorTensor = "trainer.torch_generator";
Tensor torch_generator_state();
// Throws ModelFileError naming `path` when `t` is no generator state.
void set_torch_generator_state(const Tensor& t, const std::string& path);

// Where checkpoints of earlier versions kept the optimizer in LibTorch's archive format; never
// read (that reader is LibTorch's unpickler), its presence only reported.
inline constexpr const char* kLegacyOptimizerTensor = "optimizer_state";

// The optimizer's state per parameter as plain tensors: "optimizer.<parameter>.<field>", the
// fields Adam's step (I64), exp_avg and exp_avg_sq, or SGD's momentum_buffer. A parameter the
// optimizer has not stepped yet has none.
std::map<std::string, Tensor> optimizer_tensors(torch::optim::Optimizer& optimizer, Crnn& network);
// Puts that state back into a fresh optimizer of `network`. Throws ModelFileError naming `path`
// where a tensor is missing, of another dtype or shape than its parameter's, or not finite.
void restore_optimizer_tensors(torch::optim::Optimizer& optimizer, Crnn& network,
                               const std::map<std::string, Tensor>& tensors, const std::string& path);

// metrics.csv: the first `epochs` rows of an existing file; the file written whole.
std::vector<std::string> read_metrics_rows(const std::string& path, int epochs);
void write_metrics(const std::string& path, const std::vector<std::string>& rows);

// --- the schedule (train_schedule.cpp) ---

// The epochs a run may reach: --epochs, or with 0 (a time limit in charge) a bound none reaches.
int epoch_limit(const TrainOptions& o);

std::unique_ptr<torch::optim::Optimizer> make_optimizer(const TrainOptions& o, Crnn& network);
void set_learning_rate(torch::optim::Optimizer& optimizer, double lr);

// The cosine schedule's rate for 0-based optimizer step `step` of a run of `epochs` epochs.
double cosine_learning_rate(const TrainOptions& o, int epochs, std::int64_t step, std::int64_t steps_per_epoch);

// An exponential moving average of a network's weights and batch-norm statistics. The decay
// ramps up over the first steps so that the average does not remember the initialisation.
class WeightAverage {
 public:
  WeightAverage(Crnn averaged, double decay) : averaged_(std::move(averaged)), decay_(decay) {}
  void update(Crnn& live, std::int64_t step);
  Crnn& network() { return averaged_; }

 private:
  Crnn averaged_;
  double decay_;
};

// Under a time limit: after each epoch, the number of epochs that still fit in the limit at
// `seconds_per_epoch` (the caller passes the slower of the run's mean epoch time and its last
// epoch's, so that a run whose epochs slow down towards the end does not overrun), between the
// epoch just completed and --epochs, becomes the schedule's length (state.planned_epochs), so the
// cosine decay ends when the time does. `reserved` seconds are kept for the work after the last
// epoch.
void fit_schedule_to_time_limit(const TrainOptions& o, int epoch, double seconds_per_epoch, double elapsed,
                                double reserved, TrainerState& state, std::ostream& log);

// The plateau schedule after an epoch: the rate times lr_factor after lr_patience epochs without
// a lower validation loss, down to min_learning_rate.
void update_plateau_schedule(const TrainOptions& o, double validation_loss, TrainerState& state,
                             torch::optim::Optimizer& optimizer);

// `o.model` grown from the loaded `o.init_model` as `o.grow` asks: its sizes checked, none
// smaller than the loaded model's. Throws ConfigError naming the model.
ModelConfig grown_config(const TrainOptions& o);

// Copies `source` weights into `network`; when the charsets differ, the classifier rows of the
// symbols both share are copied and the others keep their fresh initialisation. A network grown
// from the source's (`grown`, see ModelGrowth) gets the loaded weights in place and fresh, unread
// units beside them.
void initialise_from(Crnn& network, const ModelFile& source, const Charset& charset, const std::string& path,
                     const ModelConfig& grown, int input_height);

// --- reports (train_report.cpp) ---

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point start);
std::string format_duration(double seconds);
std::string now_iso8601();
// Layer sizes as the log and messages show them: "32,64".
std::string sizes(const std::vector<int>& values);
// The training folders as the log and error messages name them: "a", or "a + b".
std::string train_folders(const TrainOptions& o);

class ProgressBar {
 public:
  ProgressBar(std::ostream& out, bool enabled) : out_(out), enabled_(enabled) {}
  void update(std::size_t done, std::size_t total, double loss);
  void clear();

 private:
  std::ostream& out_;
  bool enabled_;
};

// --- settings (train_settings.cpp) ---

// Throws ConfigError for settings that cannot work.
void check_options(const TrainOptions& o);
// Applies o.fit's choices for this training set (from scratch only; otherwise none is fitted);
// afterwards o.fit says which were fitted.
void fit_to_training_set(TrainOptions& o, const std::vector<Sample>& train_samples, bool from_scratch);
// Refuses, before any long work, labels the network cannot emit in `time_steps`; a few outliers
// are skipped when loading.
void check_time_steps(const std::vector<Sample>& samples, const Charset& charset, bool fold_case,
                      const TrainOptions& o, int time_steps);

// The settings table at the start of a run.
void print_settings(std::ostream& log, const TrainOptions& o, const Charset& charset, const LoadedDataset& train_set,
                    const LoadedDataset& val_set, int time_steps, std::int64_t parameters, bool augmenting);

// The figures of one epoch, as the log line and metrics.csv show them.
struct EpochReport {
  int epoch = 0, planned_epochs = 0;
  double train_loss = 0;
  Validation validation;
  double learning_rate = 0;
  double images_per_second = 0;
  double elapsed_seconds = 0, eta_seconds = 0;
  bool improved = false;
  std::int64_t skipped_steps = 0;

  std::string log_line() const;
  std::string metrics_row() const;
};

}  // namespace captcha::training
