// Training batches from images held in memory, the CTC loss and the confidence penalty's term.
#include "training.h"

#include "captcha/charset.h"

namespace captcha::training {

Batch make_batch(const LoadedDataset& data, const std::vector<std::size_t>& order, std::size_t start,
                 std::size_t count, const PreprocessOptions& p, const Augmenter* augment) {
  Batch batch;
  batch.images = torch::empty({static_cast<int64_t>(count), 1, p.height, p.width});
  std::vector<int64_t> targets;
  for (std::size_t i = 0; i < count; ++i) {
    const std::size_t index = order[start + i];
    const Image image = augment ? (*augment)(data.images[index]) : data.images[index];
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

}  // namespace captcha::training
