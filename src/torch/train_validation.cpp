// Validation passes over images held in memory, and the choice of the views each image is read in.
#include "training.h"

#include <iomanip>
#include <numeric>
#include <ostream>
#include <sstream>

#include "captcha/metrics.h"
#include "captcha/preprocess.h"

namespace captcha::training {

Validation validate(Crnn& network, const LoadedDataset& data, const Charset& charset,
                    const PreprocessOptions& p, LengthRange lengths, int views) {
  torch::NoGradGuard no_grad;
  network->eval();
  std::vector<std::size_t> order(data.size());
  std::iota(order.begin(), order.end(), 0);
  MetricsAccumulator metrics;
  double loss_sum = 0;
  constexpr std::size_t kBatch = 64;
  for (std::size_t start = 0; start < data.size(); start += kBatch) {
    const std::size_t count = std::min(kBatch, data.size() - start);
    const Batch batch = make_batch(data, order, start, count, p, /*augment=*/nullptr);
    auto logits = network->forward(batch.images);
    loss_sum += ctc_loss(torch::log_softmax(logits, 2), batch).item<double>() * count;
    if (views > 1) {
      auto mean = torch::softmax(logits, 2);
      for (int view = 1; view < views; ++view) {
        const Augmenter viewed = [view](const Image& image) { return reading_view(image, view); };
        mean += torch::softmax(network->forward(make_batch(data, order, start, count, p, &viewed).images), 2);
      }
      logits = torch::log((mean / views).clamp_min(1e-30));
    }
    const auto texts = decode_logits(logits, charset, 0, {}, lengths);
    for (std::size_t i = 0; i < count; ++i) metrics.add(data.labels[start + i], texts[i].text);
  }
  network->train();
  const auto report = metrics.report();
  return {loss_sum / data.size(), report.exact_match, report.cer};
}

bool is_better(const Validation& a, const Validation& b) {
  if (std::abs(a.exact_match - b.exact_match) > 1e-9) return a.exact_match > b.exact_match;
  if (std::abs(a.cer - b.cer) > 1e-9) return a.cer < b.cer;
  return a.loss < b.loss * (1 - 1e-3);
}

ReadAsChosen fit_reading_views(Crnn& best_weights, ModelFile& best, Crnn& final_weights, ModelFile& final,
                               const LoadedDataset& val_set, std::ostream& log) {
  double single = 0, viewed = 0;
  Validation one[2], seven[2];
  std::ostringstream line;
  line << std::fixed << std::setprecision(2) << "reading views: " << kMaxReadingViews
       << " views of each validation image read";
  Crnn* const weights[2] = {&best_weights, &final_weights};
  ModelFile* const files[2] = {&best, &final};
  const char* const names[2] = {"best", "final"};
  for (int k = 0; k < 2; ++k) {
    nlohmann::json& training = files[k]->training;
    seven[k] = validate(*weights[k], val_set, best.charset, best.preprocess, best.label_lengths, kMaxReadingViews);
    training["val_exact_match_views"] = seven[k].exact_match;
    training["val_cer_views"] = seven[k].cer;
    one[k] = {training.value("val_loss", 0.0), training.at("val_exact_match").get<double>(),
              training.value("val_cer", 0.0)};
    single += one[k].exact_match;
    viewed += seven[k].exact_match;
    line << " " << 100 * seven[k].exact_match << "% (" << names[k] << "; one view " << 100 * one[k].exact_match << "%)";
  }
  const bool views = viewed > single;
  best.reading_views = final.reading_views = views ? kMaxReadingViews : 1;
  line << "; both read " << best.reading_views << (views ? " views" : " view") << " by default\n";
  log << line.str();
  const Validation* figures = views ? seven : one;
  return {figures[0], figures[1]};
}

}  // namespace captcha::training
