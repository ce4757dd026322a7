// Recogniser on the LibTorch forward pass (the reference implementation).
#include "captcha/recogniser.h"

#include "captcha/ctc_decode.h"
#include "captcha/errors.h"
#include "crnn.h"

namespace captcha {

struct Recogniser::Impl {
  ModelFile model;
  PreprocessOptions preprocess;
  Crnn network{nullptr};
};

Recogniser::Recogniser(const std::string& model_path, int threads) : impl_(std::make_unique<Impl>()) {
  configure_torch(threads);
  impl_->model = load_model(model_path);
  impl_->preprocess = impl_->model.preprocess;
  impl_->network = Crnn(impl_->model.config, impl_->model.charset.num_classes(), impl_->model.preprocess.height);
  import_weights(impl_->network, impl_->model.tensors, model_path);
  impl_->network->eval();
  // The weights now live in the network; drop the file's copy (and any optimizer state).
  impl_->model.tensors.clear();
}

Recogniser::~Recogniser() = default;
Recogniser::Recogniser(Recogniser&&) noexcept = default;
Recogniser& Recogniser::operator=(Recogniser&&) noexcept = default;

const ModelFile& Recogniser::model() const { return impl_->model; }
PreprocessOptions& Recogniser::preprocess_options() { return impl_->preprocess; }

cv::Mat Recogniser::prepare(const cv::Mat& grey) const { return preprocess(grey, impl_->preprocess); }

std::vector<Reading> Recogniser::read_prepared(const std::vector<cv::Mat>& prepared,
                                               const ReadOptions& options) const {
  const auto& p = impl_->preprocess;
  const auto allowed = allowed_mask(impl_->model.charset, options.allowed);
  const std::size_t batch_size = std::max(1, options.batch_size);
  std::vector<Reading> readings;
  readings.reserve(prepared.size());
  torch::InferenceMode inference;
  for (std::size_t start = 0; start < prepared.size(); start += batch_size) {
    const std::size_t count = std::min(batch_size, prepared.size() - start);
    auto batch = torch::empty({static_cast<int64_t>(count), 1, p.height, p.width});
    for (std::size_t i = 0; i < count; ++i) {
      const cv::Mat& image = prepared[start + i];
      if (image.rows != p.height || image.cols != p.width || image.type() != CV_8UC1)
        throw ConfigError("read_prepared: image is not a prepared " + std::to_string(p.width) + "x" +
                          std::to_string(p.height) + " grey image");
      normalise_into(image, p, batch[i].data_ptr<float>());
    }
    for (auto& text : decode_logits(impl_->network->forward(batch), impl_->model.charset,
                                    options.beam_width, allowed,
                                    options.any_length ? LengthRange{} : impl_->model.label_lengths))
      readings.push_back({std::move(text.text), text.confidence, std::move(text.char_probabilities)});
  }
  return readings;
}

Reading Recogniser::read(const cv::Mat& grey, const ReadOptions& options) const {
  return read_prepared({prepare(grey)}, options).front();
}

}  // namespace captcha
