// Recogniser on the inference engine (no LibTorch).
#include "captcha/recogniser.h"

#include <algorithm>
#include <cmath>

#include <nlohmann/json.hpp>

#include "captcha/ctc_decode.h"
#include "captcha/errors.h"
#include "captcha/inference.h"

namespace captcha {

namespace {

// Why `other` cannot be read together with `first` (averaging their probabilities), or "" when it can.
std::string ensemble_mismatch(const ModelFile& first, const InferenceNetwork& first_network, const ModelFile& other,
                              const InferenceNetwork& other_network) {
  const int width = first.preprocess.width;
  if (other.charset.symbols_utf8() != first.charset.symbols_utf8()) return "another charset";
  if (other.fold_case != first.fold_case) return "another case folding";
  if (other.label_lengths.min != first.label_lengths.min || other.label_lengths.max != first.label_lengths.max)
    return "other label lengths";
  if (nlohmann::json(other.preprocess) != nlohmann::json(first.preprocess)) return "other preprocessing";
  if (other_network.time_steps(width) != first_network.time_steps(width)) return "another number of time steps";
  return "";
}

}  // namespace

struct Recogniser::Impl {
  ModelFile model;  // the first model's settings (its weights live in networks[0])
  PreprocessOptions preprocess;
  std::vector<InferenceNetwork> networks;
};

Recogniser::Recogniser(const std::string& model_path, int threads, Precision precision)
    : Recogniser(std::vector<std::string>{model_path}, threads, precision) {}

Recogniser::Recogniser(const std::vector<std::string>& model_paths, int threads, Precision precision)
    : impl_(std::make_unique<Impl>()) {
  if (model_paths.empty()) throw ConfigError("Recogniser: no model file given");
  set_inference_threads(threads);
  for (const auto& path : model_paths) {
    ModelFile model = load_model(path);
    InferenceNetwork network(model, path, precision);
    // The weights now live in the network; drop the file's copy (and any optimizer state).
    model.tensors.clear();
    if (impl_->networks.empty()) {
      impl_->model = std::move(model);
    } else if (const auto why = ensemble_mismatch(impl_->model, impl_->networks.front(), model, network); !why.empty()) {
      throw ModelFileError(path + ": cannot be read together with " + model_paths.front() + ": " + why);
    }
    impl_->networks.push_back(std::move(network));
  }
  impl_->preprocess = impl_->model.preprocess;
}

Recogniser::~Recogniser() = default;
Recogniser::Recogniser(Recogniser&&) noexcept = default;
Recogniser& Recogniser::operator=(Recogniser&&) noexcept = default;

const ModelFile& Recogniser::model() const { return impl_->model; }
int Recogniser::ensemble_size() const { return static_cast<int>(impl_->networks.size()); }
PreprocessOptions& Recogniser::preprocess_options() { return impl_->preprocess; }

Image Recogniser::prepare(const Image& grey) const { return preprocess(grey, impl_->preprocess); }

std::vector<Reading> Recogniser::read_prepared(const std::vector<Image>& prepared,
                                               const ReadOptions& options) const {
  const auto& p = impl_->preprocess;
  const auto& networks = impl_->networks;
  const int views = options.views > 0 ? options.views : impl_->model.reading_views;
  if (views > kMaxReadingViews)
    throw ConfigError("at most " + std::to_string(kMaxReadingViews) + " views of an image, not " + std::to_string(views));
  const auto allowed = allowed_mask(impl_->model.charset, options.allowed);
  const std::size_t batch_size = std::max(1, options.batch_size);
  const int steps = networks.front().time_steps(p.width);
  const int classes = networks.front().num_classes();
  const LengthRange lengths = options.any_length ? LengthRange{} : impl_->model.label_lengths;
  const std::size_t image_values = static_cast<std::size_t>(p.height) * p.width;
  const bool averaged = views > 1 || networks.size() > 1;
  std::vector<Reading> readings;
  readings.reserve(prepared.size());
  for (const Image& image : prepared)
    if (image.height() != p.height || image.width() != p.width || image.channels() != 1)
      throw ConfigError("read_prepared: image is not a prepared " + std::to_string(p.width) + "x" +
                        std::to_string(p.height) + " grey image");
  std::vector<float> batch, mean;
  for (std::size_t start = 0; start < prepared.size(); start += batch_size) {
    const std::size_t count = std::min(batch_size, prepared.size() - start);
    const std::size_t rows = count * steps;
    batch.resize(count * image_values);
    std::vector<float> logits;
    if (averaged) mean.assign(rows * classes, 0.0f);
    for (int view = 0; view < views; ++view) {
      for (std::size_t i = 0; i < count; ++i)
        normalise_into(reading_view(prepared[start + i], view), p, batch.data() + i * image_values);
      for (const auto& network : networks) {
        logits = network.forward(batch.data(), static_cast<int>(count), p.width);
        if (!averaged) break;
        softmax_rows(logits, static_cast<int>(rows), classes);
        for (std::size_t j = 0; j < mean.size(); ++j) mean[j] += logits[j];
      }
    }
    if (averaged) {
      // The averaged distribution as logits: softmax(log q) = q (the floor keeps log finite).
      const float share = 1.0f / static_cast<float>(views * networks.size());
      for (std::size_t j = 0; j < mean.size(); ++j) mean[j] = std::log(std::max(mean[j] * share, 1e-30f));
      logits.swap(mean);
    }
    const std::size_t first = readings.size();
    for (auto& text : decode_logits(logits.data(), static_cast<int>(count), steps, classes, impl_->model.charset,
                                    options.beam_width, allowed, lengths))
      readings.push_back({std::move(text.text), text.confidence, std::move(text.char_probabilities),
                          std::move(text.case_probabilities), {}});
    if (options.step_probabilities) {
      softmax_rows(logits, static_cast<int>(rows), classes);
      const std::size_t values = static_cast<std::size_t>(steps) * classes;
      for (std::size_t i = 0; i < count; ++i)
        readings[first + i].step_probabilities.assign(logits.begin() + i * values, logits.begin() + (i + 1) * values);
    }
  }
  return readings;
}

Reading Recogniser::read(const Image& grey, const ReadOptions& options) const {
  return read_prepared({prepare(grey)}, options).front();
}

}  // namespace captcha
