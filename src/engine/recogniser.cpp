// Recogniser on the inference engine (oneDNN; no LibTorch).
#include "captcha/recogniser.h"

#include <optional>

#include "captcha/ctc_decode.h"
#include "captcha/errors.h"
#include "captcha/inference.h"

namespace captcha {

struct Recogniser::Impl {
  ModelFile model;
  PreprocessOptions preprocess;
  std::optional<InferenceNetwork> network;
};

Recogniser::Recogniser(const std::string& model_path, int threads) : impl_(std::make_unique<Impl>()) {
  set_inference_threads(threads);
  impl_->model = load_model(model_path);
  impl_->preprocess = impl_->model.preprocess;
  impl_->network.emplace(impl_->model, model_path);
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
  const LengthRange lengths = options.any_length ? LengthRange{} : impl_->model.label_lengths;
  const std::size_t image_values = static_cast<std::size_t>(p.height) * p.width;
  std::vector<float> batch;
  for (std::size_t start = 0; start < prepared.size(); start += batch_size) {
    const std::size_t count = std::min(batch_size, prepared.size() - start);
    batch.resize(count * image_values);
    for (std::size_t i = 0; i < count; ++i) {
      const cv::Mat& image = prepared[start + i];
      if (image.rows != p.height || image.cols != p.width || image.type() != CV_8UC1)
        throw ConfigError("read_prepared: image is not a prepared " + std::to_string(p.width) + "x" +
                          std::to_string(p.height) + " grey image");
      normalise_into(image, p, batch.data() + i * image_values);
    }
    const auto logits = impl_->network->forward(batch.data(), static_cast<int>(count), p.width);
    for (auto& text : decode_logits(logits.data(), static_cast<int>(count), impl_->network->time_steps(p.width),
                                    impl_->network->num_classes(), impl_->model.charset,
                                    options.beam_width, allowed, lengths))
      readings.push_back({std::move(text.text), text.confidence, std::move(text.char_probabilities)});
  }
  return readings;
}

Reading Recogniser::read(const cv::Mat& grey, const ReadOptions& options) const {
  return read_prepared({prepare(grey)}, options).front();
}

}  // namespace captcha
